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
    r = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
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
    assert {"ingest", "staged", "subjects", "rules", "publish"} <= set(groups)
    assert "landing_penalties" in groups["ingest"] and "published_feeds" in groups["publish"]
    for key in graph.get_all_asset_keys():
        name = key.to_user_string()
        if not name.startswith("landing_"):
            assert graph.get(key).pools == {"warehouse"}, name
    schedule = defs.resolve_schedule_def("nightly_full_run")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "Asia/Shanghai"


def test_dagster_asset_materialize_from_the_command_line(pipeline_run, tmp_path):
    """`dagster asset materialize` (multiprocess executor: the asset and its two checks run in
    parallel processes that queue on the warehouse lock) stages a dataset from the raw landing."""
    import shutil

    import duckdb

    shutil.copytree(pipeline_run["home"] / "raw", tmp_path / "raw")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "SAFECREDIT_HOME": str(tmp_path)}
    (tmp_path / "dagster").mkdir()
    dagster = Path(sys.executable).parent / "dagster"
    r = subprocess.run([str(dagster), "asset", "materialize", "-m", "pipelines.definitions",
                        "--select", "staged_penalties"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    con = duckdb.connect(str(tmp_path / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM staged.penalties").fetchone()[0] > 0
    finally:
        con.close()
