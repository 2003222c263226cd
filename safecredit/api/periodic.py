"""A background thread that does one thing every few seconds until stopped (the person-code
quota's lease returns)."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("safecredit.api")


class Periodic:
    """Calls `tick()` every `interval` seconds in a daemon thread named `name`, from `start()` until
    `stop()`; a tick's exception is logged and the next tick goes on."""

    def __init__(self, name: str, interval: float, tick: Callable[[], object]) -> None:
        self.name, self.interval, self.tick = name, interval, tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # pragma: no cover - logged; the next tick tries again
                log.exception("%s failed", self.name)
