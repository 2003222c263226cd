"""Stage `rules`: the SQL rules over the staged tables (rules/*.sql)."""

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource

from safecredit.config import DATASETS


@dg.asset(group_name="subjects", deps=[f"staged_{ds}" for ds in DATASETS], pool="warehouse",
          kinds={"duckdb"},
          description="One row per penalty decision (duplicates across departments kept once), each "
                      "resolved to a stable subject id: USCC, or via the registry from old codes and "
                      "former names; persons by a keyed hash of the ID number (rules/subjects/*.sql).")
def subjects_resolved(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
    from safecredit.rules import run_subjects

    with exchange.warehouse("subjects") as con:
        run_subjects(con, exchange.as_of_date(), exchange.policy(), exchange.person_salt(),
                     exchange.known_at_date())
        report = con.execute("SELECT department, resolved_by, decisions FROM subjects.resolution_report").fetchall()
        dups = con.execute("SELECT count(DISTINCT (authority_code, decision_no)) FROM subjects.duplicate_decisions").fetchone()[0]
    per_source: dict = {}
    for dept, how, n in report:
        per_source.setdefault(dept, {})[how] = n
    unresolved = sum(n for _, how, n in report if how == "unresolved")
    (context.log.warning if unresolved else context.log.info)(
        f"resolution per source {per_source}; decisions reported by several departments: {dups}")
    return dg.MaterializeResult(metadata={"resolution": dg.MetadataValue.json(per_source),
                                          "unresolved": unresolved, "duplicate_decisions": dups})


@dg.asset(group_name="rules", deps=["subjects_resolved"], pool="warehouse",
          kinds={"duckdb"},
          description="The serious-dishonesty list (rules.blacklist) as of the run's date, "
                      "computed by rules/*.sql under the policy in force.")
def rules_results(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
    from safecredit.rules import run_rules

    as_of = exchange.as_of_date()
    pol = exchange.policy()
    with exchange.warehouse("rules") as con:
        ran = run_rules(con, as_of, pol, exchange.person_salt(), known_at=exchange.known_at_date())
        by_status = dict(con.execute(
            "SELECT status, count(*) FROM rules.blacklist GROUP BY ALL ORDER BY 1").fetchall())
        by_ground = dict(con.execute(
            "SELECT ground, count(*) FROM rules.blacklist GROUP BY ALL ORDER BY 1").fetchall())
    context.log.info(f"blacklist by status {by_status}, by ground {by_ground}")
    return dg.MaterializeResult(metadata={
        "as_of": str(as_of), "policy_version": pol.version, "sql_files": ran,
        "entries_by_status": dg.MetadataValue.json(by_status),
        "entries_by_ground": dg.MetadataValue.json(by_ground),
    })
