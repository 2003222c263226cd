"""The restriction answer of exchange.md §2 — one function for the API and `safecredit check`.

Who is asked (`resolve_subject`): the code's form decides unless `subject_type` is given — a
USCC with a correct check character is a unit, an 18-character ID number with a correct MOD 11-2
check digit and a real birth date a person; a code valid as both is a 409 asking for
`subject_type`; anything else a 422. Persons with other identity documents are asked with
`subject_type=person` and the document number as given. Persons are found by the keyed hash the
rules give them (`'P' || left(sha256(salt || number), 16)`, salt in `<home>/keys/person-id.key`):
the full number is never stored, logged or echoed (answers show it masked).

What is answered (`restriction_answers`) is what the rules published, filtered (nothing here
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

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Sequence

from safecredit.codes import is_valid_id_number, is_valid_uscc, mask_id_number, normalise_code

from .answer_index import TIMELINES, AnswerIndex, Prepared, answer_body, build_answer_index, prepare_subject
from .answer_sources import Relation, Source, known_at_source, served_source
from .problems import ApiProblem
from .snapshot import Snapshot

#: exchange.md §2: the matters approval offices ask about; never renamed (the policy may add more).
MATTERS: dict[str, str] = {
    "government_procurement": "政府采购",
    "public_bidding": "工程招投标",
    "state_land": "国有土地出让",
    "project_approval": "新增项目核准",
    "mining_rights": "采矿权取得",
    "securities_financing": "证券融资",
    "policy_funds": "政策性资金扶持",
    "bank_credit": "银行贷款参考",
    "qualification": "资质审核",
    "honours": "评先评优",
    "insurance_rate": "保险费率上浮",
    "tax_incentives": "税收优惠",
    "market_entry": "市场禁入",
    "standardization": "安全生产标准化评审",
    "principal_role": "担任主要负责人",
    # rules.md §4 names these two as well (the 六安 seed): askable even while no subject is
    # restricted in them (出入境: a listing never is, only a court or the law's own cases)
    "import_export": "进出口",
    "exit_entry": "出入境",
}

SUBJECT_TYPES = ("unit", "person")
MAX_CODE_LENGTH = 64
MAX_BATCH = 1000
#: up to this many subjects are looked up in the answer index one by one; more in one pass
#: (vectorised searches cost more than a few single ones)
ONE_BY_ONE = 8
_ID_FORM_CHARS = set("0123456789X")
#: the characters a USCC or an identity document number may have (after `normalise_code`)
_CODE_FORM = re.compile(r"[A-Za-z0-9()\-]+")


@dataclass(frozen=True)
class Subject:
    code: str  # normalised; a person's full number only lives here, for hashing
    subject_type: str
    subject_id: str | None  # None: a person while no person-id key exists

    @property
    def shown(self) -> str:
        """The code as answers, logs and the audit show it (persons masked but the last 4)."""
        return self.code if self.subject_type == "unit" else (mask_id_number(self.code) or "")


def masked_code(raw: str | None) -> str:
    """A code as given, safe for a log line or the audit: kept only when it is a valid USCC."""
    if not raw:
        return ""
    code = normalise_code(str(raw))[:MAX_CODE_LENGTH]
    # `classify_code(code) == "uscc"` without its second normalisation (this runs for every call)
    return code if is_valid_uscc(code) and not is_valid_id_number(code) else (mask_id_number(code) or "")


def person_subject_id(salt: str, number: str) -> str:
    return "P" + hashlib.sha256((salt + number).encode("utf-8")).hexdigest()[:16]


def resolve_subject(raw: Any, subject_type: str | None, salt: Callable[[], str | None]) -> Subject:
    """The subject a code names, or ApiProblem 409/422 (bilingual detail)."""
    if subject_type is not None and subject_type not in SUBJECT_TYPES:
        raise ApiProblem(
            422,
            f"subject_type must be unit or person, not {str(subject_type)[:20]!r}",
            "subject_type 只能是 unit（单位）或 person（个人）",
            kind="invalid-subject-type",
        )
    code = normalise_code(raw) if isinstance(raw, str) else ""
    if not code:
        raise ApiProblem(422, "the code is empty", "代码为空", kind="malformed-code")
    if len(code) > MAX_CODE_LENGTH or not _CODE_FORM.fullmatch(code):
        raise ApiProblem(
            422,
            "the code has characters or a length no USCC or identity document number has",
            "代码包含无效字符或长度不符（既不是统一社会信用代码，也不是证件号码）",
            kind="malformed-code",
        )
    # `classify_code` without its second normalisation and the forms the API never answers
    uscc, pid = is_valid_uscc(code), is_valid_id_number(code)
    kind = "both" if uscc and pid else "uscc" if uscc else "id_number" if pid else "unknown"
    if subject_type is None:
        if kind == "both":
            raise ApiProblem(
                409,
                "this code is valid both as a unified social credit code and as a resident "
                "ID number: ask again with subject_type=unit or subject_type=person",
                "该代码同时符合统一社会信用代码和公民身份号码的校验规则，请指定 subject_type=unit 或 person",
                kind="ambiguous-code",
            )
        if kind == "uscc":
            subject_type = "unit"
        elif kind == "id_number":
            subject_type = "person"
        else:
            raise ApiProblem(422, _malformed_en(code), _malformed_zh(code), kind="malformed-code")
    if subject_type == "unit":
        if not uscc:
            raise ApiProblem(422, _malformed_en(code, unit=True), _malformed_zh(code, unit=True), kind="malformed-code")
        return Subject(code, "unit", code)
    # a person: a resident ID number must pass its checks; other documents are taken as given
    if len(code) == 18 and set(code) <= _ID_FORM_CHARS and code[:17].isdigit() and not pid:
        raise ApiProblem(
            422,
            "not a valid resident ID number (check digit or birth date wrong)",
            "公民身份号码无效（校验码或出生日期不正确）",
            kind="malformed-code",
        )
    key = salt()
    return Subject(code, "person", person_subject_id(key, code) if key else None)


def _malformed_en(code: str, unit: bool = False) -> str:
    if len(code) == 18 and unit:
        return (
            "not a valid unified social credit code: the check character (18th) is wrong or a character is not allowed"
        )
    if len(code) == 18:
        return (
            "neither a valid unified social credit code (check character) nor a valid resident ID number "
            "(MOD 11-2 check digit, birth date); for other identity documents ask with subject_type=person"
        )
    if unit:
        return f"a unified social credit code has 18 characters, this code has {len(code)}"
    return (
        f"not a unified social credit code or resident ID number (18 characters; this code has {len(code)}); "
        "for other identity documents ask with subject_type=person"
    )


def _malformed_zh(code: str, unit: bool = False) -> str:
    if len(code) == 18 and unit:
        return "统一社会信用代码无效：第18位校验码错误或含有不允许的字符"
    if len(code) == 18:
        return (
            "既不是有效的统一社会信用代码（校验码），也不是有效的公民身份号码（校验码、出生日期）；"
            "其他证件请指定 subject_type=person"
        )
    if unit:
        return f"统一社会信用代码应为18位，该代码为{len(code)}位"
    return f"不是统一社会信用代码或公民身份号码（应为18位，该代码为{len(code)}位）；其他证件请指定 subject_type=person"


def read_salt(home: Path) -> Callable[[], str | None]:
    """Loader of the person-id key (read lazily, never created by the service)."""
    path = Path(home) / "keys" / "person-id.key"
    cache: dict[str, str | None] = {}

    def load() -> str | None:
        if "v" not in cache:
            try:
                cache["v"] = path.read_text().strip() or None
            except FileNotFoundError:
                return None
        return cache["v"]

    return load


# --------------------------------------------------------------------------------- helpers


def fetch(cur, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    res = cur.execute(sql, list(params))
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r)) for r in res.fetchall()]


def known_matters(snap: Snapshot, cur) -> dict[str, str]:
    """matter → name: the fixed ones (exchange.md §2), then those the publication's restrictions
    and restriction timeline name (the measures the policy adds), read once per snapshot."""
    known = snap.cache.get("known_matters")
    if known is not None:  # once per snapshot: every answer checks its matter
        return known
    published = snap.cache.get("published_matters")
    if published is None:
        published = {}
        for feed in ("restrictions", "restriction_timeline"):
            columns = set(snap.feeds[feed].columns) if snap.has(feed) else set()
            if "matter" not in columns:
                continue
            name = "any_value(measure_name)" if "measure_name" in columns else "matter"
            for matter, measure_name in cur.execute(
                f'SELECT matter, {name} FROM "{feed}" WHERE matter IS NOT NULL GROUP BY matter ORDER BY matter'
            ).fetchall():
                published.setdefault(matter, measure_name or matter)
        snap.cache["published_matters"] = published
    out = dict(MATTERS)
    for k, v in published.items():
        out.setdefault(k, v)
    snap.cache["known_matters"] = out
    return out


def check_matter(matter: str | None, matters: dict[str, str]) -> str | None:
    if matter is None or matter == "":
        return None
    if matter not in matters:
        raise ApiProblem(
            422,
            f"unknown matter {matter[:40]!r}; one of: {', '.join(sorted(matters))}",
            f"未知的惩戒事项 {matter[:40]!r}",
            kind="unknown-matter",
        )
    return matter


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


def resolve_subjects(
    codes: Sequence[Any], subject_type: str | None, salt: Callable[[], str | None]
) -> list[Subject | ApiProblem]:
    """Each code's subject, or its ApiProblem (409/422), in order."""
    resolved: list[Subject | ApiProblem] = []
    for c in codes:
        try:
            resolved.append(resolve_subject(c, subject_type, salt))
        except ApiProblem as exc:
            resolved.append(exc)
    return resolved


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
