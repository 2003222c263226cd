"""The serious-dishonesty list, ground by ground, with the boundaries of rules.md §3.

Each test writes department records by hand, runs them through landing → staging → subjects →
rules/*.sql, and reads `rules.blacklist`. Default policy: 5 working days' notice (calendar from
policy), 3-year management period, repair after 12 months.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from rules_fixtures import (
    accident,
    build_warehouse,
    credit_action,
    enterprise,
    id_number,
    penalty,
    person_penalty,
    revoke,
    ts,
    uscc,
)

from safecredit.codes import make_org_code, make_uscc

AS_OF = date(2026, 11, 22)


def entries(con, **where) -> list[dict]:
    cols = [d[0] for d in con.execute("SELECT * FROM rules.blacklist LIMIT 0").description]
    rows = [
        dict(zip(cols, r))
        for r in con.execute("SELECT * FROM rules.blacklist ORDER BY ground, subject_type, entry_id").fetchall()
    ]
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def grounds_of(con) -> set[tuple]:
    return {(r["ground"], r["subject_type"], r["role"]) for r in entries(con)}


def wh(tmp_path, penalties=(), accidents=(), actions=(), ents=None, as_of=AS_OF, **kw):
    data = {
        "yjj": {
            "enterprises": ents if ents is not None else [enterprise(i) for i in range(1, 6)],
            "penalties": list(penalties),
            "accidents": list(accidents),
            "credit_actions": list(actions),
        }
    }
    return build_warehouse(tmp_path, data, as_of, **kw)


def liability(n, subject, acc_no, decision_date, **over):
    return penalty(
        n, subject, decision_date, **{"AQ_WFDM": "ACCIDENT_LIABILITY", "AQ_SGBH": acc_no, "CF_NR_FK": "150", **over}
    )


# -- A1 ------------------------------------------------------------------------------------------------


def test_a1_major_liability_accident_lists_unit_and_principal(tmp_path):
    acc = accident(1, 1, "2025-05-01", deaths=12, grade="重大")
    con = wh(tmp_path, [liability(1, 1, acc["SG_BH"], "2025-09-01")], [acc])
    assert grounds_of(con) == {("A1", "unit", "penalised unit"), ("A1", "person", "principal")}
    unit = entries(con, subject_type="unit")[0]
    assert unit["subject_id"] == uscc(1) and unit["status"] == "listed"
    person = entries(con, subject_type="person")[0]
    assert person["subject_code"] == "*" * 14 + id_number(1)[-4:]


@pytest.mark.parametrize("change", ["revoked", "regraded"])
def test_a1_entries_turn_revoked_when_the_accident_is_revoked_or_regraded_below_the_ground(tmp_path, change):
    """rules.md §3: the entry keeps its id and history and turns `revoked`; it never vanishes."""
    acc = accident(1, 1, "2025-05-01", deaths=12, grade="重大")
    later = (
        revoke(acc, "2025-12-01")
        if change == "revoked"
        else {**acc, "updated_at": ts("2025-12-01"), "SG_SWRS": "2", "SG_DJ": "一般"}
    )
    pen = liability(1, 1, acc["SG_BH"], "2025-09-01")
    before = entries(wh(tmp_path / "before", [pen], [acc]))
    con = wh(tmp_path / "after", [pen], [acc, later])
    after = entries(con)
    assert {e["entry_id"] for e in after} == {e["entry_id"] for e in before} and len(after) == 2
    assert {(e["ground"], e["status"], e["revoked_date"]) for e in after} == {("A1", "revoked", date(2025, 12, 1))}
    hist = con.execute(
        "SELECT status FROM rules.entry_history WHERE entry_id = ? ORDER BY event_date, ord", [after[0]["entry_id"]]
    ).fetchall()
    assert [h for (h,) in hist] == ["pending", "listed", "revoked"]


@pytest.mark.parametrize("change", ["revoked", "regraded"])
def test_a2_entries_turn_revoked_when_either_accident_is_revoked_or_regraded(tmp_path, change):
    a1 = accident(1, 2, "2025-01-10", deaths=4, grade="较大")
    a2 = accident(2, 2, "2025-06-10", deaths=5, grade="较大")
    pens = [liability(1, 2, a1["SG_BH"], "2025-04-01"), liability(2, 2, a2["SG_BH"], "2025-09-01")]
    later = (
        revoke(a1, "2025-12-01")
        if change == "revoked"
        else {**a1, "updated_at": ts("2025-12-01"), "SG_SWRS": "1", "SG_DJ": "一般"}
    )
    assert {e["status"] for e in entries(wh(tmp_path / "before", pens, [a1, a2]), ground="A2")} == {"listed"}
    after = entries(wh(tmp_path / "after", pens, [a1, a2, later]), ground="A2")
    assert len(after) == 2 and {(e["status"], e["revoked_date"]) for e in after} == {("revoked", date(2025, 12, 1))}


ZJJ = make_uscc("1", "1", "331200", make_org_code("00000002"))  # 江城市住房和城乡建设局


def test_a1_lists_every_other_unit_and_person_penalised_for_the_accident_under_their_own_penalty(tmp_path):
    """rules.md §3 A1: the accident's unit + principal, and every other unit and person penalised with
    ACCIDENT_LIABILITY for the same accident, each under the regime of its own penalty; their
    principals are not listed through A1, nor is the accident unit's principal listed twice."""
    acc = accident(1, 1, "2025-05-01", deaths=12, grade="重大")
    own = liability(1, 1, acc["SG_BH"], "2025-09-01")
    contractor = liability(2, 2, acc["SG_BH"], "2025-09-02", CF_YJ="《中华人民共和国安全生产法》第一百一十四条")
    engineer = person_penalty(3, 77, "2025-09-03", AQ_WFDM="ACCIDENT_LIABILITY", AQ_SGBH=acc["SG_BH"])
    principal = person_penalty(4, 1, "2025-09-03", AQ_WFDM="ACCIDENT_LIABILITY", AQ_SGBH=acc["SG_BH"])
    builder = liability(
        5,
        3,
        acc["SG_BH"],
        "2025-09-04",
        CF_CFJG="江城市住房和城乡建设局",
        CF_CFJGDM=ZJJ,
        CF_SJLY="江城市住房和城乡建设局",
        CF_SJLYDM=ZJJ,
        CF_WSH="江建罚〔2025〕5号",
    )
    ents = [enterprise(i) for i in (1, 2)] + [enterprise(3, QY_HYDM="E4710")]  # 3: a builder, outside aq11
    data = {
        "yjj": {"enterprises": ents, "penalties": [own, contractor, engineer, principal], "accidents": [acc]},
        "zjj": {"penalties": [builder]},
    }
    con = build_warehouse(tmp_path, data, AS_OF)
    got = {(e["decision_no"], e["subject_type"], e["role"], e["regime"]): e for e in entries(con)}
    assert set(got) == {
        (own["CF_WSH"], "unit", "penalised unit", "aq11"),
        (own["CF_WSH"], "person", "principal", "aq11"),
        (contractor["CF_WSH"], "unit", "other penalised unit", "aq11"),
        (engineer["CF_WSH"], "person", "penalised person", "aq11"),
        (builder["CF_WSH"], "unit", "other penalised unit", "industry"),
    }
    assert {e["ground"] for e in got.values()} == {"A1"} and {e["status"] for e in got.values()} == {"listed"}
    assert got[(own["CF_WSH"], "person", "principal", "aq11")]["subject_code"].endswith(id_number(1)[-4:])
    assert got[(engineer["CF_WSH"], "person", "penalised person", "aq11")]["subject_code"].endswith(id_number(77)[-4:])
    # each rests on its own penalty: its authority, its basis, its own legal ground
    other = got[(contractor["CF_WSH"], "unit", "other penalised unit", "aq11")]
    assert other["subject_id"] == uscc(2) and other["penalty_basis"] == contractor["CF_YJ"]
    assert "应急管理部令第11号" in other["basis"]
    built = got[(builder["CF_WSH"], "unit", "other penalised unit", "industry")]
    assert built["subject_id"] == uscc(3) and built["authority_code"] == ZJJ
    assert "住房城乡建设" in built["basis"] and "11号" not in built["basis"]
    # no principal of the other units (负责人2, 负责人3) through A1
    assert not entries(con, subject_code="*" * 14 + id_number(2)[-4:])
    assert not entries(con, subject_code="*" * 14 + id_number(3)[-4:])


