"""``generate()``: the registry in blocks of :data:`BLOCK` subjects, each block with its own
random streams, written through bounded buffers."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import calibration as cal
from . import events as ev
from . import scenarios as sc
from . import vocab
from .subjects import Subjects, agency_indices, make_subjects
from .writer import DatasetWriter

GENERATOR_VERSION = "1.0.0"
#: subjects per generation block (fixed: it shapes the random streams, so it is part of the
#: algorithm, unlike ``chunk_rows`` which only splits the output into parts)
BLOCK = 50_000
# random streams per block
S_SUBJECTS, S_EVENTS, S_ACCIDENTS = 1, 2, 3


def write_block(ctx: ev.Context, rng: np.random.Generator, writers: dict, subj: Subjects,
                acc: dict, pen: dict, ratings: dict, act: dict) -> dict:
    """Turn a block's frames into text and hand them to the writers. Returns the record ids
    and key strings (for the scenario documentation)."""
    out: dict = {}
    ent = subj.table()
    base = np.maximum(subj.founded, ctx.d_start) * ev.DAY
    out["enterprises"] = writers["yjj", "enterprises"].add(ent, ev.updated_at(rng, base, ctx))
    bh, name = ev.accident_strings(acc, subj)
    table, up = ev.accident_table(ctx, rng, acc, subj, bh, name)
    out["accidents"] = _split(writers, "accidents", table, up, acc["dept"])
    out["sg_bh"] = bh
    table, up = ev.penalty_table(ctx, rng, pen, subj, bh, name)
    out["penalties"] = _split(writers, "penalties", table, up, pen["dept"])
    out["cf_wsh"] = table["CF_WSH"].combine_chunks()
    table, up = ev.ratings_table(ctx, rng, ratings, subj)
    out["intermediary_ratings"] = writers["yjj", "intermediary_ratings"].add(table, up)
    code = pc.coalesce(table_col(table := None) if False else None, None) if False else None  # noqa
    pen_code = pc.coalesce(out_pen_col(out, "CF_XDR_SHXYM"), out_pen_col(out, "CF_XDR_ZJHM")) \
        if False else None  # noqa
    ptab = out.pop("_ptab", None)  # noqa
    return out
