"""SQLite and PostgreSQL as the local copy, through their own drivers.

DuckDB could attach these only through extensions, which offline sites cannot install; so rows
move from Arrow tables (read by DuckDB, `deltas`) in batches: `executemany` for SQLite, `COPY` for
PostgreSQL. Like the DuckDB target, each version is one transaction that also records the version
held in `_mirror_state`, and a delta that does not fit raises `Drift` after rolling back.
Column types follow the parquet schema; nested values (lists, structs) are stored as JSON
(`jsonb` in PostgreSQL, text in SQLite), dates and times in SQLite as ISO text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from safecredit.publish.formats import json_line, json_value

from .deltas import Delta, Schema, connect, ident, parquet_schema
from .targets import STATE, Drift, Held, held_from_row, now_utc, state_columns, step

BATCH = 10_000
_NESTED = re.compile(r"(\[\d*\]$)|^(STRUCT|MAP|UNION)\(")


def _pg_type(t: str) -> str:
    if _NESTED.search(t):
        return "JSONB"
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT", "UTINYINT"):
        return "BIGINT"
    if t in ("UBIGINT", "HUGEINT", "UHUGEINT"):
        return "NUMERIC"
    if t in ("DOUBLE", "FLOAT"):
        return "DOUBLE PRECISION"
    if t.startswith("DECIMAL"):
        return t.replace("DECIMAL", "NUMERIC")
    return {
        "BOOLEAN": "BOOLEAN",
        "DATE": "DATE",
        "TIME": "TIME",
        "TIMESTAMP": "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
        "BLOB": "BYTEA",
    }.get(t, "TEXT")


def _sqlite_type(t: str) -> str:
    if _NESTED.search(t):
        return "TEXT"
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT", "UTINYINT", "BOOLEAN"):
        return "INTEGER"
    if t in ("DOUBLE", "FLOAT"):
        return "REAL"
    return "BLOB" if t == "BLOB" else "TEXT"


def _as_json(v: Any) -> str | None:
    return None if v is None else json_line(json_value(v))


def _as_iso(v: Any) -> str | None:
    return None if v is None else json_value(v)


def _as_text(v: Any) -> str | None:
    return None if v is None else str(v)


def _converter(kind: str, duck_type: str) -> Callable[[Any], Any] | None:
    """How one column's Python values go to the driver (None: as they are)."""
    if _NESTED.search(duck_type):
        return _as_json
    if kind == "sqlite" and duck_type.startswith(("DATE", "TIME")):  # TIMESTAMP…, TIME
        return _as_iso
    if kind == "sqlite" and duck_type.startswith(("DECIMAL", "UBIGINT", "HUGEINT", "UHUGEINT")):
        return _as_text  # exact, where a REAL would round
    return None


def rows(table: pa.Table, schema: Schema, kind: str) -> Iterator[list[tuple]]:
    """Batches of row tuples for the driver, converted column by column."""
    types = dict(schema)
    convs = [_converter(kind, types[name]) for name in table.column_names]
    for batch in table.to_batches(BATCH):
        cols = [[c(v) for v in col.to_pylist()] if c else col.to_pylist() for col, c in zip(batch.columns, convs)]
        yield list(zip(*cols)) if cols else []


