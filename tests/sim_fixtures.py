"""A tiny stand-in for the generator's output layout, for the simulator's contract tests.

    data_dir/meta.json
    data_dir/<dept>/<dataset>/part-*.parquet   all columns strings: record_id, updated_at, op, fields

Records are updated on weekdays only (weekends are empty export days); two records of yjj
penalties share one updated_at so ties are ordered by record_id.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from safecredit.codes import make_id_number, make_org_code, make_uscc
from safecredit.generator import DATASET_FIELDS as FIELDS

DEPARTMENTS = [
    {
        "id": "yjj",
        "name": "市应急管理局",
        "transports": ["json", "csv"],
        "datasets": ["enterprises", "penalties", "accidents", "intermediary_ratings", "credit_actions"],
    },
    {"id": "zjj", "name": "市住房和城乡建设局", "transports": ["csv"], "datasets": ["penalties", "credit_actions"]},
    {"id": "jtj", "name": "市交通运输局", "transports": ["json"], "datasets": ["penalties", "accidents"]},
    {"id": "scj", "name": "市市场监督管理局", "transports": ["json", "csv"], "datasets": ["penalties"]},
]
COUNTS = {
    ("yjj", "enterprises"): 60,
    ("yjj", "penalties"): 150,
    ("yjj", "accidents"): 30,
    ("yjj", "intermediary_ratings"): 20,
    ("yjj", "credit_actions"): 15,
    ("zjj", "penalties"): 40,
    ("zjj", "credit_actions"): 10,
    ("jtj", "penalties"): 40,
    ("jtj", "accidents"): 20,
    ("scj", "penalties"): 40,
}
START, END = date(2024, 1, 1), date(2024, 3, 31)
REGION = "440300"


def _uscc(i: int, kind: str = "1") -> str:
    return make_uscc("9", kind, REGION, make_org_code(f"{10000000 + i * 7919:08d}"[-8:]))


def _agency_code(dept: str) -> str:
    return make_uscc("1", "1", REGION, make_org_code(f"{[d['id'] for d in DEPARTMENTS].index(dept) + 1:08d}"))


def _weekday_times(rng: random.Random, n: int) -> list[datetime]:
    days = [START + timedelta(d) for d in range((END - START).days + 1)]
    days = [d for d in days if d.weekday() < 5]
    out = []
    for _ in range(n):
        d = rng.choice(days)
        out.append(datetime(d.year, d.month, d.day, rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59)))
    return out


def _subjects(rng: random.Random, n: int) -> list[dict]:
    subs = []
    for i in range(n):
        suffix = "有限责任公司" if i % 3 == 0 else "有限公司"
        subs.append(
            {
                "code": _uscc(i),
                "name": f"深圳市安{i:03d}科技{suffix}",
                "former": f"深圳市旧名{i:03d}实业有限公司" if i % 4 == 0 else "",
                "principal": f"张{i:03d}",
                "pid": make_id_number(REGION, date(1970 + i % 30, 1 + i % 12, 1 + i % 28), i),
            }
        )
    return subs


def _row(dataset: str, dept: str, i: int, rng: random.Random, subs: list[dict], ts: datetime) -> dict:
    s = subs[rng.randrange(len(subs))]
    decided = (ts - timedelta(days=rng.randint(1, 20))).date().isoformat()
    agency = {"yjj": "市应急管理局", "zjj": "市住房和城乡建设局", "jtj": "市交通运输局", "scj": "市市场监督管理局"}[
        dept
    ]
    if dataset == "penalties":
        person = i % 10 == 9
        fine = f"{rng.choice([0.5, 1, 2, 3.5, 5, 10, 12.5, 30])}"
        return {
            "CF_XDR_MC": "李某" + str(i) if person else s["name"],
            "CF_XDR_LB": "自然人" if person else "法人及非法人组织",
            "CF_XDR_SHXYM": "" if person else s["code"],
            "CF_XDR_GSZC": "",
            "CF_XDR_ZZJG": "",
            "CF_FRDB": "" if person else s["principal"],
            "CF_FR_ZJLX": "" if person else "身份证",
            "CF_FR_ZJHM": "" if person else s["pid"],
            "CF_XDR_ZJLX": "身份证" if person else "",
            "CF_XDR_ZJHM": s["pid"] if person else "",
            "CF_WSH": f"深{dept}罚〔{ts.year}〕{i + 1}号",
            "CF_WFXW": "未按规定开展安全生产教育和培训",
            "CF_SY": f"经查，该单位于{decided}未按规定对从业人员进行安全生产教育和培训，存在事故隐患。",
            "CF_YJ": "《中华人民共和国安全生产法》第九十七条",
            "CF_CFLB": "警告;罚款",
            "CF_NR": f"给予警告，并处罚款{fine}万元。",
            "CF_NR_FK": fine,
            "CF_NR_WFFF": "",
            "CF_NR_ZKDX": "",
            "CF_JDRQ": decided,
            "CF_YXQ": "",
            "CF_GSJZQ": "",
            "CF_CFJG": agency,
            "CF_CFJGDM": _agency_code(dept),
            "CF_SJLY": agency,
            "CF_SJLYDM": _agency_code(dept),
            "AQ_WFDM": "OTHER",
            "AQ_SGBH": "",
            "AQ_QJ": "一般",
            "AQ_ZXZT": "未执行",
            "AQ_ZYFZR": s["principal"],
            "AQ_ZYFZR_ZJHM": s["pid"],
            "AQ_CFDX": "个人" if person else "单位",
        }
    if dataset == "accidents":
        deaths = rng.choice([0, 0, 1, 2, 3, 4])
        return {
            "SG_BH": f"{REGION}{ts.year}{dept.upper()}{i:04d}",
            "SG_MC": f"{s['name']}“{ts.month}·{ts.day}”高处坠落事故",
            "SG_FSSJ": f"{decided} 10:30:00",
            "SG_XZQH": REGION,
            "SG_DWMC": s["name"],
            "SG_DWDM": s["code"],
            "SG_HYLB": "E4790",
            "SG_LX": "高处坠落",
            "SG_SWRS": str(deaths),
            "SG_ZSRS": "1",
            "SG_JJSS": "120.5",
            "SG_DJ": "较大" if deaths >= 3 else "一般",
            "SG_ZR": "责任事故",
            "SG_BGQK": "正常",
            "SG_JARQ": "",
            "SG_ZYFZR": s["principal"],
            "SG_ZYFZR_ZJHM": s["pid"],
            "SG_ZYFZR_TN": "否",
        }
    if dataset == "intermediary_ratings":
        return {
            "JG_MC": f"深圳市安评{i:02d}技术服务有限公司",
            "JG_DM": _uscc(500 + i),
            "JG_ZZLX": "安全评价",
            "JG_ZSBH": f"APJ-(粤)-{i:03d}",
            "JG_ZZYXQ": "2026-12-31",
            "PJ_ZQ": "2024H1",
            "PJ_DF": str(60 + i),
            "PJ_DJ": "蓝" if 60 + i >= 70 else "黄",
            "PJ_WGQX": "",
            "PJ_JG": agency,
            "PJ_RQ": decided,
        }
    if dataset == "enterprises":
        s = subs[i]
        return {
            "QY_DM": s["code"],
            "QY_MC": s["name"],
            "QY_CYM": s["former"],
            "QY_ZCH": "",
            "QY_ZZJGDM": s["code"][8:17],
            "QY_FDDBR": s["principal"],
            "QY_ZYFZR": s["principal"],
            "QY_ZYFZR_ZJHM": s["pid"],
            "QY_HYDM": "C3311",
            "QY_GWHY": "无",
            "QY_XZQH": REGION,
            "QY_ZT": "存续",
            "QY_CLRQ": "2010-05-06",
            "QY_BZHDJ": "三级",
            "QY_CYRS": str(10 + i),
        }
    return {
        "XD_LX": "信用修复",
        "XD_DXLX": "单位",
        "XD_DXDM": s["code"],
        "XD_WSH": f"深{dept}罚〔2023〕{i + 1}号",
        "XD_RQ": decided,
        "XD_JG": agency,
        "XD_JGDM": _agency_code(dept),
        "XD_SM": "已完成整改，准予信用修复。",
    }


def write_fixture(out_dir: Path, seed: int = 7) -> dict:
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    subs = _subjects(rng, COUNTS[("yjj", "enterprises")])
    counts = {}
    for dept in DEPARTMENTS:
        for ds in dept["datasets"]:
            n = COUNTS[(dept["id"], ds)]
            times = _weekday_times(rng, n)
            if (dept["id"], ds) == ("yjj", "penalties"):
                times[1] = times[0]  # a tie on updated_at
            rows = []
            for i, ts in enumerate(times):
                rec = {
                    "record_id": f"{dept['id']}-{ds[:3]}-{i:05d}",
                    "updated_at": ts.isoformat() + "+08:00",
                    "op": "upsert",
                }
                rec.update(_row(ds, dept["id"], i, rng, subs, ts))
                rows.append(rec)
            cols = ["record_id", "updated_at", "op", *FIELDS[ds]]
            table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in cols})
            target = out_dir / dept["id"] / ds
            target.mkdir(parents=True, exist_ok=True)
            half = n // 2
            pq.write_table(table.slice(0, half), target / "part-0000.parquet")
            pq.write_table(table.slice(half), target / "part-0001.parquet")
            counts[f"{dept['id']}/{ds}"] = n
    meta = {
        "seed": seed,
        "scale": len(subs),
        "start": START.isoformat(),
        "end": END.isoformat(),
        "departments": DEPARTMENTS,
        "counts": counts,
        "scenarios": [],
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return meta
