"""JSON pages as landed: each page body kept byte for byte, read back by DuckDB.

A JSON fetch lands as `<fetch>/pages/<n>.json`, the bodies exactly as the department sent them
(department-feeds.md §1.2). The client parses a page once for its cursor and never re-serialises
an item; repeated items (at-least-once delivery, a page repeated, a restart after `410`) are
dropped here, in SQL, keeping each key's first occurrence — what the connector's in-memory dedup
did before. Fetches landed by earlier releases (`items.jsonl`, one deduplicated item a line)
are still read as they are (see raw_load).
"""

from __future__ import annotations

from pathlib import Path

from safecredit.contracts import _q

PAGES = "pages"


def page_path(work: Path, n: int) -> Path:
    return work / PAGES / f"{n:06d}.json"


def has_pages(fetch: Path) -> bool:
    return (fetch / PAGES).is_dir()


def _instant(expr: str) -> str:
    """An RFC3339 text as TIMESTAMPTZ; without an offset it is Asia/Shanghai local time (§2)."""
    return (
        f"TRY_CAST(CASE WHEN regexp_matches({expr}, '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$') THEN {expr} "
        f"ELSE {expr} || '+08:00' END AS TIMESTAMPTZ)"
    )


def _offered(files: list[str], until: str | None) -> str:
    """Every object item of the pages in order (page file, index), none at or after `until`."""
    ts = _instant("item ->> 'updated_at'")
    cut = f" AND coalesce({ts} < {_q(until)}::TIMESTAMPTZ, true)" if until else ""
    # read_text + one json_extract per page: 10x cheaper than read_json's typed `items` column
    return f"""
        SELECT * FROM (
            SELECT page, unnest(items) AS item, generate_subscripts(items, 1) AS idx FROM (
                SELECT filename AS page, json_extract(content, '$.items[*]') AS items
                FROM read_text([{", ".join(_q(f) for f in files)}])))
        WHERE json_type(item) = 'OBJECT'{cut}"""


def load_items(con, fetch: Path, until: str | None = None) -> str:
    """The kept items of a fetch's pages, in page order, as a query of (seq, json) over a temp table:
    objects only, the first of each (record_id, updated_at, op), none at or after `until` (a
    backfill window's end). `seq` counts the items as landed, so a dropped repeat leaves a gap.

    The repeats are found on the key column alone and deleted: sorting the items themselves (a
    window over the whole page text) cost 3x the reading."""
    files = sorted(str(p) for p in (fetch / PAGES).glob("*.json"))
    if not files:
        return "SELECT NULL::BIGINT AS seq, NULL::JSON AS json WHERE false"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _page_items AS
        SELECT row_number() OVER () - 1 AS seq, item AS json,
               json_extract(item, ['$.record_id', '$.updated_at', '$.op'])::VARCHAR[] AS k
        FROM ({_offered(files, until)})""")
    con.execute("""DELETE FROM _page_items WHERE seq IN (
        SELECT seq FROM (SELECT seq, row_number() OVER (PARTITION BY k ORDER BY seq) AS n FROM _page_items)
        WHERE n > 1)""")
    return "SELECT seq, json FROM _page_items"
