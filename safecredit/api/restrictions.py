"""The restriction answer of exchange.md §2 — one function for the API and `safecredit check`.

Who is asked is `subjects.resolve_subject`'s to say; the matters an answer can be narrowed to are
`matters.py`'s. What is answered (`restriction_answers`) is what the rules published, filtered (nothing here
derives a status, a date or a measure, and no policy file is read):

* default — the published `restrictions` rows (what binds on the publication's `as_of`) and the
  subject's `blacklist` entries with their published status (the snapshot's answer index);
* `as_of` (another date) — the `listing_timeline` and `restriction_timeline` rows valid on that
  date: what a rules run with that as_of over the same data gives (today's knowledge: a revoked
  decision or an upheld objection counts as never having stood);
* `known_at` — the same, from the latest version published on or before that date (its
  versions.json `generated_at`, Asia/Shanghai); 410 when none was yet, it was pruned, or (for
  another as_of) it carries no timeline (`answer_sources`);
* `matter` narrows `measures` and `restricted` to that matter; an unknown matter is a 422 (the
  matters of exchange.md §2 and those the publication's measures name).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Callable, Sequence

from .answer_index import TIMELINES, AnswerIndex, Prepared, answer_body, build_answer_index, prepare_subject
from .answer_sources import Relation, Source, known_at_source, served_source
from .matters import check_matter, known_matters
from .problems import ApiProblem
from .snapshot import Snapshot, fetch
from .subjects import Subject, read_salt, resolve_subject, resolve_subjects

#: up to this many subjects are looked up in the answer index one by one; more in one pass
#: (vectorised searches cost more than a few single ones)
ONE_BY_ONE = 8


def answer_index(snap: Snapshot) -> AnswerIndex | None:
    """The snapshot's answer index (built by `warm`), None for a snapshot without one (`check`)."""
    return snap.cache.get("answers")


def warm(snap: Snapshot) -> None:
    """Build the in-memory lookups of a new snapshot before it is swapped in: the answer index and
    the matters it knows."""
    cur = snap.cursor()
    try:
        snap.cache["answers"] = build_answer_index(cur, snap.feeds)
        known_matters(snap, cur)
    finally:
        cur.close()


def _by_subject(rel: Relation | None, cur, subjects: list[Subject], day: date | None) -> dict:
    """Rows of `rel` for `subjects`, grouped by subject; `day`: only the timeline rows valid on it."""
    keys = sorted({s.subject_id for s in subjects if s.subject_id})
    if rel is None or not keys or not {"subject_id", "subject_type"} <= set(rel[1]):
        return {}
    sql = f"SELECT * FROM {rel[0]} WHERE subject_id IN (SELECT unnest(?::VARCHAR[]))"
    params: list[Any] = [keys]
    if day is not None:
        sql += " AND valid_from <= ? AND (valid_until IS NULL OR ? < valid_until)"
        params += [day, day]
    out: dict[tuple[str, str], list[dict]] = {}
    for row in fetch(cur, sql, params):
        out.setdefault((row.get("subject_type"), row.get("subject_id")), []).append(row)
    return out


def _unit_names(snap: Snapshot, cur, subjects: list[Subject]) -> dict[str, str]:
    codes = sorted({s.code for s in subjects if s.subject_type == "unit"})
    if not codes or not snap.has("credit_scores") or not {"uscc", "name"} <= set(snap.feeds["credit_scores"].columns):
        return {}
    return dict(
        cur.execute(
            'SELECT uscc, any_value(name) FROM "credit_scores" '
            "WHERE uscc IN (SELECT unnest(?::VARCHAR[])) GROUP BY uscc",
            [codes],
        ).fetchall()
    )


def _eligible_units(snap: Snapshot, cur, subjects: list[Subject]) -> set[str]:
    """The asked units that meet the 守信 conditions in the served publication (credit_scores)."""
    codes = sorted({s.code for s in subjects if s.subject_type == "unit"})
    if not codes or not snap.has("credit_scores") or "incentive_eligible" not in snap.feeds["credit_scores"].columns:
        return set()
    rows = cur.execute(
        'SELECT DISTINCT uscc FROM "credit_scores" WHERE incentive_eligible AND uscc IN (SELECT unnest(?::VARCHAR[]))',
        [codes],
    ).fetchall()
    return {r[0] for r in rows}


def restriction_answers(
    snap: Snapshot,
    cur,
    subjects: list[Subject],
    *,
    matter: str | None = None,
    as_of: date | None = None,
    known_at: date | None = None,
    serialised: bool = False,
) -> list[dict[str, Any]]:
    """The answer body of GET /v1/restrictions/{code} for each subject (same order); `serialised`:
    listings and measures as JSON fragments, for a body serialised with orjson (the API).

    The publication's own date: its published rows; another `as_of`: the timeline rows valid on
    it. From the snapshot's answer index when it has one (the server), else read now (`check`,
    `known_at`); either way through the same `prepare_subject`."""
    src = known_at_source(snap, known_at) if known_at else served_source(snap)
    timeline_day = src.day_answered(as_of)
    day = as_of or src.as_of or date.today()
    index = answer_index(snap) if not known_at else None
    if index is not None and timeline_day is None and len(subjects) > ONE_BY_ONE:
        parts = index.prepared_many(subjects)
    elif index is not None and timeline_day is None:
        parts = [index.prepared(s.subject_type, s.subject_id, s.code) for s in subjects]
    elif index is not None and index.answers_other_dates:
        parts = [index.prepared_on(s.subject_type, s.subject_id, s.code, timeline_day) for s in subjects]
    else:
        parts = _parts_read_now(snap, cur, src, subjects, timeline_day)
    units = [s.code for s in subjects if s.subject_type == "unit"]
    eligible = (
        (index.eligible_units(units) if len(units) > ONE_BY_ONE else {c for c in units if index.incentive_eligible(c)})
        if index is not None
        else _eligible_units(snap, cur, subjects)
    )
    return [
        answer_body(
            s.shown,
            s.subject_type,
            part,
            matter=matter,
            day=day,
            version=src.version,
            known_at=known_at,
            publication_as_of=src.as_of,
            serialised=serialised,
            incentives=f"/v1/incentives/{s.code}" if s.code in eligible else None,
        )
        for s, part in zip(subjects, parts)
    ]


