"""Contract tests of the department simulator over real HTTP (department-feeds.md), one per
endpoint, error status and named fault. Data: the small fixture of ``sim_fixtures``."""

from __future__ import annotations

import csv
import io
import re
import socket
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import yaml
from sim_fixtures import END, START, write_fixture

from safecredit.codes import is_valid_reg_no15, is_valid_uscc, normalise_code
from safecredit.simulator import FAULTS, REALISTIC_FAULTS, parse_faults, start_simulator
from safecredit.simulator.command import simulate
from safecredit.simulator.faults import DATA_FAULTS

SEED = 11
T = 10  # seconds: client timeout for ordinary requests


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("simfixture")
    write_fixture(out)
    return out


class Pool:
    """Simulators started on demand, one per configuration, stopped at the end of the module."""

    def __init__(self, data_dir):
        self.data_dir, self.sims = data_dir, {}

    def __call__(self, faults=(), departments=None, **kw):
        key = (repr(faults), repr(departments), repr(sorted(kw.items())))
        if key not in self.sims:
            self.sims[key] = start_simulator(
                self.data_dir, port=0, seed=kw.pop("seed", SEED), faults=faults, departments=departments, **kw
            )
        return self.sims[key]

    def close(self):
        for sim in self.sims.values():
            sim.stop()


@pytest.fixture(scope="module")
def sims(data_dir):
    pool = Pool(data_dir)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def clean(sims):
    return sims()


# ------------------------------------------------------------------ client helpers


def dept(sim, dept_id):
    return next(d for d in sim.departments if d["id"] == dept_id)


def get(sim, dept_id, path, token=None, timeout=T, **params):
    d = dept(sim, dept_id)
    headers = {"Authorization": f"Bearer {d['token'] if token is None else token}"} if token != "" else {}
    return requests.get(d["base_url"] + path, params=params, headers=headers, timeout=timeout)


def pages(sim, dept_id, dataset, limit=7, **params):
    """Every page of a pull until next_cursor is null (no faults expected)."""
    out, cursor = [], None
    while True:
        q = dict(params, limit=limit, **({"cursor": cursor} if cursor else {}))
        r = get(sim, dept_id, f"/datasets/{dataset}/records", **q)
        assert r.status_code == 200, r.text
        body = r.json()
        out.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def pull(sim, dept_id, dataset, limit=7, **params):
    return [it for p in pages(sim, dept_id, dataset, limit, **params) for it in p["items"]]


def latest(items):
    """record_id -> the latest version (by updated_at) of each record."""
    out = {}
    for it in items:
        if it["record_id"] not in out or it["updated_at"] >= out[it["record_id"]]["updated_at"]:
            out[it["record_id"]] = it
    return out


def read_csv(r) -> tuple[list[str], list[dict], bytes]:
    charset = re.search(r"charset=([\w-]+)", r.headers["Content-Type"]).group(1)
    text = r.content.decode("utf-8-sig" if charset.lower() == "utf-8" else charset)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], [dict(zip(rows[0], row)) for row in rows[1:]], r.content


def busiest_day(items) -> date:
    days = [it["updated_at"][:10] for it in items]
    return date.fromisoformat(max(set(days), key=days.count))


def versions(sim, dept_id, dataset):
    """All visible versions, whatever the transport of the department (CSV: day by day)."""
    if dept(sim, dept_id)["transport"] == "json":
        return pull(sim, dept_id, dataset, limit=1000)
    out, day = [], START
    while day <= sim.now.date():
        r = get(sim, dept_id, f"/datasets/{dataset}/export.csv", date=day.isoformat())
        assert r.status_code == 200
        out += read_csv(r)[1]
        day += timedelta(days=1)
    return out


# ------------------------------------------------------------------ catalogue, auth, errors


