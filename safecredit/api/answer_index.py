"""The in-memory answer index of one publication snapshot: what `GET /v1/restrictions/{code}`
answers for the publication's own date, keyed by (subject_type, subject_id).

Built once when a snapshot loads (`SnapshotManager` → `warm`), before it is swapped in, and
dropped with it. The served `blacklist` and `restrictions` feeds are read as Arrow tables sorted
by subject (one query each) and grouped in one pass over their columns; each subject's listings
and measures are turned into the answer's JSON-ready dicts then, not per request. A request only
normalises its code (a person's: the keyed hash), picks the prepared parts and filters by
`matter`: statuses, dates and measures are those the rules published (`rules/30_blacklist.sql`,
`rules/35_restrictions.sql`), never re-derived here, and no policy file is read per request.

The same `prepare_subject` turns rows read per request (`safecredit check`, `known_at`) into the
same dicts, so the CLI and the API give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from typing import Any, Iterable

import orjson

from safecredit.publish.formats import json_value

LISTING_FIELDS = (
    "entry_id",
    "ground",
    "ground_name",
    "basis",
    "regime",
    "decided",
    "decision_no",
    "authority",
    "decision_date",
    "start_date",
    "end_date",
    "status",
    "role",
)
MEASURE_FIELDS = (
    "matter",
    "name",
    "measure",
    "restricted_from",
    "restricted_until",
    "for_life",
    "basis",
    "source",
    "entry_id",
    "penalty_id",
    "implementing_department",
    "scope_industry",
)

SubjectKey = tuple[str, str]


def listing_of(row: dict, status: str | None = None) -> dict:
    out = {k: json_value(row.get(k)) for k in LISTING_FIELDS}
    if status is not None:
        out["status"] = status
    return out


def measure_of(row: dict) -> dict:
    m = {k: json_value(row.get(k)) for k in MEASURE_FIELDS}
    m["name"] = json_value(row.get("measure_name", row.get("name")))
    m["source"] = m["source"] or ("ban" if row.get("penalty_id") and not row.get("entry_id") else "listing")
    m["for_life"] = bool(row.get("for_life")) if row.get("for_life") is not None else m["restricted_until"] is None
    return m


def measure_order(m: dict) -> tuple[str, str, str]:
    return (str(m["matter"]), str(m["entry_id"] or ""), str(m["penalty_id"] or ""))


def entry_order(row: dict) -> tuple[str, str]:
    return (str(row.get("start_date")), str(row.get("entry_id")))


def subject_name(entries: list[dict], rows: list[dict]) -> str | None:
    """The newest listing's name, else a restriction row's (entries in `entry_order`)."""
    return next((r.get("name") for r in [*entries[::-1], *rows] if r.get("name")), None)


@dataclass(frozen=True)
class Prepared:
    """One subject's part of an answer as published: listings and measures, JSON-ready."""

    listings: tuple[dict, ...]
    measures: tuple[dict, ...]
    name: str | None
    _json: dict = field(default_factory=dict, compare=False, repr=False)  # matter → serialised parts

    def json_parts(self, matter: str | None) -> tuple[orjson.Fragment, orjson.Fragment, bool]:
        """(listings, measures narrowed to `matter`, restricted) serialised once per subject and
        matter: the API's answers embed them as they are (a batch of 1,000 serialises nothing
        twice). A handful of matters per subject are remembered."""
        if not self.listings and not self.measures:  # most subjects asked: nothing to serialise
            return NOTHING
        found = self._json.get(matter)
        if found is None:
            measures = self.measures if matter is None else [m for m in self.measures if m["matter"] == matter]
            found = (
                orjson.Fragment(orjson.dumps(self.listings)),
                orjson.Fragment(orjson.dumps(measures)),
                bool(measures),
            )
            if len(self._json) < MAX_MATTERS_SERIALISED:
                self._json[matter] = found
        return found


NOTHING = (orjson.Fragment(b"[]"), orjson.Fragment(b"[]"), False)

#: matters whose serialised parts a subject keeps (the fixed 15, `None` and a few the policy adds)
MAX_MATTERS_SERIALISED = 24


EMPTY = Prepared((), (), None)


