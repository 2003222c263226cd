"""rules/70_intermediary_ratings.sql: agency bands from the department or the score, red triggers."""

from __future__ import annotations

from datetime import date

import pytest
from rules_fixtures import build_warehouse, penalty, revoke, ts, uscc
from test_rules_restrictions import AS_OF, SALT, rules_at, rules_back, with_policy

from safecredit.policy import policy_for
from safecredit.rules import run_rules


def rating(
    n: int,
    agency: int,
    period: str = "2026H1",
    score: str | None = None,
    band: str | None = None,
    rated: str = "2026-07-15",
    **over,
) -> dict:
    rec = {
        "record_id": f"pj-{n}",
        "updated_at": ts(rated),
        "op": "upsert",
        "JG_MC": f"江城市安全技术服务{agency}号有限公司",
        "JG_DM": uscc(agency),
        "JG_ZZLX": "安全评价",
        "JG_ZSBH": f"APJ-3312-{agency:04d}",
        "JG_ZZYXQ": "2028-12-31",
        "PJ_ZQ": period,
        "PJ_DF": score,
        "PJ_DJ": band,
        "PJ_JG": "江城市应急管理局",
        "PJ_RQ": rated,
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


FRAUD = penalty(1, 20, "2026-03-02", AQ_WFDM="AGENCY_FRAUD", CF_CFLB="罚款;暂扣许可证件", CF_NR_FK="10")
FRAUD_REVOKED = penalty(2, 21, "2026-03-02", AQ_WFDM="AGENCY_FRAUD")
FRAUD_OLD = penalty(3, 22, "2022-05-10", AQ_WFDM="AGENCY_FRAUD")

RATINGS = [
    rating(1, 1, score="90"),  # 蓝 from the score
    rating(2, 2, score="85"),  # 蓝 at the boundary
    rating(3, 3, score="84.9"),  # 黄
    rating(4, 4, score="70"),  # 黄 at the boundary
    rating(5, 5, score="69.99"),  # 橙
    rating(6, 6, score="95", band="黄"),  # the department's band is published
    rating(7, 7),  # neither score nor band
    rating(20, 20, score="92", band="蓝"),  # AGENCY_FRAUD penalty (and its B2 listing)
    rating(21, 21, score="92", band="蓝"),  # revoked fraud penalty
    rating(22, 22, score="92", band="蓝"),  # fraud penalty older than the look-back
    rating(23, 23, score="92", band="蓝", JG_ZZYXQ="2026-11-21"),  # qualification expired
    rating(24, 24, score="92", band="蓝", JG_ZZYXQ="2026-11-22"),  # last valid day = as_of: not expired
    rating(25, 25, score="80", PJ_WGQX="出具虚假报告;未到现场"),  # red violation
    rating(26, 26, score="80", PJ_WGQX="出具失实报告;超资质范围"),  # not a red violation
    rating(30, 30, period="2025H2", score="60", rated="2026-01-10"),  # older period
    rating(31, 30, period="2026H1", score="88", rated="2026-07-10"),  # latest period
    rating(32, 30, period="2026H2", score="50", rated="2026-12-10"),  # rated after as_of: not yet
]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    data = {
        "yjj": {"penalties": [FRAUD, FRAUD_REVOKED, revoke(FRAUD_REVOKED, "2026-04-01"), FRAUD_OLD]},
        "zjj": {"intermediary_ratings": RATINGS},
    }
    c = build_warehouse(tmp_path_factory.mktemp("agencies"), data, as_of=AS_OF, salt=SALT)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _rules_back(con):
    rules_back(con)


def agency(con, i: int) -> dict:
    cur = con.execute("SELECT * FROM rules.intermediary_ratings WHERE uscc = ?", [uscc(i)])
    cols = [d[0] for d in cur.description]
    found = [dict(zip(cols, r)) for r in cur.fetchall()]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "i, band, source",
    [
        (1, "蓝", "score"),
        (2, "蓝", "score"),
        (3, "黄", "score"),
        (4, "黄", "score"),
        (5, "橙", "score"),
        (6, "黄", "department"),
        (7, None, None),
        (24, "蓝", "department"),
        (26, "黄", "score"),
    ],
)
def test_band_from_department_or_score(con, i, band, source):
    a = agency(con, i)
    assert (a["band"], a["band_source"], a["red_by_trigger"], a["red_triggers"], a["linked_entry_ids"]) == (
        band,
        source,
        False,
        [],
        [],
    )


