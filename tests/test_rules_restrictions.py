"""rules/35_restrictions.sql: joint punishment measures of listed entries, and statutory person bans."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from rules_fixtures import (
    AUTHORITY,
    accident,
    build_warehouse,
    enterprise,
    id_number,
    penalty,
    person_penalty,
    revoke,
    uscc,
)

from safecredit.policy import Policy, policy_for
from safecredit.rules import run_rules

AS_OF = date(2026, 11, 22)
SALT = "test-salt"

# exchange.md §2: the fixed matter codes (the measures table may add more, never rename these)
EXCHANGE_MATTERS = {
    "government_procurement",
    "public_bidding",
    "state_land",
    "project_approval",
    "mining_rights",
    "securities_financing",
    "policy_funds",
    "bank_credit",
    "qualification",
    "honours",
    "insurance_rate",
    "tax_incentives",
    "market_entry",
    "standardization",
    "principal_role",
}
PERSON_ONLY = {"principal_role"}


def mask(code: str) -> str:
    return "*" * (len(code) - 4) + code[-4:]


P_UNTIL, P_LIFE, P_PAST, P_REVOKED, P_MAJOR, P_AGENCY, P_AGENCY_LIFE = 109, 110, 111, 112, 113, 114, 115


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    revoked_unit = penalty(4, 4, "2026-01-05", AQ_WFDM="UNLICENSED_OPERATION")
    revoked_ban = person_penalty(15, P_REVOKED, "2026-02-02", CF_CFLB="罚款;限制从业")
    major = accident(1, 6, "2025-12-01", deaths=12, grade="重大", SG_HYLB="B0610")
    data = {
        "yjj": {
            "enterprises": [enterprise(i) for i in (1, 2, 3, 4, 6)],
            "accidents": [major],
            "penalties": [
                penalty(1, 1, "2026-01-05", AQ_WFDM="UNLICENSED_OPERATION"),  # listed
                penalty(2, 2, "2026-11-20", AQ_WFDM="UNLICENSED_OPERATION"),  # pending (notice running)
                penalty(3, 3, "2023-01-05", AQ_WFDM="UNLICENSED_OPERATION"),  # expired
                revoked_unit,
                revoke(revoked_unit, "2026-03-01"),  # revoked
                person_penalty(11, P_UNTIL, "2026-03-05", CF_CFLB="罚款;限制从业", CF_YXQ="2028-01-01"),
                person_penalty(12, P_LIFE, "2026-03-05", CF_CFLB="限制从业"),
                person_penalty(13, P_PAST, "2024-03-05", CF_CFLB="罚款;限制从业", CF_YXQ="2026-06-30"),
                revoked_ban,
                revoke(revoked_ban, "2026-04-01"),
                person_penalty(
                    16,
                    P_MAJOR,
                    "2026-02-10",
                    AQ_WFDM="ACCIDENT_LIABILITY",
                    AQ_SGBH=major["SG_BH"],
                    CF_CFLB="罚款",
                    CF_NR_FK="20",
                ),
                person_penalty(17, P_AGENCY, "2025-05-06", AQ_WFDM="AGENCY_FRAUD", AQ_QJ="严重"),
                person_penalty(18, P_AGENCY_LIFE, "2025-05-06", AQ_WFDM="AGENCY_FRAUD", AQ_QJ="特别严重"),
            ],
        }
    }
    c = build_warehouse(tmp_path_factory.mktemp("restrictions"), data, as_of=AS_OF, salt=SALT)
    yield c
    c.close()


def with_policy(**values) -> Policy:
    """The default policy with some values changed (dotted keys, e.g. 'tables.agency_bands')."""
    base = policy_for(AS_OF)
    doc = copy.deepcopy(base.doc)
    for dotted, v in values.items():
        cur = doc
        *parts, last = dotted.split(".")
        for p in parts:
            cur = cur.setdefault(p, {})
        cur[last] = v
    return dataclasses.replace(base, doc=doc, version=base.version + "-test")


_MOVED: set[int] = set()


@contextmanager
def rules_at(con, day: date = AS_OF, policy=None):
    """Re-run the rules of a module's shared warehouse at another date or policy, for one test."""
    _MOVED.add(id(con))
    run_rules(con, day, policy or policy_for(day), SALT)
    yield con


def rules_back(con) -> None:
    """The rules back at AS_OF with the default policy, when a test moved them."""
    if id(con) in _MOVED:
        run_rules(con, AS_OF, policy_for(AS_OF), SALT)
        _MOVED.discard(id(con))


@pytest.fixture(autouse=True)
def _rules_back(con):
    rules_back(con)


def rows(con, sql: str, *params) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def entry(con, subject_type: str, subject_code: str) -> dict:
    found = rows(
        con,
        "SELECT * FROM rules.blacklist WHERE subject_type = ? AND subject_code = ? AND ground = 'B1'",
        subject_type,
        subject_code,
    )
    assert len(found) == 1, found
    return found[0]


def person_rows(con, person: int) -> list[dict]:
    return rows(
        con,
        "SELECT * FROM rules.restrictions WHERE subject_type = 'person' AND subject_code = ? "
        "ORDER BY source, matter, ban",
        mask(id_number(person)),
    )