def _parts_read_now(
    snap: Snapshot, cur, src: Source, subjects: list[Subject], timeline_day: date | None
) -> list[Prepared]:
    """Each subject's answer parts from rows read for this call: the published blacklist and
    restrictions, or (`timeline_day`) the listing and restriction timelines valid on that day."""
    feeds = TIMELINES if timeline_day is not None else ("blacklist", "restrictions")
    listings = _by_subject(src.relations.get(feeds[0]), cur, subjects, timeline_day)
    published = _by_subject(src.relations.get(feeds[1]), cur, subjects, timeline_day)
    names = _unit_names(snap, cur, subjects)
    out = []
    for s in subjects:
        key = (s.subject_type, s.subject_id)
        part = prepare_subject(listings.get(key, ()), published.get(key, ()))
        out.append(part if part.name else Prepared(part.listings, part.measures, names.get(s.code)))
    return out


def persons_published(snap: Snapshot, cur) -> bool:
    index = answer_index(snap)
    if index is not None:
        return index.persons_published
    if not snap.has("blacklist") or "subject_type" not in snap.feeds["blacklist"].columns:
        return False
    return bool(cur.execute("SELECT count(*) FROM \"blacklist\" WHERE subject_type = 'person'").fetchone()[0])


def can_answer_from_index(snap: Snapshot, as_of: date | None, known_at: date | None) -> bool:
    """True when an answer comes from the snapshot's answer index alone: no query, nothing that
    blocks (the route answers on the event loop, without a thread hop)."""
    if known_at is not None or answer_index(snap) is None:
        return False
    src = served_source(snap)
    if "published_matters" not in snap.cache:
        return False
    if as_of is None or as_of == src.as_of:
        return src.answers_own_date()
    return answer_index(snap).answers_other_dates


def answer_codes(
    snap: Snapshot,
    cur,
    salt: Callable[[], str | None],
    codes: Sequence[Any],
    *,
    subject_type: str | None = None,
    matter: str | None = None,
    as_of: date | None = None,
    known_at: date | None = None,
) -> list[dict[str, Any] | ApiProblem]:
    """Answers for `codes` in order: an answer dict, or the ApiProblem (409/422) of that code.

    Request-level problems raise: an unknown matter (422), nothing published (503), a missing
    person-id key while persons are published (503), known_at before any publication or pruned (410)."""
    resolved = resolve_subjects(codes, subject_type, salt)
    return answer_subjects(snap, cur, resolved, matter=matter, as_of=as_of, known_at=known_at)


def answer_subjects(
    snap: Snapshot,
    cur,
    resolved: Sequence[Subject | ApiProblem],
    *,
    matter: str | None = None,
    as_of: date | None = None,
    known_at: date | None = None,
    serialised: bool = False,
) -> list[dict[str, Any] | ApiProblem]:
    """`answer_codes` for codes already resolved (`resolve_subjects`); `serialised` as in
    `restriction_answers`."""
    if not snap.feeds:
        raise ApiProblem(503, "nothing has been published yet", "尚未发布任何数据", kind="not-published")
    main = snap.feeds.get("restrictions") or snap.feeds.get("blacklist")
    if main is None:
        raise ApiProblem(
            503,
            "neither the blacklist nor the restrictions feed is published",
            "名单和惩戒措施数据均未发布",
            kind="not-published",
        )
    matter = check_matter(matter, known_matters(snap, cur))
    subjects = [s for s in resolved if isinstance(s, Subject)]
    if any(s.subject_type == "person" and s.subject_id is None for s in subjects) and persons_published(snap, cur):
        raise ApiProblem(
            503,
            "persons cannot be looked up: the person-id key (<home>/keys/person-id.key) is missing",
            "无法查询个人：缺少个人标识密钥（<home>/keys/person-id.key）",
            kind="person-key-missing",
        )
    answers = iter(
        restriction_answers(snap, cur, subjects, matter=matter, as_of=as_of, known_at=known_at, serialised=serialised)
    )
    return [next(answers) if isinstance(x, Subject) else x for x in resolved]


def check_from_home(
    home: Path,
    code: str,
    *,
    matter: str | None = None,
    as_of: date | None = None,
    subject_type: str | None = None,
    known_at: date | None = None,
) -> dict[str, Any]:
    """`safecredit check`: the API's answer from the latest publication, without a server
    (views over the Parquet files, nothing copied). Raises ApiProblem like the API would."""
    from safecredit.config import Paths

    from .snapshot import build_snapshot

    salt = read_salt(home)
    resolve_subject(code, subject_type, salt)  # a malformed code says so before anything is read
    snap = build_snapshot(Paths(Path(home)).exports, materialize=False)
    try:
        cur = snap.cursor()
        result = answer_codes(
            snap, cur, salt, [code], subject_type=subject_type, matter=matter, as_of=as_of, known_at=known_at
        )[0]
    finally:
        snap.close()
    if isinstance(result, ApiProblem):
        raise result
    return result
