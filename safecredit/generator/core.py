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
from .decisions import listing_decisions
from .subjects import Subjects, agency_indices, make_subjects
from .writer import DatasetWriter

# bump on every change of what the generator writes: cached data (bench/out/data, the demo's
# simulator data) is keyed by it. 1.1.0: listing_decisions and the 河北 2025 calibration.
GENERATOR_VERSION = "1.1.0"
#: subjects per generation block (fixed: it shapes the random streams, so it is part of the
#: algorithm, unlike ``chunk_rows`` which only splits the output into parts)
BLOCK = 50_000
# random streams per block
S_SUBJECTS, S_EVENTS, S_ACCIDENTS = 1, 2, 3


def _split(writers: dict, dataset: str, table: pa.Table, updated: np.ndarray, dept: np.ndarray) -> pa.Array:
    """Send each row to its department's writer; record ids in the order of ``table``."""
    parts, where = [], []
    for d, dept_id in enumerate(vocab.DEPT_IDS):
        rows = np.flatnonzero(dept == d)
        if rows.size == 0:
            continue
        writer = writers.get((dept_id, dataset))
        if writer is None:
            raise ValueError(f"{dept_id} does not carry {dataset}")
        parts.append(writer.add(table.take(pa.array(rows)), updated[rows]))
        where.append(rows)
    if not parts:
        return pa.array([], pa.string())
    inverse = np.argsort(np.concatenate(where), kind="stable")
    return pa.concat_arrays(parts).take(pa.array(inverse))


def write_block(
    ctx: ev.Context,
    rng: np.random.Generator,
    writers: dict,
    subj: Subjects,
    acc: dict,
    pen: dict,
    ratings: dict,
    act: dict,
    block: int | None = None,
) -> dict[str, pa.Array]:
    """Turn a block's frames into text and hand them to the writers. Returns the record ids
    per dataset (row order of the frames) and the SG_BH / CF_WSH strings."""
    out: dict[str, pa.Array] = {}
    base = np.maximum(subj.founded, ctx.d_start) * ev.DAY
    out["enterprises"] = writers["yjj", "enterprises"].add(subj.table(), ev.updated_at(rng, base, ctx))
    bh, name = ev.accident_strings(acc, subj)
    table, up = ev.accident_table(ctx, rng, acc, subj, bh, name)
    out["accidents"] = _split(writers, "accidents", table, up, acc["dept"])
    out["sg_bh"] = bh
    ptable, up = ev.penalty_table(ctx, rng, pen, subj, bh, name)
    out["penalties"] = _split(writers, "penalties", ptable, up, pen["dept"])
    out["cf_wsh"] = ptable["CF_WSH"].combine_chunks()
    table, up = ev.ratings_table(ctx, rng, ratings, subj)
    out["intermediary_ratings"] = writers["yjj", "intermediary_ratings"].add(table, up)
    pen_code = pc.coalesce(ptable["CF_XDR_SHXYM"], ptable["CF_XDR_ZJHM"]).combine_chunks()
    table, up = ev.credit_table(ctx, rng, act, pen, out["cf_wsh"], pen_code)
    out["credit_actions"] = _split(writers, "credit_actions", table, up, ev.credit_record_dept(pen, act))
    if block is not None:  # the registry's blocks, not the golden scenarios (their dates are asserted)
        table, up = listing_decisions(ctx, rng, pen, subj, ptable, out["cf_wsh"], block)
        out["listing_decisions"] = writers["yjj", "listing_decisions"].add(table, up)
    return out


def run_block(ctx: ev.Context, writers: dict, block: int, gidx: np.ndarray, agencies: np.ndarray) -> None:
    seed = ctx.seed
    subj = make_subjects(seed, gidx, ev.rng_for(seed, S_SUBJECTS, block), end_day=ctx.d_end, agencies=agencies)
    frame = cal.generate_accident_frame(
        ev.rng_for(seed, S_ACCIDENTS, block), ctx.start, ctx.end + timedelta(days=1), gidx.size
    )
    rng = ev.rng_for(seed, S_EVENTS, block)
    acc = ev.number_accidents(ctx, ev.place_accidents(ctx, rng, frame, subj))
    pen = ev.cat_frames(ev.accident_penalties(ctx, rng, acc, subj), ev.ordinary_penalties(ctx, rng, subj))
    ratings, fraud = ev.agency_ratings(ctx, rng, subj)
    pen = ev.cat_frames(pen, fraud)
    pen = ev.finish_penalties(ctx, ev.cat_frames(pen, ev.refused_followups(ctx, rng, pen)))
    act = ev.credit_actions(ctx, rng, pen)
    write_block(ctx, rng, writers, subj, acc, pen, ratings, act, block=block)


def generate(
    out_dir: Path | str,
    *,
    seed: int = 42,
    scale: int = 5000,
    start: date = date(2019, 1, 1),
    end: date = date(2026, 11, 22),
    scenarios: bool = True,
    progress: bool = False,
    penalties_per_subject: float = 0.4,
    chunk_rows: int = 200_000,
) -> dict:
    """Write the synthetic department datasets under ``out_dir`` and return the meta dict
    (also written to ``out_dir/meta.json``). Same arguments → byte-identical files."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    if end <= start:
        raise ValueError("end must be after start")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    if scale >= sc.GOLDEN_BASE:
        raise ValueError(f"scale must stay below {sc.GOLDEN_BASE:,}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = ev.Context(seed=seed, start=start, end=end, penalties_per_subject=penalties_per_subject)
    writers = {
        (d["id"], ds): DatasetWriter(out, d["id"], ds, chunk_rows)
        for d in vocab.DEFAULT_DEPARTMENTS
        for ds in d["datasets"]
    }
    agencies = agency_indices(scale)
    n_blocks = -(-scale // BLOCK)
    bar = _progress(progress, n_blocks + int(scenarios))
    try:
        for b in range(n_blocks):
            gidx = np.arange(b * BLOCK, min((b + 1) * BLOCK, scale), dtype=np.int64)
            run_block(ctx, writers, b, gidx, agencies)
            pa.default_memory_pool().release_unused()
            bar.advance()
        golden = sc.add_scenarios(ctx, writers, write_block) if scenarios else []
        bar.advance()
    finally:
        bar.stop()
    counts: dict[str, dict[str, int]] = {}
    for (dept, ds), w in writers.items():
        counts.setdefault(dept, {})[ds] = w.close()
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "parameters": {
            "penalties_per_subject": penalties_per_subject,
            "chunk_rows": chunk_rows,
            "block": BLOCK,
            "reference_subjects": cal.REFERENCE_SUBJECTS,
        },
        "departments": [
            {k: d[k] for k in ("id", "name", "full_name", "uscc", "datasets", "transports", "kind")}
            for d in vocab.DEFAULT_DEPARTMENTS
        ],
        "counts": counts,
        "scenarios": golden,
    }
    (out / "meta.json").write_text(
        json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8"
    )
    return meta


class _NoBar:
    def advance(self) -> None:
        pass

    def stop(self) -> None:
        pass


class _RichBar:
    def __init__(self, total: int):
        from rich.progress import Progress  # lazy: rich is only needed for the bar

        self._progress = Progress(transient=False)
        self._progress.start()
        self._task = self._progress.add_task("generating", total=total)

    def advance(self) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


def _progress(enabled: bool, total: int):
    return _RichBar(total) if enabled else _NoBar()