class _SqlTarget:
    """Shared steps; subclasses say how to connect, which types to use and how to bulk-load."""

    kind = ""
    p = "?"  # parameter placeholder
    con: Any
    _sql_type: Callable[[str], str]
    _tx: Callable[[Any], Any]  # a context manager: BEGIN … COMMIT, ROLLBACK on an exception

    def _transaction(self):
        return self._tx(self.con)

    def close(self) -> None:
        self.con.close()

    def _load(self, cur, table: str, columns: list[str], batches: Iterator[list[tuple]]) -> None:
        cols = ", ".join(ident(c) for c in columns)
        marks = ", ".join([self.p] * len(columns))
        for batch in batches:
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", batch)

    def _delete(self, cur, table: str, id_columns: Sequence[str], ids: pa.Table, schema: Schema) -> int:
        where = " AND ".join(f"{ident(c)} = {self.p}" for c in id_columns)
        gone = 0
        for batch in rows(ids, schema, self.kind):
            cur.executemany(f"DELETE FROM {table} WHERE {where}", batch)
            gone += cur.rowcount
        return gone

    def _init_state(self) -> None:
        with self._transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE} (feed TEXT PRIMARY KEY, version TEXT NOT NULL, "
                "manifest_sha256 TEXT NOT NULL, row_count BIGINT NOT NULL, columns TEXT NOT NULL, "
                "applied_at TEXT NOT NULL)"
            )

    def held(self, feed: str) -> Held | None:
        with self._transaction() as cur:
            cur.execute(
                f"SELECT version, manifest_sha256, row_count, columns FROM {STATE} WHERE feed = {self.p}", (feed,)
            )
            return held_from_row(cur.fetchone())

    def _record(self, cur, feed: str, version: str, sha: str, row_count: int, columns: str) -> None:
        cur.execute(f"DELETE FROM {STATE} WHERE feed = {self.p}", (feed,))
        cur.execute(
            f"INSERT INTO {STATE} VALUES ({', '.join([self.p] * 6)})",
            (feed, version, sha, row_count, columns, now_utc().isoformat(timespec="seconds")),
        )

    def _count(self, cur, table: str) -> int:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]

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
        duck = connect()
        try:
            schema = parquet_schema(duck, parquet)
        finally:
            duck.close()
        table = ident(feed)
        with self._transaction() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            step("drop")
            cur.execute(
                f"CREATE TABLE {table} (" + ", ".join(f"{ident(c)} {self._sql_type(t)}" for c, t in schema) + ")"
            )
            pf = pq.ParquetFile(parquet)
            for i in range(pf.num_row_groups):  # one row group at a time: bounded memory
                self._load(cur, table, [c for c, _ in schema], rows(pf.read_row_group(i), schema, self.kind))
            step("load")
            if id_columns:  # deltas delete by id: keep that an index lookup
                cur.execute(
                    f"CREATE UNIQUE INDEX {ident(f'{feed}_mirror_id')} ON {table} "
                    f"({', '.join(ident(c) for c in id_columns)})"
                )
            got = self._count(cur, table)
            if got != row_count:
                raise Drift(f"{feed}/{version}: full.parquet has {got} rows, the manifest says {row_count}")
            self._record(cur, feed, version, manifest_sha256, row_count, state_columns(schema, published))
            step("state")

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
        table = ident(feed)
        with self._transaction() as cur:
            if delta.deletes.num_rows:
                gone = self._delete(cur, table, id_columns, delta.deletes, held.schema)
                if gone != delta.deletes.num_rows:
                    raise Drift(
                        f"{feed}/{version}: {delta.deletes.num_rows} ids to change or delete, "
                        f"{gone} found in the local copy"
                    )
            step("delete")
            self._load(cur, table, delta.inserts.column_names, rows(delta.inserts, held.schema, self.kind))
            step("insert")
            got = self._count(cur, table)
            if got != row_count:
                raise Drift(f"{feed}/{version}: {got} rows after the delta, the manifest says {row_count}")
            self._record(cur, feed, version, manifest_sha256, row_count, state_columns(held.schema, held.published))
            step("state")


class _SQLiteTx:
    def __init__(self, con):
        self.con = con

    def __enter__(self):
        self.cur = self.con.cursor()
        self.cur.execute("BEGIN IMMEDIATE")
        return self.cur

    def __exit__(self, exc_type, exc, tb):
        self.cur.execute("ROLLBACK" if exc_type else "COMMIT")
        self.cur.close()
        return False


class _PgTx:
    def __init__(self, con):
        self.con = con

    def __enter__(self):
        self.tx = self.con.transaction()
        self.tx.__enter__()
        self.cur = self.con.cursor()
        return self.cur

    def __exit__(self, exc_type, exc, tb):
        self.cur.close()
        return self.tx.__exit__(exc_type, exc, tb)


class SQLiteTarget(_SqlTarget):
    kind = "sqlite"
    _sql_type = staticmethod(_sqlite_type)
    _tx = _SQLiteTx

    def __init__(self, path: Path | str):
        import sqlite3

        self.label = str(path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: transactions are the explicit BEGIN … COMMIT below (DDL included)
        self.con = sqlite3.connect(str(path), isolation_level=None)
        self._init_state()


class PostgresTarget(_SqlTarget):
    kind = "postgresql"
    p = "%s"
    _sql_type = staticmethod(_pg_type)
    _tx = _PgTx

    def __init__(self, url: str):
        import psycopg

        from .errors import SourceUnreachable

        self.label = re.sub(r"//[^@/]*@", "//…@", url)  # never print a password
        try:
            self.con = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
        except psycopg.OperationalError as exc:
            raise SourceUnreachable(
                f"无法连接 PostgreSQL {self.label}：{exc}", f"Cannot connect to PostgreSQL {self.label}: {exc}"
            ) from exc
        self._init_state()

    def _load(self, cur, table: str, columns: list[str], batches: Iterator[list[tuple]]) -> None:
        with cur.copy(f"COPY {table} ({', '.join(ident(c) for c in columns)}) FROM STDIN") as copy:
            for batch in batches:
                for row in batch:
                    copy.write_row(row)

    def _delete(self, cur, table: str, id_columns: Sequence[str], ids: pa.Table, schema: Schema) -> int:
        types = dict(schema)
        cur.execute(
            "CREATE TEMP TABLE _mirror_ids ("
            + ", ".join(f"{ident(c)} {_pg_type(types[c])}" for c in id_columns)
            + ") ON COMMIT DROP"
        )
        self._load(cur, "_mirror_ids", list(id_columns), rows(ids, schema, self.kind))
        match = " AND ".join(f"{table}.{ident(c)} = d.{ident(c)}" for c in id_columns)
        cur.execute(f"DELETE FROM {table} USING _mirror_ids d WHERE {match}")
        gone = cur.rowcount
        cur.execute("DROP TABLE _mirror_ids")
        return gone
