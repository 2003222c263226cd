"""The publication gate's assertions (safecredit/publish/gate.py), judged in DuckDB over rules.<feed>."""

from __future__ import annotations

from datetime import date

import pytest

from safecredit.codes import make_id_number, mask_id_number
from safecredit.publish import gate
from safecredit.warehouse import connect

PERSON = make_id_number("110105", date(1980, 5, 17), 23)
WRONG_CHECK = PERSON[:17] + ("0" if PERSON[17] != "0" else "1")


@pytest.fixture
def con():
    c = connect()
    c.execute("CREATE SCHEMA rules")
    c.execute("""CREATE TABLE rules.blacklist (entry_id VARCHAR, name VARCHAR, note VARCHAR,
                 subject_code_full VARCHAR, measures VARCHAR[], as_of DATE)""")
    yield c
    c.close()


def _rows(con, *rows):
    con.executemany("INSERT INTO rules.blacklist VALUES (?, ?, ?, ?, ?, DATE '2026-11-22')", rows)


def test_public_columns_leave_out_private_and_run_constant_columns(con):
    assert [n for n, _ in gate.public_columns(con, "blacklist")] == ["entry_id", "name", "note", "measures"]
    assert "subject_code_full" not in gate.feed_query(con, "blacklist")


def test_duplicate_ids_fail_unique_ids(con):
    _rows(con, ("E1", "a", None, None, []), ("E2", "b", None, None, []))
    assert gate.duplicate_ids(con, "blacklist") == []
    _rows(con, ("E2", "c", None, None, []))
    [failure] = gate.duplicate_ids(con, "blacklist")
    assert failure["assertion"] == "unique_ids" and "E2" in failure["message"] and "对应多行" in failure["message"]


def test_a_full_id_number_in_a_public_column_fails_and_is_shown_masked(con):
    _rows(con, ("E1", "张三", f"编号{WRONG_CHECK}", PERSON, ["限制乘坐飞机"]))  # private column, wrong check char
    assert gate.full_id_numbers(con, "blacklist") == []
    _rows(con, ("E2", "李四", f"身份证 {PERSON} 已核实", None, []), ("E3", "王五", None, None, [f"x{PERSON}"]))
    failures = gate.full_id_numbers(con, "blacklist")
    assert [f["message"].split(":")[0] for f in failures] == ["blacklist.note"]  # x<ID> is no standalone number
    assert PERSON not in failures[0]["message"] and mask_id_number(PERSON) in failures[0]["message"]
    _rows(con, ("E4", "赵六", None, None, [PERSON]))  # inside a list: its text is read too
    assert [f["message"].split(":")[0] for f in gate.full_id_numbers(con, "blacklist")] == [
        "blacklist.measures",
        "blacklist.note",
    ]


def test_shrink_beyond_policy_fails_and_a_first_version_never_does():
    assert gate.shrink("blacklist", 10, None, None, 0.2) == []
    assert gate.shrink("blacklist", 80, 100, "V1", 0.2) == []
    [failure] = gate.shrink("blacklist", 79, 100, "V1", 0.2)
    assert (
        failure["assertion"] == "shrink_within_policy" and "21.0%" in failure["message"] and "V1" in failure["message"]
    )


def _both() -> str:
    """An 18-digit code that passes the checks of a USCC and of an ID number (about 1 in 31 does)."""
    from datetime import timedelta

    from safecredit.codes import is_valid_uscc

    return next(
        code
        for i in range(5000)
        if is_valid_uscc(code := make_id_number("110101", date(1980, 1, 1) + timedelta(days=i // 10), i % 10))
    )


def test_a_units_uscc_that_also_passes_as_an_id_number_is_its_code_not_a_leak():
    """At city scale some USCCs pass an ID number's checks too: in a column of units' codes (and in a
    subject's code where the subject is a unit) it is the unit's code; the same value for a person is a leak."""
    both = _both()
    c = connect()
    c.execute("CREATE SCHEMA rules")
    c.execute("CREATE TABLE rules.credit_scores (uscc VARCHAR, name VARCHAR)")
    c.execute("INSERT INTO rules.credit_scores VALUES (?, '某化工有限公司')", [both])
    c.execute("CREATE TABLE rules.blacklist (entry_id VARCHAR, subject_type VARCHAR, subject_code VARCHAR)")
    c.execute("INSERT INTO rules.blacklist VALUES ('E1', 'unit', ?)", [both])
    assert gate.full_id_numbers(c, "credit_scores") == []
    assert gate.full_id_numbers(c, "blacklist") == []
    c.execute("INSERT INTO rules.blacklist VALUES ('E2', 'person', ?)", [both])
    [failure] = gate.full_id_numbers(c, "blacklist")
    assert failure["message"].startswith("blacklist.subject_code: 1 value(s)")
    c.close()

    from safecredit.publish.feeds import FEEDS
    from safecredit.publish.guards import find_in_records

    spec = FEEDS["blacklist"]
    unit = {"entry_id": "E1", "subject_type": "unit", "subject_code": both}
    person = {"entry_id": "E2", "subject_type": "person", "subject_code": both}
    assert find_in_records([unit], spec.unit_codes, spec.subject_codes) == []
    assert [c for c, *_ in find_in_records([unit, person], spec.unit_codes, spec.subject_codes)] == ["subject_code"]
    assert find_in_records([{"uscc": both}], FEEDS["credit_scores"].unit_codes) == []


def test_text_leaves_read_nested_texts_and_big_decimals_but_not_numbers_or_dates(con):
    """The gate and the publisher's last-line guard read the same texts (guards.text_leaves)."""
    from safecredit.publish.guards import join_texts, row_text_sql, text_leaves

    con.execute(f"""CREATE TABLE t AS SELECT
        {{'ref': 110105198005172311::DECIMAL(18,0), 'n': 110105198005172311::BIGINT, 'd': DATE '2026-01-02',
          'events': [{{'note': 'a {PERSON}', 'at': 7}}],
          'tags': MAP {{'k': ['v1', 'v2']}}}} AS detail,
        42 AS plain""")
    rel = con.sql("SELECT * FROM t")
    types = dict(zip(rel.columns, rel.types))
    assert text_leaves('"plain"', types["plain"]) == []
    [text] = con.execute(f"SELECT {join_texts(text_leaves('detail', types['detail']))} FROM t").fetchone()
    # the big decimal is text in full.jsonl (a string), the bigint and the date are not
    assert text.split(" ") == ['"110105198005172311"', "a", PERSON, "k", "v1", "v2"]
    [row] = con.execute(f"SELECT {row_text_sql(list(types.items()))} FROM t").fetchone()
    assert row == text
