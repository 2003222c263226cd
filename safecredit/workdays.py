"""The working-day calendar of rules.md §3 as small tables the rules SQL reads.

Source: the 国务院办公厅 annual notices on public holidays (关于YYYY年部分节假日安排的通知), every year
from 2004, as the `chinese-calendar` package carries them (maintained from those notices); the
policy's `calendar` topic (calendar.yaml) overrides single days and may declare a year the
package does not carry yet (`published_years`, with that year's days listed).

Only published years get days, so no year is ever counted Monday–Friday silently: the rules
report a notice period that reaches an unpublished year (rules/30_blacklist.sql, rules.calendar_gaps).

Tables (temp): `calendar_years(year)` the published years; `calendar(d, working, ord)` every day
of them, `ord` = working days counted so far; `calendar_next_gap(year, gap_year)` for each year
1900–2100 the first unpublished year from it on.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from safecredit.policy import Policy


def published(policy: Policy) -> tuple[list[int], list[tuple[date, bool]]]:
    """(published years, [(day, working)] for the days that differ from Monday–Friday or are
    overridden): the package's notices first, the policy's overrides on top."""
    import chinese_calendar

    cal = policy.get("calendar", {}) or {}
    years = {d.year for d in chinese_calendar.holidays} | {int(y) for y in cal.get("published_years", []) or []}
    days: dict[date, bool] = {d: False for d in chinese_calendar.holidays}
    days.update({d: True for d in chinese_calendar.workdays})
    days.update({d: False for d in _expand(cal.get("holidays", []) or [])})
    days.update({d: True for d in _expand(cal.get("makeup_workdays", []) or [])})
    return sorted(years), sorted((d, w) for d, w in days.items() if d.year in years)


def _expand(items) -> list[date]:
    """Days and [first, last] ranges (inclusive) as a list of days."""
    out = []
    for it in items:
        if isinstance(it, (list, tuple)):
            a, b = (x if isinstance(x, date) else date.fromisoformat(str(x)) for x in it)
            while a <= b:
                out.append(a)
                a += timedelta(days=1)
        else:
            out.append(it if isinstance(it, date) else date.fromisoformat(str(it)))
    return out


def prepare_calendar(con: duckdb.DuckDBPyConnection, policy: Policy) -> None:
    years, days = published(policy)
    con.execute("CREATE OR REPLACE TEMP TABLE calendar_years AS SELECT unnest(?::INTEGER[]) AS year", [years])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE calendar_exceptions AS "
        "SELECT unnest(?::DATE[]) AS d, unnest(?::BOOLEAN[]) AS working",
        [[d for d, _ in days], [w for _, w in days]],
    )
    con.execute("""CREATE OR REPLACE TEMP TABLE calendar AS
        WITH d AS (SELECT CAST(unnest(generate_series(make_date(year, 1, 1), make_date(year, 12, 31),
                                                      INTERVAL 1 DAY)) AS DATE) AS d
                   FROM calendar_years)
        SELECT d.d, coalesce(x.working, isodow(d.d) <= 5) AS working,
               sum(coalesce(x.working, isodow(d.d) <= 5)::INTEGER) OVER (ORDER BY d.d) AS ord
        FROM d LEFT JOIN calendar_exceptions x USING (d) ORDER BY d.d""")
    con.execute("""CREATE OR REPLACE TEMP TABLE calendar_next_gap AS
        SELECT y.range::INTEGER AS year, min(g.range)::INTEGER AS gap_year
        FROM range(1900, 2101) y
        JOIN range(1900, 2102) g ON g.range >= y.range AND g.range NOT IN (SELECT year FROM calendar_years)
        GROUP BY y.range""")
    con.execute("DROP TABLE calendar_exceptions")
