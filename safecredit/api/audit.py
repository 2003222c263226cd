"""The audit log writer: every /v1 call becomes an `audit_log` row, written off the request path.

Requests put records on a queue; one thread inserts them in batches (every 0.2 s or 500 rows), so a
request never waits for a database commit. `flush()` waits until everything queued so far is
written (shutdown, tests). Codes are masked before they get here (persons: all but the last 4).
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
    def __init__(self, engine: Engine, *, interval: float = 0.2, batch: int = 500):
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, **fields: Any) -> None:
        self._q.put(fields)

    def flush(self, timeout: float = 10.0) -> bool:
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout)

    def stop(self) -> None:
        self.flush()
        self._stop.set()
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=self.interval)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            items, events, stop = [first], [], False
            while len(items) < self.batch:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            rows = []
            for it in items:
                if it is None:
                    stop = True
                elif isinstance(it, threading.Event):
                    events.append(it)
                else:
                    rows.append(AuditLog(**it))
            if rows:
                self._write(rows)
            for ev in events:
                ev.set()
            if stop:
                return

    def _write(self, rows: list[AuditLog]) -> None:
        try:
            with Session(self.engine) as s:
                s.add_all(rows)
                s.commit()
            self.written += len(rows)
        except Exception as exc:  # never take the service down; say so in the log
            self.failed += len(rows)
            log.error("could not write %d audit rows: %s", len(rows), type(exc).__name__)
