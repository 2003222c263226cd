"""Landing → raw for CSV fetches: the day files read as a few joined files give exactly what reading
them day by day gives, and anything the join could misread falls back to the day-by-day read."""

from __future__ import annotations

import csv
import io
import json

import pytest

from safecredit import raw_load
from safecredit.csv_days import count_csv_records
from safecredit.landing import SourceDir
from safecredit.warehouse import connect

HEADER = ["record_id", "updated_at", "op", "CF_XDR_MC", "CF_WSH", "CF_JDRQ"]
# a later export renamed nothing but added a column the contract does not know and dropped CF_JDRQ
OTHER = ["record_id", "updated_at", "op", "CF_XDR_MC", "CF_WSH", "XX_NEW"]


def _csv(header, rows, *, crlf=False) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if crlf else "\n").writerows([header, *rows])
    return buf.getvalue()


def _row(i: int, **over) -> list[str]:
    base = [
        f"r{i}",
        f"2026-01-0{1 + i % 9}T10:00:00+08:00",
        "upsert",
        f"江城某公司{i}",
        f"江应急罚〔2026〕{i}号",
        "2025-12-20",
    ]
    return [over.get(str(k), v) for k, v in enumerate(base)]


def _land_days(raw, days: list[tuple[str, bytes, str]], fetch_id="20260110T000000000000Z"):
    src = SourceDir(raw, "zjj", "penalties")
    work = src.begin(fetch_id)
    (work / "days").mkdir()
    listed = []
    for day, data, charset in days:
        (work / "days" / f"{day}.csv").write_bytes(data)
        codec = "gb18030" if charset == "gbk" else "utf-8-sig"
        listed.append({"date": day, "rows": count_csv_records(data.decode(codec))[1], "charset": charset})
    src.commit(work, {"transport": "csv", "finished_at": "2026-01-10T00:00:00+08:00", "days": listed})


def _raw(raw, monkeypatch=None) -> list[tuple]:
    con = connect()
    if monkeypatch is not None:  # the day-by-day read the joined read must equal
        monkeypatch.setattr(raw_load, "_insert_csv_segments", lambda *a: False)
    raw_load.load_raw(con, raw, ["zjj"], "penalties")
    rows = con.execute("SELECT * EXCLUDE (landed_at) FROM raw.penalties").fetchall()
    con.close()
    return rows


def test_joined_day_files_read_what_the_days_hold(tmp_path, monkeypatch):
    days = [
        ("2026-01-01", _csv(HEADER, [_row(1), _row(2, **{"3": "多行\n名称, 含逗号"})]).encode(), "utf-8"),
        ("2026-01-02", _csv(HEADER, [_row(3)]).encode("gb18030"), "gbk"),
        ("2026-01-03", b"\xef\xbb\xbf" + _csv(HEADER, [_row(4), _row(5)], crlf=True).encode(), "utf-8"),
        ("2026-01-04", _csv(HEADER, [_row(6)]).encode().rstrip(b"\n"), "utf-8"),  # no final newline
        (
            "2026-01-05",
            _csv(OTHER, [_row(7, **{"5": "新字段"}), ["r8", "2026-01-05T10:00:00+08:00"]]).encode(),
            "utf-8",
        ),
        ("2026-01-06", _csv(HEADER, [_row(9, **{"3": ""})]).encode(), "utf-8"),
    ]
    _land_days(tmp_path, days)
    joined = _raw(tmp_path)
    assert joined == _raw(tmp_path, monkeypatch)
    by_id = {r[3]: r for r in joined}
    assert [r[2] for r in joined] == list(range(9))  # seq: the record's place in the fetch
    assert by_id["r2"][6] == "多行\n名称, 含逗号" and by_id["r3"][6] == "江城某公司3"
    assert by_id["r7"][-1] == '{"XX_NEW": "新字段"}' and by_id["r8"][-1] == '{"XX_NEW": ""}'
    assert by_id["r9"][6] is None  # an empty cell is an absent field
    assert by_id["r1"][-1] is None


def test_a_quote_left_open_falls_back_to_reading_day_by_day(tmp_path, monkeypatch):
    """A day ending inside a quoted field would swallow the next day's rows once joined: the rows
    read no longer match the rows landed, so the days are read one by one (with the same result
    and the same error the day-by-day read gives)."""
    open_quote = _csv(HEADER, [_row(1)]) + 'r2,2026-01-01T10:00:00+08:00,upsert,"未闭合\n'
    _land_days(
        tmp_path,
        [("2026-01-01", open_quote.encode(), "utf-8"), ("2026-01-02", _csv(HEADER, [_row(3)]).encode(), "utf-8")],
    )
    calls = []
    real = raw_load._insert_csv_segments
    monkeypatch.setattr(raw_load, "_insert_csv_segments", lambda *a: calls.append(real(*a)) or calls[-1])
    con = connect()
    try:
        got = raw_load.load_raw(con, tmp_path, ["zjj"], "penalties")
    except Exception as exc:  # noqa: BLE001 - compared with the day-by-day read's outcome below
        got = type(exc)
    finally:
        con.close()
    assert calls == [False]
    monkeypatch.setattr(raw_load, "_insert_csv_segments", lambda *a: False)
    con = connect()
    try:
        expected = raw_load.load_raw(con, tmp_path, ["zjj"], "penalties")
    except Exception as exc:  # noqa: BLE001
        expected = type(exc)
    finally:
        con.close()
    assert got == expected


