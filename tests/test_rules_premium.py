"""Safety liability insurance premium factor (rules.md §7; rules/60_premium_factors.sql).

One warehouse of hand-written records, one unit per situation, built once for the module; policy
changes (cap, 重庆 top of range, the experience model) re-run the rules on it. Default policy
(contracts/policy/default/premium.yaml): floating, −10% no accident in 12 months, +10/20/30% per
一般/较大/重大+ accident, +10% while listed, cap ±30%, valid 12 months.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rules_fixtures import accident, build_warehouse, enterprise, penalty, uscc  # noqa: E402
from test_rules_credit import PolicyCopy, unit_row  # noqa: E402

AS_OF = date(2026, 11, 22)
IN = "2026-06-01"

ENTERPRISES = {i: {} for i in range(1, 13)}
ENTERPRISES[9] = {"QY_GWHY": "矿山", "QY_CYRS": "200"}

ACC = [
    accident(2, 2, IN),
    accident(3, 3, IN, deaths=3, grade="较大"),
    accident(4, 4, "2026-02-01", deaths=12, grade="重大"),
    accident(61, 6, "2026-01-05"),
    accident(62, 6, "2026-02-05"),
    accident(63, 6, "2026-03-05", deaths=4),
    accident(7, 7, "2025-11-22"),  # exactly 12 months before as_of: outside
    accident(8, 8, "2025-11-23"),  # first day of the window
    accident(9, 9, "2025-03-01", deaths=1, SG_ZSRS="2", SG_JJSS="120"),  # outside 12, inside 36 months
    accident(10, 10, "2026-11-25"),  # after as_of
    accident(11, 11, IN, SG_ZR="非责任事故"),  # every accident counts for the insurer
]
PENALTIES = [
    penalty(4, 4, "2026-05-01", AQ_WFDM="ACCIDENT_LIABILITY", AQ_SGBH=ACC[2]["SG_BH"], CF_NR_FK="150"),  # A1
    penalty(5, 5, "2026-03-02", AQ_WFDM="UNLICENSED_OPERATION"),  # B1
]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    data = {
        "yjj": {
            "enterprises": [enterprise(i, **over) for i, over in ENTERPRISES.items()],
            "penalties": PENALTIES,
            "accidents": ACC,
        }
    }
    c = build_warehouse(tmp_path_factory.mktemp("premium"), data, AS_OF)
    yield c
    c.close()


def factor(con, i) -> dict:
    return unit_row(con, "premium_factors", i)


def components(con, i) -> list[tuple]:
    return con.execute(
        "SELECT adjustment, status, value, source_record_id FROM rules.premium_factor_components "
        "WHERE uscc = ? ORDER BY adjustment, source_record_id",
        [uscc(i)],
    ).fetchall()


SKIPPED = [
    ("AWARD_MUNICIPAL", "skipped", None, None),
    ("AWARD_PROVINCIAL", "skipped", None, None),
    ("CLAIMS", "skipped", None, None),
]


@pytest.mark.parametrize(
    "i, expected, uncapped",
    [
        (1, "0.90", "0.90"),  # no events: −10% no accident
        (2, "1.10", "1.10"),  # one 一般
        (3, "1.20", "1.20"),  # one 较大
        (4, "1.30", "1.40"),  # 重大 +30% and listed (A1) +10%: capped
        (5, "1.00", "1.00"),  # listed (B1), no accident: −10% + 10%
        (6, "1.30", "1.40"),  # 一般 + 一般 + 较大: capped
        (7, "0.90", "0.90"),  # accident exactly 12 months back: outside
        (8, "1.10", "1.10"),  # accident on the first day of the window
        (9, "0.90", "0.90"),
        (10, "0.90", "0.90"),  # accident after as_of
        (11, "1.10", "1.10"),  # non-liability accident
    ],
)
def test_floating_factors(con, i, expected, uncapped):
    f = factor(con, i)
    assert (f["factor"], f["uncapped_factor"]) == (Decimal(expected), Decimal(uncapped))
    assert (f["model"], f["cap_low"], f["cap_high"]) == ("floating", Decimal("0.7"), Decimal("1.3"))
    assert (f["valid_from"], f["valid_to"]) == (AS_OF, date(2027, 11, 21))


def test_components_cite_records_and_show_skips(con):
    assert components(con, 1) == sorted(SKIPPED + [("NO_ACCIDENT", "applied", Decimal("-0.1"), None)])
    assert components(con, 6) == sorted(
        SKIPPED
        + [
            ("ACCIDENT_GENERAL", "applied", Decimal("0.1"), "acc-61"),
            ("ACCIDENT_GENERAL", "applied", Decimal("0.1"), "acc-62"),
            ("ACCIDENT_LARGER", "applied", Decimal("0.2"), "acc-63"),
        ]
    )
    assert components(con, 5) == sorted(
        SKIPPED + [("LISTED", "applied", Decimal("0.1"), "pen-5"), ("NO_ACCIDENT", "applied", Decimal("-0.1"), None)]
    )
    row = con.execute(
        "SELECT source_department, source_dataset, decision_no_or_accident_no, event_date, reason "
        "FROM rules.premium_factor_components WHERE uscc = ? AND adjustment = 'ACCIDENT_LARGER'",
        [uscc(3)],
    ).fetchone()
    assert row == ("yjj", "accidents", ACC[1]["SG_BH"], date(2026, 6, 1), None)
    reason = con.execute(
        "SELECT reason FROM rules.premium_factor_components WHERE uscc = ? AND adjustment = 'CLAIMS'", [uscc(1)]
    ).fetchone()[0]
    assert "no source dataset" in reason and "claims" in reason


def test_worksheet_reproduces_the_factor(con):
    for i in range(1, len(ENTERPRISES) + 1):
        f = factor(con, i)
        ws = f["worksheet"]
        assert ws["experience"] is None and ws["model"] == "floating"
        fl = ws["floating"]
        applied = [a for a in fl["adjustments"] if a["status"] == "applied"]
        assert 1 + sum(a["total"] for a in applied) == f["uncapped_factor"] == 1 + fl["adjustments_sum"]
        assert f["factor"] == max(ws["cap_low"], min(ws["cap_high"], f["uncapped_factor"]))
        assert (fl["window_start"], fl["window_end"]) == (date(2025, 11, 23), AS_OF)
    adj = {a["code"]: a for a in factor(con, 6)["worksheet"]["floating"]["adjustments"]}
    assert [a for a in adj] == [
        "AWARD_MUNICIPAL",
        "AWARD_PROVINCIAL",
        "NO_ACCIDENT",
        "ACCIDENT_GENERAL",
        "ACCIDENT_LARGER",
        "ACCIDENT_MAJOR",
        "LISTED",
        "CLAIMS",
    ]
    assert (adj["ACCIDENT_GENERAL"]["count"], adj["ACCIDENT_GENERAL"]["total"]) == (2, Decimal("0.2"))
    assert adj["NO_ACCIDENT"]["status"] == "not_applicable" and adj["CLAIMS"]["status"] == "skipped"
    assert adj["AWARD_PROVINCIAL"]["value"] == Decimal("-0.1") and "awards" in adj["AWARD_PROVINCIAL"]["reason"]
    ws4 = factor(con, 4)["worksheet"]
    assert ws4["listed"] is True and ws4["listed_entry_id"] and ws4["listed_rule"] == "surcharge"


def test_mandatory_flag_and_one_row_per_unit(con):
    assert factor(con, 9)["mandatory"] is True and factor(con, 1)["mandatory"] is False
    n, units = con.execute("SELECT count(*), count(DISTINCT uscc) FROM rules.premium_factors").fetchone()
    assert n == units == len(ENTERPRISES)


def test_deterministic(con):
    from safecredit.policy import policy_for
    from safecredit.rules import run_rules

    def rows():
        return (
            con.execute("SELECT * FROM rules.premium_factors ORDER BY uscc").fetchall(),
            con.execute("SELECT * FROM rules.premium_factor_components ORDER BY ALL").fetchall(),
        )

    before = rows()
    run_rules(con, AS_OF, policy_for(AS_OF), "test-salt")
    assert rows() == before


@pytest.fixture
def policy_copy(tmp_path, monkeypatch, con):
    pc = PolicyCopy(tmp_path / "policy", monkeypatch)
    default_version = factor(con, 1)["policy_version"]
    yield pc
    assert pc.rerun(con, AS_OF, restore=True) == default_version  # back to the default for other tests


def test_cap_and_top_of_range_are_policy(con, policy_copy):
    default_version = factor(con, 1)["policy_version"]

    def edit(doc):
        doc["premium"]["cap"] = {"low": -0.05, "high": 0.2}
        doc["premium"]["listed_rule"] = "top_of_range"
        doc["premium"]["valid_months"] = 6

    policy_copy.edit("premium", edit)
    version = policy_copy.rerun(con, AS_OF)
    assert version != default_version and factor(con, 1)["policy_version"] == version
    assert factor(con, 1)["factor"] == Decimal("0.95")  # −10% clamped to −5%
    assert factor(con, 6)["factor"] == Decimal("1.2")
    f5 = factor(con, 5)
    assert (f5["factor"], f5["uncapped_factor"]) == (Decimal("1.2"), Decimal("0.9"))  # listed: top of the range
    assert ("LISTED", "applied", None, "pen-5") in components(con, 5)
    assert factor(con, 1)["valid_to"] == date(2027, 5, 21)


def test_experience_model(con, policy_copy):
    policy_copy.edit("premium", lambda doc: doc["premium"].update(model="experience"))
    policy_copy.rerun(con, AS_OF)
    f9 = factor(con, 9)
    ex = f9["worksheet"]["experience"]
    assert f9["model"] == "experience" and f9["worksheet"]["floating"] is None
    # mine, 200 employees × 0.01 万/employee-year × 3 years; one death, 2 serious injuries, 120万 loss
    assert (ex["employees"], ex["base_rate_wan"], ex["expected_losses"]) == (200, Decimal("0.01"), Decimal("6"))
    assert ex["actual_losses"] == 40 + 2 * 10 + Decimal("0.1") * 120 == Decimal("72")
    assert (ex["actual_primary"], ex["actual_excess"]) == (Decimal("10"), Decimal("62"))
    assert ex["expected_primary"] == Decimal("1.8") and ex["expected_excess"] == Decimal("4.2")
    assert ex["weight"] == round(Decimal(6) / Decimal(56), 4) and ex["ballast"] == Decimal("8")
    w, b = ex["weight"], ex["ballast"]
    mod = (ex["actual_primary"] + w * ex["actual_excess"] + (1 - w) * ex["expected_excess"] + b) / (
        ex["expected_losses"] + b
    )
    assert ex["mod"] == round(mod, 4) == f9["uncapped_factor"]
    assert f9["factor"] == Decimal("1.3")  # capped
    assert components(con, 9) == [("LOSS", "applied", Decimal("72"), "acc-9")]
    # the losses behind A, accident by accident
    assert [(x["accident_no"], x["loss"], x["primary_loss"]) for x in ex["losses"]] == [
        (ACC[8]["SG_BH"], Decimal("72"), Decimal("10"))
    ]
    # a small unit without losses stays near 1.0: 50 employees × 0.001 × 3 = 0.15 万 expected
    small = factor(con, 1)
    assert Decimal("0.99") < small["factor"] < Decimal("1")
    assert components(con, 1) == []
    # listed: the surcharge is added to the mod
    f5 = factor(con, 5)
    assert f5["uncapped_factor"] == f5["worksheet"]["experience"]["mod"] + Decimal("0.1")
