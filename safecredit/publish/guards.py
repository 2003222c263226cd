"""Last-line guard: no full 18-digit resident ID number leaves in a public feed.

The publisher does not know what columns mean; it scans every text column (struct fields too) for
18-character runs that are valid ID numbers (MOD 11-2 check digit and a real birth date), anywhere
in the text, by `safecredit.codes`' rules. Messages show masked numbers only.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from safecredit.codes import ID_CHECK_MAP, ID_WEIGHTS, is_valid_id_number, is_valid_uscc, mask_id_number

from .errors import FullIdNumberError
from .render import ident, json_sql, sql_str

# RE2 (pyarrow) has no look-around: the boundaries are matched as characters.
_CANDIDATE_RE2 = r"(^|[^0-9A-Za-z])[1-9][0-9]{16}[0-9Xx]([^0-9A-Za-z]|$)"
_RUN = "'[1-9][0-9]{16}[0-9Xx]'"  # any 18-character run an ID number could be (SQL literal)
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{16}[0-9Xx])(?![0-9A-Za-z])")


def is_full_id_number(s: str) -> bool:
    """One owner of the ID-number rules: `safecredit.codes` (MOD 11-2 and a real birth date)."""
    return is_valid_id_number(s)


def mask(s: str) -> str:
    return mask_id_number(s) or ""


def _text_columns(table: pa.Table) -> list[tuple[str, pa.ChunkedArray]]:
    out = []
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        if pa.types.is_struct(t):
            sub = pa.Table.from_arrays(col.combine_chunks().flatten(), [f"{name}.{f.name}" for f in t])
            out.extend(_text_columns(sub))
        elif pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            out.append((name, col.cast(t.value_type)))
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            out.append((name, col))
    return out


def find_full_id_numbers(table: pa.Table) -> list[tuple[str, int, str]]:
    """[(column, how many values hold a full ID number, masked example)] for offending columns."""
    found = []
    for name, col in _text_columns(table):
        if pa.types.is_string_view(col.type):
            col = col.cast(pa.string())
        hits = pc.match_substring_regex(col, _CANDIDATE_RE2)
        if not pc.any(hits).as_py():
            continue
        count, example = 0, None
        for value in pc.filter(col, hits).to_pylist():
            numbers = [m.upper() for m in _CANDIDATE.findall(value) if is_full_id_number(m.upper())]
            if numbers:
                count += 1
                example = example or mask(numbers[0])
        if count:
            found.append((name, count, example))
    return found


def candidate_sql(text: str) -> str:
    """SQL condition on a text expression: it may hold a full ID number (an 18-character run with a
    right check character and a plausible birth date). A superset of what `find_in_records` reports,
    cheap enough to scan every row of a feed in DuckDB; only the rows it lets through reach Python."""
    checksum = " + ".join(f"CAST(substr(c, {i + 1}, 1) AS INTEGER) * {w}" for i, w in enumerate(ID_WEIGHTS))
    valid = (
        f"substr('{ID_CHECK_MAP}', ({checksum}) % 11 + 1, 1) = upper(substr(c, 18, 1)) AND "
        "try_strptime(substr(c, 7, 8), '%Y%m%d') BETWEEN TIMESTAMP '1880-01-01' AND current_date"
    )
    return (
        f"(regexp_matches({text}, {_RUN}) AND "
        f"len(list_filter(regexp_extract_all({text}, {_RUN}), lambda c: {valid})) > 0)"
    )


# Kinds whose JSON form is never a string with 18 digits in a row: numbers, booleans, ISO dates and
# times, UUIDs (hex runs of 12 at most). Decimals of up to 15 digits are JSON numbers (`render`).
_NO_RUN_KINDS = frozenset(
    {
        "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
        "ubigint", "uhugeint", "float", "double", "date", "time", "timestamp", "timestamp_s", "timestamp_ms",
        "timestamp_ns", "timestamp with time zone", "time with time zone", "interval", "uuid", "null",
    }
)  # fmt: skip


def text_leaves(expr: str, t: Any, depth: int = 0) -> list[str]:
    """SQL for the texts inside a value of DuckDB type `t` that an ID number could hide in: text
    itself; a struct's fields, a list's elements and a map's keys and values, recursively (a list's
    joined by spaces); big decimals and bytes as full.jsonl renders them. Numbers, dates, booleans
    and UUIDs never hold a run of 18 digits and are left out: rendering whole nested columns to JSON
    to scan them cost most of the gate at city scale. Shared by the gate's check on rule tables and
    the publisher's last-line guard, so both read the same texts."""
    kind = t.id
    if kind in _NO_RUN_KINDS or (kind == "decimal" and dict(t.children)["precision"] <= 15):
        return []
    if kind in ("varchar", "json"):
        return [expr]
    if kind == "struct":
        return [
            leaf
            for name, child in t.children
            for leaf in text_leaves(f"struct_extract({expr}, {sql_str(name)})", child, depth)
        ]
    if kind in ("list", "array"):
        var = f"g{depth}"
        inner = text_leaves(var, t.child, depth + 1)
        if not inner:
            return []
        return [f"array_to_string(list_transform({expr}, lambda {var}: {join_texts(inner)}), ' ')"]
    if kind == "map":
        key, value = (child for _, child in t.children)
        return text_leaves(f"map_keys({expr})", duckdb.list_type(key), depth) + text_leaves(
            f"map_values({expr})", duckdb.list_type(value), depth
        )
    if kind in ("blob", "decimal"):
        return [json_sql(expr, t)]  # the text full.jsonl holds (bytes as base64, big decimals as strings)
    return [f"CAST({expr} AS VARCHAR)"]  # enum and whatever else: its text


