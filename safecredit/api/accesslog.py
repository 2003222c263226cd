"""The access log's lines, made and written off the request path.

A request leaves one tuple (its time and the line's arguments, every part already masked and
escaped by the middleware); a thread of its own turns the tuples into log records every
`interval` seconds and hands them to the `safecredit.access` logger, whose handlers and filters
are the operator's as before. Making a record (and the handler formatting and writing it) was
about a tenth of the hot route's time on the event loop (issue 11's profile). The queue is
bounded: lines beyond it are dropped and counted, not held without limit (the audit, not this
log, is the record that must not lose a call).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from .masking import MASKED
from .periodic import Periodic

log = logging.getLogger("safecredit.api")

#: lines waiting at most (about 50 ms of a saturated server is a few hundred)
MAX_WAITING = 50_000
FORMAT = '%s "%s %s" %d %.1fms key=%s'


class AccessLog:
    def __init__(self, logger: logging.Logger, *, interval: float = 0.05, max_waiting: int = MAX_WAITING) -> None:
        self.logger = logger
        self.interval = interval
        self.max_waiting = max_waiting
        self.dropped = 0
        self._waiting: deque[tuple[float, tuple]] = deque()
        self._writer = Periodic("access-log", interval, self._tick)
        self._drain_lock = threading.Lock()  # one drainer at a time: the lines keep their order

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def add(self, created: float, args: tuple) -> None:
        """One line (`FORMAT` % args) of a request made at `created` (time.time())."""
        if len(self._waiting) >= self.max_waiting:
            self.dropped += 1
            return
        self._waiting.append((created, args))
        if not self._writer.running:  # started by the first line: whatever runs the app, it is written
            self._writer.start()

    def drain(self) -> int:
        """Hand every waiting line to the logger, in order; the count handed."""
        n = 0
        logger, waiting = self.logger, self._waiting
        with self._drain_lock:
            while waiting:
                created, args = waiting.popleft()
                record = logger.makeRecord(
                    logger.name,
                    logging.INFO,
                    __file__,
                    0,
                    FORMAT,
                    args,
                    None,
                    extra={MASKED: True},  # every part masked when made: the log filter need not scan it again
                )
                # the line's time is the request's, not this thread's
                record.created = created
                record.msecs = (created - int(created)) * 1000
                logger.handle(record)
                n += 1
        return n

    def stop(self) -> None:
        """Stop the writer and write what is waiting."""
        self._writer.stop()
        self.drain()

    def _tick(self) -> None:
        if self.dropped:
            log.warning("access log: %d lines dropped (the writer fell behind)", self.dropped)
            self.dropped = 0
        self.drain()