def test_one_row_per_agency_latest_period_rated_by_as_of(con):
    assert (
        con.execute("SELECT count(*), count(DISTINCT uscc) FROM rules.intermediary_ratings").fetchone()
        == (len({r["JG_DM"] for r in RATINGS}),) * 2
    )
    a = agency(con, 30)
    assert (a["period"], float(a["score"]), a["band"], a["source_record_id"]) == ("2026H1", 88.0, "蓝", "pj-31")


def test_fraud_penalty_and_b2_listing_turn_red(con):
    a = agency(con, 20)
    assert a["department_band"] == "蓝" and a["band"] == "红" and a["red_by_trigger"]
    fraud = [t for t in a["red_triggers"] if t["trigger"] == "fraud_penalty"]
    assert fraud == [
        {
            "trigger": "fraud_penalty",
            "source": "penalties",
            "source_department": "yjj",
            "source_record_id": "pen-1",
            "reference": FRAUD["CF_WSH"],
            "date": date(2026, 3, 2),
            "entry_id": None,
        }
    ]
    b2 = [
        e
        for (e,) in con.execute(
            "SELECT entry_id FROM rules.blacklist WHERE ground = 'B2' AND status = 'listed' "
            "AND subject_type = 'unit' AND subject_id = ? ORDER BY 1",
            [uscc(20)],
        ).fetchall()
    ]
    assert b2, "an AGENCY_FRAUD penalty lists the agency under B2 (rules.md §3)"
    listing = [t for t in a["red_triggers"] if t["trigger"] == "listing"]
    assert [t["entry_id"] for t in listing] == b2 and a["linked_entry_ids"] == b2
    assert all(t["source"] == "blacklist" and t["reference"] == FRAUD["CF_WSH"] for t in listing)


def test_revoked_or_old_fraud_penalty_is_no_trigger(con):
    for i in (21, 22):
        a = agency(con, i)
        assert (a["band"], a["red_triggers"], a["linked_entry_ids"]) == ("蓝", [], []), a


def test_expired_qualification_turns_red(con):
    a = agency(con, 23)
    assert a["band"] == "红"
    assert a["red_triggers"] == [
        {
            "trigger": "qualification_expired",
            "source": "intermediary_ratings",
            "source_department": "zjj",
            "source_record_id": "pj-23",
            "reference": "APJ-3312-0023",
            "date": date(2026, 11, 21),
            "entry_id": None,
        }
    ]
    assert agency(con, 24)["band"] == "蓝"


def test_red_violation_turns_red(con):
    a = agency(con, 25)
    assert (a["score_band"], a["band"]) == ("黄", "红")
    assert [(t["trigger"], t["reference"], t["source_record_id"]) for t in a["red_triggers"]] == [
        ("rating_violation", "出具虚假报告", "pj-25")
    ]


def test_triggers_follow_policy_switches(con):
    bands = [{"band": "蓝", "label": "优秀", "min_score": 90}, {"band": "橙", "label": "警示", "min_score": 0}]
    with rules_at(
        con,
        policy=with_policy(
            **{
                "agencies.red_on_expired_qualification": False,
                "agencies.red_on_violations": False,
                "tables.agency_bands": bands,
            }
        ),
    ):
        assert agency(con, 23)["band"] == "蓝" and agency(con, 25)["band"] == "橙"
        assert agency(con, 1)["band"] == "蓝" and agency(con, 3)["band"] == "橙"


def test_deterministic_and_publishable(con):
    from safecredit.publish import FEEDS
    from safecredit.publish.formats import prepare

    table = con.sql("SELECT * FROM rules.intermediary_ratings ORDER BY uscc").to_arrow_table()
    run_rules(con, AS_OF, policy_for(AS_OF), SALT)
    again = con.sql("SELECT * FROM rules.intermediary_ratings ORDER BY uscc").to_arrow_table()
    assert again.equals(table)
    feed = prepare(FEEDS["intermediary_ratings"], table)
    assert feed.lines == prepare(FEEDS["intermediary_ratings"], again).lines
    assert any('"trigger":"fraud_penalty"' in line for line in feed.lines)
