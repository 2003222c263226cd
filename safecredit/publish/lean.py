"""Lean feeds (issue 10 §6): explanations published once, beside the rows that point at them.

The rule tables carry, per unit, the seven 守信 condition labels, every credit-score component and
the premium and 工伤 worksheets with each adjustment's label and legal basis: 1.4–2 KB a row, most
of a version's bytes, and rewritten whenever one unit changes. Published, they are split:

* the per-unit feeds (`credit_scores`, `incentives`, `premium_factors`, `injury_insurance_factors`)
  keep their flat columns and their condition lists as codes with a status;
* the components and worksheets are feeds of their own keyed by the row's id
  (`credit_score_components`: one row per component, id `uscc` + `seq`; `premium_worksheets`,
  `injury_insurance_worksheets`: id `uscc`), so a unit whose score did not move is not in a delta;
* every label, basis and policy value those rows point at is a row of the `codes` feed (id `feed`,
  `field`, `code`), taken from the rows themselves: one code, one meaning, or the publication stops.

`feed_queries` is the publishing side (SQL over the warehouse's `rules.*`); `widen_sql` the reading
side: the API joins the feeds of one version back into the rule tables' shape, in DuckDB, so that
`/v1/credit`, `/v1/premium-factors`, `/v1/injury-insurance` and `/v1/incentives` answer as before.
Everything here is SQL text: rows never pass through Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import duckdb

from .gate import present_feeds, public_columns
from .render import ident, sql_str

CODES = "codes"

# per-unit feed → its list of 守信 conditions, published as codes with a status
_CONDITIONS = {"credit_scores": "incentive_conditions", "incentives": "conditions"}
# the wide column each detail feed takes out of its per-unit feed
DETAILS: Mapping[str, tuple[str, str]] = {
    "credit_score_components": ("credit_scores", "components"),
    "premium_worksheets": ("premium_factors", "worksheet"),
    "injury_insurance_worksheets": ("injury_insurance_factors", "worksheet"),
}
_MOVED = {parent: column for parent, column in DETAILS.values()}

# The codes of each dictionary: (feed, field, rule table, SQL over it yielding code, label, value,
# basis, note). A code's label, value, basis and note are the same in every row (`check_codes`).
_CODE_SOURCES: list[tuple[str, str, str, str]] = [
    (
        "credit_scores",
        "incentive_conditions",
        "credit_scores",
        "SELECT x.condition, x.label, NULL, NULL, NULL FROM (SELECT unnest(incentive_conditions) AS x "
        "FROM rules.credit_scores)",
    ),
    (
        "incentives",
        "conditions",
        "incentives",
        "SELECT x.condition, x.label, NULL, NULL, NULL FROM (SELECT unnest(conditions) AS x FROM rules.incentives)",
    ),
    (
        "premium_worksheets",
        "worksheet.floating.adjustments",
        "premium_factors",
        "SELECT a.code, a.label, CAST(a.value AS VARCHAR), a.basis, a.reason FROM (SELECT "
        "unnest(worksheet.floating.adjustments) AS a FROM rules.premium_factors WHERE worksheet.floating IS NOT NULL)",
    ),
    (
        "injury_insurance_worksheets",
        "worksheet.rules",
        "injury_insurance_factors",
        "SELECT j.code, j.label, CAST(j.delta AS VARCHAR), j.basis, NULL FROM (SELECT unnest(worksheet.rules) AS j "
        "FROM rules.injury_insurance_factors)",
    ),
    (
        "injury_insurance_worksheets",
        "worksheet.class_basis",
        "injury_insurance_factors",
        "SELECT CAST(worksheet.injury_class AS VARCHAR), NULL, NULL, worksheet.class_basis, NULL "
        "FROM rules.injury_insurance_factors",
    ),
    # a component's label when it is the same for every row of that component (most are: policy
    # text); components whose label says more (the base's 标准化 level, a count) keep it in the row
    (
        "credit_score_components",
        "component",
        "credit_scores",
        "SELECT c.component, any_value(c.label), NULL, NULL, NULL FROM (SELECT unnest(components) AS c "
        "FROM rules.credit_scores) GROUP BY c.component "
        "HAVING count(DISTINCT c.label) = 1 AND count(c.label) = count(*)",
    ),
]
_COMPONENT_LABELS = _CODE_SOURCES[-1][3]
# the rule tables whose rows carry codes (the gate's `one_meaning_per_code` judges them)
CODED_TABLES = frozenset(table for _, _, table, _ in _CODE_SOURCES)
# A worksheet's window follows the run's `as_of`: the same in every row of a version. Kept in the
# rows it would rewrite every worksheet each night; it is a `codes` row with the code `*` instead.
EVERY_ROW = "*"
_WINDOWS = {  # worksheet feed → (its rule table, the worksheet structs that have a window)
    "premium_worksheets": ("premium_factors", ("floating", "experience")),
    "injury_insurance_worksheets": ("injury_insurance_factors", ("",)),
}
for _feed, (_table, _parts) in _WINDOWS.items():
    for _part in _parts:
        _path = "worksheet" + (f".{_part}" if _part else "")
        for _end in ("window_start", "window_end"):
            _CODE_SOURCES.append(
                (
                    _feed,
                    f"{_path}.{_end}",
                    _table,
                    f"SELECT '{EVERY_ROW}', NULL, CAST({_path}.{_end} AS VARCHAR), NULL, NULL FROM rules.{_table} "
                    f"WHERE {_path} IS NOT NULL",
                )
            )


class LeanFeedError(ValueError):
    """A dictionary code with two meanings: the rows cannot point at it."""

    def __init__(self, en: str, zh: str):
        super().__init__(f"{zh} / {en}")
        self.en, self.zh = en, zh


def _conditions_sql(column: str) -> str:
    """A condition list as codes and statuses (the labels are in `codes`)."""
    return f"list_transform({ident(column)}, lambda x: {{condition: x.condition, status: x.status}})"


def _premium_worksheet_sql() -> str:
    """The worksheet without its window and each adjustment's label, value, basis and skip reason
    (in `codes`)."""
    lean = (
        "list_transform(worksheet.floating.adjustments, "
        "lambda a: {code: a.code, count: a.count, total: a.total, status: a.status})"
    )
    no_window = "window_start := NULL::DATE, window_end := NULL::DATE"
    return (
        "struct_update(worksheet, floating := CASE WHEN worksheet.floating IS NOT NULL THEN "
        f"struct_update(worksheet.floating, {no_window}, adjustments := {lean}) END, "
        "experience := CASE WHEN worksheet.experience IS NOT NULL THEN "
        f"struct_update(worksheet.experience, {no_window}) END)"
    )


def _injury_worksheet_sql() -> str:
    """The worksheet without its window, the class's basis and each step rule's label, delta and basis
    (in `codes`)."""
    return (
        "struct_update(worksheet, class_basis := NULL::VARCHAR, window_start := NULL::DATE, "
        "window_end := NULL::DATE, "
        "rules := list_transform(worksheet.rules, lambda j: {code: j.code, met: j.met}))"
    )


def _codes_sql(tables: set[str]) -> str | None:
    """The `codes` rows of the dictionaries read from `tables` (rule tables the warehouse has)."""
    parts = [
        f"SELECT {sql_str(feed)} AS feed, {sql_str(field)} AS field, code, label, value, basis, note "
        f"FROM (SELECT DISTINCT * FROM ({sql}) t(code, label, value, basis, note) WHERE code IS NOT NULL)"
        for feed, field, table, sql in _CODE_SOURCES
        if table in tables
    ]
    return " UNION ALL ".join(parts) if parts else None


def feed_queries(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The SELECT of every feed a warehouse publishes, lean: per-unit rows, their detail feeds, `codes`."""
    tables = set(present_feeds(con))
    out = {}
    for feed in sorted(tables):  # a deterministic order (the publisher sorts again)
        cols = [n for n, _ in public_columns(con, feed) if n != _MOVED.get(feed)]
        conditions = _CONDITIONS.get(feed)
        select = [f"{_conditions_sql(c)} AS {ident(c)}" if c == conditions else ident(c) for c in cols]
        out[feed] = f"SELECT {', '.join(select)} FROM rules.{feed}"
    if "credit_scores" in tables:
        label = "CASE WHEN d.label IS NULL THEN u.c.label END"  # NULL: the component's label in `codes`
        fields = ", ".join(f"u.c.{f}" for f in ("points", "event_date", "source_dataset", "source_department"))
        out["credit_score_components"] = (
            f"SELECT s.uscc, u.seq, u.c.component, u.c.kind, {label} AS label, {fields}, u.c.source_record_id, "
            "u.c.decision_no_or_accident_no FROM (SELECT uscc, unnest(list_transform(components, "
            "lambda x, i: {seq: i, c: x})) AS u FROM rules.credit_scores) s "
            f"LEFT JOIN ({_COMPONENT_LABELS}) d(component, label, v, b, n) "
            "ON d.component = s.u.c.component"
        )
    if "premium_factors" in tables:
        out["premium_worksheets"] = f"SELECT uscc, {_premium_worksheet_sql()} AS worksheet FROM rules.premium_factors"
    if "injury_insurance_factors" in tables:
        out["injury_insurance_worksheets"] = (
            f"SELECT uscc, {_injury_worksheet_sql()} AS worksheet FROM rules.injury_insurance_factors"
        )
    codes = _codes_sql(tables)
    if codes is not None:
        check_codes(con, codes)
        out[CODES] = codes
    return out


