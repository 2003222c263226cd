"""The feeds a snapshot keeps in DuckDB compressed (`build_snapshot(compressed=...)`): `blacklist`
and `restrictions`, which the answer index holds and other requests (explain, pages) scan by
columns no file order prunes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

#: rows copied at a time into the compressed database (whole row groups of the file): a slice is
#: held uncompressed until its checkpoint compresses it (10 M subjects' `restrictions` in one go:
#: 1.8 GiB at the peak; in slices of this size: 0.5 GiB, and no more CPU)
SLICE_ROWS = 500_000


def copy_compressed(con: duckdb.DuckDBPyConnection, feed: str, path: Path) -> None:
    """`feed` as a table of the compressed in-memory database `packed` (attached on first use),
    copied in its file's order a slice of row groups at a time, each checkpointed (which compresses
    it), and a view of it under its own name (cursors see the main database's catalogue)."""
    if not con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'packed'").fetchall()[0][0]:
        con.execute("ATTACH ':memory:' AS packed (COMPRESS)")
    literal = "'" + str(path).replace("'", "''") + "'"
    read = f"read_parquet({literal}, file_row_number = true)"
    slices = _slices(path) or [(0, 0)]
    for i, (first, end) in enumerate(slices):
        rows = f"SELECT * EXCLUDE (file_row_number) FROM {read} WHERE file_row_number BETWEEN {first} AND {end - 1}"
        con.execute(f'CREATE TABLE packed."{feed}" AS {rows}' if i == 0 else f'INSERT INTO packed."{feed}" {rows}')
        con.execute("CHECKPOINT packed")
    con.execute(f'CREATE VIEW "{feed}" AS SELECT * FROM packed."{feed}"')


def _slices(path: Path) -> list[tuple[int, int]]:
    """[first, end) row numbers of the file's row groups gathered into slices of SLICE_ROWS or more."""
    meta = pq.ParquetFile(path).metadata
    slices, first, end = [], 0, 0
    for group in range(meta.num_row_groups):
        end += meta.row_group(group).num_rows
        if end - first >= SLICE_ROWS or group == meta.num_row_groups - 1:
            slices.append((first, end))
            first = end
    return slices
