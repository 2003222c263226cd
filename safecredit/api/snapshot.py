"""The serving snapshot: a read-only DuckDB view of the latest successful publication.

The service never opens the pipeline's warehouse (one writer, locked during runs). It reads the
published versions' `full.parquet` files, which are immutable once `index.json` names them:

* `build_snapshot` reads `index.json`, and for every feed it names loads that version's
  `full.parquet` into an in-memory DuckDB database (`materialize=True`, the server: tables
  sorted for the lookups) or defines views over the files (`materialize=False`, `safecredit
  check`: nothing is copied). Extensions are never installed or auto-loaded (offline machine;
  Parquet support is built in).
* `snapshot_manager.SnapshotManager` keeps the served snapshot and swaps in a new one when
  `index.json` changes.
* One DuckDB cursor per request (`Snapshot.cursor()`): DuckDB connections are not shared across
  threads, cursors of one database are.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Collection, Sequence

import duckdb

from safecredit.config import SHANGHAI
from safecredit.publish import FeedStore, is_version_id
from safecredit.publish.errors import VersionNotFound, VersionPruned
from safecredit.publish.lean import widen_sql

from .packed import copy_compressed

log = logging.getLogger("safecredit.api.snapshot")

#: Business dates are Asia/Shanghai (UTC+8 all year, no daylight saving).

Stamp = tuple[int, int, int] | None


def index_stamp(exports: Path) -> Stamp:
    """(inode, mtime_ns, size) of `index.json` — it is replaced by rename at every commit."""
    try:
        st = os.stat(exports / "index.json")
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def local_date(iso_utc: str | None) -> date | None:
    """The Asia/Shanghai calendar date of a `...Z` timestamp of a manifest or versions.json item."""
    if not iso_utc:
        return None
    try:
        dt = datetime.fromisoformat(str(iso_utc).replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(SHANGHAI).date()


def parse_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def fetch(cur, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    res = cur.execute(sql, list(params))
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r)) for r in res.fetchall()]


@dataclass(frozen=True)
class FeedInfo:
    name: str
    version: str
    as_of: date | None
    generated_at: str | None
    policy_version: str | None
    row_count: int
    columns: tuple[str, ...]
    id_columns: tuple[str, ...]
    path: Path  # the version's full.parquet


def open_duckdb() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": 2,
            # DuckDB's allocator keeps what a load freed (the uncompressed copy of a compressed
            # feed: 1.6 GiB at 10 M subjects) until later allocations purge it; its background
            # threads return it within a second, before the answer index is built beside it
            "allocator_background_threads": True,
        },
    )


@dataclass(eq=False)
class Snapshot:
    """One publication, loaded. Use through `SnapshotManager.acquire()` in the server."""

    exports: Path
    index: dict[str, Any] | None
    feeds: dict[str, FeedInfo]
    con: duckdb.DuckDBPyConnection
    stamp: Stamp
    built_in: float = 0.0
    materialized: bool = True
    cache: dict = field(default_factory=dict, repr=False)  # per-publication memo (matters …)
    _refs: int = field(default=0, repr=False)
    _retired: bool = field(default=False, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def version(self) -> str | None:
        return (self.index or {}).get("version") if self.feeds else None

    @property
    def generated_at(self) -> str | None:
        return (self.index or {}).get("generated_at") if self.feeds else None

    @property
    def store(self) -> FeedStore:
        return FeedStore(self.exports)

    def has(self, feed: str) -> bool:
        return feed in self.feeds

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def relation(self, feed: str, version: str | None = None) -> tuple[str, FeedInfo]:
        """SQL relation of `feed` at `version` (default: the one served) and its FeedInfo.

        The served version is the snapshot's table; another served version is read from its
        Parquet file (VersionPruned → 410, VersionNotFound → 404 for anything else)."""
        info = self.feeds.get(feed)
        if info is not None and (version is None or version == info.version):
            return f'"{feed}"', info
        if version is None:
            raise VersionNotFound(f"feed {feed} has no published version", f"数据集 {feed} 尚未发布")
        store = self.store
        path = store.safe_file_path(feed, version, "full.parquet")  # raises 404/410 kinds
        other = _feed_info(store, feed, version, path)
        src = f"read_parquet({sql_literal(str(path))})"

        def rel(name: str) -> str | None:  # the same version of the feeds a lean one joins
            if name == feed:
                return src
            try:
                return f"read_parquet({sql_literal(str(store.safe_file_path(name, version, 'full.parquet')))})"
            except (VersionNotFound, VersionPruned):
                return None

        types = {r[0]: r[1] for r in self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        wide = widen_sql(feed, rel, types)
        return (src if wide is None else f"({wide})"), other

    # -- lifetime --------------------------------------------------------------------------
    def _acquire(self) -> None:
        self._refs += 1

    def _release(self) -> bool:
        self._refs -= 1
        return self._retired and self._refs == 0

    def _retire(self) -> bool:
        self._retired = True
        return self._refs == 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.con.close()
            except duckdb.Error:  # pragma: no cover
                pass


def _feed_info(store: FeedStore, feed: str, version: str, path: Path) -> FeedInfo:
    manifest = store.read_manifest(feed, version)
    spec = store.specs.get(feed)
    columns = tuple(c.get("name") for c in manifest.get("columns") or [] if isinstance(c, dict))
    id_columns = tuple(manifest.get("id_columns") or (spec.id_columns if spec else ()))
    return FeedInfo(
        feed,
        version,
        parse_date(manifest.get("as_of")),
        manifest.get("generated_at"),
        manifest.get("policy_version"),
        int(manifest.get("row_count") or 0),
        columns,
        id_columns,
        path,
    )


def build_snapshot(
    exports: Path | str, *, materialize: bool = True, views: tuple[str, ...] = (), compressed: tuple[str, ...] = ()
) -> Snapshot:
    """Load the latest successful publication named by `index.json` (empty when none). When
    materialising, the feeds a lookup holds in memory need less of DuckDB: `views` are left as views
    over their file (only that lookup reads them), `compressed` are copied in their file's order into
    a compressed in-memory database (a tenth of the memory; what else reads them scans anyway)."""
    exports = Path(exports)
    t0 = time.perf_counter()
    stamp = index_stamp(exports)  # before reading: a change after this is seen next time
    store = FeedStore(exports)
    index = store.index() if stamp is not None else None
    con = open_duckdb()
    feeds: dict[str, FeedInfo] = {}
    as_views: set[str] = set()
    try:
        for feed, entry in sorted(((index or {}).get("feeds") or {}).items()):
            version = (entry or {}).get("latest")
            if not is_version_id(version) or feed not in store.feed_names():
                continue
            path = store.safe_file_path(feed, version, "full.parquet")
            info = _feed_info(store, feed, version, path)
            src = f"read_parquet({sql_literal(str(path))})"
            cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()} if materialize else set()
            order = list(dict.fromkeys(c for c in ("subject_id", "uscc", *info.id_columns) if c in cols))
            if materialize and feed in compressed:
                copy_compressed(con, feed, path)
            elif materialize and feed not in views and not (order[:1] == ["uscc"] and order == list(info.id_columns)):
                # a feed's file is in id order already (exchange.md §1): sorting by its ids again
                # only costs time and memory
                order_sql = f" ORDER BY {', '.join(order)}" if order and order != list(info.id_columns) else ""
                con.execute(f'CREATE TABLE "{feed}" AS SELECT * FROM {src}{order_sql}')
            else:
                # the per-unit feeds (10 M rows each at national scale) are asked by USCC, in whose
                # order their files are: a lookup or a page prunes the file's row groups by their
                # statistics as fast as it scans a copy in memory (bench/README.md, snapshot load)
                con.execute(f'CREATE VIEW "{feed}" AS SELECT * FROM {src}')
                as_views.add(feed)
            if not info.columns:
                names = [r[0] for r in con.execute(f'DESCRIBE "{feed}"').fetchall()]
                info = FeedInfo(**{**info.__dict__, "columns": tuple(names)})
            feeds[feed] = info
        _widen(con, feeds, materialize, as_views)
    except BaseException:
        con.close()
        raise
    snap = Snapshot(exports, index, feeds, con, stamp, time.perf_counter() - t0, materialize)
    if feeds:
        log.info(
            "snapshot of %s built in %.0f ms (%s)",
            snap.version,
            snap.built_in * 1000,
            ", ".join(f"{f}: {i.row_count}" for f, i in feeds.items()),
        )
    return snap


def _table_of(feeds: dict[str, FeedInfo], renamed: str, lean: str, name: str) -> str | None:
    """The snapshot's table of feed `name` (the one being widened under its lean name)."""
    return f'"{lean}"' if name == renamed else f'"{name}"' if name in feeds else None