def test_departments_sources_and_tokens(clean, data_dir, tmp_path, sims):
    ids = [d["id"] for d in clean.departments]
    assert ids == ["yjj", "zjj", "jtj", "scj"]
    by = {d["id"]: d for d in clean.departments}
    assert by["zjj"]["transport"] == "csv" and by["yjj"]["transport"] == "json"
    assert by["yjj"]["datasets"] == ["enterprises", "penalties", "accidents", "intermediary_ratings", "credit_actions"]
    assert all(re.fullmatch(rf"sim-{i}-[0-9a-f]{{8}}", by[i]["token"]) for i in ids)
    assert len({d["token"] for d in clean.departments}) == 4
    assert len({d["base_url"] for d in clean.departments}) == 4
    other = sims(departments=["scj"])
    assert dept(other, "scj")["token"] == by["scj"]["token"]  # same seed, same token
    assert sims(departments=["scj"], seed=SEED + 1).departments[0]["token"] != by["scj"]["token"]

    path = clean.write_sources(tmp_path / "sources.yaml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [d["id"] for d in doc["departments"]] == ids
    for d in doc["departments"]:
        # kind: the department's list regime (operations.md); this fixture's departments name none
        assert d == {k: by[d["id"]][k] for k in ("id", "name", "base_url", "token", "transport", "kind", "datasets")}
        assert d["kind"] == "other"
    assert clean.now.isoformat() == f"{END.isoformat()}T23:59:59+08:00"


def test_catalogue(clean):
    r = get(clean, "yjj", "/datasets")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["department"] == "yjj"
    pen = next(d for d in body["datasets"] if d["name"] == "penalties")
    assert pen == {
        "name": "penalties",
        "schema_version": "1",
        "transports": ["json", "csv"],
        "first_export_date": START.isoformat(),
        "last_export_date": END.isoformat(),
    }
    jtj = get(clean, "jtj", "/datasets").json()
    assert [d["name"] for d in jtj["datasets"]] == ["penalties", "accidents"]
    assert all(d["transports"] == ["json"] and "first_export_date" not in d for d in jtj["datasets"])
    assert get(clean, "zjj", "/datasets").json()["datasets"][0]["transports"] == ["csv"]


@pytest.mark.parametrize(
    "path",
    [
        "/datasets",
        "/datasets/penalties/records",
        "/datasets/penalties/export.csv?date=2024-01-03",
        "/_sim/truth?dataset=penalties",
    ],
)
def test_401_without_or_with_wrong_token(clean, path):
    assert get(clean, "yjj", path, token="").status_code == 401
    assert get(clean, "yjj", path, token="nope").status_code == 401
    r = get(clean, "yjj", path, token=dept(clean, "scj")["token"])  # another department's token
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "dept_id,path",
    [
        ("yjj", "/datasets/nosuch/records"),
        ("yjj", "/datasets/nosuch/export.csv?date=2024-01-03"),
        ("zjj", "/datasets/penalties/records"),  # CSV-only department: no JSON
        ("jtj", "/datasets/penalties/export.csv?date=2024-01-03"),  # JSON-only department: no CSV
        ("zjj", "/datasets/accidents/export.csv?date=2024-01-03"),  # another department's dataset
        ("yjj", "/datasets/penalties/export.csv?date=2023-12-31"),  # before first_export_date
        ("yjj", "/datasets/penalties/export.csv?date=2024-04-01"),  # after last_export_date
        ("yjj", "/nothing"),
    ],
)
def test_404(clean, dept_id, path):
    r = get(clean, dept_id, path)
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"updated_since": "yesterday"},
        {"updated_since": "2024-13-01T00:00:00+08:00"},
        {"updated_since": "2024-01-01T00:00:00"},
        {"updated_since": "2024-01-01T00:00:00 08:00"},
        {"cursor": "not-a-cursor"},
    ],
)
def test_400_records(clean, params):
    r = get(clean, "yjj", "/datasets/penalties/records", **params)
    assert r.status_code == 400, params
    assert r.json()["status"] == 400


@pytest.mark.parametrize("value", [None, "", "2024-1-3", "2024-02-30", "20240103", "tomorrow"])
def test_400_export_date(clean, value):
    params = {} if value is None else {"date": value}
    assert get(clean, "yjj", "/datasets/penalties/export.csv", **params).status_code == 400


def test_cursor_of_another_dataset_is_400(clean):
    cursor = get(clean, "yjj", "/datasets/accidents/records", limit=2).json()["next_cursor"]
    assert get(clean, "yjj", "/datasets/penalties/records", cursor=cursor).status_code == 400


def test_410_cursor_older_than_ttl(sims):
    sim = sims(departments=["scj"], cursor_ttl=-1.0)  # every cursor is already past its hour
    first = get(sim, "scj", "/datasets/penalties/records", limit=5).json()
    r = get(sim, "scj", "/datasets/penalties/records", limit=5, cursor=first["next_cursor"])
    assert r.status_code == 410 and "updated_since" in r.json()["error"]


# ------------------------------------------------------------------ JSON pages


@pytest.mark.parametrize(
    "dept_id,dataset,count",
    [
        ("yjj", "penalties", 150),
        ("yjj", "enterprises", 60),
        ("yjj", "accidents", 30),
        ("yjj", "intermediary_ratings", 20),
        ("yjj", "credit_actions", 15),
        ("jtj", "penalties", 40),
        ("jtj", "accidents", 20),
        ("scj", "penalties", 40),
    ],
)
def test_paging_returns_every_version_once_in_order(clean, dept_id, dataset, count):
    ps = pages(clean, dept_id, dataset, limit=7)
    items = [it for p in ps for it in p["items"]]
    assert len(items) == count and len({it["record_id"] for it in items}) == count
    assert [(i["updated_at"], i["record_id"]) for i in items] == sorted(
        (i["updated_at"], i["record_id"]) for i in items
    )
    assert all(len(p["items"]) == 7 for p in ps[:-1])
    for p in ps:
        assert p["dataset"] == dataset and p["schema_version"] == "1"
        assert p["server_time"] == f"{END.isoformat()}T23:59:59+08:00"
    assert items == pull(clean, dept_id, dataset, limit=1000)
    assert all(it["op"] == "upsert" and isinstance(it["record_id"], str) for it in items)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", it["updated_at"]) for it in items)


