"""Reading published files into Arrow with DuckDB, so rows never pass one by one through Python.

`read_full` gives a version's `full.parquet` and its column types; `read_delta` splits a
`delta.jsonl` into the ids to delete (MOD and DEL lines: a DEL line carries the last record the
consumer had, so its id columns are the id) and the rows to insert (ADD and MOD), typed like the
held table so that dates, lists and numbers land as they do from parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

Schema = list[tuple[str, str]]  # (column, DuckDB type) in table order


def connect(path: str = ":memory:"):
    """A DuckDB connection that never installs or loads an extension from the network."""
    import duckdb

    con = duckdb.connect(path)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    return con


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_schema(con, path: Path) -> Schema:
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})").fetchall()
    return [(r[0], r[1]) for r in rows]


def read_full(path: Path) -> tuple[pa.Table, Schema]:
    con = connect()
    try:
        schema = parquet_schema(con, path)
        return con.sql(f"SELECT * FROM read_parquet({literal(str(path))})").to_arrow_table(), schema
    finally:
        con.close()


@dataclass
class Delta:
    deletes: pa.Table  # id columns of the MOD and DEL lines
    inserts: pa.Table  # whole records of the ADD and MOD lines, in the held table's column order
    lines: int


def read_delta(path: Path, schema: Schema, id_columns: Sequence[str]) -> Delta:
    """Raise ValueError when a line has an unknown op (the file verified, so the format changed)."""
    struct = "STRUCT(" + ", ".join(f"{ident(c)} {t}" for c, t in schema) + ")"
    con = connect()
    try:
        con.execute(
            f"CREATE TEMP TABLE d AS SELECT op, record FROM read_json({literal(str(path))}, "
            f"format = 'newline_delimited', columns = {{'op': 'VARCHAR', 'record': {literal(struct)}}})"
        )
        bad = con.execute("SELECT count(*) FROM d WHERE op IS NULL OR op NOT IN ('ADD', 'MOD', 'DEL')").fetchall()[0][0]
        if bad:
            raise ValueError(f"{path.name}: {bad} line(s) with an unknown op")
        ids = ", ".join(f"record.{ident(c)} AS {ident(c)}" for c in id_columns)
        cols = ", ".join(f"record.{ident(c)} AS {ident(c)}" for c, _ in schema)
        deletes = con.sql(f"SELECT {ids} FROM d WHERE op IN ('MOD', 'DEL')").to_arrow_table()
        inserts = con.sql(f"SELECT {cols} FROM d WHERE op IN ('ADD', 'MOD')").to_arrow_table()
        lines = con.execute("SELECT count(*) FROM d").fetchall()[0][0]
        return Delta(deletes, inserts, lines)
    finally:
        con.close()
