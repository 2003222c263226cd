"""Landing → DuckDB: raw versions, typed staged history, current state and quarantine.

Tables (schema.table):
    raw.<dataset>           every landed version, strings as received, with provenance
    quality.violations      every rule a version broke (both severities), bilingual message
    quality.quarantine      the versions held out, with their reasons
    staged.<dataset>        typed, normalised history of every version that passed
    staged.<dataset>_current  the version in force per (department, record_id); revoked ones dropped

Rebuilt from the raw landing on every run, so dropping the warehouse and replaying reproduces
identical staged tables.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from safecredit.contracts import (
    Contract,
    _q,
    load_contract,
    typed_select,
    violations_select,
)
from safecredit.raw_load import load_raw  # noqa: F401 — staging's first step, imported from here by callers

# Rows typed at once, and rows of a record-id range sorted at once: the typed table holds every
# field twice (typed and `<code>__raw`), ≈ 3 KB a row, so a chunk stays within a few GB instead of
# the whole dataset spilling tens of GB.
CHUNK_ROWS = 1_000_000


def stage(
    con: duckdb.DuckDBPyConnection, dataset: str, hold_back: dict | None = None, *, chunk_rows: int = CHUNK_ROWS
) -> dict:
    """Type, validate and stage one dataset; returns counts for reporting.

    `hold_back` is the policy's thresholds (exchange.md §1 defaults): a batch — one fetch of one
    department's dataset — is held back whole when a required field is missing or renamed, or when
    more than `quarantine_rate` of its records and at least `quarantine_min_rows` are quarantined.
    Per-source overrides live under `sources: {<dept>: {...}}`. Held batches stay in the landing and
    are re-assessed on every run, so `replay` after a fix stages them.

    Staged one department at a time, a large department typed in ranges of about `chunk_rows` raw
    rows and staged in ranges of its record ids of about as many (`_stage_department`): everything
    that compares versions — batch hold-back, dedup of a version landed twice, current state — stays
    within a department and a record id, and each range is appended in the final order, so the
    tables are the same as when staged in one go.
    """
    contract = load_contract(dataset)
    hold_back = hold_back or {}
    for schema in ("staged", "quality"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute("""CREATE TABLE IF NOT EXISTS quality.violations (
        department VARCHAR, dataset VARCHAR, record_id VARCHAR, updated_at VARCHAR, fetch_id VARCHAR,
        seq BIGINT, rule_id VARCHAR, severity VARCHAR, field VARCHAR, value VARCHAR,
        message_zh VARCHAR, message_en VARCHAR)""")
    con.execute("DELETE FROM quality.violations WHERE dataset = ?", [dataset])
    _create_batches(con, dataset)
    _typed(con, contract, "false", [])
    _verdicts(con, dataset, "")
    con.execute(f"CREATE OR REPLACE TABLE staged.{dataset} AS {_staged_select(contract, f'typed_{dataset}')}")
    depts = con.execute(
        f"SELECT department, count(*), min(rowid), max(rowid) FROM raw.{dataset} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    for dept, n, first, last in depts:
        _stage_department(con, contract, hold_back, dept, n, (first, last), chunk_rows)
    con.execute(f"DROP TABLE typed_{dataset}")
    con.execute("DROP TABLE _verdicts")
    con.execute(f"""
        CREATE OR REPLACE VIEW staged.{dataset}_current AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY department, record_id
                                         ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) AS rn
            FROM staged.{dataset}) WHERE rn = 1 AND op = 'upsert'""")
    return staged_counts(con, contract)


def staged_counts(con: duckdb.DuckDBPyConnection, contract: Contract) -> dict:
    """What a staging reports: versions landed, staged and in force, quarantined, held-back batches."""
    dataset = contract.dataset
    raw_n = con.execute(f"SELECT count(*) FROM raw.{dataset}").fetchone()[0]
    staged_n = con.execute(f"SELECT count(*) FROM staged.{dataset}").fetchone()[0]
    current_n = con.execute(f"SELECT count(*) FROM staged.{dataset}_current").fetchone()[0]
    quarantined = con.execute(
        "SELECT count(DISTINCT (department, fetch_id, seq)) FROM quality.violations "
        "WHERE dataset = ? AND severity = 'quarantine'",
        [dataset],
    ).fetchone()[0]
    held = [
        dict(zip(("department", "fetch_id", "rows", "reason_zh", "reason_en"), r))
        for r in con.execute(
            "SELECT department, fetch_id, rows, reason_zh, reason_en FROM quality.batches "
            "WHERE dataset = ? AND held ORDER BY department, fetch_id",
            [dataset],
        ).fetchall()
    ]
    unknown = sorted(
        {
            f
            for (fs,) in con.execute(
                "SELECT unknown_fields FROM quality.batches WHERE dataset = ?", [dataset]
            ).fetchall()
            for f in fs
        }
    )
    return {
        "dataset": dataset,
        "raw": raw_n,
        "staged_versions": staged_n,
        "current": current_n,
        "quarantined": quarantined,
        "held_back": held,
        "unknown_fields": unknown,
        "contract_version": contract.version,
    }


def _stage_department(con, contract: Contract, hold_back: dict, dept: str, rows: int, rowids: tuple, chunk_rows: int):
    """Violations, batches and staged versions of one department; each raw row is read and typed once.

    A department of more than `chunk_rows` rows is typed in ranges of raw rowids (raw is written in
    department order, so a range's row groups are found by their zone maps, no scan): each range's
    violations are kept and its final columns written to a scratch table with the number of the
    record-id range it belongs to (`_bounds`), in that order. Once the department's batches are
    judged, each record-id range is deduplicated and appended in the final order."""
    ds = contract.dataset
    in_dept = f"department = {_q(dept)}"
    chunked = rows > chunk_rows
    bounds = _bounds(con, ds, in_dept, rows, chunk_rows) if chunked else []
    first, last = rowids
    ranges = (
        [
            f"{in_dept} AND rowid BETWEEN {a} AND {min(a + chunk_rows, last + 1) - 1}"
            for a in range(first, last + 1, chunk_rows)
        ]
        if chunked
        else [in_dept]
    )
    scratch = f"staged._chunked_{ds}"
    final = (
        f"department, record_id, updated_at, op, fetch_id, seq, landed_at, {_field_cols(contract)}, extra_fields, chunk"
    )
    if chunked:
        con.execute(f"CREATE OR REPLACE TABLE {scratch} AS SELECT {final} FROM typed_{ds} WHERE false")
    # violations of the whole department first: its batches are judged on them
    con.execute("CREATE OR REPLACE TEMP TABLE _violations AS SELECT * FROM quality.violations WHERE false")
    for where in ranges:
        _typed(con, contract, where, bounds)
        con.execute(f"INSERT INTO _violations {violations_select(contract, f'typed_{ds}')}")
        if chunked:  # sorted by record-id range: the zone maps of `chunk` find each range below
            con.execute(f"INSERT INTO {scratch} SELECT {final} FROM typed_{ds} ORDER BY chunk")
    if chunked:
        _typed(con, contract, "false", [])  # the last range's typed rows are in the scratch table
    con.execute("INSERT INTO quality.violations SELECT * FROM _violations ORDER BY fetch_id, seq, rule_id")
    con.execute("DROP TABLE _violations")
    _assess_batches(con, contract, hold_back, dept)
    _verdicts(con, ds, dept)
    for where in [f"t.chunk = {i}" for i in range(len(bounds) + 1)] if chunked else ["TRUE"]:
        con.execute(f"INSERT INTO staged.{ds} {_staged_select(contract, scratch if chunked else f'typed_{ds}', where)}")
    if chunked:
        con.execute(f"DROP TABLE {scratch}")


# rows sampled for the record-id ranges: exact ranges need no exact quantiles, and a sample spares
# normalising every record id of the department once more
_BOUNDS_SAMPLE = 200_000


def _bounds(con: duckdb.DuckDBPyConnection, ds: str, in_dept: str, rows: int, chunk_rows: int) -> list[str]:
    """Split points of the department's normalised record ids into ranges of about `chunk_rows`
    rows (the key staged rows are ordered and deduplicated by, so a range is staged on its own)."""
    k = -(-rows // max(1, chunk_rows))
    fractions = ", ".join(f"{i / k:.6f}" for i in range(1, k))
    # sampled from a subquery: USING SAMPLE on the table itself would sample before the WHERE
    sample = (
        f"SELECT record_id FROM (SELECT record_id FROM raw.{ds} WHERE {in_dept}) "
        f"USING SAMPLE reservoir({max(_BOUNDS_SAMPLE, 4 * k)} ROWS) REPEATABLE (42)"
    )
    found = con.execute(
        f"SELECT DISTINCT unnest(quantile_disc(sc_text(record_id), [{fractions}])) AS b FROM ({sample}) ORDER BY b"
    ).fetchall()
    return [b for (b,) in found if b is not None]


def _typed(con: duckdb.DuckDBPyConnection, contract: Contract, where: str, bounds: list[str]) -> None:
    """typed_<ds>: the raw rows matching `where`, typed, with `chunk`, the number of their record-id
    range (versions without a record id in the first)."""
    ds = contract.dataset
    chunk = " ".join(f"WHEN record_id < {_q(b)} THEN {i}" for i, b in enumerate(bounds))
    chunk = f"CASE WHEN record_id IS NULL THEN 0 {chunk} ELSE {len(bounds)} END" if bounds else "0"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE typed_{ds} AS SELECT *, {chunk} AS chunk FROM ("
        f"{typed_select(contract, f'(SELECT * FROM raw.{ds} WHERE {where})')})"
    )


def _field_cols(contract: Contract) -> str:
    return ", ".join(f.name for f in contract.fields)


def _verdicts(con: duckdb.DuckDBPyConnection, ds: str, dept: str) -> None:
    """_verdicts: each version of the department that broke a rule, quarantined or with its flags."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _verdicts AS
        SELECT department, fetch_id, seq, bool_or(severity = 'quarantine') AS held,
               list(DISTINCT rule_id ORDER BY rule_id) FILTER (WHERE severity = 'flag') AS flags
        FROM quality.violations WHERE dataset = {_q(ds)} AND department = {_q(dept)} GROUP BY ALL""")


def _staged_select(contract: Contract, table: str, where: str = "TRUE") -> str:
    """The versions of `table` (typed rows of one department) matching `where` (all, or one
    record-id range) that passed (not quarantined, batch not held), each version once — its first
    landing — in (department, record_id, updated_at, op) order. The first landing is picked on the
    narrow key columns and joined back by rowid: a window over the wide rows cost a third more."""
    ds = contract.dataset
    return f"""
        WITH keep AS (
            SELECT t.rowid AS r, coalesce(v.flags, []) AS flags
            FROM {table} t LEFT JOIN _verdicts v USING (department, fetch_id, seq)
            WHERE {where} AND NOT coalesce(v.held, false)
              AND (t.department, t.fetch_id) NOT IN (SELECT (department, fetch_id) FROM quality.batches
                                                     WHERE dataset = '{ds}' AND held)
            QUALIFY row_number() OVER (PARTITION BY t.department, t.record_id, t.updated_at, t.op
                                       ORDER BY t.fetch_id, t.seq) = 1)
        SELECT t.department, t.record_id, t.updated_at, t.op, t.fetch_id, t.seq,
               TRY_CAST(t.landed_at AS TIMESTAMPTZ) AS landed_at, {_field_cols(contract)}, k.flags, t.extra_fields
        FROM {table} t JOIN keep k ON t.rowid = k.r
        WHERE {where}
        ORDER BY t.department, t.record_id, t.updated_at, t.op"""


def _create_batches(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS quality.batches (
        department VARCHAR, dataset VARCHAR, fetch_id VARCHAR, rows BIGINT, upserts BIGINT,
        quarantined BIGINT, quarantine_rate DOUBLE, missing_required VARCHAR[], unknown_fields VARCHAR[],
        held BOOLEAN, reason_zh VARCHAR, reason_en VARCHAR)""")
    con.execute("DELETE FROM quality.batches WHERE dataset = ?", [dataset])


