"""List regimes and written listing decisions (rules.md §3; department-feeds.md §3.6).

Hand-written department records through landing → staging → subjects → rules/*.sql, as in
test_rules_list.py. The fixtures' sources: yjj is kind `emergency`, zjj `housing` (rules_fixtures.KINDS).
"""

from __future__ import annotations

from datetime import date

import pytest
from rules_fixtures import (
    AUTHORITY,
    build_warehouse,
    departments,
    enterprise,
    listing_decision,
    penalty,
    ts,
    uscc,
)

AS_OF = date(2026, 11, 22)


def rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def units(con) -> list[dict]:
    return rows(con, "SELECT * FROM rules.blacklist WHERE subject_type = 'unit' ORDER BY entry_id")


def wh(tmp_path, yjj=(), zjj=(), decisions=(), ents=None, as_of=AS_OF, **kw):
    data = {
        "yjj": {
            "enterprises": ents if ents is not None else [enterprise(i) for i in range(1, 6)],
            "penalties": list(yjj),
            "listing_decisions": list(decisions),
        }
    }
    if zjj:
        data["zjj"] = {"penalties": list(zjj)}
    return build_warehouse(tmp_path, data, as_of, **kw)


def restricted_entries(con) -> set[str]:
    return {r for (r,) in con.execute("SELECT DISTINCT entry_id FROM rules.restrictions").fetchall()}


# -- regimes --------------------------------------------------------------------------------------------


def test_a_housing_penalty_is_an_industry_entry_with_the_housing_basis_not_11hao(tmp_path):
    pen = penalty(1, 1, "2025-09-01", AQ_WFDM="UNLICENSED_OPERATION", CF_WSH="江建罚〔2025〕1号")
    con = wh(tmp_path, zjj=[pen])
    es = rows(con, "SELECT regime, basis, authority, decided, role FROM rules.blacklist ORDER BY role")
    assert {(e["regime"], e["decided"]) for e in es} == {("industry", False)} and len(es) == 2
    assert all("住房城乡建设" in e["basis"] and "第11号" not in e["basis"] for e in es)
    assert {r["regime"] for r in rows(con, "SELECT regime FROM rules.restrictions")} == {"industry"}


def test_an_emergency_penalty_on_a_construction_unit_is_outside_aq11_and_lists_nobody(tmp_path):
    ents = [enterprise(1, QY_HYDM="E4710"), enterprise(2)]  # 住宅房屋建筑 (建筑业) vs 金属结构制造 (机械)
    pens = [
        penalty(1, 1, "2026-09-01", AQ_WFDM="UNLICENSED_OPERATION"),
        penalty(2, 2, "2026-09-01", AQ_WFDM="UNLICENSED_OPERATION"),
    ]
    con = wh(tmp_path, pens, ents=ents)
    assert {(e["subject_id"], e["regime"], e["basis"]) for e in units(con)} == {
        (uscc(2), "aq11", "《安全生产严重失信主体名单管理办法》（应急管理部令第11号）")
    }
    assert rows(con, "SELECT count(*) AS n FROM rules.listing_candidates WHERE subject_id = ?", [uscc(1)])[0]["n"] == 0
    out = rows(con, "SELECT outcome, unit_uscc, industry_code, message_en FROM rules.listing_scope_report")
    assert [(o["outcome"], o["unit_uscc"], o["industry_code"]) for o in out] == [("out_of_scope", uscc(1), "E4710")]
    # the penalty still counts for credit (it is inside the 12 months before as_of)
    comps = con.execute("SELECT CAST(components AS VARCHAR) FROM rules.credit_scores WHERE uscc = ?", [uscc(1)])
    assert pens[0]["CF_WSH"] in comps.fetchone()[0]


def test_a_department_without_kind_counts_as_other(tmp_path):
    from safecredit.config import load_sources

    path = tmp_path / "sources.yaml"
    path.write_text(
        "departments:\n  - {id: a, base_url: 'http://x', token: t, datasets: [penalties]}\n"
        "  - {id: b, base_url: 'http://x', token: t, kind: emergency, decisions: complete, datasets: [penalties]}\n",
        encoding="utf-8",
    )
    a, b = load_sources(path)
    assert (a.kind, a.decisions, b.kind, b.decisions) == ("other", "partial", "emergency", "complete")


