"""Deterministic chunked Parquet output: ``<dept>/<dataset>/part-NNNNN.parquet``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import text

ENVELOPE = ["record_id", "updated_at", "op"]
#: field codes per dataset, in department-feeds.md §3's order
DATASET_FIELDS: dict[str, list[str]] = {
    "listing_decisions": "MD_WSH MD_LX MD_YWSH MD_DXLX MD_DXDM MD_DXMC MD_QX MD_CFWSH MD_JDRQ MD_QSRQ MD_JZRQ "
    "MD_JG MD_JGDM MD_MD".split(),
    "penalties": [
        "CF_XDR_MC",
        "CF_XDR_LB",
        "CF_XDR_SHXYM",
        "CF_XDR_GSZC",
        "CF_XDR_ZZJG",
        "CF_FRDB",
        "CF_FR_ZJLX",
        "CF_FR_ZJHM",
        "CF_XDR_ZJLX",
        "CF_XDR_ZJHM",
        "CF_WSH",
        "CF_WFXW",
        "CF_SY",
        "CF_YJ",
        "CF_CFLB",
        "CF_NR",
        "CF_NR_FK",
        "CF_NR_WFFF",
        "CF_NR_ZKDX",
        "CF_JDRQ",
        "CF_YXQ",
        "CF_GSJZQ",
        "CF_CFJG",
        "CF_CFJGDM",
        "CF_SJLY",
        "CF_SJLYDM",
        "AQ_WFDM",
        "AQ_SGBH",
        "AQ_QJ",
        "AQ_ZXZT",
        "AQ_ZYFZR",
        "AQ_ZYFZR_ZJHM",
        "AQ_CFDX",
    ],
    "accidents": [
        "SG_BH",
        "SG_MC",
        "SG_FSSJ",
        "SG_XZQH",
        "SG_DWMC",
        "SG_DWDM",
        "SG_HYLB",
        "SG_LX",
        "SG_SWRS",
        "SG_ZSRS",
        "SG_JJSS",
        "SG_DJ",
        "SG_ZR",
        "SG_BGQK",
        "SG_JARQ",
        "SG_ZYFZR",
        "SG_ZYFZR_ZJHM",
        "SG_ZYFZR_TN",
    ],
    "intermediary_ratings": [
        "JG_MC",
        "JG_DM",
        "JG_ZZLX",
        "JG_ZSBH",
        "JG_ZZYXQ",
        "PJ_ZQ",
        "PJ_DF",
        "PJ_DJ",
        "PJ_WGQX",
        "PJ_JG",
        "PJ_RQ",
    ],
    "enterprises": [
        "QY_DM",
        "QY_MC",
        "QY_CYM",
        "QY_ZCH",
        "QY_ZZJGDM",
        "QY_FDDBR",
        "QY_ZYFZR",
        "QY_ZYFZR_ZJHM",
        "QY_HYDM",
        "QY_GWHY",
        "QY_XZQH",
        "QY_ZT",
        "QY_CLRQ",
        "QY_BZHDJ",
        "QY_CYRS",
    ],
    "credit_actions": ["XD_LX", "XD_DXLX", "XD_DXDM", "XD_WSH", "XD_RQ", "XD_JG", "XD_JGDM", "XD_SM"],
}
RECORD_ID_TAG = {
    "penalties": "pen",
    "accidents": "acc",
    "intermediary_ratings": "rat",
    "enterprises": "ent",
    "credit_actions": "cra",
    "listing_decisions": "lsd",
}


def schema(dataset: str) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in ENVELOPE + DATASET_FIELDS[dataset]])


#: rows per row group (and the most rows a writer holds before writing them)
ROW_GROUP_ROWS = 50_000


class DatasetWriter:
    """One (department, dataset): parts of exactly ``chunk_rows`` rows (the last one shorter),
    zstd row groups of at most :data:`ROW_GROUP_ROWS` rows, so a writer never holds more than
    about one row group in memory. Rows are numbered in the order they are added, each added
    batch first ordered by ``updated_at``. Flush points depend only on row counts: the same
    rows give byte-identical files."""

    def __init__(self, root: Path, dept: str, dataset: str, chunk_rows: int):
        self.dir = Path(root) / dept / dataset
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("part-*.parquet"):
            old.unlink()
        self.dept, self.dataset, self.chunk_rows = dept, dataset, chunk_rows
        self.group_rows = min(chunk_rows, ROW_GROUP_ROWS)
        self.schema = schema(dataset)
        self.prefix = f"{dept}-{RECORD_ID_TAG[dataset]}-"
        self.rows = 0
        self.parts = 0
        self._file: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def add(self, table: pa.Table, updated_ts: np.ndarray) -> pa.Array:
        """Append rows; returns their record ids in the order of ``table``."""
        n = table.num_rows
        if list(table.column_names) != DATASET_FIELDS[self.dataset]:
            raise ValueError(f"{self.dataset}: columns {table.column_names} differ from the spec")
        order = np.argsort(updated_ts, kind="stable")
        numbers = np.empty(n, dtype=np.int64)
        numbers[order] = self.rows + np.arange(n)
        ids = text.join(self.prefix, pc.utf8_lpad(text.int_str(numbers), 8, "0"))
        self.rows += n
        if n:
            envelope = pa.table(
                {"record_id": ids, "updated_at": text.rfc3339(updated_ts), "op": pa.array(["upsert"] * n, pa.string())}
            )
            full = pa.Table.from_arrays(envelope.columns + table.columns, schema=self.schema)
            self._buffer.append(full.take(pa.array(order)))
            self._buffered += n
            while self._buffered >= self.group_rows:
                self._write_group()
        return ids

    def _write_group(self) -> None:
        """Write the next row group: up to ``group_rows`` rows, never across a part's end."""
        if self._file is None:
            path = self.dir / f"part-{self.parts:05d}.parquet"
            self._file = pq.ParquetWriter(path, self.schema, compression="zstd")
            self._file_rows = 0
            self.parts += 1
        k = min(self.group_rows, self.chunk_rows - self._file_rows, self._buffered)
        data = pa.concat_tables(self._buffer)
        self._file.write_table(data.slice(0, k).combine_chunks(), row_group_size=k)
        self._file_rows += k
        rest = data.slice(k)
        self._buffer = [rest] if rest.num_rows else []
        self._buffered = rest.num_rows
        if self._file_rows == self.chunk_rows:
            self._file.close()
            self._file = None

    def close(self) -> int:
        while self._buffered:
            self._write_group()
        if self.parts == 0:  # no rows at all: one empty part carries the schema
            pq.write_table(self.schema.empty_table(), self.dir / "part-00000.parquet", compression="zstd")
            self.parts = 1
        if self._file is not None:
            self._file.close()
            self._file = None
        return self.rows
