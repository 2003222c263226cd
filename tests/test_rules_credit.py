"""Enterprise credit score and grade (rules.md §6; rules/50_credit_scores.sql).

One warehouse of hand-written records, one unit per situation, built once for the module; policy
changes re-run the rules on it. Default policy (contracts/policy/default/credit.yaml): base 75 (无)
/ 90 / 80 / 70 by 标准化 level; −2 a warning, −8 an ordinary penalty, −12 a severe one, −10 a 一般
liability accident, −30 a 较大 one, −5 for ≥2 penalties; +5 for 24 clean months; A ≥ 85, B ≥ 70,
C ≥ 60; windows of 12 months before as_of (as_of − 12 months itself no longer counts).

Run `python tests/test_rules_credit.py --calibrate` for the grade shares on generated data.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from rules_fixtures import accident, build_warehouse, enterprise, penalty, revoke, uscc  # noqa: E402

AS_OF = date(2026, 11, 22)
IN = "2026-06-01"  # inside every window
OLD = "2025-03-01"  # outside 12 months, inside 24 and 36


def fine(n, subject, day, **over):
    return penalty(n, subject, day, **over)


def warning(n, subject, day, **over):
    return penalty(n, subject, day, **{"CF_CFLB": "警告", "CF_NR_FK": None, **over})


def liability(n, subject, acc, day, **over):
    return penalty(
        n, subject, day, **{"AQ_WFDM": "ACCIDENT_LIABILITY", "AQ_SGBH": acc["SG_BH"], "CF_NR_FK": "20", **over}
    )


ENTERPRISES = {i: {} for i in range(1, 25)}
ENTERPRISES.update(
    {
        4: {"QY_BZHDJ": "二级"},
        5: {"QY_BZHDJ": "一级"},
        6: {"QY_BZHDJ": "三级"},
        19: {"QY_CLRQ": "2025-06-01", "updated_at": "2025-06-02T10:00:00+08:00"},
        20: {"QY_BZHDJ": "一级"},
    }
)

ACC = {
    9: accident(9, 9, "2026-03-01", deaths=3, grade="较大"),
    101: accident(101, 10, "2026-01-10"),
    102: accident(102, 10, "2026-07-10"),
    11: accident(11, 11, IN),
    12: accident(12, 12, IN, SG_BGQK="瞒报"),
    18: accident(18, 18, IN, SG_ZR="非责任事故"),
    20: accident(20, 20, OLD, deaths=1),
}

PENALTIES = [
    warning(2, 2, IN),
    fine(3, 3, IN),
    warning(6, 6, IN),
    fine(71, 7, IN, CF_CFLB="罚款;吊销许可证件"),
    fine(72, 7, "2026-08-03"),
    fine(8, 8, IN, AQ_WFDM="HIDDEN_DANGER_UNFIXED"),
    liability(11, 11, ACC[11], "2026-07-01"),
    fine(13, 13, "2026-03-02", AQ_WFDM="UNLICENSED_OPERATION"),
    fine(14, 14, "2025-11-22"),  # exactly 12 months before as_of: no longer counts
    fine(15, 15, "2025-11-23"),  # the first day that counts
    fine(16, 16, IN),  # revoked below: never made
    fine(17, 17, "2026-11-25"),  # after as_of
    warning(21, 21, IN, CF_NR_FK="0"),  # a warning with a zero fine is still a warning
    fine(22, 22, IN, CF_NR_FK="150"),  # ≥ 100 万: severe
    fine(23, 23, IN, AQ_QJ="特别严重"),  # 情节特别严重: severe
    fine(24, 24, "2026-11-19", AQ_WFDM="UNLICENSED_OPERATION"),  # B1 whose notice period still runs
]
REVOKES = [revoke(next(p for p in PENALTIES if p["record_id"] == "pen-16"), "2026-07-01")]


def _data() -> dict:
    return {
        "yjj": {
            "enterprises": [enterprise(i, **over) for i, over in ENTERPRISES.items()],
            "penalties": PENALTIES + REVOKES,
            "accidents": list(ACC.values()),
        }
    }


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_warehouse(tmp_path_factory.mktemp("credit"), _data(), AS_OF)
    yield c
    c.close()


def unit_row(con, table: str, i: int) -> dict:
    """The row of unit `i` in rules.<table>, as a dict."""
    cur = con.execute(f"SELECT * FROM rules.{table} WHERE uscc = ?", [uscc(i)])
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def score(con, i) -> dict:
    return unit_row(con, "credit_scores", i)


def components(con, i) -> list[tuple]:
    return con.execute(
        "SELECT component, points, source_record_id FROM rules.credit_score_components "
        "WHERE uscc = ? ORDER BY kind, component, source_record_id",
        [uscc(i)],
    ).fetchall()


@pytest.mark.parametrize(
    "i, points, grade",
    [
        (1, 80, "B"),  # ordinary unit, no events: 75 + 5 clean
        (2, 73, "B"),  # one warning: stays B
        (3, 67, "C"),  # one ordinary fine
        (4, 85, "A"),  # 二级 + clean
        (5, 95, "A"),  # 一级 + clean
        (6, 68, "C"),  # 三级 with a warning
        (7, 50, "D"),  # severe (−12) + ordinary (−8) + repeat (−5): D by score, not forced
        (14, 75, "B"),  # penalty exactly 12 months back: no deduction, but no clean bonus either
        (15, 67, "C"),  # penalty on the first day of the window
        (16, 80, "B"),  # revoked penalty counts as never made
        (17, 80, "B"),  # decided after as_of
        (18, 80, "B"),  # non-liability accident: no deduction, clean record kept
        (19, 75, "B"),  # too young for the clean-record bonus
        (20, 90, "A"),  # 一级, fatal 一般 accident 21 months ago: no deduction, no bonus
        (21, 73, "B"),
        (22, 63, "C"),
        (11, 65, "C"),  # 一般 liability accident −10; its liability penalty is not deducted again
    ],
)
def test_scores_and_grades(con, i, points, grade):
    s = score(con, i)
    assert (s["score"], s["grade"], s["forced_d"]) == (Decimal(points), grade, False)


@pytest.mark.parametrize(
    "i, reasons, points",
    [
        (8, ["HIDDEN_DANGER_UNFIXED"], 67),
        (9, ["MAJOR_ACCIDENT"], 45),
        (10, ["REPEATED_ACCIDENTS"], 55),
        (12, ["CONCEALED_ACCIDENT"], 65),
        (13, ["LISTED"], 67),
    ],
)
def test_forced_d(con, i, reasons, points):
    s = score(con, i)
    assert (s["grade"], s["forced_d"], s["forced_reasons"], s["score"]) == ("D", True, reasons, Decimal(points))


def test_an_inferred_b4_is_not_on_the_list_so_it_forces_no_d(con):
    """情节特别严重 (severe, −12) also grounds B4, but without a listing decision the entry is pending
    (rules.md §3: "on the list" means status listed; an inferred B4 never restricts)."""
    s = score(con, 23)
    assert (s["grade"], s["forced_d"], s["score"]) == ("C", False, Decimal(63))


@pytest.mark.parametrize("i", [23, 24])
def test_a_pending_entry_is_no_dishonesty_for_the_incentive_conditions(con, i):
    """rules.md §3: for the 守信 conditions "on the list" means status `listed`. Neither an inferred
    B4 awaiting its decision (23) nor a B1 whose notice period still runs (24) was ever listed."""
    (status,) = con.execute("SELECT DISTINCT status FROM rules.blacklist WHERE subject_id = ?", [uscc(i)]).fetchone()
    assert status == "pending"
    conditions = {c["condition"]: c["status"] for c in score(con, i)["incentive_conditions"]}
    assert conditions["NO_DISHONESTY"] == "met" and conditions["NO_SAFETY_PENALTY"] == "not_met"


def test_components_cite_their_records(con):
    assert components(con, 1) == [("BASE", 75, "ent-1"), ("CLEAN_RECORD", 5, None)]
    assert components(con, 7) == [
        ("BASE", 75, "ent-7"),
        ("PENALTY_GENERAL", -8, "pen-72"),
        ("PENALTY_SEVERE", -12, "pen-71"),
        ("REPEAT_PENALTIES", -5, None),
    ]
    assert components(con, 11) == [("BASE", 75, "ent-11"), ("ACCIDENT_GENERAL", -10, "acc-11")]
    assert components(con, 10) == [
        ("BASE", 75, "ent-10"),
        ("ACCIDENT_GENERAL", -10, "acc-101"),
        ("ACCIDENT_GENERAL", -10, "acc-102"),
        ("REPEATED_ACCIDENTS", 0, "acc-101"),
        ("REPEATED_ACCIDENTS", 0, "acc-102"),
    ]
    assert components(con, 13) == [("BASE", 75, "ent-13"), ("PENALTY_GENERAL", -8, "pen-13"), ("LISTED", 0, "pen-13")]
    row = con.execute(
        "SELECT source_department, source_dataset, decision_no_or_accident_no, event_date "
        "FROM rules.credit_score_components WHERE uscc = ? AND component = 'ACCIDENT_LARGER'",
        [uscc(9)],
    ).fetchone()
    assert row == ("yjj", "accidents", ACC[9]["SG_BH"], date(2026, 3, 1))
    row = con.execute(
        "SELECT source_dataset, decision_no_or_accident_no FROM rules.credit_score_components "
        "WHERE uscc = ? AND component = 'PENALTY_GENERAL'",
        [uscc(3)],
    ).fetchone()
    assert row == ("penalties", PENALTIES[1]["CF_WSH"])
    s = score(con, 7)
    assert s["component_count"] == 4 and [c["component"] for c in s["components"]] == [
        "BASE",
        "PENALTY_SEVERE",
        "PENALTY_GENERAL",
        "REPEAT_PENALTIES",
    ]
    assert s["components"][1]["source_record_id"] == "pen-71"


def test_every_registry_unit_is_scored_once(con):
    n, units, lo, hi = con.execute(
        "SELECT count(*), count(DISTINCT uscc), min(score), max(score) FROM rules.credit_scores"
    ).fetchone()
    assert n == units == len(ENTERPRISES) and lo >= 0 and hi <= 100
    pv, as_of = con.execute("SELECT DISTINCT policy_version, as_of FROM rules.credit_scores").fetchone()
    assert as_of == AS_OF and pv.startswith("2026.")


def test_incentive_conditions(con):
    s = score(con, 5)
    assert s["incentive_eligible"] is True
    status = {c["condition"]: c["status"] for c in s["incentive_conditions"]}
    assert status == {
        "PUBLIC_COMMITMENT": "not_checked",
        "NO_DISHONESTY": "met",
        "NO_SAFETY_PENALTY": "met",
        "NO_FATAL_ACCIDENT": "met",
        "NO_OCCUPATIONAL_DISEASE": "not_checked",
        "STANDARDIZATION": "met",
        "NOT_PUNISHED_OTHER_SECTORS": "not_checked",
    }
    fatal = {c["condition"]: c["status"] for c in score(con, 20)["incentive_conditions"]}
    assert fatal["NO_FATAL_ACCIDENT"] == "not_met" and score(con, 20)["incentive_eligible"] is False
    listed = {c["condition"]: c["status"] for c in score(con, 13)["incentive_conditions"]}
    assert listed["NO_DISHONESTY"] == "not_met" and listed["NO_SAFETY_PENALTY"] == "not_met"
    assert score(con, 4)["incentive_eligible"] is False  # 二级
    assert con.execute("SELECT count(*) FROM rules.credit_scores WHERE incentive_eligible").fetchone()[0] == 1


def _rows(con) -> list:
    return (
        con.execute("SELECT * FROM rules.credit_scores ORDER BY uscc").fetchall()
        + con.execute("SELECT * FROM rules.credit_score_components ORDER BY ALL").fetchall()
    )


def test_deterministic(con):
    from safecredit.policy import policy_for
    from safecredit.rules import run_rules

    before = _rows(con)
    run_rules(con, AS_OF, policy_for(AS_OF), "test-salt")
    assert _rows(con) == before


# -- policy is data -----------------------------------------------------------------------------------


class PolicyCopy:
    """A writable copy of contracts/policy/default under `root`, made the policy in force through
    SAFECREDIT_POLICY_DIR; `edit(topic, fn)` changes one topic file, `restore()` undoes it all."""

    def __init__(self, root: Path, monkeypatch):
        from safecredit.config import CONTRACTS_DIR

        self.root, self.mp = root, monkeypatch
        shutil.copytree(CONTRACTS_DIR / "policy" / "default", root / "default")
        monkeypatch.setenv("SAFECREDIT_POLICY_DIR", str(root))
        self._reload()

    @staticmethod
    def _reload() -> None:
        from safecredit.policy import load_policies

        load_policies.cache_clear()

    def edit(self, topic: str, fn) -> None:
        f = self.root / "default" / f"{topic}.yaml"
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        fn(doc)
        f.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        self._reload()

    def restore(self) -> None:
        self.mp.delenv("SAFECREDIT_POLICY_DIR", raising=False)
        self._reload()

    def rerun(self, con, as_of: date, restore: bool = False) -> str:
        """Run the rules again under the policy in force; returns its version."""
        from safecredit.policy import policy_for
        from safecredit.rules import run_rules

        if restore:
            self.restore()
        pol = policy_for(as_of)
        run_rules(con, as_of, pol, "test-salt")
        return pol.version


@pytest.fixture
def policy_copy(tmp_path, monkeypatch):
    pc = PolicyCopy(tmp_path / "policy", monkeypatch)
    yield pc
    pc.restore()


def test_a_changed_policy_value_changes_scores_and_version(con, policy_copy):
    default_version = score(con, 1)["policy_version"]

    def edit(doc):
        for row in doc["tables"]["credit_base_scores"]:
            if row["standardization"] == "无":
                row["points"] = 80
        doc["credit"]["window_months"] = 6
        doc["credit"]["forced_d"]["hidden_danger_unfixed"]["enabled"] = False

    policy_copy.edit("credit", edit)
    try:
        version = policy_copy.rerun(con, AS_OF)
        assert version != default_version and score(con, 1)["policy_version"] == version
        assert (score(con, 1)["score"], score(con, 1)["grade"]) == (85, "A")
        assert (score(con, 15)["score"], score(con, 15)["grade"]) == (80, "B")  # outside 6 months now
        assert (score(con, 3)["score"], score(con, 3)["grade"]) == (72, "B")
        assert (score(con, 8)["forced_d"], score(con, 8)["grade"]) == (False, "B")
    finally:  # the module's warehouse goes back to the default policy for the other tests
        assert policy_copy.rerun(con, AS_OF, restore=True) == default_version
    assert (score(con, 1)["score"], score(con, 8)["grade"]) == (80, "D")


# -- calibration against 河北 2025 (rules.md §6) ------------------------------------------------------

HEBEI_2025 = {"A": 4.24, "B": 92.05, "C": 3.18, "D": 0.53}
CALIBRATION_SEED, CALIBRATION_SCALE = 42, 5000


def grade_shares(con) -> dict[str, float]:
    return {
        g: float(s)
        for g, s in con.execute(
            "SELECT grade, round(100.0 * count(*) / sum(count(*)) OVER (), 2) "
            "FROM rules.credit_scores GROUP BY grade ORDER BY grade"
        ).fetchall()
    }


def test_grade_distribution_matches_hebei_2025(tmp_path):
    """Generated data (seed 42, 5,000 subjects, 2019 → 2026-11-22) through the real staging and
    rules: every grade's share within ±1 point of 河北's 2025 composite grades. With
    HIDDEN_DANGER_UNFIXED at 15% of ordinary penalties (each forces D) D was 2 % and more."""
    from rules_fixtures import build_generated_warehouse

    con, _ = build_generated_warehouse(tmp_path, CALIBRATION_SEED, CALIBRATION_SCALE)
    try:
        shares = grade_shares(con)
    finally:
        con.close()
    off = {g: round(shares.get(g, 0.0) - HEBEI_2025[g], 2) for g in HEBEI_2025}
    assert all(abs(d) <= 1.0 for d in off.values()), f"shares {shares} vs 河北 2025 {HEBEI_2025}: off by {off}"


def calibrate(home: Path, seed: int = CALIBRATION_SEED, scale: int = 20000) -> dict:
    """Print the grade shares and the forcing reasons on a generated data set (any seed, scale)."""
    from rules_fixtures import build_generated_warehouse

    con, meta = build_generated_warehouse(home, seed, scale)
    shares = grade_shares(con)
    forced = con.execute(
        "SELECT reason, count(*) FROM (SELECT unnest(forced_reasons) AS reason "
        "FROM rules.credit_scores) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    units = con.execute("SELECT count(*) FROM rules.credit_scores").fetchone()[0]
    print(f"{units} units, as_of {meta['end']}")
    for g in "ABCD":
        print(f"  {g}: {shares.get(g, 0):6.2f}%   河北 2025: {HEBEI_2025[g]:5.2f}%")
    print(f"  forcing reasons (units may have several): {forced}")
    return shares


if __name__ == "__main__":
    if "--calibrate" in sys.argv:
        import tempfile

        calibrate(Path(tempfile.mkdtemp(prefix="credit-calibration-")))