def _widen(
    con: duckdb.DuckDBPyConnection, feeds: dict[str, FeedInfo], materialize: bool, as_views: Collection[str] = ()
) -> None:
    """Lean per-unit feeds (issue 10 §6) in the shape the API answers: their components, worksheets
    and labels joined back from the version's other feeds, once per snapshot, in DuckDB (when
    materialising, into a table even where the lean feed is a view: the join is not redone per
    lookup)."""
    kind = "TABLE" if materialize else "VIEW"
    for feed in sorted(feeds):
        types = {r[0]: r[1] for r in con.execute(f'DESCRIBE "{feed}"').fetchall()}
        lean = f"{feed}$lean"
        sql = widen_sql(feed, partial(_table_of, feeds, feed, lean), types)
        if sql is None:
            continue
        was = "VIEW" if feed in as_views or not materialize else "TABLE"
        con.execute(f'ALTER {was} "{feed}" RENAME TO "{lean}"')
        order = " ORDER BY uscc" if materialize else ""
        con.execute(f'CREATE {kind} "{feed}" AS {sql}{order}')
        if materialize:
            con.execute(f'DROP {was} "{lean}"')
        wide = tuple(r[0] for r in con.execute(f'DESCRIBE "{feed}"').fetchall())
        feeds[feed] = FeedInfo(**{**feeds[feed].__dict__, "columns": wide})
