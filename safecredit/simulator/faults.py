"""Fault catalogue of the department simulator and the pure transforms behind the data faults.

Every decision is deterministic: a record (or a request) is affected when a stable hash of
(seed, fault name, key) falls below the fault's rate; sub-choices (which variant, how many days)
come from further hashes of the same kind. Nothing here reads a clock or a random state.

Fault syntax (``--faults`` and :func:`parse_faults`): a comma-separated list of
``name[:qualifier]...[:rate]``. A qualifier is a department id (``down:zjj``), a dataset name
(``renamed_field:accidents``) or a mode the fault knows (``down:refuse``, ``cut_short:rows``);
the rate is a number in [0, 1]. ``realistic`` expands to :data:`REALISTIC_FAULTS`; ``none`` and
``clean`` add nothing. Keys of the parsed dict are the name plus its qualifiers (``down:zjj``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Iterable, Mapping

from safecredit.codes import USCC_ALPHABET, make_reg_no15


@dataclass(frozen=True)
class Fault:
    name: str
    category: str
    description: str
    default_rate: float
    modes: tuple[str, ...] = ()
    default_datasets: tuple[str, ...] = ()  # empty: every dataset it applies to


_D = 0.02
FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        # data: per record, recorded in truth
        Fault(
            "fullwidth",
            "data",
            "full-width characters (ＡＢ１２, （）), stray spaces or lower case in a code, name or number",
            _D,
        ),
        Fault(
            "name_variants",
            "data",
            "有限公司 <-> 有限责任公司, or a former name (QY_CYM) instead of the current name",
            _D,
        ),
        Fault("bad_uscc", "data", "USCC with a wrong check character or an excluded letter (I O Z S V)", _D),
        Fault(
            "old_codes",
            "data",
            "USCC emptied; old 15-digit reg. no (CF_XDR_GSZC) and/or 9-char org code (CF_XDR_ZZJG) instead",
            _D,
            default_datasets=("penalties",),
        ),
        Fault("date_formats", "data", "decision date as YYYY/MM/DD, YYYYMMDD or YYYY年M月D日", _D),
        Fault("impossible_dates", "data", "decision date that does not exist (02-30, month 13, day 32)", _D),
        Fault("future_dates", "data", "decision date after the end of the data (after now)", _D),
        Fault("fine_in_yuan", "data", "CF_NR_FK in 元 instead of 万元 (x10000)", _D, default_datasets=("penalties",)),
        Fault("bad_amounts", "data", "negative or absurd amount (99999999) in a money or count field", _D),
        Fault(
            "grade_mismatch",
            "data",
            "SG_DJ lower than the casualties imply (deaths raised to 3-9, or the grade lowered)",
            _D,
            default_datasets=("accidents",),
        ),
        Fault("embedded_newlines", "data", "a newline inside free text (CF_SY / CF_NR / SG_MC / XD_SM)", _D),
        # schema: the whole dataset (default target: penalties)
        Fault(
            "renamed_field",
            "schema",
            "a required field renamed after an upgrade (penalties: CF_WSH -> CF_WSBH)",
            1.0,
            default_datasets=("penalties",),
        ),
        Fault(
            "missing_field",
            "schema",
            "a required field dropped (penalties: CF_JDRQ)",
            1.0,
            default_datasets=("penalties",),
        ),
        Fault("unknown_field", "schema", "an unknown new field AQ_XZ_NEW", 1.0, default_datasets=("penalties",)),
        # history: extra versions, recorded in truth
        Fault(
            "duplicates",
            "history",
            "yjj penalties also reported by another department (own record id, same CF_CFJG + CF_WSH)",
            _D,
            default_datasets=("penalties",),
        ),
        Fault(
            "corrections", "history", "a later upsert of a record with one field corrected, days to weeks later", 0.03
        ),
        Fault(
            "revocations",
            "history",
            "a later op=revoke version carrying only the envelope",
            0.01,
            default_datasets=("penalties",),
        ),
        Fault("late_records", "history", "updated_at moved 2-8 months after the business date (first sent late)", _D),
        # encoding / serialisation
        Fault("gbk", "encoding", "CSV encoded in GBK (Content-Type charset=GBK)", 1.0),
        Fault("utf8_bom", "encoding", "CSV in UTF-8 with a byte-order mark", 1.0),
        Fault("crlf", "encoding", "CSV with CRLF line ends (default LF)", 1.0),
        Fault("numeric_json", "encoding", "JSON sends numeric fields as numbers instead of strings", 1.0),
        # http: per request key (path + query), fails the first attempt(s) only
        Fault("http_429", "http", "429 Too Many Requests with Retry-After: 1", 0.1),
        Fault("http_5xx", "http", "500/502/503/504 once", 0.1),
        Fault("stall", "http", "hold the response stall_seconds before answering (client timeout)", 0.05),
        Fault(
            "cut_short",
            "http",
            "full Content-Length declared, part of the body sent, connection closed "
            "(mode rows: CSV cut at a row boundary, only X-Record-Count tells)",
            0.05,
            modes=("rows",),
        ),
        Fault("expired_cursor", "http", "410 on the first use of a cursor", 0.1),
        Fault("short_pages", "http", "fewer items than limit on a page", 0.3),
        Fault("page_repeat", "http", "a page repeats the last items of the previous page (at-least-once)", 0.2),
        Fault(
            "down",
            "http",
            "the department answers 503 to everything (mode refuse: not listening at all)",
            1.0,
            modes=("refuse",),
        ),
    ]
}

DATA_FAULTS = [n for n, f in FAULTS.items() if f.category == "data"]
HTTP_ONCE_FAULTS = ["http_429", "http_5xx", "stall", "cut_short", "expired_cursor"]

REALISTIC_FAULTS: dict[str, float] = {
    "fullwidth": 0.02,
    "name_variants": 0.02,
    "bad_uscc": 0.005,
    "old_codes": 0.01,
    "date_formats": 0.02,
    "fine_in_yuan": 0.005,
    "bad_amounts": 0.002,
    "embedded_newlines": 0.01,
    "corrections": 0.02,
    "revocations": 0.01,
    "late_records": 0.01,
    "duplicates": 0.01,
    "utf8_bom": 1.0,
    "page_repeat": 0.1,
    "short_pages": 0.2,
    "http_429": 0.03,
    "http_5xx": 0.02,
}


def parse_faults(spec: str | Iterable[str] | Mapping[str, float] | None) -> dict[str, float]:
    """``"a,b:0.2,down:zjj:refuse"`` -> ``{"a": default, "b": 0.2, "down:zjj:refuse": 1.0}``."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(k, v) for k, v in spec.items()]
    else:
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        items = [(p.strip(), None) for p in parts if p and p.strip()]
    out: dict[str, float] = {}
    for text, rate in items:
        if text in ("none", "clean"):
            continue
        if text == "realistic":
            out.update(REALISTIC_FAULTS)
            continue
        name, *quals = [q.strip() for q in text.split(":")]
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        words = []
        for q in quals:
            try:
                rate = float(q)
            except ValueError:
                if not re.fullmatch(r"[A-Za-z0-9_]+", q):
                    raise ValueError(f"bad qualifier {q!r} in fault {text!r}") from None
                words.append(q)
        rate = FAULTS[name].default_rate if rate is None else float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate of {text!r} must be within [0, 1]")
        out[":".join([name, *words])] = rate
    return out


