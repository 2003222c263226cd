"""The columnar lookup behind the answer index (safecredit/api/sorted_ids.py): ids of different
lengths padded in order, rows found by bisection whatever order they were read in, repetitive text
dictionary-encoded across read batches and read back unchanged."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from safecredit.api import sorted_ids
from safecredit.api.sorted_ids import SortedIds


def table(con: duckdb.DuckDBPyConnection) -> None:
    # ids of 1–3 characters (a prefix of another among them), unsorted, several rows for some
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES
        ('b', 1, 'x'), ('ab', 2, 'y'), ('a', 3, 'x'), ('abc', 4, 'x'), ('a', 5, 'y'), ('a!', 6, 'x'),
        ('b', 7, 'x'), ('', 8, 'x'), (NULL, 9, 'x')) v(id, n, kind)""")


def test_rows_are_found_by_their_id_whatever_the_order_and_length(monkeypatch):
    monkeypatch.setattr(sorted_ids, "BATCH_ROWS", 3)  # three batches, each encoded on its own
    con = duckdb.connect()
    table(con)
    found = SortedIds.read(con, "t", "id", ["n", "kind"])
    assert found.width == 3 and list(found.ids) == sorted(found.ids)
    assert sorted(r["n"] for r in found.rows("a")) == [3, 5]
    assert [r["n"] for r in found.rows("ab")] == [2] and [r["n"] for r in found.rows("abc")] == [4]
    assert [r["n"] for r in found.rows("a!")] == [6] and sorted(r["n"] for r in found.rows("b")) == [1, 7]
    assert found.rows("abcd") == [] and found.rows("c") == [] and found.rows("aa") == []
    assert found.first("ab", "kind") == "y" and found.first("zz", "kind") is None
    assert pa.types.is_dictionary(found.table.schema.field("kind").type)  # 2 values in 8 rows
    assert found.table.schema.field("kind").type.index_type == pa.int8()
    assert sorted((r["n"], r["kind"]) for r in found.table.to_pylist()) == [
        (1, "x"),
        (2, "y"),
        (3, "x"),
        (4, "x"),
        (5, "y"),
        (6, "x"),
        (7, "x"),
        (8, "x"),
    ]


def test_an_empty_relation_finds_nothing():
    con = duckdb.connect()
    table(con)
    empty = SortedIds.read(con, "t", "id", ["n"], where="n > 100")
    assert empty.rows("a") == [] and empty.first("a", "n") is None and empty.nbytes >= 0


def test_many_keys_in_one_pass_find_what_one_key_at_a_time_finds():
    con = duckdb.connect()
    table(con)
    found = SortedIds.read(con, "t", "id", ["n", "kind"])
    keys = ["a", "c", "abcd", "ab", "", "b", "a!", "zz", "a", "abc", "é", "a" * 40]
    assert found.rows_of(keys) == [found.rows(k) for k in keys]
    assert found.firsts(keys, "n") == [found.first(k, "n") for k in keys]
    assert found.rows_of([]) == [] and found.firsts([], "n") == []
    empty = SortedIds.read(con, "t", "id", ["n"], where="n > 100")
    assert empty.rows_of(keys) == [[]] * len(keys) and empty.firsts(keys, "n") == [None] * len(keys)
