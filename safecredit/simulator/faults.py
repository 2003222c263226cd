"""Fault catalogue of the department simulator: the faults, their rates, and how a record or a
request is selected (what a data fault then does to a record is in data_faults.py).

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
from typing import Iterable, Mapping


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
