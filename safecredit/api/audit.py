"""The audit log writer: every /v1 call becomes an `audit_log` row, and none is ever lost.

Before an answer goes out its row is appended to a local spool file (`<home>/audit-spool/`, one
JSON line, `os.write` on an append-only descriptor: it survives a crash of the process at once,
and `fsync` runs at most every `sync_interval` (50 ms), so a crash of the machine loses at most
the rows of the last 50 ms). A writer thread moves spooled rows into the database in bulk: it
closes the current segment (a new one takes the appends), inserts the closed segments' rows with
one SQLAlchemy Core `executemany` in one transaction, and deletes a segment only once that
transaction committed. On SQLite and PostgreSQL a segment is one statement whose one parameter
is the segment's rows as a JSON array (`json_each`, `json_to_recordset`): the database unpacks
them while the writer thread waits without the GIL. A per-row `executemany` (still the path for
other databases) took the GIL back for every row, and each time the event loop released it (any
socket write) the requests waited behind the writer: a third of the request path's CPU. While
the database is down, rows wait in the spool and the service keeps answering; a restart (or
another server on the same home) imports what an earlier process left.

The spool is bounded (`max_spooled` rows): above 90% of it `accepting()` is False and the service
answers 503 without serving; the last 10% is room for the rows of refused calls, and a row that
finds the spool full is counted and reported. A segment being appended to is held with `flock`, so
only segments nobody writes any more are imported (a crashed process's lock is gone with it).

A crash between the commit and the deletion of a segment imports its rows again at the next start
(at least once: an audit row may be doubled then, never lost).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import TextClause, text
from sqlalchemy.engine import Engine

from .models import AuditLog

log = logging.getLogger("safecredit.api.audit")

SEGMENT_SUFFIX = ".jsonl"
#: the columns a spooled row fills, in the order of the INSERT
COLUMNS = ("at", "consumer", "key_id", "method", "route", "path", "code", "status", "version", "duration_ms")


class AuditWriter:
    def __init__(
        self,
        engine: Engine,
        spool_dir: Path | str,
        *,
        interval: float = 0.2,
        sync_interval: float = 0.05,
        batch: int = 5000,
        max_spooled: int = 1_000_000,
    ):
        self.engine = engine
        self.spool = Path(spool_dir)
        self.interval = interval  # how often spooled rows move to the database
        self.sync_interval = sync_interval  # fsync at most this often
        self.batch = batch  # move earlier when this many rows wait
        self.max_spooled = max_spooled
        self._lock = threading.Lock()  # guards the current segment, counters
        self._done = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._segment: Path | None = None
        self._seq = 0
        self._token = f"{os.getpid()}-{os.urandom(4).hex()}"  # names this process's segments
        self._dirty = False
        self._pending = 0  # rows in the spool (all segments), not yet committed
        self._recorded = 0  # rows appended by this process
        self._committed = 0  # rows of this process's segments committed
        self._failing = False
        self._passes = 0  # complete, successful moves of the whole spool
        self._insert = _insert_sql(engine)
        self._bulk = _bulk_sql(engine)
        self.written = 0  # rows committed (including rows an earlier process left)
        self.failed = 0  # failed database transactions
        self.dropped = 0  # rows refused by a full spool
        self._open_spool()

    # -- the request side ------------------------------------------------------------------
    def record(self, **fields: Any) -> bool:
        """Append one row to the spool (before the answer is sent); False when the spool is full
        or cannot be written (the caller answers 503 instead)."""
        line = orjson.dumps(fields) + b"\n"
        with self._lock:
            if self._pending >= self.max_spooled or self._fd is None:
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.error("audit spool full: %d rows refused so far", self.dropped)
                return False
            try:
                os.write(self._fd, line)
            except OSError as exc:
                self.dropped += 1
                log.error("audit spool %s cannot be written (%s): answering 503", self._segment, exc)
                return False
            self._pending += 1
            self._recorded += 1
            self._dirty = True
            wake = self._pending % self.batch == 0  # a full batch: move it now (once per batch)
        if wake:
            self._wake.set()
        return True

    def accepting(self) -> bool:
        """False while the spool is nearly full (the database is away too long): answer 503 then."""
        return self._fd is not None and self._pending < self.max_spooled * 0.9

    @property
    def pending(self) -> int:
        return self._pending

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row spooled so far (by this process, and what an earlier one left) is
        committed; True when it is."""
        deadline = time.monotonic() + timeout
        with self._done:
            target, passes = self._recorded, self._passes
            while self._committed < target or (self._pending and self._passes < passes + 2):
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._wake.set()
                self._done.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        """Move what can be moved, then stop; rows the database refused stay in the spool."""
        self.flush()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            self._sync()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._pending:
                log.error(
                    "audit writer stopped with %d rows in the spool %s (imported at the next start)",
                    self._pending,
                    self.spool,
                )

    # -- the spool -------------------------------------------------------------------------
    def _open_spool(self) -> None:
        self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.spool, 0o700)  # who asked about whom: owner-only
        self._pending = sum(_count_lines(p) for p in self._segments())
        self._new_segment()  # the first: no previous descriptor

    def _segments(self) -> list[Path]:
        return sorted(self.spool.glob("*" + SEGMENT_SUFFIX))

    def _new_segment(self) -> int | None:
        """Under the lock (or before any thread runs): the appends go to a fresh, locked segment.
        Returns the previous segment's descriptor: the caller syncs and closes it *after* letting
        go of the lock (requests append meanwhile, never waiting for a disk flush)."""
        self._seq += 1
        path = self.spool / f"{time.time_ns():020d}-{self._token}-{self._seq:06d}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        old, self._fd, self._segment, self._dirty = self._fd, fd, path, False
        return old

    def _sync(self) -> None:
        """fsync the current segment if rows were appended since the last one (writer thread only:
        it alone replaces the descriptor, so no lock is held while the disk flushes)."""
        if self._dirty and self._fd is not None:
            self._dirty = False  # an append during the fsync marks it again
            os.fsync(self._fd)

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        last_move = 0.0
        pause = self.interval
        while True:
            woken = self._wake.wait(self.sync_interval)
            self._wake.clear()
            self._sync()
            now = time.monotonic()
            stopping = self._stop.is_set()
            if self._pending and (woken or stopping or now - last_move >= pause):
                last_move = now
                pause = self.interval if self._move() else min(5.0, pause * 2)
            if stopping:
                return

    def _move(self) -> bool:
        """Close the current segment and import every closed one, oldest first; False on a
        database error (the rows stay, retried with a growing pause)."""
        old = None
        with self._lock:
            own = self._segment
            if own is not None and own.stat().st_size > 0:
                old = self._new_segment()
            current = self._segment
        if old is not None:
            os.fsync(old)
            os.close(old)  # releases its lock: the segment may be imported
        for path in self._segments():
            if path == current:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # another server on this home imported it
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another live process still appends to it
                    continue
                if not path.exists():
                    continue
                rows, payload, lines = _read_segment(path)
                if rows and self._bulk is not None:
                    with self.engine.begin() as con:  # one transaction, one statement
                        con.execute(self._bulk, {"rows": payload})
                elif rows:
                    with self.engine.begin() as con:  # one transaction, one executemany
                        con.exec_driver_sql(self._insert, _as_tuples(rows))
                path.unlink()
            except Exception as exc:  # noqa: BLE001 — never take the service down; keep the rows, say so
                self.failed += 1
                if not self._failing or self.failed % 20 == 0:
                    log.error(
                        "could not write the audit rows of %s (%s); they stay in the spool",
                        path.name,
                        type(exc).__name__,
                    )
                self._failing = True
                return False
            finally:
                os.close(fd)
            mine = f"-{self._token}-" in path.name
            with self._done:
                self._pending = max(0, self._pending - lines)
                self.written += len(rows)
                if mine:
                    self._committed += len(rows)
                self._done.notify_all()
        self._failing = False
        with self._done:
            self._passes += 1
            self._done.notify_all()
        return True


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _insert_sql(engine: Engine) -> str:
    """The INSERT of a spooled row in the driver's parameter style."""
    style = engine.dialect.paramstyle
    marks = [
        "?" if style == "qmark" else f":{i}" if style == "numeric" else f":{c}" if style == "named" else "%s"
        for i, c in enumerate(COLUMNS, 1)
    ]
    return f"INSERT INTO {AuditLog.__tablename__} ({', '.join(COLUMNS)}) VALUES ({', '.join(marks)})"


