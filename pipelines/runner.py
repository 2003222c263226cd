"""`safecredit run` / `replay` / the demo: the `full_run` job of the code location, in-process.

The job is the one `pipelines/definitions.py` defines (resolved from its `Definitions`), with the
run config the nightly schedule uses; the outcome is the summary the run itself wrote
(`safecredit.run_summary`), so the CLI and a scheduled run report the same thing.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

from safecredit import config
from safecredit.errors import UserError
from safecredit.run_summary import RunSummary, partial, read_summary, write_summary


def _instance(paths: config.Paths):
    import dagster as dg

    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    yaml_path = home / "dagster.yaml"
    # the local template (safecredit/dagster.local.yaml, shipped with the package): SQLite kept
    # open (pipelines/storage.py), warehouse pool limited to one writer; a file an earlier version
    # wrote (same first line, without one of those sections) is upgraded, any other kept
    old_default = "# local instance for safecredit runs; see docs for PostgreSQL storage\n"
    current = yaml_path.read_text(encoding="utf-8") if yaml_path.exists() else None
    if current is None or (current.startswith(old_default) and not _has_sections(current, "storage", "concurrency")):
        text = (Path(config.__file__).resolve().parent / "dagster.local.yaml").read_text(encoding="utf-8")
        tmp = yaml_path.with_name(f"dagster.yaml.{os.getpid()}.tmp")
        tmp.write_text(old_default + text, encoding="utf-8")
        os.replace(tmp, yaml_path)
    return dg.DagsterInstance.get()


def _has_sections(yaml_text: str, *names: str) -> bool:
    import re

    return all(re.search(rf"^{name}:", yaml_text, re.MULTILINE) for name in names)


def run_pipeline(
    home: str | None = None,
    sources: str | None = None,
    as_of: date | None = None,
    log_level: str = "WARNING",
    replay: bool = False,
    known_at: date | None = None,
) -> RunSummary:
    """Execute `full_run` in-process; raises UserError for user problems.

    `replay=True` skips the landing stage: everything is rebuilt from the raw landing without
    calling a department (no sources file needed).
    """
    paths = config.paths(home)
    src_path = config.resolve_sources_path(sources, paths.home)
    if replay:
        if not paths.raw.exists():
            raise UserError(
                f"{paths.raw} 下没有原始落地数据，无法重放。请先运行 `safecredit run`。",
                f"No raw landing under {paths.raw} to replay; run `safecredit run` first.",
            )
    else:
        config.load_sources(src_path)  # bad config → exit 2 before anything starts

    import dagster as dg

    from assets.ingest import ingest_run_config, partition_for
    from pipelines.definitions import FULL_RUN, defs
    from pipelines.schedules import STARTED_BY
    from safecredit.warehouse import writer_lock

    job = defs.resolve_job_def(FULL_RUN)
    exchange = {
        "home": str(paths.home),
        "sources": str(src_path),
        "as_of": as_of.isoformat() if as_of else "",
        "known_at": known_at.isoformat() if known_at else "",
        "reuse": not replay,  # a replay is a deliberate rebuild: nothing is taken from the ledger
    }
    run_config = dg.RunConfig(
        resources={"exchange": {"config": exchange}},
        loggers={"console": {"config": {"log_level": log_level}}},
        ops={} if replay else ingest_run_config(),
    )
    selection = None
    if replay:
        graph = defs.resolve_asset_graph()
        selection = [k for k in graph.get_all_asset_keys() if k.path[0] != "landing"]
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_path = paths.logs / f"run-{datetime.now().strftime('%Y%m%dT%H%M%S')}.log"
    with writer_lock(paths, "safecredit run"):
        instance = _instance(paths)
        _free_stale_slots(instance)
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            raise_on_error=False,
            asset_selection=selection,
            partition_key=None if replay else partition_for(as_of or datetime.now(config.SHANGHAI).date()),
            tags={STARTED_BY: "cli"},
        )
    summary = read_summary(paths, result.run_id)
    if summary is not None and (result.success or not summary.published):
        summary.log = str(log_path)
        summary.steps = _step_seconds(instance, result.run_id)
        write_summary(paths, summary)
        return summary
    lines = []
    for ev in result.all_events:
        if ev.is_step_failure and ev.step_failure_data.error:
            err = ev.step_failure_data.error
            user = _user_error_in(err)
            if user:
                raise user
            lines.append(f"step {ev.step_key}: {err.to_string()}")
    log_path.write_text("\n".join(lines) or "run failed", encoding="utf-8")
    return partial(paths, result.run_id, str(log_path))


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds of each step of the run, in the order they started (where the night's time went)."""
    stats = sorted(
        (s for s in instance.get_run_step_stats(run_id) if s.start_time and s.end_time), key=lambda s: s.start_time
    )
    return {s.step_key: round(s.end_time - s.start_time, 2) for s in stats}


def _free_stale_slots(instance, pool: str = "warehouse") -> None:
    """Free pool slots left by runs whose process died (e.g. a killed `safecredit run`).

    Called while holding the warehouse lock: every step that writes the warehouse holds that lock
    too, so no step can be running now, and a claimed slot is stale. A CLI run holds the lock for
    its whole life, so an unfinished CLI run found now is dead: its pending steps are freed and
    the run is marked failed. Other runs' pending steps (queued in `dagster dev`) are left alone.
    """
    from pipelines.schedules import STARTED_BY

    storage = instance.event_log_storage
    try:
        info = storage.get_concurrency_info(pool)
    except Exception:  # noqa: BLE001 — no concurrency tables (older storage): nothing to free
        return
    for slot in info.claimed_slots:
        storage.free_concurrency_slot_for_step(slot.run_id, slot.step_key)
    for run_id in {p.run_id for p in info.pending_steps} | {s.run_id for s in info.claimed_slots}:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.tags.get(STARTED_BY) == "cli" and not run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            instance.report_run_failed(run, "the process running it died; slots freed by the next `safecredit run`")


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