@dataclass
class _Active:
    name: str
    rate: float
    departments: frozenset[str] | None
    datasets: frozenset[str] | None
    mode: str | None


@dataclass
class FaultConfig:
    """Parsed faults resolved against the departments and datasets of one simulator."""

    entries: list[_Active] = field(default_factory=list)

    @classmethod
    def resolve(cls, faults, department_ids: Iterable[str], dataset_names: Iterable[str]) -> FaultConfig:
        parsed = parse_faults(faults)
        depts, datasets = set(department_ids), set(dataset_names)
        entries = []
        for key, rate in parsed.items():
            name, *words = key.split(":")
            f = FAULTS[name]
            ds, dp, mode = set(), set(), None
            for w in words:
                if w in f.modes:
                    mode = w
                elif w in depts:
                    dp.add(w)
                elif w in datasets:
                    ds.add(w)
                else:
                    raise ValueError(f"fault {key!r}: {w!r} is no department, dataset or mode of {name}")
            if not ds and f.default_datasets:
                ds = set(f.default_datasets)
            entries.append(_Active(name, rate, frozenset(dp) or None, frozenset(ds) or None, mode))
        return cls(entries)

    def _matching(self, name, dept, dataset):
        for e in self.entries:
            if e.name != name or (e.departments is not None and dept not in e.departments):
                continue
            if e.datasets is not None and dataset not in e.datasets:
                continue
            yield e

    def rate(self, name: str, dept: str, dataset: str | None = None) -> float:
        return max((e.rate for e in self._matching(name, dept, dataset)), default=0.0)

    def on(self, name: str, dept: str, dataset: str | None = None) -> bool:
        return self.rate(name, dept, dataset) > 0

    def mode(self, name: str, dept: str) -> str | None:
        """The mode of a department-wide fault that is on for ``dept`` ("" when on without mode)."""
        for e in self.entries:
            if e.name == name and e.rate > 0 and (e.departments is None or dept in e.departments):
                return e.mode or ""
        return None

    def any(self, names: Iterable[str]) -> bool:
        names = set(names)
        return any(e.name in names and e.rate > 0 for e in self.entries)


