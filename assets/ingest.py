"""Stage `ingest`: pull each dataset from every department that serves it and land it raw.

The landing assets are partitioned by day (Asia/Shanghai): partition D holds the versions whose
`updated_at` falls on D — a correction or a months-late record lands on the day it was sent. A
partition (or a range, in one run) can be re-run or backfilled alone, for all departments or the
ones named in the run config; re-running is idempotent (staging keeps each version once).
The nightly run (and `safecredit run`) sets `incremental: true`: each source is asked for
everything since its watermark, with the policy's overlap window, whatever the partition.
"""

import os
import warnings
from datetime import timedelta

import dagster as dg

# single-run backfills are marked beta; we rely on them knowingly (one fetch per range)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource
from safecredit.config import DATASETS
from safecredit.landing import pull

NETWORK_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL,
                               jitter=dg.Jitter.PLUS_MINUS)
DAILY = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("SAFECREDIT_PARTITIONS_START", "2019-01-01"),
    timezone="Asia/Shanghai")


class IngestConfig(dg.Config):
    departments: list[str] = []   # empty: every configured department that serves the dataset
    incremental: bool = False     # true: since each source's watermark (nightly); false: the partitions' days


def _landing_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"landing_{dataset}", group_name="ingest", retry_policy=NETWORK_RETRY,
              partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(),
              description=f"Raw landing of `{dataset}` from every configured department "
                          "(immutable fetches with manifests; watermark per source).",
              kinds={"python"})
    def _asset(context: AssetExecutionContext, config: IngestConfig,
               exchange: ExchangeResource) -> dg.MaterializeResult:
        pol = exchange.policy()
        window = None
        if not config.incremental:
            tw = context.partition_time_window
            window = (tw.start.date(), (tw.end - timedelta(days=1)).date())  # end is exclusive
        results = []
        for dept in exchange.departments():
            if dataset not in dept.datasets or (config.departments and dept.id not in config.departments):
                continue
            r = pull(dept, dataset, exchange.paths.raw, window=window,
                     overlap_hours=pol.get("ingest.overlap_hours", 24),
                     csv_overlap_days=pol.get("ingest.csv_overlap_days", 1),
                     page_limit=pol.get("ingest.page_limit", 1000),
                     csv_workers=pol.get("ingest.csv_parallel_days", 4))
            log = context.log.info if r.status == "landed" else context.log.warning
            log(f"{dept.id}/{dataset}: {r.status} — {r.message_en}")
            results.append(r.as_dict())
        return dg.MaterializeResult(metadata={
            "sources": dg.MetadataValue.json(results),
            "rows_landed": sum(r["rows"] for r in results),
            "window": str(window) if window else "incremental",
            "unavailable": [r["department"] for r in results if r["status"] != "landed"],
        })

    return _asset


landing_assets = [_landing_asset(ds) for ds in DATASETS]
