"""The warehouse's macros: defined once per file and code version, not at every writer connection."""

from __future__ import annotations

import hashlib

from safecredit import warehouse


def _bytes(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_writer_connection_to_a_current_warehouse_writes_nothing(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(path)
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    before = _bytes(path)
    for _ in range(2):
        con = warehouse.connect(path)
        assert con.execute("SELECT sc_mask('1234567'), sc_code(' ａｂ１ ')").fetchone() == ("***4567", "AB1")
        con.close()
    assert _bytes(path) == before
    assert not path.with_name(path.name + ".wal").exists()


def test_a_warehouse_with_other_macro_definitions_gets_this_codes(tmp_path):
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))  # as an earlier version left it: other definitions, no digest
    con.execute("CREATE MACRO sc_mask(s) AS 'old'")
    con.close()
    con = warehouse.connect(path)
    try:
        assert con.execute("SELECT sc_mask('1234567'), sc_macros_digest()").fetchone() == (
            "***4567",
            warehouse.MACROS_DIGEST,
        )
    finally:
        con.close()
    con = duckdb.connect(str(path))
    # a file another code version wrote: its own definitions under its own digest
    con.execute("CREATE OR REPLACE MACRO sc_mask(s) AS 'stale'")
    con.execute("CREATE OR REPLACE MACRO sc_macros_digest() AS 'other'")
    con.close()
    con = warehouse.connect(path)
    try:
        assert con.execute("SELECT sc_mask('1234567')").fetchone() == ("***4567",)
    finally:
        con.close()


def test_a_connection_is_handed_over_with_no_result_left_open(tmp_path):
    """DuckDB 2.0's relation API refuses a connection whose last result is unfinished: whichever
    path `connect` takes (new file, current file, read-only), `con.sql` works at once."""
    path = tmp_path / "warehouse.duckdb"
    for read_only in (False, False, True):  # creates the macros, finds them current, reads only
        con = warehouse.connect(path, read_only=read_only)
        assert con.sql("SELECT 1").fetchall() == [(1,)]
        con.close()
