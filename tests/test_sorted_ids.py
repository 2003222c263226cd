"""The columnar lookup behind the answer index (safecredit/api/sorted_ids.py): ids of different
lengths padded in order, rows found by bisection whatever order they were read in, repetitive text
dictionary-encoded across read batches and read back unchanged."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

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


def test_built_from_parquet_it_answers_as_read_from_duckdb(tmp_path, monkeypatch):
    """The server's index is built from the feed's file, a column at a time; rows, their order
    within an id, NULL ids left out, encodings: as `read` gives them from the same relation. Small
    row groups and batches make several dictionaries to unify and batches to join."""
    monkeypatch.setattr(sorted_ids, "BATCH_ROWS", 7)
    con = duckdb.connect()
    con.execute("""CREATE TABLE f AS SELECT
            CASE WHEN i % 11 = 0 THEN NULL WHEN i % 3 = 0 THEN 'person' ELSE 'unit' END AS subject_type,
            'S' || ((i * 7) % 13) AS subject_id, i AS n, 'kind' || (i % 2) AS kind,
            'name of ' || i AS name, CASE WHEN i % 5 = 0 THEN NULL ELSE 'U' || (100 - i) END AS uscc,
            CAST(DATE '2026-01-01' + INTERVAL (i % 3) DAY AS DATE) AS d
        FROM range(60) t(i)""")
    path = tmp_path / "f.parquet"
    # repetitive text dictionary-encoded in the file (as DuckDB writes it), the rest plain
    kept = ["subject_type", "subject_id", "kind", "d"]
    pq.write_table(con.sql("SELECT * FROM f").fetch_arrow_table(), path, row_group_size=8, use_dictionary=kept)
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    columns = ["n", "kind", "name", "d"]
    for key, where in ((("subject_type", "subject_id"), "true"), (("uscc",), "name IS NOT NULL")):
        joined = " || ':' || ".join(key)
        old = SortedIds.read(con, f"read_parquet('{path}')", joined, columns, where)
        new = SortedIds.from_parquet(path, key, columns, ("name",) if key == ("uscc",) else ())
        assert new.width == old.width and list(new.ids) == list(old.ids) == sorted(set(old.ids))
        for (k,) in con.execute(f"SELECT DISTINCT {joined} FROM f").fetchall():
            if k is not None:
                assert new.rows(k) == old.rows(k) != [], k
                assert [r["n"] for r in new.rows(k)] == sorted(r["n"] for r in new.rows(k))  # file order
        probe = "person:S3" if len(key) == 2 else "U99"
        assert new.rows("unit:S99") == [] and new.first(probe, "kind") == old.first(probe, "kind") is not None
        # as encoded as `read` makes them, and a repetitive date column too (two bytes a row)
        assert new.table.drop_columns(["d"]).schema == old.table.drop_columns(["d"]).schema
        assert new.table.schema.field("d").type == pa.dictionary(pa.int8(), pa.date32())
        assert new.table.num_rows == con.execute(f"SELECT count({joined}) FROM f").fetchall()[0][0]
    grouped_ids = SortedIds.from_parquet(path, ("subject_type", "subject_id"), columns)
    assert grouped_ids.starts is not None  # ids repeat: each held once, with where its rows start
    keys = [k for (k,) in con.execute("SELECT DISTINCT subject_type || ':' || subject_id FROM f").fetchall() if k]
    keys += ["unit:S99", "", "x" * 40, keys[0]]
    assert grouped_ids.rows_of(keys) == [grouped_ids.rows(k) for k in keys]  # a batch: one pass
    assert grouped_ids.firsts(keys, "n") == [grouped_ids.first(k, "n") for k in keys]


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
