"""SQL that renders a feed row as its full.jsonl line and its full.csv line, inside DuckDB.

The text is the same, byte for byte, as the JSON value rules of `formats.json_value` followed by
`formats.json_line` and the CSV writer (Python's csv module, QUOTE_MINIMAL, CRLF) produced when
rows went through Python one by one: dates and times as ISO strings, decimals as numbers (as
exact strings beyond 15 significant digits), non-finite floats as null, bytes as base64, lists
and structs as JSON arrays and objects; a CSV cell is the JSON value, a text cell unquoted and
guarded against Excel formulas. The few places where bytes differ are listed in docs/FEEDS.md.

Every function takes a SQL expression and its DuckDB type and returns a SQL expression (VARCHAR,
NULL for a SQL NULL); nothing here touches rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

# DuckDB's to_json escapes strings like json.dumps(ensure_ascii=False) but for the hex case of
# \u000B, \u000E, \u000F, \u001A-\u001F. A line showing one (rare: control characters in text) is
# re-serialised by json.dumps itself, called from SQL; a false alarm (a literal "\\u001A" in text)
# only costs that line the slow path.
_UPPER_ESCAPE_RE = r"'\\u00(0[BEF]|1[A-F])'"
_PY_JSON_LINE = "safecredit_json_line"
# Excel reads a cell starting with one of these as a formula: such text gets an apostrophe first.
# Tested with starts_with(): `ascii(x) IN (…six codes…)` is planned as a hash join against the list,
# which costs a probe per cell and hands rows over out of order in a parallel scan.
_FORMULA_STARTS = ("'='", "'+'", "'-'", "'@'", "chr(9)", "chr(13)")
# what makes a CSV field quoted; tested with contains() (a byte search: 3x cheaper than a regex)
_CSV_SPECIALS = ("','", "'\"'", "chr(13)", "chr(10)")

_INTEGERS = frozenset(
    {"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"}
)
_TIMESTAMPS = frozenset({"timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"})
_NESTED = frozenset({"list", "array", "struct", "map"})
# Kinds whose text never needs JSON escaping or CSV quoting (ISO dates and times, base64).
_PLAIN_TEXT = frozenset({"date", "time", "blob", "timestamp with time zone", *_TIMESTAMPS})


# Leaves whose text DuckDB's own to_json writes byte for byte as `json_sql` does (strings by the same
# to_json; decimals of up to 15 digits and 4 places as the same shortest double text, checked over
# millions of values; not doubles: 1e16 and 1e-7 come out otherwise, nor timestamps: a space for T).
_NATIVE_LEAVES = frozenset(
    {
        "varchar",
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "date",
    }
)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _native_json(t: Any) -> bool:
    """True where to_json(value) is the JSON text `json_sql` builds: lists and structs (plain keys)
    of those leaves. One C++ call instead of a lambda per item and a concat per struct."""
    kind = t.id
    if kind in ("list", "array"):
        return _native_json(dict(t.children)["child"])
    if kind == "struct":
        return all(_PLAIN_KEY.fullmatch(name) and _native_json(c) for name, c in t.children)
    if kind == "decimal":
        sizes = dict(t.children)
        return sizes["precision"] <= 15 and sizes["scale"] <= 4
    return kind in _NATIVE_LEAVES


def sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def register_functions(con: Any) -> None:
    """The Python function the rendering SQL needs on a DuckDB connection (once per connection)."""
    con.create_function(_PY_JSON_LINE, _py_json_line, ["VARCHAR"], "VARCHAR", side_effects=False)


def _py_json_line(text: str) -> str:
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _concat(parts: Sequence[str]) -> str:
    """One concat() call: a chain of || copies the growing string at every step (a line has dozens).
    concat() reads NULL as '': its parts must not be NULL (short values keep ||, which keeps NULL)."""
    return f"concat({', '.join(parts)})" if len(parts) > 1 else parts[0]


def _iso(ts: str, suffix: str = "", fmt: str = "%Y-%m-%dT%H:%M:%S") -> str:
    """datetime.isoformat() of a naive TIMESTAMP expression (microseconds only when non-zero)."""
    micros = f"CASE WHEN strftime({ts}, '%f') = '000000' THEN '' ELSE '.' || strftime({ts}, '%f') END"
    return f"strftime({ts}, '{fmt}') || {micros}" + (f" || {sql_str(suffix)}" if suffix else "")


def _decimal_fits(expr: str, precision: int) -> str:
    """True where the decimal has at most 15 significant digits (a double holds it exactly)."""
    if precision <= 15:
        return "true"
    return f"length(ltrim(replace(CAST(abs({expr}) AS VARCHAR), '.', ''), '0')) <= 15"


def _text(expr: str, t: Any) -> str | None:
    """The text of a value whose JSON form is a string (None: its JSON form is not a string)."""
    kind = t.id
    if kind in _TIMESTAMPS:
        return _iso(f"CAST({expr} AS TIMESTAMP)")
    if kind == "timestamp with time zone":  # rendered in UTC whatever the session's time zone
        return _iso(f"timezone('UTC', {expr})", "+00:00")
    if kind == "time":
        return _iso(f"(DATE '1970-01-01' + {expr})", fmt="%H:%M:%S")
    if kind == "blob":
        return f"to_base64({expr})"
    if kind in _INTEGERS or kind in _NESTED or kind in ("boolean", "float", "double", "decimal", "interval", "null"):
        return None
    return f"CAST({expr} AS VARCHAR)"  # varchar, json, date, uuid, enum, …: their text


def json_sql(expr: str, t: Any, depth: int = 0) -> str:
    """SQL for the JSON text of `expr` (DuckDB type `t`), NULL where the value is NULL."""
    kind = t.id
    text = _text(expr, t)
    if text is not None:
        return f"'\"' || {text} || '\"'" if kind in _PLAIN_TEXT else f"CAST(to_json({text}) AS VARCHAR)"
    if kind == "boolean":
        return f"CASE {expr} WHEN true THEN 'true' WHEN false THEN 'false' END"
    if kind in _INTEGERS:
        return f"CAST({expr} AS VARCHAR)"
    if kind in ("float", "double"):  # DuckDB's shortest round-trip text is Python's repr
        return f"CASE WHEN isfinite({expr}) THEN CAST(CAST({expr} AS DOUBLE) AS VARCHAR) END"
    if kind == "interval":  # a timedelta: its total seconds
        return f"CAST(epoch({expr}) AS VARCHAR)"
    if kind == "decimal":
        precision = dict(t.children)["precision"]
        return (
            f"CASE WHEN {_decimal_fits(expr, precision)} THEN CAST(CAST({expr} AS DOUBLE) AS VARCHAR) "
            f"ELSE '\"' || CAST({expr} AS VARCHAR) || '\"' END"
        )
    if kind in ("list", "array", "struct") and _native_json(t):
        return f"CAST(to_json({expr}) AS VARCHAR)"
    var = f"e{depth}"
    if kind in ("list", "array"):
        child = dict(t.children)["child"]
        items = f"list_transform({expr}, lambda {var}: coalesce({json_sql(var, child, depth + 1)}, 'null'))"
        return f"CASE WHEN {expr} IS NOT NULL THEN concat('[', array_to_string({items}, ','), ']') END"
    if kind == "map":  # pyarrow gave maps as lists of (key, value) pairs
        key, value = (dict(t.children)[k] for k in ("key", "value"))
        pair = _concat(
            [
                "'['",
                f"coalesce({json_sql(f'{var}.key', key, depth + 1)}, 'null')",
                "','",
                f"coalesce({json_sql(f'{var}.value', value, depth + 1)}, 'null')",
                "']'",
            ]
        )
        items = f"list_transform(map_entries({expr}), lambda {var}: {pair})"
        return f"CASE WHEN {expr} IS NOT NULL THEN concat('[', array_to_string({items}, ','), ']') END"
    if kind == "struct":
        fields = [(n, f"struct_extract({expr}, {sql_str(n)})", c) for n, c in t.children]
        return f"CASE WHEN {expr} IS NOT NULL THEN {object_sql(fields, depth + 1)} END"
    return "NULL"  # the NULL type


def object_sql(fields: Sequence[tuple[str, str, Any]], depth: int = 0) -> str:
    """SQL for a JSON object text from (key, expression, type) triples, keys in that order."""
    if not fields:
        return "'{}'"
    if all(_PLAIN_KEY.fullmatch(name) and _native_json(t) for name, _, t in fields):  # one to_json call
        packed = ", ".join(f"{ident(name)} := {expr}" for name, expr, _ in fields)
        return f"CAST(to_json(struct_pack({packed})) AS VARCHAR)"
    parts = []
    for i, (name, expr, t) in enumerate(fields):
        key = ("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
        parts += [sql_str(key), f"coalesce({json_sql(expr, t, depth)}, 'null')"]
    return _concat([*parts, "'}'"])


def _csv_field(cell: str) -> str:
    """QUOTE_MINIMAL: quoted (quotes doubled) when it holds a comma, a quote or a line break."""
    special = " OR ".join(f"contains({cell}, {c})" for c in _CSV_SPECIALS)
    return f"CASE WHEN {special} THEN concat('\"', replace({cell}, '\"', '\"\"'), '\"') ELSE {cell} END"


def _guard(text: str) -> str:
    formula = " OR ".join(f"starts_with({text}, {c})" for c in _FORMULA_STARTS)
    return f"CASE WHEN {formula} THEN concat('''', {text}) ELSE {text} END"


def csv_cell_sql(expr: str, t: Any) -> str:
    """SQL for the CSV field of a value ('' for NULL): text guarded, numbers and booleans as in
    JSON, lists and structs as their JSON text; quoted where the CSV needs it."""
    kind = t.id
    text = _text(expr, t)
    if text is not None:
        cell = _guard(text)
        return f"coalesce({_csv_field(cell) if kind not in _PLAIN_TEXT else cell}, '')"
    if kind == "decimal":
        precision = dict(t.children)["precision"]
        if precision <= 15:
            return f"coalesce({json_sql(expr, t)}, '')"
        as_text = _guard(f"CAST({expr} AS VARCHAR)")
        return (
            f"coalesce(CASE WHEN {_decimal_fits(expr, precision)} THEN CAST(CAST({expr} AS DOUBLE) AS VARCHAR) "
            f"ELSE {as_text} END, '')"
        )
    if kind in _NESTED:
        return f"coalesce({_csv_field(_canonical(json_sql(expr, t)))}, '')"
    return f"coalesce({json_sql(expr, t)}, '')"


def json_line_sql(columns: Sequence[tuple[str, Any]], qualifier: str = "") -> str:
    """SQL for a row's full.jsonl line (no newline): keys in column order; `qualifier` ("p.")
    names the relation the columns are read from."""
    return _canonical(object_sql([(name, qualifier + ident(name), t) for name, t in columns]))


def _canonical(json_text: str) -> str:
    """JSON text with json.dumps's escapes (see _UPPER_ESCAPE_RE)."""
    # contains() first: a byte search, cheaper than the regex over every line
    return (
        f"CASE WHEN contains({json_text}, '\\u00') AND regexp_matches({json_text}, {_UPPER_ESCAPE_RE}) "
        f"THEN {_PY_JSON_LINE}({json_text}) ELSE {json_text} END"
    )


