"""Rows looked up by an id without a Python object per row: sorted Arrow columns and the ids as a
fixed-width numpy array searched by bisection (the answer index of a snapshot, `answer_index.py`).

Ids are ASCII (USCCs, the keyed hashes of persons, `type:id` keys); shorter ones are padded with
spaces to the longest, which keeps their order (a space sorts before every printable character).
Each distinct id is held once, with where its rows start (a subject has 18 restriction rows).

Built from a feed's Parquet file (`from_parquet`, the server's snapshots) the plain text of the
feed is never held: the ids are built in batches into one preallocated array, sorted by `argsort`,
then each column is read on its own (text the file stores dictionary-encoded stays encoded), put
in id order and its source freed before the next is read — at any time the index so far, the ids
and one column are in memory, not a copy of the whole feed beside its batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: a string column is dictionary-encoded when it has at most this share of distinct values
#: (measure names and bases, statuses, authorities repeat on every row of their kind)
DICTIONARY_SHARE = 0.5
#: rows read at a time: the plain text of one batch is held while it is encoded
BATCH_ROWS = 1_000_000


class SortedIds:
    """Rows of one relation sorted by an id column: the distinct ids as a numpy `S<width>` array
    for bisection (with the first row of each when some have several), the other columns as
    Arrow, sliced per lookup, repetitive text dictionary-encoded."""

    def __init__(self, table: pa.Table, id_column: str = "_id"):
        ids = table.column(id_column).combine_chunks() if table.num_rows else pa.array([], pa.string())
        table = table.drop_columns([id_column])
        width, fixed = fixed_width(ids)
        del ids
        if len(fixed) > 1 and not bool(np.all(fixed[:-1] <= fixed[1:])):
            # sorting the fixed-width ids and taking the (encoded) rows costs a third of an ORDER BY;
            # `take` writes one contiguous copy (no combining of the chunks before it)
            order = np.argsort(fixed, kind="stable")
            fixed, table = fixed[order], table.take(pa.array(order))
        self._hold(width, *grouped(fixed), narrowed(table))

    def _hold(self, width: int, ids: np.ndarray, starts: np.ndarray | None, table: pa.Table) -> None:
        self.width, self.ids, self.starts, self.table = width, ids, starts, table
        self._columns: dict[str, pa.Array] = {}  # one chunk per column `first` reads
        self.column_names = frozenset(table.column_names)  # asked per call: pyarrow builds a list each time
        self._last: tuple[str | None, tuple[int, int]] = (None, (0, 0))  # a unit's name and 守信 flag: one search

    @classmethod
    def read(cls, cur, relation: str, id_sql: str, columns: Iterable[str], where: str = "true") -> SortedIds:
        """`SELECT columns FROM relation WHERE where` by `id_sql` (the rows of one id in the
        relation's order): one scan, read in batches and each compacted as it comes (the plain
        text of a whole feed is never held at once), sorted here."""
        cols = "".join(f', "{c}"' for c in columns)
        query = cur.sql(f"SELECT {id_sql} AS _id{cols} FROM {relation} WHERE ({where}) AND {id_sql} IS NOT NULL")
        reader = query.to_arrow_reader(BATCH_ROWS)
        parts = [dictionary_encoded(pa.Table.from_batches([batch])) for batch in reader]
        if not parts:
            return cls(reader.schema.empty_table())
        return cls(pa.concat_tables(parts).unify_dictionaries())

    @classmethod
    def from_parquet(
        cls, path: Path | str, key: Sequence[str], columns: Sequence[str], not_null: Sequence[str] = ()
    ) -> SortedIds:
        """The rows of a Parquet file by the `key` columns joined with ':' (SQL `a || ':' || b`:
        rows where one is NULL, or a `not_null` column is, left out), in the file's order within
        an id — what `read` gives for the same relation, with a fraction of its peak memory (see
        the module docstring)."""
        file = pq.ParquetFile(path)
        by = _ids_by_rank if _repetitive(file, key[-1]) else _ids_by_sorting
        width, ids, starts, index, rows = by(file, list(key), list(not_null))
        dictionary = {n for n in columns if _repetitive(file, n)}
        arrays = []
        for name in columns:  # one column at a time: its source is freed before the next is read
            read = pq.ParquetFile(path, read_dictionary=[name] if name in dictionary else None, metadata=file.metadata)
            column = read.read(columns=[name]).column(0)
            if name in dictionary and not pa.types.is_dictionary(column.type):  # dates: encoded here
                column = pa.chunked_array([pc.dictionary_encode(c) for c in column.chunks])
            arrays.append(_in_order(column, index, rows))
        found = cls.__new__(cls)
        found._hold(width, ids, starts, pa.Table.from_arrays(arrays, names=list(columns)))
        return found

    def span(self, key: str) -> tuple[int, int]:
        """[first, end) of the rows whose id is `key` (empty when none): one bisection."""
        if len(key) > self.width or not len(self.ids):
            return (0, 0)
        last = self._last  # one tuple, replaced whole: safe to read from any thread
        if last[0] == key:
            return last[1]
        # plain `bytes` (not `np.bytes_`): the method call then costs a third as much
        padded = key.ljust(self.width).encode("ascii", "replace")
        i = int(self.ids.searchsorted(padded, "left"))
        if i == len(self.ids) or self.ids[i] != padded:  # most codes asked: not there
            found = (0, 0)
        elif self.starts is None:  # each distinct id once: its rows from `starts`
            found = (i, i + 1)
        else:
            found = (int(self.starts[i]), int(self.starts[i + 1]))
        self._last = (key, found)
        return found

    def spans(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`span` of every key at once: one vectorised search of the ids for all of them (a
        batch's codes in one pass, not a numpy call per code and relation)."""
        n = len(keys)
        if not n or not len(self.ids):
            empty = np.zeros(n, dtype=np.int64)
            return empty, empty
        fits = np.fromiter((len(k) <= self.width for k in keys), dtype=bool, count=n)
        padded = np.array(
            [k.ljust(self.width).encode("ascii", "replace") if ok else b"" for k, ok in zip(keys, fits)],
            dtype=f"S{self.width}",
        )
        i = np.searchsorted(self.ids, padded, "left")
        at = np.minimum(i, len(self.ids) - 1)
        hit = fits & (i < len(self.ids)) & (self.ids[at] == padded)
        if self.starts is None:
            lo, hi = i.astype(np.int64), i.astype(np.int64) + 1
        else:
            lo, hi = self.starts[at].astype(np.int64), self.starts[at + 1].astype(np.int64)
        lo[~hit] = 0
        hi[~hit] = 0
        return lo, hi

    def rows_of(self, keys: list[str]) -> list[list[dict]]:
        """`rows` of every key (one pass: `spans`)."""
        lo, hi = self.spans(keys)
        return [self.table.slice(a, b - a).to_pylist() if b > a else [] for a, b in zip(lo.tolist(), hi.tolist())]

    def firsts(self, keys: list[str], column: str) -> list[Any]:
        """`first` of every key (one pass: `spans`, one `take`)."""
        lo, hi = self.spans(keys)
        found = hi > lo
        out: list[Any] = [None] * len(keys)
        if found.any():
            values = self._column(column).take(pa.array(lo[found])).to_pylist()
            for i, v in zip(np.flatnonzero(found).tolist(), values):
                out[i] = v
        return out

    def _column(self, column: str) -> pa.Array:
        found = self._columns.get(column)
        if found is None:  # `combine_chunks` copies even one chunk (the units' names: 0.4 GiB at 10 M)
            chunks = self.table.column(column)
            found = self._columns[column] = chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()
        return found

    def rows(self, key: str) -> list[dict]:
        lo, hi = self.span(key)
        return self.table.slice(lo, hi - lo).to_pylist() if hi > lo else []

    def first(self, key: str, column: str) -> Any:
        lo, hi = self.span(key)
        if hi == lo:
            return None
        return self._column(column)[lo].as_py()

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + (self.starts.nbytes if self.starts is not None else 0) + self.table.nbytes


