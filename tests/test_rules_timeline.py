"""The listing and restriction timelines (rules/33_listing_timeline.sql, rules/35_restrictions.sql):
taken at any date, they say what a full rules run with that date as its as_of says.

One hand-written warehouse (rules_fixtures: landing → staging → subjects → rules) holds an entry of
each kind of history: listed, repaired, listed again after a revoked repair; an inferred B4 that a
later written decision lists on its own dates; an annulled decision; a revoked penalty; an upheld
objection; an expired listing; a person listed with a statutory ban beside it, and a person's ban
alone. The rules run once at AS_OF; then, for days where the histories change (or the day before), the
rules run again with that day as as_of (subject resolution does not depend on it), and each
subject's answer (the same `prepare_subject` the API uses) is compared with the timelines taken
at that day.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from rules_fixtures import (
    build_warehouse,
    credit_action,
    departments,
    enterprise,
    listing_decision,
    penalty,
    person_penalty,
    revoke,
    uscc,
)

AS_OF = date(2026, 11, 22)
SALT = "test-salt"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    repaired = penalty(1, 1, "2024-03-01", AQ_WFDM="UNLICENSED_OPERATION")
    b4 = penalty(2, 2, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ="特别严重")
    annulled = penalty(3, 3, "2025-01-06", AQ_WFDM="UNLICENSED_OPERATION")
    decision = listing_decision(
        3, uscc(3), annulled["CF_WSH"], "B1", "2025-02-10", MD_QSRQ="2025-02-11", MD_JZRQ="2028-02-11"
    )
    revoked = penalty(4, 4, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    objected = penalty(5, 5, "2024-06-03", AQ_WFDM="UNLICENSED_OPERATION")
    data = {
        "yjj": {
            "enterprises": [enterprise(i) for i in range(1, 7)],
            "penalties": [
                repaired,
                b4,
                annulled,
                revoked,
                revoke(revoked, "2025-08-01"),
                objected,
                penalty(6, 6, "2022-06-01", AQ_WFDM="UNLICENSED_OPERATION"),  # expired in 2025
                person_penalty(11, 101, "2025-05-06", AQ_WFDM="AGENCY_FRAUD", AQ_QJ="严重"),  # B2 + 5-year ban
                person_penalty(12, 102, "2024-03-05", CF_CFLB="罚款;限制从业", CF_YXQ="2026-06-30"),  # a ban only
            ],
            "credit_actions": [
                credit_action(1, "信用修复", uscc(1), repaired["CF_WSH"], "2025-06-02"),
                credit_action(2, "撤销修复", uscc(1), repaired["CF_WSH"], "2025-09-01"),
                credit_action(3, "异议成立", uscc(5), objected["CF_WSH"], "2024-07-01"),
            ],
            "listing_decisions": [
                listing_decision(
                    2, uscc(2), b4["CF_WSH"], "B4", "2025-10-15", MD_QSRQ="2025-10-20", MD_JZRQ="2027-10-20"
                ),
                decision,
                listing_decision(
                    4,
                    uscc(3),
                    None,
                    None,
                    "2025-06-02",
                    MD_LX="撤销列入",
                    MD_YWSH=decision["MD_WSH"],
                    MD_WSH="江应急撤列〔2025〕4号",
                ),
            ],
        }
    }
    con = build_warehouse(tmp_path_factory.mktemp("timeline"), data, AS_OF, salt=SALT)
    yield con
    con.close()


def rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def valid_on(table: str, day: date) -> str:
    on = f"DATE '{day}'"
    return f"SELECT * FROM {table} WHERE valid_from <= {on} AND (valid_until IS NULL OR {on} < valid_until)"


def answers(listings: list[dict], measures: list[dict]) -> dict:
    """subject → (listings, measures) as the API answers them."""
    from safecredit.api.answer_index import prepare_subject

    keys = sorted({(r["subject_type"], r["subject_id"]) for r in [*listings, *measures]})
    out = {}
    for key in keys:
        part = prepare_subject(
            [r for r in listings if (r["subject_type"], r["subject_id"]) == key],
            [r for r in measures if (r["subject_type"], r["subject_id"]) == key],
        )
        out[key] = (part.listings, part.measures)
    return out


def test_the_timelines_hold_each_kind_of_history(warehouse):
    statuses = {
        (r["ground"], r["subject_type"]): r["statuses"]
        for r in rows(
            warehouse,
            "SELECT ground, subject_type, subject_id, list(status ORDER BY valid_from) AS statuses "
            "FROM rules.listing_timeline WHERE subject_type = 'unit' OR ground = 'B2' GROUP BY ALL",
        )
        if r["subject_id"] in (uscc(1), uscc(2)) or r["subject_type"] == "person"
    }
    assert statuses[("B1", "unit")] == ["pending", "listed", "repaired", "listed", "expired"]
    assert statuses[("B4", "unit")] == ["pending", "pending", "listed", "expired"]  # inferred, then decided
    assert statuses[("B2", "person")] == ["pending", "listed", "expired"]
    b4 = rows(warehouse, "SELECT * FROM rules.listing_timeline WHERE subject_id = ? ORDER BY valid_from", [uscc(2)])
    assert [(r["valid_from"], r["decided"], r["start_date"], r["status"]) for r in b4[:3]] == [
        (date(2025, 9, 1), False, date(2025, 9, 8), "pending"),  # B4 inferred never restricts: waits
        (date(2025, 10, 15), True, date(2025, 10, 20), "pending"),  # decided, before the decision's start
        (date(2025, 10, 20), True, date(2025, 10, 20), "listed"),
    ]
    # the annulled decision, the revoked penalty and the upheld objection never stood, at any date
    for code in (uscc(3), uscc(4), uscc(5)):
        states = rows(warehouse, "SELECT status FROM rules.listing_timeline WHERE subject_id = ?", [code])
        assert {s["status"] for s in states} <= {"revoked", "objection_upheld"} and states, code
    # the restrictions binding on AS_OF are the restriction timeline at AS_OF
    published = rows(warehouse, "SELECT * EXCLUDE (as_of) FROM rules.restrictions ORDER BY ALL")
    at_as_of = rows(
        warehouse,
        f"SELECT * EXCLUDE (valid_from, valid_until) "
        f"FROM ({valid_on('rules.restriction_timeline', AS_OF)}) ORDER BY ALL",
    )
    assert published == at_as_of and published


def test_the_timelines_at_any_date_equal_a_full_run_with_that_as_of(warehouse, tmp_path):
    from safecredit.policy import policy_for
    from safecredit.rules import run_rules

    listing_tl = warehouse.sql("SELECT * FROM rules.listing_timeline").to_arrow_table()
    restriction_tl = warehouse.sql("SELECT * FROM rules.restriction_timeline").to_arrow_table()
    changes = {
        d
        for (d,) in warehouse.execute(
            "SELECT valid_from FROM rules.listing_timeline UNION SELECT valid_until FROM rules.listing_timeline UNION "
            "SELECT valid_from FROM rules.restriction_timeline UNION SELECT valid_until FROM rules.restriction_timeline"
        ).fetchall()
    }
    # a run costs seconds: the days that tell the histories apart (each a change, or the day before one)
    days = [
        date(2022, 5, 31),  # before anything
        date(2024, 3, 7),  # unit 1 in its notice period; unit 6 listed
        date(2025, 3, 2),  # unit 3's listing decision in force but annulled since; unit 1 listed
        date(2025, 6, 2),  # unit 1 repaired; person 101's B2 in its notice period, his ban in force
        date(2025, 9, 1),  # unit 1 listed again (repair revoked); unit 2's B4 inferred, waiting
        date(2025, 10, 19),  # unit 2 decided, the day before the decision's start
        date(2025, 10, 20),  # unit 2 listed from the decision's start
        date(2026, 7, 1),  # person 102's ban lifted (CF_YXQ 2026-06-30, inclusive)
        date(2027, 3, 8),  # after AS_OF: unit 1's management period ran out
    ]
    assert len({d for d in days if d in changes or d + timedelta(days=1) in changes}) == len(days)
    compared = 0
    for day in days:
        pol = policy_for(day)
        run_rules(warehouse, day, pol, SALT, departments=departments())
        full_run = answers(
            rows(warehouse, "SELECT * FROM rules.blacklist"), rows(warehouse, "SELECT * FROM rules.restrictions")
        )
        warehouse.register("listing_tl", listing_tl)
        warehouse.register("restriction_tl", restriction_tl)
        timeline = answers(
            rows(warehouse, valid_on("listing_tl", day)), rows(warehouse, valid_on("restriction_tl", day))
        )
        assert timeline == full_run, day
        compared += len(full_run)
    assert compared > 50  # subjects × days
