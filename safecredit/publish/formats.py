"""Deterministic serialisation of a feed table: full.parquet, full.csv, full.jsonl.

Rows are ordered by the feed's stable id, so the files do not depend on the order the rules
produced them in. JSON values: dates and times as ISO strings, decimals as numbers (as strings
beyond 15 significant digits, to stay exact), non-finite floats as null, bytes as base64.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from . import fsutil
from .feeds import FeedSpec

DATA_FILES = ("full.parquet", "full.csv", "full.jsonl", "delta.jsonl")
MANIFEST = "manifest.json"
ALL_FILES = (MANIFEST, *DATA_FILES)

# Cells starting with these are formulas to Excel; the CSV prefixes such text with an apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def json_value(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, Decimal):  # a JSON number when a double holds it exactly, else an exact string
        if not v.is_finite():
            return None
        return float(v) if len(v.as_tuple().digits) <= 15 else str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    return str(v)


def json_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _column_json(col: pa.ChunkedArray) -> list[Any]:
    """A column's values in JSON form (fast paths for the common types)."""
    t = col.type
    if pa.types.is_date32(t):
        return col.cast(pa.string()).to_pylist()
    values = col.to_pylist()
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_boolean(t) or pa.types.is_null(t)):
        return values
    if pa.types.is_floating(t):
        return [v if v is None or math.isfinite(v) else None for v in values]
    return [json_value(v) for v in values]


def table_records(table: pa.Table) -> list[dict[str, Any]]:
    """The table's rows as JSON-ready dicts, keys in column order."""
    names = table.column_names
    cols = [_column_json(table.column(i)) for i in range(table.num_columns)]
    return [dict(zip(names, row)) for row in zip(*cols)] if names else [{} for _ in range(table.num_rows)]


def id_of(record: dict[str, Any], id_columns: Sequence[str]) -> Any:
    """The stable id as it appears in delta lines: a scalar, or a list for composite ids."""
    if len(id_columns) == 1:
        return record[id_columns[0]]
    return [record[c] for c in id_columns]


def id_key(id_value: Any) -> tuple:
    """Sort/lookup key of an id value (scalar or list)."""
    return tuple(id_value) if isinstance(id_value, list) else (id_value,)


@dataclass
class PreparedFeed:
    spec: FeedSpec
    table: pa.Table  # sorted by id, single chunk, no schema metadata
    records: list[dict[str, Any]]  # same order as table
    keys: list[tuple]  # id keys, same order
    lines: list[str]  # json_line(record): the full.jsonl lines and the delta's comparison text

    def keyed(self) -> list[tuple[tuple, str, dict[str, Any]]]:
        return list(zip(self.keys, self.lines, self.records))


def prepare(spec: FeedSpec, table: Any) -> PreparedFeed:
    """Validate a feed table (ids present, non-null, unique, scalar) and sort it by id."""
    if hasattr(table, "to_arrow") and not isinstance(table, pa.Table):  # polars / duckdb relations
        table = table.to_arrow()
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise TypeError(f"feed {spec.name}: expected a pyarrow.Table, got {type(table).__name__}")
    names = table.column_names
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"feed {spec.name}: duplicate column names {dup}")
    missing = [c for c in spec.id_columns if c not in names]
    if missing:
        raise ValueError(f"feed {spec.name}: id column(s) {missing} missing (columns: {names})")
    records = table_records(table)
    keys = []
    for i, rec in enumerate(records):
        ident = [rec[c] for c in spec.id_columns]
        if any(v is None for v in ident):
            raise ValueError(f"feed {spec.name}: row {i} has a null id {spec.id_columns}")
        if any(isinstance(v, (dict, list)) for v in ident):
            raise ValueError(f"feed {spec.name}: id columns {spec.id_columns} must be scalar")
        keys.append(tuple(ident))
    order = sorted(range(len(records)), key=keys.__getitem__)
    for a, b in zip(order, order[1:]):
        if keys[a] == keys[b]:
            raise ValueError(f"feed {spec.name}: duplicate id {list(keys[a])} (ids must be unique)")
    table = table.take(pa.array(order, type=pa.int64())).combine_chunks().replace_schema_metadata(None)
    records = [records[i] for i in order]
    return PreparedFeed(spec, table, records, [keys[i] for i in order], [json_line(r) for r in records])


def keyed_jsonl(path: Path, id_columns: Sequence[str]) -> list[tuple[tuple, str, dict[str, Any]]]:
    """(id key, line text, record) for each line of a full.jsonl file."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            text = line.rstrip("\n")
            if text:
                rec = json.loads(text)
                out.append((id_key(id_of(rec, id_columns)), text, rec))
    return out


def lines_bytes(lines: Iterable[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v if v.startswith(_FORMULA_START) else v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dict, list)):
        return json_line(v)
    return str(v)


def _csv_text(v: str | None) -> str:
    if v is None:
        return ""
    return "'" + v if v.startswith(_FORMULA_START) else v


def _csv_int(v: int | None) -> str:
    return "" if v is None else str(v)


def _csv_formatter(t: pa.DataType):
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_date32(t):
        return _csv_text
    if pa.types.is_integer(t):
        return _csv_int
    return _csv_cell


@dataclass
class FileEntry:
    name: str
    size: int
    sha256: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256, "rows": self.rows}


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_entry(path: Path, rows: int) -> FileEntry:
    return FileEntry(path.name, path.stat().st_size, sha256_file(path), rows)


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    fsutil.step(f"write {path.name}")


def write_full_files(feed: PreparedFeed, out_dir: Path) -> list[FileEntry]:
    """Write full.parquet, full.csv, full.jsonl into `out_dir` (fsync'd); return their entries."""
    n = feed.table.num_rows
    parquet = out_dir / "full.parquet"
    pq.write_table(feed.table, parquet, compression="zstd", write_statistics=True)
    fsutil.fsync_file(parquet)

    columns = feed.table.column_names
    cells = [list(map(_csv_formatter(field.type), [r[field.name] for r in feed.records]))
             for field in feed.table.schema]
    csv_path = out_dir / "full.csv"
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(feed.spec.headers(columns))
        w.writerows(zip(*cells) if cells else ([] for _ in feed.records))
        fh.flush()
        os.fsync(fh.fileno())
    fsutil.step("write full.csv")

    _write_durable(out_dir / "full.jsonl", lines_bytes(feed.lines))
    return [file_entry(parquet, n), file_entry(csv_path, n), file_entry(out_dir / "full.jsonl", n)]


def write_delta_file(lines: list[str], out_dir: Path) -> FileEntry:
    path = out_dir / "delta.jsonl"
    _write_durable(path, lines_bytes(lines))
    return file_entry(path, len(lines))


def read_jsonl(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