@pytest.mark.parametrize("header", [["record_id", "", "op"], ["record_id", "op", "op"]])
def test_a_header_that_names_no_columns_plainly_is_read_day_by_day(tmp_path, header):
    _land_days(tmp_path, [("2026-01-01", _csv(header, [["r1", "x", "upsert"]]).encode(), "utf-8")])
    [fetch] = SourceDir(tmp_path, "zjj", "penalties").fetches()
    day = {"date": "2026-01-01", "rows": 1, "charset": "utf-8"}
    assert raw_load._day_segments(fetch, [day], tmp_path) is None


# -- JSON pages: the one-parse reading (pages.plain_items) against the general one ----------------


def _land_pages(raw, pages: list[str], until: str | None = None, fetch_id="20260110T000000000000Z"):
    src = SourceDir(raw, "yjj", "penalties")
    work = src.begin(fetch_id)
    (work / "pages").mkdir()
    for n, body in enumerate(pages, 1):
        (work / "pages" / f"{n:06d}.json").write_text(body, encoding="utf-8")
    manifest = {"transport": "json", "finished_at": "2026-01-10T00:00:00+08:00", "pages": len(pages)}
    src.commit(work, {**manifest, "params": {"until": until}})


def _raw_json(raw, monkeypatch, *, general: bool) -> tuple[list[tuple], bool]:
    """The raw rows, and whether the one-parse reading took the fetch."""
    used = []
    plain = raw_load.plain_items

    def spy(*args, **kwargs):
        got = None if general else plain(*args, **kwargs)
        used.append(got is not None)
        return got

    monkeypatch.setattr(raw_load, "plain_items", spy)
    con = connect()
    raw_load.load_raw(con, raw, ["yjj"], "penalties")
    rows = con.execute("SELECT * EXCLUDE (landed_at) FROM raw.penalties ORDER BY seq").fetchall()
    con.close()
    return rows, any(used)


def _item(i: int, **fields) -> dict:
    return {"record_id": f"p{i}", "updated_at": f"2026-01-0{1 + i % 9}T10:00:00+08:00", "op": "upsert", **fields}


def _page(*items) -> str:
    return json.dumps({"items": list(items), "next_cursor": None}, ensure_ascii=False)


def test_pages_read_with_one_parse_give_what_the_general_reading_gives(tmp_path, monkeypatch):
    pages = [
        _page(
            _item(1, CF_XDR_MC='江城"某"公司\\分部\n二号', CF_WSH="", CF_NR_FK=2.0),
            _item(2, CF_XDR_MC="caf\u00e9", CF_NR_FK=2.5, CF_JDRQ=None),
            None,  # not an object: never an item
            _item(3, CF_NR_FK=1e3, CF_WSH={"a": [1, "b"]}, CF_XDR_MC=True),
        ),
        _page(
            _item(1, CF_XDR_MC='江城"某"公司\\分部\n二号', CF_WSH="", CF_NR_FK=2.0),  # a repeat: dropped
            _item(4, CF_NR_FK=-0.5, CF_XDR_MC="12345678901234567890"),
            _item(5, CF_NR_FK=7, CF_XDR_MC="x"),
            {**_item(6), "updated_at": "2026-02-01T00:00:00+08:00"},  # at the backfill window's end
        ),
        _page(),
    ]
    _land_pages(tmp_path, pages, until="2026-01-31T16:00:00Z")
    plain, took = _raw_json(tmp_path, monkeypatch, general=False)
    general, _ = _raw_json(tmp_path, monkeypatch, general=True)
    assert took and plain == general
    assert [r[3] for r in plain] == ["p1", "p2", "p3", "p4", "p5"] and [r[2] for r in plain] == [0, 1, 2, 4, 5]
    con = connect()
    raw_load.load_raw(con, tmp_path, ["yjj"], "penalties")
    got = con.execute("SELECT CF_XDR_MC, CF_WSH, CF_NR_FK FROM raw.penalties ORDER BY seq").fetchall()
    assert got == [
        ('江城"某"公司\\分部\n二号', None, "2"),  # "" is absent; 2.0 is "2", as departments mean it
        ("café", None, "2.5"),
        ("true", '{"a":[1,"b"]}', "1000"),
        ("12345678901234567890", None, "-0.5"),
        ("x", None, "7"),
    ]


@pytest.mark.parametrize(
    "odd",
    [
        {**_item(9), "XX_NEW": "新字段"},  # an unknown key: extra_fields
        {**_item(9), "record_id": None},  # a key field null (missing is another record)
        {**_item(9), "record_id": 9},  # a key field that is not text
        "not an object",
    ],
)
def test_a_fetch_the_one_parse_reading_cannot_take_is_read_in_general(tmp_path, monkeypatch, odd):
    _land_pages(
        tmp_path,
        [_page(_item(1, CF_NR_FK=2.0)), _page(_item(2), odd, {k: v for k, v in _item(3).items() if k != "record_id"})],
    )
    rows, took = _raw_json(tmp_path, monkeypatch, general=False)
    assert not took
    assert rows == _raw_json(tmp_path, monkeypatch, general=True)[0]
