"""Who is asked (exchange.md §2) — one resolution for the API, `safecredit check` and the masking.

The code's form decides unless `subject_type` is given — a USCC with a correct check character is
a unit, an 18-character ID number with a correct MOD 11-2 check digit and a real birth date a
person; a code valid as both is a 409 asking for `subject_type`; anything else a 422. Persons with
other identity documents are asked with `subject_type=person` and the document number as given.
Persons are found by the keyed hash the rules give them (`'P' || left(sha256(salt || number),
16)`, salt in `<home>/keys/person-id.key`): the full number is never stored, logged or echoed
(answers show it masked).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from safecredit.codes import is_valid_id_number, is_valid_uscc, mask_id_number, normalise_code

from .problems import ApiProblem

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


#: codes seen as given that are valid USCCs only (normalised already, never also an ID number):
#: public unit codes, kept to spare the hot route validating a code it saw before twice a call
#: (`masked_code`, `resolve_subject`). Nothing else is remembered: no ID number is held.
_KNOWN_UNITS: dict[str, Subject] = {}
MAX_KNOWN_UNITS = 100_000


def _known_unit(code: str) -> None:
    if len(_KNOWN_UNITS) >= MAX_KNOWN_UNITS:
        _KNOWN_UNITS.clear()
    _KNOWN_UNITS[code] = Subject(code, "unit", code)


def masked_code(raw: str | None) -> str:
    """A code as given, safe for a log line or the audit: kept only when it is a valid USCC."""
    if not raw:
        return ""
    if raw in _KNOWN_UNITS:
        return raw
    code = normalise_code(str(raw))[:MAX_CODE_LENGTH]
    # `classify_code(code) == "uscc"` without its second normalisation (this runs for every call)
    if is_valid_uscc(code) and not is_valid_id_number(code):
        if code == raw:
            _known_unit(code)
        return code
    return mask_id_number(code) or ""


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
    if subject_type != "person" and isinstance(raw, str):
        known = _KNOWN_UNITS.get(raw)
        if known is not None:  # what the checks below answer for a code valid as a USCC only
            return known
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
        if not pid and code == raw:
            _known_unit(code)
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
