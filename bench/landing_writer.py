"""A department landing written straight from generated data, in the connector's own format.

The national benchmark starts where a first national pull leaves the exchange: every department's
records landed under `<raw>/<dept>/<dataset>/<fetch_id>/` as `safecredit.landing` writes them —
JSON pages (`pages/<n>.json`, each `{"items": [...]}` of 1,000 records as the simulator serves
them: every value a string, "" for none, a revoke carrying only the envelope) or a CSV department's
day files (`days/<D>.csv`), with a manifest. Only the HTTP round trips are skipped (measured
elsewhere: `bench.ingest`, `bench.city`). DuckDB renders every record; Python writes whole page
bodies and renames day files.

A department's history lands as several fetches of about `fetch_rows` records each, as the
daily-partitioned backfill of a first national load leaves it (and as a real first pull of a big
department is split), so a fetch's pages fit in memory when `load_raw` reads them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from safecredit.contracts import ENVELOPE
from safecredit.landing import MANIFEST

PAGE_ROWS = 1000
CHUNK_PAGES = 100


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _parts(data_dir: Path, dept: str, dataset: str) -> list[str]:
    return sorted(str(p) for p in (data_dir / dept / dataset).glob("*.parquet"))


def _fields(con: duckdb.DuckDBPyConnection, files: list[str]) -> list[str]:
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({files!r})").fetchall()]
    return [c for c in cols if c not in ENVELOPE]


def _fetch_id(n: int) -> str:
    return f"20261122T{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}000000Z"


def _manifest(dept: str, dataset: str, transport: str, fetch_id: str, rows: int, **extra) -> dict:
    return {
        "department": dept,
        "dataset": dataset,
        "transport": transport,
        "fetch_id": fetch_id,
        "rows": rows,
        "duplicates": 0,
        "out_of_order": 0,
        "params": {},
        "requests": 0,
        "retries": 0,
        "throttled": 0,
        "finished_at": "2026-11-22T23:00:00Z",
        **extra,
    }


def _offsets(con, files: list[str]) -> list[tuple[str, int, int]]:
    """(file, first position, end position) of each part: the Parquet footers, no scan."""
    out, n = [], 0
    for f in files:
        rows = con.execute("SELECT num_rows FROM parquet_file_metadata(?)", [f]).fetchall()[0][0]
        out.append((f, n, n + rows))
        n += rows
    return out


def _numbered(parts: list[tuple[str, int, int]], fields: list[str], lo: int = 0, hi: int | None = None) -> str:
    """The records at positions [lo, hi) with their position `n` (file order, no sort): only the
    parts that hold them are read."""
    chosen = [(f, a) for f, a, b in parts if b > lo and (hi is None or a < hi)]
    files = [f for f, _ in chosen]
    case = "CASE filename " + " ".join(f"WHEN '{f}' THEN {a}" for f, a in chosen) + " END"
    cols = ", ".join(_ident(c) for c in ["record_id", "updated_at", "op", *fields])
    return (
        f"SELECT * FROM (SELECT CAST({case} + file_row_number AS BIGINT) AS n, {cols} "
        f"FROM read_parquet({files!r}, filename = true, file_row_number = true, union_by_name = true)) "
        f"WHERE n >= {lo}" + (f" AND n < {hi}" if hi is not None else "")
    )


def _json_fetches(con, parts, fields: list[str], fetch_dir, fetch_rows: int) -> list[dict]:
    """Pages of PAGE_ROWS items; a fetch every `fetch_rows` records (a multiple of PAGE_ROWS)."""
    per_fetch = max(PAGE_ROWS, fetch_rows // PAGE_ROWS * PAGE_ROWS)
    values = ", ".join(f"{_ident(c)}: coalesce(CAST({_ident(c)} AS VARCHAR), '')" for c in fields)
    item = (
        "CASE WHEN op = 'revoke' THEN to_json({record_id: record_id, updated_at: updated_at, op: op}) "
        f"ELSE to_json({{record_id: record_id, updated_at: updated_at, op: coalesce(nullif(op, ''), 'upsert'), "
        f"{values}}}) END"
    )
    out, total = [], parts[-1][2]
    for lo in range(0, total, per_fetch):
        hi = min(lo + per_fetch, total)
        work = fetch_dir()
        (work / "pages").mkdir(parents=True)
        # a query per CHUNK_PAGES pages: the page bodies of a whole fetch would not fit in memory
        for a in range(lo, hi, CHUNK_PAGES * PAGE_ROWS):
            b = min(a + CHUNK_PAGES * PAGE_ROWS, hi)
            reader = con.sql(
                f"SELECT n // {PAGE_ROWS} - {lo // PAGE_ROWS} AS page, "
                f"'{{\"items\": [' || string_agg(({item})::VARCHAR, ', ' ORDER BY n) || ']}}' AS body "
                f"FROM ({_numbered(parts, fields, a, b)}) GROUP BY page ORDER BY page"
            ).to_arrow_reader(16)
            for batch in reader:
                for page, body in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                    (work / "pages" / f"{page:06d}.json").write_text(body, encoding="utf-8")
        out.append({"dir": work, "rows": hi - lo})
    return out


def _csv_fetches(con, parts, fields: list[str], fetch_dir, tmp: Path) -> list[dict]:
    """One fetch of day files, a record on the day of its `updated_at` (Shanghai time, as stamped)."""
    work = fetch_dir()
    (work / "days").mkdir(parents=True)
    cols = ", ".join(_ident(c) for c in ["record_id", "updated_at", "op", *fields])
    shutil.rmtree(tmp, ignore_errors=True)
    src = _numbered(parts, fields)
    con.execute(
        f"COPY (SELECT left(updated_at, 10) AS day, {cols} FROM ({src}) ORDER BY n) TO '{tmp}' "
        "(FORMAT csv, HEADER true, PARTITION_BY (day), WRITE_PARTITION_COLUMNS false)"
    )
    per_day = dict(con.execute(f"SELECT left(updated_at, 10), count(*) FROM ({src}) GROUP BY ALL").fetchall())
    days = []
    for day, rows in sorted(per_day.items()):
        (file,) = (tmp / f"day={day}").glob("*.csv")
        shutil.move(str(file), work / "days" / f"{day}.csv")
        days.append({"date": day, "rows": rows, "charset": "utf-8"})
    shutil.rmtree(tmp, ignore_errors=True)
    return [{"dir": work, "rows": sum(d["rows"] for d in days), "days": days}]


def write_landing(con, data_dir: Path, raw_root: Path, departments: list[dict], fetch_rows: int) -> dict:
    """Land every (department, dataset) of the generated data; returns {dataset: rows landed}."""
    landed: dict[str, int] = {}
    serial = 0
    for dept in departments:
        transport = dept["transports"][0]
        for dataset in dept["datasets"]:
            files = _parts(data_dir, dept["id"], dataset)
            if not files:
                continue
            fields = _fields(con, files)
            parts = _offsets(con, files)
            total = parts[-1][2]
            root = raw_root / dept["id"] / dataset

            def fetch_dir(root=root) -> Path:  # the next fetch's directory (ids in landing order)
                nonlocal serial
                serial += 1
                return root / _fetch_id(serial)

            if transport == "json":
                fetches = _json_fetches(con, parts, fields, fetch_dir, fetch_rows)
            else:
                fetches = _csv_fetches(con, parts, fields, fetch_dir, raw_root / ".csv-tmp")
            for f in fetches:
                extra = {"days": f["days"]} if "days" in f else {}
                doc = _manifest(dept["id"], dataset, transport, f["dir"].name, f["rows"], **extra)
                (f["dir"] / MANIFEST).write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
            landed[dataset] = landed.get(dataset, 0) + total
    return landed
