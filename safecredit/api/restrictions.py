"""The restriction answer of exchange.md §2 — one function for the API and `safecredit check`.

Who is asked (`resolve_subject`): the code's form decides unless `subject_type` is given — a
USCC with a correct check character is a unit, an 18-character ID number with a correct MOD 11-2
check digit and a real birth date a person; a code valid as both is a 409 asking for
`subject_type`; anything else a 422. Persons with other identity documents are asked with
`subject_type=person` and the document number as given. Persons are found by the keyed hash the
rules give them (`'P' || left(sha256(salt || number), 16)`, salt in `<home>/keys/person-id.key`):
the full number is never stored, logged or echoed (answers show it masked).

What is answered (`restriction_answers`):

* default — the published `restrictions` rows (what binds on the publication's `as_of`) and the
  subject's `blacklist` entries with their published status;
* `as_of` (another date) — today's knowledge applied to that date: each entry's status is
  recomputed from its published dates (decision, start, end, repair, objection, revocation; a
  revoked decision or an upheld objection counts as never having stood), the measures of the
  policy measures table bind the entries `listed` on that date, and the statutory bans of the
  published `restrictions` rows bind within their own window;
* `known_at` — the same, from the latest version published on or before that date (its
  versions.json `generated_at`, Asia/Shanghai); 410 when none was yet or it was pruned;
* `matter` narrows `measures` and `restricted` to that matter (an unknown matter is a 422).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from safecredit.codes import classify_code, is_valid_id_number, is_valid_uscc, mask_id_number, normalise_code
from safecredit.publish import is_version_id
from safecredit.publish.errors import VersionNotFound, VersionPruned

from .answer_index import (
    AnswerIndex,
    Prepared,
    answer_body,
    build_answer_index,
    entry_order,
    listing_of,
    measure_of,
    measure_order,
    prepare_subject,
    subject_name,
)
from .problems import ApiProblem
from .snapshot import Snapshot, local_date, parse_date

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
}

SUBJECT_TYPES = ("unit", "person")
MAX_CODE_LENGTH = 64
MAX_BATCH = 1000
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
    return code if classify_code(code) == "uscc" else (mask_id_number(code) or "")


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


def known_matters(snap: Snapshot, cur, policy_measures: Iterable[dict]) -> dict[str, str]:
    """matter → name: the fixed ones (exchange.md §2), those of `policy_measures` (a measures
    table), the published restrictions' (read once per snapshot)."""
    out = dict(MATTERS)
    for m in policy_measures:
        if m.get("matter"):
            out.setdefault(str(m["matter"]), str(m.get("name") or m["matter"]))
    if snap.has("restrictions") and "matter" in snap.feeds["restrictions"].columns:
        published = snap.cache.get("published_matters")
        if published is None:
            published = (
                dict(
                    cur.execute(
                        'SELECT DISTINCT matter, any_value(measure_name) FROM "restrictions" '
                        "WHERE matter IS NOT NULL GROUP BY matter"
                    ).fetchall()
                )
                if "measure_name" in snap.feeds["restrictions"].columns
                else {m: m for (m,) in cur.execute('SELECT DISTINCT matter FROM "restrictions"').fetchall() if m}
            )
            snap.cache["published_matters"] = published
        for k, v in sorted(published.items()):
            out.setdefault(k, v or k)
    return out


def matters_on(snap: Snapshot, cur, day: date | None) -> dict[str, str]:
    """`known_matters` with the measures table of the policy in force on `day`, remembered per
    snapshot and day: no policy read and no query per request."""
    key = ("matters", day)
    found = snap.cache.get(key)
    if found is None:
        found = known_matters(snap, cur, policy_measures(day))
        if len([k for k in snap.cache if isinstance(k, tuple) and k[0] == "matters"]) < MAX_MATTER_DAYS:
            snap.cache[key] = found  # bounded: `as_of` is the caller's, any day of any year
    return found


#: days whose matters a snapshot remembers (the publication's own first; others as asked)
MAX_MATTER_DAYS = 64


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


def policy_measures(day: date | None) -> list[dict]:
    """The measures table of the policy in force on `day` (empty when no policy folder exists)."""
    try:
        from safecredit.policy import policy_for

        return list(policy_for(day).tables().get("measures") or [])
    except (FileNotFoundError, KeyError, ValueError):
        return []


