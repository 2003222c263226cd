"""Ingestion partitions: a day re-run alone is idempotent, a range backfills, replay reproduces staging."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from assets.ingest import landing_assets
from assets.resources import DepartmentFeedsResource, ExchangeResource
from assets.staged import staged_assets

STAGED_COLUMNS = "* EXCLUDE (landed_at)"


def _penalties_between(sim_data, first: date, last: date, depts) -> set[tuple]:
    con = duckdb.connect()
    out = set()
    for d in depts:
        rows = con.execute(
            f"SELECT record_id FROM read_parquet('{sim_data}/{d}/penalties/*.parquet') "
            "WHERE CAST(timezone('Asia/Shanghai', updated_at::TIMESTAMPTZ) AS DATE) BETWEEN ? AND ?",
            [first, last],
        ).fetchall()
        out |= {(d, r) for (r,) in rows}
    return out


@pytest.fixture(scope="module")
def part_home(tmp_path_factory, clean_simulator):
    home = tmp_path_factory.mktemp("parthome")
    clean_simulator.write_sources(home / "sources.yaml")
    return home


def _materialize(home, keys, instance, tags=None, partition_key=None):
    staged = [a for a in staged_assets if a.key.to_user_string() == "staged/penalties"]
    return dg.materialize(
        [*landing_assets, *staged],
        selection=["landing/penalties", "staged/penalties"],
        partition_key=partition_key,
        instance=instance,
        tags=tags or {},
        resources={
            "exchange": ExchangeResource(home=str(home), as_of="2026-11-22"),
            "departments": DepartmentFeedsResource(),
        },
    )


def _staged(home) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT {STAGED_COLUMNS} FROM staged.penalties ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_backfill_of_three_days_lands_exactly_those_days(part_home, sim_data, sim_meta):
    end = date.fromisoformat(sim_meta["end"])
    days = [end - timedelta(days=i) for i in (3, 2, 1)]
    with dg.instance_for_test() as instance:
        for d in days:  # a backfill: one run per partition
            assert _materialize(part_home, None, instance, partition_key=d.isoformat()).success
    depts = ["yjj", "zjj", "jtj", "scj"]
    want = _penalties_between(sim_data, days[0], days[-1], depts)
    got = {(r[0], r[1]) for r in _staged(part_home)}
    assert want, "the generated data has penalties on those days"
    assert got == want


def test_rerunning_a_partition_changes_nothing(part_home, sim_meta):
    before = _staged(part_home)
    day = (date.fromisoformat(sim_meta["end"]) - timedelta(days=2)).isoformat()
    with dg.instance_for_test() as instance:
        assert _materialize(part_home, None, instance, partition_key=day).success
    assert _staged(part_home) == before


def test_range_backfill_in_one_run(tmp_path, clean_simulator, sim_data, sim_meta):
    clean_simulator.write_sources(tmp_path / "sources.yaml")
    end = date.fromisoformat(sim_meta["end"])
    first, last = end - timedelta(days=30), end - timedelta(days=1)
    with dg.instance_for_test() as instance:
        r = _materialize(
            tmp_path,
            None,
            instance,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        assert r.success
    want = _penalties_between(sim_data, first, last, ["yjj", "zjj", "jtj", "scj"])
    assert {(x[0], x[1]) for x in _staged(tmp_path)} == want


def test_dropping_the_warehouse_and_replaying_reproduces_staged_tables(pipeline_run, tmp_path):
    from pipelines.runner import run_pipeline

    src = pipeline_run["home"]
    shutil.copytree(src / "raw", tmp_path / "raw")
    shutil.copytree(src / "keys", tmp_path / "keys")
    # the sources file stays with the home: each department's kind chooses its list regime
    shutil.copy(pipeline_run["sources"], tmp_path / "sources.yaml")
    summary = run_pipeline(str(tmp_path), None, pipeline_run["as_of"], replay=True)
    assert summary.ok and summary.published
    a = duckdb.connect(str(src / "warehouse" / "warehouse.duckdb"), read_only=True)
    b = duckdb.connect(str(tmp_path / "warehouse" / "warehouse.duckdb"), read_only=True)
    tables = [
        t
        for (t,) in a.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "WHERE schema_name IN ('staged', 'quality', 'subjects', 'rules') ORDER BY 1"
        ).fetchall()
    ]
    assert "staged.penalties" in tables and "rules.blacklist" in tables
    for t in tables:
        q = f"SELECT * FROM {t} ORDER BY ALL"
        assert a.execute(q).fetchall() == b.execute(q).fetchall(), t
