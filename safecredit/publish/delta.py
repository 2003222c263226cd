"""Deltas between record lists, by stable id and record content (the read side: net diffs).

The publisher writes delta.jsonl in SQL (`columnar.Session.write_delta`); this module is the
same rule for records in memory, and `apply_delta` replays a delta.

A delta line is `{"op": "ADD"|"MOD"|"DEL", "id": <id>, "record": {...}}`: ADD and MOD carry the
new record, DEL the last record the consumer had. Lines are sorted by id. Records are the JSON form
of full.jsonl, so `apply_delta(full_N-1, delta_N)` equals `full_N` exactly (rows sorted by id).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

from .formats import id_key, id_of, json_line

OPS = ("ADD", "MOD", "DEL")


Keyed = tuple[tuple, str, Any]  # (id key, record as json_line text, record dict or None)


def diff_keyed(previous: Iterable[Keyed], current: Iterable[Keyed]) -> list[tuple[str, tuple, Keyed]]:
    """(op, id key, item) for every changed id, sorted by id; records compare by their JSON text."""
    prev = {item[0]: item for item in previous}
    cur = {item[0]: item for item in current}
    changes = []
    for key in sorted(prev.keys() | cur.keys()):
        old, new = prev.get(key), cur.get(key)
        if old is None:
            changes.append(("ADD", key, new))
        elif new is None:
            changes.append(("DEL", key, old))
        elif old[1] != new[1]:
            changes.append(("MOD", key, new))
    return changes


def _ident(key: tuple) -> Any:
    return key[0] if len(key) == 1 else list(key)


def compute_delta(
    previous: Iterable[Mapping[str, Any]] | None,
    current: Iterable[Mapping[str, Any]],
    id_columns: Sequence[str],
) -> list[dict[str, Any]]:
    """The delta lines (as dicts) that turn `previous` into `current` (None: everything is ADD)."""

    def keyed(records: Iterable[Mapping[str, Any]]) -> list[Keyed]:
        return [(id_key(id_of(dict(r), id_columns)), json_line(r), r) for r in records]

    return [
        {"op": op, "id": _ident(key), "record": item[2]}
        for op, key, item in diff_keyed(keyed(previous or ()), keyed(current))
    ]


def apply_delta(
    full_records: Iterable[Mapping[str, Any]],
    delta_lines: Iterable[Mapping[str, Any] | str],
    id_columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Apply delta lines (dicts, or JSON strings) to a full record list; result sorted by id.

    The record ids are taken from the delta's `id` values; `id_columns` (the feed's) is needed
    only to key `full_records`. Without it the single-column id is inferred from the first delta
    line whose record carries it. Raises ValueError on an inconsistent delta (ADD of an existing
    id, MOD/DEL of a missing one).
    """
    lines = [json.loads(x) if isinstance(x, str) else x for x in delta_lines]
    records = [dict(r) for r in full_records]
    if id_columns is None:
        if not lines:
            return records
        id_columns = _infer_id_columns(lines)
    state = {id_key(id_of(r, id_columns)): r for r in records}
    for line in lines:
        op, key = line["op"], id_key(line["id"])
        if op == "ADD":
            if key in state:
                raise ValueError(f"delta ADD of an id already present: {line['id']!r}")
            state[key] = dict(line["record"])
        elif op == "MOD":
            if key not in state:
                raise ValueError(f"delta MOD of an unknown id: {line['id']!r}")
            state[key] = dict(line["record"])
        elif op == "DEL":
            if state.pop(key, None) is None:
                raise ValueError(f"delta DEL of an unknown id: {line['id']!r}")
        else:
            raise ValueError(f"unknown delta op {op!r}")
    return [state[k] for k in sorted(state)]


def _infer_id_columns(lines: list[Mapping[str, Any]]) -> tuple[str, ...]:
    """The single column whose value equals the delta id in every line's record."""
    candidates: set[str] | None = None
    for line in lines:
        if isinstance(line["id"], list):
            raise ValueError("composite ids: pass the feed's id_columns to apply_delta")
        rec = line.get("record") or {}
        match = {c for c, v in rec.items() if v == line["id"]}
        candidates = match if candidates is None else candidates & match
    if not candidates or len(candidates) > 1:
        raise ValueError("cannot infer the id column from the delta: pass id_columns")
    return (candidates.pop(),)
