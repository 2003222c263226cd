"""Version ids and the two catalogue files (`<feed>/versions.json`, `index.json`).

A version id is `YYYYMMDDTHHMMSSZ-<6 hex>`: the run's generated_at (UTC, seconds) and the first
6 hex of a sha256 over the data files' sha256s, so ids sort by time and name their content.

versions.json: `{"items": [newest first], "last_successful": "<version>" | null}`; an item is
`{"version", "generated_at", "result": "success"|"failure", "reasons", "row_count", "pruned",
"override", ...}`. A version is served ("ok") when its item is a success and not pruned.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any, Iterable

VERSION_RE = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{6})\Z")  # \Z: `$` also matches before a final newline
_TS_FORMAT = "%Y%m%dT%H%M%SZ"

STATUS_OK, STATUS_PRUNED, STATUS_FAILED, STATUS_UNKNOWN = "ok", "pruned", "failed", "unknown"


def utc_seconds(dt: datetime) -> datetime:
    """`dt` in UTC, truncated to whole seconds (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0)


def iso_utc(dt: datetime) -> str:
    return utc_seconds(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(files: Iterable[tuple[str, str, str]]) -> str:
    """sha256 over sorted (feed, file name, file sha256) triples."""
    h = hashlib.sha256()
    for feed, name, sha in sorted(files):
        h.update(f"{feed}\0{name}\0{sha}\n".encode())
    return h.hexdigest()


def make_version_id(generated_at: datetime, digest: str) -> str:
    return f"{utc_seconds(generated_at).strftime(_TS_FORMAT)}-{digest[:6]}"


def is_version_id(value: Any) -> bool:
    return isinstance(value, str) and VERSION_RE.match(value) is not None


def version_time(version: str) -> datetime:
    m = VERSION_RE.match(version)
    if not m:
        raise ValueError(f"not a version id: {version!r}")
    return datetime.strptime(m.group(1), _TS_FORMAT).replace(tzinfo=timezone.utc)


def empty_versions() -> dict[str, Any]:
    return {"items": [], "last_successful": None}


def find_item(versions: dict[str, Any], version: str) -> dict[str, Any] | None:
    for item in versions.get("items", []):
        if item.get("version") == version:
            return item
    return None


def item_status(item: dict[str, Any] | None) -> str:
    if item is None:
        return STATUS_UNKNOWN
    if item.get("result") != "success":
        return STATUS_FAILED
    return STATUS_PRUNED if item.get("pruned") else STATUS_OK


def served_versions(versions: dict[str, Any]) -> list[str]:
    """Versions whose directories must exist (success, not pruned), newest first."""
    return [i["version"] for i in versions.get("items", []) if item_status(i) == STATUS_OK]


def with_new_item(versions: dict[str, Any], item: dict[str, Any], retention: int) -> tuple[dict, list[str]]:
    """versions.json content after recording `item`, with retention applied; also the newly pruned."""
    items = [item] + [dict(i) for i in versions.get("items", [])]
    pruned, kept = [], 0
    for i in items:
        if item_status(i) != STATUS_OK:
            continue
        kept += 1
        if kept > retention:
            i["pruned"] = True
            pruned.append(i["version"])
    last = item["version"] if item["result"] == "success" else versions.get("last_successful")
    return {"items": items, "last_successful": last}, pruned