def join_texts(texts: Sequence[str]) -> str:
    """One text of several, space-separated so that no run of digits spans two of them."""
    return texts[0] if len(texts) == 1 else f"concat_ws(' ', {', '.join(texts)})"


def row_text_sql(columns: Sequence[tuple[str, Any]]) -> str | None:
    """SQL for the text of a row an ID number could hide in (`text_leaves` of each column). A row of
    full.jsonl holds a run only where this text does: scanning it, not the whole line, skips keys,
    numbers and dates. None when no column can hold one."""
    texts = [leaf for name, t in columns for leaf in text_leaves(ident(name), t)]
    return join_texts(texts) if texts else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def find_in_records(
    records: Iterable[dict[str, Any]], unit_codes: Sequence[str] = (), subject_codes: Sequence[str] = ()
) -> list[tuple[str, int, str]]:
    """`find_full_id_numbers` for JSON records (the few rows `candidate_sql` let through): every
    text in a column counts, nested lists and objects included — but a valid USCC in a column of
    units' codes (`unit_codes`; `subject_codes` where the row's subject_type is 'unit') is the
    unit's code, even when it also passes an ID number's checks."""
    counts: dict[str, list] = {}
    for record in records:
        unit = record.get("subject_type") == "unit"
        for column, value in record.items():
            if (column in unit_codes or (unit and column in subject_codes)) and _is_uscc(value):
                continue
            numbers = [
                m.upper() for s in _strings(value) for m in _CANDIDATE.findall(s) if is_full_id_number(m.upper())
            ]
            if numbers:
                entry = counts.setdefault(column, [0, mask(numbers[0])])
                entry[0] += 1
    return [(c, n, ex) for c, (n, ex) in counts.items()]


def _is_uscc(value: Any) -> bool:
    return isinstance(value, str) and is_valid_uscc(value.strip().upper())


def assert_no_full_id_numbers(table: pa.Table, feed: str = "") -> None:
    """Raise FullIdNumberError if any text column holds a full 18-digit ID number."""
    found = find_full_id_numbers(table)
    if found:
        raise FullIdNumberError(id_number_message(feed, found), id_number_message_zh(feed, found))


def id_number_message(feed: str, found: list[tuple[str, int, str]]) -> str:
    cols = "; ".join(f"column {c}: {n} value(s), e.g. {ex}" for c, n, ex in found)
    return f"feed {feed or '?'} contains full ID numbers, which public feeds must mask ({cols})"


def id_number_message_zh(feed: str, found: list[tuple[str, int, str]]) -> str:
    cols = "；".join(f"列 {c}：{n} 个值，如 {ex}" for c, n, ex in found)
    return f"数据集 {feed or '?'} 含有未脱敏的完整身份证号（{cols}）"