def grouped(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Sorted `ids` → (each distinct id once, the row where each starts and the end; None when
    every id has one row): a timeline's ids take a twentieth of the memory."""
    if len(ids) < 2:
        return ids, None
    new = ids[1:] != ids[:-1]
    if bool(new.all()):
        return ids, None
    starts = np.flatnonzero(new) + 1
    del new
    bounds = np.concatenate(([0], starts, [len(ids)])).astype(np.int32 if len(ids) < 2**31 else np.int64)
    return ids[bounds[:-1]], bounds


def _keys(batch: pa.RecordBatch, key: Sequence[str], not_null: Sequence[str]) -> pa.Array:
    """The batch's ids as SQL joins them (NULL when a part is), NULL where a not_null column is."""
    parts = [batch.column(k) for k in key]
    parts = [p if p.type == pa.string() else p.cast(pa.string()) for p in parts]
    ids = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, ":")
    for name in not_null:
        ids = pc.if_else(pc.is_valid(batch.column(name)), ids, pa.scalar(None, pa.string()))
    return ids


Ids = tuple[int, np.ndarray, "np.ndarray | None", "pa.Array | None", int]  # width, ids, starts, take, rows


def _ids_by_sorting(file: pq.ParquetFile, key: list[str], not_null: list[str]) -> Ids:
    """Ids that are mostly distinct (units' USCCs, list entries): the padded ids of every row in
    one array (two passes over the key columns: the width, then the ids batch by batch, no batch
    of text kept), sorted by `argsort` unless the file has them in order already."""
    columns = list(dict.fromkeys([*key, *not_null]))
    width, valid = 0, []
    for batch in file.iter_batches(BATCH_ROWS, columns=columns):
        keys = _keys(batch, key, not_null)
        width = max(width, int(pc.max(pc.binary_length(keys)).as_py() or 0))
        valid.append(pc.is_valid(keys).to_numpy(zero_copy_only=False))
    kept = np.concatenate(valid) if valid else np.zeros(0, bool)
    width = max(width, 1)
    ids, at = np.empty(int(kept.sum()), f"S{width}"), 0
    for batch in file.iter_batches(BATCH_ROWS, columns=columns):
        part = _keys(batch, key, not_null).drop_null()
        ids[at : at + len(part)] = fixed_width(part, width)[1]
        at += len(part)
    order = None
    if len(ids) > 1 and not bool(np.all(ids[:-1] <= ids[1:])):
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
    if not kept.all():  # the positions in the file of the rows kept, in id order
        positions = np.flatnonzero(kept)
        order = positions if order is None else positions[order]
    return (width, *grouped(ids), _take_index(order), len(ids))


