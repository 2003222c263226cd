"""Build a warehouse from hand-written department records, for rule tests (no HTTP).

    con = build_warehouse(tmp_path, {"yjj": {"penalties": [penalty(...), ...], "accidents": [...]}},
                          as_of=date(2026, 11, 22))

Records go through the real path: raw landing → contracts/staging → subjects → rules/*.sql.
`landed_at` of every record is its own `updated_at` unless given as `_landed_at`, so `known_at`
tests can model late arrivals.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from safecredit.codes import make_id_number, make_org_code, make_uscc
from safecredit.config import DATASETS, Department
from safecredit.landing import SourceDir
from safecredit.policy import Policy, policy_for
from safecredit.rules import run_rules, run_subjects
from safecredit.staging import load_raw, stage
from safecredit.warehouse import connect

AUTHORITY = make_uscc("1", "1", "331200", make_org_code("00000001"))
AUTHORITY_NAME = "江城市应急管理局"
#: the department kinds of the fixtures' sources (operations.md): yjj is the 应急管理局
KINDS = {"yjj": "emergency", "zjj": "housing", "jtj": "transport", "scj": "market"}


def uscc(i: int) -> str:
    return make_uscc("9", "1", "331202", make_org_code(f"{31000000 + i:08d}"))


def id_number(i: int) -> str:
    return make_id_number("331202", date(1970, 1, 1 + i % 28), f"{i % 1000:03d}")


def ts(d: str, hhmm: str = "10:00:00") -> str:
    return f"{d}T{hhmm}+08:00"


def enterprise(i: int, **over) -> dict:
    rec = {
        "record_id": f"ent-{i}",
        "updated_at": ts("2020-01-02"),
        "op": "upsert",
        "QY_DM": uscc(i),
        "QY_MC": f"江城市测试{i}号有限公司",
        "QY_ZYFZR": f"负责人{i}",
        "QY_ZYFZR_ZJHM": id_number(i),
        "QY_HYDM": "C3311",
        "QY_GWHY": "无",
        "QY_XZQH": "331202",
        "QY_ZT": "存续",
        "QY_CLRQ": "2010-05-01",
        "QY_BZHDJ": "无",
        "QY_CYRS": "50",
    }
    rec.update(over)
    return rec


def penalty(n: int, subject: int, decision_date: str, **over) -> dict:
    rec = {
        "record_id": f"pen-{n}",
        "updated_at": ts(decision_date),
        "op": "upsert",
        "CF_XDR_MC": f"江城市测试{subject}号有限公司",
        "CF_XDR_LB": "法人及非法人组织",
        "CF_XDR_SHXYM": uscc(subject),
        "CF_WSH": f"江应急罚〔{decision_date[:4]}〕{n}号",
        "CF_CFLB": "罚款",
        "CF_NR_FK": "3",
        "CF_JDRQ": decision_date,
        "CF_CFJG": AUTHORITY_NAME,
        "CF_CFJGDM": AUTHORITY,
        "CF_SJLY": AUTHORITY_NAME,
        "CF_SJLYDM": AUTHORITY,
        "AQ_WFDM": "OTHER",
        "AQ_QJ": "一般",
        "AQ_CFDX": "单位",
    }
    rec.update(over)
    return rec


def person_penalty(n: int, person: int, decision_date: str, **over) -> dict:
    rec = penalty(
        n,
        0,
        decision_date,
        CF_XDR_LB="自然人",
        AQ_CFDX="个人",
        CF_XDR_MC=f"个人{person}",
        CF_XDR_SHXYM=None,
        CF_XDR_ZJLX="身份证",
        CF_XDR_ZJHM=id_number(person),
        **over,
    )
    return {k: v for k, v in rec.items() if v is not None}


def accident(n: int, subject: int, occurred: str, deaths: int = 0, grade: str = "一般", **over) -> dict:
    rec = {
        "record_id": f"acc-{n}",
        "updated_at": ts(occurred[:10], "23:00:00"),
        "op": "upsert",
        "SG_BH": f"331202-{occurred[:4]}-{n:04d}",
        "SG_FSSJ": f"{occurred[:10]} 08:00:00",
        "SG_DWMC": f"江城市测试{subject}号有限公司",
        "SG_DWDM": uscc(subject),
        "SG_LX": "机械伤害",
        "SG_SWRS": str(deaths),
        "SG_ZSRS": "0",
        "SG_JJSS": "10",
        "SG_DJ": grade,
        "SG_ZR": "责任事故",
        "SG_BGQK": "正常",
    }
    rec.update(over)
    return rec


def credit_action(n: int, kind: str, code: str, decision_no: str, effective: str, **over) -> dict:
    rec = {
        "record_id": f"xd-{n}",
        "updated_at": ts(effective),
        "op": "upsert",
        "XD_LX": kind,
        "XD_DXLX": "单位",
        "XD_DXDM": code,
        "XD_WSH": decision_no,
        "XD_RQ": effective,
        "XD_JG": AUTHORITY_NAME,
        "XD_JGDM": AUTHORITY,
    }
    rec.update(over)
    return rec


def revoke(record: dict, when: str) -> dict:
    return {"record_id": record["record_id"], "updated_at": ts(when), "op": "revoke"}


def listing_decision(n: int, code: str, penalty_no: str, ground: str, decided: str, **over) -> dict:
    """A 列入 decision (department-feeds.md §3.6) of the fixtures' 应急 authority."""
    rec = {
        "record_id": f"md-{n}",
        "updated_at": ts(decided),
        "op": "upsert",
        "MD_WSH": f"江应急列〔{decided[:4]}〕{n}号",
        "MD_LX": "列入",
        "MD_DXLX": "单位",
        "MD_DXDM": code,
        "MD_QX": ground,
        "MD_CFWSH": penalty_no,
        "MD_JDRQ": decided,
        "MD_JG": AUTHORITY_NAME,
        "MD_JGDM": AUTHORITY,
    }
    rec.update(over)
    return rec