def prepare_subject(entries: Iterable[dict], rows: Iterable[dict]) -> Prepared:
    """A subject's published blacklist entries and restrictions rows → its answer parts."""
    entries = sorted(entries, key=entry_order)
    rows = list(rows)
    return Prepared(
        tuple(listing_of(e) for e in entries),
        tuple(sorted((measure_of(r) for r in rows), key=measure_order)),
        subject_name(entries, rows),
    )


@dataclass(frozen=True)
class AnswerIndex:
    """A snapshot's answers for its own publication date (see the module docstring)."""

    subjects: dict[SubjectKey, Prepared]
    unit_names: dict[str, str]
    persons_published: bool

    def prepared(self, subject_type: str, subject_id: str | None, code: str) -> Prepared:
        found = self.subjects.get((subject_type, subject_id)) if subject_id else None
        if found is not None:
            return found
        name = self.unit_names.get(code) if subject_type == "unit" else None
        return Prepared((), (), name) if name else EMPTY


def grouped_rows(cur, feed: str, id_columns: tuple[str, ...]) -> dict[SubjectKey, list[dict]]:
    """Rows of `feed` grouped by (subject_type, subject_id), within a subject in id order (the
    same input gives the same answers): one sorted Arrow read, one pass over it."""
    order = ", ".join(f'"{c}"' for c in ("subject_type", "subject_id", *id_columns))
    table = cur.sql(f'SELECT * FROM "{feed}" ORDER BY {order}').to_arrow_table()
    rows = table.to_pylist()
    return {key: list(group) for key, group in groupby(rows, key=lambda r: (r["subject_type"], r["subject_id"]))}


def build_answer_index(cur, feeds: dict[str, Any]) -> AnswerIndex:
    """The index over the served `blacklist` / `restrictions` tables (`feeds`: the snapshot's
    name → FeedInfo)."""

    def columns(feed: str) -> set[str]:
        return set(feeds[feed].columns) if feed in feeds else set()

    def grouped(feed: str) -> dict[SubjectKey, list[dict]]:
        if not {"subject_id", "subject_type"} <= columns(feed):
            return {}
        return grouped_rows(cur, feed, tuple(c for c in feeds[feed].id_columns if c in columns(feed)))

    listings, published = grouped("blacklist"), grouped("restrictions")
    names: dict[str, str] = {}
    if {"uscc", "name"} <= columns("credit_scores"):
        table = cur.sql('SELECT uscc, any_value(name) AS name FROM "credit_scores" GROUP BY uscc').to_arrow_table()
        names = dict(zip(table.column("uscc").to_pylist(), table.column("name").to_pylist()))
    subjects = {}
    for key in sorted(set(listings) | set(published), key=lambda k: (str(k[0]), str(k[1]))):
        part = prepare_subject(listings.get(key, ()), published.get(key, ()))
        if part.name is None and key[0] == "unit" and key[1] in names:  # a unit's id is its USCC
            part = Prepared(part.listings, part.measures, names[key[1]])
        subjects[key] = part
    persons = any(k[0] == "person" for k in listings)
    return AnswerIndex(subjects, names, persons)


def answer_body(
    code_shown: str,
    subject_type: str,
    part: Prepared,
    *,
    matter: str | None,
    day: date,
    version: str | None,
    known_at: date | None,
    publication_as_of: date | None,
    serialised: bool = False,
) -> dict[str, Any]:
    """The answer of one subject (the order of the keys is the documented one); `serialised`:
    listings and measures as JSON fragments (`Prepared.json_parts`) for `orjson.dumps`."""
    if serialised:
        listings, measures, restricted = part.json_parts(matter)
    else:
        listings = list(part.listings)
        measures = list(part.measures) if matter is None else [m for m in part.measures if m["matter"] == matter]
        restricted = bool(measures)
    return {
        "code": code_shown,
        "subject_type": subject_type,
        "name": part.name,
        "restricted": restricted,
        "as_of": day.isoformat(),
        "version": version,
        "matter": matter,
        "known_at": known_at.isoformat() if known_at else None,
        "publication_as_of": publication_as_of.isoformat() if publication_as_of else None,
        "listings": listings,
        "measures": measures,
    }
