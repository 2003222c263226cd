"""`safecredit run`: one full run in-process through Dagster, with the exit codes of operations.md."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from safecredit import config
from safecredit.errors import PublicationBlocked, UserError


@dataclass
class RunSummary:
    ok: bool
    published: bool
    version: str = ""
    reasons: list = field(default_factory=list)
    sources: list = field(default_factory=list)       # per (dept, dataset) fetch results
    staged: dict = field(default_factory=dict)        # per dataset counts
    feeds: dict = field(default_factory=dict)         # feed -> rows
    feed_deltas: dict = field(default_factory=dict)   # feed -> {rows, ADD, MOD, DEL}
    blacklist: dict = field(default_factory=dict)
    subjects: dict = field(default_factory=dict)      # resolution per source
    exports: str = ""
    log: str = ""


def _instance(paths: config.Paths):
    import dagster as dg

    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    yaml_path = home / "dagster.yaml"
    # the local template (safecredit/dagster.local.yaml, shipped with the package): SQLite, warehouse
    # pool limited to one writer; a file an earlier version wrote (same first line, no concurrency)
    # is upgraded, any other kept
    old_default = "# local instance for safecredit runs; see docs for PostgreSQL storage\n"
    current = yaml_path.read_text(encoding="utf-8") if yaml_path.exists() else None
    if current is None or (current.startswith(old_default) and "concurrency:" not in current):
        text = (Path(__file__).resolve().parent / "dagster.local.yaml").read_text(encoding="utf-8")
        tmp = yaml_path.with_name(f"dagster.yaml.{os.getpid()}.tmp")
        tmp.write_text(old_default + text, encoding="utf-8")
        os.replace(tmp, yaml_path)
    return dg.DagsterInstance.get()


def run_pipeline(home: str | None = None, sources: str | None = None, as_of: date | None = None,
                 selection: list[str] | None = None, log_level: str = "WARNING",
                 replay: bool = False, known_at: date | None = None) -> RunSummary:
    """Materialise every asset (or `selection`) in-process; raises UserError for user problems.

    `replay=True` skips the ingest stage: everything is rebuilt from the raw landing without
    calling a department (no sources file needed).
    """
    paths = config.paths(home)
    src_path = config.resolve_sources_path(sources, paths.home)
    if replay:
        if not paths.raw.exists():
            raise UserError(f"{paths.raw} 下没有原始落地数据，无法重放。请先运行 `safecredit run`。",
                            f"No raw landing under {paths.raw} to replay; run `safecredit run` first.")
    else:
        config.load_sources(src_path)  # bad config → exit 2 before anything starts

    import dagster as dg

    from pipelines.definitions import ALL_ASSETS, ALL_CHECKS
    from pipelines.resources import ExchangeResource
    from safecredit.warehouse import writer_lock

    if replay and selection is None:
        selection = dg.AssetSelection.all() - dg.AssetSelection.groups("ingest")
    resources = {"exchange": ExchangeResource(home=str(paths.home), sources=str(src_path),
                                              as_of=as_of.isoformat() if as_of else "",
                                              known_at=known_at.isoformat() if known_at else "")}
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_path = paths.logs / f"run-{datetime.now().strftime('%Y%m%dT%H%M%S')}.log"
    with writer_lock(paths, "safecredit run"):
        instance = _instance(paths)
        _free_stale_slots(instance)
        run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        if not replay:  # the CLI asks every source for what is new since its watermark
            run_config["ops"] = {a.key.to_user_string(): {"config": {"incremental": True}}
                                 for a in ALL_ASSETS if a.key.to_user_string().startswith("landing_")}
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], resources=resources, instance=instance,
                                selection=selection, raise_on_error=False, run_config=run_config,
                                partition_key=None if replay else _partition_for(as_of),
                                tags={"safecredit/started_by": "cli"})
    summary = RunSummary(ok=result.success, published=False, exports=str(paths.exports), log=str(log_path))
    for ev in result.get_asset_materialization_events():
        key = ev.asset_key.to_user_string()
        md = {k: getattr(v, "value", v) for k, v in ev.materialization.metadata.items()}
        if key.startswith("landing_"):
            summary.sources.extend(md.get("sources", []))
        elif key.startswith("staged_"):
            summary.staged[key.removeprefix("staged_")] = md
        elif key == "subjects_resolved":
            summary.subjects = md
        elif key == "rules_results":
            summary.blacklist = md
        elif key == "published_feeds":
            summary.published = bool(md.get("published"))
            summary.version = str(md.get("version", ""))
            summary.reasons = list(md.get("reasons", []) or [])
            summary.feeds = dict(md.get("rows", {}) or {})
            summary.feed_deltas = dict(md.get("feeds", {}) or {})
    if not result.success:
        lines = []
        for ev in result.all_events:
            if ev.is_step_failure and ev.step_failure_data.error:
                err = ev.step_failure_data.error
                user = _user_error_in(err)
                if user:
                    raise user
                lines.append(f"step {ev.step_key}: {err.to_string()}")
        log_path.write_text("\n".join(lines) or "run failed", encoding="utf-8")
    return summary


def _free_stale_slots(instance, pool: str = "warehouse") -> None:
    """Free pool slots left by runs whose process died (e.g. a killed `safecredit run`).

    Called while holding the warehouse lock: every step that writes the warehouse holds that lock
    too, so no step can be running now, and a claimed slot is stale. A CLI run holds the lock for
    its whole life, so an unfinished CLI run found now is dead: its pending steps are freed and
    the run is marked failed. Other runs' pending steps (queued in `dagster dev`) are left alone.
    """
    storage = instance.event_log_storage
    try:
        info = storage.get_concurrency_info(pool)
    except Exception:  # noqa: BLE001 — no concurrency tables (older storage): nothing to free
        return
    for slot in info.claimed_slots:
        storage.free_concurrency_slot_for_step(slot.run_id, slot.step_key)
    for run_id in {p.run_id for p in info.pending_steps} | {s.run_id for s in info.claimed_slots}:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.tags.get("safecredit/started_by") == "cli" and not run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            instance.report_run_failed(run, "the process running it died; slots freed by the next `safecredit run`")


def _partition_for(as_of: date | None) -> str:
    """The daily partition a run is filed under: the last complete day before `as_of`."""
    from datetime import timedelta

    from assets.ingest import DAILY

    keys = DAILY.get_partition_keys()
    day = ((as_of or datetime.now().date()) - timedelta(days=1)).isoformat()
    eligible = [k for k in keys if k <= day]
    return eligible[-1] if eligible else keys[0]


def _user_error_in(err) -> UserError | None:
    """A UserError raised inside an asset travels as a SerializableErrorInfo; rebuild it."""
    from safecredit import errors

    while err is not None:
        cls = getattr(errors, err.cls_name or "", None)
        if isinstance(cls, type) and issubclass(cls, UserError):
            zh, _, en = err.message.partition("\n")
            zh = zh.split(": ", 1)[-1]
            return cls(zh, en.strip())
        err = err.cause
    return None


def exit_code(summary: RunSummary) -> int:
    if not summary.ok:
        return 4
    return 0 if summary.published else PublicationBlocked.exit_code


def format_traceback() -> str:
    return traceback.format_exc()