#: the department kinds of the fixtures' sources (operations.md): yjj is the 应急管理局


def departments(kinds: dict[str, str] = KINDS, complete: tuple[str, ...] = ()) -> list[Department]:
    return [
        Department(d, d, "", "", "json", (), kind=k, decisions="complete" if d in complete else "partial")
        for d, k in sorted(kinds.items())
    ]


def land_records(raw: Path, dept: str, dataset: str, records: list[dict]) -> None:
    """One fetch per distinct `_landed_at` (default: the record's updated_at), oldest first."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get("_landed_at", r["updated_at"]), []).append(
            {k: v for k, v in r.items() if k != "_landed_at"}
        )
    src = SourceDir(raw, dept, dataset)
    for i, (landed, items) in enumerate(sorted(groups.items())):
        work = src.begin(f"F{landed.replace(':', '').replace('+', 'p')}-{i:04d}")
        (work / "items.jsonl").write_text(
            "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items), encoding="utf-8"
        )
        src.commit(work, {"transport": "json", "finished_at": landed})


def land_generated(raw: Path, data: Path, landed_at: str) -> None:
    """Land a generated data set (safecredit.generator: `<dept>/<dataset>/part-*.parquet`) as one
    JSON fetch per department and dataset, without HTTP: DuckDB writes the items file."""
    import duckdb

    for dept_dir in sorted(p for p in data.iterdir() if p.is_dir()):
        for ds_dir in sorted(p for p in dept_dir.iterdir() if p.is_dir()):
            src = SourceDir(raw, dept_dir.name, ds_dir.name)
            work = src.begin("F0000-generated")
            duckdb.execute(
                f"COPY (SELECT * FROM read_parquet('{ds_dir.as_posix()}/*.parquet') ORDER BY record_id) "
                f"TO '{(work / 'items.jsonl').as_posix()}' (FORMAT JSON)"
            )
            src.commit(work, {"transport": "json", "finished_at": landed_at})


def build_generated_warehouse(tmp_path: Path, seed: int, scale: int, salt: str = "test-salt"):
    """Generate a data set, land it, stage it and run the rules as of its end date (no HTTP, no
    Dagster): the real staging and rules over real DuckDB files. Returns (connection, meta)."""
    from safecredit.generator import generate

    data = tmp_path / f"data-s{seed}-n{scale}"
    generate(data, seed=seed, scale=scale)
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    raw = tmp_path / "raw"
    land_generated(raw, data, f"{meta['end']}T23:00:00+08:00")
    as_of = date.fromisoformat(meta["end"])
    con = connect(tmp_path / "warehouse.duckdb")
    pol = policy_for(as_of)
    for ds in DATASETS:
        load_raw(con, raw, sorted(d.name for d in data.iterdir() if (d / ds).is_dir()), ds)
        stage(con, ds, pol.get("publication.hold_back", {}))
    run_subjects(con, as_of, pol, salt)
    run_rules(con, as_of, pol, salt, departments=departments({d: KINDS[d] for d in KINDS if (data / d).is_dir()}))
    return con, meta


def build_warehouse(
    tmp_path: Path,
    data: dict[str, dict[str, list[dict]]],
    as_of: date,
    policy: Policy | None = None,
    known_at: date | None = None,
    salt: str = "test-salt",
    sources: list[Department] | None = None,
    kinds: dict[str, str] | None = None,
):
    """Land `data` ({dept: {dataset: records}}), stage, resolve subjects and run the rules
    (`sources`: the sources file's departments, default `departments(kinds or KINDS)`)."""
    raw = tmp_path / "raw"
    if not raw.exists():
        for dept, per_ds in data.items():
            for ds, recs in per_ds.items():
                land_records(raw, dept, ds, recs)
    con = connect(tmp_path / "warehouse.duckdb")
    pol = policy or policy_for(as_of)
    for ds in DATASETS:
        depts = sorted(d for d, per_ds in data.items() if ds in per_ds)
        load_raw(con, raw, depts, ds)
        stage(con, ds, pol.get("publication.hold_back", {}))
    run_subjects(con, as_of, pol, salt, known_at)
    sources = departments(KINDS if kinds is None else kinds) if sources is None else sources
    run_rules(con, as_of, pol, salt, known_at=known_at, departments=sources)
    return con
