"""The feed files' names and JSON value rules, file entries, and an in-memory `prepare`.

JSON values: dates and times as ISO strings, decimals as numbers (as strings beyond 15
significant digits, to stay exact), non-finite floats as null, bytes as base64. `json_value` is
the rule for one Python value (the API and explain use it); the publisher applies the same rules
to whole columns in SQL (`render`), so its files never pass rows through Python.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from .feeds import FeedSpec
from .render import ident

DATA_FILES = ("full.parquet", "full.csv", "full.jsonl", "delta.jsonl")
MANIFEST = "manifest.json"
ALL_FILES = (MANIFEST, *DATA_FILES)


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
    """A feed's rows sorted by id and rendered, in memory (see `prepare`)."""

    spec: FeedSpec
    table: pa.Table  # sorted by id, no schema metadata
    keys: list[tuple]  # id keys, same order
    lines: list[str]  # the full.jsonl lines

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def prepare(spec: FeedSpec, table: Any) -> PreparedFeed:
    """A feed table validated (ids present, scalar, non-null, unique), sorted by id and rendered
    exactly as the publisher renders it — in memory, for tests and tools on small tables."""
    from .columnar import Session

    with tempfile.TemporaryDirectory(prefix="safecredit-prepare-") as work, Session(Path(work)) as session:
        staged = session.stage(spec, table)
        ids = ", ".join(ident(c) for c in spec.id_columns)
        rows = session.con.sql(session.ordered(spec.name, f"{ids}, {staged.line}")).fetchall()
        sorted_table = session.relation(spec.name).to_arrow_table()
    return PreparedFeed(spec, sorted_table, [tuple(r[:-1]) for r in rows], [r[-1] for r in rows])


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


def read_jsonl(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
