"""What must hold before a run may publish (exchange.md §1), judged in DuckDB over `rules.<feed>`.

- `unique_ids`: a feed's stable id identifies one row;
- `no_full_id_numbers`: no public column holds a full resident ID number;
- `shrink_within_policy`: no feed loses more than `publication.max_shrink` of its rows against the
  version served now;
- `sources_fresh`: no source the feed is built from went unfetched for longer than
  `publication.max_source_staleness_days` (its previous data stands only until then).

Dagster runs these as blocking asset checks (the publication gate) before `feeds/*`; the publisher
keeps its own last-line guards. Also here: which sources a publication names as held back.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from .feeds import FEEDS
from .guards import join_texts, text_leaves
from .render import ident

# The same for every row of a version, and already in its manifest: kept out of the rows so a
# delta carries only real changes (otherwise every row would be MOD each day).
RUN_CONSTANTS = frozenset({"as_of"})
# RE2 has no look-around: the boundaries are matched as characters (text is padded with spaces)
ID_CANDIDATE = r"[^0-9A-Za-z]([1-9][0-9]{16}[0-9Xx])[^0-9A-Za-z]"
_RUN = "[1-9][0-9]{16}[0-9Xx]"  # any 18-character run an ID number could be


def is_private(column: str) -> bool:
    """Columns kept for the rules' joins that never leave the warehouse (full ID numbers …)."""
    return column.endswith("_full")


