"""The publication's DuckDB session: feeds staged, their files and deltas written from SQL.

Rows never pass through Python one by one: a feed arrives as an Arrow stream (a pyarrow table, a
polars frame, a DuckDB relation of the warehouse …), is loaded into a session table sorted by its
stable id, and every file is written from there in id order — full.parquet by DuckDB's COPY (in a
thread, beside the text files), full.csv and full.jsonl rendered (`render`) by one parallel,
order-preserving query whose Arrow string batches go straight to the files. The delta is a FULL
OUTER JOIN of the previous version's full.parquet and the staged rows on the id: rows whose columns
are equal are equal lines (`_changed_sql`), so only the others are rendered and compared as lines.
DuckDB spills to the session's work directory beyond `memory_limit`, so memory does not grow with
the row count.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from . import fsutil
from .feeds import FeedSpec
from .formats import FileEntry, file_entry
from .guards import candidate_sql, find_in_records, row_text_sql
from .render import (
    csv_select,
    ident,
    is_scalar,
    json_line_sql,
    json_sql,
    register_functions,
    sql_str,
)

LINE = "__publish_line"  # reserved: the name of a row's rendered full.jsonl line in queries
BATCH_ROWS = 20_000  # rows per Arrow batch streamed to a file: bounds the memory of a write
DEFAULT_MEMORY_LIMIT = "1GB"


@dataclass
class StagedFeed:
    spec: FeedSpec
    table: str  # session table: the rows in id order
    columns: list[tuple[str, Any]]  # (name, DuckDB type) in the input's order
    schema: pa.Schema  # the input's Arrow schema: the manifest's column types
    rows: int
    id_suspects: int = 0  # rows that may hold a full ID number (checked exactly by full_id_numbers)

    @property
    def select(self) -> str:
        return ", ".join(ident(n) for n, _ in self.columns)

    @property
    def line(self) -> str:
        """SQL of a row's full.jsonl line (no newline)."""
        return json_line_sql(self.columns)

    @property
    def id_columns(self) -> list[tuple[str, Any]]:
        """(SQL, type) of the id columns."""
        types = dict(self.columns)
        return [(ident(c), types[c]) for c in self.spec.id_columns]

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
        self._described: dict[str, list[tuple[str, Any]]] = {}  # a full.parquet's columns

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- staging ----------------------------------------------------------------------------
    def stage(self, spec: FeedSpec, data: Any) -> StagedFeed:
        """Load a feed's rows sorted by id (validated: ids present, scalar, non-null, unique). Lines
        are rendered as files are written, not stored: a sort of the columns costs a fifth of a
        sort of their lines, and the lines of a large feed would not fit `memory_limit`."""
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
            self.con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {src} ORDER BY {self._ids(spec)}")
        finally:
            self.con.unregister(src)
        ids = self._ids(spec)
        nulls = " OR ".join(f"{ident(c)} IS NULL" for c in spec.id_columns)
        distinct = ids if len(spec.id_columns) == 1 else f"({ids})"
        rows, null_ids, unique = self.con.execute(  # one scan for every check
            f"SELECT count(*), count(*) FILTER (WHERE {nulls}), count(DISTINCT {distinct}) FROM {table}"
        ).fetchall()[0]
        text = row_text_sql(columns)
        suspects = 0
        if text:  # a WHERE (not an aggregate's FILTER): the checksum and date only run where the regex matched
            sql = f"SELECT count(*) FROM (SELECT {text} AS t FROM {table}) WHERE {candidate_sql('t')}"
            suspects = self.con.execute(sql).fetchall()[0][0]
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
        # the exact check in Python on the few rows whose text passes the SQL one (their lines only)
        where = candidate_sql(row_text_sql(staged.columns))
        reader = self.con.sql(f"SELECT {staged.line} FROM {staged.table} WHERE {where}").to_arrow_reader(BATCH_ROWS)
        records = (json.loads(line) for batch in reader for line in batch.column(0).to_pylist())
        return find_in_records(records, staged.spec.unit_codes, staged.spec.subject_codes)

    def content_digest(self, feed: str) -> str:
        """sha256 of the feed's full.jsonl bytes, without writing the file."""
        hasher = hashlib.sha256()
        for batch in self._in_order(feed, f"{self.feeds[feed].line} || chr(10)"):
            hasher.update(_string_bytes(batch.column(0)))
        return hasher.hexdigest()

    def ordered(self, feed: str, select: str) -> str:
        """SQL of `select` over a staged feed's rows, sorted by id (small reads: hooks, `prepare`)."""
        staged = self.feeds[feed]
        return f"SELECT {select} FROM {staged.table} ORDER BY {self._ids(staged.spec)}"

    def _stream(self, sql: str) -> Iterator[pa.RecordBatch]:
        """A query's Arrow batches, in its order: DuckDB's streaming result preserves insertion
        order while every thread renders (`preserve_insertion_order`)."""
        reader = self.con.sql(sql).to_arrow_reader(BATCH_ROWS)
        try:
            yield from reader
        finally:
            reader.close()

    def _in_order(self, feed: str, select: str) -> Iterator[pa.RecordBatch]:
        """`select` over a staged feed's rows in id order, the order the table was filled in: a
        projection of a scan keeps it; a join would not (`render` keeps joins out of the lines:
        `x IN (…)` of a few constants is planned as one)."""
        return self._stream(f"SELECT {select} FROM {self.feeds[feed].table}")

    # -- files ------------------------------------------------------------------------------
    def write_full_files(self, feed: str, out_dir: Path, add_delta: bool = False) -> list[FileEntry]:
        """full.parquet, full.csv, full.jsonl of a staged feed in `out_dir` (fsync'd); with
        `add_delta`, also the delta.jsonl of a first version (every row ADD) from the same lines."""
        staged = self.feeds[feed]
        parquet = out_dir / "full.parquet"

        def write_parquet() -> None:  # COPY keeps the table's (id) order: preserve_insertion_order
            with self.con.cursor() as cursor:
                cursor.execute(
                    f"COPY (SELECT {staged.select} FROM {staged.table}) TO {sql_str(str(parquet))} "
                    "(FORMAT parquet, COMPRESSION zstd)"
                )

        # the CSV is for spreadsheets: its flat columns (lists and structs stay in Parquet and JSONL)
        flat = [(n, t) for n, t in staged.columns if is_scalar(t)]
        paths = [out_dir / "full.csv", out_dir / "full.jsonl"]
        heads = [_csv_header(staged.spec.headers([n for n, _ in flat])), b""]
        extra = [f"{LINE} || chr(10)"]
        if add_delta:
            paths.append(out_dir / "delta.jsonl")
            heads.append(b"")
            extra.append(_delta_line("'ADD'", _id_text(staged.id_columns), LINE))
        # one scan renders the text files (a projection of the table: in its order, by every
        # thread), while the parquet is written in a thread (DuckDB releases the GIL)
        with ThreadPoolExecutor(1) as pool:
            parquet_done = pool.submit(write_parquet)
            rows = f"(SELECT *, {staged.line} AS {LINE} FROM {staged.table})"
            entries = _write_streams(list(zip(paths, heads)), self._stream(csv_select(flat, rows, extra)))
            parquet_done.result()
        fsutil.fsync_file(parquet)  # here, not in the thread: crash points stay in one order
        return [file_entry(parquet, staged.rows), *entries]

    def write_delta(
        self, spec: FeedSpec, previous: Path | None, current: str | Path, out_dir: Path
    ) -> tuple[FileEntry, dict[str, int]]:
        """delta.jsonl from the `previous` version's full.parquet (None: everything is ADD) to the
        `current` rows (a staged feed's name, or another version's full.parquet); with its counts.
        Rows whose columns equal the previous ones are not rendered (`_changed_sql`)."""
        cur, cur_cols = self._source(current)
        ids = self._ids(spec)
        if previous is None:
            order = "" if isinstance(current, str) else f" ORDER BY {ids}"  # a staged table is in id order
            types = dict(cur_cols)
            id_text = _id_text([(ident(c), types[c]) for c in spec.id_columns])
            line = _delta_line("'ADD'", id_text, json_line_sql(cur_cols))
            sql = f"SELECT {line} AS line, 'ADD' AS op FROM {cur}{order}"
        else:
            prev, prev_cols = self._source(previous)
            keys = [f"k{i}" for i in range(len(spec.id_columns))]
            first = ident(spec.id_columns[0])
            on = " AND ".join(f"p.{ident(c)} = c.{ident(c)}" for c in spec.id_columns)
            key = ", ".join(f"coalesce(c.{ident(c)}, p.{ident(c)}) AS {k}" for k, c in zip(keys, spec.id_columns))
            # 1. the ids whose rows may differ: the join compares the columns and keeps only the ids
            # (rendering in a join that holds both sides' columns runs out of memory at 1M rows)
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE delta_ids AS SELECT {key} FROM {prev} p FULL OUTER JOIN {cur} c "
                f"ON {on} WHERE p.{first} IS NULL OR c.{first} IS NULL OR {_changed_sql(prev_cols, cur_cols)}"
            )

            def side(source: str, cols: list[tuple[str, Any]], q: str) -> str:  # their lines on one side
                d_on = " AND ".join(f"{q}.{ident(c)} = d.{k}" for k, c in zip(keys, spec.id_columns))
                ks = ", ".join(f"{q}.{ident(c)} AS {k}" for k, c in zip(keys, spec.id_columns))
                line = json_line_sql(cols, q + ".")
                return f"SELECT {ks}, {line} AS line FROM {source} {q} SEMI JOIN delta_ids d ON {d_on}"

            # 2. their lines, compared, in id order
            op = "CASE WHEN p.line IS NULL THEN 'ADD' WHEN c.line IS NULL THEN 'DEL' ELSE 'MOD' END"
            types = dict(cur_cols)
            id_text = _id_text([(f"coalesce(c.{k}, p.{k})", types[c]) for k, c in zip(keys, spec.id_columns)])
            sql = (
                f"SELECT {_delta_line(op, id_text, 'coalesce(c.line, p.line)')} AS line, {op} AS op "
                f"FROM ({side(prev, prev_cols, 'p')}) p FULL OUTER JOIN ({side(cur, cur_cols, 'c')}) c "
                f"ON {' AND '.join(f'p.{k} = c.{k}' for k in keys)} WHERE p.line IS DISTINCT FROM c.line "
                f"ORDER BY {', '.join(f'coalesce(c.{k}, p.{k})' for k in keys)}"
            )
        stats = dict.fromkeys(("ADD", "MOD", "DEL"), 0)

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in self._stream(sql):
                for item in pc.value_counts(batch.column(1)).to_pylist():
                    stats[item["values"]] += item["counts"]
                yield batch

        (entry,) = _write_streams([(out_dir / "delta.jsonl", b"")], counted())
        self.con.execute("DROP TABLE IF EXISTS delta_ids")
        return entry, stats

    def _source(self, source: str | Path) -> tuple[str, list[tuple[str, Any]]]:
        """(FROM item, columns) of a staged feed or a published full.parquet."""
        if isinstance(source, str):
            return self.feeds[source].table, self.feeds[source].columns
        scan = f"read_parquet({sql_str(str(source))})"
        if scan not in self._described:
            rel = self.con.sql(f"SELECT * FROM {scan}")
            self._described[scan] = list(zip(rel.columns, rel.types))
        return scan, self._described[scan]


