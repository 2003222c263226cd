"""The publication's DuckDB session: feeds staged, their files and deltas written from SQL.

Rows never pass through Python one by one: a feed arrives as an Arrow stream (a pyarrow table, a
polars frame, a DuckDB relation of the warehouse …), is loaded into a session table next to its
full.jsonl line (`render`), and every file is written from there in stable-id order — full.parquet
by DuckDB's COPY, full.csv, full.jsonl and delta.jsonl as streams of Arrow string batches whose
bytes go straight to the file. The delta is a FULL OUTER JOIN of the previous version's
full.parquet and the staged rows on the id, comparing the JSON lines. DuckDB spills to the session's
work directory beyond `memory_limit`, so memory does not grow with the row count.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from . import fsutil
from .feeds import FeedSpec
from .formats import FileEntry, file_entry
from .guards import candidate_sql, find_in_records
from .render import (
    csv_line_sql,
    ident,
    is_scalar,
    json_line_sql,
    json_sql,
    register_functions,
    sql_str,
)

LINE = "__publish_line"  # the staged full.jsonl line of a row (never a feed column)
BATCH_ROWS = 20_000  # rows per Arrow batch streamed to a file: bounds the memory of a write
DEFAULT_MEMORY_LIMIT = "1GB"


@dataclass
class StagedFeed:
    spec: FeedSpec
    table: str  # session table: the rows in id order, and their LINE
    columns: list[tuple[str, Any]]  # (name, DuckDB type) in the input's order
    schema: pa.Schema  # the input's Arrow schema: the manifest's column types
    rows: int
    id_suspects: int = 0  # rows that may hold a full ID number (checked exactly by full_id_numbers)

    @property
    def select(self) -> str:
        return ", ".join(ident(n) for n, _ in self.columns)

    def column_info(self) -> list[dict[str, str]]:
        return [{"name": f.name, "type": str(f.type), "header": self.spec.header(f.name)} for f in self.schema]


def arrow_stream(data: Any) -> pa.RecordBatchReader:
    """An Arrow stream of a feed's rows from what a caller has (read lazily where it can be)."""
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return data.to_reader(BATCH_ROWS)
    if isinstance(data, duckdb.DuckDBPyRelation):
        return data.to_arrow_reader(BATCH_ROWS)
    if hasattr(data, "__arrow_c_stream__"):  # polars, other Arrow producers
        return pa.RecordBatchReader.from_stream(data)
    if hasattr(data, "to_arrow"):
        return pa.Table.from_batches(data.to_arrow().to_batches()).to_reader(BATCH_ROWS)
    raise TypeError(f"expected a pyarrow.Table, an Arrow stream or a DuckDB relation, got {type(data).__name__}")


def _write_batches(batches: Iterator[pa.RecordBatch], fh: BinaryIO | None, hasher: Any) -> int:
    """Write the bytes of a stream's one string column (no nulls) as they are; returns the rows."""
    rows = 0
    for batch in batches:
        col = batch.column(0)
        if col.null_count:
            raise ValueError("a rendered line is NULL")  # pragma: no cover - render never yields NULL
        if len(col):
            data = _string_bytes(col)
            if fh is not None:
                fh.write(data)
            hasher.update(data)
        rows += len(col)
    return rows


def _string_bytes(col: pa.Array) -> memoryview:
    """The concatenated values of a string array, without copying them."""
    if col.type == pa.string_view():
        col = col.cast(pa.large_string())
    width = 8 if col.type == pa.large_string() else 4
    _, offsets, data = col.buffers()
    first = int.from_bytes(offsets[col.offset * width : (col.offset + 1) * width], "little", signed=True)
    end = (col.offset + len(col)) * width
    last = int.from_bytes(offsets[end : end + width], "little", signed=True)
    return memoryview(data)[first:last]


