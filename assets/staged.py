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
        from safecredit.staging import load_raw, stage

        depts = [d.id for d in exchange.departments() if dataset in d.datasets]
        with exchange.warehouse(f"staged_{dataset}") as con:
            load_raw(con, exchange.paths.raw, depts, dataset)
            counts = stage(con, dataset, exchange.policy().get("publication.hold_back", {}))
        context.log.info(f"{dataset}: {counts}")
        return dg.MaterializeResult(metadata={k: v for k, v in counts.items()})

    return _asset


staged_assets = [_staged_asset(ds) for ds in DATASETS]