def _bulk_sql(engine: Engine) -> TextClause | None:
    """The INSERT of a whole segment from one JSON array (`:rows`), None where the database has
    no JSON table function this knows (then: executemany)."""
    cols = ", ".join(COLUMNS)
    table = AuditLog.__tablename__
    if engine.dialect.name == "sqlite":
        field = "json_extract(j.value, '$.{}')".format
        at = field("at")  # as SQLAlchemy stores a DateTime there: `YYYY-MM-DD HH:MM:SS.ffffff`
        at = (
            f"replace(substr({at}, 1, 19), 'T', ' ') || '.' || "
            f"substr(CASE WHEN substr({at}, 20, 1) = '.' THEN substr({at}, 21, 6) ELSE '' END || '000000', 1, 6)"
        )
        values = ", ".join([at, *(field(c) for c in COLUMNS[1:])])
        return text(f"INSERT INTO {table} ({cols}) SELECT {values} FROM json_each(:rows) AS j ORDER BY j.key")
    if engine.dialect.name == "postgresql":
        types = {"at": "timestamptz", "status": "integer", "duration_ms": "double precision"}
        values = ", ".join(f"CAST(e.v ->> '{c}' AS {types.get(c, 'text')})" for c in COLUMNS)
        return text(
            f"INSERT INTO {table} ({cols}) SELECT {values} FROM "
            "json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS e(v, n) ORDER BY e.n"
        )
    return None


def _read_segment(path: Path) -> tuple[list[dict[str, Any]], str, int]:
    """A segment's rows, the same as one JSON array (what `_bulk_sql` reads) and its line count.
    A torn line (the machine crashed mid-append) is reported and left out."""
    data = path.read_bytes()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    payload = b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]"
    try:  # one parse for the whole segment (C: the GIL is held briefly); line by line only when one is torn
        return orjson.loads(payload), payload.decode("utf-8"), lines
    except orjson.JSONDecodeError:
        pass
    rows = []
    for n, line in enumerate(data.splitlines(), 1):
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            log.error("audit spool %s line %d is not a whole row (a crash mid-write): skipped", path.name, n)
    return rows, orjson.dumps(rows).decode("utf-8"), lines


def _as_tuples(rows: list[dict[str, Any]]) -> list[tuple]:
    """Rows as executemany takes them (tuples of COLUMNS), `at` a timezone-aware datetime: the
    path of databases without a JSON table function (SQLite and PostgreSQL take `_bulk_sql`)."""
    out = []
    for row in rows:
        at = row.get("at")
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        out.append((at, *(row.get(c) for c in COLUMNS[1:])))
    return out
