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
from itertools import pairwise

import duckdb

from safecredit.contracts import (
    Contract,
    _q,
    load_contract,
    typed_select,
    violations_select,
)
from safecredit.raw_load import load_raw  # noqa: F401 — staging's first step, imported from here by callers

# Rows typed at once: the typed table holds every field twice (typed and `<code>__raw`), ≈ 3 KB a
# row, so a chunk stays within a few GB instead of the whole dataset spilling tens of GB.
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

    Staged one department at a time, and a large department in ranges of its record ids of about
    `chunk_rows` rows (`_chunks`): everything that compares versions — batch hold-back, dedup of a
    version landed twice, current state — stays within a department and a record id, and each chunk
    is appended in the final order, so the tables are the same as when staged in one go.
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
    _typed(con, contract, "false")
    con.execute(f"CREATE OR REPLACE TABLE staged.{dataset} AS {_staged_select(contract, None)}")
    for dept, n in con.execute(f"SELECT department, count(*) FROM raw.{dataset} GROUP BY ALL ORDER BY ALL").fetchall():
        chunks = _chunks(con, dataset, dept, n, chunk_rows)
        # violations of the whole department first: its batches are judged on them
        con.execute("CREATE OR REPLACE TEMP TABLE _violations AS SELECT * FROM quality.violations WHERE false")
        for where in chunks:
            _typed(con, contract, where)
            con.execute(f"INSERT INTO _violations {violations_select(contract, f'typed_{dataset}')}")
        con.execute("INSERT INTO quality.violations SELECT * FROM _violations ORDER BY fetch_id, seq, rule_id")
        con.execute("DROP TABLE _violations")
        _assess_batches(con, contract, hold_back, dept)
        for where in chunks:
            if len(chunks) > 1:  # one chunk: its typed table is still there
                _typed(con, contract, where)
            con.execute(f"INSERT INTO staged.{dataset} {_staged_select(contract, dept)}")
    con.execute(f"DROP TABLE typed_{dataset}")
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


def _chunks(con: duckdb.DuckDBPyConnection, dataset: str, dept: str, rows: int, chunk_rows: int) -> list[str]:
    """WHERE clauses over raw.<dataset> splitting one department into ranges of its normalised
    record id (the key staged rows are ordered and deduplicated by); versions without one go first."""
    in_dept = f"department = {_q(dept)}"
    k = -(-rows // max(1, chunk_rows))
    if k <= 1:
        return [in_dept]
    fractions = ", ".join(f"{i / k:.6f}" for i in range(1, k))
    bounds = con.execute(
        f"SELECT DISTINCT unnest(quantile_disc(sc_text(record_id), [{fractions}])) AS b "
        f"FROM raw.{dataset} WHERE {in_dept} ORDER BY b"
    ).fetchall()
    edges = [None] + [_q(b) for (b,) in bounds if b is not None] + [None]
    rid = "sc_text(record_id)"
    out = []
    for lo, hi in pairwise(edges):
        cond = [f"{rid} >= {lo}"] if lo else []
        cond += [f"{rid} < {hi}"] if hi else []
        where = " AND ".join(cond) or "TRUE"
        out.append(f"{in_dept} AND ({where}{f' OR {rid} IS NULL' if lo is None else ''})")
    return out


def _typed(con: duckdb.DuckDBPyConnection, contract: Contract, where: str) -> None:
    ds = contract.dataset
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE typed_{ds} AS "
        f"{typed_select(contract, f'(SELECT * FROM raw.{ds} WHERE {where})')}"
    )


def _staged_select(contract: Contract, dept: str | None) -> str:
    """The versions of the typed chunk that passed (not quarantined, batch not held), each version
    once — its first landing — in (department, record_id, updated_at, op) order."""
    ds = contract.dataset
    field_cols = ", ".join(f.name for f in contract.fields)
    return f"""
        WITH v AS (
            SELECT department, fetch_id, seq, bool_or(severity = 'quarantine') AS held,
                   list(DISTINCT rule_id ORDER BY rule_id) FILTER (WHERE severity = 'flag') AS flags
            FROM quality.violations WHERE dataset = '{ds}' AND department = {_q(dept or "")} GROUP BY ALL)
        SELECT t.department, t.record_id, t.updated_at, t.op, t.fetch_id, t.seq,
               TRY_CAST(t.landed_at AS TIMESTAMPTZ) AS landed_at, {field_cols},
               coalesce(v.flags, []) AS flags, t.extra_fields
        FROM typed_{ds} t LEFT JOIN v USING (department, fetch_id, seq)
        WHERE NOT coalesce(v.held, false)
          AND (t.department, t.fetch_id) NOT IN (SELECT (department, fetch_id) FROM quality.batches
                                                 WHERE dataset = '{ds}' AND held)
        QUALIFY row_number() OVER (PARTITION BY t.department, t.record_id, t.updated_at, t.op
                                   ORDER BY t.fetch_id, t.seq) = 1
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