# ---------------------------------------------------------------- hashing


def hv(*parts) -> int:
    """A stable 32-bit integer of the parts (md5 of ``a|b|c``)."""
    return int(hashlib.md5("|".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:8], 16)


def unit(seed, fault: str, key) -> float:
    """Stable uniform [0, 1) of (seed, fault, key); :func:`sql_unit` computes the same in DuckDB."""
    return hv(seed, fault, key) / 4294967296.0


def sql_unit(seed, fault: str, key_sql: str) -> str:
    prefix = f"{int(seed)}|{fault}|"
    return f"(('0x' || substr(md5('{prefix}' || {key_sql}), 1, 8))::UBIGINT::DOUBLE / 4294967296.0)"


# ---------------------------------------------------------------- field roles per dataset

NAME_FIELD = {"penalties": "CF_XDR_MC", "accidents": "SG_DWMC", "enterprises": "QY_MC", "intermediary_ratings": "JG_MC"}
DATE_FIELD = {
    "listing_decisions": "MD_JDRQ",
    "penalties": "CF_JDRQ",
    "accidents": "SG_FSSJ",
    "enterprises": "QY_CLRQ",
    "intermediary_ratings": "PJ_RQ",
    "credit_actions": "XD_RQ",
}
AMOUNT_FIELD = {
    "penalties": "CF_NR_FK",
    "accidents": "SG_JJSS",
    "enterprises": "QY_CYRS",
    "intermediary_ratings": "PJ_DF",
}
TEXT_FIELDS = {"penalties": ("CF_SY", "CF_NR"), "accidents": ("SG_MC",), "credit_actions": ("XD_SM",)}
NUMERIC_FIELDS = {"CF_NR_FK", "CF_NR_WFFF", "SG_SWRS", "SG_ZSRS", "SG_JJSS", "QY_CYRS", "PJ_DF"}
RENAMED = {
    "listing_decisions": ("MD_WSH", "MD_JDSWH"),
    "penalties": ("CF_WSH", "CF_WSBH"),
    "accidents": ("SG_BH", "SG_SGBH"),
    "enterprises": ("QY_DM", "QY_TYSHXYDM"),
    "intermediary_ratings": ("JG_DM", "JG_TYSHXYDM"),
    "credit_actions": ("XD_WSH", "XD_CFWSH"),
}
DROPPED = {
    "listing_decisions": "MD_JDRQ",
    "penalties": "CF_JDRQ",
    "accidents": "SG_FSSJ",
    "enterprises": "QY_MC",
    "intermediary_ratings": "JG_MC",
    "credit_actions": "XD_RQ",
}
UNKNOWN_FIELD = "AQ_XZ_NEW"
# which data faults can do something on which dataset
DATA_FAULT_DATASETS = {
    "fullwidth": None,
    "name_variants": set(NAME_FIELD),
    "bad_uscc": None,
    "old_codes": {"penalties"},
    "date_formats": set(DATE_FIELD),
    "impossible_dates": set(DATE_FIELD),
    "future_dates": set(DATE_FIELD),
    "fine_in_yuan": {"penalties"},
    "bad_amounts": set(AMOUNT_FIELD),
    "grade_mismatch": {"accidents"},
    "embedded_newlines": set(TEXT_FIELDS),
}
# field corrected by the `corrections` history fault
CORRECTED_FIELD = {
    "listing_decisions": "MD_DXMC",
    "penalties": "CF_NR_FK",
    "accidents": "SG_JJSS",
    "enterprises": "QY_CYRS",
    "intermediary_ratings": "JG_ZZYXQ",
    "credit_actions": "XD_SM",
}

_GRADES = ["一般", "较大", "重大", "特别重大"]
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(.*)$", re.S)


def uscc_field(dataset: str, row: Mapping[str, str]) -> str | None:
    if dataset == "penalties":
        return "CF_XDR_SHXYM"
    if dataset == "accidents":
        return "SG_DWDM"
    if dataset == "enterprises":
        return "QY_DM"
    if dataset == "intermediary_ratings":
        return "JG_DM"
    if dataset == "credit_actions" and row.get("XD_DXLX") == "单位":
        return "XD_DXDM"
    return None


