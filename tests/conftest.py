"""Shared, session-scoped fixtures: one generated data set, one simulator, one pipeline run.

Sharing keeps `make test` fast on 2 cores; tests that need a special setup build their own.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

SEED = 7
SCALE = 1500
# a shorter history than the default (2019–) keeps CSV-only departments' first runs short in
# tests; still more than the 3-year management period the rules need
START = date(2023, 6, 1)


@pytest.fixture(scope="session")
def sim_data(tmp_path_factory) -> Path:
    from safecredit.generator import generate

    out = tmp_path_factory.mktemp("simdata") / f"data-s{SEED}-n{SCALE}"
    generate(out, seed=SEED, scale=SCALE, start=START)
    return out


@pytest.fixture(scope="session")
def sim_meta(sim_data) -> dict:
    return json.loads((sim_data / "meta.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def clean_simulator(sim_data):
    """A simulator with no faults, shared by every test that only reads."""
    from safecredit.simulator import start_simulator

    with start_simulator(sim_data, port=0, seed=SEED, faults=()) as sim:
        yield sim


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, clean_simulator, sim_meta):
    """One full `safecredit run` (through Dagster, in-process) against the clean simulator."""
    from pipelines.runner import run_pipeline

    home = tmp_path_factory.mktemp("home")
    sources = home / "sources.yaml"
    clean_simulator.write_sources(sources)
    as_of = date.fromisoformat(sim_meta["end"])
    summary = run_pipeline(str(home), str(sources), as_of)
    return {"home": home, "summary": summary, "as_of": as_of, "sources": sources}
