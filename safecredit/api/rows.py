"""Published feed rows as the API answers them: scrubbed of full ID numbers, JSON values, the rows
of a unit (`record_for`)."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from safecredit.codes import is_valid_uscc, normalise_code
from safecredit.publish.errors import VersionPruned
from safecredit.publish.formats import json_value

from .masking import mask_ids_in_text
from .problems import ApiProblem
from .service import Reader
from .snapshot import Snapshot, fetch

log = logging.getLogger("safecredit.api")


def require_feed(snap: Snapshot, feed: str) -> None:
    if not snap.has(feed):
        raise ApiProblem(404, f"the feed {feed} is not published", f"数据集 {feed} 尚未发布", kind="feed-not-published")


def scrub(value: Any) -> Any:
    """Belt and braces for answers built from feeds: no full ID number leaves, whatever a column holds."""
    if isinstance(value, str):
        return mask_ids_in_text(value) if len(value) >= 18 else value
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def published_row(r: dict) -> dict:
    out = {}
    for k, v in r.items():
        v = json_value(v)
        if k in ("components", "red_triggers") and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return scrub(out)


def valid_uscc(value: str) -> str:
    code = normalise_code(value)[:64]
    if not is_valid_uscc(code):
        raise ApiProblem(
            422,
            "not a valid unified social credit code (18 characters, check character)",
            "不是有效的统一社会信用代码（18位，校验码）",
            kind="malformed-code",
        )
    return code


def record_for(r: Reader, feed: str, uscc: str, as_of: date | None) -> tuple[list[dict], str, str | None]:
    """Rows of a per-unit feed for `uscc`: from the served version, or with `as_of` from the latest
    served version whose business date is on or before it (today's rows answer for today)."""
    require_feed(r.snap, feed)
    served = r.snap.feeds[feed]
    version = served.version
    if as_of is not None and (served.as_of is None or as_of < served.as_of):
        items = [
            i
            for i in r.svc.store.versions(feed).get("items") or []
            if i.get("result") == "success" and i.get("as_of") and str(i["as_of"]) <= as_of.isoformat()
        ]
        if not items:
            raise ApiProblem(
                404,
                f"no version of {feed} answers for {as_of.isoformat()}",
                f"{feed} 没有 {as_of.isoformat()} 及之前的版本",
                kind="not-published-then",
            )
        best = max(items, key=lambda i: (str(i["as_of"]), i["version"]))
        if best.get("pruned"):
            raise VersionPruned(
                f"version {best['version']} of {feed} (as of {best['as_of']}) was pruned",
                f"{feed} 的版本 {best['version']} 已按保留策略删除",
            )
        version = best["version"]
    rel, info = r.snap.relation(feed, version)
    rows = fetch(r.cur, f"SELECT * FROM {rel} WHERE uscc = ?", [uscc]) if "uscc" in info.columns else []
    return rows, version, info.as_of.isoformat() if info.as_of else None