def public_columns(con: duckdb.DuckDBPyConnection, feed: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the columns of `rules.<feed>` that are published."""
    return [
        (name, typ)
        for name, typ, *_ in con.execute(f"DESCRIBE rules.{feed}").fetchall()
        if not is_private(name) and name not in RUN_CONSTANTS
    ]


def present_feeds(con: duckdb.DuckDBPyConnection) -> list[str]:
    have = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'rules'").fetchall()}
    return [f for f in FEEDS if f in have and not FEEDS[f].built_from]  # the split-off feeds: lean.py


def feed_query(con: duckdb.DuckDBPyConnection, feed: str) -> str:
    """The SELECT of a feed's published rows."""
    return f"SELECT {', '.join(n for n, _ in public_columns(con, feed))} FROM rules.{feed}"


def _fail(assertion: str, feed: str, en: str, zh: str) -> dict:
    return {"assertion": assertion, "feed": feed, "message": f"{en} / {zh}"}


def duplicate_ids(con: duckdb.DuckDBPyConnection, feed: str) -> list[dict]:
    ids = ", ".join(FEEDS[feed].id_columns)
    n, example = con.execute(f"""SELECT count(*), any_value(concat_ws('/', {ids})) FROM (
        SELECT {ids} FROM rules.{feed} GROUP BY ALL HAVING count(*) > 1)""").fetchone()
    if not n:
        return []
    return [
        _fail(
            "unique_ids",
            feed,
            f"{feed}: {n} id(s) ({ids}) name more than one row, e.g. {example}",
            f"{feed}：{n} 个标识（{ids}）对应多行，如 {example}",
        )
    ]


def full_id_numbers(con: duckdb.DuckDBPyConnection, feed: str) -> list[dict]:
    """Public text (a column's, or the text inside its structs, lists and maps) holding a valid
    18-digit ID number."""
    spec = FEEDS[feed]
    public = {name for name, _ in public_columns(con, feed)}
    # a cursor of its own: the relation API refuses a connection whose last result is unfinished
    with con.cursor() as cur:
        rel = cur.sql(f"SELECT * FROM rules.{feed} LIMIT 0")
        described = list(zip(rel.columns, rel.types))
    texts = {}
    for name, typ in described:
        leaves = text_leaves(ident(name), typ) if name in public else []
        if leaves:
            texts[name] = join_texts(leaves)
    if not texts:
        return []
    # one cheap scan finds the columns where an 18-character run occurs at all; only those get
    # the exact (and much dearer) per-candidate check below
    runs = ", ".join(f"bool_or(regexp_matches({text}, '{_RUN}')) AS \"{name}\"" for name, text in texts.items())
    seen = con.execute(f"SELECT {runs} FROM rules.{feed}").fetchall()[0]
    checks = []
    for (name, text), has_run in zip(texts.items(), seen):
        if not has_run:
            continue
        hits = (
            f"list_filter(regexp_extract_all(' ' || {text} || ' ', '{ID_CANDIDATE}', 1), lambda x: sc_id_ok(upper(x)))"
        )
        unit = "true" if name in spec.unit_codes else "subject_type = 'unit'" if name in spec.subject_codes else None
        # a unit's valid USCC that also passes the ID number's checks is the unit's code
        exempt = f" AND NOT coalesce(sc_uscc_ok(upper({text})) AND {unit}, false)" if unit else ""
        checks.append(
            f"SELECT '{name}' AS col, count(*) AS n, sc_mask(upper(any_value({hits}[1]))) AS example "
            f"FROM rules.{feed} WHERE regexp_matches({text}, '{_RUN}') AND len({hits}) > 0{exempt}"
        )
    if not checks:
        return []
    found = con.execute(" UNION ALL ".join(checks) + " ORDER BY col").fetchall()
    return [
        _fail(
            "no_full_id_numbers",
            feed,
            f"{feed}.{col}: {n} value(s) hold a full ID number (e.g. {example}); public feeds show the "
            "last four digits only",
            f"{feed}.{col}：{n} 个值含完整身份证号（如 {example}），公开数据只能保留后4位",
        )
        for col, n, example in found
        if n
    ]


def shrink(
    feed: str, rows: int, previous_rows: int | None, previous_version: str | None, max_shrink: float
) -> list[dict]:
    if not previous_rows or (previous_rows - rows) / previous_rows <= max_shrink:
        return []
    lost = (previous_rows - rows) / previous_rows
    return [
        _fail(
            "shrink_within_policy",
            feed,
            f"{feed} would shrink from {previous_rows} to {rows} rows ({lost:.1%} lost; at most "
            f"{max_shrink:.0%} allowed) against {previous_version}",
            f"{feed} 将从 {previous_rows} 行减少到 {rows} 行（减少 {lost:.1%}，政策上限 {max_shrink:.0%}），"
            f"对比版本 {previous_version}",
        )
    ]


def staleness_failures(raw_root: Path, max_days: float, now: datetime, datasets: set[str] | None = None) -> list[dict]:
    """Sources (of `datasets`, or all) whose last successful fetch is older than `max_days`."""
    from safecredit.freshness import since_last_fetch

    out = []
    for st in since_last_fetch(raw_root, now):
        if datasets is not None and st["dataset"] not in datasets:
            continue
        last = st.get("last_success")
        age = float("inf") if st["age_days"] is None else st["age_days"]
        if age > max_days:
            out.append(
                {
                    "assertion": "source_staleness",
                    "feed": "*",
                    "dataset": st["dataset"],
                    "message": f"{st['department']}/{st['dataset']}: last successful fetch "
                    f"{last or 'never'} is {age:.1f} days old (> {max_days:g}); "
                    f"数据源 {st['department']}/{st['dataset']} 已超过 {max_days:g} 天未成功拉取",
                }
            )
    return out


def held_back_sources(con: duckdb.DuckDBPyConnection, raw_root: Path) -> list[dict]:
    """Sources whose data in this publication is not their latest: batches held back by their
    contract checks, and departments that could not be reached (their previous data stands)."""
    from safecredit.landing import source_states

    out = [
        {"department": d, "dataset": ds, "batch": f, "kind": "held_back", "reason_zh": zh, "reason_en": en}
        for d, ds, f, zh, en in con.execute(
            "SELECT department, dataset, fetch_id, reason_zh, reason_en FROM quality.batches WHERE held ORDER BY ALL"
        ).fetchall()
    ]
    for st in source_states(raw_root):
        if st.get("last_status") not in (None, "landed"):
            out.append(
                {
                    "department": st["department"],
                    "dataset": st["dataset"],
                    "kind": "unreachable",
                    "last_success": st.get("last_success"),
                    "reason_zh": st.get("last_error_zh"),
                    "reason_en": st.get("last_error_en"),
                }
            )
    return out
