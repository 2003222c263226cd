"""`as_of` answers are data: what the API (and `safecredit check`) answers for another date is
what a full rules run with that date as its as_of gives (exchange.md §2, rules.md §3).

The session's publication (`pipeline_run`) is served from a snapshot the way the server serves it
(`warm`, `answer_codes`: the routes' functions, answering from the index) and the way `safecredit
check` reads it (views over the files, rows read per call); the reference is the rules run again
on a copy of the pipeline's warehouse with the date asked as as_of. Dates: before a listing started, inside it,
after its end or repair, for a unit and a person; every listed subject is compared on each.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from api_server import copy_home


@pytest.fixture(scope="module")
def published(pipeline_run, tmp_path_factory):
    """(home with the publication, a copy of the warehouse to rerun the rules on, the salt)."""
    tmp = tmp_path_factory.mktemp("as-of")
    home = copy_home(pipeline_run["home"], tmp / "home")
    warehouse = tmp / "warehouse.duckdb"
    shutil.copyfile(pipeline_run["home"] / "warehouse" / "warehouse.duckdb", warehouse)
    salt = (pipeline_run["home"] / "keys" / "person-id.key").read_text().strip()
    return home, warehouse, salt


def rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def pick_days(con) -> tuple[dict, dict, list[date]]:
    """A unit whose listing was lifted (repaired or expired) and a listed person, and the days that
    matter for them: before the listing started, inside it, after its end or repair."""
    history = "SELECT subject_type, subject_id, entry_id, list(status ORDER BY valid_from) AS statuses, \
        list(valid_from ORDER BY valid_from) AS days FROM rules.listing_timeline GROUP BY ALL ORDER BY entry_id"
    entries = rows(con, history)

    def first(subject_type: str, lifted: bool) -> dict:
        for e in entries:
            statuses = e["statuses"]
            if e["subject_type"] == subject_type and "listed" in statuses and statuses[0] == "pending":
                if not lifted or statuses[-1] in ("repaired", "expired"):
                    return e
        raise AssertionError(f"the session's data has no such {subject_type} listing")

    unit, person = first("unit", True), first("person", False)
    days = set()
    for e in (unit, person):
        listed = e["days"][e["statuses"].index("listed")]
        days |= {e["days"][0] - timedelta(days=1), e["days"][0], listed, listed + timedelta(days=40)}
        days.add(e["days"][-1] + timedelta(days=1))  # after the end or repair (for the person: ahead)
    return unit, person, sorted(days)


def test_answers_for_other_dates_equal_a_full_rules_run_on_that_date(published):
    import duckdb

    from safecredit.api.answer_index import PUBLISHED, TIMELINES, prepare_subject
    from safecredit.api.restrictions import answer_codes, warm
    from safecredit.api.snapshot import build_snapshot
    from safecredit.api.subjects import read_salt
    from safecredit.policy import policy_for
    from safecredit.rules import run_rules

    home, warehouse, salt = published
    con = duckdb.connect(str(warehouse))
    unit, person, days = pick_days(con)
    # every subject listed at the publication's date, asked by its code (a person's full number)
    asked = rows(
        con,
        "SELECT DISTINCT subject_type, subject_id, subject_code_full AS code FROM rules.blacklist ORDER BY ALL",
    )
    assert {unit["subject_id"], person["subject_id"]} <= {a["subject_id"] for a in asked}
    snap = build_snapshot(home / "exports", views=TIMELINES, compressed=PUBLISHED)
    warm(snap)  # the server's snapshot (as `create_app` loads it): answers from its index
    served = snap.cursor()
    files = build_snapshot(home / "exports", materialize=False)  # `safecredit check`'s: rows read now
    read_now = files.cursor()
    seen_statuses: set[str] = set()
    try:
        for day in days:
            run_rules(con, day, policy_for(day), salt)
            full_run = {}
            for a in asked:
                key = (a["subject_type"], a["subject_id"])
                part = prepare_subject(
                    rows(con, "SELECT * FROM rules.blacklist WHERE subject_type = ? AND subject_id = ?", key),
                    rows(con, "SELECT * FROM rules.restrictions WHERE subject_type = ? AND subject_id = ?", key),
                )
                full_run[key] = (list(part.listings), list(part.measures))
            answers = [
                answer_codes(snap, served, read_salt(home), [a["code"]], subject_type=a["subject_type"], as_of=day)[0]
                for a in asked
            ]
            checked = [
                answer_codes(files, read_now, read_salt(home), [a["code"]], subject_type=a["subject_type"], as_of=day)[
                    0
                ]
                for a in asked
            ]
            assert checked == answers, day
            for a, answer in zip(asked, answers):
                key = (a["subject_type"], a["subject_id"])
                assert (answer["listings"], answer["measures"]) == full_run[key], (day, key)
                assert answer["restricted"] == bool(full_run[key][1]) and answer["as_of"] == day.isoformat()
                seen_statuses |= {x["status"] for x in answer["listings"]}
    finally:
        snap.close()
        files.close()
        con.close()
    assert {"pending", "listed"} <= seen_statuses and seen_statuses & {"repaired", "expired"}
