"""The one Dagster code location of the exchange (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets.ingest import landing_assets
from assets.publish import published_feeds
from assets.rules import rules_results, subjects_resolved
from assets.staged import staged_assets, staged_checks
from pipelines.resources import default_resources

ALL_ASSETS = [*landing_assets, *staged_assets, subjects_resolved, rules_results, published_feeds]
ALL_CHECKS = staged_checks

full_run = dg.define_asset_job(
    "full_run", selection=dg.AssetSelection.all(),
    description="Pull every configured source, validate, compute, publish (what `safecredit run` does).",
)

nightly = dg.ScheduleDefinition(
    name="nightly_full_run", job=full_run, cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai", default_status=dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=staged_checks,
    jobs=[full_run],
    schedules=[nightly],
    resources=default_resources(),
)
