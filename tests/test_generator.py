"""Synthetic department data: determinism, schema, code validity, calibration, scenarios."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from safecredit.codes import is_valid_id_number, is_valid_org_code, is_valid_reg_no15, is_valid_uscc
from safecredit.generator import (
    CALIBRATION_TOLERANCE,
    DATASET_FIELDS,
    DEFAULT_DEPARTMENTS,
    REFERENCE_RECORD,
    REFERENCE_SUBJECTS,
    calibration_sample,
    generate,
)

SCALE = 3000
START, END = date(2019, 1, 1), date(2026, 11, 22)
ENVELOPE = ["record_id", "updated_at", "op"]
SPEC = Path("/work/shared/spec/department-feeds.md")


def read(root: Path, dept: str, dataset: str) -> pa.Table:
    parts = sorted((root / dept / dataset).glob("part-*.parquet"))
    assert parts, f"no parts for {dept}/{dataset}"
    return pa.concat_tables(pq.read_table(p) for p in parts)


def read_all(root: Path, dataset: str) -> pa.Table:
    return pa.concat_tables(read(root, d["id"], dataset) for d in DEFAULT_DEPARTMENTS if dataset in d["datasets"])


def values(table: pa.Table, column: str) -> list[str]:
    return [v for v in table[column].to_pylist() if v is not None]


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    meta = generate(root, seed=7, scale=SCALE, start=START, end=END)
    return root, meta


# --------------------------------------------------------------------------- API and layout


def test_default_departments():
    got = {d["id"]: (d["name"], d["datasets"], d["transports"]) for d in DEFAULT_DEPARTMENTS}
    assert got == {
        "yjj": (
            "市应急管理局",
            ["enterprises", "penalties", "accidents", "intermediary_ratings", "credit_actions", "listing_decisions"],
            ["json", "csv"],
        ),
        "zjj": ("市住房和城乡建设局", ["penalties", "credit_actions"], ["csv"]),
        "jtj": ("市交通运输局", ["penalties", "accidents"], ["json"]),
        "scj": ("市市场监督管理局", ["penalties"], ["json", "csv"]),
    }
    for d in DEFAULT_DEPARTMENTS:
        assert is_valid_uscc(d["uscc"]) and d["uscc"][:2] == "11"


def test_meta_json(run):
    root, meta = run
    on_disk = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    assert on_disk == meta
    text = (root / "meta.json").read_text(encoding="utf-8")
    assert text == json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    assert {"generator_version", "seed", "scale", "start", "end", "departments", "counts", "scenarios"} <= set(meta)
    assert meta["seed"] == 7 and meta["scale"] == SCALE
    assert (meta["start"], meta["end"]) == (START.isoformat(), END.isoformat())
    for d in meta["departments"]:
        for ds in d["datasets"]:
            assert meta["counts"][d["id"]][ds] == read(root, d["id"], ds).num_rows
    # the registry: scale subjects plus the golden ones
    assert meta["counts"]["yjj"]["enterprises"] == SCALE + len(meta["scenarios"])


EXPECTED_FIELDS = {
    "penalties": "CF_XDR_MC CF_XDR_LB CF_XDR_SHXYM CF_XDR_GSZC CF_XDR_ZZJG CF_FRDB CF_FR_ZJLX "
    "CF_FR_ZJHM CF_XDR_ZJLX CF_XDR_ZJHM CF_WSH CF_WFXW CF_SY CF_YJ CF_CFLB CF_NR "
    "CF_NR_FK CF_NR_WFFF CF_NR_ZKDX CF_JDRQ CF_YXQ CF_GSJZQ CF_CFJG CF_CFJGDM CF_SJLY "
    "CF_SJLYDM AQ_WFDM AQ_SGBH AQ_QJ AQ_ZXZT AQ_ZYFZR AQ_ZYFZR_ZJHM AQ_CFDX",
    "accidents": "SG_BH SG_MC SG_FSSJ SG_XZQH SG_DWMC SG_DWDM SG_HYLB SG_LX SG_SWRS SG_ZSRS "
    "SG_JJSS SG_DJ SG_ZR SG_BGQK SG_JARQ SG_ZYFZR SG_ZYFZR_ZJHM SG_ZYFZR_TN",
    "intermediary_ratings": "JG_MC JG_DM JG_ZZLX JG_ZSBH JG_ZZYXQ PJ_ZQ PJ_DF PJ_DJ PJ_WGQX PJ_JG PJ_RQ",
    "enterprises": "QY_DM QY_MC QY_CYM QY_ZCH QY_ZZJGDM QY_FDDBR QY_ZYFZR QY_ZYFZR_ZJHM QY_HYDM "
    "QY_GWHY QY_XZQH QY_ZT QY_CLRQ QY_BZHDJ QY_CYRS",
    "credit_actions": "XD_LX XD_DXLX XD_DXDM XD_WSH XD_RQ XD_JG XD_JGDM XD_SM",
    "listing_decisions": "MD_WSH MD_LX MD_YWSH MD_DXLX MD_DXDM MD_DXMC MD_QX MD_CFWSH MD_JDRQ MD_QSRQ MD_JZRQ "
    "MD_JG MD_JGDM MD_MD",
}


def test_schema_is_exactly_the_spec_fields_as_strings(run):
    root, _ = run
    for d in DEFAULT_DEPARTMENTS:
        for ds in d["datasets"]:
            for part in (root / d["id"] / ds).glob("part-*.parquet"):
                schema = pq.read_schema(part)
                assert schema.names == ENVELOPE + EXPECTED_FIELDS[ds].split(), part
                assert all(t == pa.string() for t in schema.types), part
                assert not (schema.metadata or {}).keys() - {b"ARROW:schema"}


@pytest.mark.skipif(not SPEC.exists(), reason="shared spec not available")
def test_field_lists_match_the_spec_document():
    text = SPEC.read_text(encoding="utf-8")
    for section in re.split(r"^#{2,3} ", text, flags=re.M)[1:]:
        m = re.match(r"3\.\d+ `(\w+)`", section)
        if not m:
            continue
        codes = []
        for line in section.splitlines():
            cell = line.split("|")[1].strip() if line.startswith("| ") else ""
            codes += [c.strip() for c in cell.split("/") if re.fullmatch(r"[A-Z][A-Z0-9_]+", c.strip())]
        assert codes == DATASET_FIELDS[m.group(1)], m.group(1)


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, seed=11, scale=1200)
    generate(b, seed=11, scale=1200)
    da, db = digests(a), digests(b)
    assert len(da) == 12 and da == db  # 11 datasets + meta.json
    # a re-run into a used directory leaves no stale parts and the same bytes
    generate(a, seed=11, scale=1200, chunk_rows=100)
    generate(a, seed=11, scale=1200)
    assert digests(a) == db


def test_different_seed_gives_different_data(tmp_path):
    generate(tmp_path / "a", seed=1, scale=1200, scenarios=False)
    generate(tmp_path / "b", seed=2, scale=1200, scenarios=False)
    da, db = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert da.keys() == db.keys()
    differing = [k for k in da if da[k] != db[k] and k.endswith(".parquet")]
    assert len(differing) >= 8
    ua = set(values(read(tmp_path / "a", "yjj", "enterprises"), "QY_DM"))
    ub = set(values(read(tmp_path / "b", "yjj", "enterprises"), "QY_DM"))
    assert len(ua & ub) < 10


def test_chunked_output_has_the_same_rows(tmp_path):
    generate(tmp_path / "small", seed=5, scale=2000, chunk_rows=250)
    generate(tmp_path / "big", seed=5, scale=2000)
    small = tmp_path / "small" / "yjj" / "enterprises"
    parts = sorted(small.glob("part-*.parquet"))
    assert len(parts) == -(-(2000 + 12) // 250)
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts[:-1]] == [250] * (len(parts) - 1)
    for d in DEFAULT_DEPARTMENTS:
        for ds in d["datasets"]:
            a, b = read(tmp_path / "small", d["id"], ds), read(tmp_path / "big", d["id"], ds)
            assert a.equals(b), (d["id"], ds)
            n = len(list((tmp_path / "small" / d["id"] / ds).glob("*.parquet")))
            assert n == max(1, -(-a.num_rows // 250))


# --------------------------------------------------------------------------- content


def test_codes_in_the_output_are_valid_and_unique(run):
    root, _ = run
    today = END + timedelta(days=1)
    ent = read(root, "yjj", "enterprises")
    pen = read_all(root, "penalties")
    acc = read_all(root, "accidents")
    rat = read(root, "yjj", "intermediary_ratings")
    cra = read_all(root, "credit_actions")
    usccs = (
        values(ent, "QY_DM")
        + values(pen, "CF_XDR_SHXYM")
        + values(pen, "CF_CFJGDM")
        + values(pen, "CF_SJLYDM")
        + values(acc, "SG_DWDM")
        + values(rat, "JG_DM")
        + values(cra, "XD_JGDM")
    )
    ids = (
        values(ent, "QY_ZYFZR_ZJHM")
        + values(pen, "CF_FR_ZJHM")
        + values(pen, "CF_XDR_ZJHM")
        + values(pen, "AQ_ZYFZR_ZJHM")
        + values(acc, "SG_ZYFZR_ZJHM")
    )
    assert len(usccs) > 5_000 and len(ids) > 3_000
    assert all(is_valid_uscc(c) for c in usccs)
    assert all(is_valid_id_number(c, today=today) for c in ids)
    assert all(is_valid_org_code(c) for c in values(ent, "QY_ZZJGDM") + values(pen, "CF_XDR_ZZJG"))
    assert all(is_valid_reg_no15(c) for c in values(ent, "QY_ZCH") + values(pen, "CF_XDR_GSZC"))
    # the old organisation code is the one inside the USCC
    for uscc, org in zip(ent["QY_DM"].to_pylist(), ent["QY_ZZJGDM"].to_pylist()):
        assert org is None or uscc[8:17] == org
    for kind, code in zip(cra["XD_DXLX"].to_pylist(), cra["XD_DXDM"].to_pylist()):
        assert is_valid_uscc(code) if kind == "单位" else is_valid_id_number(code, today=today)
    # registry codes unique; one ID number per person name
    assert len(set(values(ent, "QY_DM"))) == ent.num_rows
    person = {}
    for name, pid in zip(ent["QY_ZYFZR"].to_pylist(), ent["QY_ZYFZR_ZJHM"].to_pylist()):
        assert person.setdefault(pid, name) == name
    # accident numbers unique across departments and carrying a district code
    bh = values(acc, "SG_BH")
    assert len(set(bh)) == len(bh) == acc.num_rows
    assert all(re.fullmatch(r"3312\d\d-20\d\d-\d{4,}", b) for b in bh)
    assert all(b[:6] == x for b, x in zip(bh, acc["SG_XZQH"].to_pylist()))
    # decision numbers unique per department
    wsh = list(zip(pen["CF_CFJG"].to_pylist(), pen["CF_WSH"].to_pylist()))
    assert len(set(wsh)) == len(wsh)
    for d in DEFAULT_DEPARTMENTS:
        for ds in d["datasets"]:
            rid = read(root, d["id"], ds)["record_id"].to_pylist()
            assert len(set(rid)) == len(rid)
            assert all(r.startswith(f"{d['id']}-") for r in rid)


DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MONEY = re.compile(r"(0|[1-9]\d*)(\.\d*[1-9])?")


def test_values_are_clean_and_canonical(run):
    root, _ = run
    pen = read_all(root, "penalties")
    acc = read_all(root, "accidents")
    for t, cols in ((pen, ["CF_JDRQ", "CF_YXQ", "CF_GSJZQ"]), (acc, ["SG_JARQ"])):
        for c in cols:
            for v in values(t, c):
                assert DATE.fullmatch(v) and date.fromisoformat(v)
    for v in values(pen, "CF_JDRQ"):
        assert START <= date.fromisoformat(v) <= END
    for c in ("CF_NR_FK", "CF_NR_WFFF"):
        assert all(MONEY.fullmatch(v) for v in values(pen, c))
    assert all(MONEY.fullmatch(v) for v in values(acc, "SG_JJSS"))
    for v in values(acc, "SG_FSSJ"):
        assert START <= datetime.strptime(v, "%Y-%m-%d %H:%M:%S").date() <= END
    allowed = {
        "警告",
        "通报批评",
        "罚款",
        "没收违法所得",
        "没收非法财物",
        "暂扣许可证件",
        "降低资质等级",
        "吊销许可证件",
        "限制开展生产经营活动",
        "责令停产停业",
        "责令关闭",
        "限制从业",
        "行政拘留",
        "其他",
    }
    assert all(set(v.split(";")) <= allowed for v in values(pen, "CF_CFLB"))
    assert set(values(pen, "AQ_WFDM")) <= {
        "ACCIDENT_LIABILITY",
        "ACCIDENT_CONCEALED",
        "PRINCIPAL_ABSCONDED",
        "UNLICENSED_OPERATION",
        "AGENCY_FRAUD",
        "REFUSED_EXECUTION",
        "HIDDEN_DANGER_UNFIXED",
        "NO_LIABILITY_INSURANCE",
        "OTHER",
    }
    # no full-width ASCII forms in codes, dates and amounts
    for t in (pen, acc):
        for c in t.column_names:
            if c.endswith(("DM", "ZJHM", "SHXYM", "RQ", "FK", "BH")):
                assert all(v.isascii() for v in values(t, c)), c


def test_updated_at_follows_the_business_date(run):
    root, _ = run
    checks = [
        ("penalties", "CF_JDRQ"),
        ("accidents", "SG_FSSJ"),
        ("credit_actions", "XD_RQ"),
        ("intermediary_ratings", "PJ_RQ"),
    ]
    for ds, col in checks:
        t = read_all(root, ds)
        for up, biz in zip(t["updated_at"].to_pylist(), t[col].to_pylist()):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", up)
            u = datetime.fromisoformat(up).replace(tzinfo=None)
            b = datetime.fromisoformat(biz)
            assert b <= u and u.date() <= END and u - b < timedelta(days=9), (ds, up, biz)
    ops = set(read_all(root, "penalties")["op"].to_pylist())
    assert ops == {"upsert"}


def test_registry_mix(tmp_path):
    meta = generate(tmp_path, seed=3, scale=20_000, scenarios=False)
    ent = read(tmp_path, "yjj", "enterprises")
    n = ent.num_rows
    share = lambda col, v: pc.sum(pc.equal(ent[col], v)).as_py() / n  # noqa: E731
    assert 0.21 < 1 - share("QY_GWHY", "无") < 0.29
    assert 0.005 < share("QY_BZHDJ", "一级") < 0.015
    assert 0.04 < share("QY_BZHDJ", "二级") < 0.08
    assert 0.15 < share("QY_BZHDJ", "三级") < 0.25
    assert 0.06 < pc.sum(pc.is_valid(ent["QY_CYM"])).as_py() / n < 0.10
    assert 12 <= np.median(np.array(ent["QY_CYRS"].to_pylist(), int)) <= 30
    names = values(ent, "QY_MC")
    assert all(
        v.startswith(("江城", "青溪县", "白石县", "临江市", "东湖区", "西江区", "南港区", "北山区", "江北区"))
        for v in names
    )
    companies = [v for v in names if v.endswith("公司")]
    assert 0.85 < len(companies) / n < 0.98
    assert all(v.endswith(("有限公司", "有限责任公司", "股份有限公司")) for v in companies)
    assert {v[:4] for v in values(ent, "QY_XZQH")} == {"3312"}
    rat = read(tmp_path, "yjj", "intermediary_ratings")
    assert len(set(values(rat, "JG_DM"))) <= 60 and set(values(rat, "JG_DM")) <= set(values(ent, "QY_DM"))
    pen = read_all(tmp_path, "penalties")
    total = sum(c["penalties"] for c in meta["counts"].values())
    assert 0.35 * 20_000 < total < 0.5 * 20_000
    by_dept = {d: meta["counts"][d]["penalties"] for d in ("yjj", "zjj", "jtj", "scj")}
    assert max(by_dept, key=by_dept.get) == "yjj"
    wfdm = pc.value_counts(pc.fill_null(pen["AQ_WFDM"], "")).to_pylist()
    mix = {r["values"]: r["counts"] / pen.num_rows for r in wfdm}
    assert 0.005 < mix["HIDDEN_DANGER_UNFIXED"] < 0.02
    assert 0.03 < mix["NO_LIABILITY_INSURANCE"] < 0.07
    assert 0.004 < mix["UNLICENSED_OPERATION"] < 0.015
    assert 0.03 < mix[""] < 0.07
    assert 0.002 < mix["REFUSED_EXECUTION"] < 0.01
    assert mix["OTHER"] > 0.5
    fines = np.array(values(pen, "CF_NR_FK"), float)
    assert 1 <= np.median(fines) <= 4
    # NO_LIABILITY_INSURANCE only on high-risk units, AGENCY_FRAUD only on agencies
    gwhy = dict(zip(ent["QY_DM"].to_pylist(), ent["QY_GWHY"].to_pylist()))
    agencies = set(values(rat, "JG_DM"))
    for code, uscc in zip(pen["AQ_WFDM"].to_pylist(), pen["CF_XDR_SHXYM"].to_pylist()):
        if code == "NO_LIABILITY_INSURANCE":
            assert gwhy[uscc] != "无"
        if code == "AGENCY_FRAUD" and uscc is not None:
            assert uscc in agencies
    # person penalties name a valid person and say so consistently
    for lb, cfdx, zjhm in zip(pen["CF_XDR_LB"].to_pylist(), pen["AQ_CFDX"].to_pylist(), pen["CF_XDR_ZJHM"].to_pylist()):
        assert (lb == "自然人") == (cfdx == "个人") == (zjhm is not None)
    assert "个体工商户" in set(values(pen, "CF_XDR_LB"))


def test_accident_links(run):
    root, _ = run
    acc = read_all(root, "accidents")
    pen = read_all(root, "penalties")
    cra = read_all(root, "credit_actions")
    by_bh = {r["SG_BH"]: r for r in acc.to_pylist()}
    liability = [r for r in pen.to_pylist() if r["AQ_WFDM"] == "ACCIDENT_LIABILITY"]
    assert liability
    for r in liability:
        a = by_bh[r["AQ_SGBH"]]
        assert a["SG_ZR"] == "责任事故" and a["SG_DWDM"] is not None
        gap = (date.fromisoformat(r["CF_JDRQ"]) - datetime.fromisoformat(a["SG_FSSJ"]).date()).days
        assert 88 <= gap <= 205
        if r["AQ_CFDX"] == "单位":
            assert r["CF_XDR_SHXYM"] == a["SG_DWDM"]
            lo, hi = {"一般": (30, 100), "较大": (100, 200), "重大": (200, 1000), "特别重大": (1000, 2000)}[a["SG_DJ"]]
            k = (2, 5) if r["AQ_QJ"] == "特别严重" else (1, 1)
            assert lo * k[0] <= float(r["CF_NR_FK"]) <= hi * k[1] + 0.5
        else:
            assert r["CF_XDR_ZJHM"] == a["SG_ZYFZR_ZJHM"]
    # road accidents come from jtj; about 30% of them name a unit
    jtj = read(root, "jtj", "accidents")
    with_unit = pc.sum(pc.is_valid(jtj["SG_DWDM"])).as_py() / jtj.num_rows
    assert 0.2 < with_unit < 0.4
    assert set(values(jtj, "SG_LX")) == {"车辆伤害"}
    # closed accidents are investigated 60–120 days after; open ones are 调查中
    for r in acc.to_pylist():
        if r["SG_JARQ"] is None:
            assert r["SG_ZR"] == "调查中"
        else:
            d = (date.fromisoformat(r["SG_JARQ"]) - datetime.fromisoformat(r["SG_FSSJ"]).date()).days
            assert 60 <= d <= 120 and r["SG_ZR"] != "调查中"
    # credit actions point at decisions of the department that made them
    decisions = {(r["CF_WSH"], r["CF_CFJG"]): r for r in pen.to_pylist()}
    assert cra.num_rows > 0
    for r in cra.to_pylist():
        p = decisions[(r["XD_WSH"], r["XD_JG"])]
        assert r["XD_DXDM"] in (p["CF_XDR_SHXYM"], p["CF_XDR_ZJHM"])
        assert r["XD_RQ"] >= p["CF_JDRQ"]
        if r["XD_LX"] == "信用修复":
            assert date.fromisoformat(r["XD_RQ"]) >= date.fromisoformat(p["CF_JDRQ"]) + timedelta(days=390)


# --------------------------------------------------------------------------- calibration


def grade_by_numbers(deaths: int, injuries: int, loss_wan: float) -> int:
    """rules.md §2, written independently of the generator: the highest dimension wins."""
    g = 0
    for bounds, v in (((3, 10, 30), deaths), ((10, 50, 100), injuries), ((1000, 5000, 10000), loss_wan)):
        g = max(g, sum(v >= b for b in bounds))
    return g


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_accident_calibration_2011_2015(seed):
    f = calibration_sample(seed, years=(2011, 2015), scale=REFERENCE_SUBJECTS)
    for c, name in enumerate(("road", "industry_trade", "other")):
        m = f["category"] == c
        ref = REFERENCE_RECORD[name]
        assert abs(m.sum() - ref["accidents"]) <= CALIBRATION_TOLERANCE * ref["accidents"]
        assert abs(f["deaths"][m].sum() - ref["deaths"]) <= CALIBRATION_TOLERANCE * ref["deaths"]
    grades = np.array([grade_by_numbers(d, i, loss / 100) for d, i, loss in zip(f["deaths"], f["injuries"], f["loss"])])
    assert (grades == f["grade"]).all()
    years = (f["ts"] // 86400).astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
    assert set(years) == set(range(2011, 2016))
    lam = REFERENCE_RECORD["larger_per_year"]
    larger = [int(((grades == 1) & (years == y)).sum()) for y in range(2011, 2016)]
    assert all(v <= 14 for v in larger)  # P(Poisson(4.8) > 14) < 1e-4
    assert abs(sum(larger) - 5 * lam) <= 4 * np.sqrt(5 * lam)
    assert (grades >= 2).sum() <= 5 and (grades == 3).sum() == 0


def test_calibration_pooled_over_seeds():
    larger, major = [], []
    for seed in range(20):
        f = calibration_sample(100 + seed)
        larger.append(int((f["grade"] == 1).sum()))
        major.append(int((f["grade"] == 2).sum()))
    assert abs(np.mean(larger) / 5 - REFERENCE_RECORD["larger_per_year"]) < 0.6
    assert np.mean(major) / 5 < 0.5


def test_generated_accidents_match_the_record_at_reference_scale(tmp_path):
    generate(
        tmp_path,
        seed=9,
        scale=REFERENCE_SUBJECTS,
        start=date(2011, 1, 1),
        end=date(2015, 12, 31),
        scenarios=False,
        penalties_per_subject=0.05,
    )
    road = read(tmp_path, "jtj", "accidents")
    rest = read(tmp_path, "yjj", "accidents")
    tol = CALIBRATION_TOLERANCE
    for t, names in ((road, ["road"]), (rest, ["industry_trade", "other"])):
        n = sum(REFERENCE_RECORD[x]["accidents"] for x in names)
        d = sum(REFERENCE_RECORD[x]["deaths"] for x in names)
        assert abs(t.num_rows - n) <= tol * n
        assert abs(sum(int(v) for v in t["SG_SWRS"].to_pylist()) - d) <= tol * d
    both = pa.concat_tables([road, rest])
    for r in both.to_pylist():
        g = grade_by_numbers(int(r["SG_SWRS"]), int(r["SG_ZSRS"]), float(r["SG_JJSS"]))
        assert r["SG_DJ"] == ["一般", "较大", "重大", "特别重大"][g]


# --------------------------------------------------------------------------- scenarios


def _check_scenarios(root: Path, meta: dict) -> None:
    end = date.fromisoformat(meta["end"])
    docs = {s["id"]: s for s in meta["scenarios"]}
    grounds = {s["ground"] for s in meta["scenarios"]}
    assert {"A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4"} <= grounds
    pen = {r["record_id"]: r for r in read_all(root, "penalties").to_pylist()}
    acc = {r["record_id"]: r for r in read_all(root, "accidents").to_pylist()}
    ent = {r["record_id"]: r for r in read(root, "yjj", "enterprises").to_pylist()}
    cra = {r["record_id"]: r for r in read_all(root, "credit_actions").to_pylist()}
    for s in meta["scenarios"]:
        assert ent[s["record_ids"]["enterprises"][0]]["QY_DM"] == s["uscc"]
        assert is_valid_uscc(s["uscc"])
        decision = date.fromisoformat(s["decision_date"])
        if s["ground"]:
            assert s["expected_status"] == "listed" and s["ground"] == s["listing_ground"]
            assert end - timedelta(days=730) <= decision <= end
        else:
            assert s["expected_status"] != "listed"
        trig = [pen[r] for r in s["record_ids"]["penalties"] if pen[r]["CF_WSH"] == s["cf_wsh"]]
        assert trig and trig[0]["CF_JDRQ"] == s["decision_date"]
        assert trig[0]["CF_CFJG"] == next(d["full_name"] for d in DEFAULT_DEPARTMENTS if d["id"] == s["dept"])
        for rid in s["record_ids"]["accidents"]:
            assert acc[rid]["SG_DWDM"] == s["uscc"]
        for rid in s["record_ids"]["credit_actions"]:
            assert cra[rid]["XD_WSH"] == s["cf_wsh"]
    accs = lambda k: [acc[r] for r in docs[k]["record_ids"]["accidents"]]  # noqa: E731
    pens = lambda k: [pen[r] for r in docs[k]["record_ids"]["penalties"]]  # noqa: E731

    def grade(a):
        return grade_by_numbers(int(a["SG_SWRS"]), int(a["SG_ZSRS"]), float(a["SG_JJSS"]))

    assert grade(accs("A1")[0]) == 2 and accs("A1")[0]["SG_ZR"] == "责任事故"
    a2 = sorted(accs("A2"), key=lambda a: a["SG_FSSJ"])
    assert [grade(a) for a in a2] == [1, 1]
    gap = datetime.fromisoformat(a2[1]["SG_FSSJ"]) - datetime.fromisoformat(a2[0]["SG_FSSJ"])
    assert gap < timedelta(days=365)
    assert {p["AQ_SGBH"] for p in pens("A2")} == {a["SG_BH"] for a in a2}
    assert any(p["AQ_QJ"] == "特别严重" and p["AQ_WFDM"] == "ACCIDENT_LIABILITY" for p in pens("A3"))
    assert accs("A4")[0]["SG_BGQK"] == "瞒报"
    assert any(p["AQ_WFDM"] == "ACCIDENT_CONCEALED" for p in pens("A4"))
    assert accs("A5")[0]["SG_ZYFZR_TN"] == "是"
    absc = [p for p in pens("A5") if p["AQ_WFDM"] == "PRINCIPAL_ABSCONDED"]
    assert absc and absc[0]["AQ_CFDX"] == "个人"
    assert absc[0]["CF_XDR_ZJHM"] == docs["A5"]["principal"]["id_number"]
    for k, code in (
        ("B1", "UNLICENSED_OPERATION"),
        ("B2", "AGENCY_FRAUD"),
        ("B3", "REFUSED_EXECUTION"),
        ("B4", "OTHER"),
    ):
        assert any(p["AQ_WFDM"] == code and p["CF_WSH"] == docs[k]["cf_wsh"] for p in pens(k))
    assert [p["AQ_QJ"] for p in pens("B4")] == ["特别严重"]
    b2_staff = [p for p in pens("B2") if p["AQ_CFDX"] == "个人"]
    assert b2_staff and b2_staff[0]["CF_XDR_ZJHM"] == docs["B2"]["staff"]["id_number"]
    rat = read(root, "yjj", "intermediary_ratings").to_pylist()
    assert any(r["JG_DM"] == docs["B2"]["uscc"] and r["PJ_DJ"] == "红" for r in rat)
    assert [cra[r]["XD_LX"] for r in docs["REPAIRED"]["record_ids"]["credit_actions"]] == ["信用修复"]
    assert [cra[r]["XD_LX"] for r in docs["OBJECTION"]["record_ids"]["credit_actions"]] == ["异议成立"]


def test_scenarios_present(run):
    root, meta = run
    _check_scenarios(root, meta)


def test_scenarios_at_tiny_scale_and_fixed_identities(tmp_path):
    meta = generate(tmp_path, seed=99, scale=30, end=date(2025, 6, 30))
    _check_scenarios(tmp_path, meta)
    other = generate(tmp_path / "x", seed=1, scale=500, scenarios=True)
    assert [s["uscc"] for s in meta["scenarios"]] == [s["uscc"] for s in other["scenarios"]]
    assert [s["principal"] for s in meta["scenarios"]] == [s["principal"] for s in other["scenarios"]]


def test_scenarios_off(tmp_path):
    meta = generate(tmp_path, seed=4, scale=1000, scenarios=False)
    assert meta["scenarios"] == []
    assert meta["counts"]["yjj"]["enterprises"] == 1000
