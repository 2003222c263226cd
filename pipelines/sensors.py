"""Sensors and checks for operating the exchange.

- `changes_<dept>`: one sensor per department of the sources file (read when the code location
  loads; none without one). A tick is cheap — `GET /datasets` and, per JSON dataset it serves,
  `records?updated_since=<cursor>&limit=1` (CSV datasets: the catalogue's `last_export_date`) —
  and asks for a `full_run` of that department only when something changed since its cursor (the
  newest `server_time` / export day seen). Stopped by default: operators switch them on.
- `alert_on_run_failure`: POSTs a JSON alert for every failed run to `SAFECREDIT_ALERT_WEBHOOK`.
- `freshness_<dataset>`: a non-blocking (WARN) check per landing asset: is any department's newest
  sent version older than policy allows (`freshness.yaml`)?
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta

import dagster as dg
import requests

from pipelines.resources import ExchangeResource
from safecredit.config import SHANGHAI

WEBHOOK_ENV = "SAFECREDIT_ALERT_WEBHOOK"
UI_URL_ENV = "SAFECREDIT_DAGSTER_URL"      # base of links in alerts, e.g. https://dagster.example.gov
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- department sensors

def configured_department_ids() -> list[str]:
    """Department ids of the sources file, read at code-location load (ids only: tokens given as
    `${VAR}` may only be set where runs execute). No file → no sensors."""
    from safecredit import config

    try:
        path = config.resolve_sources_path(os.environ.get("SAFECREDIT_SOURCES") or None,
                                           config.paths(os.environ.get("SAFECREDIT_HOME") or None).home)
        if not path.exists():
            return []
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [str(d["id"]) for d in doc.get("departments", []) or [] if isinstance(d, dict) and d.get("id")]
    except Exception as exc:  # a broken sources file must not break the code location
        log.warning("no department sensors: cannot read the sources file (%s)", exc)
        return []


def partition_for(now: datetime) -> str:
    """The daily partition a sensor run is filed under: the last complete day (Asia/Shanghai)."""
    return (now.astimezone(SHANGHAI).date() - timedelta(days=1)).isoformat()


def poll_department(dept, cursor: dict, baseline: dict | None = None) -> tuple[list[str], dict]:
    """(datasets changed since `cursor`, new cursor). `baseline` (dataset → watermark / last CSV
    day from the landing) stands in for a cursor never set, so a fresh sensor does not re-ask for
    what is already landed."""
    from safecredit.connectors.client import DepartmentClient, RetryPolicy

    baseline = baseline or {}
    changed: list[str] = []
    new = {k: dict(v) for k, v in cursor.items()}
    retry = RetryPolicy(max_attempts=2, backoff_base=0.2, read_timeout=20)
    with DepartmentClient(dept, retry) as client:
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


def department_sensor(dept_id: str, job, *, interval: int = 300) -> dg.SensorDefinition:
    @dg.sensor(name=f"changes_{dept_id}", job=job, minimum_interval_seconds=interval,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Polls department {dept_id} cheaply (catalogue + one record per dataset) "
                           "and runs full_run for it only when it has sent something new.")
    def _sensor(context: dg.SensorEvaluationContext, exchange: ExchangeResource):
        from safecredit.connectors.client import SourceError

        dept = next((d for d in exchange.departments() if d.id == dept_id), None)
        if dept is None:
            return dg.SkipReason(f"department {dept_id} is no longer in the sources file")
        cursor = json.loads(context.cursor) if context.cursor else {}
        baseline = None if context.cursor else _landing_baseline(exchange, dept_id)
        try:
            changed, new_cursor = poll_department(dept, cursor, baseline)
        except SourceError as exc:
            return dg.SkipReason(f"{dept_id} not reachable: {exc.en}")
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))
        if not changed:
            return dg.SkipReason(f"{dept_id}: nothing new since the last tick")
        now = datetime.now(SHANGHAI)
        marks = ",".join(f"{ds}@{(new_cursor[ds].get('server_time') or new_cursor[ds].get('last_export_date'))}"
                         for ds in sorted(changed))
        ops = {f"landing_{ds}": {"config": {"incremental": True, "departments": [dept_id]}}
               for ds in dept.datasets}
        return dg.RunRequest(
            run_key=f"{dept_id}:{marks}",
            run_config={"ops": ops},
            partition_key=partition_for(now),
            tags={"safecredit/started_by": f"sensor:changes_{dept_id}",
                  "safecredit/changed": ",".join(sorted(changed))},
        )

    return _sensor


# --------------------------------------------------------------------------- failure alerts

def alert_payload(context: dg.RunFailureSensorContext) -> dict:
    run = context.dagster_run
    steps = []
    for ev in context.get_step_failure_events():
        err = ev.step_failure_data.error if ev.step_failure_data else None
        while err is not None and err.cause is not None:  # the user's error, not Dagster's wrapper
            err = err.cause
        steps.append({"step": ev.step_key, "error": err.message.strip() if err else None})
    base = os.environ.get(UI_URL_ENV, "http://127.0.0.1:3000").rstrip("/")
    return {
        "event": "run_failure",
        "run_id": run.run_id,
        "job": run.job_name,
        "status": str(run.status.value),
        "started_by": run.tags.get("safecredit/started_by", "dagster"),
        "failed_steps": steps,
        "error": context.failure_event.message,
        "link": f"{base}/runs/{run.run_id}",
        "sent_at": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
    }


def webhook_url() -> str:
    return os.environ.get(WEBHOOK_ENV, "").strip()


@dg.run_failure_sensor(name="alert_on_run_failure", minimum_interval_seconds=30,
                       default_status=dg.DefaultSensorStatus.RUNNING if webhook_url()
                       else dg.DefaultSensorStatus.STOPPED,
                       description=f"POSTs a JSON alert for each failed run to ${WEBHOOK_ENV}.")
def alert_on_run_failure(context: dg.RunFailureSensorContext):
    url = webhook_url()
    if not url:
        context.log.warning(f"run {context.dagster_run.run_id} failed; no alert sent: {WEBHOOK_ENV} is not set")
        return dg.SkipReason(f"{WEBHOOK_ENV} not set")
    body = json.dumps(alert_payload(context), ensure_ascii=False).encode("utf-8")
    resp = requests.post(url, data=body, timeout=10,
                         headers={"Content-Type": "application/json; charset=utf-8"})
    resp.raise_for_status()  # a tick that could not alert shows as failed in the UI


# --------------------------------------------------------------------------- freshness checks

def freshness_check(landing: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    dataset = landing.key.to_user_string().removeprefix("landing_")

    @dg.asset_check(asset=landing, name="freshness", blocking=False,
                    description=f"Each department's newest `{dataset}` version is no older than "
                                "policy allows (freshness.yaml); judged on what it sent, not on when we ran.")
    def _check(exchange: ExchangeResource) -> dg.AssetCheckResult:
        from safecredit.freshness import judge_now, source_freshness

        rows = source_freshness(exchange.paths.raw, exchange.policy(), judge_now(exchange.as_of_date()),
                                datasets=[dataset])
        late = [r for r in rows if r["late"]]
        return dg.AssetCheckResult(
            passed=not late, severity=dg.AssetCheckSeverity.WARN,
            description=("; ".join(r["message_en"] for r in late) if late
                         else f"all {len(rows)} sources of {dataset} are fresh"),
            metadata={"sources": dg.MetadataValue.json(rows),
                      "late": [f"{r['department']}/{r['dataset']}" for r in late]},
        )

    return _check
