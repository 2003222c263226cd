"""The nightly run: what `safecredit run` does, at 02:00 Asia/Shanghai.

A plain `ScheduleDefinition` on a job with partitioned landing assets requests no partition and no
config, and every landing step then fails for want of a partition window. The tick builds the
request itself: incremental pulls from every configured source (since each watermark), filed
under the last complete day for lineage.
"""

from __future__ import annotations

import dagster as dg

from assets.ingest import ingest_run_config, partition_for
from safecredit.config import SHANGHAI

NIGHTLY_CRON = "0 2 * * *"
STARTED_BY = "safecredit/started_by"


def nightly_schedule(job, *, cron: str = NIGHTLY_CRON, name: str = "nightly_full_run") -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="Asia/Shanghai",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every night: pull what every configured source sent since its watermark, "
        "validate, compute, publish (what `safecredit run` does).",
    )
    def _nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = context.scheduled_execution_time.astimezone(SHANGHAI).date()
        return dg.RunRequest(
            run_key=f"{name}:{context.scheduled_execution_time.isoformat()}",
            partition_key=partition_for(day),
            run_config=dg.RunConfig(ops=ingest_run_config()),
            tags={STARTED_BY: f"schedule:{name}"},
        )

    return _nightly