def test_ties_on_updated_at_are_ordered_by_record_id(clean):
    items = pull(clean, "yjj", "penalties", limit=1)
    tied = [
        it
        for it in items
        if it["updated_at"] == next(i for i in items if i["record_id"] == "yjj-pen-00000")["updated_at"]
    ]
    assert [it["record_id"] for it in tied] == ["yjj-pen-00000", "yjj-pen-00001"]


def test_default_limit_and_fields(clean):
    body = get(clean, "yjj", "/datasets/penalties/records").json()
    assert len(body["items"]) == 150 and body["next_cursor"] is None  # default limit 500 > 150
    item = body["items"][0]
    assert list(item)[:4] == ["record_id", "updated_at", "op", "CF_XDR_MC"]
    assert all(isinstance(v, str) for v in item.values())


def test_updated_since_is_inclusive(clean):
    items = pull(clean, "yjj", "penalties", limit=1000)
    since = items[40]["updated_at"]
    got = pull(clean, "yjj", "penalties", limit=9, updated_since=since)
    assert got == [it for it in items if it["updated_at"] >= since]
    assert got[0]["updated_at"] == since
    utc = (datetime.fromisoformat(since) - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pull(clean, "yjj", "penalties", limit=1000, updated_since=utc) == got  # any offset works


def test_set_now_hides_later_versions(sims):
    sim = sims(departments=["yjj"])
    everything = pull(sim, "yjj", "penalties", limit=1000)
    mid = datetime.fromisoformat(everything[70]["updated_at"])
    sim.set_now(mid)
    try:
        body = get(sim, "yjj", "/datasets/penalties/records", limit=1000).json()
        assert body["items"] == everything[:71]  # inclusive of now (no tie at index 70/71 in the fixture)
        assert body["server_time"] == mid.isoformat()
        cat = get(sim, "yjj", "/datasets").json()["datasets"][0]
        assert cat["last_export_date"] == mid.date().isoformat()
        nxt = (mid + timedelta(days=1)).date().isoformat()
        assert get(sim, "yjj", "/datasets/penalties/export.csv", date=nxt).status_code == 404
        # the admin endpoint mirrors set_now
        r = requests.post(
            dept(sim, "yjj")["base_url"] + "/_sim/clock",
            params={"now": END.isoformat() + "T23:59:59+08:00"},
            headers={"Authorization": f"Bearer {dept(sim, 'yjj')['token']}"},
            timeout=T,
        )
        assert r.status_code == 200 and r.json()["now"] == END.isoformat() + "T23:59:59+08:00"
        assert sim.now == datetime.fromisoformat(END.isoformat() + "T23:59:59+08:00")
        assert pull(sim, "yjj", "penalties", limit=1000) == everything
    finally:
        sim.set_now(datetime.fromisoformat(END.isoformat() + "T23:59:59+08:00"))


def test_clock_endpoint_rejects_garbage(clean):
    d = dept(clean, "scj")
    r = requests.post(
        d["base_url"] + "/_sim/clock",
        params={"now": "soon"},
        headers={"Authorization": f"Bearer {d['token']}"},
        timeout=T,
    )
    assert r.status_code == 400


# ------------------------------------------------------------------ CSV exports


def test_csv_export_matches_json_of_that_day(clean):
    items = pull(clean, "yjj", "penalties", limit=1000)
    day = busiest_day(items)
    r = get(clean, "yjj", "/datasets/penalties/export.csv", date=day.isoformat())
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    header, rows, raw = read_csv(r)
    assert header[:3] == ["record_id", "updated_at", "op"] and header == list(items[0])
    expected = [it for it in items if it["updated_at"].startswith(day.isoformat())]
    assert rows == expected and len(rows) >= 2
    assert r.headers["X-Record-Count"] == str(len(rows))
    assert b"\r\n" not in raw and not raw.startswith(b"\xef\xbb\xbf")  # LF, no BOM by default


def test_csv_only_department_serves_every_record_by_day(clean):
    rows = versions(clean, "zjj", "penalties")
    assert len(rows) == 40 and len({r["record_id"] for r in rows}) == 40


def test_csv_empty_day_is_header_only(clean):
    saturday = date(2024, 1, 6)
    r = get(clean, "yjj", "/datasets/penalties/export.csv", date=saturday.isoformat())
    header, rows, raw = read_csv(r)
    assert r.status_code == 200 and rows == [] and r.headers["X-Record-Count"] == "0"
    assert raw.decode().count("\n") == 1 and header[0] == "record_id"


def test_admin_truth_endpoint(sims):
    sim = sims(faults={"revocations": 0.3}, departments=["yjj"])
    r = get(sim, "yjj", "/_sim/truth", dataset="penalties")
    assert r.status_code == 200 and r.json()["truth"] == sim.truth("yjj", "penalties") != []
    assert get(sim, "yjj", "/_sim/truth").status_code == 400
    assert get(sim, "yjj", "/_sim/truth", dataset="nosuch").status_code == 404
    assert sims().truth("yjj", "penalties") == []  # clean means clean


def test_deterministic_given_seed(data_dir, sims):
    faults = {n: 0.2 for n in DATA_FAULTS} | {"corrections": 0.2, "late_records": 0.1}
    a = sims(faults=faults, departments=["yjj"])
    with start_simulator(data_dir, port=0, seed=SEED, faults=faults, departments=["yjj"]) as b:
        for ds in ("penalties", "accidents"):
            assert pull(a, "yjj", ds, limit=13) == pull(b, "yjj", ds, limit=13)
            assert a.truth("yjj", ds) == b.truth("yjj", ds) != []
    c = sims(faults=faults, departments=["yjj"], seed=SEED + 5)
    assert c.truth("yjj", "penalties") != a.truth("yjj", "penalties")


# ------------------------------------------------------------------ data faults


def _date(text):
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"):
        try:
            return datetime.strptime(text.split(" ")[0], fmt).date()
        except ValueError:
            pass
    return None


def _swap(name):
    return (
        name.replace("有限责任公司", "有限公司") if "有限责任公司" in name else name.replace("有限公司", "有限责任公司")
    )


_GRADES = ["一般", "较大", "重大", "特别重大"]
CHECKS = {
    "fullwidth": lambda e, rec: (
        e["served"] != e["original"]
        and normalise_code(e["served"]) == normalise_code(e["original"])
        and (
            any(unicodedata.east_asian_width(c) == "F" for c in e["served"])
            or e["served"] != e["served"].strip()
            or " " in e["served"]
            or e["served"] != e["served"].upper()
        )
    ),
    "name_variants": lambda e, rec: e["served"] == _swap(e["original"]) or e["served"].startswith("深圳市旧名"),
    "bad_uscc": lambda e, rec: (
        len(e["served"]) == 18 and not is_valid_uscc(e["served"]) and is_valid_uscc(e["original"])
    ),
    "old_codes": lambda e, rec: (
        e["served"] == ""
        if e["field"] == "CF_XDR_SHXYM"
        else is_valid_reg_no15(e["served"])
        if e["field"] == "CF_XDR_GSZC"
        else len(e["served"]) == 9 and e["served"] in rec.get("_orig_uscc", e["served"])
    ),
    "date_formats": lambda e, rec: e["served"] != e["original"] and _date(e["served"]) == _date(e["original"]),
    "impossible_dates": lambda e, rec: _date(e["served"]) is None and re.match(r"\d{4}-\d\d-\d\d", e["served"]),
    "future_dates": lambda e, rec: _date(e["served"]) > END,
    "fine_in_yuan": lambda e, rec: Decimal(e["served"]) == Decimal(e["original"]) * 10000,
    "bad_amounts": lambda e, rec: Decimal(e["served"]) < 0 or Decimal(e["served"]) >= 99999999,
    "grade_mismatch": lambda e, rec: (
        (int(rec["SG_SWRS"]) >= 3 and rec["SG_DJ"] == "一般")
        or (_GRADES.index(e["served"]) < _GRADES.index(e["original"]))
    ),
    "embedded_newlines": lambda e, rec: "\n" in e["served"] and e["served"].replace("\n", "") == e["original"],
}


@pytest.mark.parametrize("fault", DATA_FAULTS)
def test_data_fault(sims, clean, fault):
    sim = sims(faults={fault: 0.3}, departments=["yjj"])
    seen = 0
    for ds in dept(sim, "yjj")["datasets"]:
        truth = sim.truth("yjj", ds)
        served = latest(pull(sim, "yjj", ds, limit=1000))
        original = latest(pull(clean, "yjj", ds, limit=1000))
        assert set(served) == set(original)
        touched = {(e["record_id"], e["field"]) for e in truth}
        for rid, rec in served.items():  # records the truth does not name are served clean
            for f, v in rec.items():
                if (rid, f) not in touched:
                    assert v == original[rid][f], (rid, f)
        for e in truth:
            assert e["fault"] == fault
            rec = served[e["record_id"]]
            assert rec[e["field"]] == e["served"] and original[e["record_id"]][e["field"]] == e["original"]
            rec = dict(rec, _orig_uscc=original[e["record_id"]].get("CF_XDR_SHXYM", ""))
            assert CHECKS[fault](e, rec), e
            seen += 1
    assert seen >= 3


def test_data_faults_are_field_exclusive_and_served_in_csv_too(sims):
    sim = sims(faults={n: 0.25 for n in DATA_FAULTS}, departments=["yjj"])
    truth = sim.truth("yjj", "penalties")
    assert {e["fault"] for e in truth} >= {"fullwidth", "bad_uscc", "date_formats", "fine_in_yuan", "embedded_newlines"}
    keys = [(e["record_id"], e["field"]) for e in truth]
    assert len(keys) == len(set(keys))
    items = pull(sim, "yjj", "penalties", limit=1000)
    day = busiest_day([it for it in items if any(e["record_id"] == it["record_id"] for e in truth)])
    _, rows, _ = read_csv(get(sim, "yjj", "/datasets/penalties/export.csv", date=day.isoformat()))
    assert rows == [it for it in items if it["updated_at"].startswith(day.isoformat())]


# ------------------------------------------------------------------ schema faults


def test_schema_faults(sims, clean):
    sim = sims(faults=["renamed_field", "missing_field:yjj", "unknown_field:accidents"], departments=["yjj", "zjj"])
    pen = pull(sim, "yjj", "penalties", limit=1000)
    assert all("CF_WSBH" in it and "CF_WSH" not in it and "CF_JDRQ" not in it for it in pen)
    assert [it["CF_WSBH"] for it in pen] == [it["CF_WSH"] for it in pull(clean, "yjj", "penalties", limit=1000)]
    acc = pull(sim, "yjj", "accidents", limit=1000)
    assert all(it["AQ_XZ_NEW"] for it in acc) and all("SG_BH" in it for it in acc)
    assert all("AQ_XZ_NEW" not in it for it in pen)
    # CSV: zjj has the rename (all departments) but keeps CF_JDRQ (missing_field only on yjj)
    header, rows, _ = read_csv(get(sim, "zjj", "/datasets/penalties/export.csv", date="2024-01-03"))
    assert "CF_WSBH" in header and "CF_WSH" not in header and "CF_JDRQ" in header
    header, _, _ = read_csv(get(sim, "yjj", "/datasets/accidents/export.csv", date="2024-01-03"))
    assert header[-1] == "AQ_XZ_NEW"
    truth = sim.truth("yjj", "penalties")
    assert {(e["fault"], e["field"], e["served"]) for e in truth} == {
        ("renamed_field", "CF_WSH", "CF_WSBH"),
        ("missing_field", "CF_JDRQ", ""),
    }
    assert sim.truth("yjj", "accidents")[0]["fault"] == "unknown_field"


# ------------------------------------------------------------------ history faults


def test_duplicates(sims, clean):
    sim = sims(faults={"duplicates": 0.2})
    src = latest(pull(clean, "yjj", "penalties", limit=1000))
    found = 0
    for target in ("zjj", "jtj", "scj"):
        rows = latest(versions(sim, target, "penalties"))
        mine = set(latest(versions(clean, target, "penalties")))
        for e in sim.truth(target, "penalties"):
            assert e["fault"] == "duplicates" and e["record_id"] not in mine
            copy, orig = rows[e["record_id"]], src[e["original"].split("/", 1)[1]]
            assert (copy["CF_CFJG"], copy["CF_WSH"]) == (orig["CF_CFJG"], orig["CF_WSH"])
            assert copy["CF_SJLY"] == dept(sim, target)["name"] and copy["updated_at"] > orig["updated_at"]
            found += 1
        assert len(rows) == len(mine) + len(sim.truth(target, "penalties"))
    assert found >= 10
    assert sim.truth("yjj", "penalties") == []  # the source department is unchanged


def test_corrections(sims):
    sim = sims(faults={"corrections": 0.2}, departments=["yjj"])
    for ds in ("penalties", "enterprises", "accidents", "intermediary_ratings", "credit_actions"):
        items = pull(sim, "yjj", ds, limit=11)
        truth = sim.truth("yjj", ds)
        assert truth and all(e["fault"] == "corrections" for e in truth)
        for e in truth:
            vs = [it for it in items if it["record_id"] == e["record_id"]]
            assert len(vs) == 2 and vs[0]["updated_at"] < vs[1]["updated_at"]
            assert (vs[0][e["field"]], vs[1][e["field"]]) == (e["original"], e["served"])
            later = datetime.fromisoformat(vs[1]["updated_at"]) - datetime.fromisoformat(vs[0]["updated_at"])
            assert timedelta(days=3) <= later < timedelta(days=43)
        assert len(items) == len(latest(items)) + len(truth)


def test_revocations(sims):
    sim = sims(faults={"revocations": 0.2}, departments=["yjj"])
    items = pull(sim, "yjj", "penalties", limit=10)
    truth = sim.truth("yjj", "penalties")
    assert len(truth) >= 10
    last = latest(items)
    for e in truth:
        assert e["fault"] == "revocations" and (e["original"], e["served"]) == ("upsert", "revoke")
        assert last[e["record_id"]] | {} == {
            "record_id": e["record_id"],
            "updated_at": last[e["record_id"]]["updated_at"],
            "op": "revoke",
        }
        first = next(it for it in items if it["record_id"] == e["record_id"])
        assert first["op"] == "upsert" and first["updated_at"] < last[e["record_id"]]["updated_at"]
    day = date.fromisoformat(last[truth[0]["record_id"]]["updated_at"][:10])
    _, rows, _ = read_csv(get(sim, "yjj", "/datasets/penalties/export.csv", date=day.isoformat()))
    row = next(r for r in rows if r["record_id"] == truth[0]["record_id"] and r["op"] == "revoke")
    assert all(v == "" for k, v in row.items() if k not in ("record_id", "updated_at", "op"))


def test_late_records(sims, clean):
    sim = sims(faults={"late_records": 0.3}, departments=["yjj"])
    truth = sim.truth("yjj", "penalties")
    assert len(truth) >= 5
    served, original = (
        latest(pull(sim, "yjj", "penalties", limit=50)),
        latest(pull(clean, "yjj", "penalties", limit=50)),
    )
    for e in truth:
        rec = served[e["record_id"]]
        assert e["field"] == "updated_at" and e["original"] == original[e["record_id"]]["updated_at"]
        assert rec["updated_at"] == e["served"]
        assert datetime.fromisoformat(e["served"]) - datetime.fromisoformat(e["original"]) >= timedelta(days=60)
        assert date.fromisoformat(rec["CF_JDRQ"]) < datetime.fromisoformat(e["served"]).date() - timedelta(days=60)
        assert rec == dict(original[e["record_id"]], updated_at=e["served"])


# ------------------------------------------------------------------ encodings


@pytest.fixture(scope="module")
def encoded(sims):
    return sims(faults=["gbk:zjj", "utf8_bom:scj", "crlf:yjj", "embedded_newlines:0.4"])


def test_gbk(encoded, clean):
    day = busiest_day(versions(clean, "zjj", "penalties")).isoformat()
    r = get(encoded, "zjj", "/datasets/penalties/export.csv", date=day)
    assert r.headers["Content-Type"] == "text/csv; charset=GBK"
    with pytest.raises(UnicodeDecodeError):
        r.content.decode("utf-8")
    header, rows, _ = read_csv(r)
    assert len(rows) == int(r.headers["X-Record-Count"]) > 0
    assert any("\n" in v for row in versions(encoded, "zjj", "penalties") for v in row.values())
    assert [x["CF_XDR_MC"] for x in rows] == [
        x["CF_XDR_MC"] for x in read_csv(get(clean, "zjj", "/datasets/penalties/export.csv", date=day))[1]
    ]


def test_utf8_bom(encoded):
    r = get(encoded, "scj", "/datasets/penalties/export.csv", date="2024-01-03")
    assert r.content.startswith(b"\xef\xbb\xbfrecord_id,") and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert read_csv(r)[0][0] == "record_id"


def test_crlf_and_embedded_newlines(encoded):
    items = pull(encoded, "yjj", "penalties", limit=1000)
    with_nl = [it for it in items if "\n" in it["CF_SY"] + it["CF_NR"]]
    assert with_nl
    day = with_nl[0]["updated_at"][:10]
    r = get(encoded, "yjj", "/datasets/penalties/export.csv", date=day)
    assert r.content.split(b"\n")[0].endswith(b"\r")
    _, rows, _ = read_csv(r)
    assert rows == [it for it in items if it["updated_at"].startswith(day)]
    assert rows.index(with_nl[0]) >= 0
    assert all(e["fault"] == "embedded_newlines" for e in encoded.truth("yjj", "penalties"))


def test_numeric_json(sims):
    sim = sims(faults=["numeric_json"], departments=["yjj"])
    pen = pull(sim, "yjj", "penalties", limit=1000)
    assert all(isinstance(it["CF_NR_FK"], (int, float)) for it in pen)
    acc = pull(sim, "yjj", "accidents", limit=1000)
    assert all(isinstance(it["SG_SWRS"], int) and isinstance(it["SG_JJSS"], float) for it in acc)
    assert all(isinstance(it["SG_BH"], str) for it in acc)


# ------------------------------------------------------------------ HTTP faults


def test_http_429_then_ok(sims):
    sim = sims(faults={"http_429": 1.0}, departments=["scj"])
    for path, params in (
        ("/datasets", {}),
        ("/datasets/penalties/records", {"limit": 5}),
        ("/datasets/penalties/export.csv", {"date": "2024-01-03"}),
    ):
        r = get(sim, "scj", path, **params)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert get(sim, "scj", path, **params).status_code == 200


def test_http_5xx_then_ok(sims):
    sim = sims(faults={"http_5xx": 1.0}, departments=["scj"])
    statuses = set()
    for limit in range(1, 13):
        r = get(sim, "scj", "/datasets/penalties/records", limit=limit)
        statuses.add(r.status_code)
        assert r.status_code in (500, 502, 503, 504)
        assert get(sim, "scj", "/datasets/penalties/records", limit=limit).status_code == 200
    assert len(statuses) >= 2


def test_stall_once(sims):
    sim = sims(faults={"stall": 1.0}, departments=["scj"], stall_seconds=2.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(sim, "scj", "/datasets/penalties/records", limit=3, timeout=0.2)
    assert get(sim, "scj", "/datasets/penalties/records", limit=3).status_code == 200


def test_cut_short_once(sims):
    sim = sims(faults={"cut_short": 1.0}, departments=["scj"])
    for path, params in (
        ("/datasets/penalties/records", {"limit": 50}),
        ("/datasets/penalties/export.csv", {"date": "2024-01-03"}),
    ):
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
            get(sim, "scj", path, **params)
        r = get(sim, "scj", path, **params)
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)


def test_cut_short_at_row_boundary(sims, clean):
    sim = sims(faults=["cut_short:rows:1"], departments=["scj"])
    items = pull(clean, "scj", "penalties", limit=1000)
    day = busiest_day(items).isoformat()
    r = get(sim, "scj", "/datasets/penalties/export.csv", date=day)
    _, rows, _ = read_csv(r)  # parses fine: only X-Record-Count tells
    assert 0 < len(rows) < int(r.headers["X-Record-Count"])
    assert len(read_csv(get(sim, "scj", "/datasets/penalties/export.csv", date=day))[1]) == int(
        r.headers["X-Record-Count"]
    )


def test_expired_cursor_first_use(sims, clean):
    sim = sims(faults={"expired_cursor": 1.0}, departments=["scj"])
    first = get(sim, "scj", "/datasets/penalties/records", limit=10).json()
    assert get(sim, "scj", "/datasets/penalties/records", limit=10, cursor=first["next_cursor"]).status_code == 410
    again = get(sim, "scj", "/datasets/penalties/records", limit=10).json()  # start again
    assert again["items"] == first["items"]
    r = get(sim, "scj", "/datasets/penalties/records", limit=10, cursor=again["next_cursor"])
    assert r.status_code == 200 and r.json()["items"][0]["updated_at"] >= first["items"][-1]["updated_at"]


def test_short_pages(sims, clean):
    sim = sims(faults={"short_pages": 1.0}, departments=["yjj"])
    ps = pages(sim, "yjj", "penalties", limit=20)
    assert all(len(p["items"]) <= 10 for p in ps) and len(ps) > 150 // 20 + 1
    assert [it for p in ps for it in p["items"]] == pull(clean, "yjj", "penalties", limit=1000)


def test_page_repeat(sims, clean):
    sim = sims(faults={"page_repeat": 1.0}, departments=["yjj"])
    ps = pages(sim, "yjj", "penalties", limit=20)
    for prev, page in zip(ps, ps[1:]):
        k = next(
            k
            for k in range(1, 4)
            if page["items"][:k] == prev["items"][-k:] and page["items"][k : k + 1] != prev["items"][-k - 1 : -k]
        )
        assert 1 <= k <= 3
    items = [it for p in ps for it in p["items"]]
    assert len(items) > 150
    dedup = list({(it["record_id"], it["updated_at"]): it for it in items}.values())
    assert dedup == pull(clean, "yjj", "penalties", limit=1000)


def test_down_503(sims):
    sim = sims(faults=["down:jtj"], departments=["yjj", "jtj"])
    for path in ("/datasets", "/datasets/penalties/records"):
        assert get(sim, "jtj", path).status_code == 503
        assert get(sim, "jtj", path, token="").status_code == 503
    assert get(sim, "yjj", "/datasets").status_code == 200
    assert get(sim, "jtj", "/_sim/truth", dataset="penalties").status_code == 200  # admin still answers


def test_down_refuse_and_back_up(sims):
    sim = sims(faults=["down:jtj:refuse"], departments=["yjj", "jtj"])
    with pytest.raises(requests.exceptions.ConnectionError):
        get(sim, "jtj", "/datasets")
    assert get(sim, "yjj", "/datasets").status_code == 200
    sim.set_down("jtj", None)
    assert get(sim, "jtj", "/datasets").status_code == 200
    sim.set_down("jtj", "refuse")
    with pytest.raises(requests.exceptions.ConnectionError):
        get(sim, "jtj", "/datasets")


def test_every_fault_has_a_test():
    tested = set(DATA_FAULTS) | {
        "renamed_field",
        "missing_field",
        "unknown_field",
        "duplicates",
        "corrections",
        "revocations",
        "late_records",
        "gbk",
        "utf8_bom",
        "crlf",
        "numeric_json",
        "http_429",
        "http_5xx",
        "stall",
        "cut_short",
        "expired_cursor",
        "short_pages",
        "page_repeat",
        "down",
    }
    assert tested == set(FAULTS)


# ------------------------------------------------------------------ the generator's data


def test_serves_generator_output(clean_simulator, sim_meta, sim_data):
    sim = clean_simulator
    assert [d["id"] for d in sim.departments] == [d["id"] for d in sim_meta["departments"]]
    for d in sim_meta["departments"]:
        cat = get(sim, d["id"], "/datasets").json()
        assert [x["name"] for x in cat["datasets"]] == d["datasets"]
        if "json" in d["transports"]:
            for ds in d["datasets"]:
                items = pull(sim, d["id"], ds, limit=1000)
                assert len(items) == len(latest(items)) == sim_meta["counts"][d["id"]][ds]
                assert sim.truth(d["id"], ds) == []
    with start_simulator(sim_data, port=0, seed=1, faults="realistic", departments=["yjj"]) as dirty:
        truth = dirty.truth("yjj", "penalties")
        assert {"fullwidth", "corrections", "revocations"} <= {e["fault"] for e in truth}


# ------------------------------------------------------------------ fault syntax and the command


def test_parse_faults():
    assert parse_faults("http_5xx,fullwidth:0.2") == {"http_5xx": FAULTS["http_5xx"].default_rate, "fullwidth": 0.2}
    assert parse_faults(["down:zjj:refuse", "renamed_field:accidents:0.5"]) == {
        "down:zjj:refuse": 1.0,
        "renamed_field:accidents": 0.5,
    }
    assert parse_faults({"stall": 0.3}) == {"stall": 0.3}
    assert parse_faults("none") == {} == parse_faults("") == parse_faults(())
    assert parse_faults("realistic") == REALISTIC_FAULTS and "page_repeat" in REALISTIC_FAULTS
    for bad in ("nosuch", "stall:1.5", "stall:-0.1", "stall:a b"):
        with pytest.raises(ValueError):
            parse_faults(bad)
    for f in FAULTS.values():
        assert f.category in {"data", "schema", "history", "encoding", "http"} and f.description
        assert 0 < f.default_rate <= 1


def test_unknown_qualifier_or_department_is_refused(data_dir):
    with pytest.raises(ValueError, match="nowhere"):
        start_simulator(data_dir, port=0, faults="down:nowhere")
    with pytest.raises(ValueError, match="unknown departments"):
        start_simulator(data_dir, port=0, departments=["xyz"])


def test_simulate_command(data_dir, tmp_path, capsys):
    assert simulate(faults="list", home=tmp_path) is None
    out = capsys.readouterr().out
    assert all(name in out for name in FAULTS)
    sources = tmp_path / "out" / "sources.yaml"
    sim = simulate(port=0, seed=3, faults="none", home=tmp_path, data_dir=data_dir, sources_out=sources, block=False)
    try:
        out = capsys.readouterr().out
        doc = yaml.safe_load(sources.read_text(encoding="utf-8"))
        for d in doc["departments"]:
            assert d["base_url"] in out and d["token"] in out and d["id"] in out
        assert get(sim, "yjj", "/datasets").status_code == 200
    finally:
        sim.stop()
    # without a data directory: generated under <home>/sim once, sources at <home>/sources.yaml
    sim = simulate(port=0, seed=3, scale=40, faults="http_5xx:0.5", home=tmp_path, block=False)
    try:
        assert (tmp_path / "sim" / "data-s3-n40" / "meta.json").exists()
        doc = yaml.safe_load((tmp_path / "sources.yaml").read_text(encoding="utf-8"))
        assert [d["base_url"] for d in doc["departments"]] == [d["base_url"] for d in sim.departments]
    finally:
        sim.stop()


def test_consecutive_ports(data_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    if base > 65000:
        base -= 1000
    try:
        sim = start_simulator(data_dir, port=base, departments=["yjj", "scj"])
    except OSError:
        pytest.skip("ports taken")
    with sim:
        assert [d["base_url"] for d in sim.departments] == [f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"]
        assert get(sim, "scj", "/datasets").status_code == 200
