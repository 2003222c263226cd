"""Identity codes: validation, normalisation, generation (pure Python, no heavy imports).

* 统一社会信用代码 USCC (GB 32100-2015, rules.md §1)
* 组织机构代码 organisation code (GB 11714)
* 公民身份号码 resident ID number (GB 11643, check digit ISO 7064 MOD 11-2)
* 工商注册号 old 15-digit registration number (GS15, check digit ISO 7064 MOD 11,10)

Validators (``is_valid_*``) take the code exactly as given: run :func:`normalise_code` first
on department input (full-width, spaces, lower case). :func:`classify_code` normalises itself.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from datetime import date
from typing import Literal

__all__ = [
    "USCC_ALPHABET",
    "uscc_check_char",
    "is_valid_uscc",
    "make_uscc",
    "org_code_check_char",
    "is_valid_org_code",
    "make_org_code",
    "id_check_char",
    "is_valid_id_number",
    "make_id_number",
    "reg_no15_check_digit",
    "is_valid_reg_no15",
    "make_reg_no15",
    "mask_id_number",
    "normalise_code",
    "fullwidth_to_halfwidth",
    "classify_code",
    "CodeKind",
]

# --------------------------------------------------------------------------- USCC (GB 32100)

#: The 31 characters of a USCC, in value order (no I, O, Z, S, V).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
#: 18 characters of that alphabet (the API checks every code asked: a regex, not a loop)
_USCC_FORM = re.compile(r"[0-9A-HJ-NP-RTUWXY]{18}")
#: W_i = 3^(i-1) mod 31, i = 1..17
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """The 18th (check) character for the first 17 characters of a USCC."""
    if len(first17) != 17:
        raise ValueError(f"USCC body must be 17 characters, got {len(first17)}")
    try:
        total = sum(USCC_VALUES[c] * w for c, w in zip(first17, USCC_WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the USCC alphabet") from None
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """18 characters of the USCC alphabet with a correct check character.

    The leading registration-authority character is not checked against a list (rules.md §1:
    an unfamiliar one is not a reason to reject), nor is the embedded organisation code's own
    check character.
    """
    if not isinstance(code, str) or not _USCC_FORM.fullmatch(code):
        return False
    total = sum(map(operator.mul, map(USCC_VALUES.__getitem__, code[:17]), USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def make_uscc(authority: str, entity_type: str, region6: str, orgcode9: str) -> str:
    """Assemble a USCC: authority (1 char) · entity type (1 char) · region (6 digits) ·
    organisation code (9 chars, hyphen allowed, must carry a valid GB 11714 check char) · check.

    >>> make_uscc("9", "1", "440300", "192203821")
    '914403001922038216'
    """
    org = orgcode9.replace("-", "")
    if len(authority) != 1 or len(entity_type) != 1:
        raise ValueError("authority and entity_type are one character each")
    if len(region6) != 6 or not region6.isdigit():
        raise ValueError(f"region code must be 6 digits, got {region6!r}")
    if not is_valid_org_code(org):
        raise ValueError(f"invalid organisation code {orgcode9!r}")
    body = authority + entity_type + region6 + org
    return body + uscc_check_char(body)


# --------------------------------------------------------------------------- GB 11714

_ORG_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_RE = re.compile(r"^([0-9A-Z]{8})-?([0-9X])$")


def org_code_check_char(first8: str) -> str:
    """GB 11714 check character: 11 − (Σ v·w mod 11); 10 → X, 11 → 0."""
    if len(first8) != 8:
        raise ValueError(f"organisation code body must be 8 characters, got {len(first8)}")
    try:
        total = sum(_ORG_VALUES[c] * w for c, w in zip(first8, ORG_WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} not allowed in an organisation code") from None
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def is_valid_org_code(code: str) -> bool:
    """9 characters (``XXXXXXXX-X`` with the hyphen also accepted) with a correct check char."""
    if not isinstance(code, str):
        return False
    m = _ORG_RE.match(code)
    return bool(m) and org_code_check_char(m.group(1)) == m.group(2)


def make_org_code(first8: str) -> str:
    """The 9-character organisation code (no hyphen) for an 8-character body."""
    return first8 + org_code_check_char(first8)


# --------------------------------------------------------------------------- GB 11643

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_MAP = "10X98765432"  # Σ mod 11 = 0..10 → check char
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_ID_MIN_BIRTH = date(1900, 1, 1)


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit resident ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("ID number body must be 17 digits")
    return ID_CHECK_MAP[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def _birth_date(code: str) -> date | None:
    try:
        return date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return None


def is_valid_id_number(code: str, *, today: date | None = None) -> bool:
    """18 characters (17 digits + digit or ``X``), a real birth date between 1900-01-01 and
    ``today`` (default: the system date), and a correct check character."""
    if not isinstance(code, str) or not _ID_RE.match(code):
        return False
    birth = _birth_date(code)
    if birth is None or not (_ID_MIN_BIRTH <= birth <= (today or date.today())):
        return False
    return id_check_char(code[:17]) == code[17]


def make_id_number(region6: str, birth: date, seq3: int | str) -> str:
    """An 18-digit ID number; ``seq3`` 0–999 (odd = male, even = female by convention)."""
    seq = f"{int(seq3):03d}"
    if len(region6) != 6 or not region6.isdigit() or len(seq) != 3:
        raise ValueError("region6 must be 6 digits and seq3 within 0..999")
    body = f"{region6}{birth:%Y%m%d}{seq}"
    return body + id_check_char(body)


# --------------------------------------------------------------------------- GS15


def reg_no15_check_digit(first14: str) -> str:
    """ISO 7064 MOD 11,10 check digit of a 15-digit 工商注册号 (GS15-2006)."""
    if len(first14) != 14 or not first14.isdigit():
        raise ValueError("registration number body must be 14 digits")
    p = 10
    for ch in first14:
        s = (p + int(ch)) % 10 or 10
        p = (2 * s) % 11
    return str((11 - p) % 10)


def is_valid_reg_no15(code: str) -> bool:
    """15 digits whose last digit is the MOD 11,10 check digit. Numbers issued before 2007 may
    lack a valid check digit: :func:`classify_code` therefore goes by form only."""
    return isinstance(code, str) and len(code) == 15 and code.isdigit() and reg_no15_check_digit(code[:14]) == code[14]


def make_reg_no15(first14: str) -> str:
    return first14 + reg_no15_check_digit(first14)


# --------------------------------------------------------------------------- text helpers

# U+FF01..U+FF5E are the full-width forms of U+0021..U+007E; U+3000 is the ideographic space.
_FULLWIDTH_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_WS_RE = re.compile(r"\s+")


def fullwidth_to_halfwidth(s: str) -> str:
    """Full-width ASCII forms (``ＡＢ１２（）``) and the ideographic space to their half-width
    equivalents; everything else (Chinese characters, 。、〔〕) is left alone."""
    return s.translate(_FULLWIDTH_TABLE)


def normalise_code(s: str) -> str:
    """A code as departments send it → canonical form: NFKC (full-width → half-width), all
    whitespace removed, upper case."""
    return _WS_RE.sub("", unicodedata.normalize("NFKC", s)).upper()


def mask_id_number(s: str | None) -> str | None:
    """All but the last 4 characters replaced by ``*`` (for logs and public feeds).
    A value of 4 characters or fewer is masked entirely (it would otherwise leak whole)."""
    if not s:
        return s
    if len(s) <= 4:
        return "*" * len(s)
    return "*" * (len(s) - 4) + s[-4:]


CodeKind = Literal["uscc", "id_number", "both", "org_code", "reg_no15", "unknown"]


def classify_code(s: str, *, today: date | None = None) -> CodeKind:
    """What a (normalised) code is by its form and check characters.

    ``both``: 17 digits + a digit or X with a real birth date that passes *both* check rules —
    such codes exist (about one 18-digit ID number in 31 is also a valid USCC); the API answers
    409 for them. ``reg_no15``: any 15 digits (old numbers need not carry a check digit).
    """
    if not isinstance(s, str):
        return "unknown"
    code = normalise_code(s)
    uscc = is_valid_uscc(code)
    pid = is_valid_id_number(code, today=today)
    if uscc and pid:
        return "both"
    if uscc:
        return "uscc"
    if pid:
        return "id_number"
    if is_valid_org_code(code):
        return "org_code"
    if len(code) == 15 and code.isdigit():
        return "reg_no15"
    return "unknown"
