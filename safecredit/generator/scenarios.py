"""Golden subjects: one hand-made case per listing ground of rules.md §3 (A1–A5, B1–B4), plus a
repaired listing, an upheld objection and an ordinary unit with a single warning.

The subjects, persons and codes are fixed (the same for every seed and scale: organisation codes
``09000000``–``090000xx`` and ID numbers with region ``331200`` lie outside the random ranges);
their dates are relative to ``end`` (every triggering decision within the last two years).
Record ids, 事故编号 and 文书号 continue the run's numbering, so meta.json names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from safecredit.codes import make_id_number, make_org_code, make_uscc

from . import calibration as cal
from . import events as ev
from . import text, vocab
from .subjects import Subjects
from .vocab import ABSCONDED, ACC_LIAB, AGENCY_FRAUD, CONCEALED, JTJ, OTHER, REFUSED, SCJ, UNLICENSED, YJJ, ZJJ

GOLDEN_BASE = 80_000_000  # global index of the first golden subject (persons: 4·gidx + role)
GOLDEN_RNG_SEED = 20_261_122
DAY = ev.DAY


@dataclass(frozen=True)
class Golden:
    key: str
    ground: str | None
    name: str
    industry: str
    district: str
    founded: str
    employees: int
    legal: tuple[str, str, int]  # name, birth date, sequence
    principal: tuple[str, str, int] | None = None  # None: the legal representative
    agency_type: str | None = None
    staff: tuple[str, str, int] | None = None
    description: str = ""


GOLDEN = [
    Golden(
        "A1",
        "A1",
        "江城市金盾化工有限公司",
        "C2614",
        "331206",
        "2006-04-18",
        320,
        ("周建华", "1968-03-15", 11),
        ("许志强", "1975-09-02", 31),
        description="重大 liability accident (11 deaths); unit fined under Art. 114 item 3, "
        "principal fined under Art. 95 and banned for life",
    ),
    Golden(
        "A2",
        "A2",
        "江城市宏基建设工程有限公司",
        "E4710",
        "331203",
        "2009-11-05",
        540,
        ("吴国栋", "1966-07-21", 51),
        description="two 较大 liability accidents (3 and 4 deaths) 220 days apart; the penalty "
        "for the second triggers A2",
    ),
    Golden(
        "A3",
        "A3",
        "青溪县石峰矿业有限公司",
        "B1019",
        "331221",
        "2011-02-14",
        85,
        ("郑海涛", "1972-12-09", 71),
        description="一般 accident (2 deaths) fined under Art. 114 ¶2 (情节特别严重, 3×)",
    ),
    Golden(
        "A4",
        "A4",
        "江城市永固金属制品有限公司",
        "C3311",
        "331204",
        "2013-08-30",
        140,
        ("孙丽娟", "1979-05-17", 82),
        ("马俊", "1983-01-26", 91),
        description="a fatal accident found concealed (瞒报): ACCIDENT_CONCEALED on the unit and on its principal",
    ),
    Golden(
        "A5",
        "A5",
        "江城市安达危险品运输有限公司",
        "G5435",
        "331205",
        "2012-06-11",
        60,
        ("黄伟", "1970-10-03", 111),
        description="road accident of a hazardous-goods carrier; the principal fled: "
        "PRINCIPAL_ABSCONDED person penalty (only the principal is listed)",
    ),
    Golden(
        "B1",
        "B1",
        "白石县红星烟花爆竹有限公司",
        "C2672",
        "331222",
        "2004-03-22",
        45,
        ("李长青", "1962-04-28", 131),
        description="production without a safety licence (UNLICENSED_OPERATION)",
    ),
    Golden(
        "B2",
        "B2",
        "江城市正衡安全评价有限公司",
        "M7249",
        "331202",
        "2010-09-09",
        38,
        ("陈思远", "1974-06-30", 151),
        agency_type="安全评价",
        staff=("杨帆", "1986-11-12", 171),
        description="安全评价 agency issued a false report: rating 红, AGENCY_FRAUD on the "
        "agency (qualification revoked) and on the signing staff member",
    ),
    Golden(
        "B3",
        "B3",
        "江城市顺通物流有限公司",
        "G5431",
        "331281",
        "2015-03-03",
        75,
        ("刘德明", "1969-08-08", 191),
        description="refused to execute an earlier penalty: REFUSED_EXECUTION (Art. 112)",
    ),
    Golden(
        "B4",
        "B4",
        "江城市精工汽车零部件有限公司",
        "C3670",
        "331203",
        "2008-01-15",
        260,
        ("何建平", "1971-02-19", 211),
        description="OTHER violation with AQ_QJ 特别严重, decided by 市场监管局",
    ),
    Golden(
        "REPAIRED",
        "B1",
        "江城市蓝海涂料有限公司",
        "C2641",
        "331206",
        "2007-05-20",
        90,
        ("徐春梅", "1976-03-03", 232),
        description="B1 listing repaired (信用修复) 14 months after the decision",
    ),
    Golden(
        "OBJECTION",
        "B1",
        "江城市恒信市政工程有限公司",
        "E4813",
        "331204",
        "2016-10-10",
        120,
        ("罗志刚", "1980-09-14", 251),
        description="B1 penalty whose objection was upheld (异议成立): the listing never stood",
    ),
    Golden(
        "CLEAN",
        None,
        "江城市惠民百货有限公司",
        "F5211",
        "331202",
        "2014-12-01",
        35,
        ("谢文", "1985-12-25", 272),
        description="an ordinary unit with a single warning: not listed",
    ),
]
EXPECTED_STATUS = {"REPAIRED": "repaired", "OBJECTION": "objection_upheld", "CLEAN": None}
TRIGGER_CODE = {
    "A1": "ACCIDENT_LIABILITY",
    "A2": "ACCIDENT_LIABILITY",
    "A3": "ACCIDENT_LIABILITY",
    "A4": "ACCIDENT_CONCEALED",
    "A5": "PRINCIPAL_ABSCONDED",
    "B1": "UNLICENSED_OPERATION",
    "B2": "AGENCY_FRAUD",
    "B3": "REFUSED_EXECUTION",
    "B4": "OTHER",
    None: "OTHER",
}
LISTED_PERSONS = {
    "A1": ["unit", "principal"],
    "A2": ["unit", "principal"],
    "A3": ["unit", "principal"],
    "A4": ["unit", "principal"],
    "A5": ["principal"],
    "B1": ["unit", "principal"],
    "B2": ["unit", "staff"],
    "B3": ["unit", "principal"],
    "B4": ["unit", "principal"],
    "REPAIRED": ["unit", "principal"],
    "OBJECTION": ["unit", "principal"],
    "CLEAN": [],
}


def _person(p: tuple[str, str, int]) -> tuple[str, str]:
    return p[0], make_id_number("331200", date.fromisoformat(p[1]), p[2])


def golden_subjects() -> Subjects:
    n = len(GOLDEN)
    gidx = GOLDEN_BASE + np.arange(n, dtype=np.int64)
    fixed: dict[int, tuple[str, str]] = {}
    uscc, org, legal_names, legal_ids, p_names, p_ids = [], [], [], [], [], []
    principal_pid = []
    for j, g in enumerate(GOLDEN):
        o = make_org_code(f"09{j:06d}")
        org.append(o)
        uscc.append(make_uscc("9", "1", g.district, o))
        base = 4 * int(gidx[j])
        legal = _person(g.legal)
        principal = _person(g.principal) if g.principal else legal
        fixed[base] = legal
        fixed[base + 1] = principal
        if g.staff:
            fixed[base + 2] = _person(g.staff)
        principal_pid.append(base + (1 if g.principal else 0))
        legal_names.append(legal[0])
        legal_ids.append(legal[1])
        p_names.append(principal[0])
        p_ids.append(principal[1])
    subj = Subjects(
        gidx=gidx,
        industry=np.array([vocab.IND_CODES.index(g.industry) for g in GOLDEN]),
        kind=np.zeros(n, dtype=np.int64),
        region=np.array([vocab.DISTRICT_CODES.index(g.district) for g in GOLDEN]),
        founded=np.array([cal.days(date.fromisoformat(g.founded)) for g in GOLDEN]),
        status=np.zeros(n, dtype=np.int64),
        employees=np.array([g.employees for g in GOLDEN]),
        bzh=np.array([2 if g.key in ("A1", "B4") else 3 for g in GOLDEN]),
        agency_type=np.array([vocab.AGENCY_TYPES.index(g.agency_type) if g.agency_type else -1 for g in GOLDEN]),
        principal_pid=np.array(principal_pid, dtype=np.int64),
        old_codes=np.zeros(n, dtype=bool),
        fixed_persons=fixed,
    )
    s = lambda values: pa.array(values, pa.string())  # noqa: E731
    nulls = pa.nulls(n, pa.string())
    subj.strings = {
        "uscc": s(uscc),
        "org": s(org),
        "name": s([g.name for g in GOLDEN]),
        "former": nulls,
        "reg_no": nulls,
        "org_old": nulls,
        "legal_name": s(legal_names),
        "legal_id": s(legal_ids),
        "principal_name": s(p_names),
        "principal_id": s(p_ids),
    }
    return subj


_TAG = {g.key: j for j, g in enumerate(GOLDEN)}


def _template(code: int, dept: int, wfxw_contains: str) -> int:
    return next(i for i, t in enumerate(vocab.TEMPLATES) if t[0] == code and dept in t[1] and wfxw_contains in t[2])


def add_scenarios(ctx: ev.Context, writers: dict, write_block) -> list[dict]:
    """Write the golden subjects and their records; return their documentation."""
    rng = np.random.default_rng(GOLDEN_RNG_SEED)
    subj = golden_subjects()
    E, S = ctx.d_end, ctx.d_start

    def wd(day: int) -> int:
        return int(text.weekday_adjust(np.array([max(day, S)]), S, E)[0])

    # ---------------------------------------------------------------- accidents
    acc_rows = [  # key, category, days before end, hh:mm, deaths, injuries, loss 万, type,
        # report, absconded, close days
        ("A1", cal.INDUSTRY_TRADE, 520, "14:20", 11, 6, 2300, "其他爆炸", 0, False, 110),
        ("A2", cal.INDUSTRY_TRADE, 640, "10:05", 3, 1, 420, "高处坠落", 0, False, 100),
        ("A2", cal.INDUSTRY_TRADE, 420, "15:40", 4, 2, 560, "坍塌", 0, False, 95),
        ("A3", cal.INDUSTRY_TRADE, 400, "09:30", 2, 0, 260, "坍塌", 0, False, 90),
        ("A4", cal.INDUSTRY_TRADE, 380, "22:10", 1, 0, 150, "机械伤害", 4, False, 120),
        ("A5", cal.ROAD, 300, "06:45", 2, 3, 310, "车辆伤害", 0, True, 75),
    ]
    n = len(acc_rows)
    day = np.array([max(E - r[2], S) for r in acc_rows])
    hhmm = np.array([int(r[3][:2]) * 3600 + int(r[3][3:]) * 60 for r in acc_rows])
    deaths = np.array([r[4] for r in acc_rows])
    injuries = np.array([r[5] for r in acc_rows])
    loss = np.array([r[6] * cal.WAN for r in acc_rows])
    unit = np.array([_TAG[r[0]] for r in acc_rows])
    acc = {
        "category": np.array([r[1] for r in acc_rows], dtype=np.int8),
        "ts": day * DAY + hhmm,
        "deaths": deaths,
        "injuries": injuries,
        "loss": loss,
        "grade": cal.accident_grade(deaths, injuries, loss),
        "has_unit": np.ones(n, bool),
        "liable": np.ones(n, bool),
        "report": np.array([r[8] for r in acc_rows], dtype=np.int8),
        "absconded": np.array([r[9] for r in acc_rows]),
        "close_days": np.array([r[10] for r in acc_rows]),
        "unit": unit,
        "region": subj.region[unit],
        "type": np.array([vocab.ACCIDENT_TYPES.index(r[7]) for r in acc_rows]),
        "dept": np.array([JTJ if r[1] == cal.ROAD else YJJ for r in acc_rows]),
        "road": np.full(n, vocab.ROADS.index("沪昆高速")),
    }
    acc = ev.number_accidents(ctx, acc)
    a_of = {}  # key → accident rows
    for i, r in enumerate(acc_rows):
        a_of.setdefault(r[0], []).append(i)

    # ---------------------------------------------------------------- penalties
    W = cal.WAN
    rows: list[dict] = []

    def pen(key: str, **cols) -> int:
        cols.setdefault("subj", _TAG[key])
        cols["day"] = wd(cols["day"])
        rows.append(dict(cols, tag=_TAG[key]))
        return len(rows) - 1

    def acc_day(i: int) -> int:
        return int(acc["ts"][i] // DAY)

    i = a_of["A1"][0]
    pen(
        "A1",
        dept=YJJ,
        code=ACC_LIAB,
        tpl=vocab.T_LIAB_UNIT + 2,
        day=acc_day(i) + 190,
        fine=450 * W,
        cflb=vocab.CFLB_INDEX["罚款;责令停产停业"],
        qj=1,
        acc=i,
        grade=2,
    )
    pen(
        "A1",
        role=1,
        dept=YJJ,
        code=ACC_LIAB,
        tpl=vocab.T_LIAB_PERSON + 2,
        day=acc_day(i) + 190,
        fine=36 * W,
        cflb=vocab.CFLB_INDEX["罚款;限制从业"],
        qj=1,
        acc=i,
        grade=2,
    )
    for i, fine in zip(a_of["A2"], (150, 180)):
        pen(
            "A2",
            dept=ZJJ,
            code=ACC_LIAB,
            tpl=vocab.T_LIAB_UNIT + 1,
            day=acc_day(i) + 150,
            fine=fine * W,
            cflb=vocab.CFLB_INDEX["罚款"],
            qj=1,
            acc=i,
            grade=1,
        )
        pen(
            "A2",
            role=1,
            dept=ZJJ,
            code=ACC_LIAB,
            tpl=vocab.T_LIAB_PERSON + 1,
            day=acc_day(i) + 150,
            fine=24 * W,
            cflb=vocab.CFLB_INDEX["罚款"],
            qj=0,
            acc=i,
            grade=1,
        )
    i = a_of["A3"][0]
    pen(
        "A3",
        dept=YJJ,
        code=ACC_LIAB,
        tpl=vocab.T_LIAB_UNIT_SEVERE,
        day=acc_day(i) + 150,
        fine=240 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=2,
        acc=i,
        grade=0,
    )
    i = a_of["A4"][0]
    pen(
        "A4",
        dept=YJJ,
        code=ACC_LIAB,
        tpl=vocab.T_LIAB_UNIT,
        day=acc_day(i) + 170,
        fine=60 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=0,
        acc=i,
        grade=0,
    )
    pen(
        "A4",
        dept=YJJ,
        code=CONCEALED,
        tpl=vocab.T_CONCEALED_UNIT,
        day=acc_day(i) + 175,
        fine=200 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=1,
        acc=i,
        grade=0,
    )
    pen(
        "A4",
        role=1,
        dept=YJJ,
        code=CONCEALED,
        tpl=vocab.T_CONCEALED_PERSON,
        day=acc_day(i) + 175,
        fine=30 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=1,
        acc=i,
        grade=0,
    )
    i = a_of["A5"][0]
    pen(
        "A5",
        dept=JTJ,
        code=ACC_LIAB,
        tpl=vocab.T_LIAB_UNIT,
        day=acc_day(i) + 140,
        fine=50 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=0,
        acc=i,
        grade=0,
    )
    pen(
        "A5",
        role=1,
        dept=JTJ,
        code=ABSCONDED,
        tpl=vocab.T_ABSCONDED,
        day=acc_day(i) + 145,
        fine=28 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=1,
        acc=i,
        grade=0,
    )
    pen(
        "B1",
        dept=YJJ,
        code=UNLICENSED,
        tpl=_template(UNLICENSED, YJJ, "未取得安全生产许可证"),
        day=E - 200,
        fine=20 * W,
        wfff=6 * W,
        cflb=vocab.CFLB_INDEX["没收违法所得;罚款;责令停产停业"],
        qj=1,
    )
    # B2: the agency's ratings of the last two years; the one ~230 days before end found fraud
    rating_days = []
    for y in range(ctx.end.year - 3, ctx.end.year + 1):
        for h, first in ((1, date(y, 7, 15)), (2, date(y + 1, 1, 15))):
            d = cal.days(first)
            if max(S, E - 730) <= d <= E:
                rating_days.append((y, h, d))
    fraud_i = int(np.argmin([abs(d - (E - 230)) for _, _, d in rating_days]))
    rating_days = rating_days[: fraud_i + 1]  # the qualification is revoked afterwards
    k = len(rating_days)
    b2 = _TAG["B2"]
    ratings = dict(
        agency=np.full(k, b2),
        year=np.array([r[0] for r in rating_days]),
        half=np.array([r[1] for r in rating_days]),
        day=np.array([r[2] for r in rating_days]),
        score=np.array(([86, 84, 88, 82, 87] * 2)[: k - 1] + [55]),
        fraud=np.arange(k) == k - 1,
        revoked=np.arange(k) == k - 1,
        minor=np.zeros(k, bool),
        cert_first=np.full(k, cal.days(date(2011, 3, 1))),
        v1=np.full(k, vocab.AGENCY_FRAUD_VIOLATIONS.index("出具虚假报告")),
        v2=np.zeros(k, dtype=np.int64),
        two=np.zeros(k, bool),
    )
    fd = rating_days[-1][2] + 20
    pen(
        "B2",
        dept=YJJ,
        code=AGENCY_FRAUD,
        tpl=vocab.T_FRAUD_UNIT,
        day=fd,
        fine=20 * W,
        wfff=8 * W,
        cflb=vocab.CFLB_INDEX["没收违法所得;罚款;吊销许可证件"],
        qj=2,
    )
    pen(
        "B2",
        role=2,
        dept=YJJ,
        code=AGENCY_FRAUD,
        tpl=vocab.T_FRAUD_PERSON,
        day=fd,
        fine=8 * W,
        cflb=vocab.CFLB_INDEX["罚款;限制从业"],
        qj=1,
        yxq=int(text.add_years(np.array([wd(fd)]), 5)[0]),
    )
    first = pen(
        "B3",
        dept=JTJ,
        code=OTHER,
        tpl=_template(OTHER, JTJ, "动态监控"),
        day=E - 420,
        fine=0.8 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=0,
        zxzt=2,
    )
    pen(
        "B3",
        dept=JTJ,
        code=REFUSED,
        tpl=vocab.T_REFUSED,
        day=E - 300,
        fine=8 * W,
        cflb=vocab.CFLB_INDEX["罚款;责令停产停业"],
        qj=1,
        ref=first,
    )
    pen(
        "B4",
        dept=SCJ,
        code=OTHER,
        tpl=_template(OTHER, SCJ, "未经定期检验"),
        day=E - 150,
        fine=30 * W,
        cflb=vocab.CFLB_INDEX["罚款"],
        qj=2,
    )
    rep = pen(
        "REPAIRED",
        dept=YJJ,
        code=UNLICENSED,
        tpl=_template(UNLICENSED, YJJ, "危险化学品经营许可证"),
        day=E - 560,
        fine=15 * W,
        wfff=3 * W,
        cflb=vocab.CFLB_INDEX["没收违法所得;罚款"],
        qj=1,
    )
    obj = pen(
        "OBJECTION",
        dept=ZJJ,
        code=UNLICENSED,
        tpl=_template(UNLICENSED, ZJJ, "建筑施工"),
        day=E - 120,
        fine=12 * W,
        wfff=2 * W,
        cflb=vocab.CFLB_INDEX["没收违法所得;罚款;责令停产停业"],
        qj=1,
    )
    pen(
        "CLEAN",
        dept=YJJ,
        code=OTHER,
        tpl=_template(OTHER, YJJ, "疏散通道"),
        day=E - 100,
        cflb=vocab.CFLB_INDEX["警告"],
        qj=0,
    )
    frames = []
    for r in rows:
        f = ev.penalty_frame(1, **{k: v for k, v in r.items() if k != "tag"})
        f["tag"] = np.array([r["tag"]])
        f["order"] = np.array([len(frames)])
        frames.append(f)
    p = ev.cat_frames(*frames)
    p["zxzt"] = np.where(p["zxzt"] == 2, 2, np.where(p["day"] <= E - 60, 1, 0))
    p = ev.with_cflb_effects(rng, p)
    p = ev.finish_penalties(ctx, p)
    row_of = {int(o): i for i, o in enumerate(p["order"])}
    # credit actions
    act_rows = [
        (row_of[rep], 0, wd(int(p["day"][row_of[rep]]) + 420)),
        (row_of[obj], 2, wd(int(p["day"][row_of[obj]]) + 10)),
    ]
    act = {
        "pen": np.array([r[0] for r in act_rows]),
        "kind": np.array([r[1] for r in act_rows]),
        "day": np.array([r[2] for r in act_rows]),
    }
    act = ev.select_rows(act, act["day"] <= E)
    out = write_block(ctx, rng, writers, subj, acc, p, ratings, act)
    return _document(subj, acc, p, act, ratings, out)


def _document(subj: Subjects, acc: dict, p: dict, act: dict, ratings: dict, out: dict) -> list[dict]:
    depts = vocab.DEPT_IDS
    iso = lambda d: (date(1970, 1, 1) + timedelta(days=int(d))).isoformat()  # noqa: E731
    s = subj.strings
    docs = []
    for j, g in enumerate(GOLDEN):
        pens = np.flatnonzero(p["tag"] == j)
        accs = np.flatnonzero(acc["unit"] == j)
        acts = np.flatnonzero(p["tag"][act["pen"]] == j) if act["pen"].size else np.array([], int)
        decisions = [
            {
                "record_id": out["penalties"][i].as_py(),
                "dept": depts[p["dept"][i]],
                "cf_wsh": out["cf_wsh"][i].as_py(),
                "decision_date": iso(p["day"][i]),
                "wfdm": vocab.WFDM[p["code"][i]],
                "qj": vocab.QJ[p["qj"][i]],
                "cfdx": "个人" if p["role"][i] >= 0 else "单位",
                "sgbh": out["sg_bh"][p["acc"][i]].as_py() if p["acc"][i] >= 0 else None,
            }
            for i in pens
        ]
        # the triggering decision: the last one of the ground's code, on the unit if any
        code = TRIGGER_CODE[g.ground]
        same = [d for d in decisions if d["wfdm"] == code]
        trigger = ([d for d in same if d["cfdx"] == "单位"] or same)[-1]
        principal = subj.fixed_persons[int(subj.principal_pid[j])]
        doc = {
            "id": g.key,
            # the ground in force at ``end`` (None for the repaired / objection / clean cases,
            # so that every scenario carrying a ground ends listed); the ground its decision
            # triggers, whatever happened next
            "ground": g.ground if EXPECTED_STATUS.get(g.key, "listed") == "listed" else None,
            "listing_ground": g.ground,
            "description": g.description,
            "name": g.name,
            "uscc": s["uscc"][j].as_py(),
            "dept": trigger["dept"],
            "cf_wsh": trigger["cf_wsh"],
            "decision_date": trigger["decision_date"],
            "expected_status": EXPECTED_STATUS.get(g.key, "listed"),
            "listed": LISTED_PERSONS[g.key],
            "principal": {"name": principal[0], "id_number": principal[1]},
            "decisions": decisions,
            "accidents": [
                {
                    "record_id": out["accidents"][i].as_py(),
                    "dept": depts[acc["dept"][i]],
                    "sg_bh": out["sg_bh"][i].as_py(),
                    "date": iso(acc["ts"][i] // DAY),
                    "grade": vocab.GRADES[acc["grade"][i]],
                    "deaths": int(acc["deaths"][i]),
                }
                for i in accs
            ],
            "credit_actions": [
                {
                    "record_id": out["credit_actions"][i].as_py(),
                    "type": vocab.XD_TYPES[act["kind"][i]],
                    "date": iso(act["day"][i]),
                }
                for i in acts
            ],
            "record_ids": {
                "enterprises": [out["enterprises"][j].as_py()],
                "penalties": [d["record_id"] for d in decisions],
                "accidents": [out["accidents"][i].as_py() for i in accs],
                "credit_actions": [out["credit_actions"][i].as_py() for i in acts],
                "intermediary_ratings": [
                    out["intermediary_ratings"][i].as_py() for i in np.flatnonzero(ratings["agency"] == j)
                ],
            },
        }
        if g.staff:
            staff = subj.fixed_persons[4 * int(subj.gidx[j]) + 2]
            doc["staff"] = {"name": staff[0], "id_number": staff[1]}
        docs.append(doc)
    return docs
