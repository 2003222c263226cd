"""Publication machinery (exchange.md §1): layout, determinism, signatures, deltas, assertions,
retention, restore, recovery, path safety, and crash consistency under SIGKILL."""

from __future__ import annotations

import base64
import csv
import hashlib
import inspect
import io
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization

from safecredit.publish import (
    DATA_FILES,
    FEEDS,
    FeedStore,
    FullIdNumberError,
    Publisher,
    UnsafePath,
    VerificationError,
    VersionNotFound,
    VersionPruned,
    apply_delta,
    assert_no_full_id_numbers,
    feed_docs_markdown,
    is_version_id,
    verify_version,
)
from safecredit.publish.formats import read_jsonl
from safecredit.publish.versions import served_versions

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 23, 2, 0, 0, tzinfo=timezone.utc)


def blacklist(n, seed=0, drop=(), rename=None):
    """A blacklist-shaped table of entries 0..n-1 (less `drop`), rows in shuffled order."""
    rng = random.Random(seed)
    rows = [i for i in range(n) if i not in drop]
    rng.shuffle(rows)  # input order must not matter
    rename = rename or {}
    return pa.table(
        {
            "entry_id": [f"E{i:05d}" for i in rows],
            "subject_type": ["unit" if i % 3 else "person" for i in rows],
            "subject_code": [f"91110105MA0{i:06d}X" if i % 3 else f"**************{i % 10000:04d}" for i in rows],
            "name": [rename.get(i, f"企业{i}号") for i in rows],
            "ground": ["A1" if i % 2 else "B3" for i in rows],
            "start_date": [date(2026, 1, 1 + i % 28) for i in rows],
            "end_date": [None if i % 4 else date(2029, 1, 1) for i in rows],
            "status": ["listed"] * len(rows),
            "risk": [i / 7 for i in rows],
        }
    )


def restrictions(n, seed=0):
    rng = random.Random(seed)
    rows = [(i, m) for i in range(n) for m in ("government_procurement", "public_bidding")]
    rng.shuffle(rows)
    return pa.table(
        {
            "entry_id": [f"E{i:05d}" for i, _ in rows],
            "matter": [m for _, m in rows],
            "restricted_until": [date(2029, 1, 1)] * len(rows),
        }
    )


def at(days: float = 0, seconds: int = 0) -> datetime:
    return T0 + timedelta(days=days, seconds=seconds)


@pytest.fixture
def pub(tmp_path: Path) -> Publisher:
    return Publisher(tmp_path / "exports", tmp_path / "keys")


def publish(p: Publisher, tables: dict, day: float, **kw):
    kw.setdefault("as_of", (T0 + timedelta(days=day)).date())
    kw.setdefault("policy_version", "policy-2026.1")
    return p.publish(tables, generated_at=at(day), **kw)


def vdir(p: Publisher, feed: str, version: str) -> Path:
    return p.root / feed / version


def id_number(prefix17: str) -> str:
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return prefix17 + "10X98765432"[sum(int(c) * k for c, k in zip(prefix17, w)) % 11]


# ---------------------------------------------------------------------------------------------
def test_registry_has_the_feeds_with_scopes_ids_and_headers():
    assert set(FEEDS) == {
        "blacklist",
        "restrictions",
        "penalties_public",
        "credit_scores",
        "premium_factors",
        "intermediary_ratings",
        "listing_candidates",
        "injury_insurance_factors",  # rules.md §7a
        "incentives",  # rules.md §4, §6: what GET /v1/incentives/{uscc} answers
        # issue 10 §6: components, worksheets and labels once, beside the rows that point at them
        "credit_score_components",
        "premium_worksheets",
        "injury_insurance_worksheets",
        "codes",
        "listing_timeline",  # what GET /v1/restrictions/{code}?as_of= answers: every entry's status by date
        "restriction_timeline",  # … and every restriction by date
    }
    assert FEEDS["credit_score_components"].scope == "credit:read"
    assert FEEDS["credit_score_components"].id_columns == ("uscc", "seq")
    assert {FEEDS[f].scope for f in ("premium_worksheets", "injury_insurance_worksheets")} == {"premium:read"}
    assert FEEDS["codes"].scope is None  # labels only: any valid key reads them
    assert FEEDS["injury_insurance_factors"].scope == "premium:read"  # exchange.md §2
    assert FEEDS["incentives"].scope == "restrictions:read"  # the scope of GET /v1/incentives
    assert FEEDS["blacklist"].id_columns == ("entry_id",)
    assert FEEDS["listing_candidates"].scope == "candidates:read"  # for deciding authorities only
    assert FEEDS["credit_scores"].scope == "credit:read"
    assert FEEDS["premium_factors"].scope == "premium:read"
    lists = (
        "blacklist",
        "restrictions",
        "penalties_public",
        "intermediary_ratings",
        *("listing_timeline", "restriction_timeline"),
    )
    assert {FEEDS[f].scope for f in lists} == {"lists:read"}
    bl = FEEDS["blacklist"]
    for col in (
        "entry_id",
        "subject_type",
        "subject_id",
        "name",
        "ground",
        "ground_name",
        "basis",
        "decision_no",
        "authority",
        "authority_code",
        "decision_date",
        "start_date",
        "end_date",
        "status",
        "status_date",
        "policy_version",
    ):
        assert col in bl.columns, col
    assert "as_of" not in bl.columns  # the same for every row: in the manifest
    assert bl.header("entry_id") == "名单条目编号"
    assert bl.header("no_such_column") == "no_such_column"
    doc = feed_docs_markdown(bl)
    assert "| `decision_no` | 决定文书号 |" in doc and "lists:read" in doc


