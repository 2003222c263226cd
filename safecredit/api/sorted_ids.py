"""Rows looked up by an id without a Python object per row: sorted Arrow columns and the ids as a
fixed-width numpy array searched by bisection (the answer index of a snapshot, `answer_index.py`).

Ids are ASCII (USCCs, the keyed hashes of persons, `type:id` keys); shorter ones are padded with
spaces to the longest, which keeps their order (a space sorts before every printable character).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: a string column is dictionary-encoded when it has at most this share of distinct values
#: (measure names and bases, statuses, authorities repeat on every row of their kind)
DICTIONARY_SHARE = 0.5
#: rows read at a time: the plain text of one batch is held while it is encoded
BATCH_ROWS = 1_000_000


class SortedIds:
    """Rows of one relation sorted by an id column: the ids as a numpy `S<width>` array (a view of
    the Arrow buffer where it can be) for bisection, the other columns as Arrow, sliced per
    lookup, repetitive text columns dictionary-encoded."""

    def __init__(self, table: pa.Table, id_column: str = "_id"):
        ids = table.column(id_column).combine_chunks() if table.num_rows else pa.array([], pa.string())
        table = table.drop_columns([id_column])
        self.width, self.ids = fixed_width(ids)
        del ids
        if len(self.ids) > 1 and not bool(np.all(self.ids[:-1] <= self.ids[1:])):
            # sorting the fixed-width ids and taking the (encoded) rows costs a third of an ORDER BY;
            # `take` writes one contiguous copy (no combining of the chunks before it)
            order = np.argsort(self.ids, kind="stable")
            self.ids, table = self.ids[order], table.take(pa.array(order))
        self.table = narrowed(table)
        self._columns: dict[str, pa.Array] = {}  # one chunk per column `first` reads
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

    def span(self, key: str) -> tuple[int, int]:
        """[first, end) of the rows whose id is `key` (empty when none)."""
        if len(key) > self.width or not len(self.ids):
            return (0, 0)
        last = self._last  # one tuple, replaced whole: safe to read from any thread
        if last[0] == key:
            return last[1]
        # plain `bytes` (not `np.bytes_`): the method call then costs a third as much
        padded = key.ljust(self.width).encode("ascii", "replace")
        lo = int(self.ids.searchsorted(padded, "left"))
        if lo == len(self.ids) or self.ids[lo] != padded:  # most codes asked: not there
            found = (lo, lo)
        else:
            found = (lo, int(self.ids.searchsorted(padded, "right")))
        self._last = (key, found)
        return found

    def spans(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`span` of every key at once: two vectorised searches of the ids for all of them (a
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
        lo = np.searchsorted(self.ids, padded, "left")
        hi = np.searchsorted(self.ids, padded, "right")
        hi[~fits] = lo[~fits]  # too long to be an id here (the array would have cut it)
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
        if found is None:
            found = self._columns[column] = self.table.column(column).combine_chunks()
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
        return self.ids.nbytes + self.table.nbytes


def fixed_width(ids: pa.Array) -> tuple[int, np.ndarray]:
    """(width, the ids padded with spaces to it as numpy `S<width>`): a view of the string buffer
    when every id then has that many bytes (ASCII), else a copy."""
    if not len(ids):
        return 0, np.array([], dtype="S1")
    if ids.type != pa.string():
        ids = ids.cast(pa.string())
    lengths = pc.binary_length(ids)
    width = int(pc.max(lengths).as_py() or 0)
    if int(pc.min(lengths).as_py() or 0) != width:
        ids = pc.utf8_rpad(ids, width=width, padding=" ")
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + len(ids) + 1]
    if width and ids.null_count == 0 and int(offsets[-1] - offsets[0]) == width * len(ids):
        return width, np.frombuffer(ids.buffers()[2], dtype=f"S{width}", count=len(ids), offset=int(offsets[0]))
    width = max((len(x.encode()) for x in ids.to_pylist() if x), default=1)  # not ASCII: a copy
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
        index = pa.int8() if size < 2**7 else pa.int16() if size < 2**15 else pa.int32()
        table = table.set_column(i, name, column.cast(pa.dictionary(index, column.type.value_type)))
    return table
