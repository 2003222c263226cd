"""The local copy: one table per feed plus `_mirror_state`, changed one transaction per version.

`_mirror_state(feed, version, manifest_sha256, row_count, columns, applied_at)` records the version
each table holds. It is written in the same transaction as the rows, so a mirror killed mid-apply
leaves both at the last committed version and the next run carries on from there.

A target raises `Drift` when a delta does not fit what it holds (an id to change is missing, or the
row count differs from the manifest's): the transaction is rolled back and the caller re-syncs
from the full file. This module holds the DuckDB target; `sqltargets` the SQLite and PostgreSQL ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .deltas import Delta, Schema, connect, ident, literal, parquet_schema
from .errors import MirrorUsageError

STATE = "_mirror_state"

# Called with a label at each step inside an apply transaction; tests use it to kill the process.
STEP_HOOK: Callable[[str], None] | None = None


def step(label: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(label)


class Drift(Exception):
    """The held rows do not match what the delta expects."""


@dataclass
class Held:
    """What a table holds: its version, and the column types deltas are read with."""

    version: str
    manifest_sha256: str
    row_count: int
    schema: Schema  # (column, DuckDB type)
    published: list  # the manifest's `columns` of that version: a change means re-load from full


def state_columns(schema: Schema, published: list) -> str:
    return json.dumps({"schema": schema, "published": published}, ensure_ascii=False)


def held_from_row(row) -> Held | None:
    if row is None:
        return None
    cols = json.loads(row[3])
    return Held(row[0], row[1], row[2], [tuple(c) for c in cols["schema"]], cols["published"])


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DuckDBTarget:
    """A DuckDB file; full files load with `read_parquet`, deltas as Arrow tables."""

    kind = "duckdb"

    def __init__(self, path: Path | str):
        self.label = str(path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        import duckdb

        try:
            self.con = connect(str(path))
        except duckdb.IOException as exc:  # another mirror (or a reader) holds the file
            raise MirrorUsageError(
                f"无法打开 {path}（可能另一个镜像进程正在使用）：{exc}",
                f"Cannot open {path} (another mirror may be using it): {exc}",
            ) from exc
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE} (feed VARCHAR PRIMARY KEY, version VARCHAR NOT NULL, "
            "manifest_sha256 VARCHAR NOT NULL, row_count BIGINT NOT NULL, columns VARCHAR NOT NULL, "
            "applied_at TIMESTAMP NOT NULL)"
        )

    def close(self) -> None:
        self.con.close()

    def held(self, feed: str) -> Held | None:
        rows = self.con.execute(
            f"SELECT version, manifest_sha256, row_count, columns FROM {STATE} WHERE feed = ?", [feed]
        ).fetchall()
        return held_from_row(rows[0] if rows else None)

    def _record(self, feed: str, version: str, manifest_sha256: str, row_count: int, columns: str) -> None:
        self.con.execute(f"DELETE FROM {STATE} WHERE feed = ?", [feed])
        self.con.execute(
            f"INSERT INTO {STATE} VALUES (?, ?, ?, ?, ?, ?)",
            [feed, version, manifest_sha256, row_count, columns, now_utc()],
        )

    def replace(
        self,
        feed: str,
        version: str,
        manifest_sha256: str,
        parquet: Path,
        row_count: int,
        published: list,
        id_columns: Sequence[str] = (),
    ) -> None:
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            schema = parquet_schema(con, parquet)
            con.execute(f"DROP TABLE IF EXISTS {ident(feed)}")
            step("drop")
            con.execute(f"CREATE TABLE {ident(feed)} AS SELECT * FROM read_parquet({literal(str(parquet))})")
            step("load")
            got = con.execute(f"SELECT count(*) FROM {ident(feed)}").fetchall()[0][0]
            if got != row_count:
                raise Drift(f"{feed}/{version}: full.parquet has {got} rows, the manifest says {row_count}")
            self._record(feed, version, manifest_sha256, row_count, state_columns(schema, published))
            step("state")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def apply(
        self,
        feed: str,
        version: str,
        manifest_sha256: str,
        delta: Delta,
        id_columns: Sequence[str],
        row_count: int,
        held: Held,
    ) -> None:
        con, table = self.con, ident(feed)
        con.register("_dels", delta.deletes)
        con.register("_adds", delta.inserts)
        con.execute("BEGIN TRANSACTION")
        try:
            if delta.deletes.num_rows:
                match = " AND ".join(f"{table}.{ident(c)} = _dels.{ident(c)}" for c in id_columns)
                gone = con.execute(f"DELETE FROM {table} USING _dels WHERE {match}").fetchall()[0][0]
                if gone != delta.deletes.num_rows:
                    raise Drift(
                        f"{feed}/{version}: {delta.deletes.num_rows} ids to change or delete, "
                        f"{gone} found in the local copy"
                    )
            step("delete")
            if delta.inserts.num_rows:
                con.execute(f"INSERT INTO {table} SELECT * FROM _adds")
            step("insert")
            got = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            if got != row_count:
                raise Drift(f"{feed}/{version}: {got} rows after the delta, the manifest says {row_count}")
            self._record(feed, version, manifest_sha256, row_count, state_columns(held.schema, held.published))
            step("state")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_dels")
            con.unregister("_adds")


def open_target(into: str):
    """`postgresql://…` → PostgreSQL; `*.sqlite`/`*.sqlite3`/`*.db` or `sqlite:///…` → SQLite;
    anything else → a DuckDB file."""
    if into.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        from .sqltargets import PostgresTarget

        return PostgresTarget(into)
    if into.startswith("sqlite:///") or into.endswith((".sqlite", ".sqlite3", ".db")):
        from .sqltargets import SQLiteTarget

        return SQLiteTarget(into.removeprefix("sqlite:///"))
    return DuckDBTarget(into)
