"""Incremental nights (issue 10 §5): a night whose inputs did not change recomputes nothing, and what it
publishes is what a full rebuild from the raw landing publishes, byte for byte."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from pipelines.runner import run_pipeline

STEPS = ("staged:penalties", "staged:enterprises", "staged:accidents", "subjects", "rules", "publish")


def _ledger(home) -> dict[str, tuple[str, str]]:
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT step, fingerprint, CAST(recorded_at AS VARCHAR) FROM meta.step_inputs").fetchall()
    finally:
        con.close()
    return {step: (fp, at) for step, fp, at in rows}


def _files(home, version: str) -> dict[str, dict[str, tuple[str, int]]]:
    """feed -> data file -> (sha256, inode) of one published version (the delta left out)."""
    out = {}
    for manifest in sorted((home / "exports").glob(f"*/{version}/manifest.json")):
        m = json.loads(manifest.read_text(encoding="utf-8"))
        out[m["feed"]] = {
            e["name"]: (e["sha256"], (manifest.parent / e["name"]).stat().st_ino)
            for e in m["files"]
            if e["name"].startswith("full.")
        }
    return out


@pytest.fixture(scope="module")
def nights(pipeline_run, clean_simulator, tmp_path_factory):
    """The session's first run copied to a home of its own; then the same night again; then a replay."""
    home = tmp_path_factory.mktemp("incremental") / "home"
    shutil.copytree(pipeline_run["home"], home, symlinks=True)
    sources = home / "sources.yaml"
    clean_simulator.write_sources(sources)
    first = _ledger(home)
    again = run_pipeline(str(home), str(sources), pipeline_run["as_of"])
    after_again = _ledger(home)
    rebuilt = run_pipeline(str(home), None, pipeline_run["as_of"], replay=True)
    return {
        "home": home,
        "first": pipeline_run["summary"],
        "again": again,
        "rebuilt": rebuilt,
        "ledger": (first, after_again, _ledger(home)),
    }


def test_a_night_with_nothing_new_reuses_every_warehouse_step(nights):
    first, again, _ = nights["ledger"]
    assert nights["again"].published
    for step in STEPS:
        assert step in first, f"the first run recorded no fingerprint for {step}"
        assert again[step][0] == first[step][0], f"{step} has new inputs although nothing changed"
    # staging found no fetch with a record it did not already hold (a watermark's overlap re-sends some)
    assert {ds: m["staging"] in ("reused", "repeats") for ds, m in nights["again"].staged.items()} == dict.fromkeys(
        nights["first"].staged, True
    )
    for step in ("subjects", "rules", "publish"):  # not recomputed: recorded once, by the first run
        assert again[step] == first[step], f"{step} was recomputed although nothing changed"
    # the contract suite's verdict on the same staged tables is reused too
    assert again["contract_suite:penalties"] == first["contract_suite:penalties"]


def test_the_unchanged_night_publishes_its_files_as_links_to_the_previous_version(nights):
    home, first, again = nights["home"], nights["first"], nights["again"]
    before, after = _files(home, first.version), _files(home, again.version)
    assert after.keys() == before.keys() and after
    for feed, files in after.items():
        for name, (sha, inode) in files.items():
            assert (sha, inode) == before[feed][name], f"{feed}/{name} was stored again"
    for feed, d in again.feed_deltas.items():
        assert d.get("ADD", 0) + d.get("MOD", 0) + d.get("DEL", 0) == 0, (feed, d)


def test_a_full_rebuild_from_the_landing_publishes_the_same_bytes(nights):
    _, again, rebuilt = nights["ledger"]
    assert nights["rebuilt"].published
    # replay did rebuild: every step recorded anew, with the same fingerprints
    for step in STEPS:
        assert rebuilt[step][1] != again[step][1], f"replay reused {step} instead of rebuilding it"
    assert {m["staging"] for m in nights["rebuilt"].staged.values()} == {"staged"}
    home = nights["home"]
    incremental = _files(home, nights["again"].version)
    full = _files(home, nights["rebuilt"].version)
    assert {f: {n: sha for n, (sha, _) in files.items()} for f, files in full.items()} == {
        f: {n: sha for n, (sha, _) in files.items()} for f, files in incremental.items()
    }


def test_subject_resolution_reads_neither_the_date_nor_the_policy():
    """Its fingerprint leaves out as_of and the policy (assets/rules.py), so its SQL must not read them."""
    from safecredit.config import RULES_DIR

    for sql in sorted((RULES_DIR / "subjects").glob("*.sql")):
        text = sql.read_text(encoding="utf-8")
        for token in ("as_of", "pol(", "policy_", "calendar", "workday"):
            assert token not in text, f"{sql.name} reads {token}: put as_of/the policy back in its fingerprint"


@pytest.fixture(scope="module")
def date_moved(nights, pipeline_run):
    """After `nights`: a night with the same landing and a later as_of, then a replay at that date."""
    from datetime import timedelta

    home = nights["home"]
    as_of = pipeline_run["as_of"] + timedelta(days=7)
    before = _ledger(home)
    moved = run_pipeline(str(home), str(home / "sources.yaml"), as_of)
    after = _ledger(home)
    rebuilt = run_pipeline(str(home), None, as_of, replay=True)
    return {"home": home, "moved": moved, "rebuilt": rebuilt, "ledger": (before, after)}


def test_a_night_that_only_moves_the_date_recomputes_only_what_depends_on_it(date_moved):
    before, after = date_moved["ledger"]
    assert date_moved["moved"].published and date_moved["rebuilt"].published
    for step in ("staged:penalties", "staged:enterprises", "staged:accidents"):  # a repeat fetch re-records
        assert after[step][0] == before[step][0], f"{step} has new inputs although only the date moved"
    assert after["subjects"] == before["subjects"], "subjects were resolved again although only the date moved"
    for step in ("rules", "publish"):
        assert after[step][0] != before[step][0], f"{step} was reused although the date moved"
    # what it published is what a rebuild from the landing at that date publishes
    moved = _files(date_moved["home"], date_moved["moved"].version)
    full = _files(date_moved["home"], date_moved["rebuilt"].version)
    assert moved and {f: {n: sha for n, (sha, _) in files.items()} for f, files in full.items()} == {
        f: {n: sha for n, (sha, _) in files.items()} for f, files in moved.items()
    }