def _truthy(v: Any, default: bool = True) -> bool:
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("true", "1", "yes", "y")


def _grounds(v: Any) -> set[str]:
    if v is None:
        return {"*"}
    items = v if isinstance(v, (list, tuple)) else str(v).replace(" ", "").split(",")
    return {str(x) for x in items if str(x)}


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 Feb → 28 Feb, as the rules do
        return d.replace(year=d.year + years, day=28)


def status_on(entry: dict[str, Any], day: date) -> str | None:
    """An entry's status on `day` with today's knowledge (None: not yet decided on that day)."""
    published = entry.get("status")
    decision = parse_date(entry.get("decision_date")) or parse_date(entry.get("start_date"))
    if decision is not None and day < decision:
        return None
    if published in ("revoked", "objection_upheld"):  # applies backwards: it never stood
        return published
    start, end = parse_date(entry.get("start_date")), parse_date(entry.get("end_date"))
    if start is not None and day < start:
        return "pending"
    if entry.get("awaits_decision") and (end is None or day < end):
        return "pending"  # an inferred entry its regime does not let restrict (B4): never listed by itself
    repair = parse_date(entry.get("repair_date"))
    if repair is not None and repair <= day:
        if published == "repaired":
            return "repaired"
        restored = parse_date(entry.get("status_date"))  # a revoked repair: listed again from then
        if published == "listed" and restored is not None and day < restored:
            return "repaired"
    if end is not None and day >= end:
        return "expired"
    return "listed"


# --------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Source:
    """Where an answer reads from: the served snapshot or an earlier version (known_at)."""

    version: str | None
    as_of: date | None
    blacklist: tuple[str, tuple[str, ...]] | None  # (relation, columns)
    restrictions: tuple[str, tuple[str, ...]] | None
    derived_only: bool = False  # no restrictions feed in this version


def served_source(snap: Snapshot) -> Source:
    bl = snap.feeds.get("blacklist")
    rs = snap.feeds.get("restrictions")
    main = rs or bl
    return Source(
        main.version if main else snap.version,
        main.as_of if main else None,
        ('"blacklist"', bl.columns) if bl else None,
        ('"restrictions"', rs.columns) if rs else None,
        rs is None,
    )


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
    parts: dict[str, tuple[str, tuple[str, ...]] | None] = {}
    as_of = None
    for name in ("blacklist", "restrictions"):
        try:
            rel, info = snap.relation(name, version)
        except VersionNotFound as exc:
            if isinstance(exc, VersionPruned):
                raise
            parts[name] = None
            continue
        parts[name] = (rel, info.columns)
        as_of = as_of or info.as_of
    if parts["blacklist"] is None and parts["restrictions"] is None:
        raise ApiProblem(
            404,
            f"version {version} has no blacklist or restrictions feed",
            f"版本 {version} 没有名单或惩戒措施数据",
            kind="not-published-then",
        )
    return Source(version, as_of, parts["blacklist"], parts["restrictions"], parts["restrictions"] is None)


def answer_index(snap: Snapshot) -> AnswerIndex | None:
    """The snapshot's answer index (built by `warm`), None for a snapshot without one (`check`)."""
    return snap.cache.get("answers")


def warm(snap: Snapshot) -> None:
    """Build the in-memory lookups of a new snapshot before it is swapped in: the answer index and
    the matters of the policy in force on the publication's date."""
    cur = snap.cursor()
    try:
        snap.cache["answers"] = build_answer_index(cur, snap.feeds)
        main = snap.feeds.get("restrictions") or snap.feeds.get("blacklist")
        if main is not None:
            matters_on(snap, cur, main.as_of)
    finally:
        cur.close()


def _by_subject(rel: tuple[str, tuple[str, ...]] | None, cur, subjects: list[Subject]) -> dict:
    keys = sorted({s.subject_id for s in subjects if s.subject_id})
    if rel is None or not keys or not {"subject_id", "subject_type"} <= set(rel[1]):
        return {}
    out: dict[tuple[str, str], list[dict]] = {}
    for row in fetch(cur, f"SELECT * FROM {rel[0]} WHERE subject_id IN (SELECT unnest(?::VARCHAR[]))", [keys]):
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