def test_an_unknown_kind_is_refused_with_a_bilingual_message(tmp_path):
    from safecredit.config import load_sources
    from safecredit.errors import ConfigError

    path = tmp_path / "sources.yaml"
    path.write_text(
        "departments:\n  - {id: a, base_url: 'http://x', token: t, kind: police, datasets: [penalties]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_sources(path)
    assert "police" in err.value.en and "kind" in err.value.zh


# -- decided and inferred ---------------------------------------------------------------------------------


def test_an_inferred_b4_restricts_nothing_and_waits_in_the_authoritys_queue(tmp_path):
    pen = penalty(1, 1, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ="特别严重")
    con = wh(tmp_path, [pen])
    es = units(con)
    assert [(e["ground"], e["status"], e["decided"]) for e in es] == [("B4", "pending", False)]
    assert restricted_entries(con) == set()
    cand = rows(con, "SELECT * FROM rules.listing_candidates WHERE subject_type = 'unit'")
    assert [(c["entry_id"], c["authority_code"], c["notice_due_date"]) for c in cand] == [
        (es[0]["entry_id"], AUTHORITY, date(2025, 9, 8))
    ]
    # notice (5 working days to 8 Sep) + 10 working days' grace ran out on 22 Sep without a decision
    assert cand[0]["decision_due_date"] == date(2025, 9, 22) and cand[0]["overdue"]
    overdue = rows(con, "SELECT entry_id, message_en FROM rules.overdue_candidates")
    assert es[0]["entry_id"] in {o["entry_id"] for o in overdue}


def test_a_decided_b4_restricts_on_the_decisions_own_dates(tmp_path):
    pen = penalty(1, 1, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ="特别严重")
    dec = listing_decision(1, uscc(1), pen["CF_WSH"], "B4", "2025-10-15", MD_QSRQ="2025-10-20", MD_JZRQ="2027-10-20")
    con = wh(tmp_path, [pen], decisions=[dec])
    (e,) = units(con)
    assert (e["status"], e["decided"], e["start_date"], e["end_date"]) == (
        "listed",
        True,
        date(2025, 10, 20),  # not the computed 2025-09-08
        date(2027, 10, 20),  # not start + 3 years
    )
    assert e["listing_decision_no"] == dec["MD_WSH"]
    assert e["entry_id"] in restricted_entries(con)
    r = rows(
        con,
        "SELECT DISTINCT regime, decided, restricted_until FROM rules.restrictions WHERE entry_id = ?",
        [e["entry_id"]],
    )
    assert r == [{"regime": "aq11", "decided": True, "restricted_until": date(2027, 10, 20)}]
    assert e["entry_id"] not in {c for (c,) in con.execute("SELECT entry_id FROM rules.listing_candidates").fetchall()}


def test_a_decision_dated_in_a_year_the_calendar_lacks_is_reported_and_not_listed(tmp_path):
    pen = penalty(1, 1, "2030-12-02", AQ_WFDM="UNLICENSED_OPERATION", updated_at=ts("2030-12-02"))
    dec = listing_decision(1, uscc(1), pen["CF_WSH"], "B1", "2031-01-06", MD_QSRQ="2031-01-06")
    con = wh(tmp_path, [pen], decisions=[dec], as_of=date(2031, 3, 1))
    (e,) = units(con)
    assert (e["status"], e["decided"], e["start_date"], e["calendar_gap_year"]) == ("pending", True, None, 2031)
    gaps = rows(
        con,
        "SELECT entry_id, year, message_zh, message_en FROM rules.calendar_gaps WHERE entry_id = ?",
        [e["entry_id"]],
    )
    assert len(gaps) == 1 and "2031" in gaps[0]["message_zh"] and "2031" in gaps[0]["message_en"]
    assert dec["MD_WSH"] in gaps[0]["message_zh"]
    assert e["entry_id"] not in restricted_entries(con)


def test_a_decision_that_matches_no_computed_entry_is_its_own_entry_and_reported(tmp_path):
    pen = penalty(1, 1, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ="一般")  # grounds nothing by itself
    dec = listing_decision(1, uscc(1), pen["CF_WSH"], "B4", "2025-09-20", MD_QSRQ="2025-09-22", MD_JZRQ="2028-09-22")
    con = wh(tmp_path, [pen], decisions=[dec])
    (e,) = units(con)
    assert (e["ground"], e["decided"], e["status"], e["start_date"], e["regime"]) == (
        "B4",
        True,
        "listed",
        date(2025, 9, 22),
        "aq11",
    )
    assert e["source_record_id"] == pen["record_id"]  # the penalty it names is the record behind it
    issues = rows(con, "SELECT issue, entry_id, decision_no FROM rules.listing_decision_issues")
    assert issues == [{"issue": "disagreement", "entry_id": e["entry_id"], "decision_no": dec["MD_WSH"]}]


def test_an_annulled_listing_decision_turns_the_entry_revoked_and_it_never_restricted(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    dec = listing_decision(1, uscc(1), pen["CF_WSH"], "B1", "2025-03-20", MD_QSRQ="2025-03-21", MD_JZRQ="2028-03-21")
    annul = listing_decision(
        2, uscc(1), None, None, "2025-06-02", MD_LX="撤销列入", MD_YWSH=dec["MD_WSH"], MD_WSH="江应急撤列〔2025〕2号"
    )
    con = wh(tmp_path, [pen], decisions=[dec, annul])
    (e,) = units(con)
    assert (e["status"], e["decided"], e["revoked_date"]) == ("revoked", True, date(2025, 6, 2))
    assert e["entry_id"] not in restricted_entries(con)
    hist = [
        h
        for (h,) in con.execute(
            "SELECT cause FROM rules.entry_history WHERE entry_id = ? AND status = 'revoked'", [e["entry_id"]]
        ).fetchall()
    ]
    assert hist == ["撤销列入 江应急撤列〔2025〕2号"]


def test_no_inferred_entry_of_a_decisions_complete_department_restricts(tmp_path):
    pen = penalty(1, 1, "2025-03-03", AQ_WFDM="UNLICENSED_OPERATION")
    partial = wh(tmp_path / "partial", [pen])
    assert {e["status"] for e in units(partial)} == {"listed"}
    con = wh(tmp_path / "complete", [pen], sources=departments(complete=("yjj",)))
    (e,) = units(con)
    assert (e["status"], e["decided"]) == ("pending", False)
    assert restricted_entries(con) == set()
    cand = rows(con, "SELECT entry_id, status FROM rules.listing_candidates WHERE subject_type = 'unit'")
    assert cand == [{"entry_id": e["entry_id"], "status": "pending"}]


def test_an_entry_awaiting_its_decision_is_pending_at_every_date_until_its_period_would_end(tmp_path):
    """What GET /v1/restrictions?as_of= answers (rules.listing_timeline): an inferred B4 past its
    notice period is still pending (restricts nothing) on any date, then expired; a B1 is listed."""
    b4 = penalty(1, 1, "2025-09-01", AQ_WFDM="OTHER", AQ_QJ="特别严重")
    b1 = penalty(2, 2, "2025-09-01", AQ_WFDM="UNLICENSED_OPERATION")
    con = wh(tmp_path, [b4, b1])
    timeline = rows(
        con,
        "SELECT subject_id, valid_from, valid_until, status FROM rules.listing_timeline "
        "WHERE subject_type = 'unit' ORDER BY subject_id, valid_from",
    )
    assert [(t["valid_from"], t["valid_until"], t["status"]) for t in timeline if t["subject_id"] == uscc(1)] == [
        (date(2025, 9, 1), date(2028, 9, 8), "pending"),
        (date(2028, 9, 8), None, "expired"),
    ]
    assert [(t["valid_from"], t["status"]) for t in timeline if t["subject_id"] == uscc(2)] == [
        (date(2025, 9, 1), "pending"),
        (date(2025, 9, 8), "listed"),
        (date(2028, 9, 8), "expired"),
    ]
    restricted = rows(con, "SELECT DISTINCT subject_id FROM rules.restriction_timeline WHERE subject_type = 'unit'")
    assert restricted == [{"subject_id": uscc(2)}]