class Session:
    """One publication's DuckDB: in memory, spilling into `work_dir` (inside the staging area)."""

    def __init__(self, work_dir: Path, *, memory_limit: str | None = DEFAULT_MEMORY_LIMIT, threads: int | None = None):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = {"temp_directory": str(self.work_dir / "spill"), "preserve_insertion_order": True}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(":memory:", config=config)
        register_functions(self.con)
        self.threads = self.con.sql("SELECT current_setting('threads')").fetchall()[0][0]
        self.feeds: dict[str, StagedFeed] = {}
        self._described: dict[str, tuple[list[str], list[Any]]] = {}

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- staging ----------------------------------------------------------------------------
    def stage(self, spec: FeedSpec, data: Any) -> StagedFeed:
        """Load a feed's rows with their full.jsonl lines (validated: ids present, scalar, non-null,
        unique). Reads sort by id (`ordered`)."""
        reader = arrow_stream(data)
        names = reader.schema.names
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"feed {spec.name}: duplicate column names {dup}")
        missing = [c for c in spec.id_columns if c not in names]
        if missing:
            raise ValueError(f"feed {spec.name}: id column(s) {missing} missing (columns: {names})")
        if LINE in names:
            raise ValueError(f"feed {spec.name}: column name {LINE} is reserved")
        self.con.register("empty_input", pa.Table.from_batches([], reader.schema))
        columns = list(zip(names, self.con.sql("SELECT * FROM empty_input").types))
        self.con.unregister("empty_input")
        types = dict(columns)
        if not all(is_scalar(types[c]) for c in spec.id_columns):
            raise ValueError(f"feed {spec.name}: id columns {spec.id_columns} must be scalar")
        table, src = f"feed_{spec.name}", f"src_{spec.name}"
        self.con.register(src, reader)
        try:
            self.con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT *, {json_line_sql(columns)} AS {LINE} "
                f"FROM {src} ORDER BY {self._ids(spec)}"
            )
        finally:
            self.con.unregister(src)
        ids = self._ids(spec)
        nulls = " OR ".join(f"{ident(c)} IS NULL" for c in spec.id_columns)
        distinct = ids if len(spec.id_columns) == 1 else f"({ids})"
        rows, null_ids, unique, suspects = self.con.execute(  # one scan for every check
            f"SELECT count(*), count(*) FILTER (WHERE {nulls}), count(DISTINCT {distinct}), "
            f"count(*) FILTER (WHERE {candidate_sql(LINE)}) FROM {table}"
        ).fetchall()[0]
        if null_ids:
            raise ValueError(f"feed {spec.name}: {null_ids} row(s) have a null id {spec.id_columns}")
        if unique != rows:
            dup = self.con.execute(
                f"SELECT {ids} FROM {table} GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 1"
            ).fetchall()[0]
            raise ValueError(f"feed {spec.name}: duplicate id {list(dup)} (ids must be unique)")
        staged = StagedFeed(spec, table, columns, reader.schema.remove_metadata(), rows, suspects)
        self.feeds[spec.name] = staged
        return staged

    @staticmethod
    def _ids(spec: FeedSpec, prefix: str = "") -> str:
        return ", ".join(prefix + ident(c) for c in spec.id_columns)

    def relation(self, feed: str) -> duckdb.DuckDBPyRelation:
        """A staged feed's rows (sorted by id) for assertion hooks."""
        return self.con.sql(self.ordered(feed, self.feeds[feed].select))

    # -- checks -----------------------------------------------------------------------------
    def full_id_numbers(self, feed: str) -> list[tuple[str, int, str]]:
        """Columns holding full ID numbers: [(column, values, masked example)]."""
        staged = self.feeds[feed]
        if not staged.id_suspects:
            return []
        reader = self.con.sql(f"SELECT {LINE} FROM {staged.table} WHERE {candidate_sql(LINE)}").to_arrow_reader(
            BATCH_ROWS
        )
        records = (json.loads(line) for batch in reader for line in batch.column(0).to_pylist())
        return find_in_records(records, staged.spec.unit_codes, staged.spec.subject_codes)

    def content_digest(self, feed: str) -> str:
        """sha256 of the feed's full.jsonl bytes, without writing the file."""
        hasher = hashlib.sha256()
        _write_batches(self._in_order(feed, f"{LINE} || chr(10)"), None, hasher)
        return hasher.hexdigest()

    def ordered(self, feed: str, select: str) -> str:
        """SQL of `select` over a staged feed's rows, sorted by id (small reads: hooks, `prepare`)."""
        staged = self.feeds[feed]
        return f"SELECT {select} FROM {staged.table} ORDER BY {self._ids(staged.spec)}"

    def _lines(self, sql: str) -> Iterator[pa.RecordBatch]:
        return iter(self.con.sql(sql).to_arrow_reader(BATCH_ROWS))

    def _in_order(self, feed: str, select: str) -> Iterator[pa.RecordBatch]:
        """`select` over a staged feed's rows in id order, streamed. The table was filled in id order;
        a single-threaded scan streams it so (a parallel one hands row groups over in any order,
        and sorting again per file would cost a sort of the whole feed each time)."""
        self.con.execute("SET threads = 1")
        reader = self.con.sql(f"SELECT {select} FROM {self.feeds[feed].table}").to_arrow_reader(BATCH_ROWS)
        try:
            yield from reader
        finally:
            reader.close()
            self.con.execute(f"SET threads = {self.threads}")

    # -- files ------------------------------------------------------------------------------
    def write_full_files(self, feed: str, out_dir: Path) -> list[FileEntry]:
        """full.parquet, full.csv, full.jsonl of a staged feed in `out_dir` (fsync'd)."""
        staged = self.feeds[feed]
        parquet = out_dir / "full.parquet"
        # COPY keeps the table's (id) order: preserve_insertion_order
        self.con.execute(
            f"COPY (SELECT {staged.select} FROM {staged.table}) TO {sql_str(str(parquet))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        fsutil.fsync_file(parquet)
        # the CSV is for spreadsheets: its flat columns (lists and structs stay in Parquet and JSONL)
        flat = [(n, t) for n, t in staged.columns if is_scalar(t)]
        header = _csv_header(staged.spec.headers([n for n, _ in flat]))
        csv_lines = self._in_order(feed, csv_line_sql(flat))
        csv_entry = _write_stream(out_dir / "full.csv", csv_lines, header)
        jsonl_lines = self._in_order(feed, f"{LINE} || chr(10)")
        return [file_entry(parquet, staged.rows), csv_entry, _write_stream(out_dir / "full.jsonl", jsonl_lines)]

    def write_delta(
        self, spec: FeedSpec, previous: Path | None, current: str | Path, out_dir: Path
    ) -> tuple[FileEntry, dict[str, int]]:
        """delta.jsonl from the `previous` version's full.parquet (None: everything is ADD) to the
        `current` rows (a staged feed's name, or another version's full.parquet); with its counts."""
        cur = self._lines_of(spec, current)
        prev = (
            self._lines_of(spec, previous)
            if previous is not None
            else f"SELECT {self._ids(spec)}, NULL::VARCHAR AS {LINE} FROM ({cur}) WHERE false"
        )
        types = self._id_types(spec, current)
        on = " AND ".join(f"p.{ident(c)} = c.{ident(c)}" for c in spec.id_columns)
        key = [f"coalesce(c.{ident(c)}, p.{ident(c)})" for c in spec.id_columns]
        id_json = [json_sql(k, types[c]) for k, c in zip(key, spec.id_columns)]
        id_text = id_json[0] if len(id_json) == 1 else "'[' || " + " || ',' || ".join(id_json) + " || ']'"
        op = f"CASE WHEN p.{LINE} IS NULL THEN 'ADD' WHEN c.{LINE} IS NULL THEN 'DEL' ELSE 'MOD' END"
        sql = (
            f'SELECT \'{{"op":"\' || {op} || \'","id":\' || {id_text} || \',"record":\' || '
            f"coalesce(c.{LINE}, p.{LINE}) || '}}' || chr(10) AS line, {op} AS op "
            f"FROM ({prev}) p FULL OUTER JOIN ({cur}) c ON {on} "
            f"WHERE p.{LINE} IS DISTINCT FROM c.{LINE} ORDER BY {', '.join(key)}"
        )
        stats = dict.fromkeys(("ADD", "MOD", "DEL"), 0)

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in self._lines(sql):
                for item in pc.value_counts(batch.column(1)).to_pylist():
                    stats[item["values"]] += item["counts"]
                yield batch

        return _write_stream(out_dir / "delta.jsonl", counted()), stats

    def _lines_of(self, spec: FeedSpec, source: str | Path) -> str:
        """SQL of (id columns, LINE) for a staged feed or a published full.parquet."""
        ids = self._ids(spec)
        if isinstance(source, str):
            return f"SELECT {ids}, {LINE} FROM {self.feeds[source].table}"
        scan = f"read_parquet({sql_str(str(source))})"
        return f"SELECT {ids}, {json_line_sql(list(zip(*self._describe(scan))))} AS {LINE} FROM {scan}"

    def _describe(self, scan: str) -> tuple[list[str], list[Any]]:
        if scan not in self._described:
            rel = self.con.sql(f"SELECT * FROM {scan}")
            self._described[scan] = (rel.columns, rel.types)
        return self._described[scan]

    def _id_types(self, spec: FeedSpec, source: str | Path) -> dict[str, Any]:
        if isinstance(source, str):
            return dict(self.feeds[source].columns)
        return dict(zip(*self._describe(f"read_parquet({sql_str(str(source))})")))


def _write_stream(path: Path, batches: Iterator[pa.RecordBatch], head: bytes = b"") -> FileEntry:
    """Write `head` and the batches' lines to `path` (fsync'd), hashing as it goes."""
    hasher = hashlib.sha256(head)
    with open(path, "wb") as fh:
        fh.write(head)
        rows = _write_batches(batches, fh, hasher)
        fh.flush()
        os.fsync(fh.fileno())
    fsutil.step(f"write {path.name}")
    return FileEntry(path.name, path.stat().st_size, hasher.hexdigest(), rows)


def _csv_header(headers: Sequence[str]) -> bytes:
    """The BOM and the header row, written by the csv module like every CSV the project wrote."""
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(headers)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
