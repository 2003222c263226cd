"""Whole runs across days: a held-back batch, the rest publishing, previous data in force,
and publication blocked when a source is too stale."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from pipelines.runner import run_pipeline
from safecredit.landing import SourceDir, write_json_atomic
from safecredit.run_summary import exit_code
from safecredit.simulator import start_simulator

SHANGHAI = timezone(timedelta(hours=8))


def _end(sim_meta) -> datetime:
    return datetime.combine(date.fromisoformat(sim_meta["end"]), datetime.max.time().replace(microsecond=0), SHANGHAI)


def _current(home, ds, dept) -> set[str]:
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        return {
            r
            for (r,) in con.execute(
                f"SELECT record_id FROM staged.{ds}_current WHERE department = ?", [dept]
            ).fetchall()
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def two_runs(sim_data, sim_meta, tmp_path_factory):
    """Run 1: clean, the departments clock 120 days before the end. Run 2: at the end, yjj renamed
    CF_WSH in its penalties and scj sends one bad USCC among many records."""
    home = tmp_path_factory.mktemp("tworuns")
    end = _end(sim_meta)
    with start_simulator(sim_data, port=0, seed=3, faults=(), sim_now=end - timedelta(days=120)) as sim:
        sim.write_sources(home / "sources.yaml")
        first = run_pipeline(str(home), None, (end - timedelta(days=120)).date())
        yjj_before = _current(home, "penalties", "yjj")
        scj_before = _current(home, "penalties", "scj")
    faults = {"renamed_field:yjj": 1.0, "bad_uscc:scj": 0.25}
    with start_simulator(sim_data, port=0, seed=3, faults=faults, sim_now=end) as sim:
        sim.write_sources(home / "sources.yaml")
        truth = [t for t in sim.truth("scj", "penalties") if t["fault"] == "bad_uscc"]
        second = run_pipeline(str(home), None, end.date())
    return {
        "home": home,
        "first": first,
        "second": second,
        "yjj_before": yjj_before,
        "scj_bad": truth,
        "scj_before": scj_before,
    }


def test_renamed_field_holds_back_that_batch_and_the_rest_publishes(two_runs):
    first, second = two_runs["first"], two_runs["second"]
    assert first.published and second.published, second.reasons
    held = second.staged["penalties"]["held_back"]
    assert [h["department"] for h in held] == ["yjj"]
    assert "CF_WSH" in held[0]["reason_en"] and "penalties" in held[0]["reason_en"]
    exports = two_runs["home"] / "exports"
    manifest = json.loads((exports / "blacklist" / second.version / "manifest.json").read_text(encoding="utf-8"))
    named = [h for h in manifest["held_back"] if h.get("kind") == "held_back"]
    assert named and named[0]["department"] == "yjj" and named[0]["dataset"] == "penalties"
    assert "CF_WSH" in named[0]["reason_en"] and "CF_WSH" in named[0]["reason_zh"]


def test_previous_data_of_the_held_back_source_stays_in_force(two_runs):
    assert two_runs["yjj_before"]
    assert _current(two_runs["home"], "penalties", "yjj") == two_runs["yjj_before"]
    # other sources moved on to the newer data
    assert len(_current(two_runs["home"], "penalties", "jtj")) > 0


def test_one_bad_record_among_many_publishes_everything_but_that_record(two_runs):
    # records first sent after run 1 arrive with a bad USCC in run 2 (older ones keep their good version)
    bad = {t["record_id"] for t in two_runs["scj_bad"]} - two_runs["scj_before"]
    assert bad
    scj = _current(two_runs["home"], "penalties", "scj")
    assert not bad & scj
    con = duckdb.connect(str(two_runs["home"] / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        held = con.execute("SELECT count(*) FROM quality.batches WHERE department = 'scj' AND held").fetchone()[0]
        q = {
            r
            for (r,) in con.execute(
                "SELECT record_id FROM quality.violations WHERE department = 'scj' "
                "AND rule_id = 'PENALTIES-USCC-CF_XDR_SHXYM'"
            ).fetchall()
        }
    finally:
        con.close()
    assert held == 0 and bad <= q
    assert len(scj) > len(two_runs["scj_before"])  # everything else from the new batch is in


def _full_files(home, version: str) -> dict[str, dict[str, str]]:
    """feed -> full.* file -> sha256, of one published version."""
    out = {}
    for manifest in sorted((home / "exports").glob(f"*/{version}/manifest.json")):
        m = json.loads(manifest.read_text(encoding="utf-8"))
        out[m["feed"]] = {e["name"]: e["sha256"] for e in m["files"] if e["name"].startswith("full.")}
    return out


def test_a_night_staged_by_its_new_fetches_publishes_what_a_full_rebuild_publishes(two_runs, sim_meta, tmp_path):
    """Issue 10 §5: the second night staged only what it fetched (a held batch and a quarantined
    record among them); a replay of the same landing, everything rebuilt, publishes the same bytes."""
    second = two_runs["second"]
    assert {ds: m["staging"] for ds, m in second.staged.items()}["penalties"] == "increment"
    home = tmp_path / "home"
    shutil.copytree(two_runs["home"], home, symlinks=True)
    rebuilt = run_pipeline(str(home), None, _end(sim_meta).date(), replay=True)
    assert rebuilt.published and {m["staging"] for m in rebuilt.staged.values()} == {"staged"}
    assert {ds: m["quarantined"] for ds, m in rebuilt.staged.items()} == {
        ds: m["quarantined"] for ds, m in second.staged.items()
    }
    full, incremental = _full_files(home, rebuilt.version), _full_files(home, second.version)
    assert full == incremental and full


def test_a_source_staler_than_policy_blocks_publication(pipeline_run, tmp_path):
    """A department down for eight days: nothing new is published, the failure is recorded."""
    import shutil

    src = pipeline_run["home"]
    for d in ("raw", "keys", "exports"):
        shutil.copytree(src / d, tmp_path / d)
    state = SourceDir(tmp_path / "raw", "jtj", "penalties")
    st = state.state()
    eight_days_ago = datetime.now(timezone.utc) - timedelta(days=8)
    st.update(
        last_success=eight_days_ago.isoformat(timespec="seconds"),
        last_status="unavailable",
        last_error_en="department jtj unavailable",
    )
    write_json_atomic(state.state_path, st)
    before = json.loads((tmp_path / "exports" / "blacklist" / "versions.json").read_text(encoding="utf-8"))
    summary = run_pipeline(str(tmp_path), None, pipeline_run["as_of"], replay=True)
    assert summary.ok and not summary.published
    assert exit_code(summary) == 1
    assert any(r["assertion"] == "source_staleness" and "jtj/penalties" in r["message"] for r in summary.reasons)
    after = json.loads((tmp_path / "exports" / "blacklist" / "versions.json").read_text(encoding="utf-8"))
    assert after["last_successful"] == before["last_successful"]
    assert after["items"][0]["result"] == "failure"
    # the Dagster run shows the same reason on the blocking check, and the feeds never ran
    import dagster as dg

    from safecredit import config

    instance = dg.DagsterInstance.from_config(str(config.paths(str(tmp_path)).dagster_home))
    try:
        evals = [
            e.get_dagster_event().event_specific_data
            for e in instance.all_logs(summary.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        failed = [e for e in evals if not e.passed and e.blocking]
        assert {e.check_name for e in failed} == {"sources_fresh"}
        assert any("jtj/penalties" in (e.description or "") for e in failed)
        made = instance.all_logs(summary.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        assert made and all(e.get_dagster_event().asset_key.path[0] != "feeds" for e in made)
    finally:
        instance.dispose()


def test_a_killed_run_does_not_block_the_next(tmp_path, clean_simulator, sim_meta):
    """SIGKILL a `safecredit run` while it holds the warehouse pool slot; the next run completes."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    clean_simulator.write_sources(tmp_path / "sources.yaml")
    bin_ = Path(sys.executable).parent / "safecredit"
    args = [str(bin_), "run", "--home", str(tmp_path), "--as-of", sim_meta["end"]]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    deadline = time.monotonic() + 180
    while not warehouse.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # bounded poll for the first warehouse step, which holds the pool slot
    assert warehouse.exists(), "the run never reached a warehouse step"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Published version" in again.stdout
