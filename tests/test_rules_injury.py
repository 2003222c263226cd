"""rules/65_injury_insurance.sql: 工伤保险 floating-rate inputs and the suggested step (rules.md §7a)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from rules_fixtures import accident, build_warehouse, enterprise, penalty, uscc
from test_rules_restrictions import rows

AS_OF = date(2026, 11, 22)

COAL, METAL, BUSINESS, SOFTWARE, UNKNOWN = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    data = {
        "yjj": {
            "enterprises": [
                enterprise(COAL, QY_HYDM="B0610"),  # 煤炭开采和洗选: class 8
                enterprise(METAL, QY_HYDM="C3311"),  # 金属制品: class 4
                enterprise(BUSINESS, QY_HYDM="F5211"),  # 零售: class 2, and 商贸 is in 11号令's scope
                enterprise(SOFTWARE, QY_HYDM="I6510", QY_BZHDJ="一级"),  # 软件: class 1, floats up only
                enterprise(UNKNOWN, QY_HYDM="X9999"),
            ],
            "accidents": [
                accident(1, METAL, "2025-03-10", deaths=1),
                accident(2, METAL, "2026-02-01", deaths=0),
                accident(3, COAL, "2023-11-01", deaths=2),  # before the 3-year window
            ],
            "penalties": [penalty(1, BUSINESS, "2026-01-05", AQ_WFDM="UNLICENSED_OPERATION")],  # B1: listed
        }
    }
    c = build_warehouse(tmp_path_factory.mktemp("injury"), data, as_of=AS_OF)
    yield c
    c.close()


def factor(con, subject: int) -> dict:
    (found,) = rows(con, "SELECT * FROM rules.injury_insurance_factors WHERE uscc = ?", uscc(subject))
    return found


def recompute(con, worksheet: dict) -> tuple[int, int, Decimal]:
    """The step, raw sum and rate from the worksheet alone and the policy's step table."""
    raw = sum(r["delta"] for r in worksheet["rules"] if r["met"])
    step = max(worksheet["min_step"], min(worksheet["max_step"], raw))
    multiplier = con.execute(
        "SELECT CAST(multiplier AS DECIMAL(8, 4)) FROM policy_injury_steps WHERE step = ?", [step]
    ).fetchone()[0]
    return raw, step, round(worksheet["base_rate_percent"] * multiplier, 4)


@pytest.mark.parametrize("subject", [COAL, METAL, BUSINESS, SOFTWARE, UNKNOWN])
def test_worksheet_reproduces_its_step(con, subject):
    f = factor(con, subject)
    w = f["worksheet"]
    raw, step, rate = recompute(con, w)
    assert (w["raw_step"], w["step"], f["step"]) == (raw, step, step)
    assert w["multiplier"] == f["multiplier"] and f["suggested_rate_percent"] == rate
    assert [r["code"] for r in w["rules"]] == [
        "LISTED",
        "FATAL_ACCIDENT",
        "REPEATED_ACCIDENTS",
        "CREDIT_GRADE",
        "NO_ACCIDENT",
        "STANDARDIZATION",
    ]
    assert all(r["basis"] for r in w["rules"]) and w["class_basis"].startswith("人社部发〔2015〕71号")


def met(f: dict) -> set[str]:
    return {r["code"] for r in f["worksheet"]["rules"] if r["met"]}


def test_clean_coal_mine_floats_down_one_step(con):
    f = factor(con, COAL)  # its fatal accident of 2023 is outside the 3 years
    assert (f["division"], f["injury_class"], f["base_rate_percent"]) == ("06", 8, Decimal("1.9"))
    assert (f["accidents"], f["deaths"], met(f)) == (0, 0, {"NO_ACCIDENT"})
    assert (f["step"], f["multiplier"], f["suggested_rate_percent"]) == (-1, Decimal("0.8"), Decimal("1.52"))


def test_accidents_and_deaths_float_up(con):
    f = factor(con, METAL)
    assert (f["injury_class"], f["accidents"], f["deaths"]) == (4, 2, 1)
    assert met(f) == {"FATAL_ACCIDENT", "REPEATED_ACCIDENTS"}
    assert (f["step"], f["suggested_rate_percent"]) == (2, Decimal("1.35"))
    assert [a["accident_no"] for a in f["worksheet"]["accident_items"]] == ["331202-2025-0001", "331202-2026-0002"]


def test_listed_unit_capped_at_the_top_step(con):
    f = factor(con, BUSINESS)
    assert f["listed"] and f["credit_grade"] == "D" and f["worksheet"]["listed_entry_id"]
    assert met(f) == {"LISTED", "CREDIT_GRADE", "NO_ACCIDENT"}
    assert (f["worksheet"]["raw_step"], f["step"], f["suggested_rate_percent"]) == (2, 2, Decimal("0.6"))


def test_class_one_floats_up_only(con):
    f = factor(con, SOFTWARE)  # 一级 and no accidents: −2 by the rules, but 一类 has no step below 0
    assert (f["injury_class"], f["worksheet"]["raw_step"], f["worksheet"]["min_step"]) == (1, -2, 0)
    assert (f["step"], f["suggested_rate_percent"]) == (0, Decimal("0.2"))


def test_unknown_industry_is_flagged_and_takes_the_default_class(con):
    f = factor(con, UNKNOWN)
    assert f["unclassified"] and f["injury_class"] == 4 and f["worksheet"]["unclassified"]


def test_one_row_per_registry_unit_and_a_documented_feed(con):
    from safecredit.publish import FEEDS

    assert con.execute("SELECT count(*), count(DISTINCT uscc) FROM rules.injury_insurance_factors").fetchone() == (5, 5)
    spec = FEEDS["injury_insurance_factors"]
    assert spec.scope == "premium:read" and spec.id_columns == ("uscc",)
    cols = [d[0] for d in con.execute("SELECT * FROM rules.injury_insurance_factors LIMIT 0").description]
    # the worksheet is published apart (injury_insurance_worksheets, issue 10 §6)
    assert [c for c in cols if c not in ("as_of", "worksheet")] == list(spec.columns)
