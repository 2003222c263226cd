"""Freshness of sources: how long since a department last *sent* something new.

`publication.max_source_staleness_days` (exchange.md §1) looks at when we last fetched a source
successfully; a department that answers every night with nothing new passes it. Freshness looks at
the newest `updated_at` among the records a department has sent us (its landed records), so a
department that went silent shows late. Limits are policy data (`freshness.yaml`): a default,
per dataset, and per department and dataset.

The newest `updated_at` of each landed fetch is computed once and cached beside the landing
state in `<raw>/<dept>/<dataset>/_freshness.json` (fetches are immutable, so the cache only grows;
the landing's own `_state.json` is never touched here). Read-only callers (the report) may pass
`write_cache=False`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

from safecredit.config import SHANGHAI
from safecredit.landing import (
    MANIFEST,
    SourceDir,
    fmt_ts,
    parse_ts,
    source_states,
    write_json_atomic,
)
from safecredit.pages import PAGES, has_pages

CACHE = "_freshness.json"
_UPDATED = re.compile(r'"updated_at":\s*"([^"]*)"')


def _newest(values) -> datetime | None:
    best = None
    for v in set(values):
        try:
            t = parse_ts(str(v))
        except (ValueError, TypeError):
            continue
        if best is None or t > best:
            best = t
    return best


def _fetch_newest(fetch: Path) -> datetime | None:
    """Newest `updated_at` in one landed fetch (JSON items or CSV days)."""
    manifest = json.loads((fetch / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("transport") == "json":
        # searched as text, no parse needed: each page body whole, an earlier release's items.jsonl
        # (one compact item a line, possibly large) line by line
        values: set[str] = set()
        if has_pages(fetch):
            for path in sorted((fetch / PAGES).glob("*.json")):
                values.update(_UPDATED.findall(path.read_text(encoding="utf-8")))
        elif (fetch / "items.jsonl").exists():
            with open(fetch / "items.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    values.update(_UPDATED.findall(line))
        return _newest(values)
    from safecredit.connectors.client import decode_csv_bytes

    days = [d for d in manifest.get("days", []) if d.get("rows")]
    if not days:
        return None
    last = max(days, key=lambda d: d["date"])  # a CSV day holds the versions stamped on that day
    text = decode_csv_bytes((fetch / "days" / f"{last['date']}.csv").read_bytes(), last.get("charset", "utf-8"))
    newest = _newest(r.get("updated_at") for r in csv.DictReader(io.StringIO(text, newline="")) if r.get("updated_at"))
    if newest is None:  # no updated_at column: the day itself (its end) is what we know
        newest = datetime.combine(date.fromisoformat(last["date"]) + timedelta(days=1), time(), SHANGHAI) - timedelta(
            seconds=1
        )
    return newest


def newest_updated_at(raw_root: Path, dept: str, dataset: str, *, write_cache: bool = True) -> datetime | None:
    """Max `updated_at` over every landed record of (dept, dataset), or None if nothing landed."""
    src = SourceDir(Path(raw_root), dept, dataset)
    cache_path = src.root / CACHE
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        cache = {}
    per_fetch: dict = dict(cache.get("fetches", {}))
    changed = False
    for fetch in src.fetches():
        if fetch.name not in per_fetch:
            t = _fetch_newest(fetch)
            per_fetch[fetch.name] = fmt_ts(t) if t else None
            changed = True
    newest = _newest(v for v in per_fetch.values() if v)
    if changed and write_cache and src.root.exists():
        doc = {"fetches": per_fetch, "newest_updated_at": fmt_ts(newest) if newest else None}
        write_json_atomic(cache_path, doc)
    return newest


def max_days(policy, dept: str, dataset: str) -> float:
    """Policy limit for one source: department+dataset, else dataset, else the default (7)."""
    fr = (policy.get("freshness") if policy is not None else None) or {}
    per_dept = (fr.get("departments") or {}).get(dept) or {}
    if dataset in per_dept:
        return float(per_dept[dataset])
    if "*" in per_dept:
        return float(per_dept["*"])
    per_ds = fr.get("datasets") or {}
    if dataset in per_ds:
        return float(per_ds[dataset])
    return float(fr.get("default_max_days", 7))


def judge_now(as_of: date | None = None) -> datetime:
    """The moment freshness is judged at: now, or the end of `as_of` when that day is past."""
    now = datetime.now(SHANGHAI)
    if as_of is None:
        return now
    end = datetime.combine(as_of + timedelta(days=1), time(), SHANGHAI)
    return min(now, end)


def source_freshness(
    raw_root: Path,
    policy,
    now: datetime | None = None,
    *,
    departments: list[str] | None = None,
    datasets: list[str] | None = None,
    write_cache: bool = True,
) -> list[dict]:
    """One row per (department, dataset) ever attempted: newest version sent, its age, the limit
    and whether the source is late. A source attempted but with nothing landed is late."""
    now = now or datetime.now(SHANGHAI)
    out = []
    for st in source_states(Path(raw_root)):
        dept, ds = st["department"], st["dataset"]
        if (departments is not None and dept not in departments) or (datasets is not None and ds not in datasets):
            continue
        newest = newest_updated_at(Path(raw_root), dept, ds, write_cache=write_cache)
        limit = max_days(policy, dept, ds)
        age = max(0.0, (now - newest).total_seconds() / 86400) if newest else None
        late = age is None or age > limit
        out.append(
            {
                "department": dept,
                "dataset": ds,
                "newest_updated_at": fmt_ts(newest) if newest else None,
                "age_days": round(age, 2) if age is not None else None,
                "max_days": limit,
                "late": late,
                "last_success": st.get("last_success"),
                "last_status": st.get("last_status"),
                "message_en": (
                    f"{dept}/{ds}: newest version sent {fmt_ts(newest) if newest else 'never'}"
                    + (f", {age:.1f} days ago" if age is not None else "")
                    + (f" (> {limit:g} days: late)" if late else f" (limit {limit:g} days)")
                ),
                "message_zh": (
                    f"数据源 {dept}/{ds} 最新数据 {fmt_ts(newest) if newest else '无'}"
                    + (f"，已 {age:.1f} 天" if age is not None else "")
                    + (f"（超过 {limit:g} 天，逾期）" if late else f"（限 {limit:g} 天）")
                ),
            }
        )
    return out


def since_last_fetch(raw_root: Path, now: datetime) -> list[dict]:
    """Each source's landing state with `age_days`: days since its department last answered
    (None: never). Publication's staleness assertion and the report judge by this;
    `source_freshness` judges the data itself (its newest version)."""
    out = []
    for st in source_states(Path(raw_root)):
        last = st.get("last_success")
        out.append({**st, "age_days": (now - parse_ts(last)).total_seconds() / 86400 if last else None})
    return out