@pytest.mark.parametrize("change, revoked", [("revoked", True), ("not liable", True), ("regraded", False)])
def test_a3_follows_its_accident_revocation_or_correction_below_the_ground(tmp_path, change, revoked):
    """rules.md §3: A3 (Art. 114 ¶2) rests on a liability accident of any grade. Revoking the accident or
    correcting it to 非责任事故 turns its entries `revoked` with history, as A1/A2; a regrading (重大 →
    一般) leaves Art. 114 ¶2 standing, so A3 stays listed."""
    acc = accident(1, 3, "2025-05-01", deaths=12, grade="重大")
    later = {
        "revoked": revoke(acc, "2025-12-01"),
        "not liable": {**acc, "updated_at": ts("2025-12-01"), "SG_ZR": "非责任事故"},
        "regraded": {**acc, "updated_at": ts("2025-12-01"), "SG_SWRS": "2", "SG_DJ": "一般"},
    }[change]
    pen = liability(1, 3, acc["SG_BH"], "2025-09-01", AQ_QJ="特别严重", CF_NR_FK="600")
    before = entries(wh(tmp_path / "before", [pen], [acc]), ground="A3")
    con = wh(tmp_path / "after", [pen], [acc, later])
    after = entries(con, ground="A3")
    assert {e["status"] for e in before} == {"listed"} and len(before) == 2
    assert {e["entry_id"] for e in after} == {e["entry_id"] for e in before}
    if not revoked:
        assert {e["status"] for e in after} == {"listed"}
        return
    assert {(e["status"], e["revoked_date"]) for e in after} == {("revoked", date(2025, 12, 1))}
    hist = con.execute(
        "SELECT status FROM rules.entry_history WHERE entry_id = ? ORDER BY event_date, ord", [after[0]["entry_id"]]
    ).fetchall()
    assert [h for (h,) in hist] == ["pending", "listed", "revoked"]
    assert not con.execute(
        "SELECT count(*) FROM rules.restrictions WHERE entry_id = ?", [after[0]["entry_id"]]
    ).fetchone()[0]


