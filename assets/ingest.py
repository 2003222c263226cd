"""Stage `landing`: pull each dataset from every department that serves it and land it raw.

The landing assets (`landing/<dataset>`) are partitioned by day (Asia/Shanghai): partition D holds
the versions whose `updated_at` falls on D — a correction or a months-late record lands on the day
it was sent. A partition (or a range, in one run) can be re-run or backfilled alone, for all
departments or the ones named in the run config or in the run's `safecredit/departments` tag
(what the backfill dialog of the UI can set); re-running is idempotent (staging keeps each version
once). The nightly run (schedule, sensor, `safecredit run`) sets `incremental: true`: each source
is asked for everything since its watermark, with the policy's overlap window, whatever the
partition.
"""

import warnings
from datetime import timedelta

import dagster as dg

from assets.resources import DepartmentFeedsResource, ExchangeResource
from safecredit.config import DATASETS
from safecredit.landing import pull
from safecredit.run_summary import record_part

# single-run backfills are marked beta; we rely on them knowingly (one fetch per range)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

DEPARTMENTS_TAG = "safecredit/departments"  # comma-separated department ids a run is limited to
NETWORK_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
DAILY = dg.DailyPartitionsDefinition(start_date="2019-01-01", timezone="Asia/Shanghai")


class IngestConfig(dg.Config):
    departments: list[str] = []  # empty: every configured department that serves the dataset
    incremental: bool = False  # true: since each source's watermark (nightly); false: the partitions' days


def landing_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", dataset])


def landing_op(dataset: str) -> str:
    """The op (step) name of a landing asset: what `ops:` of a run config is keyed by."""
    return f"landing__{dataset}"


def _wanted_departments(context: dg.AssetExecutionContext, config: IngestConfig) -> set[str]:
    tagged = context.run.tags.get(DEPARTMENTS_TAG, "")
    return set(config.departments) | {d.strip() for d in tagged.split(",") if d.strip()}


def _landing_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=landing_key(dataset),
        group_name="landing",
        retry_policy=NETWORK_RETRY,
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"Raw landing of `{dataset}` from every configured department "
        "(immutable fetches with manifests; watermark per source).",
        kinds={"python"},
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: IngestConfig,
        exchange: ExchangeResource,
        departments: DepartmentFeedsResource,
    ) -> dg.MaterializeResult:
        pol = exchange.policy()
        window = None
        if not config.incremental:
            tw = context.partition_time_window
            window = (tw.start.date(), (tw.end - timedelta(days=1)).date())  # end is exclusive
        wanted = _wanted_departments(context, config)
        results = []
        for dept in exchange.departments():
            if dataset not in dept.datasets or (wanted and dept.id not in wanted):
                continue
            with departments.client(dept) as client:
                r = pull(
                    dept,
                    dataset,
                    exchange.paths.raw,
                    window=window,
                    client=client,
                    overlap_hours=pol.get("ingest.overlap_hours", 24),
                    csv_overlap_days=pol.get("ingest.csv_overlap_days", 1),
                    page_limit=pol.get("ingest.page_limit", 1000),
                    csv_workers=pol.get("ingest.csv_parallel_days", 4),
                )
            log = context.log.info if r.status == "landed" else context.log.warning
            log(f"{dept.id}/{dataset}: {r.status} — {r.message_en}")
            results.append(r.as_dict())
        record_part(exchange.paths, context.run_id, f"landing-{dataset}", {"sources": results})
        return dg.MaterializeResult(
            metadata={
                "sources": dg.MetadataValue.json(results),
                "rows_landed": sum(r["rows"] for r in results),
                "window": str(window) if window else "incremental",
                "unavailable": [r["department"] for r in results if r["status"] != "landed"],
            }
        )

    return _asset


landing_assets = [_landing_asset(ds) for ds in DATASETS]


def partition_for(day) -> str:
    """The daily partition a run answering for `day` is filed under: the last complete day before
    it, within the partitions that exist now (a run for a future date files under the newest)."""
    last = DAILY.get_last_partition_key() or DAILY.start.date().isoformat()
    return max(min((day - timedelta(days=1)).isoformat(), last), DAILY.start.date().isoformat())


def ingest_run_config(departments=(), *, incremental: bool = True) -> dict[str, IngestConfig]:
    """`ops:` of a run that lands every dataset: incremental pulls (the nightly run) from
    `departments` (empty: every configured one)."""
    return {landing_op(ds): IngestConfig(incremental=incremental, departments=sorted(departments)) for ds in DATASETS}