def _id_text(ids: Sequence[tuple[str, Any]]) -> str:
    """SQL of a row's id as delta.jsonl writes it from (expression, type) pairs: the value, or a
    list of the values."""
    parts = [json_sql(expr, t) for expr, t in ids]
    return parts[0] if len(parts) == 1 else "'[' || " + " || ',' || ".join(parts) + " || ']'"


def _delta_line(op: str, id_text: str, line: str) -> str:
    return f"concat('{{\"op\":\"', {op}, '\",\"id\":', {id_text}, ',\"record\":', {line}, '}}', chr(10))"


# Kinds whose equal values always render to equal text. Not floats (-0.0 = 0.0, rendered apart),
# intervals (1 month = 30 days) or anything else: those columns compare by their rendered text.
_EQUAL_RENDERS_EQUAL = frozenset(
    {
        "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
        "ubigint", "uhugeint", "decimal", "varchar", "blob", "uuid", "date", "timestamp", "timestamp_s",
        "timestamp_ms", "timestamp_ns", "timestamp with time zone", "list", "array", "struct",
    }
)  # fmt: skip


def _equal_renders_equal(t: Any) -> bool:
    if t.id not in _EQUAL_RENDERS_EQUAL:
        return False
    if t.id in ("list", "array", "struct"):
        return all(_equal_renders_equal(c) for _, c in t.children if not isinstance(c, (int, str)))
    return True


