"""Lean feeds (issue 10 §6): components, worksheets and labels published once, beside the rows.

A warehouse built by the real rules (the credit rules' fixture data) is published lean; the API's
snapshot joins the feeds back and answers exactly the rule tables' rows; a unit whose components did
not move is not in the next delta, and the deltas replay exactly; a code with two meanings stops the
publication with a bilingual message; the mirror verifies and mirrors the new feeds."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rules_fixtures import build_warehouse, uscc  # noqa: E402
from test_rules_credit import AS_OF, _data  # noqa: E402

from safecredit.api.snapshot import build_snapshot  # noqa: E402
from safecredit.mirror import mirror  # noqa: E402
from safecredit.mirror.sources import DirSource  # noqa: E402
from safecredit.mirror.targets import DuckDBTarget  # noqa: E402
from safecredit.publish import FEEDS, Publisher, apply_delta  # noqa: E402
from safecredit.publish.formats import read_jsonl  # noqa: E402
from safecredit.publish.gate import public_columns  # noqa: E402
from safecredit.publish.lean import LeanFeedError, code_conflicts, feed_queries  # noqa: E402

PER_UNIT = ("credit_scores", "incentives", "premium_factors", "injury_insurance_factors")
DETAIL = ("credit_score_components", "premium_worksheets", "injury_insurance_worksheets", "codes")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_warehouse(tmp_path_factory.mktemp("lean"), _data(), AS_OF)
    yield c
    c.close()


def publish(con, root: Path, day: int):
    pub = Publisher(root / "exports", root / "keys")
    feeds = {f: con.sql(q) for f, q in feed_queries(con).items()}
    res = pub.publish(feeds, as_of=date(2026, 11, day), policy_version="p", max_shrink=None)
    assert res.ok, res.reasons
    return pub, res.version


def rule_rows(con, feed: str) -> list[str]:
    cols = ", ".join(n for n, _ in public_columns(con, feed))
    return sorted(
        r[0] for r in con.execute(f"SELECT to_json(x)::VARCHAR FROM (SELECT {cols} FROM rules.{feed}) x").fetchall()
    )


def test_published_lean_and_answered_whole(con, tmp_path):
    pub, version = publish(con, tmp_path, 22)
    assert set(DETAIL) <= set(pub.index()["feeds"])
    # the per-unit rows carry codes, not labels; the labels are rows of `codes`, once
    scores = (tmp_path / "exports/credit_scores" / version / "full.jsonl").read_text(encoding="utf-8")
    assert "label" not in scores and "components" not in scores and "NO_DISHONESTY" in scores
    worksheets = (tmp_path / "exports/premium_worksheets" / version / "full.jsonl").read_text(encoding="utf-8")
    assert '"basis"' not in worksheets and '"code":"NO_ACCIDENT"' in worksheets
    codes = read_jsonl(tmp_path / "exports/codes" / version / "full.jsonl")
    conditions = [c for c in codes if (c["feed"], c["field"]) == ("credit_scores", "incentive_conditions")]
    assert len(conditions) == 7 and all(c["label"] for c in conditions)
    components = read_jsonl(tmp_path / "exports/credit_score_components" / version / "full.jsonl")
    assert len({c["uscc"] for c in components}) == pub.read_manifest("credit_scores", version)["row_count"]

    for materialize in (True, False):  # the server, and `safecredit check` (views over the files)
        snap = build_snapshot(tmp_path / "exports", materialize=materialize)
        try:
            for feed in PER_UNIT:
                assert list(snap.feeds[feed].columns) == [n for n, _ in public_columns(con, feed)], feed
                got = sorted(r[0] for r in snap.con.execute(f'SELECT to_json(x)::VARCHAR FROM "{feed}" x').fetchall())
                assert got == rule_rows(con, feed), feed
            if materialize:  # the server copies a per-unit feed only to join it back (once, not per lookup)
                kinds = dict(snap.con.execute("SELECT table_name, 'table' FROM duckdb_tables()").fetchall())
                kinds |= dict(
                    snap.con.execute("SELECT view_name, 'view' FROM duckdb_views() WHERE NOT internal").fetchall()
                )
                assert {f: kinds[f] for f in PER_UNIT} == {f: "table" for f in PER_UNIT}
                # a feed in USCC order is read from its file (its row groups pruned by USCC), not copied
                assert [kinds[f] for f in DETAIL] == ["view", "view", "view", "table"]
        finally:
            snap.close()


def test_a_unit_whose_components_did_not_move_is_not_in_the_delta(con, tmp_path):
    pub, v1 = publish(con, tmp_path, 22)
    moved = uscc(1)
    before = con.execute("SELECT components FROM rules.credit_scores WHERE uscc = ?", [moved]).fetchone()[0]
    con.execute("BEGIN")
    try:  # one more deduction for one unit, as a new penalty would give it
        con.execute(  # the unit's last item again, for another record: same code, same label
            "UPDATE rules.credit_scores SET component_count = component_count + 1, components = "
            "list_append(components, struct_update(components[-1], source_record_id := 'yjj-new')) WHERE uscc = ?",
            [moved],
        )
        _, v2 = publish(con, tmp_path, 23)
        wide_v2 = rule_rows(con, "credit_scores")
    finally:
        con.execute("ROLLBACK")
    assert con.execute("SELECT components FROM rules.credit_scores WHERE uscc = ?", [moved]).fetchone()[0] == before

    delta = pub.read_delta("credit_score_components", v2)
    assert [(d["op"], d["id"]) for d in delta] == [("ADD", [moved, len(before) + 1])]
    assert {d["id"] for d in pub.read_delta("credit_scores", v2)} == {moved}
    for feed in (*PER_UNIT, *DETAIL):  # the deltas replay exactly
        ids = FEEDS[feed].id_columns
        assert apply_delta(pub.read_records(feed, v1), pub.read_delta(feed, v2), ids) == pub.read_records(feed, v2)
    # the unchanged feeds' files are links to v1's (retention costs only what changed)
    for name in ("full.jsonl", "full.csv", "full.parquet"):
        a, b = (tmp_path / "exports/premium_worksheets" / v / name for v in (v1, v2))
        assert a.stat().st_ino == b.stat().st_ino

    # an earlier version is answered whole from its own files too (`as_of` in the past)
    snap = build_snapshot(tmp_path / "exports")
    try:
        rel, _ = snap.relation("credit_scores", v1)
        cur = f"SELECT to_json(x)::VARCHAR FROM {rel} x"
        assert sorted(r[0] for r in snap.con.execute(cur).fetchall()) == rule_rows(con, "credit_scores")
        now = sorted(r[0] for r in snap.con.execute('SELECT to_json(x)::VARCHAR FROM "credit_scores" x').fetchall())
        assert now == wide_v2 and now != rule_rows(con, "credit_scores")
    finally:
        snap.close()


def test_a_code_with_two_meanings_stops_the_publication(con):
    con.execute("BEGIN")
    try:
        con.execute(
            "UPDATE rules.incentives SET conditions = list_transform(conditions, lambda x: "
            "struct_update(x, label := x.label || '（改）')) WHERE uscc = ?",
            [uscc(1)],
        )
        with pytest.raises(LeanFeedError) as err:  # the publisher's last line
            feed_queries(con)
        gate = {t: code_conflicts(con, t) for t in ("incentives", "credit_scores")}  # the gate's check
    finally:
        con.execute("ROLLBACK")
    assert "incentives.conditions" in err.value.en and "一种含义" in err.value.zh
    assert gate["credit_scores"] == [] and {f["assertion"] for f in gate["incentives"]} == {"one_meaning_per_code"}
    assert len(gate["incentives"]) == 7  # each condition's label got a second text
    assert "code 'NO_DISHONESTY' has 2 different" in " ".join(f["message"] for f in gate["incentives"])
    assert "同一代码只能有一种含义" in gate["incentives"][0]["message"]


def test_the_mirror_verifies_and_mirrors_the_lean_feeds(con, tmp_path):
    pub, version = publish(con, tmp_path, 22)
    pem = pub.public_pem()
    target = DuckDBTarget(tmp_path / "mirror.duckdb")
    try:
        outcomes = {o.feed: o for o in mirror(DirSource(tmp_path / "exports"), target, pem)}
    finally:
        target.close()
    assert set(DETAIL) <= set(outcomes) and not any(o.skipped for o in outcomes.values())
    import duckdb

    with duckdb.connect(str(tmp_path / "mirror.duckdb"), read_only=True) as db:
        for feed in DETAIL:
            n = db.execute(f"SELECT count(*) FROM {feed}").fetchone()[0]
            assert n == pub.read_manifest(feed, version)["row_count"] > 0, feed
        label = db.execute(
            "SELECT label FROM codes WHERE feed = 'credit_scores' AND field = 'incentive_conditions' "
            "AND code = 'NO_DISHONESTY'"
        ).fetchone()
    assert label and json.dumps(label[0], ensure_ascii=False)


def test_a_night_later_the_worksheets_stay_and_their_window_moves_in_codes(con, tmp_path):
    """The windows follow `as_of`: in the rows they would rewrite every worksheet each night."""
    from datetime import timedelta

    from safecredit.policy import policy_for
    from safecredit.rules import run_rules

    pub, v1 = publish(con, tmp_path, 22)
    later = AS_OF + timedelta(days=1)
    try:
        run_rules(con, later, policy_for(later), "test-salt")
        _, v2 = publish(con, tmp_path, 23)
    finally:  # the module's warehouse goes back to AS_OF for the other tests
        run_rules(con, AS_OF, policy_for(AS_OF), "test-salt")
    assert pub.read_manifest("premium_factors", v2)["delta"]["MOD"] > 0  # valid_from/valid_to moved
    for feed in ("premium_worksheets", "injury_insurance_worksheets"):  # only units whose inputs moved
        rows = pub.read_manifest(feed, v2)["row_count"]
        assert len(pub.read_delta(feed, v2)) <= rows // 4 < rows, feed
    moved = {(d["id"][1], d["record"]["value"]) for d in pub.read_delta("codes", v2) if d["op"] == "MOD"}
    assert ("worksheet.window_end", later.isoformat()) in moved
    assert ("worksheet.floating.window_end", later.isoformat()) in moved


def test_a_version_published_before_the_split_is_answered_as_it_was(con, tmp_path):
    """Exports from before issue 10 §6 (or a version restored from then) keep answering as published."""
    from safecredit.publish.gate import feed_query

    pub = Publisher(tmp_path / "exports", tmp_path / "keys")
    wide = pub.publish({f: con.sql(feed_query(con, f)) for f in PER_UNIT}, as_of=date(2026, 11, 21), policy_version="p")
    _, lean = publish(con, tmp_path, 22)
    snap = build_snapshot(tmp_path / "exports")
    try:
        for feed in PER_UNIT:
            for version in (wide.version, lean):
                rel, _ = snap.relation(feed, version)
                got = sorted(r[0] for r in snap.con.execute(f"SELECT to_json(x)::VARCHAR FROM {rel} x").fetchall())
                assert got == rule_rows(con, feed), (feed, version)
    finally:
        snap.close()


def test_the_lean_files_are_byte_for_byte_the_same_for_the_same_rule_tables(con, tmp_path):
    pub_a, a = publish(con, tmp_path / "a", 22)
    pub_b, b = publish(con, tmp_path / "b", 22)

    def digests(pub, version):
        return {f: [(e["name"], e["sha256"]) for e in pub.read_manifest(f, version)["files"]] for f in pub.feed_names()}

    assert set(DETAIL) <= set(pub_a.feed_names())
    assert digests(pub_a, a) == digests(pub_b, b)
