"""Where a restriction answer reads from: the served publication, or the one a `known_at` names.

An answer for the publication's own date reads the published `blacklist` and `restrictions` rows;
an answer for another `as_of` reads the `listing_timeline` and `restriction_timeline` rows valid on
that date (rules/33_listing_timeline.sql, rules/35_restrictions.sql). Both are what the rules
published: nothing here derives a status, a date or a measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from safecredit.publish import is_version_id
from safecredit.publish.errors import VersionNotFound, VersionPruned

from .answer_index import PUBLISHED, TIMELINES
from .problems import ApiProblem
from .snapshot import Snapshot, local_date

Relation = tuple[str, tuple[str, ...]]  # (SQL relation, its columns)


@dataclass(frozen=True)
class Source:
    """The relations of one published version an answer reads (None: not in that version)."""

    version: str | None
    as_of: date | None
    relations: dict[str, Relation | None]

    def has(self, feed: str) -> bool:
        return self.relations.get(feed) is not None

    def answers_own_date(self) -> bool:
        """The publication's own date is answered from its restrictions rows (else its timelines)."""
        return self.has("restrictions")

    def day_answered(self, as_of: date | None) -> date | None:
        """The day whose timeline rows answer `as_of`; None: the published rows of the version's date."""
        if (as_of is None or as_of == self.as_of) and self.answers_own_date():
            return None
        day = as_of or self.as_of
        if not all(self.has(f) for f in TIMELINES):
            raise ApiProblem(
                410,
                f"version {self.version} carries no restriction timeline: it cannot answer "
                f"as_of {day.isoformat() if day else '?'} (ask without as_of, or a later known_at)",
                f"版本 {self.version} 未发布惩戒时间线，无法答复 as_of {day.isoformat() if day else '?'}"
                "（请不带 as_of 查询，或使用更晚的 known_at）",
                kind="not-published-then",
            )
        return day


def served_source(snap: Snapshot) -> Source:
    """The source of the served publication (once per snapshot: every answer asks for it)."""
    found = snap.cache.get("served_source")
    if found is None:
        found = snap.cache["served_source"] = _served_source(snap)
    return found


def _served_source(snap: Snapshot) -> Source:
    relations = {f: (f'"{f}"', snap.feeds[f].columns) if f in snap.feeds else None for f in (*PUBLISHED, *TIMELINES)}
    main = snap.feeds.get("restrictions") or snap.feeds.get("blacklist")
    return Source(main.version if main else snap.version, main.as_of if main else None, relations)


def known_at_source(snap: Snapshot, known_at: date) -> Source:
    """The latest version published on or before `known_at` (Asia/Shanghai date of generated_at)."""
    store = snap.store
    feed = "blacklist" if (snap.exports / "blacklist" / "versions.json").is_file() else "restrictions"
    chosen = None
    for item in store.versions(feed).get("items") or []:
        if item.get("result") != "success" or not is_version_id(item.get("version")):
            continue
        day = local_date(item.get("generated_at"))
        if day is not None and day <= known_at and (chosen is None or item["version"] > chosen["version"]):
            chosen = item
    if chosen is None:  # the data did not exist then: gone for that date, not an unknown resource
        raise ApiProblem(
            410,
            f"known_at {known_at.isoformat()} is earlier than the first publication of the {feed} feed: "
            "nothing the answer needs was published by then",
            f"known_at {known_at.isoformat()} 早于 {feed} 数据的首次发布：当时尚未发布回答所需的任何数据",
            kind="not-published-then",
        )
    version = chosen["version"]
    if chosen.get("pruned"):
        raise VersionPruned(
            f"version {version} (the one published on or before {known_at}) was pruned by retention",
            f"{known_at} 当日及之前发布的版本 {version} 已按保留策略删除",
        )
    relations: dict[str, Relation | None] = {}
    as_of = None
    for name in (*PUBLISHED, *TIMELINES):
        try:
            rel, info = snap.relation(name, version)
        except VersionNotFound as exc:
            if isinstance(exc, VersionPruned):
                raise
            relations[name] = None
            continue
        relations[name] = (rel, info.columns)
        as_of = as_of or info.as_of
    if not any(relations[f] for f in PUBLISHED):
        raise ApiProblem(
            404,
            f"version {version} has no blacklist or restrictions feed",
            f"版本 {version} 没有名单或惩戒措施数据",
            kind="not-published-then",
        )
    return Source(version, as_of, relations)