def _ids_by_rank(file: pq.ParquetFile, key: list[str], not_null: list[str]) -> Ids:
    """Ids that repeat (a subject's restriction and timeline rows): each batch's ids
    dictionary-encoded, the dictionaries unified, the distinct ids sorted (a few per cent of the
    rows) and the rows ordered by their id's rank — an integer `argsort` (a radix sort) instead of
    one over strings, and no text array as long as the feed."""
    parts = [
        pc.dictionary_encode(_keys(b, key, not_null))
        for b in file.iter_batches(BATCH_ROWS, columns=list(dict.fromkeys([*key, *not_null])))
    ]
    if not parts:
        return 0, np.array([], dtype="S1"), None, None, 0
    column = pa.table([pa.chunked_array(parts)], names=["_id"]).unify_dictionaries().column(0)
    del parts
    width, distinct = fixed_width(column.chunk(0).dictionary)
    by_id = np.argsort(distinct, kind="stable")
    rank = np.empty(len(distinct) + 1, np.int32)  # the last: rows without an id, ranked after all
    rank[by_id], rank[-1] = np.arange(len(distinct), dtype=np.int32), len(distinct)
    ranks = np.concatenate([rank[c.indices.fill_null(len(distinct)).to_numpy()] for c in column.chunks])
    del column
    counts = np.bincount(ranks, minlength=len(distinct) + 1)
    order = np.argsort(ranks, kind="stable")[: len(ranks) - int(counts[-1])]
    del ranks
    starts = None
    if len(distinct) and int(counts[:-1].max()) > 1:
        starts = np.concatenate(([0], np.cumsum(counts[:-1]))).astype(np.int32 if len(order) < 2**31 else np.int64)
    in_file_order = not counts[-1] and bool(np.all(order[1:] > order[:-1]))
    return width, distinct[by_id], starts, None if in_file_order else _take_index(order), len(order)


def _take_index(order: np.ndarray | None) -> pa.Array | None:
    return None if order is None else pa.array(order.astype(np.int32) if len(order) < 2**31 else order)