def test_a1_not_for_a_non_liability_accident(tmp_path):
    acc = accident(1, 1, "2025-05-01", deaths=12, grade="重大", SG_ZR="非责任事故")
    con = wh(tmp_path, [liability(1, 1, acc["SG_BH"], "2025-09-01")], [acc])
    assert entries(con) == []


# -- A2 and the grade from the numbers --------------------------------------------------------------------


@pytest.mark.parametrize("second, listed", [("2025-03-15", True), ("2025-03-16", False)])
def test_a2_two_larger_accidents_within_twelve_calendar_months_inclusive(tmp_path, second, listed):
    a1 = accident(1, 2, "2024-03-15", deaths=4, grade="较大")
    a2 = accident(2, 2, second, deaths=5, grade="较大")
    pens = [liability(1, 2, a1["SG_BH"], "2024-08-01"), liability(2, 2, a2["SG_BH"], "2025-08-01")]
    con = wh(tmp_path, pens, [a1, a2])
    a2_entries = entries(con, ground="A2")
    if listed:
        # triggered by the penalty for the later accident only
        assert {e["decision_no"] for e in a2_entries} == {pens[1]["CF_WSH"]}
        assert {e["subject_type"] for e in a2_entries} == {"unit", "person"}
    else:
        assert a2_entries == []


def test_three_deaths_reported_as_ordinary_count_as_larger(tmp_path):
    a1 = accident(1, 2, "2025-01-10", deaths=3, grade="一般")  # the numbers say 较大
    a2 = accident(2, 2, "2025-06-10", deaths=3, grade="一般")
    pens = [liability(1, 2, a1["SG_BH"], "2025-04-01"), liability(2, 2, a2["SG_BH"], "2025-09-01")]
    con = wh(tmp_path, pens, [a1, a2])
    assert [e["decision_no"] for e in entries(con, ground="A2", subject_type="unit")] == [pens[1]["CF_WSH"]]
    flagged = con.execute(
        "SELECT count(*) FROM quality.violations WHERE rule_id = 'ACCIDENTS-GRADE-BELOW-CASUALTIES'"
    ).fetchone()[0]
    assert flagged == 2


# -- A3, A4, A5 -------------------------------------------------------------------------------------------


def test_a3_art_114_para_2_fine(tmp_path):
    acc = accident(1, 3, "2025-05-01", deaths=1)
    con = wh(tmp_path, [liability(1, 3, acc["SG_BH"], "2025-09-01", AQ_QJ="特别严重", CF_NR_FK="300")], [acc])
    assert grounds_of(con) == {("A3", "unit", "penalised unit"), ("A3", "person", "principal")}


def test_a4_concealment_lists_unit_and_the_penalised_persons_not_the_principal_by_default(tmp_path):
    unit_pen = penalty(1, 3, "2025-09-01", AQ_WFDM="ACCIDENT_CONCEALED")
    person_pen = penalty(
        2,
        3,
        "2025-09-01",
        AQ_WFDM="ACCIDENT_CONCEALED",
        AQ_CFDX="个人",
        CF_XDR_LB="自然人",
        CF_XDR_MC="张三",
        CF_XDR_SHXYM=None,
        CF_XDR_ZJHM=id_number(77),
    )
    con = wh(tmp_path, [unit_pen, person_pen])
    assert grounds_of(con) == {("A4", "unit", "penalised unit"), ("A4", "person", "penalised person")}


def test_late_reporting_alone_is_not_a_ground(tmp_path):
    acc = accident(1, 3, "2025-05-01", deaths=1, SG_BGQK="迟报")
    con = wh(tmp_path, [penalty(1, 3, "2025-09-01", AQ_SGBH=acc["SG_BH"], CF_WFXW="事故迟报")], [acc])
    assert entries(con) == []


def test_a5_lists_the_principal_only(tmp_path):
    con = wh(
        tmp_path,
        [penalty(1, 4, "2025-09-01", AQ_WFDM="PRINCIPAL_ABSCONDED", AQ_ZYFZR="李四", AQ_ZYFZR_ZJHM=id_number(40))],
    )
    assert grounds_of(con) == {("A5", "person", "principal")}
    assert entries(con)[0]["name"] == "李四"


