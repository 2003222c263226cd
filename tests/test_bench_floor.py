"""The floor of bench/rules.py (bench/rules_floor.sql) answers what the rules engine answers.

One hand-written warehouse (rules_fixtures: landing → staging → subjects → rules), run as
bench/rules.py runs the engine (no sources file: every department of kind `other`), holds a case of
each rule the floor follows since listing decisions came in (issue 13): an inferred B4 that awaits
its authority's decision (`pending`), one a written decision lists on its own dates, a B1 whose
decision starts it later than the notice period would (so it is not yet expired; of its two
decisions the later stands), a decision dated after as_of (not yet counted), an annulled
decision, a decision that matches no computed entry, a repair counted from the decided start, a
person's decision, and an A1 accident with another penalised unit and a penalised person. The
floor then runs on the same warehouse, and its list and credit scores must equal the engine's on
what bench/rules.py compares.
"""

from __future__ import annotations

from datetime import date

import pytest
from rules_fixtures import (
    accident,
    build_warehouse,
    credit_action,
    enterprise,
    id_number,
    listing_decision,
    penalty,
    person_penalty,
    uscc,
)

from bench.rules import AGREEMENT_SQL, FLOOR_SQL, statements

AS_OF = date(2026, 11, 22)
SALT = "test-salt"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from safecredit.policy import policy_for
    from safecredit.rules import prepare_params

    b4_inferred = penalty(1, 1, "2025-09-01", AQ_QJ="特别严重")
    b4_decided = penalty(2, 2, "2025-09-01", AQ_QJ="特别严重")
    b1_late = penalty(3, 3, "2023-09-01", AQ_WFDM="UNLICENSED_OPERATION")  # counted end 2026-09: decided later
    annulled = penalty(4, 4, "2025-01-06", AQ_WFDM="UNLICENSED_OPERATION")
    annulled_decision = listing_decision(4, uscc(4), annulled["CF_WSH"], "B1", "2025-02-10")
    unmatched = penalty(5, 5, "2025-03-03")  # an ordinary penalty: the decision lists it anyway
    repaired = penalty(6, 6, "2024-01-08", AQ_WFDM="UNLICENSED_OPERATION")
    person = person_penalty(7, 107, "2025-05-06", AQ_WFDM="AGENCY_FRAUD", AQ_QJ="严重")
    acc = accident(1, 8, "2025-04-01", deaths=12, grade="重大")
    a1 = {"AQ_WFDM": "ACCIDENT_LIABILITY", "AQ_SGBH": acc["SG_BH"]}
    data = {
        "yjj": {
            "enterprises": [enterprise(i) for i in range(1, 10)],
            "accidents": [acc],
            "penalties": [
                b4_inferred,
                b4_decided,
                b1_late,
                annulled,
                unmatched,
                repaired,
                person,
                penalty(8, 8, "2025-06-02", **a1),  # the accident's unit: unit + principal
                penalty(9, 9, "2025-06-02", **a1),  # another unit: listed, its principal not
                person_penalty(10, 110, "2025-06-02", **a1),  # a person penalised for it
            ],
            "credit_actions": [
                # 12 months after the decided start (2024-06-03), not after the counted one
                credit_action(1, "信用修复", uscc(6), repaired["CF_WSH"], "2025-06-10"),
            ],
            "listing_decisions": [
                listing_decision(
                    2, uscc(2), b4_decided["CF_WSH"], "B4", "2025-10-15", MD_QSRQ="2025-10-20", MD_JZRQ="2028-10-20"
                ),
                listing_decision(
                    3, uscc(3), b1_late["CF_WSH"], "B1", "2024-03-01", MD_QSRQ="2024-03-04", MD_JZRQ="2027-03-04"
                ),
                annulled_decision,
                listing_decision(
                    40, uscc(4), None, None, "2025-06-02", MD_LX="撤销列入", MD_YWSH=annulled_decision["MD_WSH"]
                ),
                listing_decision(5, uscc(5), unmatched["CF_WSH"], "B4", "2025-04-01"),
                listing_decision(
                    6, uscc(6), repaired["CF_WSH"], "B1", "2024-05-30", MD_QSRQ="2024-06-03", MD_JZRQ="2027-06-03"
                ),
                listing_decision(7, id_number(107), person["CF_WSH"], "B2", "2025-05-20", MD_DXLX="个人"),
                # a second decision for the B1 of unit 3: the later one stands
                listing_decision(
                    30, uscc(3), b1_late["CF_WSH"], "B1", "2024-04-01", MD_QSRQ="2024-04-02", MD_JZRQ="2027-04-02"
                ),
                # dated after as_of: not yet known to a run at as_of, the B4 of unit 1 stays inferred
                listing_decision(1, uscc(1), b4_inferred["CF_WSH"], "B4", "2026-12-01"),
            ],
        }
    }
    con = build_warehouse(tmp_path_factory.mktemp("floor"), data, AS_OF, salt=SALT, kinds={})
    con.execute("CREATE SCHEMA IF NOT EXISTS floor")
    prepare_params(con, AS_OF, policy_for(AS_OF), SALT)
    for _label, st in statements(con, FLOOR_SQL.read_text(encoding="utf-8")):
        con.execute(st)
    yield con
    con.close()


def rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_the_floor_lists_what_the_engine_lists(warehouse):
    listed = "SELECT entry_id, subject_id, ground, role, authority_code, decision_no, status FROM {} ORDER BY ALL"
    engine = rows(warehouse, listed.format("rules.blacklist"))
    assert rows(warehouse, listed.format("floor.blacklist")) == engine
    by_ground = {(g, r, s) for _, _, g, r, _, _, s in engine}
    # every case is there, with the status the rules give it (rules.md §3)
    assert ("B4", "penalised unit", "pending") in by_ground  # inferred B4: awaits the decision
    assert ("B4", "decided unit", "listed") in by_ground  # a decision matching no computed entry
    assert ("A1", "other penalised unit", "listed") in by_ground
    assert ("A1", "penalised person", "listed") in by_ground
    assert ("B2", "penalised person", "listed") in by_ground
    assert {s for _, _, _, _, _, _, s in engine} >= {"pending", "listed", "revoked", "repaired"}
    a = dict(zip(("engine", "floor", "agree"), rows(warehouse, AGREEMENT_SQL["blacklist"])[0][:3]))
    assert a["engine"] == a["floor"] == a["agree"] == len(engine)


def test_the_floor_takes_the_decided_dates(warehouse):
    sql = "SELECT entry_id, start_date, end_date FROM {} WHERE subject_type = 'unit' ORDER BY ALL"
    assert rows(warehouse, sql.format("floor.blacklist")) == rows(warehouse, sql.format("rules.blacklist"))
    start, end = rows(
        warehouse,
        f"SELECT start_date, end_date FROM floor.blacklist WHERE subject_id = '{uscc(3)}' AND ground = 'B1'",
    )[0]
    assert (start, end) == (date(2024, 4, 2), date(2027, 4, 2))


def test_the_floor_scores_what_the_engine_scores(warehouse):
    sql = "SELECT uscc, score, grade FROM {} ORDER BY ALL"
    engine = rows(warehouse, sql.format("rules.credit_scores"))
    assert rows(warehouse, sql.format("floor.credit_scores")) == engine
    grade = dict((u, g) for u, _, g in engine)
    assert grade[uscc(1)] != "D"  # an inferred B4 is not on the list: no forced D
    assert grade[uscc(2)] == "D"  # decided: listed