def test_layout_manifest_catalogue_and_key(pub: Publisher, tmp_path: Path):
    res = publish(
        pub,
        {"blacklist": blacklist(12), "restrictions": restrictions(5)},
        0,
        held_back=[{"department": "zjj", "dataset": "penalties", "reason": "field renamed"}],
        run_info={"run_id": "r1"},
    )
    assert res.ok and is_version_id(res.version) and res.version.startswith("20261123T020000Z-")
    assert set(res.feeds) == {"blacklist", "restrictions"}
    for feed, rows in (("blacklist", 12), ("restrictions", 10)):
        d = vdir(pub, feed, res.version)
        assert sorted(os.listdir(d)) == sorted([*DATA_FILES, "manifest.json"])
        m = json.loads((d / "manifest.json").read_text("utf-8"))
        assert m["version"] == res.version and m["feed"] == feed
        assert m["generated_at"] == "2026-11-23T02:00:00Z" and m["as_of"] == "2026-11-23"
        assert m["policy_version"] == "policy-2026.1" and m["previous_version"] is None
        assert m["row_count"] == rows
        assert m["held_back"] == [{"department": "zjj", "dataset": "penalties", "reason": "field renamed"}]
        assert m["run_info"] == {"run_id": "r1"} and m["signature"]
        assert [f["name"] for f in m["files"]] == list(DATA_FILES)
        for f in m["files"]:
            data = (d / f["name"]).read_bytes()
            assert f["size"] == len(data)
            assert f["sha256"] == hashlib.sha256(data).hexdigest()
        assert {f["name"]: f["rows"] for f in m["files"]} == {
            "full.parquet": rows,
            "full.csv": rows,
            "full.jsonl": rows,
            "delta.jsonl": rows,
        }
        vs = json.loads((pub.root / feed / "versions.json").read_text("utf-8"))
        assert vs["last_successful"] == res.version
        assert vs["items"][0]["result"] == "success" and vs["items"][0]["pruned"] is False
        assert vs["items"][0]["row_count"] == rows
    index = json.loads((pub.root / "index.json").read_text("utf-8"))
    assert index["version"] == res.version and index["last_run"]["result"] == "success"
    assert index["feeds"]["blacklist"]["latest"] == res.version
    assert index["feeds"]["restrictions"]["scope"] == "lists:read"
    assert not (pub.root / ".staging").exists() and not (pub.root / ".journal.json").exists()

    # jsonl: keys in column order, ISO dates, Chinese unescaped, rows sorted by stable id
    lines = (vdir(pub, "blacklist", res.version) / "full.jsonl").read_text("utf-8").splitlines()
    first = json.loads(lines[0])
    assert list(first) == blacklist(1).column_names
    assert first["entry_id"] == "E00000" and first["start_date"] == "2026-01-01"
    assert "企业0号" in lines[0]
    assert [json.loads(x)["entry_id"] for x in lines] == sorted(json.loads(x)["entry_id"] for x in lines)
    assert pq.read_table(vdir(pub, "blacklist", res.version) / "full.parquet").num_rows == 12

    key = tmp_path / "keys" / "manifest-signing-ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.signing_key.public_pem().startswith("-----BEGIN PUBLIC KEY-----")


def test_value_types_in_jsonl_and_csv(pub: Publisher):
    from decimal import Decimal

    t = pa.table(
        {
            "uscc": ["91110105MA01ABCD2X", "91110105MA01ABCD3X"],
            "factor": pa.array([Decimal("1.15"), None], pa.decimal128(5, 2)),
            "score": [float("nan"), 88.5],
            "components": [[{"k": "accidents", "v": 2}], []],
            "valid": [True, False],
            "at": pa.array([datetime(2026, 11, 23, 2, tzinfo=timezone.utc)] * 2, pa.timestamp("s", tz="UTC")),
        }
    )
    res = publish(pub, {"premium_factors": t}, 0)
    rows = read_jsonl(vdir(pub, "premium_factors", res.version) / "full.jsonl")
    assert rows[0] == {
        "uscc": "91110105MA01ABCD2X",
        "factor": 1.15,
        "score": None,
        "components": [{"k": "accidents", "v": 2}],
        "valid": True,
        "at": "2026-11-23T02:00:00+00:00",
    }
    text = (vdir(pub, "premium_factors", res.version) / "full.csv").read_text("utf-8-sig")
    # the CSV holds the flat columns: the list of structs is in the Parquet and the JSONL only
    assert "components" not in text.splitlines()[0]
    assert text.splitlines()[1] == "91110105MA01ABCD2X,1.15,,true,2026-11-23T02:00:00+00:00"


