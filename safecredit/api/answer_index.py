"""The in-memory answer index of one publication snapshot: what `GET /v1/restrictions/{code}`
answers for the publication's own date, keyed by (subject_type, subject_id).

Built once when a snapshot loads (`SnapshotManager` → `warm`), before it is swapped in, and dropped
with it, without a pass over rows in Python: per feed (`blacklist`, `restrictions`, the timelines)
the columns an answer shows, read from the feed's Parquet file a column at a time and put in
`type:id` order, the distinct ids a fixed-width numpy array searched by bisection
(`sorted_ids.py`); the units' names (`credit_scores`) the same way. A request normalises its code
(a person's: the keyed hash), finds its rows (none for most codes asked), turns them into the
answer's JSON-ready parts (`prepare_subject`, remembered for the subjects asked most) and filters
by `matter`: statuses, dates and measures are those the rules published (`rules/30_blacklist.sql`,
`rules/35_restrictions.sql`), never re-derived here, and no policy file is read.

The same `prepare_subject` turns rows read per request (`safecredit check`, `known_at`, another
`as_of`) into the same dicts, so the CLI and the API give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from safecredit.publish.formats import json_value

from .sorted_ids import SortedIds

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


def _has_persons(cur) -> bool:
    return bool(cur.sql("SELECT count(*) FROM \"blacklist\" WHERE subject_type = 'person'").fetchall()[0][0])


#: subjects whose prepared parts an index remembers (those asked again skip the Arrow slice)
MAX_PREPARED = 100_000


@dataclass(frozen=True)
class AnswerIndex:
    """A snapshot's answers (see the module docstring): for its own publication date, and for any
    other `as_of` from its timelines."""

    listings: SortedIds | None  # blacklist rows by `subject_type:subject_id`
    measures: SortedIds | None  # restrictions rows, the same
    unit_names: SortedIds  # credit_scores: uscc → name
    persons_published: bool
    answers_other_dates: bool = False  # the publication has both timelines
    listing_timeline: SortedIds | None = None  # the same, for other dates
    restriction_timeline: SortedIds | None = None
    _prepared: dict[SubjectKey, Prepared] = field(default_factory=dict, compare=False, repr=False)

    def prepared(self, subject_type: str, subject_id: str | None, code: str) -> Prepared:
        """The subject's parts on the publication's own date."""
        if not subject_id:
            return EMPTY
        key = (subject_type, subject_id)
        found = self._prepared.get(key)
        if found is not None:
            return found
        part = self._named(
            subject_type,
            code,
            _rows(self.listings, subject_type, subject_id),
            _rows(self.measures, subject_type, subject_id),
        )
        return self._remember(key, part)

    def _remember(self, key: SubjectKey, part: Prepared) -> Prepared:
        if not part.listings and not part.measures:
            return part  # a clean code: nothing worth remembering
        if len(self._prepared) >= MAX_PREPARED:
            self._prepared.clear()
        self._prepared[key] = part
        return part

    def prepared_many(self, subjects: Sequence[Any]) -> list[Prepared]:
        """`prepared` of many subjects (`subject_type`, `subject_id`, `code`), each relation
        searched once for all of them (`SortedIds.spans`): a batch in one pass."""
        out: list[Prepared] = [EMPTY] * len(subjects)
        todo = []
        for i, s in enumerate(subjects):
            if s.subject_id:
                found = self._prepared.get((s.subject_type, s.subject_id))
                if found is not None:
                    out[i] = found
                else:
                    todo.append(i)
        keys = [f"{subjects[i].subject_type}:{subjects[i].subject_id}" for i in todo]
        entries = self.listings.rows_of(keys) if self.listings is not None else [[]] * len(todo)
        rows = self.measures.rows_of(keys) if self.measures is not None else [[]] * len(todo)
        units = [i for i in todo if subjects[i].subject_type == "unit"]  # a unit's id is its USCC
        names = dict(zip(units, self.unit_names.firsts([subjects[i].code for i in units], "name")))
        for i, e, r in zip(todo, entries, rows):
            s = subjects[i]
            part = prepare_subject(e, r) if e or r else EMPTY
            name = names.get(i) if part.name is None else None
            if name:
                part = Prepared(part.listings, part.measures, name)
            out[i] = self._remember((s.subject_type, s.subject_id), part)
        return out

    def eligible_units(self, codes: list[str]) -> set[str]:
        """The units of `codes` that meet the 守信 conditions (`incentive_eligible`, in one pass)."""
        if "incentive_eligible" not in self.unit_names.column_names:
            return set()
        return {c for c, ok in zip(codes, self.unit_names.firsts(codes, "incentive_eligible")) if ok}

    def prepared_on(self, subject_type: str, subject_id: str | None, code: str, day: date) -> Prepared:
        """The subject's parts on `day`: its timeline rows valid on it (valid_from <= day <
        valid_until, NULL = open), as published."""
        if not subject_id:
            return EMPTY
        entries = _rows(self.listing_timeline, subject_type, subject_id)
        measures = _rows(self.restriction_timeline, subject_type, subject_id)
        return self._named(subject_type, code, _valid_on(entries, day), _valid_on(measures, day))

    def _named(self, subject_type: str, code: str, entries: list[dict], rows: list[dict]) -> Prepared:
        part = prepare_subject(entries, rows) if entries or rows else EMPTY
        if part.name is None and subject_type == "unit":  # a unit's id is its USCC
            name = self.unit_names.first(code, "name")
            return Prepared(part.listings, part.measures, name) if name else part
        return part

    def incentive_eligible(self, code: str) -> bool:
        """Whether the unit meets the 守信 conditions in the publication (credit_scores)."""
        return "incentive_eligible" in self.unit_names.column_names and bool(
            self.unit_names.first(code, "incentive_eligible")
        )

    @property
    def nbytes(self) -> int:
        parts = [self.listings, self.measures, self.listing_timeline, self.restriction_timeline]
        return self.unit_names.nbytes + sum(p.nbytes for p in parts if p is not None)


def _rows(rows: SortedIds | None, subject_type: str, subject_id: str) -> list[dict]:
    return rows.rows(f"{subject_type}:{subject_id}") if rows is not None else []


def _valid_on(rows: list[dict], day: date) -> list[dict]:
    return [r for r in rows if r["valid_from"] <= day and (r["valid_until"] is None or day < r["valid_until"])]


#: the feeds another as_of is answered from (the snapshot need not copy them into DuckDB)
TIMELINES = ("listing_timeline", "restriction_timeline")
#: the feeds the publication's own date is answered from (the snapshot keeps them compressed)
PUBLISHED = ("blacklist", "restrictions")

#: the feeds whose rows the index holds, with the columns an answer shows
INDEXED = {
    "blacklist": (*LISTING_FIELDS, "name"),
    "restrictions": (*MEASURE_FIELDS, "measure_name", "name"),
    "listing_timeline": (*LISTING_FIELDS, "name", "valid_from", "valid_until"),
    "restriction_timeline": (*MEASURE_FIELDS, "measure_name", "name", "valid_from", "valid_until"),
}


def build_answer_index(cur, feeds: dict[str, Any]) -> AnswerIndex:
    """The index over the served `blacklist`, `restrictions`, their timelines and `credit_scores`
    (`feeds`: the snapshot's name → FeedInfo): one sorted read per feed and subject type."""

    def columns(feed: str) -> list[str]:
        return list(feeds[feed].columns) if feed in feeds else []

    def by_subject(feed: str) -> SortedIds | None:
        have = columns(feed)
        if not {"subject_id", "subject_type"} <= set(have):
            return None
        kept = [c for c in have if c in INDEXED[feed]]
        return _sorted(cur, feeds[feed], ("subject_type", "subject_id"), kept)

    listings, measures = by_subject("blacklist"), by_subject("restrictions")
    names = SortedIds(pa.table({"_id": pa.array([], pa.string()), "name": pa.array([], pa.string())}))
    if {"uscc", "name"} <= set(columns("credit_scores")):
        # with each unit's 守信 eligibility: a qualifying unit's answer links to its incentives
        shown = [c for c in ("name", "incentive_eligible") if c in columns("credit_scores")]
        names = _sorted(cur, feeds["credit_scores"], ("uscc",), shown, ("name",))
    timelines = [f for f in TIMELINES if {"valid_from", "valid_until"} <= set(columns(f))]
    index = AnswerIndex(
        listings,
        measures,
        names,
        listings is not None and _has_persons(cur),
        len(timelines) == len(TIMELINES),
        *(by_subject(f) if f in timelines else None for f in TIMELINES),
    )
    pa.default_memory_pool().release_unused()  # the columns read and sorted: the server keeps running
    return index


def _sorted(cur, info: Any, key: tuple[str, ...], columns: list[str], not_null: tuple[str, ...] = ()) -> SortedIds:
    """`info`'s rows by `key` (joined with ':'), read from the feed's file when it has the columns
    as served (the snapshot's table is that file copied; a lean feed's widening adds other
    columns): the index is then built beside DuckDB's copy, not from it, a column at a time. Else
    (a feed without a file of its own) from the snapshot's relation."""
    path = getattr(info, "path", None)
    if path is not None and Path(path).is_file():
        if {*key, *columns, *not_null} <= set(pq.read_schema(path).names):
            return SortedIds.from_parquet(path, key, columns, not_null)
    where = " AND ".join(f'"{c}" IS NOT NULL' for c in not_null) or "true"
    return SortedIds.read(cur, f'"{info.name}"', " || ':' || ".join(key), columns, where)


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
    incentives: str | None = None,
) -> dict[str, Any]:
    """The answer of one subject (the order of the keys is the documented one); `serialised`:
    listings and measures as JSON fragments (`Prepared.json_parts`) for `orjson.dumps`;
    `incentives`: the 守信激励 answer a qualifying unit's answer links to (rules.md §7, exchange.md §2)."""
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
    } | ({"incentives": incentives} if incentives else {})
