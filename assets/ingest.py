"""Stage `ingest`: pull each dataset from every department that serves it and land it raw."""

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource

from safecredit.config import DATASETS
from safecredit.landing import pull

NETWORK_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL,
                               jitter=dg.Jitter.PLUS_MINUS)


def _landing_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"landing_{dataset}", group_name="ingest", retry_policy=NETWORK_RETRY,
              description=f"Raw landing of `{dataset}` from every configured department "
                          "(immutable fetches with manifests; watermark per source).",
              kinds={"python"})
    def _asset(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
        pol = exchange.policy()
        results = []
        for dept in exchange.departments():
            if dataset not in dept.datasets:
                continue
            r = pull(dept, dataset, exchange.paths.raw,
                     overlap_hours=pol.get("ingest.overlap_hours", 24),
                     csv_overlap_days=pol.get("ingest.csv_overlap_days", 1),
                     page_limit=pol.get("ingest.page_limit", 1000))
            log = context.log.info if r.status == "landed" else context.log.warning
            log(f"{dept.id}/{dataset}: {r.status} — {r.message_en}")
            results.append(r.as_dict())
        return dg.MaterializeResult(metadata={
            "sources": dg.MetadataValue.json(results),
            "rows_landed": sum(r["rows"] for r in results),
            "unavailable": [r["department"] for r in results if r["status"] != "landed"],
        })

    return _asset


landing_assets = [_landing_asset(ds) for ds in DATASETS]
