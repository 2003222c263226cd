"""rules/55_incentives.sql: the 守信激励 catalogue answered for units that qualify (rules.md §4, §6)."""

from __future__ import annotations

from datetime import date

import pytest
from rules_fixtures import build_warehouse, enterprise, penalty, uscc
from test_rules_restrictions import rows

AS_OF = date(2026, 11, 22)
QUALIFIES, PENALISED, NO_LEVEL = 1, 2, 3
NOT_CHECKED = ["PUBLIC_COMMITMENT", "NO_OCCUPATIONAL_DISEASE", "NOT_PUNISHED_OTHER_SECTORS"]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    data = {
        "yjj": {
            "enterprises": [
                enterprise(QUALIFIES, QY_BZHDJ="一级"),
                enterprise(PENALISED, QY_BZHDJ="一级"),
                enterprise(NO_LEVEL),
            ],
            "penalties": [penalty(1, PENALISED, "2025-02-03")],
        }
    }
    c = build_warehouse(tmp_path_factory.mktemp("incentives"), data, as_of=AS_OF)
    yield c
    c.close()


def answer(con, subject: int) -> dict:
    (found,) = rows(con, "SELECT * FROM rules.incentives WHERE uscc = ?", uscc(subject))
    return found


def catalogue(con) -> list[dict]:
    return rows(con, "SELECT * FROM policy_incentives")


def test_catalogue_cites_a_basis_for_every_incentive(con):
    rows = catalogue(con)
    codes = {r["incentive"] for r in rows}
    assert {"green_channel", "fewer_inspections", "honours_priority", "premium_down", "injury_rate_down"} <= codes
    for r in rows:
        assert r["name"] and r["measure"] and r["department"] and r["basis"], r
        assert r["unconfirmed"] is None or r["note"], r  # an unconfirmed basis says what is unconfirmed
    assert "人社部发〔2015〕71号" in next(r["basis"] for r in rows if r["incentive"] == "injury_rate_down")


def test_a_qualifying_unit_is_answered_the_catalogue(con):
    a = answer(con, QUALIFIES)
    assert a["eligible"] and a["conditions_not_met"] == []
    assert a["conditions_not_checked"] == NOT_CHECKED  # reported, not silently passed
    assert [i["incentive"] for i in a["incentives"]] == [r["incentive"] for r in catalogue(con)]
    green = a["incentives"][0]
    assert green["basis"].startswith("国发〔2016〕33号") and green["unconfirmed"]
    statuses = {c["condition"]: c["status"] for c in a["conditions"]}
    assert statuses["STANDARDIZATION"] == statuses["NO_SAFETY_PENALTY"] == "met"


def test_a_unit_that_does_not_qualify_gets_none_and_is_told_why(con):
    a = answer(con, PENALISED)  # a safety penalty within 3 years
    assert not a["eligible"] and a["incentives"] == [] and a["conditions_not_met"] == ["NO_SAFETY_PENALTY"]
    b = answer(con, NO_LEVEL)  # no 标准化 一级
    assert not b["eligible"] and b["conditions_not_met"] == ["STANDARDIZATION"]


def test_eligibility_is_the_credit_rules_own(con):
    assert con.execute(
        "SELECT count(*) FROM rules.incentives i JOIN rules.credit_scores c USING (uscc) "
        "WHERE i.eligible IS DISTINCT FROM c.incentive_eligible OR i.conditions <> c.incentive_conditions"
    ).fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM rules.incentives").fetchone()[0] == 3
