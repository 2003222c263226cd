"""Sensors and checks for operating the exchange.

- `department_changes`: polls every department of the sources file (read at each tick). A tick is
  cheap — `GET /datasets` and, per JSON dataset it serves, `records?updated_since=<cursor>&limit=1`
  (CSV datasets: the catalogue's `last_export_date`) — and asks for a `full_run` of the
  departments that sent something since their cursor (the newest `server_time` / export day
  seen). Stopped by default: operators switch it on.
- `alert_on_run_failure`: POSTs a JSON alert for every failed run to the `alerts` resource's URL
  (`SAFECREDIT_ALERT_WEBHOOK`). Stopped by default.
- `freshness` checks, one per landing asset (WARN): is any department's newest sent version older
  than policy allows (`freshness.yaml`)?
"""

from __future__ import annotations

import json
from datetime import datetime

import dagster as dg
import requests

from assets.ingest import ingest_run_config, partition_for
from assets.resources import AlertWebhookResource, DepartmentFeedsResource, ExchangeResource
from pipelines.schedules import STARTED_BY
from safecredit.config import SHANGHAI

# --------------------------------------------------------------------------- department changes


def poll_department(client, dept, cursor: dict, baseline: dict | None = None) -> tuple[list[str], dict]:
    """(datasets changed since `cursor`, new cursor) of one department, asked through `client`.
    `baseline` (dataset → watermark / last CSV day from the landing) stands in for a cursor never
    set, so a fresh sensor does not re-ask for what is already landed."""
    baseline = baseline or {}
    changed: list[str] = []
    new = {k: dict(v) for k, v in cursor.items()}
    cat = client.catalogue()
    served = {d.get("name"): d for d in cat.get("datasets", []) if isinstance(d, dict)}
    for ds in dept.datasets:
        entry = served.get(ds)
        if entry is None:
            continue
        prev = cursor.get(ds) or baseline.get(ds) or {}
        if dept.transport == "json" and "json" in entry.get("transports", ["json"]):
            page = client.records_page(ds, updated_since=prev.get("server_time"), cursor=None, limit=1)
            newest = prev.get("newest_updated_at")
            # the protocol stamps nothing later before a server_time already served, so any
            # record at or after the last server_time seen is new
            if page.items:
                changed.append(ds)
                newest = str(page.items[0].get("updated_at") or "") or newest
            new[ds] = {"server_time": page.server_time or prev.get("server_time"), "newest_updated_at": newest}
        else:
            last = entry.get("last_export_date")
            if last and (not prev.get("last_export_date") or last > prev["last_export_date"]):
                changed.append(ds)
            new[ds] = {"last_export_date": last or prev.get("last_export_date")}
    return changed, new


def _landing_baseline(exchange: ExchangeResource, dept_id: str) -> dict:
    from safecredit.landing import source_states

    out = {}
    for st in source_states(exchange.paths.raw):
        if st["department"] != dept_id:
            continue
        if st.get("watermark"):
            out[st["dataset"]] = {"server_time": st["watermark"]}
        elif st.get("csv_last_day"):
            out[st["dataset"]] = {"last_export_date": st["csv_last_day"]}
    return out


def department_changes_sensor(job, *, interval: int = 300) -> dg.SensorDefinition:
    """One sensor for every department of the sources file (read at each tick, so a department
    added to the file is polled from the next tick on, without reloading the code location)."""

    @dg.sensor(
        name="department_changes",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Polls every configured department cheaply (catalogue + one record per "
        "dataset) and runs full_run for the departments that sent something new.",
    )
    def _sensor(context: dg.SensorEvaluationContext, exchange: ExchangeResource, departments: DepartmentFeedsResource):
        from safecredit.connectors.client import SourceError

        cursor = json.loads(context.cursor) if context.cursor else {}
        new_cursor, changed, unreachable = {}, {}, []
        for dept in exchange.departments():
            mine = cursor.get(dept.id)
            baseline = None if mine else _landing_baseline(exchange, dept.id)
            try:
                with departments.client(dept, quick=True) as client:
                    found, new_cursor[dept.id] = poll_department(client, dept, mine or {}, baseline)
            except SourceError as exc:
                unreachable.append(f"{dept.id}: {exc.en}")
                new_cursor[dept.id] = mine or {}
                continue
            if found:
                changed[dept.id] = found
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))
        if not changed:
            why = f"; not reachable: {'; '.join(unreachable)}" if unreachable else ""
            return dg.SkipReason(f"nothing new since the last tick{why}")
        marks = ",".join(f"{d}/{ds}@{_mark(new_cursor[d][ds])}" for d in sorted(changed) for ds in sorted(changed[d]))
        return dg.RunRequest(
            run_key=marks,
            run_config=dg.RunConfig(ops=ingest_run_config(changed)),
            partition_key=partition_for(datetime.now(SHANGHAI).date()),
            tags={
                STARTED_BY: "sensor:department_changes",
                "safecredit/changed": ",".join(f"{d}/{ds}" for d in sorted(changed) for ds in changed[d]),
            },
        )

    return _sensor


def _mark(state: dict) -> str:
    return str(state.get("server_time") or state.get("last_export_date") or "")


# --------------------------------------------------------------------------- failure alerts


def alert_payload(context: dg.RunFailureSensorContext, ui_url: str) -> dict:
    run = context.dagster_run
    steps = []
    for ev in context.get_step_failure_events():
        err = ev.step_failure_data.error if ev.step_failure_data else None
        while err is not None and err.cause is not None:  # the user's error, not Dagster's wrapper
            err = err.cause
        steps.append({"step": ev.step_key, "error": err.message.strip() if err else None})
    return {
        "event": "run_failure",
        "run_id": run.run_id,
        "job": run.job_name,
        "status": str(run.status.value),
        "started_by": run.tags.get(STARTED_BY, "dagster"),
        "failed_steps": steps,
        "error": context.failure_event.message,
        "link": f"{ui_url.rstrip('/')}/runs/{run.run_id}",
        "sent_at": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
    }


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="POSTs a JSON alert for each failed run to $SAFECREDIT_ALERT_WEBHOOK.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: AlertWebhookResource):
    body = json.dumps(alert_payload(context, alerts.ui_url), ensure_ascii=False).encode("utf-8")
    resp = requests.post(alerts.url, data=body, timeout=10, headers={"Content-Type": "application/json; charset=utf-8"})
    resp.raise_for_status()  # a tick that could not alert shows as failed in the UI


# --------------------------------------------------------------------------- freshness checks


def freshness_check(landing: dg.AssetKey) -> dg.AssetChecksDefinition:
    """The check of one landing asset (`landing/<dataset>`: the landing step lands them all)."""
    dataset = landing.path[-1]

    @dg.asset_check(
        asset=landing,
        name="freshness",
        blocking=False,
        description=f"Each department's newest `{dataset}` version is no older than "
        "policy allows (freshness.yaml); judged on what it sent, not on when we ran.",
    )
    def _check(exchange: ExchangeResource) -> dg.AssetCheckResult:
        from safecredit.freshness import judge_now, source_freshness

        rows = source_freshness(
            exchange.paths.raw, exchange.policy(), judge_now(exchange.as_of_date()), datasets=[dataset]
        )
        late = [r for r in rows if r["late"]]
        return dg.AssetCheckResult(
            passed=not late,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "; ".join(r["message_en"] for r in late) if late else f"all {len(rows)} sources of {dataset} are fresh"
            ),
            metadata={
                "sources": dg.MetadataValue.json(rows),
                "late": [f"{r['department']}/{r['dataset']}" for r in late],
            },
        )

    return _check
