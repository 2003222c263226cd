"""The audit log writer: every /v1 call becomes an `audit_log` row, written off the request path.

Requests put records on a queue; one thread inserts them in batches (every 0.2 s or 500 rows), so a
request never waits for a database commit. `flush()` waits until everything queued so far is
written (shutdown, tests). Codes are masked before they get here (persons: all but the last 4).

No call goes unaudited: a failed insert keeps its rows and retries them (with a growing pause), and
while rows wait — or the queue is near its bound — `accepting()` is False and the service answers
503 instead of serving. The queue is bounded, so a flood cannot grow memory without limit; a row
that finds it full (a refused call in a flood) is counted and reported in the log.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from .models import AuditLog

log = logging.getLogger("safecredit.api.audit")


class AuditWriter:
    def __init__(self, engine: Engine, *, interval: float = 0.2, batch: int = 500, max_queued: int = 20_000):
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self.max_queued = max_queued
        self._q: queue.Queue = queue.Queue(maxsize=max_queued + 100)  # room for flush/stop markers
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._retry: list[dict[str, Any]] = []  # rows being written, or kept from a failed insert
        self._failing = False  # the last insert failed: its rows wait in _retry
        self.written = 0
        self.failed = 0  # failed insert attempts
        self.dropped = 0  # rows refused by a full queue

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, **fields: Any) -> bool:
        if self._q.qsize() + len(self._retry) >= self.max_queued:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.error("audit queue full: %d rows refused so far", self.dropped)
            return False
        self._q.put(fields)
        return True

    def accepting(self) -> bool:
        """False while failed rows wait for a retry or the queue is nearly full: answer 503 then."""
        return not self._failing and self._q.qsize() < self.max_queued * 0.9

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far has been tried; True when it is all written."""
        done = threading.Event()
        self._q.put(done, timeout=timeout)
        return done.wait(timeout) and not self._retry

    def stop(self) -> None:
        self.flush()
        self._stop.set()
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        pause = self.interval
        while True:
            try:
                first = self._q.get(timeout=pause if self._retry else self.interval)
            except queue.Empty:
                if self._retry:
                    pause = self._retry_pending(pause)
                    continue
                if self._stop.is_set():
                    return
                continue
            items, events, stop = [first], [], False
            while len(items) < self.batch:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            for it in items:
                if it is None:
                    stop = True
                elif isinstance(it, threading.Event):
                    events.append(it)
                else:
                    self._retry.append(it)
            if self._retry:
                pause = self._retry_pending(pause)
            for ev in events:
                ev.set()
            if stop and not self._retry:
                return
            if stop:  # shutting down with rows the database refused: say how many are lost
                log.error("audit writer stopped with %d unwritten rows", len(self._retry))
                return

    def _retry_pending(self, pause: float) -> float:
        """Write the waiting rows (oldest first); the next pause: reset on success, doubled up to 5 s."""
        rows = self._retry
        try:
            with Session(self.engine) as s:  # fresh ORM rows per attempt: a failed session's are spent
                s.add_all([AuditLog(**r) for r in rows])
                s.commit()
        except Exception as exc:  # noqa: BLE001 — never take the service down; keep the rows, say so
            self.failed += 1
            self._failing = True
            log.error(
                "could not write %d audit rows (%s); answering 503 until they are written",
                len(rows),
                type(exc).__name__,
            )
            return min(5.0, pause * 2)
        self.written += len(rows)
        self._retry = []
        self._failing = False
        return self.interval
