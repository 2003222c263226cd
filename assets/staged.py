"""Stage `staged`: landing → DuckDB raw, typed history, current state, quarantine."""

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource

from safecredit.config import DATASETS


def _staged_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"staged_{dataset}", group_name="staged", deps=[f"landing_{dataset}"],
              pool="warehouse", kinds={"duckdb"},
              description=f"`staged.{dataset}` (typed history) and `staged.{dataset}_current`, "
                          "validated against contracts/datasets/" + dataset + ".yaml.")
    def _asset(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
        from safecredit.landing import landed_departments
        from safecredit.staging import load_raw, stage

        # everything landed counts, whether or not its department is still configured: staging
        # is a pure function of the raw landing, which is what makes `replay` possible
        depts = landed_departments(exchange.paths.raw, dataset)
        with exchange.warehouse(f"staged_{dataset}") as con:
            load_raw(con, exchange.paths.raw, depts, dataset)
            counts = stage(con, dataset, exchange.policy().get("publication.hold_back", {}))
        context.log.info(f"{dataset}: {counts}")
        return dg.MaterializeResult(metadata={k: v for k, v in counts.items()})

    return _asset


staged_assets = [_staged_asset(ds) for ds in DATASETS]


def _contract_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=f"staged_{dataset}", name="contract_suite", blocking=False,
                    description=f"Great Expectations suite generated from contracts/datasets/{dataset}.yaml, "
                                "run over the records in force.")
    def _check(exchange: ExchangeResource) -> dg.AssetCheckResult:
        from safecredit.contracts import load_contract
        from safecredit.gx_suites import validate_frame
        from safecredit.warehouse import connect

        contract = load_contract(dataset)
        cols = ", ".join(f.name for f in contract.fields if f.type != "list")
        with exchange.warehouse(f"check_{dataset}"):
            con = connect(exchange.paths.warehouse)
            try:
                frame = con.sql(f"SELECT {cols} FROM staged.{dataset}_current").to_arrow_table().to_pandas()
            finally:
                con.close()
        summary = validate_frame(contract, frame)
        return dg.AssetCheckResult(
            passed=summary["success"],
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"evaluated": summary["evaluated"], "successful": summary["successful"],
                      "rows": summary["rows"], "suite": summary["suite"],
                      "failed": dg.MetadataValue.json(summary["failed"])})

    return _check


def _batches_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=f"staged_{dataset}", name="batches_accepted", blocking=False,
                    description="Every source batch passed its hold-back thresholds (exchange.md §1); "
                                "a held batch is kept in the raw landing and named here.")
    def _check(exchange: ExchangeResource) -> dg.AssetCheckResult:
        from safecredit.warehouse import connect

        with exchange.warehouse(f"check_{dataset}"):
            con = connect(exchange.paths.warehouse)
            try:
                held = con.execute(
                    "SELECT department, fetch_id, reason_zh, reason_en FROM quality.batches "
                    "WHERE dataset = ? AND held ORDER BY 1, 2", [dataset]).fetchall()
                q = con.execute("SELECT rule_id, count(*) FROM quality.violations WHERE dataset = ? "
                                "GROUP BY 1 ORDER BY 2 DESC, 1", [dataset]).fetchall()
            finally:
                con.close()
        return dg.AssetCheckResult(
            passed=not held, severity=dg.AssetCheckSeverity.WARN,
            metadata={"held_back": dg.MetadataValue.json(
                          [{"department": d, "batch": f, "reason_zh": zh, "reason_en": en} for d, f, zh, en in held]),
                      "violations_by_rule": dg.MetadataValue.json(dict(q))})

    return _check


staged_checks = [c for ds in DATASETS for c in (_contract_check(ds), _batches_check(ds))]