def test_csv_has_bom_chinese_headers_and_crlf(pub: Publisher):
    t = blacklist(3).append_column("comment", pa.array(['=HYPERLINK("x")', "正常", None]))
    res = publish(pub, {"blacklist": t}, 0)
    raw = (vdir(pub, "blacklist", res.version) / "full.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0][:4] == ["名单条目编号", "主体类型", "统一社会信用代码/证件号码", "主体名称"]
    assert rows[0][-1] == "comment"  # unknown column: its own name
    assert rows[1][0] == "E00000" and rows[1][3] == "企业0号"
    assert rows[1][-1] == '\'=HYPERLINK("x")'  # no formula injection in Excel
    assert len(rows) == 4


def test_same_tables_give_byte_identical_data_files(tmp_path: Path):
    keys = tmp_path / "keys"
    a = Publisher(tmp_path / "a", keys)
    b = Publisher(tmp_path / "b", keys)
    chunked = blacklist(40, seed=1)
    chunked = pa.concat_tables([chunked.slice(0, 7), chunked.slice(7, 20), chunked.slice(27)])
    ra = publish(a, {"blacklist": chunked, "restrictions": restrictions(9, seed=1)}, 0)
    rb = publish(b, {"blacklist": blacklist(40, seed=2), "restrictions": restrictions(9, seed=2)}, 0.5)
    assert ra.version != rb.version
    assert ra.version.split("-")[1] == rb.version.split("-")[1]  # same content hash
    for feed in ("blacklist", "restrictions"):
        for name in DATA_FILES:
            assert (vdir(a, feed, ra.version) / name).read_bytes() == (vdir(b, feed, rb.version) / name).read_bytes()
        ma, mb = ra.feeds[feed], rb.feeds[feed]
        differing = {k for k in ma.keys() | mb.keys() if ma.get(k) != mb.get(k)}
        assert differing == {"version", "generated_at", "signature"}
    # a second run with the same tables: same full files, empty delta, only the time part moves
    r2 = publish(a, {"blacklist": blacklist(40, seed=3), "restrictions": restrictions(9, seed=3)}, 1)
    for name in ("full.parquet", "full.csv", "full.jsonl"):
        assert (vdir(a, "blacklist", r2.version) / name).read_bytes() == (
            vdir(a, "blacklist", ra.version) / name
        ).read_bytes()
    assert (vdir(a, "blacklist", r2.version) / "delta.jsonl").read_bytes() == b""
    assert r2.feeds["blacklist"]["previous_version"] == ra.version


def test_signature_is_canonical_ed25519_and_detects_tampering(pub: Publisher, tmp_path: Path):
    res = publish(pub, {"blacklist": blacklist(10)}, 0)
    pem = pub.signing_key.public_pem()
    assert verify_version(pub.root, "blacklist", res.version, pem).ok

    # independent check of the spec's canonical form
    m = json.loads((vdir(pub, "blacklist", res.version) / "manifest.json").read_text("utf-8"))
    body = {k: v for k, v in m.items() if k != "signature"}
    signed = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    serialization.load_pem_public_key(pem.encode()).verify(base64.b64decode(m["signature"]), signed)

    csv_path = vdir(pub, "blacklist", res.version) / "full.csv"
    original = csv_path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    csv_path.write_bytes(bytes(tampered))
    with pytest.raises(VerificationError, match="full.csv sha256"):
        verify_version(pub.root, "blacklist", res.version, pem)
    csv_path.write_bytes(original)

    mpath = vdir(pub, "blacklist", res.version) / "manifest.json"
    mpath.write_text(mpath.read_text("utf-8").replace('"row_count": 10', '"row_count": 11'), "utf-8")
    with pytest.raises(VerificationError, match="signature"):
        verify_version(pub.root, "blacklist", res.version, pem)

    other = Publisher(tmp_path / "o", tmp_path / "other-keys").signing_key.public_pem()
    publish(pub, {"blacklist": blacklist(10)}, 1)
    with pytest.raises(VerificationError, match="signature"):
        verify_version(pub.root, "blacklist", pub.latest("blacklist"), other)


def test_delta_add_mod_del(pub: Publisher):
    r1 = publish(pub, {"blacklist": blacklist(5), "restrictions": restrictions(2)}, 0)
    r2 = publish(
        pub,
        {
            "blacklist": blacklist(6, drop={2}, rename={1: "改名公司"}),
            "restrictions": restrictions(3).filter(pa.compute.not_equal(pa.compute.field("matter"), "public_bidding")),
        },
        1,
        max_shrink=0.5,
    )
    delta = read_jsonl(vdir(pub, "blacklist", r2.version) / "delta.jsonl")
    assert [(d["op"], d["id"]) for d in delta] == [("MOD", "E00001"), ("DEL", "E00002"), ("ADD", "E00005")]
    assert delta[0]["record"]["name"] == "改名公司"
    assert delta[1]["record"]["name"] == "企业2号"  # DEL carries the last record
    assert r2.feeds["blacklist"]["delta"] == {"ADD": 1, "MOD": 1, "DEL": 1}
    assert r2.feeds["blacklist"]["previous_version"] == r1.version
    rdelta = read_jsonl(vdir(pub, "restrictions", r2.version) / "delta.jsonl")
    assert [(d["op"], d["id"]) for d in rdelta] == [
        ("DEL", ["E00000", "public_bidding"]),
        ("DEL", ["E00001", "public_bidding"]),
        ("ADD", ["E00002", "government_procurement"]),
    ]
    # the first version's delta is everything ADDed
    first = read_jsonl(vdir(pub, "blacklist", r1.version) / "delta.jsonl")
    assert {d["op"] for d in first} == {"ADD"} and len(first) == 5
    with pytest.raises(ValueError, match="ADD of an id already present"):
        apply_delta(
            pub.read_records("blacklist", r1.version), [{"op": "ADD", "id": "E00000", "record": {"entry_id": "E00000"}}]
        )


def test_delta_chain_reproduces_every_later_version(pub: Publisher):
    rng = random.Random(7)
    live = {i: f"企业{i}" for i in range(30)}
    versions = []
    for run in range(5):
        if run:
            for i in rng.sample(sorted(live), 4):
                del live[i]
            for i in rng.sample(sorted(live), 3):
                live[i] += "*"
            for _ in range(5):
                live[max(live) + 1 + rng.randrange(3)] = "新"
        ids = sorted(live)
        t = pa.table(
            {
                "entry_id": [f"E{i:05d}" for i in ids],
                "name": [live[i] for i in ids],
                "start_date": [date(2026, 1, 1)] * len(ids),
            }
        )
        versions.append(publish(pub, {"blacklist": t}, run).version)
    for k in range(len(versions)):
        for n in range(k + 1, len(versions)):
            records = pub.read_records("blacklist", versions[k])
            for v in versions[k + 1 : n + 1]:
                records = apply_delta(
                    records, (vdir(pub, "blacklist", v) / "delta.jsonl").read_text("utf-8").splitlines(), ["entry_id"]
                )
            assert records == pub.read_records("blacklist", versions[n])
    # with inferred id column and the store's net diff
    assert apply_delta(
        pub.read_records("blacklist", versions[0]), pub.diff("blacklist", versions[0])
    ) == pub.read_records("blacklist", versions[-1])
    assert pub.versions_since("blacklist", versions[1]) == versions[2:]


def test_shrink_assertion_blocks_records_failure_and_override_publishes(pub: Publisher):
    r1 = publish(pub, {"blacklist": blacklist(100), "restrictions": restrictions(4)}, 0)
    failed = publish(pub, {"blacklist": blacklist(70), "restrictions": restrictions(4)}, 1)
    assert not failed.ok and failed.result == "failure"
    assert [(r["assertion"], r["feed"]) for r in failed.reasons] == [("max_shrink", "blacklist")]
    assert "100 to 70" in failed.reasons[0]["message"]
    for feed in ("blacklist", "restrictions"):
        assert not vdir(pub, feed, failed.version).exists()
        vs = pub.versions(feed)
        assert vs["items"][0]["version"] == failed.version and vs["items"][0]["result"] == "failure"
        assert vs["items"][0]["reasons"] == failed.reasons
        assert vs["last_successful"] == r1.version
        assert pub.status(feed, failed.version) == "failed"
    index = pub.index()
    assert index["version"] == r1.version and index["last_run"]["result"] == "failure"
    with pytest.raises(VersionNotFound):
        pub.safe_file_path("blacklist", failed.version, "full.csv")

    # a custom hook (e.g. source staleness) blocks too; an override must name what it overrides
    def stale(feeds, previous):
        assert previous["blacklist"]["version"] == r1.version
        return [{"assertion": "source_staleness", "feed": None, "message": "yjj is 9 days old"}]

    ov = {"by": "张三", "reason": "部门数据已核实", "assertions": ["max_shrink"]}
    blocked = publish(pub, {"blacklist": blacklist(70)}, 2, assertions=stale, override=ov)
    assert not blocked.ok and {r["assertion"] for r in blocked.reasons} == {"max_shrink", "source_staleness"}
    ok = publish(pub, {"blacklist": blacklist(70)}, 3, override=ov)
    assert ok.ok and pub.latest("blacklist") == ok.version and pub.latest("restrictions") == r1.version
    recorded = pub.versions("blacklist")["items"][0]["override"]
    assert recorded["by"] == "张三" and recorded["assertions"] == ["max_shrink"]
    assert recorded["overridden"][0]["assertion"] == "max_shrink"
    assert ok.feeds["blacklist"]["override"] == recorded
    assert publish(pub, {"blacklist": blacklist(60)}, 4, max_shrink=None).ok  # policy may disable it
    with pytest.raises(ValueError, match="reason"):
        publish(pub, {"blacklist": blacklist(60)}, 5, override={"by": "x", "assertions": ["max_shrink"]})


def test_full_id_numbers_are_refused_and_not_overridable(pub: Publisher):
    full = id_number("11010519491231002")
    t = blacklist(4).append_column("note", pa.array([None, f"身份证 {full} 已核实", None, None]))
    with pytest.raises(FullIdNumberError) as exc:
        assert_no_full_id_numbers(t, "blacklist")
    assert full not in str(exc.value) and full[-4:] in str(exc.value)
    res = publish(pub, {"blacklist": t}, 0)
    assert not res.ok and res.reasons[0]["assertion"] == "id_numbers"
    assert full not in (pub.root / "blacklist" / "versions.json").read_text("utf-8")
    with pytest.raises(ValueError, match="cannot be overridden"):
        publish(pub, {"blacklist": t}, 1, override={"by": "x", "reason": "y", "assertions": ["id_numbers"]})
    # masked numbers, USCCs and 18-digit strings that are not ID numbers pass
    ok = blacklist(4).append_column(
        "note",
        pa.array(
            ["**************0021", "91110105MA01ABCD2X", "123456789012345678", full[:-1] + "0" * (full[-1] != "0")]
        ),
    )
    assert_no_full_id_numbers(ok)


def test_full_id_numbers_are_found_in_structs_lists_big_decimals_and_bytes(pub: Publisher):
    """The publisher scans a row's text columns (not its whole line): an ID number nested in a
    struct or a list, as the digits of a big decimal or in base64 text is found all the same."""
    from decimal import Decimal

    full = id_number("11010519491231002")
    n = 5
    base = blacklist(n)

    def only(i, value, other):
        return [value if j == i else other for j in range(n)]

    cases = {
        "st": pa.array(only(1, {"a": f"号 {full}", "b": 1}, {"a": "x", "b": 1})),
        "l": pa.array(only(2, [["x", full]], [["x"]])),
        "big": pa.array(only(3, Decimal(full) if full[-1] != "X" else None, Decimal(7)), pa.decimal128(38, 0)),
        "raw": pa.array(only(4, base64.b64decode("A+" + full + "/A=="), b"\x00")),
    }
    if full[-1] == "X":  # a decimal's digits cannot end in X
        cases.pop("big")
    for column, values in cases.items():
        res = publish(pub, {"blacklist": base.append_column(column, values)}, 0)
        assert not res.ok and res.reasons[0]["assertion"] == "id_numbers", column
        assert f"column {column}: 1 value(s)" in res.reasons[0]["message"], column
    # numbers, dates and keys are not text: an 18-digit integer is not reported
    assert publish(pub, {"blacklist": base.append_column("n", pa.array([int("1" * 18)] * n))}, 1).ok


def test_retention_prunes_old_versions_and_marks_them(tmp_path: Path):
    p = Publisher(tmp_path / "exports", tmp_path / "keys", retention=3)
    vs = [publish(p, {"blacklist": blacklist(10 + i)}, i).version for i in range(5)]
    items = {i["version"]: i for i in p.versions("blacklist")["items"]}
    for v in vs[:2]:
        assert items[v]["pruned"] is True and not vdir(p, "blacklist", v).exists()
        assert p.status("blacklist", v) == "pruned"
        with pytest.raises(VersionPruned):
            p.safe_file_path("blacklist", v, "full.jsonl")
        with pytest.raises(VersionPruned):
            p.versions_since("blacklist", v)
    for v in vs[2:]:
        assert items[v]["pruned"] is False and p.status("blacklist", v) == "ok"
    assert p.status("blacklist", "20200101T000000Z-abcdef") == "unknown"
    assert p.status("blacklist", "../../etc") == "unknown"
    assert sorted(x.name for x in (p.root / "blacklist").iterdir() if is_version_id(x.name)) == sorted(vs[2:])


def test_restore_republishes_an_earlier_version_as_a_new_one(tmp_path: Path):
    p = Publisher(tmp_path / "exports", tmp_path / "keys", retention=3)
    r1 = publish(p, {"blacklist": blacklist(10), "restrictions": restrictions(3)}, 0)
    r2 = publish(p, {"blacklist": blacklist(12, rename={0: "新名"}), "restrictions": restrictions(3)}, 1)
    restored = p.restore(r1.version, by="运维", reason="回退错误数据", generated_at=at(2))
    assert restored.ok and restored.version not in (r1.version, r2.version)
    assert restored.restored_from == r1.version
    for feed in ("blacklist", "restrictions"):
        assert p.latest(feed) == restored.version
        m = p.read_manifest(feed, restored.version)
        assert m["restored_from"] == r1.version and m["previous_version"] == r2.version
        assert m["as_of"] == "2026-11-23" and m["run_info"]["restored_by"] == "运维"
        for name in ("full.parquet", "full.csv", "full.jsonl"):
            assert (vdir(p, feed, restored.version) / name).read_bytes() == (
                vdir(p, feed, r1.version) / name
            ).read_bytes()
        verify_version(p.root, feed, restored.version, p.public_pem())
        assert apply_delta(
            p.read_records(feed, r2.version), p.read_delta(feed, restored.version), FEEDS[feed].id_columns
        ) == p.read_records(feed, r1.version)
    assert p.versions("blacklist")["items"][0]["restored_from"] == r1.version
    # the restored version survives pruning of its source (hard links / copies)
    publish(p, {"blacklist": blacklist(10)}, 3)
    publish(p, {"blacklist": blacklist(10)}, 4)
    assert p.status("blacklist", r1.version) == "pruned"
    verify_version(p.root, "blacklist", restored.version, p.public_pem())
    with pytest.raises(VersionPruned):
        p.restore(r1.version, feeds=["blacklist"])
    with pytest.raises(VersionNotFound):
        p.restore("20200101T000000Z-abcdef")


def test_recovery_removes_leftovers_and_rolls_back_uncommitted_runs(pub: Publisher):
    r1 = publish(pub, {"blacklist": blacklist(10)}, 0)
    before = (pub.root / "blacklist" / "versions.json").read_bytes()
    ghost = "20261124T020000Z-aaaaaa"
    (pub.root / ".staging" / "build-x" / "blacklist").mkdir(parents=True)
    (pub.root / ".staging" / "build-x" / "blacklist" / "full.csv").write_text("half")
    (pub.root / "blacklist" / ghost).mkdir()
    (pub.root / "blacklist" / ghost / "full.csv").write_text("orphan")
    (pub.root / "blacklist" / ".versions.json.tmp-1-abc").write_text("{")
    # an uncommitted run: journal written, versions.json already updated, index not
    vs = json.loads(before)
    journal = {"version": ghost, "result": "success", "feeds": ["blacklist"], "rollback": {"blacklist": vs}}
    (pub.root / ".journal.json").write_text(json.dumps(journal))
    (pub.root / "blacklist" / "versions.json").write_text(
        json.dumps(
            {
                "items": [{"version": ghost, "result": "success", "pruned": False}] + vs["items"],
                "last_successful": ghost,
            }
        )
    )
    actions = pub.recover()
    assert any("rolled back" in a for a in actions)
    assert pub.latest("blacklist") == r1.version
    assert not (pub.root / ".staging").exists() and not (pub.root / ".journal.json").exists()
    assert sorted(x.name for x in (pub.root / "blacklist").iterdir()) == [r1.version, "versions.json"]
    assert publish(pub, {"blacklist": blacklist(10)}, 2).ok


def test_an_error_mid_commit_is_rolled_back_at_once(pub: Publisher, monkeypatch):
    from safecredit.publish import fsutil

    r1 = publish(pub, {"blacklist": blacklist(10), "restrictions": restrictions(2)}, 0)
    raised = []

    def disk_full(label):
        if label == "replace versions.json" and not raised:
            raised.append(label)
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil, "STEP_HOOK", disk_full)
    with pytest.raises(OSError, match="No space"):
        publish(pub, {"blacklist": blacklist(11), "restrictions": restrictions(2)}, 1)
    assert raised
    for feed in ("blacklist", "restrictions"):
        assert pub.latest(feed) == r1.version
        assert sorted(x.name for x in (pub.root / feed).iterdir()) == [r1.version, "versions.json"]
    assert pub.index()["last_run"]["version"] == r1.version
    assert not (pub.root / ".journal.json").exists() and not (pub.root / ".staging").exists()