def _assess_batches(con: duckdb.DuckDBPyConnection, contract: Contract, hold_back: dict, dept: str) -> None:
    """quality.batches for the fetches of one department, held ones with their bilingual reason."""
    ds = contract.dataset
    in_dept = f"department = {_q(dept)}"
    missing = ", ".join(
        f"CASE WHEN count({c}) FILTER (WHERE lower(op) = 'upsert') = 0 THEN '{c}' END" for c in contract.required
    )
    con.execute(f"""
        INSERT INTO quality.batches
        WITH b AS (
            SELECT department, fetch_id, count(*) AS rows,
                   count(*) FILTER (WHERE lower(op) = 'upsert') AS upserts,
                   list_filter([{missing}], lambda x: x IS NOT NULL) AS missing_all,
                   coalesce(list_sort(list_distinct(flatten(list(json_keys(extra_fields))))), []) AS unknown_fields
            FROM raw.{ds} WHERE {in_dept} GROUP BY department, fetch_id),
        q AS (
            SELECT department, fetch_id, count(DISTINCT seq) AS quarantined
            FROM quality.violations WHERE dataset = '{ds}' AND {in_dept} AND severity = 'quarantine'
            GROUP BY department, fetch_id)
        SELECT b.department, '{ds}', b.fetch_id, b.rows, b.upserts, coalesce(q.quarantined, 0),
               coalesce(q.quarantined, 0) / b.rows,
               CASE WHEN b.upserts > 0 THEN b.missing_all ELSE [] END, b.unknown_fields, false, NULL, NULL
        FROM b LEFT JOIN q USING (department, fetch_id)""")
    default_rate = float(hold_back.get("quarantine_rate", 0.10))
    default_min = int(hold_back.get("quarantine_min_rows", 20))
    per_source = hold_back.get("sources", {}) or {}
    rows = con.execute(
        "SELECT fetch_id, rows, quarantined, quarantine_rate, missing_required, unknown_fields "
        "FROM quality.batches WHERE dataset = ? AND department = ?",
        [ds, dept],
    ).fetchall()
    for fid, n, nq, rate, missing_req, unknown in rows:
        limits = {
            "quarantine_rate": default_rate,
            "quarantine_min_rows": default_min,
            **(per_source.get(dept, {}) or {}),
        }
        zh, en = [], []
        if missing_req:
            hint = f"（本批出现未知字段：{', '.join(unknown)}，可能是改名）" if unknown else ""
            hint_en = f" (unknown fields in this batch: {', '.join(unknown)} — a rename?)" if unknown else ""
            zh.append(f"部门 {dept} 的 {ds} 批次 {fid} 缺少必填字段 {', '.join(missing_req)}{hint}")
            en.append(
                f"department {dept}, dataset {ds}, batch {fid}: required field(s) "
                f"{', '.join(missing_req)} missing{hint_en}"
            )
        if nq >= int(limits["quarantine_min_rows"]) and rate > float(limits["quarantine_rate"]):
            zh.append(
                f"部门 {dept} 的 {ds} 批次 {fid} 隔离率 {rate:.1%}（{nq}/{n}）超过阈值 "
                f"{float(limits['quarantine_rate']):.0%}"
            )
            en.append(
                f"department {dept}, dataset {ds}, batch {fid}: {nq} of {n} records quarantined "
                f"({rate:.1%}) above the {float(limits['quarantine_rate']):.0%} threshold"
            )
        if zh:
            con.execute(
                "UPDATE quality.batches SET held = true, reason_zh = ?, reason_en = ? "
                "WHERE dataset = ? AND department = ? AND fetch_id = ?",
                ["；".join(zh), "; ".join(en), ds, dept, fid],
            )


def stamp() -> str:
    return datetime.now().isoformat(timespec="seconds")
