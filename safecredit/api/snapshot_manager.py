"""The served snapshot's holding and swapping (the loading is `snapshot.build_snapshot`'s).

`SnapshotManager` keeps the current snapshot and swaps in a new one when `index.json` changes
(its inode/mtime/size, checked cheaply on every request and by a background poll). The new
snapshot is built aside by one thread while requests go on against the old one; the reference
is swapped under a lock; the old database is closed when its last in-flight request releases
it. A build that fails (e.g. a version pruned under our feet) leaves the current snapshot in
service and is retried at the next change or poll.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from safecredit.publish import FeedStore

from .snapshot import Snapshot, build_snapshot, index_stamp, open_duckdb

log = logging.getLogger("safecredit.api.snapshot")


#: seconds between two requests' checks of index.json (the poll thread checks every poll_interval)
NOTICE_INTERVAL = 0.1


def _versions_key(snap: Snapshot) -> tuple:
    return tuple(sorted((f, i.version) for f, i in snap.feeds.items()))


class SnapshotManager:
    """Keeps the served snapshot current; see the module docstring for the switching protocol."""

    def __init__(
        self,
        exports: Path | str,
        *,
        poll_interval: float = 1.0,
        materialize: bool = True,
        warm: Callable[[Snapshot], None] | None = None,
        views: tuple[str, ...] = (),
        compressed: tuple[str, ...] = (),
    ):
        self.exports = Path(exports)
        self.views, self.compressed = views, compressed  # feeds `warm` holds in memory (build_snapshot)
        self.warm = warm  # run on a new snapshot before it is swapped in (in-memory lookups)
        self.poll_interval = poll_interval
        self.materialize = materialize
        self._lock = threading.Lock()  # guards _current and refcounts
        self._build_lock = threading.Lock()  # one builder at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: Snapshot | None = None
        self.builds = 0
        self.last_error: str | None = None
        self._noticed = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.refresh()
        if self._current is None:  # first build failed: serve "nothing published" until it works
            self._swap(Snapshot(self.exports, None, {}, open_duckdb(), None, 0.0, self.materialize))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="snapshot-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            snap, self._current = self._current, None
            close = snap is not None and snap._retire()
        if close:
            snap.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.refresh()
            except Exception:  # pragma: no cover - logged, retried at the next poll
                log.exception("snapshot refresh failed")

    # -- switching -------------------------------------------------------------------------
    def changed(self) -> bool:
        cur = self._current
        return cur is None or index_stamp(self.exports) != cur.stamp

    def notice(self) -> None:
        """Per request: wake the builder if index.json changed (a stat, no blocking; at most every
        NOTICE_INTERVAL: under load a stat per request costs more than the answer)."""
        now = time.monotonic()
        if now - self._noticed >= NOTICE_INTERVAL:
            self._noticed = now
            if self.changed():
                self._wake.set()

    def refresh(self) -> bool:
        """Build and swap in a new snapshot if index.json changed; True when one was swapped."""
        with self._build_lock:
            if not self.changed():
                return False
            cur = self._current
            stamp = index_stamp(self.exports)
            try:
                if cur is not None and cur.feeds and stamp is not None:
                    # a run that published nothing new (failure item) rewrites index.json too
                    idx = FeedStore(self.exports).index() or {}
                    same = tuple(
                        sorted(
                            (f, (e or {}).get("latest")) for f, e in (idx.get("feeds") or {}).items() if f in cur.feeds
                        )
                    )
                    if same == _versions_key(cur) and set(idx.get("feeds") or {}) == set(cur.feeds):
                        cur.index, cur.stamp = idx, stamp
                        self.last_error = None
                        return False
                new = build_snapshot(
                    self.exports, materialize=self.materialize, views=self.views, compressed=self.compressed
                )
                if self.warm is not None:
                    try:
                        self.warm(new)
                    except BaseException:
                        new.close()
                        raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "could not build a snapshot of the new publication (%s); still serving %s",
                    self.last_error,
                    cur.version if cur else None,
                )
                return False
            self.last_error = None
            self.builds += 1
            self._swap(new)
            return True

    def _swap(self, new: Snapshot) -> None:
        with self._lock:
            old, self._current = self._current, new
            close = old is not None and old._retire()
        if close:
            old.close()
        if old is not None and old.version != new.version:
            log.info("now serving %s (was %s)", new.version, old.version)

    def current(self) -> Snapshot | None:
        return self._current

    @contextmanager
    def acquire(self) -> Iterator[Snapshot]:
        snap = self.take()
        try:
            yield snap
        finally:
            self.give_back(snap)

    def take(self) -> Snapshot:
        """The served snapshot, held until `give_back` (a swap closes it only after that)."""
        with self._lock:
            snap = self._current
            if snap is None:
                raise RuntimeError("snapshot manager is not started")
            snap._acquire()
        return snap

    def give_back(self, snap: Snapshot) -> None:
        with self._lock:
            close = snap._release()
        if close:
            snap.close()
