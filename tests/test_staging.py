"""Contracts → staging on a hand-made raw landing: quarantine, hold-back, history, revoke."""

from __future__ import annotations

import json

import pytest

from safecredit.landing import SourceDir
from safecredit.staging import load_raw, stage
from safecredit.warehouse import connect

GOOD_USCC = "914403001922038216"


def _valid_authority() -> str:
    from safecredit.warehouse import USCC_ALPHABET, USCC_WEIGHTS

    body = "11330100MB000000" + "1"
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(body, USCC_WEIGHTS))
    return body + USCC_ALPHABET[(31 - total % 31) % 31]


def penalty(i: int, **over) -> dict:
    auth = _valid_authority()
    rec = {
        "record_id": f"p{i}",
        "updated_at": f"2026-01-0{1 + i % 9}T10:00:00+08:00",
        "op": "upsert",
        "CF_XDR_MC": "江城市某某建筑有限公司",
        "CF_XDR_LB": "法人及非法人组织",
        "CF_XDR_SHXYM": GOOD_USCC,
        "CF_WSH": f"江应急罚〔2026〕{i}号",
        "CF_CFLB": "警告;罚款",
        "CF_NR_FK": "2.5",
        "CF_JDRQ": "2025-12-20",
        "CF_CFJG": "江城市应急管理局",
        "CF_CFJGDM": auth,
        "CF_SJLY": "江城市应急管理局",
        "CF_SJLYDM": auth,
        "AQ_WFDM": "OTHER",
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


def land(raw, dept, items, fetch_id):
    src = SourceDir(raw, dept, "penalties")
    work = src.begin(fetch_id)
    (work / "items.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8"
    )
    src.commit(work, {"transport": "json", "finished_at": "2026-01-10T00:00:00+08:00"})


@pytest.fixture
def con():
    c = connect()
    yield c
    c.close()


def test_one_bad_record_is_quarantined_the_rest_staged(tmp_path, con):
    items = [penalty(i) for i in range(1, 40)]
    items[5] = penalty(6, CF_XDR_SHXYM="91110000600037341N")  # bad check character
    items[7] = penalty(8, CF_JDRQ="2025-02-30")  # impossible date
    items[9] = penalty(10, CF_XDR_SHXYM=" ９１４４０３００１９２２０３８２１６ ")  # full-width, spaces: fine
    land(tmp_path, "yjj", items, "20260110T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    counts = stage(con, "penalties")
    assert counts["held_back"] == []
    assert counts["current"] == 37 and counts["quarantined"] == 2
    rules = dict(con.execute("SELECT record_id, rule_id FROM quality.violations").fetchall())
    assert rules == {"p6": "PENALTIES-USCC-CF_XDR_SHXYM", "p8": "PENALTIES-TYPE-CF_JDRQ"}
    assert con.execute("SELECT uscc FROM staged.penalties WHERE record_id = 'p10'").fetchone()[0] == GOOD_USCC
    msg = con.execute("SELECT message_zh, message_en FROM quality.violations WHERE record_id = 'p6'").fetchone()
    assert "统一社会信用代码" in msg[0] and "unified social credit code" in msg[1]


def test_renamed_required_field_holds_back_the_batch_and_keeps_previous_data(tmp_path, con):
    land(tmp_path, "yjj", [penalty(i) for i in range(1, 6)], "20260110T000000000000Z")
    renamed = []
    for i in range(1, 6):
        p = penalty(i, updated_at="2026-02-01T10:00:00+08:00", CF_NR_FK="9")
        p["CF_WSBH"] = p.pop("CF_WSH")
        renamed.append(p)
    land(tmp_path, "yjj", renamed, "20260201T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    counts = stage(con, "penalties")
    assert len(counts["held_back"]) == 1
    held = counts["held_back"][0]
    assert held["fetch_id"] == "20260201T000000000000Z"
    assert "yjj" in held["reason_en"] and "penalties" in held["reason_en"] and "CF_WSH" in held["reason_en"]
    assert "CF_WSBH" in held["reason_en"]
    assert counts["unknown_fields"] == ["CF_WSBH"]
    # the previous version stays in force
    fines = {r[0] for r in con.execute("SELECT fine_wan FROM staged.penalties_current").fetchall()}
    assert fines == {2.5}


def test_many_bad_records_hold_back_the_batch(tmp_path, con):
    items = [penalty(i, CF_JDRQ="not a date" if i <= 25 else "2025-12-20") for i in range(1, 101)]
    land(tmp_path, "yjj", items, "20260110T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    counts = stage(con, "penalties", {"quarantine_rate": 0.10, "quarantine_min_rows": 20})
    assert counts["held_back"] and counts["current"] == 0
    # a stricter per-source override is honoured; a laxer one lets the batch through
    counts = stage(
        con,
        "penalties",
        {"quarantine_rate": 0.10, "quarantine_min_rows": 20, "sources": {"yjj": {"quarantine_rate": 0.5}}},
    )
    assert counts["held_back"] == [] and counts["current"] == 75


def test_correction_supersedes_and_revoke_removes(tmp_path, con):
    land(tmp_path, "yjj", [penalty(1), penalty(2)], "20260110T000000000000Z")
    land(
        tmp_path,
        "yjj",
        [
            penalty(1, updated_at="2026-02-01T10:00:00+08:00", CF_NR_FK="7"),
            {"record_id": "p2", "updated_at": "2026-02-02T10:00:00+08:00", "op": "revoke"},
        ],
        "20260201T000000000000Z",
    )
    load_raw(con, tmp_path, ["yjj"], "penalties")
    counts = stage(con, "penalties")
    assert counts["quarantined"] == 0  # a revoke carries only the envelope and is not checked further
    cur = con.execute("SELECT record_id, fine_wan FROM staged.penalties_current").fetchall()
    assert [(r, float(f)) for r, f in cur] == [("p1", 7.0)]
    assert con.execute("SELECT count(*) FROM staged.penalties").fetchone()[0] == 4  # history kept


def test_a_version_sent_twice_is_staged_once_from_its_first_landing(tmp_path, con):
    """At-least-once delivery: the same (record, updated_at, op) landed again is one staged row,
    the first landed copy. The rules rely on this (subjects.penalty_versions has no dedup of its own)."""
    land(tmp_path, "yjj", [penalty(1, CF_NR_FK="3")], "20260110T000000000000Z")
    land(tmp_path, "yjj", [penalty(1, CF_NR_FK="4"), penalty(2)], "20260111T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    stage(con, "penalties")
    rows = con.execute("SELECT record_id, fetch_id, fine_wan FROM staged.penalties ORDER BY record_id").fetchall()
    assert [(r, f, float(x)) for r, f, x in rows] == [
        ("p1", "20260110T000000000000Z", 3.0),
        ("p2", "20260111T000000000000Z", 2.5),
    ]


def test_gx_suite_from_contract_passes_on_staged_and_fails_on_bad_rows(tmp_path, con):
    from safecredit.contracts import load_contract
    from safecredit.gx_suites import validate_frame

    land(tmp_path, "yjj", [penalty(i) for i in range(1, 6)], "20260110T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    stage(con, "penalties")
    contract = load_contract("penalties")
    cols = ", ".join(f.name for f in contract.fields if f.type != "list")
    frame = con.sql(f"SELECT {cols} FROM staged.penalties_current").to_arrow_table()
    frame = frame.to_pandas()
    ok = validate_frame(contract, frame)
    assert ok["success"] and ok["rows"] == 5 and ok["evaluated"] > 30
    frame.loc[0, "violation_code"] = "NOT_A_CODE"
    frame.loc[1, "fine_wan"] = -3
    bad = validate_frame(contract, frame)
    assert not bad["success"]
    failed = {(f["expectation"], f["column"]) for f in bad["failed"]}
    assert ("expect_column_values_to_be_in_set", "violation_code") in failed
    assert ("expect_column_values_to_be_between", "fine_wan") in failed

    # the same suite over the table in batches (as the contract check streams a national table):
    # the verdict, the failed expectations and their unexpected counts are those of the whole
    from safecredit.gx_suites import validate_batches

    frame.loc[4, "violation_code"] = "ALSO_NOT_A_CODE"
    whole = validate_frame(contract, frame)
    batched = validate_batches(contract, [frame.iloc[:2], frame.iloc[2:4], frame.iloc[4:]])
    assert batched["rows"] == whole["rows"] == 5
    assert (batched["success"], batched["successful"]) == (whole["success"], whole["successful"])
    counts = {(f["expectation"], f["column"]): f["unexpected_count"] for f in batched["failed"]}
    assert counts == {(f["expectation"], f["column"]): f["unexpected_count"] for f in whole["failed"]}
    assert counts[("expect_column_values_to_be_in_set", "violation_code")] == 2


def test_after_a_passing_night_the_suite_reads_only_the_records_of_new_fetches(tmp_path, con):
    """validate_current: a previous success under the same suite covers the records of the fetches
    it saw; a night's new fetches are validated alone, and a bad record among them fails the suite."""
    from safecredit.contracts import load_contract
    from safecredit.gx_suites import validate_current

    contract = load_contract("penalties")
    land(tmp_path, "yjj", [penalty(i) for i in range(1, 6)], "20260110T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    stage(con, "penalties")
    first = validate_current(con, contract)
    assert first["success"] and first["rows"] == first["validated_rows"] == 5
    assert first["fetches"] == [["yjj", "20260110T000000000000Z"]]

    # a second fetch: two new records and a new version of record 1
    land(
        tmp_path,
        "yjj",
        [penalty(6), penalty(7), penalty(1, CF_NR_FK="99", updated_at="2026-01-09T11:00:00+08:00")],
        "20260111T000000000000Z",
    )
    load_raw(con, tmp_path, ["yjj"], "penalties")
    stage(con, "penalties")
    second = validate_current(con, contract, first)
    assert second["success"] and second["rows"] == 7 and second["validated_rows"] == 3
    assert len(second["fetches"]) == 2

    # a record of the new fetch that breaks the contract is seen (the suite is a second opinion on
    # what staging let through: the row is altered here behind staging's back)
    con.execute("UPDATE staged.penalties SET fine_wan = -3 WHERE fetch_id = '20260111T000000000000Z'")
    bad = validate_current(con, contract, first)
    assert not bad["success"] and bad["validated_rows"] == 3
    # after a failure, or under another suite, everything is read again
    assert validate_current(con, contract, bad)["validated_rows"] == 7
    assert validate_current(con, contract, {**first, "suite": "penalties-0.9"})["validated_rows"] == 7


def test_dataset_assertions_of_the_contract_judge_the_whole_dataset(tmp_path, con, monkeypatch):
    """contracts/datasets/*.yaml `assertions:` (min/max records in force, quarantine share) pass on a
    healthy batch and fail, with a bilingual reason, where the dataset breaks them."""
    from safecredit import dataset_assertions as da

    assert da.assertions_of("penalties") == {"min_current": 1.0, "max_quarantine_share": 0.25}
    items = [penalty(i) for i in range(1, 11)]
    for i in (1, 2, 3):
        items[i] = penalty(i + 1, CF_JDRQ="2025-02-30")  # 3 of 10 quarantined
    land(tmp_path, "yjj", items, "20260110T000000000000Z")
    load_raw(con, tmp_path, ["yjj"], "penalties")
    stage(con, "penalties", {"quarantine_rate": 0.5})  # the batch itself is not held back
    failed, measured = da.failures(con, "penalties")
    assert measured == {"current": 7, "raw": 10, "quarantined": 3, "quarantine_share": 0.3}
    assert [f["assertion"] for f in failed] == ["max_quarantine_share"]
    assert "30.0%" in failed[0]["message"] and "被隔离" in failed[0]["message"]

    monkeypatch.setattr(da, "assertions_of", lambda ds: {"min_current": 8, "max_current": 100})
    assert [f["assertion"] for f in da.failures(con, "penalties")[0]] == ["min_current"]
    monkeypatch.setattr(da, "assertions_of", lambda ds: {"max_current": 5, "max_quarantine_share": 0.5})
    assert [f["assertion"] for f in da.failures(con, "penalties")[0]] == ["max_current"]


def _staged_tables(con) -> list:
    return [
        con.execute(f"SELECT * FROM {t}").fetchall()
        for t in (
            "staged.penalties",
            "staged.penalties_current ORDER BY department, record_id",
            "quality.violations",
            "quality.batches ORDER BY department, fetch_id",
        )
    ]


def test_staging_in_chunks_gives_the_same_tables(tmp_path, con):
    """A large department is staged in ranges of record ids (bounded memory): same rows, same order."""
    first = [penalty(i) for i in range(1, 60)]
    first[3] = penalty(4, CF_JDRQ="2025-02-30")  # quarantined
    first[4] = {k: v for k, v in penalty(5).items() if k != "record_id"}  # no record id
    first[6] = penalty(7, record_id=" ｐ7 ")  # normalises to p7
    land(tmp_path, "yjj", first, "20260110T000000000000Z")
    again = [penalty(i, CF_NR_FK="4") for i in range(1, 30)]  # same versions again: first landing wins
    again += [penalty(i, updated_at="2026-02-01T10:00:00+08:00") for i in range(30, 50)]
    again += [{"record_id": "p12", "updated_at": "2026-02-02T10:00:00+08:00", "op": "revoke"}]
    land(tmp_path, "yjj", again, "20260201T000000000000Z")
    bad = [penalty(i, CF_JDRQ="not a date") for i in range(100, 130)]  # batch held back
    land(tmp_path, "yjj", bad, "20260202T000000000000Z")
    land(tmp_path, "zjj", [penalty(i) for i in range(1, 20)], "20260110T000000000000Z")
    load_raw(con, tmp_path, ["yjj", "zjj"], "penalties")
    whole = stage(con, "penalties")
    expected = _staged_tables(con)
    chunked = stage(con, "penalties", chunk_rows=7)
    assert chunked == whole and _staged_tables(con) == expected
    assert whole["held_back"] and whole["quarantined"] > 30 and len(expected[0]) > 50


def test_a_night_s_new_fetches_are_staged_alone_and_give_what_a_replay_gives(tmp_path):
    """Issue 10 §5: an ordinary night stages only its new fetches (safecredit.staging_increment); the
    tables are those of a full staging of the same landing, row for row and in the same order."""
    from safecredit.reuse import stage_landed

    raw = tmp_path / "raw"
    first = [penalty(i) for i in range(1, 40)]
    first[3] = penalty(4, CF_JDRQ="2025-02-30")  # quarantined
    land(raw, "yjj", first, "20260110T000000000000Z")
    land(raw, "zjj", [penalty(i) for i in range(1, 20)], "20260110T000000000000Z")
    night = connect(tmp_path / "night.duckdb")
    assert stage_landed(night, raw, "penalties", {})[1] == "staged"

    # the watermark's overlap: versions already landed, sent again
    land(raw, "yjj", [penalty(i) for i in range(30, 40)], "20260111T000000000000Z")
    counts, done = stage_landed(night, raw, "penalties", {})
    assert done == "repeats" and counts["staged_versions"] == 57

    again = [penalty(i, CF_NR_FK="4") for i in range(1, 10)]  # same versions again: first landing wins
    again += [penalty(i, updated_at="2026-02-01T10:00:00+08:00") for i in range(5, 15)]  # corrections
    again += [penalty(i) for i in range(40, 45)]  # new records
    again += [penalty(45, CF_XDR_SHXYM="91110000600037341N")]  # quarantined
    again += [{"record_id": "p12", "updated_at": "2026-02-02T10:00:00+08:00", "op": "revoke"}]
    land(raw, "yjj", again, "20260201T000000000000Z")
    land(raw, "yjj", [penalty(i, CF_JDRQ="not a date") for i in range(100, 130)], "20260202T000000000000Z")  # held
    land(raw, "zjj", [penalty(i, CF_NR_FK="9", updated_at="2026-02-03T10:00:00+08:00") for i in (1, 2)], "20260203T0")
    counts, done = stage_landed(night, raw, "penalties", {})
    assert done == "increment"
    assert counts["held_back"] and counts["quarantined"] == 32

    replay = connect(tmp_path / "replay.duckdb")
    assert stage_landed(replay, raw, "penalties", {}, reuse=False) == (counts, "staged")

    raw_in_order = "SELECT * FROM raw.penalties ORDER BY department, fetch_id, seq"
    assert _staged_tables(night) == _staged_tables(replay)
    assert night.execute(raw_in_order).fetchall() == replay.execute(raw_in_order).fetchall()
    assert night.execute("SELECT count(*) FROM staged.penalties WHERE department = 'zjj'").fetchone()[0] == 21
    night.close()
    replay.close()


def test_chunked_staging_does_not_need_a_department_stored_together(tmp_path, con):
    """A large department is typed in ranges of raw row positions: with the departments' rows
    interleaved in raw (every range holds rows of the other one), unknown fields, repeats, a revoke
    and a quarantined version, chunks of 5 rows stage exactly what one chunk stages."""
    for dept in ("yjj", "zjj"):
        items = [penalty(i, CF_XJ_BZ=f"备注 {i}") if i % 3 == 0 else penalty(i) for i in range(1, 45)]
        items[10] = penalty(11, CF_NR_FK="not a number")
        land(tmp_path, dept, items, "20260110T000000000000Z")
    later = [penalty(i, CF_NR_FK="6") for i in range(1, 20)]  # repeats: the first landing wins
    later += [{"record_id": "p30", "updated_at": "2026-02-02T10:00:00+08:00", "op": "revoke"}]
    land(tmp_path, "yjj", later, "20260201T000000000000Z")
    load_raw(con, tmp_path, ["yjj", "zjj"], "penalties")
    con.execute("CREATE OR REPLACE TABLE raw.penalties AS SELECT * FROM raw.penalties ORDER BY seq, department")
    whole = stage(con, "penalties")
    expected = _staged_tables(con)
    chunked = stage(con, "penalties", chunk_rows=5)
    assert chunked == whole and _staged_tables(con) == expected
    # yjj: p30 revoked, p11 valid again in the later fetch; zjj: p11 quarantined
    assert whole["quarantined"] == 2 and whole["current"] == 43 + 43
    extra = con.execute("SELECT extra_fields FROM staged.penalties WHERE record_id = 'p3' AND department = 'zjj'")
    assert extra.fetchone()[0] == '{"CF_XJ_BZ": "备注 3"}'
    assert not con.execute("SELECT * FROM duckdb_tables() WHERE table_name LIKE '%chunked%'").fetchall()


def test_record_id_ranges_are_sampled_from_the_department_alone(con, monkeypatch):
    """The split points of a department's record-id ranges come from a sample of its own rows, even
    when another department holds nearly all of raw (sampling before the filter found none)."""
    from safecredit import staging

    monkeypatch.setattr(staging, "_BOUNDS_SAMPLE", 100)
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.penalties AS SELECT CASE WHEN i < 10000 THEN 'big' ELSE 'small' END AS department, "
        "printf('r%05d', i) AS record_id FROM range(10050) t(i)"
    )
    bounds = staging._bounds(con, "penalties", "department = 'small'", 50, 10)
    assert len(bounds) == 4 and all("r10000" < b <= "r10049" for b in bounds)


def test_the_contract_suite_s_library_loads_in_the_background_once(tmp_path):
    """`prewarm` (called when records were staged) imports GX and builds its context on a thread of
    its own; the suite then uses that context, and a second call starts nothing."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from safecredit import gx_suites as g\n"
        "assert 'great_expectations' not in sys.modules\n"
        "g.prewarm(); first = g._prewarmed; g.prewarm()\n"
        "assert g._prewarmed is first and first.name == 'gx-prewarm'\n"
        "first.join()\n"
        "assert 'great_expectations' in sys.modules and g._context.cache_info().currsize == 1\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
