"""Benchmark (not a test): publication of synthetic feeds, rows streamed from a DuckDB warehouse.

    python -m bench.publish [--rows 2000000] [--nested-rows 200000] [--change 0.01] [--arrow]
    python -m bench.publish --warehouse HOME/warehouse/warehouse.duckdb [--previous DIR]

Builds a `blacklist`-shaped feed of `--rows` rows (25 columns: text, dates, Chinese names) and a
`credit_scores`-shaped feed of `--nested-rows` rows (lists and lists of structs with decimals) in
an in-memory DuckDB, then publishes twice into a fresh exports root: version 1 (everything ADD),
then version 2 with `--change` of the rows modified, as many deleted and as many added. Reports
seconds, CPU seconds and rows/s per run; run it under `/usr/bin/time -v` for the peak RSS.
`--arrow` hands the publisher pyarrow tables (materialised first) instead of DuckDB relations.
`--warehouse` publishes a home's feeds instead (`lean.feed_queries`, as the `published_feeds` asset,
from a copy of its warehouse opened read-only) into an empty exports root; with `--previous DIR`
(`DIR/<feed>/full.parquet`: a version's files copied out of a home's exports) it first publishes
those files into another root and then the warehouse on top of them, so that the delta has
something to compare (a city's full run, then its +30 days night). Writes JSON to
bench/out/publish-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent

BLACKLIST_SQL = """
SELECT printf('E%012d', i) AS entry_id,
       CASE WHEN i % 3 = 0 THEN 'person' ELSE 'unit' END AS subject_type,
       md5(i::VARCHAR) AS subject_id,
       CASE WHEN i % 3 = 0 THEN '**************' || lpad((i % 10000)::VARCHAR, 4, '0')
            ELSE printf('91110105MA0%06dX', i % 1000000) END AS subject_code,
       '江城市第' || i::VARCHAR || '建筑工程有限公司' || CASE WHEN i % {v} = 0 THEN '（改）' ELSE '' END AS name,
       CASE WHEN i % 3 = 0 THEN 'principal' ELSE 'penalised unit' END AS role,
       'A' || (1 + i % 5)::VARCHAR AS ground,
       '发生较大及以上生产安全责任事故' AS ground_name,
       '应急管理部令第11号' AS basis,
       '《中华人民共和国安全生产法》第一百一十四条第一款' AS penalty_basis,
       '江应急罚〔2026〕' || (i % 9973)::VARCHAR || '号' AS decision_no,
       '江城市应急管理局' AS authority,
       '11440100MB2C' || lpad((i % 999999)::VARCHAR, 6, '0') AS authority_code,
       DATE '2024-01-01' + (i % 700)::INTEGER AS decision_date,
       DATE '2024-02-01' + (i % 700)::INTEGER AS start_date,
       DATE '2027-02-01' + (i % 700)::INTEGER AS end_date,
       CASE WHEN i % 7 = 0 THEN 'repaired' ELSE 'listed' END AS status,
       DATE '2024-02-01' + (i % 700)::INTEGER AS status_date,
       CASE WHEN i % 7 = 0 THEN DATE '2025-03-01' END AS repair_date,
       NULL::DATE AS objection_date,
       NULL::DATE AS revoked_date,
       'yjj' AS source_department,
       'R' || i::VARCHAR AS source_record_id,
       CASE WHEN i % 5 = 0 THEN 'SG' || i::VARCHAR END AS trigger_accident,
       '2026.1' AS policy_version
FROM range({lo}, {hi}) t(i)
"""

CREDIT_SQL = """
SELECT printf('91110105MA%08dX', i) AS uscc,
       '江城市第' || i::VARCHAR || '化工有限公司' AS name,
       ['一级', '二级', '三级', '无'][1 + i % 4] AS standardization,
       (60 + (i % 4000) / 100)::DECIMAL(8, 2) + CASE WHEN i % {v} = 0 THEN 1 ELSE 0 END AS score,
       CASE WHEN i % 4 = 0 THEN 'A' ELSE 'B' END AS grade,
       i % 11 = 0 AS forced_d,
       CASE WHEN i % 11 = 0 THEN ['LISTED'] ELSE []::VARCHAR[] END AS forced_reasons,
       i % 2 = 0 AS incentive_eligible,
       [{{'condition': 'no_accident', 'label': '三年内无事故', 'status': 'met'}},
        {{'condition': 'standardization', 'label': '标准化达标', 'status': 'not_checked'}}] AS incentive_conditions,
       [{{'component': 'base', 'kind': 'base', 'label': '基础分', 'points': 80.00::DECIMAL(8, 2),
          'event_date': NULL::DATE, 'source_dataset': NULL, 'source_department': NULL,
          'source_record_id': NULL, 'decision_no_or_accident_no': NULL}},
        {{'component': 'penalty', 'kind': 'deduction', 'label': '行政处罚', 'points': -5.50::DECIMAL(8, 2),
          'event_date': DATE '2025-06-01' + (i % 300)::INTEGER, 'source_dataset': 'penalties',
          'source_department': 'yjj', 'source_record_id': 'R' || i::VARCHAR,
          'decision_no_or_accident_no': '江应急罚〔2025〕' || (i % 977)::VARCHAR || '号'}}] AS components,
       2::BIGINT AS component_count,
       '2026.1' AS policy_version
