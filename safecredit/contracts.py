"""Data contracts (contracts/datasets/*.yaml) turned into DuckDB SQL.

A contract lists each field code with its canonical name, type, required flag and enumeration,
plus cross-field `rules`. From it we generate one typed SELECT (normalisation: full-width to
half-width, trimming, upper-cased codes, the date formats departments use) and one violations
query: a row per (record version, rule) with a bilingual message. Severity `quarantine` holds the
version out of the staged tables; `flag` keeps it and marks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from safecredit.config import CONTRACTS_DIR

ENVELOPE = ("record_id", "updated_at", "op")

_TYPED = {
    "text": "sc_text({c})",
    "enum": "sc_text({c})",
    "code": "sc_code({c})",
    "uscc": "sc_code({c})",
    "id_number": "sc_code({c})",
    "date": "sc_date({c})",
    "datetime": "sc_datetime({c})",
    "decimal": "TRY_CAST(sc_code({c}) AS DECIMAL(18,4))",
    "integer": "TRY_CAST(sc_code({c}) AS BIGINT)",
    # split on ';' with the blanks around it; the lambda stays trivial (a macro inside a lambda is
    # re-expanded per element and was 100× slower)
    "list": "list_filter(string_split_regex(trim(regexp_replace(sc_half({c}), '\\s+', ' ', 'g')), '\\s*;\\s*'), "
    "lambda x: x <> '')",
}


@dataclass(frozen=True)
class Field:
    code: str
    name: str
    label: str
    type: str
    required: bool = False
    values: tuple[str, ...] = ()
    personal: bool = False


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    field: str
    check: str  # SQL predicate over typed columns that must hold
    zh: str
    en: str
    when: str = "TRUE"  # SQL predicate: the rule applies only to such rows


@dataclass(frozen=True)
class Contract:
    dataset: str
    title: str
    version: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = field(default=())

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.code for f in self.fields if f.required]

    def by_code(self, code: str) -> Field:
        return next(f for f in self.fields if f.code == code)


@cache
def load_contract(dataset: str, root: Path = CONTRACTS_DIR) -> Contract:
    import yaml

    doc = yaml.safe_load((root / "datasets" / f"{dataset}.yaml").read_text(encoding="utf-8"))
    fields = tuple(
        Field(
            code=f["code"],
            name=f["name"],
            label=f["label"],
            type=f["type"],
            required=bool(f.get("required")),
            values=tuple(f.get("values", ())),
            personal=bool(f.get("personal")),
        )
        for f in doc["fields"]
    )
    rules = tuple(
        Rule(
            id=r["id"],
            severity=r["severity"],
            field=r["field"],
            check=r["check"],
            zh=r["zh"],
            en=r["en"],
            when=r.get("when", "TRUE"),
        )
        for r in doc.get("rules", [])
    )
    return Contract(doc["dataset"], doc["title"], str(doc["version"]), fields, rules)


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def typed_select(contract: Contract, source: str) -> str:
    """SELECT every version with typed, normalised columns (raw strings kept as `<code>__raw`)."""
    cols = [
        "department",
        "fetch_id",
        "seq",
        "landed_at",
        "sc_text(record_id) AS record_id",
        "TRY_CAST(sc_text(updated_at) AS TIMESTAMPTZ) AS updated_at",
        "lower(sc_text(op)) AS op",
        "updated_at AS updated_at__raw",
        "extra_fields",
    ]
    for f in contract.fields:
        cols.append(f"{_TYPED[f.type].format(c=f.code)} AS {f.name}")
        cols.append(f"{f.code} AS {f.code}__raw")
    return f"SELECT {', '.join(cols)} FROM {source}"


def violation_checks(contract: Contract) -> list[tuple[str, str, str, str, str, str, str]]:
    """(rule_id, severity, field code, failing predicate, raw value expr, zh, en) for every rule.

    Envelope checks apply to every row; field checks only to `upsert` rows: a `revoke` may carry
    only the envelope (department-feeds.md §2).
    """
    ds = contract.dataset.upper()
    out = [
        (
            "ENV-RECORD-ID",
            "quarantine",
            "record_id",
            "record_id IS NULL",
            "record_id",
            "缺少 record_id。",
            "record_id is missing.",
        ),
        (
            "ENV-UPDATED-AT",
            "quarantine",
            "updated_at",
            "updated_at IS NULL",
            "updated_at__raw",
            "updated_at 不是合法的 RFC3339 时间。",
            "updated_at is not a valid RFC3339 timestamp.",
        ),
        (
            "ENV-OP",
            "quarantine",
            "op",
            "op IS NULL OR op NOT IN ('upsert', 'revoke')",
            "op",
            "op 必须是 upsert 或 revoke。",
            "op must be upsert or revoke.",
        ),
    ]
    upsert = "op = 'upsert' AND "
    for f in contract.fields:
        raw = f"{f.code}__raw"
        if f.required:
            out.append(
                (
                    f"{ds}-REQ-{f.code}",
                    "quarantine",
                    f.code,
                    # text-like types: the typed column is sc_text/sc_code of the raw value already
                    upsert
                    + (
                        f"{f.name} IS NULL"
                        if f.type in {"text", "enum", "code", "uscc", "id_number"}
                        else f"sc_text({raw}) IS NULL"
                    ),
                    raw,
                    f"必填字段 {f.code}（{f.label}）为空。",
                    f"required field {f.code} ({f.label}) is empty.",
                )
            )
        if f.type in {"date", "datetime", "decimal", "integer"}:
            out.append(
                (
                    f"{ds}-TYPE-{f.code}",
                    "quarantine",
                    f.code,
                    upsert + f"sc_text({raw}) IS NOT NULL AND {f.name} IS NULL",
                    raw,
                    f"{f.code}（{f.label}）无法解析为{_TYPE_ZH[f.type]}。",
                    f"{f.code} ({f.label}) cannot be read as a {f.type}.",
                )
            )
        if f.type == "uscc":
            out.append(
                (
                    f"{ds}-USCC-{f.code}",
                    "quarantine",
                    f.code,
                    upsert + f"{f.name} IS NOT NULL AND NOT sc_uscc_ok({f.name})",
                    raw,
                    f"{f.code}（{f.label}）不是有效的统一社会信用代码（长度、字符或校验位错误）。",
                    f"{f.code} ({f.label}) is not a valid unified social credit code "
                    "(length, characters or check character).",
                )
            )
        if f.type == "enum" and f.values:
            allowed = ", ".join(_q(v) for v in f.values)
            out.append(
                (
                    f"{ds}-ENUM-{f.code}",
                    "quarantine",
                    f.code,
                    upsert + f"{f.name} IS NOT NULL AND {f.name} NOT IN ({allowed})",
                    raw,
                    f"{f.code}（{f.label}）的取值不在允许范围内：{'、'.join(f.values)}。",
                    f"{f.code} ({f.label}) is not one of the allowed values: {', '.join(f.values)}.",
                )
            )
    for r in contract.rules:
        field_ = contract.by_code(r.field) if r.field in contract.codes else None
        raw = f"{r.field}__raw" if field_ else "NULL"
        out.append(
            (r.id, r.severity, r.field, upsert + f"({r.when}) AND NOT coalesce(({r.check}), false)", raw, r.zh, r.en)
        )
    return out


_TYPE_ZH = {"date": "日期", "datetime": "日期时间", "decimal": "数值", "integer": "整数"}


def violations_select(contract: Contract, typed: str) -> str:
    personal = {f.code for f in contract.fields if f.personal}
    parts = []
    for rule_id, sev, code, pred, raw, zh, en in violation_checks(contract):
        value = f"sc_mask(CAST({raw} AS VARCHAR))" if code in personal else f"CAST({raw} AS VARCHAR)"
        parts.append(
            f"SELECT department, {_q(contract.dataset)} AS dataset, record_id, updated_at__raw AS updated_at, "
            f"fetch_id, seq, {_q(rule_id)} AS rule_id, {_q(sev)} AS severity, {_q(code)} AS field, "
            f"{value} AS value, {_q(zh)} AS message_zh, {_q(en)} AS message_en "
            f"FROM {typed} WHERE {pred}"
        )
    return "\nUNION ALL\n".join(parts)
