"""The code location loads through workspace.yaml exactly as `dagster dev` loads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_workspace_yaml_loads_the_code_location(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "SAFECREDIT_HOME": str(tmp_path)}
    dagster = Path(sys.executable).parent / "dagster"
    r = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Validation successful for code location pipelines.definitions:defs" in out


def test_definitions_group_assets_by_stage_and_share_one_writer_pool():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        groups.setdefault(node.group_name, set()).add(key.to_user_string())
    assert set(groups) == {"landing", "staged", "subjects", "rules", "feeds"}
    assert "landing/penalties" in groups["landing"] and "feeds/blacklist" in groups["feeds"]
    for key in graph.get_all_asset_keys():
        assert key.path[0] == graph.get(key).group_name  # keys prefixed by stage
        if key.path[0] != "landing":
            assert graph.get(key).pools == {"warehouse"}, key
    schedule = defs.resolve_schedule_def("nightly_full_run")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "Asia/Shanghai"


def test_lineage_per_table_and_blocking_gate():
    """Each feed has its own rule table upstream, which names the staged datasets it reads; the
    rules and the publication are one step each (no subsetting), and the gate's checks block."""
    import dagster as dg

    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    up = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()
    }
    assert up["feeds/blacklist"] == {"rules/blacklist"}
    # the restrictions binding on the run's date are the restriction timeline at that date
    assert up["rules/restrictions"] == {"subjects/resolved", "rules/restriction_timeline"}
    assert up["rules/restriction_timeline"] == {"subjects/resolved", "staged/accidents", "rules/listing_timeline"}
    assert up["rules/intermediary_ratings"] >= {"staged/intermediary_ratings", "rules/blacklist"}
    assert up["rules/penalties_public"] == {"subjects/resolved", "staged/credit_actions"}
    assert up["subjects/resolved"] == {
        f"staged/{d}"
        for d in (
            "enterprises",
            "penalties",
            "accidents",
            "intermediary_ratings",
            "credit_actions",
            "listing_decisions",
        )
    }
    rules = dg.AssetKey(["rules", "blacklist"])
    assert not defs.resolve_assets_def(rules).can_subset
    assert not defs.resolve_assets_def(dg.AssetKey(["feeds", "blacklist"])).can_subset
    specs = [s for key in graph.asset_check_keys for s in [graph.get_check_spec(key)]]
    gate = {s.name: s for s in specs if s.asset_key == rules}
    assert {"unique_ids", "no_full_id_numbers", "shrink_within_policy", "sources_fresh"} <= set(gate)
    assert all(gate[n].blocking for n in ("unique_ids", "no_full_id_numbers", "shrink_within_policy", "sources_fresh"))
    contract = [s for s in specs if s.asset_key == dg.AssetKey(["staged", "penalties"]) and s.name == "contract_suite"]
    assert contract and contract[0].blocking


def test_dagster_asset_materialize_from_the_command_line(pipeline_run, tmp_path):
    """`dagster asset materialize` (multiprocess executor: the asset and its two checks run in
    parallel processes that queue on the warehouse lock) stages a dataset from the raw landing."""
    import shutil

    import duckdb

    shutil.copytree(pipeline_run["home"] / "raw", tmp_path / "raw")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "SAFECREDIT_HOME": str(tmp_path)}
    (tmp_path / "dagster").mkdir()
    dagster = Path(sys.executable).parent / "dagster"
    r = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "pipelines.definitions", "--select", "staged/penalties"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    con = duckdb.connect(str(tmp_path / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM staged.penalties").fetchone()[0] > 0
    finally:
        con.close()