FROM range({lo}, {hi}) t(i)
"""


def _cpu_seconds() -> float:
    """User + system time of this process, all threads (DuckDB's included): on a shared machine
    the wall clock measures the neighbours too."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _feeds(con: duckdb.DuckDBPyConnection, rows: int, nested: int, change: float, version: int, arrow: bool):
    """Version 1: ids 0..n-1. Version 2: the first `change` share deleted, as many added past the
    end, and every 1/change-th row modified (the `{v}` modulus)."""
    out = {}
    for feed, sql, n in (("blacklist", BLACKLIST_SQL, rows), ("credit_scores", CREDIT_SQL, nested)):
        if not n:
            continue
        k = int(n * change) if version == 2 else 0
        modulus = max(int(1 / change), 1) if version == 2 and change else 2**62
        # materialised first: the warehouse holds the rules' results, the publication only reads them
        con.execute(f"CREATE OR REPLACE TABLE {feed}_v{version} AS {sql.format(lo=k, hi=n + k, v=modulus)}")
        rel = con.sql(f"SELECT * FROM {feed}_v{version}")
        out[feed] = rel.to_arrow_table() if arrow else rel
    return out


def _timed(pub, feeds: dict, generated_at: datetime, label: str) -> dict:
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = pub.publish(feeds, as_of=date(2026, 11, 23), policy_version="2026.1", generated_at=generated_at)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    total = sum(m["row_count"] for m in result.feeds.values())
    run = {
        "run": label,
        "version": result.version,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "rows": total,
        "rows_per_s": round(total / seconds),
        "rows_per_cpu_s": round(total / cpu),
        "delta": {f: m["delta"] for f, m in result.feeds.items()},
        "bytes": {f: {e["name"]: e["size"] for e in m["files"]} for f, m in result.feeds.items()},
    }
    changed = {k: sum(d[k] for d in run["delta"].values()) for k in ("ADD", "MOD", "DEL")}
    print(
        f"{label}: {total:,} rows in {seconds:.1f} s = {total / seconds:,.0f} rows/s "
        f"({cpu:.1f} CPU s = {total / cpu:,.0f} rows per CPU s); delta {changed}"
    )
    return run


def _warehouse_runs(args, work: Path) -> list[dict]:
    """A home's feeds into an empty exports root, and (`--previous`) on top of an earlier version."""
    from safecredit.publish import Publisher
    from safecredit.publish.lean import feed_queries

    con = duckdb.connect(args.warehouse, read_only=True)
    queries = feed_queries(con)
    runs = []
    stamp = datetime(2026, 11, 23, 2, tzinfo=timezone.utc)
    if args.previous:
        onto = Publisher(work / "onto", work / "keys", max_shrink=None)
        files = {f: Path(args.previous) / f / "full.parquet" for f in queries}
        earlier = {f: con.sql(f"SELECT * FROM read_parquet('{p}')") for f, p in files.items() if p.exists()}
        runs.append(_timed(onto, earlier, stamp, "previous version (its full.parquet files)"))
    empty = Publisher(work / "exports", work / "keys", max_shrink=None)
    runs.append(_timed(empty, {f: con.sql(q) for f, q in queries.items()}, stamp, "warehouse into an empty root"))
    if args.previous:
        feeds = {f: con.sql(q) for f, q in queries.items()}
        runs.append(_timed(onto, feeds, stamp.replace(day=24), "warehouse onto the previous version"))
    return runs


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="blacklist rows")
    ap.add_argument("--nested-rows", type=int, default=200_000, help="credit_scores rows (nested columns)")
    ap.add_argument("--change", type=float, default=0.01)
    ap.add_argument("--arrow", action="store_true", help="hand over pyarrow tables, not DuckDB relations")
    ap.add_argument("--keep", action="store_true", help="keep the exports root (printed)")
    ap.add_argument("--warehouse", help="publish this warehouse's feeds (a copy: opened read-only)")
    ap.add_argument("--previous", help="with --warehouse: a version's files, DIR/<feed>/full.parquet")
    args = ap.parse_args(argv)

    from safecredit.publish import Publisher

    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    pub = Publisher(work / "exports", work / "keys", max_shrink=None)
    con = duckdb.connect()
    report = {
        "rows": args.rows,
        "nested_rows": args.nested_rows,
        "change": args.change,
        "arrow": args.arrow,
        "runs": [],
    }
    if args.warehouse:
        report = {"warehouse": args.warehouse, "previous": args.previous, "runs": _warehouse_runs(args, work)}
    for version in (1, 2) if not args.warehouse else ():
        feeds = _feeds(con, args.rows, args.nested_rows, args.change, version, args.arrow)
        stamp = datetime(2026, 11, 22 + version, 2, tzinfo=timezone.utc)
        report["runs"].append(_timed(pub, feeds, stamp, f"v{version}"))
        for feed in feeds:  # the source tables of this version are no longer needed
            con.execute(f"DROP TABLE IF EXISTS {feed}_v{version}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"publish-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"report: {path}")
    if args.keep:
        print(f"exports: {work / 'exports'}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
