"""The one Dagster code location of the exchange (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets.ingest import landing_assets
from assets.publish import published_feeds
from assets.rules import rules_results, subjects_resolved
from assets.staged import staged_assets, staged_checks
from pipelines.resources import default_resources
from pipelines.sensors import (
    alert_on_run_failure, configured_department_ids, department_sensor, freshness_check,
)

ALL_ASSETS = [*landing_assets, *staged_assets, subjects_resolved, rules_results, published_feeds]
freshness_checks = [freshness_check(a) for a in landing_assets]
ALL_CHECKS = [*staged_checks, *freshness_checks]

full_run = dg.define_asset_job(
    "full_run", selection=dg.AssetSelection.all(),
    description="Pull every configured source, validate, compute, publish (what `safecredit run` does).",
)

nightly = dg.ScheduleDefinition(
    name="nightly_full_run", job=full_run, cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai", default_status=dg.DefaultScheduleStatus.STOPPED,
)

department_sensors = [department_sensor(d, full_run) for d in configured_department_ids()]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[full_run],
    schedules=[nightly],
    sensors=[*department_sensors, alert_on_run_failure],
    resources=default_resources(),
)