def _derived_measures(
    entries: list[tuple[dict, str | None]], bans: list[dict], day: date, measures_table: list[dict]
) -> list[dict]:
    out = []
    for entry, status in entries:
        if status != "listed":
            continue
        start = parse_date(entry.get("start_date"))
        for m in measures_table:
            if not _truthy(m.get("on_listing")):
                continue
            if str(m.get("applies_to") or "both") not in (entry.get("subject_type"), "both"):
                continue
            grounds = _grounds(m.get("grounds"))
            if "*" not in grounds and entry.get("ground") not in grounds:
                continue
            if str(m.get("duration") or "listing") == "years" and m.get("years") and start is not None:
                until = add_years(start, int(m["years"]))
            else:
                until = parse_date(entry.get("end_date"))
            if start is None or day < start or (until is not None and day >= until):
                continue
            out.append(
                {
                    "matter": m.get("matter"),
                    "name": m.get("name"),
                    "measure": m.get("measure"),
                    "restricted_from": start.isoformat(),
                    "restricted_until": until.isoformat() if until else None,
                    "for_life": False,
                    "basis": m.get("basis"),
                    "source": "listing",
                    "entry_id": entry.get("entry_id"),
                    "penalty_id": None,
                    "implementing_department": m.get("department"),
                    "scope_industry": None,
                }
            )
    for row in bans:
        start, until = parse_date(row.get("restricted_from")), parse_date(row.get("restricted_until"))
        life = bool(row.get("for_life"))
        if start is not None and start <= day and (life or until is None or day < until):
            out.append(measure_of(row))
    return out


def restriction_answers(
    snap: Snapshot,
    cur,
    subjects: list[Subject],
    *,
    matter: str | None = None,
    as_of: date | None = None,
    known_at: date | None = None,
    derive: bool | None = None,
    serialised: bool = False,
) -> list[dict[str, Any]]:
    """The answer body of GET /v1/restrictions/{code} for each subject (same order); `serialised`:
    listings and measures as JSON fragments, for a body serialised with orjson (the API).

    For the publication's own date the answer is what the rules published: from the snapshot's
    answer index when it has one (the server), else from the rows read now (`check`, `known_at`),
    through the same `prepare_subject`. `derive=True` recomputes from the blacklist dates and the
    measures policy even for the publication's own date (the consistency test); None decides by
    `as_of`."""
    src = known_at_source(snap, known_at) if known_at else served_source(snap)
    day = as_of or src.as_of or date.today()
    if derive is None:
        derive = src.derived_only or (as_of is not None and as_of != src.as_of)
    index = answer_index(snap) if not known_at and not derive else None
    if index is not None:
        parts = [index.prepared(s.subject_type, s.subject_id, s.code) for s in subjects]
    else:
        parts = _parts_read_now(snap, cur, src, subjects, day if derive else None)
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
        )
        for s, part in zip(subjects, parts)
    ]


def _parts_read_now(
    snap: Snapshot, cur, src: Source, subjects: list[Subject], derive_on: date | None
) -> list[Prepared]:
    """Each subject's answer parts from rows read for this call; `derive_on`: statuses and measures
    recomputed for that date (`as_of` other than the publication's)."""
    listings = _by_subject(src.blacklist, cur, subjects)
    published = _by_subject(src.restrictions, cur, subjects)
    names = _unit_names(snap, cur, subjects)
    table = policy_measures(derive_on) if derive_on else []
    out = []
    for s in subjects:
        key = (s.subject_type, s.subject_id)
        entries, rows = listings.get(key, []), published.get(key, [])
        if derive_on is None:
            part = prepare_subject(entries, rows)
        else:
            entries = sorted(entries, key=entry_order)
            with_status = [(e, status_on(e, derive_on)) for e in entries]
            bans = [r for r in rows if r.get("source") == "ban"]
            part = Prepared(
                tuple(listing_of(e, st) for e, st in with_status if st is not None),
                tuple(sorted(_derived_measures(with_status, bans, derive_on, table), key=measure_order)),
                subject_name(entries, rows),
            )
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
    return not src.derived_only and (as_of is None or as_of == src.as_of) and ("matters", src.as_of) in snap.cache


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
    matter = check_matter(matter, matters_on(snap, cur, as_of or main.as_of))
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
