"""Progress bars for long work when a person watches (rich), silent otherwise.

`safecredit run` and `demo` set SAFECREDIT_PROGRESS=1 when their output is a terminal; code that
runs long (fetching pages and CSV days, publishing feeds) asks for a bar here and gets a no-op
when nobody is watching (Dagster daemon runs, tests, CI logs).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_progress = None
_users = 0  # bars open on the live display


_tty = None


def _terminal():
    """The controlling terminal, opened directly: Dagster captures a step's stdout/stderr into its
    compute logs, so a bar drawn there would never reach the person watching."""
    global _tty
    if _tty is None:
        try:
            _tty = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 — kept for the process
        except OSError:
            _tty = False
    return _tty or None


def enabled() -> bool:
    return os.environ.get("SAFECREDIT_PROGRESS") == "1" and _terminal() is not None


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass

    def update(self, **kw) -> None:
        pass


class _Bar:
    def __init__(self, progress, task_id):
        self.progress, self.task_id = progress, task_id

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task_id, n)

    def update(self, **kw) -> None:
        self.progress.update(self.task_id, **kw)


@contextmanager
def bar(description: str, total: float | None = None) -> Iterator[_Bar | _NoBar]:
    """A bar for one piece of work; nested uses share one live display."""
    global _progress
    if not enabled():
        yield _NoBar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    global _users
    with _lock:
        if _progress is None:
            _progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=_terminal()),
                transient=True,
            )
            _progress.start()
        task_id = _progress.add_task(description, total=total)
        _users += 1
        progress = _progress
    try:
        yield _Bar(progress, task_id)
    finally:
        # counted, not owned by the first bar: a run's pulls run in threads (safecredit.pulls)
        # and the first to start is not the last to end
        with _lock:
            progress.remove_task(task_id)
            _users -= 1
            if not _users:
                progress.stop()
                _progress = None
