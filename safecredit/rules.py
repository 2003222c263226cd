"""Run the rules (rules/*.sql, in file-name order) over the staged tables.

Python only prepares parameters — the as-of date, the policy values, the working-day calendar,
the grounds table — as small tables the SQL reads; all set logic stays in the SQL files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path

import duckdb

from safecredit.config import DATASETS, RULES_DIR, Department
from safecredit.errors import ConfigError
from safecredit.policy import Policy
from safecredit.workdays import prepare_calendar


def known_views(con: duckdb.DuckDBPyConnection) -> None:
    """`k_<dataset>`: the staged versions landed by `params.known_at` (all when it is NULL), and
    `k_<dataset>_current`: the version in force per record among them. Rules read only these, so
    a run with `known_at` answers with exactly what had landed by then (rules.md §3).

    `k_<dataset>_in_force` picks the version in force on the key columns and the row id alone;
    `_current` joins the wide rows back by row id. A window over the full width sorted every column
    of every version (issue 10 §3; ../shared/perf/README.md: "one row per key out of many")."""
    for ds in DATASETS:
        known = """(SELECT known_at FROM params) IS NULL
               OR CAST(timezone('Asia/Shanghai', landed_at) AS DATE) <= (SELECT known_at FROM params)"""
        con.execute(f"CREATE OR REPLACE TEMP VIEW k_{ds} AS SELECT * FROM staged.{ds} WHERE {known}")
        con.execute(f"""CREATE OR REPLACE TEMP VIEW k_{ds}_in_force AS
            SELECT rid, department, record_id, updated_at FROM (
                SELECT rowid AS rid, department, record_id, updated_at, op FROM staged.{ds} WHERE {known}
                QUALIFY row_number() OVER (PARTITION BY department, record_id
                    ORDER BY updated_at DESC, (op = 'revoke') DESC, fetch_id DESC, seq DESC) = 1)
            WHERE op = 'upsert'""")
        con.execute(f"""CREATE OR REPLACE TEMP VIEW k_{ds}_current AS
            SELECT s.* FROM staged.{ds} s SEMI JOIN k_{ds}_in_force f ON f.rid = s.rowid""")


LISTING_PERIODS = ("listing.notice_working_days", "listing.management_years", "listing.repair_after_months")


def listing_periods(policy: Policy) -> tuple[int, int, int]:
    """The notice, management and repair periods of rules.md §3: every policy version states them."""
    values = tuple(policy.get(k) for k in LISTING_PERIODS)
    missing = [k for k, v in zip(LISTING_PERIODS, values) if v is None]
    if missing:
        raise ConfigError(
            f"政策 {policy.version} 缺少 {', '.join(missing)}：请在其 listing.yaml 中填写",
            f"policy {policy.version} lacks {', '.join(missing)}: set them in its listing.yaml",
        )
    return values


REGIME_TABLES = ("regimes", "regime_kinds", "regime_scope", "regime_scope_gwhy")


def regime_tables(policy: Policy) -> dict[str, list[dict]]:
    """The list regimes of rules.md §3 (regimes.yaml): every policy version states them."""
    tables = policy.tables()
    missing = [t for t in REGIME_TABLES if not tables.get(t) and t != "regime_scope_gwhy"]
    if missing:
        raise ConfigError(
            f"政策 {policy.version} 缺少名单制度表 tables.{', tables.'.join(missing)}：请在其 regimes.yaml 中填写",
            f"policy {policy.version} lacks the list regime table(s) tables.{', tables.'.join(missing)}: "
            "set them in its regimes.yaml",
        )
    return {t: tables.get(t) or [] for t in REGIME_TABLES}


def record_departments(con: duckdb.DuckDBPyConnection, departments: Sequence[Department]) -> None:
    """Keep each configured department's `kind` and `decisions` (operations.md) in the warehouse,
    so the rules — and a replay that has no sources file — choose the same regimes."""
    con.execute("CREATE SCHEMA IF NOT EXISTS rules")
    con.execute(
        "CREATE OR REPLACE TABLE rules.department_settings (department VARCHAR, kind VARCHAR, decisions VARCHAR)"
    )
    rows = sorted((d.id, d.kind, d.decisions) for d in departments)
    if rows:
        con.executemany("INSERT INTO rules.department_settings VALUES (?, ?, ?)", rows)


def prepare_params(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    policy: Policy,
    person_salt: str,
    known_at: date | None = None,
) -> None:
    for schema in ("rules", "subjects"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE params AS SELECT ?::DATE AS as_of, ?::INTEGER AS notice_days, "
        "?::INTEGER AS management_years, ?::INTEGER AS repair_after_months, "
        "?::VARCHAR AS policy_version, ?::VARCHAR AS person_salt, ?::DATE AS known_at",
        [as_of, *listing_periods(policy), policy.version, person_salt, known_at],
    )
    known_views(con)
    # each department's kind (sources file `kind:`, operations.md; `other` when not given) says which
    # penalties are 安全生产 penalties for publicity (rules.md §5) and which list regime a department's
    # penalties feed (§3); `run_rules` records them, an earlier run's stand when it is not given them
    con.execute(
        "CREATE TABLE IF NOT EXISTS rules.department_settings (department VARCHAR, kind VARCHAR, decisions VARCHAR)"
    )
    # every policy version with its listing periods: an entry follows the policy in force on its
    # decision date (rules.md §3), the run's own policy for everything else
    from safecredit.policy import load_policies, policy_root

    con.execute(
        "CREATE OR REPLACE TEMP TABLE policy_timeline (policy_version VARCHAR, effective_from DATE, "
        "notice_days INTEGER, management_years INTEGER, repair_after_months INTEGER)"
    )
    timeline = [p for p in load_policies(policy_root())] if policy in load_policies(policy_root()) else [policy]
    con.executemany(
        "INSERT INTO policy_timeline VALUES (?, ?, ?, ?, ?)",
        [(p.version, p.effective_from, *listing_periods(p)) for p in timeline],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE policy_kv (key VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO policy_kv VALUES (?, ?)", policy.scalars())
    _policy_by_version(con, timeline)
    con.execute("CREATE OR REPLACE TEMP MACRO pol(k) AS (SELECT any_value(value) FROM policy_kv WHERE key = k)")
    for name, rows in sorted({**policy.tables(), **regime_tables(policy)}.items()):
        _policy_table(con, f"policy_{name}", rows)
    con.execute(
        "CREATE TABLE IF NOT EXISTS rules.department_settings (department VARCHAR, kind VARCHAR, decisions VARCHAR)"
    )
    grounds = policy.get("listing.grounds", {}) or {}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE grounds (ground VARCHAR, name VARCHAR, enabled BOOLEAN, severity VARCHAR)"
    )
    for g, spec in sorted(grounds.items()):
        con.execute(
            "INSERT INTO grounds VALUES (?, ?, ?, ?)",
            [g, spec.get("name", g), bool(spec.get("enabled", True)), spec.get("severity")],
        )
    prepare_calendar(con, policy)


# What a decision takes from the policy in force on its own date (rules.md §3, "which rules apply
# when"), not from the run's: the measures its listing brings and the bans its penalty imposes.
DATED_POLICY_TABLES = ("measures", "person_bans", "regimes")


def _policy_by_version(con: duckdb.DuckDBPyConnection, timeline: Sequence[Policy]) -> None:
    """`policy_<name>_by_version` for DATED_POLICY_TABLES and `policy_kv_by_version`: every policy
    version's rows with a `policy_version` column, joined on the version of the entry or penalty."""
    for name in DATED_POLICY_TABLES:
        rows = [
            {"policy_version": p.version, **r}
            for p in timeline
            for r in ({**p.tables(), **regime_tables(p)}.get(name) or [])
        ]
        _policy_table(con, f"policy_{name}_by_version", rows)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE policy_kv_by_version (policy_version VARCHAR, key VARCHAR, value VARCHAR)"
    )
    con.executemany(
        "INSERT INTO policy_kv_by_version VALUES (?, ?, ?)",
        [(p.version, k, v) for p in timeline for k, v in p.scalars()],
    )


