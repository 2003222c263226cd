"""Stage `landing`: pull each dataset from every department that serves it and land it raw.

The landing assets (`landing/<dataset>`) are partitioned by day (Asia/Shanghai): partition D holds
the versions whose `updated_at` falls on D — a correction or a months-late record lands on the day
it was sent. A partition (or a range, in one run) can be re-run or backfilled alone, for all
departments or the ones named in the run config or in the run's `safecredit/departments` tag
(what the backfill dialog of the UI can set); re-running is idempotent (staging keeps each version
once). The nightly run (schedule, sensor, `safecredit run`) sets `incremental: true`: each source
is asked for everything since its watermark, with the policy's overlap window, whatever the
partition.

The six assets are one step (`landing`, a multi-asset that can be subset: a backfill of one
dataset pulls only that one), so that every (department, dataset) pull of a run overlaps with the
others (`safecredit.pulls`, within the policy's bounds) instead of waiting its turn.
"""

import warnings
from datetime import timedelta

import dagster as dg

from assets.resources import DepartmentFeedsResource, ExchangeResource
from safecredit.config import DATASETS
from safecredit.pulls import PullBounds, pull_all
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


LANDING_OP = "landing"  # the one landing step: what `ops:` of a run config is keyed by


def _wanted_departments(context: dg.AssetExecutionContext, config: IngestConfig) -> set[str]:
    tagged = context.run.tags.get(DEPARTMENTS_TAG, "")
    return set(config.departments) | {d.strip() for d in tagged.split(",") if d.strip()}


@dg.multi_asset(
    name=LANDING_OP,
    specs=[
        dg.AssetSpec(
            landing_key(ds),
            group_name="landing",
            description=f"Raw landing of `{ds}` from every configured department "
            "(immutable fetches with manifests; watermark per source).",
            kinds={"python"},
        )
        for ds in DATASETS
    ],
    can_subset=True,
    retry_policy=NETWORK_RETRY,
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def landing(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    exchange: ExchangeResource,
    departments: DepartmentFeedsResource,
):
    """Every selected dataset from every department that serves it, all pulls of the run at once
    (`safecredit.pulls`: waits on one department no longer add up), each dataset's result yielded
    as soon as its last pull ends."""
    pol = exchange.policy()
    window = None
    if not config.incremental:
        tw = context.partition_time_window
        window = (tw.start.date(), (tw.end - timedelta(days=1)).date())  # end is exclusive
    wanted = _wanted_departments(context, config)
    selected = [ds for ds in DATASETS if landing_key(ds) in context.selected_asset_keys]
    order = exchange.departments()
    tasks = [
        (dept, ds) for ds in selected for dept in order if ds in dept.datasets and (not wanted or dept.id in wanted)
    ]
    left = {ds: sum(1 for _, d in tasks if d == ds) for ds in selected}
    results: dict[str, dict[str, dict]] = {ds: {} for ds in selected}

    def finished(ds: str) -> dg.MaterializeResult:
        # in the sources file's order, whatever order the pulls ended in
        rows = [results[ds][d.id] for d in order if d.id in results[ds]]
        record_part(exchange.paths, context.run_id, f"landing-{ds}", {"sources": rows})
        return dg.MaterializeResult(
            asset_key=landing_key(ds),
            metadata={
                "sources": dg.MetadataValue.json(rows),
                "rows_landed": sum(r["rows"] for r in rows),
                "window": str(window) if window else "incremental",
                "unavailable": [r["department"] for r in rows if r["status"] != "landed"],
            },
        )

    for ds in selected:
        if not left[ds]:  # no department serves it (or none wanted): an empty part, as before
            yield finished(ds)
    outcomes = pull_all(
        tasks,
        exchange.paths.raw,
        client_for=lambda dept, gate: departments.client(dept, gate=gate),
        bounds=PullBounds.from_policy(pol),
        window=window,
        overlap_hours=pol.get("ingest.overlap_hours", 24),
        csv_overlap_days=pol.get("ingest.csv_overlap_days", 1),
        page_limit=pol.get("ingest.page_limit", 1000),
        csv_workers=pol.get("ingest.csv_parallel_days", 4),
    )
    for dept, ds, r in outcomes:
        log = context.log.info if r.status == "landed" else context.log.warning
        log(f"{dept.id}/{ds}: {r.status} — {r.message_en}")
        results[ds][dept.id] = r.as_dict()
        left[ds] -= 1
        if not left[ds]:
            yield finished(ds)


landing_assets = [landing]
landing_keys = [landing_key(ds) for ds in DATASETS]


def partition_for(day) -> str:
    """The daily partition a run answering for `day` is filed under: the last complete day before
    it, within the partitions that exist now (a run for a future date files under the newest)."""
    last = DAILY.get_last_partition_key() or DAILY.start.date().isoformat()
    return max(min((day - timedelta(days=1)).isoformat(), last), DAILY.start.date().isoformat())


def ingest_run_config(departments=(), *, incremental: bool = True) -> dict[str, IngestConfig]:
    """`ops:` of a run that lands every dataset: incremental pulls (the nightly run) from
    `departments` (empty: every configured one)."""
    return {LANDING_OP: IngestConfig(incremental=incremental, departments=sorted(departments))}