def test_safe_file_path_refuses_escapes(pub: Publisher, tmp_path: Path):
    res = publish(pub, {"blacklist": blacklist(3)}, 0)
    v = res.version
    assert pub.safe_file_path("blacklist", v, "full.csv") == pub.root / "blacklist" / v / "full.csv"
    for feed, version, name in [
        ("blacklist", v, "../versions.json"),
        ("blacklist", v, "/etc/passwd"),
        ("blacklist", v, "secret.txt"),
        ("blacklist", v, "full.csv/../../x"),
        ("..", v, "full.csv"),
        ("blacklist/..", v, "full.csv"),
        ("blacklist", "../../etc", "full.csv"),
        ("blacklist", "..", "manifest.json"),
        ("/etc", v, "full.csv"),
        ("blacklist", v, ""),
    ]:
        with pytest.raises(UnsafePath):
            pub.safe_file_path(feed, version, name)
    with pytest.raises(VersionNotFound):
        pub.safe_file_path("nonexistent_feed", v, "full.csv")
    outside = tmp_path / "outside.csv"
    outside.write_text("secret")
    target = pub.root / "blacklist" / v / "full.csv"
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(UnsafePath, match="symlink"):
        pub.safe_file_path("blacklist", v, "full.csv")


def test_version_ids_sort_by_time(pub: Publisher):
    a = publish(pub, {"blacklist": blacklist(5)}, 0).version
    again = publish(pub, {"blacklist": blacklist(5)}, 0)  # same second: moved one second on
    assert again.version.startswith("20261123T020001Z-") and again.generated_at == "2026-11-23T02:00:01Z"
    b = pub.publish({"blacklist": blacklist(5)}, as_of=date(2026, 11, 23), policy_version="p").version
    c = pub.publish({"blacklist": blacklist(5)}, as_of=date(2026, 11, 23), policy_version="p").version
    assert a < again.version < b < c


