"""Stage `rules`: the SQL rules over the staged tables (rules/*.sql)."""

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource

from safecredit.config import DATASETS


@dg.asset(group_name="rules", deps=[f"staged_{ds}" for ds in DATASETS], pool="warehouse",
          kinds={"duckdb"},
          description="The serious-dishonesty list (rules.blacklist) as of the run's date, "
                      "computed by rules/*.sql under the policy in force.")
def rules_results(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
    from safecredit.rules import run_rules

    as_of = exchange.as_of_date()
    pol = exchange.policy()
    with exchange.warehouse("rules") as con:
        ran = run_rules(con, as_of, pol, exchange.person_salt())
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
