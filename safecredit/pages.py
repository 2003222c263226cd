"""JSON pages as landed: each page body kept byte for byte, read back by DuckDB.

A JSON fetch lands as `<fetch>/pages/<n>.json`, the bodies exactly as the department sent them
(department-feeds.md §1.2). The client parses a page once for its cursor and never re-serialises
an item; repeated items (at-least-once delivery, a page repeated, a restart after `410`) are
dropped here, in SQL, keeping each key's first occurrence — what the connector's in-memory dedup
did before. Fetches landed by earlier releases (`items.jsonl`, one deduplicated item a line)
are still read as they are (see raw_load).
"""

from __future__ import annotations

import json
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
                FROM {_read(files)}))
        WHERE json_type(item) = 'OBJECT'{cut}"""


def _files(fetch: Path) -> list[str]:
    return sorted(str(p) for p in (fetch / PAGES).glob("*.json"))


def _read(files: list[str]) -> str:
    return f"read_text([{', '.join(_q(f) for f in files)}])"


# The identity of an item, as the connector's dedup and load_items' repeats know it
KEY_FIELDS = ("record_id", "updated_at", "op")
# Types json_structure gives a key that a page's items hold as text only (or not at all)
_TEXT_SHAPES = frozenset({"VARCHAR", "NULL"})


def _field_shapes(con, files: list[str], fields: list[str]) -> dict[str, set[str]] | None:
    """Each known field's JSON types across the fetch's pages (from one `json_structure` per page),
    or None when a page holds something the one-parse reading cannot take as it is: an item that is
    not an object, a key outside `fields`, `items` that is not a list."""
    shapes: dict[str, set[str]] = {f: set() for f in fields}
    rows = con.execute(f"SELECT DISTINCT json_structure(content) -> '$.items' FROM {_read(files)}").fetchall()
    for (text,) in rows:
        shape = None if text is None else json.loads(text)
        if shape is None or shape == "NULL" or shape == ["NULL"]:
            continue  # no items, or only nulls (which are not objects, so not items)
        if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], dict)):
            return None
        for key, kind in shape[0].items():
            if key not in shapes:
                return None  # an unknown key: extra_fields, which the general reading builds
            shapes[key].add(kind if isinstance(kind, str) else "OBJECT")
    return shapes


def plain_items(con, fetch: Path, fields: list[str], until: str | None = None) -> tuple[str, list[str]] | None:
    """`load_items` with one parse of each page, for the common fetch: every item an object of
    known keys, its key fields text. Returns a query of (seq, it) — `it` a struct of `fields`,
    VARCHAR where every page holds text or null, else the value's JSON text — and the fields held
    as JSON; or None when the fetch needs `load_items` (see `_field_shapes`; an item without a key
    field too, whose null and missing `load_items` tells apart). The same rows, seq and repeats as
    `load_items`: the extra cost there is parsing each item four times over."""
    files = _files(fetch)
    if not files:
        return None
    shapes = _field_shapes(con, files, fields)
    if shapes is None or any(not shapes[k] <= _TEXT_SHAPES for k in KEY_FIELDS if k in shapes):
        return None
    as_json = [f for f in fields if not shapes[f] <= _TEXT_SHAPES]
    struct = {"items": [{f: "JSON" if f in as_json else "VARCHAR" for f in fields}]}
    cut = f" AND coalesce({_instant('it.updated_at')} < {_q(until)}::TIMESTAMPTZ, true)" if until else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _page_items AS
        SELECT row_number() OVER () - 1 AS seq, it FROM (
            SELECT unnest(json_transform(content, {_q(json.dumps(struct, ensure_ascii=False))}).items) AS it
            FROM {_read(files)})
        WHERE it IS NOT NULL{cut}""")
    missing = " OR ".join(f"it.{k} IS NULL" for k in KEY_FIELDS)
    if con.execute(f"SELECT count(*) FROM _page_items WHERE {missing}").fetchone()[0]:
        con.execute("DROP TABLE _page_items")
        return None
    keys = ", ".join(f"it.{k}" for k in KEY_FIELDS)
    con.execute(f"""DELETE FROM _page_items WHERE seq IN (
        SELECT seq FROM (SELECT seq, row_number() OVER (PARTITION BY {keys} ORDER BY seq) AS n FROM _page_items)
        WHERE n > 1)""")
    return "SELECT seq, it FROM _page_items", as_json


def load_items(con, fetch: Path, until: str | None = None) -> str:
    """The kept items of a fetch's pages, in page order, as a query of (seq, json) over a temp table:
    objects only, the first of each (record_id, updated_at, op), none at or after `until` (a
    backfill window's end). `seq` counts the items as landed, so a dropped repeat leaves a gap.

    The repeats are found on the key column alone and deleted: sorting the items themselves (a
    window over the whole page text) cost 3x the reading."""
    files = _files(fetch)
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