def _repetitive(file: pq.ParquetFile, name: str) -> bool:
    """Whether column `name` (text or dates) is worth reading dictionary-encoded: the writer encoded it so in
    some row group (DuckDB does where the values repeat), or its first row group has at most
    DICTIONARY_SHARE distinct values (entry ids and names repeat on a listing's timeline rows,
    written plain: each row group holds few rows of each). Unique text (units' names) is read
    plain, without building a dictionary as large as itself."""
    meta = file.metadata
    at = meta.schema.names.index(name)
    kind = meta.schema.column(at)
    if kind.physical_type != "BYTE_ARRAY" and str(kind.logical_type) != "Date" or not meta.num_row_groups:
        return False
    if any(meta.row_group(g).column(at).has_dictionary_page for g in range(meta.num_row_groups)):
        return True  # dates too: a timeline's are a few thousand days, two bytes a row instead of four
    if kind.physical_type != "BYTE_ARRAY":
        return False
    sample = file.read_row_group(0, columns=[name]).column(0)
    return len(sample) > 0 and pc.count_distinct(sample).as_py() <= DICTIONARY_SHARE * len(sample)


def _in_order(column: pa.ChunkedArray, index: pa.Array | None, rows: int) -> pa.Array:
    """One column in id order, in one chunk: a dictionary column unified across row groups and
    kept where it has at most DICTIONARY_SHARE distinct values, with narrow indices (set before
    the `take`: it then moves one byte a row), else decoded after it."""
    if pa.types.is_dictionary(column.type) and column.num_chunks:
        column = pa.table([column], names=["c"]).unify_dictionaries().column(0)
        size = len(column.chunk(0).dictionary)
        if size > DICTIONARY_SHARE * rows:
            return _taken(column, index).dictionary_decode()
        narrow = pa.dictionary(_index_type(size), column.type.value_type)
        column = pa.chunked_array([c.cast(narrow) for c in column.chunks], narrow)
    return _taken(column, index)


def _taken(column: pa.ChunkedArray, index: pa.Array | None) -> pa.Array:
    return (column if index is None else column.take(index)).combine_chunks()


def _index_type(size: int) -> pa.DataType:
    return pa.int8() if size < 2**7 else pa.int16() if size < 2**15 else pa.int32()


def fixed_width(ids: pa.Array, width: int | None = None) -> tuple[int, np.ndarray]:
    """(width, the ids padded with spaces to it (default: the longest) as numpy `S<width>`): a
    view of the string buffer when every id then has that many bytes (ASCII), else a copy."""
    if not len(ids):
        return width or 0, np.array([], dtype=f"S{width or 1}")
    if ids.type != pa.string():
        ids = ids.cast(pa.string())
    lengths = pc.binary_length(ids)
    width = max(width if width is not None else int(pc.max(lengths).as_py() or 0), 1)  # '' is an id too
    if int(pc.min(lengths).as_py() or 0) != width:
        ids = pc.utf8_rpad(ids, width=width, padding=" ")
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + len(ids) + 1]
    if ids.null_count == 0 and int(offsets[-1] - offsets[0]) == width * len(ids):
        return width, np.frombuffer(ids.buffers()[2], dtype=f"S{width}", count=len(ids), offset=int(offsets[0]))
    width = max([width, *(len(x.encode()) for x in ids.to_pylist() if x)], default=1)  # not ASCII: a copy
    return width, np.array([(x or "").encode() for x in ids.to_pylist()], dtype=f"S{width}")


def dictionary_encoded(table: pa.Table) -> pa.Table:
    """Every text column but the id dictionary-encoded (`narrowed` keeps it only where it pays)."""
    for i, name in enumerate(table.column_names):
        if name != "_id" and table.column(i).type == pa.string():
            table = table.set_column(i, name, pc.dictionary_encode(table.column(i)))
    return table


def narrowed(table: pa.Table) -> pa.Table:
    """`table` in one chunk; a dictionary column kept where it has at most DICTIONARY_SHARE
    distinct values, with indices as narrow as its size allows (most such columns have a handful
    of values: one byte a row instead of four), else plain text again."""
    table = table.combine_chunks()  # after a `take`: one chunk already
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if not pa.types.is_dictionary(column.type) or not column.num_chunks:
            continue
        size = len(column.chunk(0).dictionary)
        if size > DICTIONARY_SHARE * len(column):
            table = table.set_column(i, name, column.chunk(0).dictionary_decode())
            continue
        table = table.set_column(i, name, column.cast(pa.dictionary(_index_type(size), column.type.value_type)))
    return table