# -- who: the principal at the time ---------------------------------------------------------------------


def test_a_successor_principal_is_not_listed_for_a_predecessors_act(tmp_path):
    """rules.md §3: the registry version in force on the decision date, not the registry of today."""
    ents = [enterprise(1), enterprise(1, updated_at=ts("2025-10-01"), QY_ZYFZR="继任者", QY_ZYFZR_ZJHM=id_number(99))]
    con = wh(tmp_path, [penalty(1, 1, "2025-09-01", AQ_WFDM="UNLICENSED_OPERATION")], ents=ents)
    person = entries(con, subject_type="person")
    assert [(p["name"], p["subject_code"][-4:]) for p in person] == [("负责人1", id_number(1)[-4:])]
    assert con.execute("SELECT count(*) FROM rules.principal_gaps").fetchone()[0] == 0


def test_no_principal_known_at_the_time_is_reported_and_nobody_listed_in_their_place(tmp_path):
    ents = [enterprise(1, updated_at=ts("2025-10-01"))]  # first sent after the decision
    pen = penalty(1, 1, "2025-09-01", AQ_WFDM="UNLICENSED_OPERATION")
    con = wh(tmp_path, [pen], ents=ents)
    assert grounds_of(con) == {("B1", "unit", "penalised unit")}
    gaps = con.execute("SELECT decision_no, ground, message_zh, message_en FROM rules.principal_gaps").fetchall()
    assert [(g[0], g[1]) for g in gaps] == [(pen["CF_WSH"], "B1")] and "主要负责人" in gaps[0][2]


# -- B grounds --------------------------------------------------------------------------------------------


def test_b1_unlicensed_operation(tmp_path):
    con = wh(tmp_path, [penalty(1, 1, "2025-09-01", AQ_WFDM="UNLICENSED_OPERATION")])
    assert grounds_of(con) == {("B1", "unit", "penalised unit"), ("B1", "person", "principal")}


def test_b2_agency_and_its_staff(tmp_path):
    pens = [
        penalty(1, 5, "2025-09-01", AQ_WFDM="AGENCY_FRAUD"),
        penalty(
            2,
            5,
            "2025-09-01",
            AQ_WFDM="AGENCY_FRAUD",
            AQ_CFDX="个人",
            CF_XDR_LB="自然人",
            CF_XDR_MC="王五",
            CF_XDR_SHXYM=None,
            CF_XDR_ZJHM=id_number(55),
        ),
    ]
    con = wh(tmp_path, pens)
    assert grounds_of(con) == {("B2", "unit", "penalised unit"), ("B2", "person", "penalised person")}


def test_b3_refused_execution(tmp_path):
    con = wh(tmp_path, [penalty(1, 1, "2025-09-01", AQ_WFDM="REFUSED_EXECUTION")])
    assert grounds_of(con) == {("B3", "unit", "penalised unit"), ("B3", "person", "principal")}


@pytest.mark.parametrize(
    "later, status", [(None, "listed"), ("强制执行", "listed"), ("已执行", "revoked"), ("未执行", "revoked")]
)
def test_b3_from_a_penalty_version_that_says_refused(tmp_path, later, status):
    """rules.md §3: day 0 is the Asia/Shanghai date of the first version saying 拒不执行; 强制执行
    later keeps the entry, 已执行 or 未执行 later is a correction and the entry turns revoked."""
    pen = penalty(1, 1, "2025-03-03", AQ_ZXZT="未执行")
    refused = {**pen, "updated_at": "2025-06-09T17:30:00Z", "AQ_ZXZT": "拒不执行"}  # 2025-06-10 01:30 in 上海
    again = {**pen, "updated_at": ts("2025-07-01"), "AQ_ZXZT": "拒不执行"}
    versions = [pen, refused, again] + ([{**pen, "updated_at": ts("2025-09-01"), "AQ_ZXZT": later}] if later else [])
    con = wh(tmp_path, versions)
    assert grounds_of(con) == {("B3", "unit", "penalised unit"), ("B3", "person", "principal")}
    unit = entries(con, subject_type="unit")[0]
    # 10 June (Tue) is day 0: 11, 12, 13, 16, 17 June are working days 1–5
    assert (unit["decision_no"], unit["start_date"], unit["status"]) == (pen["CF_WSH"], date(2025, 6, 17), status)
    assert unit["revoked_date"] == (date(2025, 9, 1) if status == "revoked" else None)


def test_b3_refused_execution_penalty_that_also_says_refused_is_one_entry_dated_by_its_decision(tmp_path):
    pen = penalty(1, 1, "2025-09-01", AQ_WFDM="REFUSED_EXECUTION", AQ_ZXZT="未执行")
    con = wh(tmp_path, [pen, {**pen, "updated_at": ts("2025-10-09"), "AQ_ZXZT": "拒不执行"}])
    units = entries(con, subject_type="unit")
    assert [(e["ground"], e["start_date"]) for e in units] == [("B3", date(2025, 9, 8))]


