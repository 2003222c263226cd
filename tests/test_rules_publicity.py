"""rules/40_penalties_public.sql: publicity regime by date, class, publication window, 公示修复, the 双公示 feed."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from rules_fixtures import AUTHORITY, build_warehouse, credit_action, id_number, penalty, revoke, uscc
from test_rules_restrictions import AS_OF, SALT, mask, person_penalty, rules_at, rules_back, with_policy

from safecredit.policy import policy_for
from safecredit.rules import run_rules

PERSON = 77


# (n, types, fine 万元, person?, expected class) — each decision on its own unit, decided 2026-06-01
# (令第36号). A fine above the summary-procedure ceiling (行政处罚法 Art. 51: 3000 元 for units, 200 元
# for persons) is not 轻微.
CLASS_CASES = [
    (1, "警告", None, False, "轻微"),
    (2, "通报批评", None, False, "轻微"),
    (3, "警告;罚款", "0.3", False, "轻微"),  # at the summary-procedure ceiling
    (4, "警告;罚款", "0.31", False, "一般"),  # above it
    (18, "警告;罚款", "5", False, "一般"),
    (5, "罚款", "99.99", False, "一般"),
    (6, "罚款", "100", False, "严重"),  # 巨额
    (7, "没收违法所得", None, False, "一般"),
    (8, "暂扣许可证件", None, False, "一般"),
    (9, "责令停产停业", None, False, "一般"),
    (10, "吊销许可证件", None, False, "严重"),
    (11, "责令关闭", None, False, "严重"),
    (12, "限制从业", None, False, "严重"),
    (13, "警告;吊销许可证件", None, False, "严重"),  # several types: the longest period wins
    (14, "罚款", "0.02", True, "轻微"),  # persons: 200 元
    (15, "罚款", "0.021", True, "一般"),
    (16, "罚款;没收违法所得;责令关闭", "3", False, "严重"),
    (17, None, None, False, "一般"),  # no 处罚类别 at all: publicity.no_type_class
]


def class_case(n, types, fine, person, _cls) -> dict:
    over = {"CF_CFLB": types, "CF_NR_FK": fine}
    rec = person_penalty(n, PERSON + n, "2026-06-01", **over) if person else penalty(n, 100 + n, "2026-06-01", **over)
    return {k: v for k, v in rec.items() if v is not None}


REVOKED = penalty(30, 30, "2026-03-02", CF_CFLB="吊销许可证件")
# decisions before 2026-04-01 keep 令第58号: one publishable class, 3 months – 3 years, 安全生产 ≥ 1 year
PERFORMED = {"AQ_ZXZT": "已执行"}
SEVERE_REPAIR_EARLY = penalty(31, 31, "2025-12-01", CF_CFLB="吊销许可证件", **PERFORMED)  # repair before the minimum
SEVERE_REPAIR_LATE = penalty(32, 32, "2025-06-01", CF_CFLB="吊销许可证件", **PERFORMED)  # repair after it
ORDINARY_REPAIR = penalty(33, 33, "2026-02-10", CF_CFLB="罚款", CF_NR_FK="10", **PERFORMED)  # repair at 5 months
FUTURE_REPAIR = penalty(34, 34, "2026-01-10", CF_CFLB="罚款", CF_NR_FK="10", **PERFORMED)  # repair after as_of
DEPT_SHORT = penalty(35, 35, "2026-02-10", CF_CFLB="罚款", CF_NR_FK="10", CF_GSJZQ="2026-06-09")
DEPT_18M = penalty(36, 36, "2025-01-15", CF_CFLB="吊销许可证件", CF_GSJZQ="2026-07-14")
DEPT_LONG = penalty(37, 37, "2025-01-15", CF_CFLB="吊销许可证件", CF_GSJZQ="2030-01-01")
ORDINARY = penalty(38, 38, "2025-11-22", CF_CFLB="罚款", CF_NR_FK="8")  # 令第58号: last day 2028-11-21
SEVERE_END = penalty(39, 39, "2023-11-23", CF_CFLB="责令关闭")  # 令第58号, 3 years: last day 2026-11-22
MINOR_DEPT = penalty(40, 40, "2026-10-01", CF_CFLB="警告", CF_NR_FK="0.1", CF_GSJZQ="2026-12-31")
FUTURE = penalty(41, 41, "2026-11-25", CF_CFLB="吊销许可证件")  # decided after as_of
PERSON_SEVERE = person_penalty(
    42,
    PERSON,
    "2026-05-05",
    CF_CFLB="罚款;限制从业",
    CF_NR_FK="3",
    CF_YXQ="2031-05-04",
    CF_SY="违法事实",
    CF_YJ="《安全生产法》第九十四条",
)
UNIT_FULL = penalty(
    43,
    43,
    "2026-04-01",
    CF_CFLB="罚款",
    CF_NR_FK="12.5",
    CF_FRDB="王某",
    CF_FR_ZJLX="身份证",
    CF_FR_ZJHM=id_number(143),
    CF_WFXW="未按规定开展安全培训",
    CF_SY="未对从业人员进行安全生产教育和培训",
    CF_YJ="《安全生产法》第九十七条",
    CF_NR="罚款12.5万元",
    AQ_ZYFZR="李某",
    AQ_ZYFZR_ZJHM=id_number(243),
)

# publicity by date (rules.md §5): each decision keeps the regime in force on its decision date
KEEPS_58 = penalty(50, 50, "2025-06-15", CF_CFLB="罚款", CF_NR_FK="10")  # 令第58号: up to 3 years
LAST_DAY_58 = penalty(51, 51, "2026-03-31", CF_CFLB="罚款", CF_NR_FK="10")
USES_36 = penalty(52, 52, "2026-05-10", CF_CFLB="罚款", CF_NR_FK="10")  # 令第36号: 一般, 1 year
SEVERE_527 = penalty(53, 53, "2020-03-02", CF_CFLB="吊销许可证件", CF_GSJZQ="2020-06-30")  # 严重: min 6 months
BEFORE_527 = penalty(54, 54, "2019-03-01", CF_CFLB="罚款", CF_NR_FK="10")  # older than every regime: the earliest
# the 安全生产 minimum only for 安全生产 penalties: kind `emergency`, or an AQ_WFDM code (rules.md §5)
MARKET_PLAIN = {
    k: v for k, v in penalty(60, 60, "2026-06-01", CF_NR_FK="10", CF_GSJZQ="2026-09-30").items() if k != "AQ_WFDM"
}
MARKET_CODED = penalty(61, 61, "2026-06-01", CF_NR_FK="10", CF_GSJZQ="2026-09-30", AQ_WFDM="OTHER")
EMERGENCY_PLAIN = {
    k: v for k, v in penalty(62, 62, "2026-06-01", CF_NR_FK="10", CF_GSJZQ="2026-09-30").items() if k != "AQ_WFDM"
}
# 公示修复 only once the penalty is performed (AQ_ZXZT 已执行 or 强制执行)
REPAIR_UNPERFORMED = penalty(63, 63, "2025-06-01", CF_CFLB="吊销许可证件", AQ_ZXZT="未执行")
REPAIR_ENFORCED = penalty(64, 64, "2025-06-01", CF_CFLB="吊销许可证件", AQ_ZXZT="强制执行")
REPAIR_NO_STATUS = penalty(65, 65, "2025-06-01", CF_CFLB="吊销许可证件")

REPAIRS = [
    credit_action(1, "公示修复", uscc(31), SEVERE_REPAIR_EARLY["CF_WSH"], "2026-03-01"),
    credit_action(2, "公示修复", uscc(32), SEVERE_REPAIR_LATE["CF_WSH"], "2026-08-01"),
    credit_action(3, "公示修复", uscc(33), ORDINARY_REPAIR["CF_WSH"], "2026-07-10"),
    credit_action(4, "公示修复", uscc(34), FUTURE_REPAIR["CF_WSH"], "2026-12-15"),
    credit_action(5, "公示修复", uscc(63), REPAIR_UNPERFORMED["CF_WSH"], "2026-08-01"),
    credit_action(6, "公示修复", uscc(64), REPAIR_ENFORCED["CF_WSH"], "2026-08-01"),
    credit_action(7, "公示修复", uscc(65), REPAIR_NO_STATUS["CF_WSH"], "2026-08-01"),
]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    pens = [class_case(*c) for c in CLASS_CASES] + [
        REVOKED,
        revoke(REVOKED, "2026-05-01"),
        SEVERE_REPAIR_EARLY,
        SEVERE_REPAIR_LATE,
        ORDINARY_REPAIR,
        FUTURE_REPAIR,
        DEPT_SHORT,
        DEPT_18M,
        DEPT_LONG,
        ORDINARY,
        SEVERE_END,
        MINOR_DEPT,
        FUTURE,
        PERSON_SEVERE,
        UNIT_FULL,
        KEEPS_58,
        LAST_DAY_58,
        USES_36,
        SEVERE_527,
        BEFORE_527,
        EMERGENCY_PLAIN,
        REPAIR_UNPERFORMED,
        REPAIR_ENFORCED,
        REPAIR_NO_STATUS,
    ]
    c = build_warehouse(
        tmp_path_factory.mktemp("publicity"),
        {"yjj": {"penalties": pens, "credit_actions": REPAIRS}, "scj": {"penalties": [MARKET_PLAIN, MARKET_CODED]}},
        as_of=AS_OF,
        salt=SALT,
    )
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _rules_back(con):
    rules_back(con)


def pid(rec: dict) -> str:
    return "D" + hashlib.sha256(f"{AUTHORITY}|{rec['CF_WSH']}".encode()).hexdigest()[:16]


def publicity(con, rec: dict) -> dict:
    cur = con.execute("SELECT * FROM rules.penalty_publicity WHERE decision_no = ?", [rec["CF_WSH"]])
    cols = [d[0] for d in cur.description]
    found = [dict(zip(cols, r)) for r in cur.fetchall()]
    assert len(found) == 1, (rec["CF_WSH"], found)
    return found[0]


def public(con, rec: dict) -> dict | None:
    cur = con.execute("SELECT * FROM rules.penalties_public WHERE decision_no = ?", [rec["CF_WSH"]])
    cols = [d[0] for d in cur.description]
    found = [dict(zip(cols, r)) for r in cur.fetchall()]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    "case", CLASS_CASES, ids=[f"{c[1]}-{c[2]}-{'person' if c[3] else 'unit'}" for c in CLASS_CASES]
)
def test_class_by_type_and_fine(con, case):
    rec = class_case(*case)
    p = publicity(con, rec)
    assert p["publicity_class"] == case[4]
    assert p["subject_type"] == ("person" if case[3] else "unit")
    if case[4] == "轻微":  # not published
        assert p["publicity_until"] is None and not p["published"] and public(con, rec) is None
    else:  # decided 2026-06-01; 安全生产 keeps at least 1 year
        months = 36 if case[4] == "严重" else 12
        last = date(2026 + months // 12, 6, 1) - timedelta(days=1)
        assert p["publicity_until"] == last and public(con, rec)["publicity_until"] == last


def test_ordinary_window_boundaries(con):
    assert publicity(con, ORDINARY)["publicity_until"] == date(2028, 11, 21)
    with rules_at(con, date(2028, 11, 22)):
        assert public(con, ORDINARY) is None  # the day after, out
    with rules_at(con, date(2028, 11, 21)):
        assert public(con, ORDINARY) is not None  # last day in
    with rules_at(con, date(2025, 11, 22)):
        assert public(con, ORDINARY) is not None  # the decision day itself is in
    with rules_at(con, date(2025, 11, 21)):
        assert public(con, ORDINARY) is None


def test_severe_window_boundaries(con):
    p = publicity(con, SEVERE_END)
    assert (p["publicity_regime"], p["publicity_until"]) == ("ndrc-order-58", date(2026, 11, 22))
    assert public(con, SEVERE_END)["publicity_until"] == date(2026, 11, 22)  # last day in
    with rules_at(con, date(2026, 11, 23)):
        assert public(con, SEVERE_END) is None


def test_safety_minimum_keeps_one_year(con):
    # the department set 4 months; 安全生产 keeps 1 year
    p = publicity(con, DEPT_SHORT)
    assert p["safety_min_applied"] and p["min_months"] == 12
    assert p["publicity_until"] == date(2027, 2, 9)
    with rules_at(con, policy=with_policy(**{"publicity.safety_min_enabled": False})):
        p = publicity(con, DEPT_SHORT)
        assert not p["safety_min_applied"] and p["min_months"] == 3
        assert p["publicity_until"] == date(2026, 6, 9)  # the department's date stands
        assert public(con, DEPT_SHORT) is None


def test_department_date_kept_within_the_class_range(con):
    assert publicity(con, DEPT_18M)["publicity_until"] == date(2026, 7, 14)
    assert publicity(con, DEPT_LONG)["publicity_until"] == date(2028, 1, 14)  # capped at 3 years
    m = publicity(con, MINOR_DEPT)  # 轻微: not published by default
    assert m["publicity_class"] == "轻微" and not m["published"] and public(con, MINOR_DEPT) is None


def test_repair_before_the_minimum_waits_for_it(con):
    p = publicity(con, SEVERE_REPAIR_EARLY)
    assert p["repair_date"] == date(2026, 3, 1) and p["repair_record"] == "yjj/xd-1"
    assert p["publicity_until"] == date(2026, 11, 30) and p["repair_applied"]
    assert public(con, SEVERE_REPAIR_EARLY) is not None  # still inside the 1-year minimum


def test_repair_after_the_minimum_ends_publication(con):
    p = publicity(con, SEVERE_REPAIR_LATE)
    assert p["base_end"] == date(2028, 6, 1)
    assert p["publicity_until"] == date(2026, 7, 31)
    assert public(con, SEVERE_REPAIR_LATE) is None
    with rules_at(con, date(2026, 7, 31)):
        assert public(con, SEVERE_REPAIR_LATE) is not None
    with rules_at(con, date(2026, 7, 30)):  # before the repair took effect
        assert publicity(con, SEVERE_REPAIR_LATE)["repair_date"] is None


def test_repair_of_an_ordinary_penalty_and_the_safety_minimum(con):
    # 一般 decided 2026-02-10, repaired 2026-07-10: 安全生产 keeps it until 2027-02-09
    assert publicity(con, ORDINARY_REPAIR)["publicity_until"] == date(2027, 2, 9)
    with rules_at(con, policy=with_policy(**{"publicity.safety_min_enabled": False})):
        assert publicity(con, ORDINARY_REPAIR)["publicity_until"] == date(2026, 7, 9)


def test_repair_after_as_of_not_yet_applied(con):
    p = publicity(con, FUTURE_REPAIR)
    assert p["repair_date"] is None and p["publicity_until"] == date(2029, 1, 9)


def test_revoked_penalty_absent(con):
    p = publicity(con, REVOKED)
    assert p["revoked"] and not p["in_window"]
    assert public(con, REVOKED) is None


def test_decision_after_as_of_absent(con):
    assert (
        con.execute(
            "SELECT count(*) FROM rules.penalty_publicity WHERE decision_no = ?", [FUTURE["CF_WSH"]]
        ).fetchone()[0]
        == 0
    )
    assert public(con, FUTURE) is None


def test_person_penalty_published_with_masked_id(con):
    r = public(con, PERSON_SEVERE)
    full = id_number(PERSON)
    assert r["subject_type"] == "person" and r["publicity_class"] == "严重"
    assert r["subject_code"] == mask(full) and r["name"] == f"个人{PERSON}"
    assert r["subject_id"].startswith("P") and r["id_type"] == "身份证" and r["legal_representative"] is None
    personal = {id_number(i) for i in (PERSON, 143, 243)} | {id_number(PERSON + c[0]) for c in CLASS_CASES}
    cur = con.execute("SELECT * FROM rules.penalties_public")
    for row in cur.fetchall():
        for v in row:
            assert not (isinstance(v, str) and any(f in v for f in personal)), row


def test_double_publicity_fields(con):
    r = public(con, UNIT_FULL)
    assert r["penalty_id"] == pid(UNIT_FULL)
    assert (r["subject_code"], r["name"], r["legal_representative"]) == (uscc(43), "江城市测试43号有限公司", "王某")
    assert r["decision_no"] == UNIT_FULL["CF_WSH"] and r["violation_type"] == "未按规定开展安全培训"
    assert r["facts"] == "未对从业人员进行安全生产教育和培训" and r["basis"] == "《安全生产法》第九十七条"
    assert r["penalty_types"] == ["罚款"] and r["content"] == "罚款12.5万元" and float(r["fine_wan"]) == 12.5
    assert r["decision_date"] == date(2026, 4, 1) and r["publicity_start"] == date(2026, 4, 1)
    assert r["publicity_until"] == date(2027, 3, 31) and r["publicity_class"] == "一般"
    assert (r["authority"], r["authority_code"], r["data_source"], r["data_source_code"]) == (
        "江城市应急管理局",
        AUTHORITY,
        "江城市应急管理局",
        AUTHORITY,
    )
    assert r["policy_version"] == policy_for(AS_OF).version and r["as_of"] == AS_OF


def test_feed_ids_unique_stable_and_deterministic(con):
    from safecredit.publish import FEEDS
    from safecredit.publish.formats import prepare

    before = con.execute("SELECT * FROM rules.penalties_public ORDER BY penalty_id").fetchall()
    run_rules(con, AS_OF, policy_for(AS_OF), SALT)
    assert con.execute("SELECT * FROM rules.penalties_public ORDER BY penalty_id").fetchall() == before
    feed = prepare(FEEDS["penalties_public"], con.sql("SELECT * FROM rules.penalties_public").to_arrow_table())
    assert len(feed.keys) == len(before) > 0
    ids = {r[0] for r in con.execute("SELECT penalty_id FROM rules.penalty_publicity").fetchall()}
    assert pid(UNIT_FULL) in ids and pid(REVOKED) in ids


def test_a_2025_penalty_keeps_order_58_publicity(con):
    # 令第36号 (from 2026-04-01) would publish a 一般 fine for 1 year; a 2025 decision keeps 令第58号's 3 years
    p = publicity(con, KEEPS_58)
    assert (p["publicity_regime"], p["publicity_class"]) == ("ndrc-order-58", "一般")
    assert "第58号" in p["publicity_basis"]
    assert (p["min_months"], p["max_months"], p["publicity_until"]) == (12, 36, date(2028, 6, 14))
    assert public(con, KEEPS_58)["publicity_basis"] == p["publicity_basis"]
    assert publicity(con, LAST_DAY_58)["publicity_regime"] == "ndrc-order-58"  # the day before 令第36号


def test_a_2026_05_decision_uses_order_36(con):
    p = publicity(con, USES_36)
    assert (p["publicity_regime"], p["publicity_class"]) == ("ndrc-order-36", "一般")
    assert "第36号" in p["publicity_basis"]
    assert (p["max_months"], p["publicity_until"]) == (12, date(2027, 5, 9))


def test_decisions_before_order_58_follow_notice_527(con):
    p = publicity(con, SEVERE_527)
    assert (p["publicity_regime"], p["publicity_class"]) == ("ndrc-2019-527", "严重")
    # 严重失信 6 months – 3 years, no 安全生产 minimum in 527号: the department's date is kept within it
    assert (p["min_months"], p["safety_min_applied"], p["publicity_until"]) == (6, False, date(2020, 9, 1))
    assert publicity(con, BEFORE_527)["publicity_regime"] == "ndrc-2019-527"


def test_safety_minimum_only_for_safety_penalties(con):
    plain = publicity(con, MARKET_PLAIN)  # 市场监管, no AQ_WFDM: not a 安全生产 penalty
    assert plain["department"] == "scj" and not plain["is_safety"] and not plain["safety_min_applied"]
    assert (plain["min_months"], plain["publicity_until"]) == (3, date(2026, 9, 30))  # the department's date
    coded = publicity(con, MARKET_CODED)  # carries a 安全生产 violation code
    assert coded["is_safety"] and coded["safety_min_applied"]
    assert coded["publicity_until"] == date(2027, 5, 31)
    emergency = publicity(con, EMERGENCY_PLAIN)  # decided by an 应急管理 department (kind emergency)
    assert emergency["is_safety"] and emergency["publicity_until"] == date(2027, 5, 31)


def test_repair_only_once_the_penalty_is_performed(con):
    for rec in (REPAIR_UNPERFORMED, REPAIR_NO_STATUS):
        p = publicity(con, rec)
        assert p["repair_date"] == date(2026, 8, 1) and p["repair_blocked"] and not p["repair_applied"]
        assert p["publicity_until"] == date(2028, 5, 31) and public(con, rec) is not None
    p = publicity(con, REPAIR_ENFORCED)  # 强制执行 counts as performed
    assert p["execution_status"] == "强制执行" and p["repair_applied"] and not p["repair_blocked"]
    assert p["publicity_until"] == date(2026, 7, 31) and public(con, REPAIR_ENFORCED) is None
