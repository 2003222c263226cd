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

from safecredit.contracts import Contract, load_contract, typed_select, violations_select
from safecredit.raw_load import load_raw  # noqa: F401 — staging's first step, imported from here by callers


def stage(con: duckdb.DuckDBPyConnection, dataset: str, hold_back: dict | None = None) -> dict:
    """Type, validate and stage one dataset; returns counts for reporting.

    `hold_back` is the policy's thresholds (exchange.md §1 defaults): a batch — one fetch of one
    department's dataset — is held back whole when a required field is missing or renamed, or when
    more than `quarantine_rate` of its records and at least `quarantine_min_rows` are quarantined.
    Per-source overrides live under `sources: {<dept>: {...}}`. Held batches stay in the landing and
    are re-assessed on every run, so `replay` after a fix stages them.
    """
    contract = load_contract(dataset)
    hold_back = hold_back or {}
    for schema in ("staged", "quality"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE typed_{dataset} AS {typed_select(contract, f'raw.{dataset}')}")
    con.execute("""CREATE TABLE IF NOT EXISTS quality.violations (
        department VARCHAR, dataset VARCHAR, record_id VARCHAR, updated_at VARCHAR, fetch_id VARCHAR,
        seq BIGINT, rule_id VARCHAR, severity VARCHAR, field VARCHAR, value VARCHAR,
        message_zh VARCHAR, message_en VARCHAR)""")
    con.execute("DELETE FROM quality.violations WHERE dataset = ?", [dataset])
    con.execute(f"INSERT INTO quality.violations SELECT * FROM ({violations_select(contract, f'typed_{dataset}')}) "
                "ORDER BY department, fetch_id, seq, rule_id")
    _assess_batches(con, contract, hold_back)
    field_cols = ", ".join(f.name for f in contract.fields)
    con.execute(f"""
        CREATE OR REPLACE TABLE staged.{dataset} AS
        WITH v AS (
            SELECT department, fetch_id, seq, bool_or(severity = 'quarantine') AS held,
                   list(DISTINCT rule_id ORDER BY rule_id) FILTER (WHERE severity = 'flag') AS flags
            FROM quality.violations WHERE dataset = '{dataset}' GROUP BY ALL)
        SELECT t.department, t.record_id, t.updated_at, t.op, t.fetch_id, t.seq,
               TRY_CAST(t.landed_at AS TIMESTAMPTZ) AS landed_at, {field_cols},
               coalesce(v.flags, []) AS flags, t.extra_fields
        FROM typed_{dataset} t LEFT JOIN v USING (department, fetch_id, seq)
        WHERE NOT coalesce(v.held, false)
          AND (t.department, t.fetch_id) NOT IN (SELECT (department, fetch_id) FROM quality.batches
                                                 WHERE dataset = '{dataset}' AND held)
        QUALIFY row_number() OVER (PARTITION BY t.department, t.record_id, t.updated_at, t.op
                                   ORDER BY t.fetch_id, t.seq) = 1
        ORDER BY t.department, t.record_id, t.updated_at, t.op""")
    con.execute(f"""
        CREATE OR REPLACE VIEW staged.{dataset}_current AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY department, record_id
                                         ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) AS rn
            FROM staged.{dataset}) WHERE rn = 1 AND op = 'upsert'""")
    raw_n = con.execute(f"SELECT count(*) FROM raw.{dataset}").fetchone()[0]
    staged_n = con.execute(f"SELECT count(*) FROM staged.{dataset}").fetchone()[0]
    current_n = con.execute(f"SELECT count(*) FROM staged.{dataset}_current").fetchone()[0]
    quarantined = con.execute(
        "SELECT count(DISTINCT (department, fetch_id, seq)) FROM quality.violations "
        "WHERE dataset = ? AND severity = 'quarantine'", [dataset]).fetchone()[0]
    con.execute(f"DROP TABLE typed_{dataset}")
    held = [dict(zip(("department", "fetch_id", "rows", "reason_zh", "reason_en"), r)) for r in con.execute(
        "SELECT department, fetch_id, rows, reason_zh, reason_en FROM quality.batches "
        "WHERE dataset = ? AND held ORDER BY department, fetch_id", [dataset]).fetchall()]
    unknown = sorted({f for (fs,) in con.execute(
        "SELECT unknown_fields FROM quality.batches WHERE dataset = ?", [dataset]).fetchall() for f in fs})
    return {"dataset": dataset, "raw": raw_n, "staged_versions": staged_n, "current": current_n,
            "quarantined": quarantined, "held_back": held, "unknown_fields": unknown,
            "contract_version": contract.version}


def _assess_batches(con: duckdb.DuckDBPyConnection, contract: Contract, hold_back: dict) -> None:
    ds = contract.dataset
    con.execute("""CREATE TABLE IF NOT EXISTS quality.batches (
        department VARCHAR, dataset VARCHAR, fetch_id VARCHAR, rows BIGINT, upserts BIGINT,
        quarantined BIGINT, quarantine_rate DOUBLE, missing_required VARCHAR[], unknown_fields VARCHAR[],
        held BOOLEAN, reason_zh VARCHAR, reason_en VARCHAR)""")
    con.execute("DELETE FROM quality.batches WHERE dataset = ?", [ds])
    missing = ", ".join(
        f"CASE WHEN count({c}) FILTER (WHERE lower(op) = 'upsert') = 0 THEN '{c}' END" for c in contract.required)
    con.execute(f"""
        INSERT INTO quality.batches
        WITH b AS (
            SELECT department, fetch_id, count(*) AS rows,
                   count(*) FILTER (WHERE lower(op) = 'upsert') AS upserts,
                   list_filter([{missing}], lambda x: x IS NOT NULL) AS missing_all,
                   coalesce(list_sort(list_distinct(flatten(list(json_keys(extra_fields))))), []) AS unknown_fields
            FROM raw.{ds} GROUP BY department, fetch_id),
        q AS (
            SELECT department, fetch_id, count(DISTINCT seq) AS quarantined
            FROM quality.violations WHERE dataset = '{ds}' AND severity = 'quarantine'
            GROUP BY department, fetch_id)
        SELECT b.department, '{ds}', b.fetch_id, b.rows, b.upserts, coalesce(q.quarantined, 0),
               coalesce(q.quarantined, 0) / b.rows,
               CASE WHEN b.upserts > 0 THEN b.missing_all ELSE [] END, b.unknown_fields, false, NULL, NULL
        FROM b LEFT JOIN q USING (department, fetch_id)""")
    default_rate = float(hold_back.get("quarantine_rate", 0.10))
    default_min = int(hold_back.get("quarantine_min_rows", 20))
    per_source = hold_back.get("sources", {}) or {}
    rows = con.execute("SELECT department, fetch_id, rows, quarantined, quarantine_rate, missing_required, "
                       "unknown_fields FROM quality.batches WHERE dataset = ?", [ds]).fetchall()
    for dept, fid, n, nq, rate, missing_req, unknown in rows:
        limits = {**{"quarantine_rate": default_rate, "quarantine_min_rows": default_min},
                  **(per_source.get(dept, {}) or {})}
        zh, en = [], []
        if missing_req:
            hint = f"（本批出现未知字段：{', '.join(unknown)}，可能是改名）" if unknown else ""
            hint_en = f" (unknown fields in this batch: {', '.join(unknown)} — a rename?)" if unknown else ""
            zh.append(f"部门 {dept} 的 {ds} 批次 {fid} 缺少必填字段 {', '.join(missing_req)}{hint}")
            en.append(f"department {dept}, dataset {ds}, batch {fid}: required field(s) "
                      f"{', '.join(missing_req)} missing{hint_en}")
        if nq >= int(limits["quarantine_min_rows"]) and rate > float(limits["quarantine_rate"]):
            zh.append(f"部门 {dept} 的 {ds} 批次 {fid} 隔离率 {rate:.1%}（{nq}/{n}）超过阈值 "
                      f"{float(limits['quarantine_rate']):.0%}")
            en.append(f"department {dept}, dataset {ds}, batch {fid}: {nq} of {n} records quarantined "
                      f"({rate:.1%}) above the {float(limits['quarantine_rate']):.0%} threshold")
        if zh:
            con.execute("UPDATE quality.batches SET held = true, reason_zh = ?, reason_en = ? "
                        "WHERE dataset = ? AND department = ? AND fetch_id = ?",
                        ["；".join(zh), "; ".join(en), ds, dept, fid])


def stamp() -> str:
    return datetime.now().isoformat(timespec="seconds")