def test_one_publisher_at_a_time(pub: Publisher, tmp_path: Path):
    from safecredit.publish import PublishLocked
    from safecredit.publish.fsutil import DirLock

    publish(pub, {"blacklist": blacklist(3)}, 0)
    other = Publisher(pub.root, tmp_path / "keys", lock_timeout=0.2)
    with DirLock(pub.root):
        with pytest.raises(PublishLocked):
            publish(other, {"blacklist": blacklist(3)}, 1)
    assert publish(other, {"blacklist": blacklist(3)}, 1).ok


# --- crash consistency -----------------------------------------------------------------------
CHILD = (
    textwrap.dedent("""
    import os, random, signal, sys
    from datetime import date, datetime, timezone
    import pyarrow as pa
    from safecredit.publish import Publisher, fsutil
""")
    + inspect.getsource(blacklist)
    + "\n"
    + inspect.getsource(restrictions)
    + textwrap.dedent("""
    root, keys, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    steps = 0
    def hook(label):
        global steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    fsutil.STEP_HOOK = hook
    p = Publisher(root, keys, retention=2)
    v2 = p.latest("blacklist")
    day = lambda d: datetime(2026, 11, 23 + d, 2, tzinfo=timezone.utc)
    p.publish({"blacklist": blacklist(40, rename={3: "改"}), "restrictions": restrictions(12)},
              as_of=date(2026, 11, 25), policy_version="p", generated_at=day(2))          # prunes v1
    p.restore(v2, generated_at=day(3))                                                    # prunes v2
    r = p.publish({"blacklist": blacklist(10), "restrictions": restrictions(12)},
                  as_of=date(2026, 11, 27), policy_version="p", generated_at=day(4))      # shrink: failure
    assert not r.ok
    print(steps)
""")
)


