"""The one Dagster code location of the exchange (loaded by workspace.yaml).

Asset keys carry their stage: `landing/<dataset>` → `staged/<dataset>` → `subjects/resolved` →
`rules/<table>` (one step, one asset per table) → `feeds/<feed>` (one signed version). The
publication gate's blocking checks on `rules/<table>` stand between the last two.
"""

from __future__ import annotations

import dagster as dg

from assets.ingest import landing_assets, landing_keys
from assets.publish import publication_gate, published_feeds
from assets.resources import AlertWebhookResource, DepartmentFeedsResource, ExchangeResource
from assets.rules import rules_results, subjects_resolved
from assets.staged import staged_assets, staged_checks
from pipelines.schedules import NIGHTLY_CRON, nightly_schedule
from pipelines.sensors import alert_on_run_failure, department_changes_sensor, freshness_check

ALL_ASSETS = [*landing_assets, *staged_assets, subjects_resolved, rules_results, published_feeds]
freshness_checks = [freshness_check(k) for k in landing_keys]
ALL_CHECKS = [*staged_checks, *freshness_checks, publication_gate]
FULL_RUN = "full_run"

full_run = dg.define_asset_job(
    FULL_RUN,
    selection=dg.AssetSelection.all(),
    description="Pull every configured source, validate, compute, publish (what `safecredit run` does).",
)


def default_resources() -> dict:
    """Values resolved by Dagster when a run or tick starts, never when the code location loads."""
    return {
        "exchange": ExchangeResource(home=dg.EnvVar("SAFECREDIT_HOME")),
        "departments": DepartmentFeedsResource(),
        "alerts": AlertWebhookResource(url=dg.EnvVar("SAFECREDIT_ALERT_WEBHOOK")),
    }


def exchange_definitions(*, nightly_cron: str = NIGHTLY_CRON, sensor_interval: int = 300) -> dg.Definitions:
    """The code location. Tests build it with a quicker cron and sensor interval."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[full_run],
        schedules=[nightly_schedule(full_run, cron=nightly_cron)],
        sensors=[department_changes_sensor(full_run, interval=sensor_interval), alert_on_run_failure],
        resources=default_resources(),
    )


defs = exchange_definitions()