def _changed_sql(prev: list[tuple[str, Any]], cur: list[tuple[str, Any]]) -> str:
    """SQL condition over a previous row `p` and the current row `c` that holds wherever their
    full.jsonl lines differ (and maybe elsewhere: the lines are compared after it). Columns of the
    same type whose equal values render equal compare as values (no rendering); the others by
    their rendered text; with other columns (names, order) every line differs."""
    if [n for n, _ in prev] != [n for n, _ in cur]:
        return "true"
    tests = []
    for (name, pt), (_, ct) in zip(prev, cur):
        p, c = f"p.{ident(name)}", f"c.{ident(name)}"
        if str(pt) == str(ct) and _equal_renders_equal(ct):
            tests.append(f"{p} IS DISTINCT FROM {c}")
        else:
            tests.append(f"{json_sql(p, pt)} IS DISTINCT FROM {json_sql(c, ct)}")
    return " OR ".join(tests) or "false"


def _write_streams(files: Sequence[tuple[Path, bytes]], batches: Iterator[pa.RecordBatch]) -> list[FileEntry]:
    """Write column i of the batches (lines, no nulls) to file i after its `head` (fsync'd),
    hashing as it goes: one scan of the rows feeds every file."""
    hashers = [hashlib.sha256(head) for _, head in files]
    rows = 0
    handles = [open(path, "wb") for path, _ in files]
    try:
        for fh, (_, head) in zip(handles, files):
            fh.write(head)
        for batch in batches:
            for i, (fh, hasher) in enumerate(zip(handles, hashers)):
                col = batch.column(i)
                if col.null_count:
                    raise ValueError("a rendered line is NULL")  # pragma: no cover - render never yields NULL
                if len(col):
                    data = _string_bytes(col)
                    fh.write(data)
                    hasher.update(data)
            rows += batch.num_rows
        for fh in handles:
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        for fh in handles:
            fh.close()
    entries = []
    for (path, _), hasher in zip(files, hashers):
        fsutil.step(f"write {path.name}")
        entries.append(FileEntry(path.name, path.stat().st_size, hasher.hexdigest(), rows))
    return entries


def _csv_header(headers: Sequence[str]) -> bytes:
    """The BOM and the header row, written by the csv module like every CSV the project wrote."""
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(headers)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