def _policy_table(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict]) -> None:
    """A list of records from a policy topic as a temp table (columns: union of the keys)."""
    import pyarrow as pa

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    if rows and "unconfirmed" not in cols:  # every policy row may be marked; SQL can always read it
        cols.append("unconfirmed")
    data = {
        c: [
            None if r.get(c) is None else (r[c] if isinstance(r[c], (list, bool, int, float)) else str(r[c]))
            for r in rows
        ]
        for c in cols
    }
    con.register("_policy_rows", pa.table(data) if rows else pa.table({"empty": pa.array([], pa.string())}))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _policy_rows")
    finally:
        con.unregister("_policy_rows")


# Warehouse objects that an earlier release made as tables and the rules now make as views.
# DuckDB will not `CREATE OR REPLACE VIEW` over a table, so the old table is dropped first.
NOW_VIEWS = (("subjects", "penalties"), ("subjects", "penalty_versions"))


def retire_replaced_tables(con: duckdb.DuckDBPyConnection) -> None:
    for schema, name in NOW_VIEWS:
        if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
            "AND database_name = current_database()",
            [schema, name],
        ).fetchone()[0]:
            con.execute(f"DROP TABLE {schema}.{name}")


def run_rules(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    policy: Policy,
    person_salt: str,
    rules_dir: Path = RULES_DIR,
    known_at: date | None = None,
    run_file: Callable[[duckdb.DuckDBPyConnection, Path], object] | None = None,
    departments: Sequence[Department] | None = None,
    department_kinds: Mapping[str, str] | None = None,
) -> list[str]:
    """Run the SQL files directly in `rules_dir` (not its sub-folders), in name order.
    `run_file(con, path)` replaces running a whole file at once (the rules benchmark times each
    statement through it). `departments` (the sources file) records each department's kind and
    decisions setting first (`department_kinds`, id → kind, the same for tests); without either the
    ones recorded by an earlier run apply."""
    if departments is None and department_kinds is not None:
        departments = [Department(d, d, "", "", "json", (), kind=k) for d, k in sorted(department_kinds.items())]
    if departments is not None:
        record_departments(con, departments)
    prepare_params(con, as_of, policy, person_salt, known_at)
    retire_replaced_tables(con)
    ran = []
    for sql_file in sorted(rules_dir.glob("*.sql")):
        if run_file is None:
            con.execute(sql_file.read_text(encoding="utf-8"))
        else:
            run_file(con, sql_file)
        ran.append(sql_file.name)
    return ran


def run_subjects(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    policy: Policy,
    person_salt: str,
    known_at: date | None = None,
    run_file: Callable[[duckdb.DuckDBPyConnection, Path], object] | None = None,
) -> list[str]:
    """Subject resolution and decision de-duplication (rules/subjects/*.sql)."""
    return run_rules(con, as_of, policy, person_salt, RULES_DIR / "subjects", known_at, run_file)