def check_readers_see_complete_versions(root: Path, pem: str) -> None:
    store = FeedStore(root)
    index = store.index()
    if index:
        for feed, info in index["feeds"].items():
            assert store.status(feed, info["latest"]) == "ok"
            verify_version(root, feed, info["latest"], pem)
    for feed in ("blacklist", "restrictions"):
        vs = store.versions(feed)
        served = served_versions(vs)
        assert vs["last_successful"] in served
        for v in served:
            verify_version(root, feed, v, pem)


def test_sigkill_at_any_step_leaves_only_complete_versions(tmp_path: Path):
    base, keys = tmp_path / "base", tmp_path / "keys"
    p = Publisher(base, keys, retention=2)
    publish(p, {"blacklist": blacklist(36), "restrictions": restrictions(12)}, 0)
    v2 = publish(p, {"blacklist": blacklist(38), "restrictions": restrictions(12)}, 1).version
    pem = p.public_pem()
    script = tmp_path / "child.py"
    script.write_text(CHILD, "utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run_child(root: Path, kill_at: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), str(root), str(keys), str(kill_at)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    full = tmp_path / "full"
    shutil.copytree(base, full)
    done = run_child(full, 0)
    assert done.returncode == 0, done.stderr
    total = int(done.stdout.split()[-1])
    assert total > 40
    runs = [i["version"] for i in FeedStore(full).versions("blacklist")["items"]]
    assert len(runs) == 5 and runs[-2] == v2  # failure, restore, v3, v2, v1 (newest first)
    committed_states = {v2, runs[2], runs[1]}  # a kill leaves the state before or after an operation
    seen_states, rollbacks = set(), 0

    rng = random.Random(20261123)
    points = sorted({1, total, *rng.sample(range(2, total), 22)})
    for kill_at in points:
        root = tmp_path / f"k{kill_at}"
        shutil.copytree(base, root)
        out = run_child(root, kill_at)
        assert out.returncode == -signal.SIGKILL, (kill_at, out.returncode, out.stderr[-2000:])
        check_readers_see_complete_versions(root, pem)

        rec = Publisher(root, keys, retention=2)
        rollbacks += any("rolled back" in a for a in rec.recover())
        check_readers_see_complete_versions(root, pem)
        assert not (root / ".staging").exists() and not (root / ".journal.json").exists()
        latest = {f: rec.latest(f) for f in ("blacklist", "restrictions")}
        index = rec.index()
        for feed, v in latest.items():
            assert index["feeds"][feed]["latest"] == v
            on_disk = {x.name for x in (root / feed).iterdir() if is_version_id(x.name)}
            assert on_disk == set(served_versions(rec.versions(feed)))
        assert latest["blacklist"] == latest["restrictions"] == index["version"]  # whole runs only
        assert index["version"] in committed_states
        seen_states.add(index["version"])
        nxt = rec.publish(
            {"blacklist": blacklist(40), "restrictions": restrictions(12)},
            as_of=date(2026, 12, 1),
            policy_version="p",
            generated_at=datetime(2026, 12, 1, 2, tzinfo=timezone.utc),
        )
        assert nxt.ok
        check_readers_see_complete_versions(root, pem)
        shutil.rmtree(root)
    assert seen_states == committed_states and rollbacks >= 3  # the kill points span the whole sequence


# --- columnar publication (DuckDB/Arrow) -----------------------------------------------------
def _reference_lines(table: pa.Table) -> tuple[list[str], str]:
    """full.jsonl lines and full.csv rows the way the per-row Python publisher wrote them: the
    JSON value rules of formats.json_value, the csv module, the formula guard on text."""
    from safecredit.publish.formats import json_line, json_value

    records = [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]

    def cell(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return "'" + v if v.startswith(("=", "+", "-", "@", "\t", "\r")) else v
        return json_line(v) if isinstance(v, (dict, list)) else repr(v) if isinstance(v, float) else str(v)

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([cell(v) for v in r.values()] for r in records)
    return [json_line(r) for r in records], buf.getvalue()


def test_sql_rendering_matches_the_python_json_and_csv_rules(pub: Publisher):
    from decimal import Decimal

    from safecredit.publish.formats import prepare

    rng = random.Random(11)
    pool = [
        "a",
        "中",
        ",",
        '"',
        "\n",
        "\r",
        "=",
        "-",
        "+",
        "@",
        "\t",
        "\x01",
        "\x0b",
        "\x1f",
        "\\",
        "/",
        " ",
        "\u2028",
        "'",
        "1",
    ]

    def text():
        return "".join(rng.choice(pool) for _ in range(rng.randrange(6)))

    def some(make, n=400):
        return [None if rng.random() < 0.2 else make() for _ in range(n)]

    struct = pa.struct(
        [("k", pa.string()), ("v", pa.int64()), ("x", pa.decimal128(5, 2)), ("d", pa.list_(pa.date32()))]
    )
    t = pa.table(
        {
            "uscc": [f"U{i:04d}" for i in range(400)],
            "s": some(text),
            "i": some(lambda: rng.randrange(-(10**12), 10**12)),
            "f": some(
                lambda: rng.choice(
                    [float("nan"), float("-inf"), -0.0, 1e16, 1e-5, 0.1, rng.random() * 10 ** rng.randrange(-8, 22)]
                )
            ),
            "d": pa.array(some(lambda: Decimal(rng.randrange(-(10**7), 10**7)) / 100), pa.decimal128(9, 2)),
            "big": pa.array(some(lambda: Decimal(rng.randrange(-(10**20), 10**20)) / 10000), pa.decimal128(38, 4)),
            "b": some(lambda: rng.random() < 0.5),
            "day": some(lambda: date(2000 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28))),
            "at": pa.array(
                some(
                    lambda: datetime(
                        2026,
                        1,
                        1,
                        rng.randrange(24),
                        0,
                        rng.randrange(60),
                        rng.choice([0, 5, 123456]),
                        tzinfo=timezone.utc,
                    )
                ),
                pa.timestamp("us", tz="UTC"),
            ),
            "naive": pa.array(some(lambda: datetime(2026, 1, 1, rng.randrange(24))), pa.timestamp("s")),
            "l": some(lambda: [text() if rng.random() < 0.9 else None for _ in range(rng.randrange(3))]),
            "st": pa.array(
                some(lambda: {"k": text(), "v": rng.randrange(5), "x": Decimal("1.50"), "d": [date(2026, 1, 2)]}),
                struct,
            ),
            "raw": some(lambda: b"\x00\xffab"),
        }
    )
    lines, _ = _reference_lines(t)
    feed = prepare(FEEDS["credit_scores"], t)
    assert feed.lines == lines

    res = publish(pub, {"credit_scores": t}, 0)
    raw = (vdir(pub, "credit_scores", res.version) / "full.csv").read_bytes().decode("utf-8-sig")
    # the CSV holds the flat columns (the list and the struct are in the JSONL, compared above)
    assert raw.split("\r\n", 1)[1] == _reference_lines(t.drop_columns(["l", "st"]))[1]


def test_bytes_do_not_depend_on_input_order_chunks_or_row_groups(tmp_path: Path):
    """Above DuckDB's row group (122,880 rows) a parallel scan streams in any order: every file
    is still written in id order, byte for byte the same."""
    import duckdb

    n = 130_000
    con = duckdb.connect()
    source = con.sql(
        f"SELECT printf('E%07d', i) AS entry_id, '企业' || i::VARCHAR AS name, "
        f"DATE '2026-01-01' + (i % 300)::INTEGER AS start_date FROM range({n}) t(i) ORDER BY hash(i)"
    )
    keys = tmp_path / "keys"
    a = publish(Publisher(tmp_path / "a", keys), {"blacklist": source}, 0)  # a DuckDB relation, streamed
    table = source.to_arrow_table().sort_by("name")
    b = publish(Publisher(tmp_path / "b", keys), {"blacklist": table}, 0)
    for name in DATA_FILES:
        assert (tmp_path / "a" / "blacklist" / a.version / name).read_bytes() == (
            tmp_path / "b" / "blacklist" / b.version / name
        ).read_bytes(), name
    ids = [
        json.loads(line)["entry_id"]
        for line in (tmp_path / "a" / "blacklist" / a.version / "full.jsonl").read_text("utf-8").splitlines()
    ]
    assert ids == sorted(ids) and len(ids) == n == a.rows["blacklist"]


def test_an_unchanged_feed_is_hard_links_to_the_previous_files(tmp_path: Path):
    p = Publisher(tmp_path / "exports", tmp_path / "keys", retention=2)
    r1 = publish(p, {"blacklist": blacklist(20), "restrictions": restrictions(4)}, 0)
    r2 = publish(p, {"blacklist": blacklist(20, seed=5), "restrictions": restrictions(5)}, 1)
    for name in ("full.parquet", "full.csv", "full.jsonl"):
        old, new = vdir(p, "blacklist", r1.version) / name, vdir(p, "blacklist", r2.version) / name
        assert old.stat().st_ino == new.stat().st_ino  # the same bytes stored once
        assert (
            vdir(p, "restrictions", r1.version).joinpath(name).stat().st_ino
            != vdir(p, "restrictions", r2.version).joinpath(name).stat().st_ino
        )
    assert (vdir(p, "blacklist", r2.version) / "delta.jsonl").read_bytes() == b""
    publish(p, {"blacklist": blacklist(20), "restrictions": restrictions(5)}, 2)  # prunes r1: its links only
    assert p.status("blacklist", r1.version) == "pruned"
    for feed in ("blacklist", "restrictions"):
        verify_version(p.root, feed, r2.version, p.public_pem())
    assert [
        json.loads(x)["entry_id"]
        for x in (vdir(p, "blacklist", r2.version) / "full.jsonl").read_text("utf-8").splitlines()
    ][:2] == ["E00000", "E00001"]


def test_a_feed_whose_rows_did_not_change_is_linked_without_rendering(tmp_path: Path, monkeypatch):
    """An empty delta, the same columns and the same code: the previous files are linked and no row
    is rendered (a replay republishing what it published). Other code renders again."""
    from safecredit.publish import publisher as publisher_module
    from safecredit.publish.columnar import Session

    p = Publisher(tmp_path / "exports", tmp_path / "keys")
    r1 = publish(p, {"blacklist": blacklist(20), "restrictions": restrictions(4)}, 0)
    assert p.read_manifest("blacklist", r1.version)["rendered_by"] == publisher_module.rendered_by()
    rendered = []
    real = Session.write_full_files
    monkeypatch.setattr(
        Session, "write_full_files", lambda s, feed, *a, **k: rendered.append(feed) or real(s, feed, *a, **k)
    )
    r2 = publish(p, {"blacklist": blacklist(20), "restrictions": restrictions(5)}, 1)
    assert rendered == ["restrictions"]  # blacklist: nothing changed, nothing rendered
    for name in ("full.parquet", "full.csv", "full.jsonl"):
        assert (vdir(p, "blacklist", r1.version) / name).stat().st_ino == (
            vdir(p, "blacklist", r2.version) / name
        ).stat().st_ino
    verify_version(p.root, "blacklist", r2.version, p.public_pem())
    assert p.read_manifest("blacklist", r2.version)["delta"] == {"ADD": 0, "MOD": 0, "DEL": 0}

    monkeypatch.setattr(publisher_module, "rendered_by", lambda: "another code")
    rendered.clear()
    r3 = publish(p, {"blacklist": blacklist(20), "restrictions": restrictions(5)}, 2)
    assert sorted(rendered) == ["blacklist", "restrictions"]  # files of other code are not trusted
    for name in ("full.parquet", "full.csv", "full.jsonl"):  # the same bytes: linked after rendering
        assert (vdir(p, "blacklist", r2.version) / name).read_bytes() == (
            vdir(p, "blacklist", r3.version) / name
        ).read_bytes()