def test_policy_measures_keep_every_exchange_matter(con):
    matters = {m for (m,) in con.execute("SELECT matter FROM policy_measures").fetchall()}
    assert EXCHANGE_MATTERS <= matters
    # the safety regulators' own measures of rules.md §4 are there too
    assert {
        "more_inspections",
        "key_supervision",
        "interview_training",
        "standardization",
        "market_entry",
        "heavier_punishment",
    } <= matters
    for r in rows(con, "SELECT * FROM policy_measures"):
        assert r["name"] and r["department"] and r["basis"] and r["applies_to"] in ("unit", "person", "both")


def test_listed_unit_gets_every_unit_matter_until_the_entry_end(con):
    e = entry(con, "unit", uscc(1))
    assert e["status"] == "listed"
    got = rows(con, "SELECT * FROM rules.restrictions WHERE entry_id = ?", e["entry_id"])
    matters = {r["matter"] for r in got}
    assert EXCHANGE_MATTERS - PERSON_ONLY <= matters
    assert not matters & PERSON_ONLY
    expected = {
        m
        for (m,) in con.execute(
            "SELECT matter FROM policy_measures WHERE applies_to IN ('unit', 'both') AND on_listing AND grounds = '*'"
        ).fetchall()
    }
    assert matters == expected and len(got) == len(matters)
    for r in got:
        assert (r["source"], r["subject_id"], r["subject_code"], r["ground"]) == ("listing", uscc(1), uscc(1), "B1")
        assert r["restricted_from"] == e["start_date"] and r["restricted_until"] == e["end_date"]
        assert r["status"] == "listed" and not r["for_life"]
        assert r["measure_name"] and r["basis"] and r["implementing_department"]
        assert r["decision_no"] == e["decision_no"] and r["policy_version"] == policy_for(AS_OF).version
        assert r["penalty_id"] == "D" + hashlib.sha256(f"{AUTHORITY}|{e['decision_no']}".encode()).hexdigest()[:16]
    gp = next(r for r in got if r["matter"] == "government_procurement")
    assert gp["measure_name"] == "政府采购" and "政府采购法》第二十二条" in gp["basis"]


def test_each_measure_cites_its_own_basis(con):
    """rules.md §4: the safety regulators' measures rest on 1001号 §二(一); every other matter names
    its own basis (a law where one provides it), and what could not be confirmed says so."""
    e = entry(con, "unit", uscc(1))
    got = {r["matter"]: r for r in rows(con, "SELECT * FROM rules.restrictions WHERE entry_id = ?", e["entry_id"])}
    policy = {r["matter"]: r for r in rows(con, "SELECT * FROM policy_measures")}
    safety = {"more_inspections", "key_supervision", "interview_training", "standardization", "market_entry"}
    for matter, r in got.items():
        assert r["basis"] == policy[matter]["basis"]
        assert r["basis_unconfirmed"] == bool(policy[matter]["unconfirmed"]), matter
        assert r["basis"].strip() not in ("发改财金〔2016〕1001号", "发改财金〔2016〕1001号 §二(一)"), matter
        assert ("§二(一)" in r["basis"]) == (matter in safety | {"heavier_punishment"}), matter
    assert "《中华人民共和国政府采购法实施条例》第十九条" in got["government_procurement"]["basis"]
    assert "应急〔2025〕27号" in got["insurance_rate"]["basis"] and not got["insurance_rate"]["basis_unconfirmed"]
    # the cross-department matters do not all share one citation
    cross = [got[m]["basis"] for m in EXCHANGE_MATTERS - PERSON_ONLY - safety]
    assert len(set(cross)) >= len(cross) - 1


def test_listed_principal_gets_person_measures_only(con):
    e = entry(con, "person", mask(id_number(1)))  # the principal of unit 1 from the registry
    assert e["status"] == "listed"
    got = rows(con, "SELECT * FROM rules.restrictions WHERE entry_id = ?", e["entry_id"])
    matters = {r["matter"] for r in got}
    person_matters = {
        m
        for (m,) in con.execute(
            "SELECT matter FROM policy_measures WHERE applies_to IN ('person', 'both') AND on_listing AND grounds = '*'"
        ).fetchall()
    }
    assert matters == person_matters
    assert "principal_role" in matters and "government_procurement" not in matters
    assert all(r["restricted_until"] == e["end_date"] for r in got)


@pytest.mark.parametrize("unit, status", [(2, "pending"), (3, "expired"), (4, "revoked")])
def test_entries_not_listed_do_not_restrict(con, unit, status):
    e = entry(con, "unit", uscc(unit))
    assert e["status"] == status
    assert (
        con.execute(
            "SELECT count(*) FROM rules.restrictions WHERE entry_id = ? OR subject_id = ?", [e["entry_id"], uscc(unit)]
        ).fetchone()[0]
        == 0
    )


