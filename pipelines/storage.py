"""Dagster's SQLite storage, the same files and tables, without a disk flush per run event.

The stock SQLite storages (`dagster._core.storage.sqlite_storage`) open a new engine and
connection for every statement they run and close it afterwards. In WAL mode (Dagster's own
setting for these files) closing the last connection checkpoints the WAL into the database and
deletes it: two fsyncs and a file deletion per stored event. A night with nothing new stores
≈ 430 events, about three commits each (the run's shard, the cross-run index, the check and
asset tables), so an unchanged night spent half its time waiting for the disk.

Here each database file keeps one engine whose pool holds its connection open, so commits append
to the WAL and SQLite checkpoints it every 1,000 pages, and every connection runs with
`synchronous=NORMAL`, SQLite's recommended setting for WAL: a commit is durable once written to
the WAL (a killed or crashed process loses nothing committed); only a power loss or OS crash
can lose the last commits before a checkpoint, never corrupt the file. That is acceptable for run
history: the warehouse, the landing and the published versions do not depend on it.

Configured in the instance's dagster.yaml (safecredit/dagster.local.yaml) as
`storage: custom: {module: pipelines.storage, class: LocalSqliteStorage}` with the same
`base_dir` as Dagster's default ($DAGSTER_HOME), so an existing home keeps its history and
`dagster dev` on the same home reads it.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

# run shards a process keeps open besides the index (a webserver reads many runs; one run writes one)
KEEP_ENGINES = 6


def _set_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _engine(conn_string: str) -> Engine:
    # pool_size=1: one connection stays open between statements (the one that keeps the WAL);
    # max_overflow=-1: other threads get their own, closed when returned
    engine = create_engine(
        conn_string,
        pool_size=1,
        max_overflow=-1,
        pool_pre_ping=False,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    event.listen(engine, "connect", _set_pragmas)
    return engine


class Engines:
    """One engine per database file, the least recently used closed beyond `keep`.

    A forked child does not use (or close) its parent's connections: it starts its own.
    """

    def __init__(self, keep: int = KEEP_ENGINES):
        self._keep = keep
        self._lock = threading.Lock()
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pid = os.getpid()
        # closed at exit, so the last connection checkpoints the WAL into the database file
        atexit.register(_close_if_alive, weakref.ref(self))

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            if self._pid != os.getpid():
                for engine in self._engines.values():
                    engine.dispose(close=False)
                self._engines.clear()
                self._pid = os.getpid()
            engine = self._engines.pop(conn_string, None) or _engine(conn_string)
            self._engines[conn_string] = engine
            while len(self._engines) > self._keep:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    def close(self, conn_string: str | None = None) -> None:
        """Close the connections of one file (before it is deleted) or of all."""
        with self._lock:
            names = [conn_string] if conn_string else list(self._engines)
            for name in names:
                engine = self._engines.pop(name, None)
                if engine is not None and self._pid == os.getpid():
                    engine.dispose()


def _close_if_alive(ref) -> None:
    engines = ref()
    if engines is not None:
        engines.close()


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        with conn.begin():
            yield conn


class _WalWatchdog(SqliteEventLogStorageWatchdog):
    """The UI follows a running run by watching its shard file. With the WAL kept, a commit
    modifies `<run>.db-wal` and the database file only at a checkpoint: watch both."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._paths = (self._log_path, self._log_path + "-wal")
        self._patterns = list(self._paths)

    def on_modified(self, event) -> None:
        if event.src_path in self._paths:
            self._process_log()


class LocalEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data=None):
        self._engines = Engines(keep=KEEP_ENGINES + 1)  # + the index shard
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(self.conn_string_for_shard(shard))
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with _transaction(engine) as conn:
                yield conn

    def has_table(self, table_name: str) -> bool:
        # asked before every asset check event (does the index know checks?): a fresh engine and
        # connection each time in the stock class; a table once there stays
        if table_name not in self._tables:
            engine = self._engines.get(self.conn_string_for_shard(INDEX_SHARD_NAME))
            with engine.connect() as conn:
                if engine.dialect.has_table(conn, table_name):
                    self._tables.add(table_name)
        return table_name in self._tables

    def watch(self, run_id: str, cursor: str | None, callback) -> None:
        from watchdog.observers import Observer

        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watchdog = _WalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, self._obs.schedule(watchdog, self._base_dir, recursive=True))

    def wipe(self) -> None:
        with self._db_lock:
            self._engines.close()  # the run shards' files are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._engines.close()


class _OneFile:
    """`connect()` of a storage that is one SQLite file (runs, schedules) through a kept engine."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data=None):
        self._engines = Engines(keep=1)
        super().__init__(conn_string, inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _transaction(self._engines.get(self._conn_string)) as conn:
            yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engines.close()


class LocalRunStorage(_OneFile, SqliteRunStorage):
    pass


class LocalScheduleStorage(_OneFile, SqliteScheduleStorage):
    pass


class LocalSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite:` with the three storages above; same directory layout and schema."""

    def __init__(self, base_dir: str, inst_data=None):
        # what DagsterSqliteStorage.__init__ does, with our classes (its own would open the stock ones)
        self.base_dir = base_dir
        self._run_storage = LocalRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = LocalEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = LocalScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> LocalSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