def code_conflicts(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """The publication gate's `one_meaning_per_code` over `rules.<table>`: a code of its condition
    lists, worksheet adjustments or step rules with two labels, values or bases (policy data that
    contradicts itself) cannot be published as one `codes` row."""
    sql = _codes_sql({table})
    found = [] if sql is None else [_conflict(*row) for row in _duplicates(con, sql)]
    return [{"assertion": "one_meaning_per_code", "feed": table, "message": f"{en} / {zh}"} for en, zh in found]


def check_codes(con: duckdb.DuckDBPyConnection, codes_sql: str) -> None:
    """The publisher's last line: each code has one meaning, else LeanFeedError names the first."""
    for row in _duplicates(con, codes_sql)[:1]:
        raise LeanFeedError(*_conflict(*row))


def _duplicates(con: duckdb.DuckDBPyConnection, codes_sql: str) -> list[tuple]:
    return con.execute(
        f"SELECT feed, field, code, count(*) FROM ({codes_sql}) GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL"
    ).fetchall()


def _conflict(feed: str, field: str, code: str, n: int) -> tuple[str, str]:
    """(English, Chinese) of a code with `n` meanings."""
    return (
        f"{feed}.{field}: code {code!r} has {n} different labels, values or bases in this run; "
        "a code must mean one thing (check the policy files)",
        f"{feed}.{field}：代码 {code!r} 在本次运行中有 {n} 种不同的名称、取值或依据；"
        "同一代码只能有一种含义（请检查政策文件）",
    )


# -- the reading side ---------------------------------------------------------------------------

Rel = Callable[[str], str | None]  # feed name → SQL relation of that feed in one version (None: absent)


def _codes_map(rel: str, feed: str, field: str) -> str:
    return (
        f"(SELECT map(list(code ORDER BY code), list({{label: label, value: value, basis: basis, note: note}} "
        f"ORDER BY code)) FROM {rel} WHERE feed = {sql_str(feed)} AND field = {sql_str(field)})"
    )


def widen_sql(feed: str, rel: Rel, types: Mapping[str, str]) -> str | None:
    """The rows of a lean per-unit `feed` (its columns' DuckDB `types`) in the rule table's shape
    (details and labels joined back), or None when there is nothing to widen: a version published
    before the split (a restored one, say) has them already."""
    codes, moved, columns = rel(CODES), _MOVED.get(feed), list(types)
    if feed in _CONDITIONS and "label" in types.get(_CONDITIONS[feed], ""):
        return None
    detail = next((d for d, (parent, _) in DETAILS.items() if parent == feed), None)
    if codes is None or (feed not in _CONDITIONS and detail is None):
        return None
    if moved is not None and (moved in columns or rel(detail) is None):
        return None
    maps, wide = [], {}
    if feed in _CONDITIONS:
        column = _CONDITIONS[feed]
        maps.append(f"{_codes_map(codes, feed, column)} AS cm")
        wide[column] = (
            f"list_transform(s.{ident(column)}, lambda x: {{condition: x.condition, label: k.cm[x.condition].label, "
            "status: x.status})"
        )
    if moved is None:
        return f"SELECT {_select(columns, wide)} FROM {rel(feed)} s CROSS JOIN (SELECT {', '.join(maps)}) k"
    if feed == "credit_scores":
        labels = _codes_map(codes, "credit_score_components", "component")
        item = (
            "{component: c.component, kind: c.kind, label: coalesce(c.label, m[c.component].label), "
            "points: c.points, event_date: c.event_date, source_dataset: c.source_dataset, "
            "source_department: c.source_department, source_record_id: c.source_record_id, "
            "decision_no_or_accident_no: c.decision_no_or_accident_no}"
        )
        joined = (
            f"SELECT c.uscc, list(c.item ORDER BY c.seq) AS detail FROM (SELECT c.uscc, c.seq, {item} AS item "
            f"FROM {rel(detail)} c, (SELECT {labels} AS m)) c GROUP BY c.uscc"
        )
        wide[moved], before = "coalesce(d.detail, [])", "component_count"
    elif feed == "premium_factors":
        adjustments = _codes_map(codes, "premium_worksheets", "worksheet.floating.adjustments")
        full = (
            "list_transform(w.worksheet.floating.adjustments, lambda a: {code: a.code, label: m[a.code].label, "
            "value: CAST(m[a.code].value AS DECIMAL(8, 4)), basis: m[a.code].basis, count: a.count, "
            "total: a.total, status: a.status, reason: m[a.code].note})"
        )
        floating, experience = (_window(codes, detail, f"worksheet.{p}") for p in ("floating", "experience"))
        worksheet = (
            "struct_update(w.worksheet, floating := CASE WHEN w.worksheet.floating IS NOT NULL THEN "
            f"struct_update(w.worksheet.floating, {floating}, adjustments := {full}) END, "
            "experience := CASE WHEN w.worksheet.experience IS NOT NULL THEN "
            f"struct_update(w.worksheet.experience, {experience}) END)"
        )
        joined = f"SELECT w.uscc, {worksheet} AS detail FROM {rel(detail)} w, (SELECT {adjustments} AS m)"
        wide[moved], before = "d.detail", "policy_version"
    else:  # injury_insurance_factors
        rules = _codes_map(codes, "injury_insurance_worksheets", "worksheet.rules")
        classes = _codes_map(codes, "injury_insurance_worksheets", "worksheet.class_basis")
        worksheet = (
            "struct_update(w.worksheet, class_basis := n[CAST(w.worksheet.injury_class AS VARCHAR)].basis, "
            f"{_window(codes, detail, 'worksheet')}, "
            "rules := list_transform(w.worksheet.rules, lambda j: {code: j.code, label: m[j.code].label, "
            "delta: CAST(m[j.code].value AS INTEGER), basis: m[j.code].basis, met: j.met}))"
        )
        joined = f"SELECT w.uscc, {worksheet} AS detail FROM {rel(detail)} w, (SELECT {rules} AS m, {classes} AS n)"
        wide[moved], before = "d.detail", "policy_version"
    maps_sql = f" CROSS JOIN (SELECT {', '.join(maps)}) k" if maps else ""
    return (
        f"SELECT {_select(columns, wide, moved, before)} FROM {rel(feed)} s{maps_sql} "
        f"LEFT JOIN ({joined}) d ON d.uscc = s.uscc"
    )


def _window(codes: str, feed: str, path: str) -> str:
    """struct_update arguments putting back a worksheet's window from its `codes` rows."""
    return ", ".join(
        f"{end} := (SELECT CAST(value AS DATE) FROM {codes} WHERE feed = {sql_str(feed)} "
        f"AND field = {sql_str(f'{path}.{end}')} AND code = '{EVERY_ROW}')"
        for end in ("window_start", "window_end")
    )


def _select(columns: list[str], replace: dict[str, str], moved: str | None = None, before: str = "") -> str:
    """The lean feed's columns with `replace`d expressions, `moved` put back before `before`."""
    out = []
    for c in columns:
        if moved and c == before:
            out.append(f"{replace[moved]} AS {ident(moved)}")
        out.append(f"{replace[c]} AS {ident(c)}" if c in replace else f"s.{ident(c)}")
    if moved and before not in columns:
        out.append(f"{replace[moved]} AS {ident(moved)}")
    return ", ".join(out)