@pytest.mark.parametrize("severity, listed", [("特别严重", True), ("严重", False)])
def test_b4_other_only_when_most_serious(tmp_path, severity, listed):
    con = wh(tmp_path, [penalty(1, 1, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ=severity)])
    assert bool(entries(con, ground="B4")) == listed


# -- dates and statuses -------------------------------------------------------------------------------------


def test_notice_period_counts_working_days_of_the_policy_calendar(tmp_path):
    # 2024-09-30 (Mon); 1–7 Oct National Day; 12 Oct (Sat) is a make-up working day
    con = wh(tmp_path, [penalty(1, 1, "2024-09-30", AQ_WFDM="UNLICENSED_OPERATION")], as_of=date(2024, 10, 11))
    e = entries(con, subject_type="unit")[0]
    assert e["start_date"] == date(2024, 10, 12) and e["status"] == "pending"


def test_a_2023_notice_period_skips_that_years_holidays_and_counts_its_make_up_days(tmp_path):
    # 2023-09-27 (Wed): 28 Sep is working day 1; 29 Sep–6 Oct 中秋/国庆; 7 and 8 Oct (Sat, Sun) are
    # make-up working days 2 and 3 (国务院办公厅 2023 notice); 9 Oct is 4, 10 Oct is 5
    con = wh(tmp_path, [penalty(1, 1, "2023-09-27", AQ_WFDM="UNLICENSED_OPERATION")], as_of=date(2023, 10, 9))
    e = entries(con, subject_type="unit")[0]
    assert e["start_date"] == date(2023, 10, 10) and e["status"] == "pending"


@pytest.mark.parametrize(
    "decided, as_of, year", [("2031-03-03", date(2031, 6, 1), 2031), ("2026-12-28", date(2027, 3, 1), 2027)]
)
def test_a_notice_period_reaching_an_unpublished_year_is_reported_and_not_listed(tmp_path, decided, as_of, year):
    """Never Monday–Friday silently (rules.md §3): the entry waits, and the year is named."""
    con = wh(tmp_path, [penalty(1, 1, decided, AQ_WFDM="UNLICENSED_OPERATION")], as_of=as_of)
    es = entries(con)
    assert es and {(e["status"], e["start_date"], e["calendar_gap_year"]) for e in es} == {("pending", None, year)}
    gaps = con.execute("SELECT entry_id, year, message_zh, message_en FROM rules.calendar_gaps").fetchall()
    assert sorted(g[0] for g in gaps) == sorted(e["entry_id"] for e in es)
    assert all(g[1] == year and str(year) in g[2] and str(year) in g[3] for g in gaps)
    assert con.execute("SELECT count(*) FROM rules.restrictions").fetchone()[0] == 0


def test_the_policy_overrides_a_day_and_may_publish_a_year_the_package_lacks():
    from safecredit.policy import Policy
    from safecredit.workdays import published

    pol = Policy(
        "t",
        "1",
        date(1900, 1, 1),
        {
            "calendar": {
                "published_years": [2027],
                "holidays": [["2027-01-01", "2027-01-02"]],
                "makeup_workdays": ["2025-10-08"],
            }
        },
    )
    years, days = published(pol)
    assert years == list(range(2004, 2028))
    assert {d: w for d, w in days}[date(2025, 10, 8)] is True  # a 国庆 day in the package, overridden
    assert {d: w for d, w in days}[date(2027, 1, 1)] is False


def test_end_is_three_calendar_years_exclusive_29_february(tmp_path):
    # decided 2024-02-22 → 5 working days → starts 2024-02-29 → ends 2027-02-28 (exclusive)
    pen = penalty(1, 1, "2024-02-22", AQ_WFDM="UNLICENSED_OPERATION")
    con = wh(tmp_path / "a", [pen], as_of=date(2027, 2, 27))
    e = entries(con, subject_type="unit")[0]
    assert (e["start_date"], e["end_date"], e["status"]) == (date(2024, 2, 29), date(2027, 2, 28), "listed")
    con = wh(tmp_path / "b", [pen], as_of=date(2027, 2, 28))
    assert entries(con, subject_type="unit")[0]["status"] == "expired"


@pytest.mark.parametrize("repair_on, status", [("2026-03-09", "listed"), ("2026-03-10", "repaired")])
def test_repair_at_eleven_vs_twelve_months(tmp_path, repair_on, status):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")  # starts 2025-03-10
    act = credit_action(1, "信用修复", uscc(1), pen["CF_WSH"], repair_on)
    con = wh(tmp_path, [pen], actions=[act])
    assert entries(con, subject_type="unit")[0]["status"] == status
    rejected = con.execute("SELECT rule_id FROM rules.rejected_credit_actions").fetchall()
    assert (rejected == [("LISTING-REPAIR-TOO-EARLY",)]) == (status == "listed")