def csv_select(columns: Sequence[tuple[str, Any]], source: str, extra: Sequence[str] = ()) -> str:
    """A query of each row's full.csv line (CRLF included) `AS csv`, and the `extra` expressions,
    over `source` (its columns include `columns`). Built in layers — each text cell first, then
    its formula guard over that column, then its quotes: a test names a column instead of
    repeating the cell's expression, so the SQL, and DuckDB's planning of it (a quarter of a
    second for a 25-column feed otherwise), grows with the columns, not with the tests on each."""
    texts, guards, cells = [], [], []
    for i, (name, t) in enumerate(columns):
        text = _text(ident(name), t)
        if text is None or t.id in _PLAIN_TEXT:
            cells.append(csv_cell_sql(ident(name), t))
            continue
        texts.append(f"{text} AS __csv_t{i}")
        guards.append(f"{_guard(f'__csv_t{i}')} AS __csv_g{i}")
        cells.append(f"coalesce({_csv_field(f'__csv_g{i}')}, '')")
    if len(cells) == 1:  # the csv module writes a lone empty field as "" (else the row is blank)
        cells = [f"CASE WHEN {cells[0]} = '' THEN '\"\"' ELSE {cells[0]} END"]
    parts = [p for cell in cells for p in ("','", cell)][1:]
    rows = f"(SELECT *, {', '.join(texts)} FROM {source})" if texts else source
    rows = f"(SELECT *, {', '.join(guards)} FROM {rows})" if guards else rows
    return f"SELECT {_concat([*parts, 'chr(13)', 'chr(10)'])} AS csv{''.join(', ' + e for e in extra)} FROM {rows}"


def is_scalar(t: Any) -> bool:
    return t.id not in _NESTED
