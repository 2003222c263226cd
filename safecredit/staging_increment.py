"""A night's new fetches staged on their own and added to the staged history (issue 10 §5).

A city's ordinary night lands a few hundred records; staging the whole landing again for them (what
`staging.stage` does) costs as much as the first run. Every staging rule judges a record version or
its own batch (one fetch), never another fetch, so the new fetches can be judged alone:

1. they are loaded (`raw_load.load_fetches`) into a scratch in-memory catalog, `staging.stage`
   runs there unchanged on them alone — the same typing, violations, hold-back and dedup code as a
   full staging, not a second implementation;
2. their raw rows, violations and batches are added to the warehouse's;
3. their staged versions are added to `staged.<dataset>` unless the history already holds that
   version (department, record_id, updated_at, op): full staging keeps a version's first passing
   landing, and an older fetch landed first. The table is then rewritten in full staging's order
   (department, record_id, updated_at, op), and the violations in theirs, so that whatever reads
   them sees the rows a replay would give, in the same order (tested against a replay).

A night whose fetches only repeat versions the history holds (a watermark's overlap) adds their
raw rows, violations and batches as a replay would, and leaves `staged.<dataset>` as it stands:
reported as "repeats", so what was built from it stands too.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SCRATCH = "sc_increment"
_KEY = ("department", "record_id", "updated_at", "op")


def stage_increment(
    con: duckdb.DuckDBPyConnection, dataset: str, fetches: list[tuple[str, Path]], hold_back: dict
) -> str:
    """Stage `fetches` (new since the last staging) into the warehouse's tables; returns what was
    done: "repeats" (no version in them that the staged history lacks: `staged.<dataset>` stands,
    only raw rows, violations and batches were added) or "increment"."""
    from safecredit.raw_load import _ident, load_fetches
    from safecredit.staging import stage
    from safecredit.warehouse import MACROS

    home = _ident(con.execute("SELECT current_database()").fetchall()[0][0])
    # the warehouse's macros live in its own catalog: as temp macros they resolve from the scratch one
    con.execute(MACROS.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO"))
    con.execute(f"ATTACH ':memory:' AS {SCRATCH}")
    try:
        con.execute(f"USE {SCRATCH}")
        try:
            load_fetches(con, fetches, dataset, f"raw.{dataset}")
            stage(con, dataset, hold_back)
        finally:
            con.execute(f"USE {home}")
        return _merge(con, dataset)
    finally:
        con.execute(f"DETACH {SCRATCH}")


def _merge(con: duckdb.DuckDBPyConnection, dataset: str) -> str:
    """The scratch catalog's raw rows, violations, batches and staged versions into the warehouse."""
    s = SCRATCH
    fetch_of = f"(department, fetch_id) IN (SELECT DISTINCT department, fetch_id FROM {s}.raw.{dataset})"
    key = " AND ".join(f"o.{c} IS NOT DISTINCT FROM n.{c}" for c in _KEY)
    con.execute("BEGIN")
    try:
        con.execute(f"INSERT INTO raw.{dataset} SELECT * FROM {s}.raw.{dataset}")
        for table in ("violations", "batches"):
            con.execute(f"DELETE FROM quality.{table} WHERE dataset = ? AND {fetch_of}", [dataset])
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _violations AS
            SELECT * FROM quality.violations WHERE dataset = '{dataset}'
            UNION ALL SELECT * FROM {s}.quality.violations""")
        con.execute("DELETE FROM quality.violations WHERE dataset = ?", [dataset])
        # full staging's order: departments in turn, each by fetch, record and rule
        con.execute(
            "INSERT INTO quality.violations SELECT * FROM _violations ORDER BY department, fetch_id, seq, rule_id"
        )
        con.execute("DROP TABLE _violations")
        con.execute(f"INSERT INTO quality.batches SELECT * FROM {s}.quality.batches")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _new_versions AS SELECT * FROM {s}.staged.{dataset} n
                        WHERE NOT EXISTS (SELECT 1 FROM staged.{dataset} o WHERE {key})""")
        added = con.execute("SELECT count(*) FROM _new_versions").fetchall()[0][0]
        if added:
            con.execute(f"""CREATE OR REPLACE TABLE staged.{dataset} AS
                SELECT * FROM (SELECT * FROM staged.{dataset} UNION ALL SELECT * FROM _new_versions)
                ORDER BY {", ".join(_KEY)}""")
        con.execute("DROP TABLE _new_versions")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return "increment" if added else "repeats"
