"""Paged listings of a feed (`?cursor=&limit=`) and of what changed since a version
(`?since_version=`): opaque cursors that keep the version a listing started with."""

from __future__ import annotations

import base64
import binascii
import json
import logging

from fastapi import Query

from safecredit.publish import is_version_id

from .problems import ApiProblem
from .rows import published_row, require_feed, scrub
from .service import Reader
from .snapshot import fetch

log = logging.getLogger("safecredit.api")


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: the query parameters of a paged listing (the same on every listing route)
limit_q = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
cursor_q = Query(None, max_length=2000, description="next_cursor of the previous page")
since_q = Query(None, max_length=40, description="a version id: what changed since it (410 when pruned)")


def _encode_cursor(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or not is_version_id(data.get("v")) or not isinstance(data.get("k"), str):
            raise ValueError
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):  # a nested forgery is no cursor
        raise ApiProblem(
            400,
            "invalid cursor: pass next_cursor from the previous page unchanged",
            "cursor 无效：请原样使用上一页的 next_cursor",
            kind="invalid-cursor",
        ) from None


def page_of(
    r: Reader,
    feed: str,
    *,
    since_version: str | None,
    cursor: str | None,
    limit: int,
    match: tuple[str, str] | None = None,
) -> dict:
    """One page of a feed's rows in id order (or of its changes since a version); `match` = (column,
    value) keeps only the rows whose column holds that value (a deciding authority's queue)."""
    require_feed(r.snap, feed)
    served = r.snap.feeds[feed]
    pos = _decode_cursor(cursor) if cursor else None
    if pos is not None:
        if pos.get("f") != feed or pos.get("s") != since_version:
            raise ApiProblem(
                400,
                "this cursor belongs to another listing (feed or since_version differ)",
                "cursor 与本次查询（数据集或 since_version）不符",
                kind="invalid-cursor",
            )
        version = pos["v"]  # a listing keeps the version it started with, even across a switch
    else:
        version = served.version
    if since_version is not None:
        return _delta_page(r, feed, since_version, version, pos, limit)
    rel, info = r.snap.relation(feed, version)
    idc = info.id_columns[0] if info.id_columns else None
    if not idc:
        raise ApiProblem(404, f"feed {feed} has no id column to page by", f"数据集 {feed} 无法分页", kind="not-found")
    after = pos["k"] if pos else None
    conditions, params = [], []
    if after is not None:
        conditions.append(f'"{idc}" > ?')
        params.append(after)
    if match is not None:
        conditions.append(f'"{match[0]}" = ?')
        params.append(match[1])
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = fetch(r.cur, f'SELECT * FROM {rel} {where} ORDER BY "{idc}" LIMIT ?', [*params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = _encode_cursor({"f": feed, "v": version, "s": None, "k": str(rows[-1][idc])}) if more and rows else None
    return {
        "feed": feed,
        "version": version,
        "mode": "full",
        "since_version": None,
        "limit": limit,
        "count": len(rows),
        "next_cursor": nxt,
        "items": [published_row(x) for x in rows],
    }


def _delta_page(r: Reader, feed: str, since: str, version: str, pos: dict | None, limit: int) -> dict:
    store = r.svc.store
    if not is_version_id(since):
        raise ApiProblem(
            422,
            "since_version is not a version id (e.g. 20261123T020000Z-3f9a1c)",
            "since_version 不是有效的版本号",
            kind="invalid-version",
        )
    if since == version:
        lines: list[dict] = []
    else:
        key = ("diff", feed, since, version)
        lines = r.snap.cache.get(key)
        if lines is None:
            store.versions_since(feed, since)  # VersionPruned → 410, unknown → 404
            lines = sorted(store.diff(feed, since, version), key=lambda d: json.dumps(d["id"], sort_keys=True))
            if version == r.snap.feeds[feed].version:
                _remember_diff(r.snap.cache, key, lines)
    after = pos["k"] if pos else None
    start = 0
    if after is not None:
        keys = [json.dumps(d["id"], sort_keys=True) for d in lines]
        import bisect

        start = bisect.bisect_right(keys, after)
    chunk = lines[start : start + limit]
    more = start + limit < len(lines)
    nxt = (
        _encode_cursor({"f": feed, "v": version, "s": since, "k": json.dumps(chunk[-1]["id"], sort_keys=True)})
        if more and chunk
        else None
    )
    return {
        "feed": feed,
        "version": version,
        "mode": "delta",
        "since_version": since,
        "limit": limit,
        "count": len(chunk),
        "next_cursor": nxt,
        "items": scrub(chunk),
    }


#: whole-feed diffs kept per snapshot. Only diffs *to the served version* are kept (the sync every
#: consumer runs): a cursor names its own version, and caching every (since, version) pair let one
#: key fill memory with retention² diffs (issue 11).
MAX_CACHED_DIFFS = 8


def _remember_diff(cache: dict, key: tuple, lines: list[dict]) -> None:
    diffs = [k for k in list(cache) if isinstance(k, tuple) and k[0] == "diff"]  # list(): other threads add
    for old in diffs[: max(0, len(diffs) - MAX_CACHED_DIFFS + 1)]:  # oldest first (insertion order)
        cache.pop(old, None)
    cache[key] = lines