def test_revoked_repair_restores_the_listing_with_its_original_end(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    acts = [
        credit_action(1, "信用修复", uscc(1), pen["CF_WSH"], "2026-04-01"),
        credit_action(2, "撤销修复", uscc(1), pen["CF_WSH"], "2026-06-01"),
    ]
    con = wh(tmp_path, [pen], actions=acts)
    e = entries(con, subject_type="unit")[0]
    assert e["status"] == "listed" and e["end_date"] == date(2028, 3, 10)
    hist = con.execute(
        "SELECT status FROM rules.entry_history WHERE entry_id = ? ORDER BY event_date, ord", [e["entry_id"]]
    ).fetchall()
    assert [h for (h,) in hist] == ["pending", "listed", "repaired", "listed"]


def test_upheld_objection_means_the_listing_never_stood(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    con = wh(tmp_path, [pen], actions=[credit_action(1, "异议成立", uscc(1), pen["CF_WSH"], "2025-03-06")])
    assert entries(con, subject_type="unit")[0]["status"] == "objection_upheld"


def test_revoked_trigger_keeps_the_entry_with_status_revoked(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    con = wh(tmp_path, [pen, revoke(pen, "2025-12-01")])
    e = entries(con, subject_type="unit")
    assert len(e) == 1 and e[0]["status"] == "revoked" and e[0]["revoked_date"] == date(2025, 12, 1)


def test_corrected_so_it_no_longer_qualifies_is_revoked(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="OTHER", AQ_QJ="特别严重")
    fix = {**pen, "updated_at": ts("2025-05-01"), "AQ_QJ": "一般"}
    con = wh(tmp_path, [pen, fix])
    assert [e["status"] for e in entries(con, subject_type="unit")] == ["revoked"]


def test_entry_ids_are_stable_across_runs(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    pens = [pen, {**pen, "updated_at": ts("2025-04-01"), "CF_NR_FK": "9"}]  # corrected: two versions
    a = [e["entry_id"] for e in entries(wh(tmp_path / "a", pens))]
    b = [e["entry_id"] for e in entries(wh(tmp_path / "b", pens, as_of=date(2026, 1, 1)))]
    assert sorted(a) == sorted(b) and len(a) == len(set(a)) == 2  # one row per entry, unit and principal


# -- two time axes --------------------------------------------------------------------------------------------


def test_known_at_reproduces_what_an_earlier_run_knew(tmp_path):
    late = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION", updated_at=ts("2025-10-01"))
    data = [late]
    before = wh(tmp_path / "before", data, as_of=date(2025, 6, 1), known_at=date(2025, 6, 1))
    assert entries(before) == []
    after = wh(tmp_path / "after", data, as_of=date(2025, 6, 1), known_at=date(2025, 10, 2))
    assert {e["status"] for e in entries(after)} == {"listed"}


def test_as_of_alone_applies_a_later_revocation_backwards_known_at_does_not(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    data = [pen, revoke(pen, "2026-01-10")]
    now = wh(tmp_path / "now", data, as_of=date(2025, 12, 1))
    assert {e["status"] for e in entries(now)} == {"revoked"}
    then = wh(tmp_path / "then", data, as_of=date(2025, 12, 1), known_at=date(2025, 12, 1))
    assert {e["status"] for e in entries(then)} == {"listed"}


# -- policy as data -------------------------------------------------------------------------------------------


def _policy_copy(tmp_path, edit) -> Path:
    import shutil

    from safecredit.config import CONTRACTS_DIR

    root = tmp_path / "policy"
    shutil.copytree(CONTRACTS_DIR / "policy", root)
    edit(root)
    return root


def _with_policy_dir(monkeypatch, root):
    from safecredit.policy import load_policies

    monkeypatch.setenv("SAFECREDIT_POLICY_DIR", str(root))
    load_policies.cache_clear()


def test_same_inputs_and_policy_give_identical_rows(tmp_path):
    pens = [
        penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION"),
        penalty(2, 2, "2025-04-03", AQ_WFDM="REFUSED_EXECUTION"),
    ]
    a = wh(tmp_path / "a", pens).execute("SELECT * FROM rules.blacklist ORDER BY entry_id").fetchall()
    b = wh(tmp_path / "b", pens).execute("SELECT * FROM rules.blacklist ORDER BY entry_id").fetchall()
    assert a == b and a


def test_a_changed_policy_value_changes_the_list_and_its_version_without_code(tmp_path, monkeypatch):
    from safecredit.policy import load_policies, policy_for

    pens = [penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")]
    before = entries(wh(tmp_path / "a", pens), subject_type="unit")[0]

    def zero_notice(root):
        p = root / "default" / "listing.yaml"
        p.write_text(
            p.read_text(encoding="utf-8").replace("notice_working_days: 5", "notice_working_days: 0"), encoding="utf-8"
        )

    _with_policy_dir(monkeypatch, _policy_copy(tmp_path, zero_notice))
    try:
        after = entries(wh(tmp_path / "b", pens, policy=policy_for(AS_OF)), subject_type="unit")[0]
    finally:
        monkeypatch.delenv("SAFECREDIT_POLICY_DIR")
        load_policies.cache_clear()
    assert before["start_date"] == date(2025, 3, 10) and after["start_date"] == date(2025, 3, 3)
    assert after["policy_version"] != before["policy_version"]
    assert after["entry_id"] == before["entry_id"]


def _under_older_policy(tmp_path, monkeypatch, version: str, topic: str, edit):
    """A warehouse at 2024-06-01 of two unit decisions, 2023-05-04 and 2024-05-06, with a copy of
    the default policy (`version`, its `topic`.yaml text passed through `edit`) in force before
    2023-10-01 and the default from then on. Returns (con, entries by decision number, the two
    decision numbers)."""
    import shutil

    from safecredit.policy import load_policies, policy_for

    def older(root):
        shutil.copytree(root / "default", root / "pre2023")
        p = root / "pre2023" / f"{topic}.yaml"
        p.write_text(edit(p.read_text(encoding="utf-8")), encoding="utf-8")
        (root / "pre2023" / "policy.yaml").write_text(
            f'policy: older\nversion: "{version}"\neffective_from: 1900-01-01\n', encoding="utf-8"
        )
        q = root / "default" / "policy.yaml"
        q.write_text(
            q.read_text(encoding="utf-8").replace("effective_from: 1900-01-01", "effective_from: 2023-10-01"),
            encoding="utf-8",
        )

    _with_policy_dir(monkeypatch, _policy_copy(tmp_path, older))
    try:
        pens = [
            penalty(1, 1, "2023-05-04", AQ_WFDM="UNLICENSED_OPERATION"),
            penalty(2, 2, "2024-05-06", AQ_WFDM="UNLICENSED_OPERATION"),
        ]
        con = wh(tmp_path / "w", pens, as_of=date(2024, 6, 1), policy=policy_for(date(2024, 6, 1)))
    finally:
        monkeypatch.delenv("SAFECREDIT_POLICY_DIR")
        load_policies.cache_clear()
    units = {e["decision_no"]: e for e in entries(con, subject_type="unit")}
    return con, units, (pens[0]["CF_WSH"], pens[1]["CF_WSH"])


def test_the_policy_in_force_on_the_decision_date_applies(tmp_path, monkeypatch):
    """An older regime (1-year listing) configured for decisions before 2023-10-01."""
    _, units, (old_no, new_no) = _under_older_policy(
        tmp_path, monkeypatch, "2017.1", "listing", lambda t: t.replace("management_years: 3", "management_years: 1")
    )
    old, new = units[old_no], units[new_no]
    assert (old["end_date"] - old["start_date"]).days in (365, 366) and old["status"] == "expired"
    assert old["policy_version"].startswith("2017.1+")
    assert new["end_date"].year - new["start_date"].year == 3 and new["status"] == "listed"
    assert new["policy_version"].startswith("2026.1+")


def test_measures_follow_the_policy_in_force_on_the_decision_date(tmp_path, monkeypatch):
    """A listing brings the measures of the policy in force on its decision date, not the run's:
    an older policy folder without 国有土地出让 (state_land) for decisions before 2023-10-01."""
    con, units, (old, new) = _under_older_policy(
        tmp_path,
        monkeypatch,
        "2023.0",
        "measures",
        lambda t: "\n".join(ln for ln in t.splitlines() if "matter: state_land," not in ln),
    )
    matters = {
        (decision_no, matter): version
        for decision_no, matter, version in con.execute(
            "SELECT decision_no, matter, policy_version FROM rules.restriction_timeline WHERE subject_type = 'unit'"
        ).fetchall()
    }
    assert units[old]["status"] == units[new]["status"] == "listed"
    assert (old, "public_bidding") in matters and (old, "state_land") not in matters
    assert (new, "public_bidding") in matters and (new, "state_land") in matters
    assert {v for (d, _), v in matters.items() if d == old} == {units[old]["policy_version"]}
    assert units[old]["policy_version"].startswith("2023.0+")
    assert {v for (d, _), v in matters.items() if d == new} == {units[new]["policy_version"]}
    assert units[new]["policy_version"].startswith("2026.1+")


def test_a_warehouse_of_an_earlier_release_upgrades_in_place(tmp_path):
    """subjects.penalties and subjects.penalty_versions were tables before they became views: the
    next run replaces them, same rows."""
    from safecredit.policy import policy_for
    from safecredit.rules import run_rules, run_subjects

    con = wh(tmp_path, [penalty(1, 1, "2026-03-02", AQ_WFDM="UNLICENSED_OPERATION")])
    before = con.execute("SELECT * FROM subjects.penalties ORDER BY ALL").fetchall()
    versions = con.execute("SELECT * FROM subjects.penalty_versions ORDER BY ALL").fetchall()
    con.execute("CREATE TABLE old_versions AS SELECT * FROM subjects.penalty_versions")
    con.execute("DROP VIEW subjects.penalties")
    con.execute("DROP VIEW subjects.penalty_versions")
    con.execute("CREATE TABLE subjects.penalty_versions AS SELECT * FROM old_versions")
    con.execute("CREATE TABLE subjects.penalties AS SELECT * FROM subjects.penalty_versions WHERE is_latest")
    run_subjects(con, AS_OF, policy_for(AS_OF), "test-salt")
    run_rules(con, AS_OF, policy_for(AS_OF), "test-salt")
    kinds = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'subjects' "
        "AND table_name IN ('penalties', 'penalty_versions') ORDER BY 1"
    ).fetchall()
    assert kinds == [("penalties", "VIEW"), ("penalty_versions", "VIEW")] and before
    assert con.execute("SELECT * FROM subjects.penalties ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT * FROM subjects.penalty_versions ORDER BY ALL").fetchall() == versions
    assert grounds_of(con) == {("B1", "unit", "penalised unit"), ("B1", "person", "principal")}


def test_a_policy_without_its_listing_periods_is_refused_with_a_clear_message():
    from safecredit.errors import ConfigError
    from safecredit.policy import Policy, policy_for
    from safecredit.rules import listing_periods

    assert listing_periods(policy_for(AS_OF)) == (5, 3, 12)
    broken = Policy("test", "0.1", date(2020, 1, 1), {"listing": {"notice_working_days": 5}})
    with pytest.raises(ConfigError) as err:
        listing_periods(broken)
    assert "listing.management_years" in err.value.en and "listing.yaml" in err.value.zh


def test_grounds_are_switched_and_b4_severity_set_by_policy(tmp_path, monkeypatch):
    """rules.md §3 marks B3 and B4's 情节 configurable: a policy that turns B3 off and lowers B4 to
    严重 changes the list with no code change."""
    from safecredit.policy import load_policies, policy_for

    pens = [
        penalty(1, 1, "2025-09-01", AQ_WFDM="REFUSED_EXECUTION"),
        penalty(2, 2, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ="严重"),
    ]
    assert {g for g, *_ in grounds_of(wh(tmp_path / "a", pens))} == {"B3"}

    def switch(root):
        p = root / "default" / "listing.yaml"
        text = p.read_text(encoding="utf-8")
        text = text.replace(
            "B3: {name: 有能力履行而拒不履行、逃避执行行政处罚, enabled: true}",
            "B3: {name: 有能力履行而拒不履行、逃避执行行政处罚, enabled: false}",
        )
        text = text.replace("enabled: true, severity: 特别严重}", "enabled: true, severity: 严重}")
        p.write_text(text, encoding="utf-8")

    _with_policy_dir(monkeypatch, _policy_copy(tmp_path, switch))
    try:
        con = wh(tmp_path / "b", pens, policy=policy_for(AS_OF))
    finally:
        monkeypatch.delenv("SAFECREDIT_POLICY_DIR")
        load_policies.cache_clear()
    assert {g for g, *_ in grounds_of(con)} == {"B4"}


def test_a_decision_reported_twice_keeps_the_deciders_own_report_and_ranks_only_the_duplicates(tmp_path):
    """Of two reports of one decision the deciding department's own wins, even sent later; a
    decision reported once is rank 1 of 1 (only duplicated decisions are ranked, issue 10 §3)."""
    own = penalty(1, 1, "2026-03-02", updated_at=ts("2026-03-05"))
    relayed = penalty(
        1,
        1,
        "2026-03-02",
        record_id="pen-relayed",
        CF_SJLY="江城市市场监督管理局",
        CF_SJLYDM=make_uscc("1", "1", "331200", make_org_code("00000002")),
    )
    single = penalty(2, 2, "2026-03-02")
    data = {
        "yjj": {"enterprises": [enterprise(i) for i in range(1, 4)], "penalties": [own, single]},
        "scj": {"penalties": [relayed]},
    }
    con = build_warehouse(tmp_path, data, AS_OF)
    ranks = con.execute(
        "SELECT department, record_id, report_rank, reports FROM subjects.penalty_decisions ORDER BY ALL"
    ).fetchall()
    assert ranks == [("scj", "pen-relayed", 2, 2), ("yjj", "pen-1", 1, 2), ("yjj", "pen-2", 1, 1)]
    dups = con.execute("SELECT department, record_id, report_rank FROM subjects.duplicate_decisions").fetchall()
    assert dups == [("yjj", "pen-1", 1), ("scj", "pen-relayed", 2)]
    kept = con.execute("SELECT department, record_id FROM subjects.penalties ORDER BY ALL").fetchall()
    assert kept == [("yjj", "pen-1"), ("yjj", "pen-2")]
