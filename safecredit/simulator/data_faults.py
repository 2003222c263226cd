"""The data faults' pure transforms: what a selected fault does to a served record (full-width
text, name variants, bad or old codes, odd dates and amounts, …), and a correction's new value.
Which records a fault selects, and at what rate, is faults.py's (the catalogue and its hashes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Mapping

from safecredit.codes import USCC_ALPHABET, make_reg_no15

from .faults import DATA_FAULTS, hv

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
