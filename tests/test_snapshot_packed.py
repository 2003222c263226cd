"""The feeds a snapshot keeps compressed are copied a slice of row groups at a time
(safecredit/api/packed.py): every row once, in the file's order, whatever the slicing."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from safecredit.api import packed
from safecredit.api.snapshot import open_duckdb


def test_a_feed_copied_in_slices_is_its_file_in_order(tmp_path, monkeypatch):
    rows = pa.table({"entry_id": [f"E{(i * 37) % 101:03d}" for i in range(101)], "n": list(range(101))})
    path = tmp_path / "full.parquet"
    pq.write_table(rows, path, row_group_size=10)  # 11 row groups, the last of one row
    empty = tmp_path / "empty.parquet"
    pq.write_table(rows.slice(0, 0), empty)
    for slice_rows in (1, 25, 1000):  # a slice per row group, several row groups, the whole file
        monkeypatch.setattr(packed, "SLICE_ROWS", slice_rows)
        assert sum(end - first for first, end in packed._slices(path)) == 101
        con = open_duckdb()
        packed.copy_compressed(con, "blacklist", path)
        packed.copy_compressed(con, "restrictions", empty)
        assert con.execute('SELECT entry_id, n FROM "blacklist"').fetchall() == list(
            zip(rows.column("entry_id").to_pylist(), rows.column("n").to_pylist())
        )
        assert con.execute('SELECT count(*) FROM "restrictions"').fetchall() == [(0,)]
        assert [c[0] for c in con.execute('DESCRIBE "restrictions"').fetchall()] == ["entry_id", "n"]
        kinds = con.execute("SELECT database_name FROM duckdb_tables() ORDER BY table_name").fetchall()
        assert kinds == [("packed",), ("packed",)]
        con.close()