def to_fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in s)


def format_decimal(d: Decimal) -> str:
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def reg_no_15(uscc: str) -> str:
    """A made-up but well-formed old 15-digit registration number, stable per USCC."""
    region = "".join(c for c in uscc[2:8] if c.isdigit()).ljust(6, "0")
    return make_reg_no15(region + str(hv("regno", uscc) % 10**8).zfill(8))


@dataclass
class Context:
    """What a data transform may look at besides the record."""

    seed: int
    end: date  # last day of the data: future dates are after it
    registry: Mapping[str, tuple[str, str, str]]  # USCC -> (first former name, reg no, org code)


# Each transform takes (ctx, dataset, row, salt) and returns {field: new value} (empty: nothing to do).


def _fullwidth(ctx, ds, row, h):
    cands = [f for f in (uscc_field(ds, row), AMOUNT_FIELD.get(ds), NAME_FIELD.get(ds)) if f and row.get(f)]
    if not cands:
        return {}
    f = cands[h(1) % len(cands)]
    v = row[f]
    variant = h(2) % 3
    if variant == 1 and f != NAME_FIELD.get(ds) and any(c.isalpha() and c.isascii() for c in v):
        new = v.lower()
    elif variant == 2 or not any(c.isascii() and not c.isspace() for c in v):
        cut = 1 + h(3) % max(1, len(v) - 1)
        new = " " + v[:cut] + " " + v[cut:] + " " if f == uscc_field(ds, row) else " " + v + " "
    else:
        new = to_fullwidth(v)
    return {f: new} if new != v else {}


def _name_variants(ctx, ds, row, h):
    f = NAME_FIELD.get(ds)
    if not f or not row.get(f):
        return {}
    v = row[f]
    former = None
    code_field = uscc_field(ds, row)
    if ds != "enterprises" and code_field and row.get(code_field):
        former = (ctx.registry.get(row[code_field]) or ("", "", ""))[0] or None
    swapped = (
        v.replace("有限责任公司", "有限公司")
        if "有限责任公司" in v
        else (v.replace("有限公司", "有限责任公司") if "有限公司" in v else None)
    )
    choices = [c for c in ((former, swapped) if h(1) % 2 == 0 else (swapped, former)) if c and c != v]
    return {f: choices[0]} if choices else {}


def _bad_uscc(ctx, ds, row, h):
    f = uscc_field(ds, row)
    v = row.get(f) if f else None
    if not v or len(v) != 18:
        return {}
    if h(1) % 2 == 0 and v[17] in USCC_ALPHABET:
        i = USCC_ALPHABET.index(v[17])
        return {f: v[:17] + USCC_ALPHABET[(i + 1 + h(2) % 30) % 31]}
    pos = 2 + h(3) % 15
    return {f: v[:pos] + "IOZSV"[h(4) % 5] + v[pos + 1 :]}


def _old_codes(ctx, ds, row, h):
    v = row.get("CF_XDR_SHXYM")
    if ds != "penalties" or not v or len(v) != 18:
        return {}
    _, zch, zzjg = ctx.registry.get(v) or ("", "", "")
    variant = h(1) % 3
    out = {"CF_XDR_SHXYM": ""}
    if variant in (0, 2) and "CF_XDR_GSZC" in row:
        out["CF_XDR_GSZC"] = zch or reg_no_15(v)
    if variant in (1, 2) and "CF_XDR_ZZJG" in row:
        out["CF_XDR_ZZJG"] = zzjg or v[8:17]
    return {k: n for k, n in out.items() if n != row.get(k)} if len(out) > 1 else {}


def _date_parts(ds, row):
    f = DATE_FIELD.get(ds)
    m = _DATE_RE.match(row.get(f) or "") if f else None
    return (f, int(m[1]), int(m[2]), int(m[3]), m[4]) if m else None


def _date_formats(ctx, ds, row, h):
    p = _date_parts(ds, row)
    if not p:
        return {}
    f, y, mo, d, rest = p
    new = [f"{y}/{mo:02d}/{d:02d}", f"{y}{mo:02d}{d:02d}", f"{y}年{mo}月{d}日"][h(1) % 3]
    return {f: new + rest}


def _impossible_dates(ctx, ds, row, h):
    p = _date_parts(ds, row)
    if not p:
        return {}
    f, y, mo, d, rest = p
    new = [f"{y}-02-30", f"{y}-13-{d:02d}", f"{y}-{mo:02d}-32", f"{y}-04-31"][h(1) % 4]
    return {f: new + rest}