def test_only_listed_entries_restrict(con):
    statuses = {
        s
        for (s,) in con.execute(
            "SELECT DISTINCT b.status FROM rules.restrictions r JOIN rules.blacklist b USING (entry_id)"
        ).fetchall()
    }
    assert statuses == {"listed"}


def test_measures_lift_on_the_entry_end_date(con):
    e = entry(con, "unit", uscc(1))
    end = e["end_date"]
    with rules_at(con, end - timedelta(days=1)):
        assert (
            con.execute("SELECT count(*) FROM rules.restrictions WHERE entry_id = ?", [e["entry_id"]]).fetchone()[0] > 0
        )
    with rules_at(con, end):
        assert (
            con.execute("SELECT count(*) FROM rules.restrictions WHERE entry_id = ?", [e["entry_id"]]).fetchone()[0]
            == 0
        )
    with rules_at(con, e["start_date"] - timedelta(days=1)):  # still pending the day before the start
        assert (
            con.execute("SELECT count(*) FROM rules.restrictions WHERE entry_id = ?", [e["entry_id"]]).fetchone()[0]
            == 0
        )


def test_practice_ban_until_penalty_end(con):
    got = [r for r in person_rows(con, P_UNTIL) if r["source"] == "ban"]
    assert len(got) == 1
    r = got[0]
    assert (r["matter"], r["ban"], r["status"], r["for_life"]) == ("principal_role", "practice_ban", "in_force", False)
    assert r["restricted_from"] == date(2026, 3, 5)
    assert r["restricted_until"] == date(2028, 1, 2)  # CF_YXQ is the last day of the ban
    assert r["entry_id"].startswith("B") and r["penalty_id"].startswith("D")
    assert r["name"] == f"个人{P_UNTIL}" and r["measure_name"] == "担任主要负责人"


def test_practice_ban_without_end_is_for_life(con):
    got = [r for r in person_rows(con, P_LIFE) if r["source"] == "ban"]
    assert [(r["matter"], r["restricted_until"], r["for_life"]) for r in got] == [("principal_role", None, True)]


def test_ended_and_revoked_bans_do_not_restrict(con):
    assert person_rows(con, P_PAST) == []
    assert person_rows(con, P_REVOKED) == []


def test_major_accident_principal_banned_for_life_in_the_industry(con):
    got = [r for r in person_rows(con, P_MAJOR) if r["source"] == "ban"]
    assert len(got) == 1
    r = got[0]
    assert (r["matter"], r["ban"], r["restricted_until"], r["for_life"]) == (
        "principal_role",
        "major_accident_principal",
        None,
        True,
    )
    assert r["scope_industry"] == "B0610" and "第九十四条" in r["basis"]


def test_agency_staff_banned_five_years_or_for_life_when_serious(con):
    five = [r for r in person_rows(con, P_AGENCY) if r["source"] == "ban"]
    assert [(r["matter"], r["restricted_until"], r["for_life"]) for r in five] == [
        ("agency_practice", date(2030, 5, 6), False)
    ]
    life = [r for r in person_rows(con, P_AGENCY_LIFE) if r["source"] == "ban"]
    assert [(r["matter"], r["restricted_until"], r["for_life"]) for r in life] == [("agency_practice", None, True)]


def test_ban_only_from_its_decision_date(con):
    with rules_at(con, date(2026, 3, 4)):
        assert [r for r in person_rows(con, P_UNTIL) if r["source"] == "ban"] == []
    with rules_at(con, date(2028, 1, 1)):
        assert len([r for r in person_rows(con, P_UNTIL) if r["source"] == "ban"]) == 1
    with rules_at(con, date(2028, 1, 2)):
        assert [r for r in person_rows(con, P_UNTIL) if r["source"] == "ban"] == []


def test_person_codes_never_in_full(con):
    full = {id_number(i) for i in (1, 2, 3, 4, 6, P_UNTIL, P_LIFE, P_PAST, P_REVOKED, P_MAJOR, P_AGENCY, P_AGENCY_LIFE)}
    for r in rows(con, "SELECT * FROM rules.restrictions"):
        for v in r.values():
            assert not (isinstance(v, str) and any(f in v for f in full)), r
        if r["subject_type"] == "person":
            assert r["subject_code"].startswith("*") and r["subject_id"].startswith("P")


def test_feed_ids_unique_and_stable(con):
    from safecredit.publish import FEEDS
    from safecredit.publish.formats import prepare

    before = con.execute("SELECT * FROM rules.restrictions ORDER BY restriction_id").fetchall()
    run_rules(con, AS_OF, policy_for(AS_OF), SALT)
    assert con.execute("SELECT * FROM rules.restrictions ORDER BY restriction_id").fetchall() == before
    feed = prepare(FEEDS["restrictions"], con.sql("SELECT * FROM rules.restrictions").to_arrow_table())
    assert len(feed.keys) == len(before) > 0  # (entry_id, matter) unique, never null
    assert con.execute("SELECT count(DISTINCT restriction_id) FROM rules.restrictions").fetchone()[0] == len(before)
    assert {s for (s,) in con.execute("SELECT DISTINCT source FROM rules.restrictions").fetchall()} == {
        "listing",
        "ban",
    }
