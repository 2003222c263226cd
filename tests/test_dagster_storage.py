"""The local instance's SQLite storage (pipelines/storage.py): same files, no flush per event.

What must hold: a killed run loses nothing it committed, Dagster's stock storage (an older
`dagster dev`, `dagster instance migrate`) reads what ours wrote, the UI's live view of a run
still sees each event, and a home whose dagster.yaml an earlier version wrote gets the storage.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

from pipelines.storage import LocalEventLogStorage

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import os, signal, sys
import dagster as dg

@dg.asset
def unit():
    return 1

@dg.asset_check(asset=unit)
def unit_ok():
    return dg.AssetCheckResult(passed=True)

instance = dg.DagsterInstance.get()
result = dg.materialize([unit, unit_ok], instance=instance)
with instance.event_log_storage.run_connection(result.run_id) as conn:
    sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
wal = os.path.getsize(instance.event_log_storage.path_for_shard(result.run_id) + "-wal")
print(type(instance.event_log_storage).__name__, result.run_id, sync, mode, wal, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no checkpoint: what a crash leaves
"""


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "safecredit" / "dagster.local.yaml", home / "dagster.yaml")
    return home


def test_a_killed_run_keeps_every_committed_event_readable_by_the_stock_storage(tmp_path):
    home = _dagster_home(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    storage, run_id, sync, mode, wal = proc.stdout.split()
    assert storage == "LocalEventLogStorage"
    assert (sync, mode) == ("1", "wal")  # NORMAL: no fsync per commit
    assert int(wal) > 0  # the events were still in the WAL (not checkpointed) when the process died

    # Dagster's own classes on the same files, as an older `dagster dev` would read them
    runs = SqliteRunStorage.from_local(str(home / "history"))
    assert [r.status for r in runs.get_runs(dg.RunsFilter(run_ids=[run_id]))] == [dg.DagsterRunStatus.SUCCESS]
    events = SqliteEventLogStorage(str(home / "history" / "runs"))
    types = [r.event_log_entry.dagster_event_type for r in events.get_records_for_run(run_id).records]
    assert dg.DagsterEventType.RUN_SUCCESS in types
    assert dg.DagsterEventType.ASSET_CHECK_EVALUATION in types
    latest = events.get_latest_materialization_events([dg.AssetKey("unit")])[dg.AssetKey("unit")]
    assert latest is not None and latest.run_id == run_id  # the cross-run index has it too


def _log_entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key=None,
        job_name="full_run",
        dagster_event=None,
    )


def test_a_watcher_sees_each_event_while_the_writer_keeps_its_connection(tmp_path):
    base = str(tmp_path / "runs")
    writer, reader = LocalEventLogStorage(base), LocalEventLogStorage(base)  # the run and the webserver
    run_id = "0f5c1a0e-0000-4000-8000-000000000001"
    seen: queue.Queue = queue.Queue()
    try:
        writer.store_event(_log_entry(run_id, "first"))  # the shard exists before the UI watches it
        reader.watch(run_id, None, lambda entry, cursor: seen.put(entry.user_message))
        writer.store_event(_log_entry(run_id, "second"))
        # the first modification after the watch began delivers everything from the cursor on
        assert [seen.get(timeout=30), seen.get(timeout=30)] == ["first", "second"]
        writer.store_event(_log_entry(run_id, "third"))
        assert seen.get(timeout=30) == "third"
    finally:
        reader.end_watch(run_id, next(iter(reader._watchers[run_id]), None))
        reader.dispose()
        writer.dispose()


def test_wipe_closes_the_shards_it_deletes(tmp_path):
    storage = LocalEventLogStorage(str(tmp_path / "runs"))
    run_id = "0f5c1a0e-0000-4000-8000-000000000002"
    try:
        storage.store_event(_log_entry(run_id, "before"))
        storage.wipe()
        assert storage.get_records_for_run(run_id).records == []
        storage.store_event(_log_entry(run_id, "after"))  # a new file, not the deleted one
        assert [r.event_log_entry.user_message for r in storage.get_records_for_run(run_id).records] == ["after"]
        assert Path(storage.path_for_shard(run_id)).exists()
    finally:
        storage.dispose()


def test_runner_gives_a_generated_instance_file_the_storage_and_keeps_a_users_own(tmp_path, monkeypatch):
    from pipelines.runner import _instance
    from safecredit import config

    generated = "# local instance for safecredit runs; see docs for PostgreSQL storage\n"
    for name, text, upgraded in (
        ("earlier", generated + "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n", True),
        ("users", "# mine\ntelemetry:\n  enabled: false\n", False),
    ):
        paths = config.paths(str(tmp_path / name))
        paths.dagster_home.mkdir(parents=True, exist_ok=True)
        (paths.dagster_home / "dagster.yaml").write_text(text, encoding="utf-8")
        monkeypatch.setenv("DAGSTER_HOME", str(paths.dagster_home))  # restored after the test
        instance = _instance(paths)
        try:
            kind = type(instance.event_log_storage).__name__
            assert kind == ("LocalEventLogStorage" if upgraded else "SqliteEventLogStorage"), name
            written = (paths.dagster_home / "dagster.yaml").read_text(encoding="utf-8")
            assert (written == text) is not upgraded
        finally:
            instance.dispose()


def test_has_table_answers_from_the_index_and_sees_a_table_created_later(tmp_path):
    storage = LocalEventLogStorage(str(tmp_path / "runs"))
    try:
        assert storage.has_table("asset_check_executions") and storage.supports_asset_checks
        assert not storage.has_table("added_later")
        with storage.index_connection() as conn:
            conn.exec_driver_sql("CREATE TABLE added_later (x INTEGER)")
        assert storage.has_table("added_later")  # a negative answer is not kept
    finally:
        storage.dispose()