def _future_dates(ctx, ds, row, h):
    p = _date_parts(ds, row)
    if not p:
        return {}
    f, *_, rest = p
    return {f: (ctx.end + timedelta(days=1 + h(1) % 365)).isoformat() + rest}


def _decimal(v):
    try:
        d = Decimal(v)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return d if d.is_finite() else None


def _fine_in_yuan(ctx, ds, row, h):
    d = _decimal(row.get("CF_NR_FK"))
    if ds != "penalties" or d is None or d <= 0:
        return {}
    return {"CF_NR_FK": format_decimal(d * 10000)}


def _bad_amounts(ctx, ds, row, h):
    f = AMOUNT_FIELD.get(ds)
    d = _decimal(row.get(f)) if f else None
    if d is None:
        return {}
    if h(1) % 2 == 0:
        return {f: "-" + format_decimal(d if d > 0 else Decimal(1 + h(2) % 50))}
    return {f: "99999999" if d != Decimal("99999999") else "-1"}


def _grade_mismatch(ctx, ds, row, h):
    grade = row.get("SG_DJ")
    if ds != "accidents" or grade not in _GRADES:
        return {}
    if grade == "一般":
        return {"SG_SWRS": str(3 + h(1) % 7)} if "SG_SWRS" in row else {}
    return {"SG_DJ": _GRADES[_GRADES.index(grade) - 1]}


def _embedded_newlines(ctx, ds, row, h):
    cands = [f for f in TEXT_FIELDS.get(ds, ()) if row.get(f)]
    if not cands:
        return {}
    f = cands[h(1) % len(cands)]
    v = row[f]
    marks = [i + 1 for i, c in enumerate(v[:-1]) if c in "，。；,;"]
    cut = marks[h(2) % len(marks)] if marks else max(1, len(v) // 2)
    return {f: v[:cut] + "\n" + v[cut:]}


TRANSFORMS = {
    "fullwidth": _fullwidth,
    "name_variants": _name_variants,
    "bad_uscc": _bad_uscc,
    "old_codes": _old_codes,
    "date_formats": _date_formats,
    "impossible_dates": _impossible_dates,
    "future_dates": _future_dates,
    "fine_in_yuan": _fine_in_yuan,
    "bad_amounts": _bad_amounts,
    "grade_mismatch": _grade_mismatch,
    "embedded_newlines": _embedded_newlines,
}
assert list(TRANSFORMS) == DATA_FAULTS


def apply_data_faults(ctx: Context, dataset: str, row: dict, faults: list[str]):
    """Apply ``faults`` (already selected for this record) in catalogue order, each field touched
    at most once. Mutates ``row``; returns [(fault, field, original, served)]."""
    changes = []
    touched: set[str] = set()
    rid = row["record_id"]
    for name in faults:

        def h(salt, _name=name):
            return hv(ctx.seed, _name, salt, rid)

        new = TRANSFORMS[name](ctx, dataset, row, h)
        if not new or touched.intersection(new):
            continue
        for f, value in new.items():
            changes.append((name, f, row.get(f) or "", value))
            row[f] = value
            touched.add(f)
    return changes


def corrected_value(dataset: str, row: Mapping[str, str], salt: int) -> tuple[str, str] | None:
    """(field, new value) of a correction of ``row``, or None when nothing sensible to correct."""
    f = CORRECTED_FIELD.get(dataset)
    v = row.get(f) if f else None
    if f is None or v is None:
        return None
    if dataset == "penalties":
        d = _decimal(v)
        if d is not None and d > 0:
            return f, format_decimal((d * Decimal("0.5")).quantize(Decimal("0.01")))
        return ("AQ_ZXZT", "已执行") if row.get("AQ_ZXZT") not in (None, "已执行") else None
    if dataset == "accidents":
        d = _decimal(v)
        return (f, format_decimal((d * Decimal("0.9")).quantize(Decimal("0.01")))) if d and d > 0 else None
    if dataset == "enterprises":
        d = _decimal(v)
        return (f, str(int(d) + 1 + salt % 20)) if d is not None else None
    if dataset == "intermediary_ratings":
        m = _DATE_RE.match(v)
        if not m:
            return None
        day = "28" if (m[2], m[3]) == ("02", "29") else m[3]
        return f, f"{int(m[1]) + 1}-{m[2]}-{day}{m[4]}"
    return f, (v + "（更正）")
