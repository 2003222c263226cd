"""Events of one block of subjects: accidents, penalties, agency ratings, credit actions.

Events are first drawn as numeric frames (dicts of numpy arrays, one row per record), then
turned into the department's text columns by the ``*_table`` functions. Scenario records
(:mod:`.scenarios`) are built as the same frames, so they go through the same text builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa

from . import calibration as cal
from . import text, vocab
from .subjects import KIND_LB, Subjects
from .text import date_cn, date_str, int_str, join, money_str, take, where
from .vocab import (
    ABSCONDED,
    ACC_LIAB,
    AGENCY_FRAUD,
    CONCEALED,
    HIDDEN,
    JTJ,
    NO_INS,
    OTHER,
    REFUSED,
    SCJ,
    UNCLASSIFIED,
    UNLICENSED,
    YJJ,
    ZJJ,
)

WAN = cal.WAN
DAY = 86400
_G = {name: i for i, name in enumerate(vocab.GROUP_NAMES)}
LICENSED_GROUPS = [_G[g] for g in ("hazchem", "mining", "fireworks", "explosives", "metal")]


@dataclass
class Context:
    """What the whole run shares: parameters and the numbering counters."""

    seed: int
    start: date
    end: date
    penalties_per_subject: float = 0.4
    sg_seq: dict[int, int] = field(default_factory=dict)
    wsh_seq: dict[int, int] = field(default_factory=dict)

    @property
    def d_start(self) -> int:
        return cal.days(self.start)

    @property
    def d_end(self) -> int:
        return cal.days(self.end)

    @property
    def end_ts(self) -> int:
        return (self.d_end + 1) * DAY - 1


def rng_for(seed: int, stream: int, block: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, block)))


def year_of(day: np.ndarray) -> np.ndarray:
    return np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def number_within(counters: dict, keys: np.ndarray, order_by: np.ndarray) -> np.ndarray:
    """1-based running numbers per key, in ``order_by`` order, continuing ``counters``."""
    n = keys.size
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out
    order = np.lexsort((np.arange(n), order_by, keys))
    sk = keys[order]
    starts = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    run = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    base = np.array([counters.get(int(k), 0) for k in sk[starts]], dtype=np.int64)
    out[order] = np.repeat(base, np.diff(np.r_[starts, n])) + run + 1
    for k, b, cnt in zip(sk[starts], base, np.diff(np.r_[starts, n])):
        counters[int(k)] = int(b + cnt)
    return out


def updated_at(rng: np.random.Generator, base_ts: np.ndarray, ctx: Context) -> np.ndarray:
    """When a record became visible: 0–7 days after its business time, office hours,
    never after the end of ``ctx.end``."""
    base_ts = np.asarray(base_ts, dtype=np.int64)
    n = base_ts.size
    lag = rng.choice(8, n, p=[0.40, 0.25, 0.15, 0.10, 0.04, 0.03, 0.02, 0.01])
    ts = (base_ts // DAY + lag) * DAY + rng.integers(8 * 3600 + 1800, 19 * 3600 + 1800, n)
    ts = np.maximum(ts, base_ts + rng.integers(600, 4 * 3600, n))
    return np.minimum(ts, ctx.end_ts)


def pick_by_date(
    rng: np.random.Generator, cand: np.ndarray, weight: np.ndarray, founded: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """For each day, one candidate founded before it, drawn ∝ weight (-1 if none)."""
    r = rng.random(day.size)
    if cand.size == 0:
        return np.full(day.size, -1, dtype=np.int64)
    order = np.argsort(founded, kind="stable")
    cand, cum, founded = cand[order], np.cumsum(weight[order]), founded[order]
    k = np.searchsorted(founded, day, side="left")
    top = cum[np.maximum(k - 1, 0)]
    ok = (k > 0) & (top > 0)
    pos = np.minimum(np.searchsorted(cum, r * top, side="right"), np.maximum(k - 1, 0))
    return np.where(ok, cand[pos], -1)


def cat_frames(*frames: dict) -> dict:
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


def select_rows(frame: dict, mask: np.ndarray) -> dict:
    return {k: v[mask] for k, v in frame.items()}


def _round_fine(wan: np.ndarray) -> np.ndarray:
    """Fines as decided: 0.1 万 steps below 1 万, 0.5 万 below 10 万, whole 万 above."""
    wan = np.asarray(wan, dtype=float)
    step = np.where(wan < 1, 0.1, np.where(wan < 10, 0.5, 1.0))
    return (np.maximum(np.round(wan / step), 1) * step * WAN).round().astype(np.int64)


# --------------------------------------------------------------------------- accidents


def place_accidents(ctx: Context, rng: np.random.Generator, frame: dict, subj: Subjects) -> dict:
    """Give each accident of a frame a unit (where it has one and a unit of the right kind
    existed by then), a district, a GB 6441 type and the recording department (road: jtj,
    else yjj)."""
    n = frame["category"].size
    day = frame["ts"] // DAY
    cat = frame["category"]
    group = subj.group
    not_agency = subj.agency_type < 0
    unit = np.full(n, -1, dtype=np.int64)
    pools = {
        cal.ROAD: (group == _G["transport"]) & not_agency,
        cal.INDUSTRY_TRADE: (subj.accident_weight > 0) & not_agency,
        cal.OTHER: (group != _G["transport"]) & not_agency,
    }
    for c, pool in pools.items():
        m = (cat == c) & frame["has_unit"]
        cand = np.flatnonzero(pool)
        w = subj.accident_weight[cand] if c == cal.INDUSTRY_TRADE else np.sqrt(subj.employees[cand])
        unit[m] = pick_by_date(rng, cand, w.astype(float), subj.founded[cand], day[m])
    has = unit >= 0
    region = np.where(
        has, subj.region[np.maximum(unit, 0)], rng.choice(len(vocab.DISTRICTS), n, p=vocab.DISTRICT_WEIGHTS)
    )
    setting = np.array([vocab.GROUPS[g][3] for g in vocab.GROUP_NAMES])[group[np.maximum(unit, 0)]]
    setting = np.where(cat == cal.ROAD, "road", np.where(has, setting, np.where(cat == cal.OTHER, "other", "factory")))
    kind = np.zeros(n, dtype=np.int64)
    r = rng.random(n)
    for key, mix in vocab.ACCIDENT_TYPE_MIX.items():
        m = setting == key
        types = [vocab.ACCIDENT_TYPES.index(t) for t in mix]
        cum = np.cumsum(list(mix.values()))
        kind[m] = np.array(types)[np.minimum(np.searchsorted(cum / cum[-1], r[m], side="right"), len(types) - 1)]
    out = dict(
        frame,
        unit=unit,
        region=region.astype(np.int64),
        type=kind,
        dept=np.where(cat == cal.ROAD, JTJ, YJJ).astype(np.int64),
        road=rng.integers(0, len(vocab.ROADS), n),
    )
    out["has_unit"] = has
    return out


def number_accidents(ctx: Context, acc: dict) -> dict:
    day = acc["ts"] // DAY
    acc["closed"] = day + acc["close_days"] <= ctx.d_end
    keys = acc["region"] * 10000 + year_of(day)
    acc["seq"] = number_within(ctx.sg_seq, keys, acc["ts"])
    return acc


def accident_strings(acc: dict, subj: Subjects) -> tuple[pa.Array, pa.Array]:
    """SG_BH and SG_MC."""
    day = acc["ts"] // DAY
    bh = join(
        take(vocab.DISTRICT_CODES, acc["region"]),
        "-",
        int_str(year_of(day)),
        "-",
        text.pc.utf8_lpad(int_str(acc["seq"]), 4, "0"),
    )
    has = acc["unit"] >= 0
    unit_name = take(subj.strings["name"], acc["unit"], has)
    road = acc["category"] == cal.ROAD
    place = where(
        has,
        unit_name,
        where(
            road,
            join(take(vocab.DISTRICT_NAMES, acc["region"]), take(vocab.ROADS, acc["road"])),
            take(vocab.DISTRICT_NAMES, acc["region"]),
        ),
    )
    m, d = text.month_day(acc["ts"])
    grade = where(acc["grade"] >= 1, take(vocab.GRADES, acc["grade"]))
    kind = where(road, "道路交通", take(vocab.ACCIDENT_TYPES, acc["type"]))
    name = join(place, "“", m, "·", d, "”", grade, kind, "事故")
    return bh, name


def accident_table(
    ctx: Context, rng: np.random.Generator, acc: dict, subj: Subjects, bh: pa.Array, name: pa.Array
) -> tuple[pa.Table, np.ndarray]:
    has = acc["unit"] >= 0
    u = np.maximum(acc["unit"], 0)
    closed = acc["closed"]
    day = acc["ts"] // DAY
    liability = np.where(closed, np.where(acc["liable"], 0, 1), 2)
    report = np.where(closed, acc["report"], np.minimum(acc["report"], 1))
    s = subj.strings
    table = pa.table(
        {
            "SG_BH": bh,
            "SG_MC": name,
            "SG_FSSJ": text.datetime_str(acc["ts"]),
            "SG_XZQH": take(vocab.DISTRICT_CODES, acc["region"]),
            "SG_DWMC": take(s["name"], u, has),
            "SG_DWDM": take(s["uscc"], u, has),
            "SG_HYLB": take(vocab.IND_CODES, subj.industry[u], has),
            "SG_LX": take(vocab.ACCIDENT_TYPES, acc["type"]),
            "SG_SWRS": int_str(acc["deaths"]),
            "SG_ZSRS": int_str(acc["injuries"]),
            "SG_JJSS": money_str(acc["loss"]),
            "SG_DJ": take(vocab.GRADES, acc["grade"]),
            "SG_ZR": take(vocab.LIABILITY, liability),
            "SG_BGQK": take(vocab.REPORTING, report),
            "SG_JARQ": date_str(day + acc["close_days"], closed),
            "SG_ZYFZR": take(s["principal_name"], u, has),
            "SG_ZYFZR_ZJHM": take(s["principal_id"], u, has),
            "SG_ZYFZR_TN": where(has, where(closed & acc["absconded"], "是", "否")),
        }
    )
    return table, updated_at(rng, acc["ts"], ctx)


# --------------------------------------------------------------------------- penalties
# A penalty frame: subj (block-local subject), role (-1 the unit, 1 its principal, 2/3 agency
# staff), dept, code, tpl, day, fine / wfff (0.01 万元, -1 absent), cflb, qj, zxzt, acc (row of
# the block's accident frame or -1), yxq (day or -1), ref (row of the referenced penalty or -1)

_CFLB = vocab.CFLB
_HAS = {
    w: np.array([w in c.split(";") for c in _CFLB])
    for w in (
        "警告",
        "罚款",
        "没收违法所得",
        "责令停产停业",
        "暂扣许可证件",
        "吊销许可证件",
        "限制从业",
        "降低资质等级",
    )
}
_ORD_CFLB = [vocab.CFLB_INDEX[c] for c in vocab.ORDINARY_CFLB]
_ORD_CFLB_P = np.array(list(vocab.ORDINARY_CFLB.values())) / sum(vocab.ORDINARY_CFLB.values())
_TPL = vocab.TEMPLATES
_TPL_FINE = np.array([t[6] for t in _TPL], dtype=float)


def _ordinary_templates(code: int, dept: int) -> list[int]:
    c = OTHER if code == UNCLASSIFIED else code
    return [
        i
        for i, t in enumerate(_TPL)
        if t[0] == c
        and dept in t[1]
        and t[8] == ""
        and i not in (vocab.T_PRINCIPAL_DUTY, vocab.T_FRAUD_UNIT, vocab.T_FRAUD_PERSON)
    ]


_ORD_TPL = {(c, d): _ordinary_templates(c, d) for c in vocab.ORDINARY_CODE_MIX for d in range(4)}


def penalty_frame(n: int, **cols) -> dict:
    base = dict(
        subj=-1,
        role=-1,
        dept=YJJ,
        code=OTHER,
        tpl=0,
        day=0,
        fine=-1,
        wfff=-1,
        cflb=0,
        qj=0,
        zxzt=1,
        acc=-1,
        yxq=-1,
        ref=-1,
        grade=-1,
    )
    base.update(cols)
    return {k: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy() for k, v in base.items()}


def _fine_from_template(rng: np.random.Generator, tpl: np.ndarray) -> np.ndarray:
    lo, med, hi = _TPL_FINE[tpl].T
    sigma = np.log(np.maximum(hi, med * 1.01) / med) / 2
    wan = np.clip(med * np.exp(sigma * rng.standard_normal(tpl.size)), lo, hi)
    return _round_fine(wan)


def _execution(rng: np.random.Generator, day: np.ndarray, ctx: Context) -> np.ndarray:
    # old penalties: 2.8% 未执行, 0.6% 拒不执行 (each a B3 listing: at 1.2% they alone put 0.3% of units
    # on the list, against 河北 2025's 0.53% grade D in all), the rest 已执行
    old = day <= ctx.d_end - 60
    r = rng.random(day.size)
    return np.where(old, np.where(r < 0.028, 0, np.where(r < 0.994, 1, 2)), np.where(r < 0.7, 0, 1))


def with_cflb_effects(rng: np.random.Generator, f: dict) -> dict:
    """Fill the amounts and end dates that follow from the 处罚类别."""
    c = f["cflb"]
    n = c.size
    f["fine"] = np.where(_HAS["罚款"][c], f["fine"], -1)
    wfff = _round_fine(np.clip(rng.lognormal(np.log(2), 1.0, n), 0.1, 50))
    f["wfff"] = np.where(_HAS["没收违法所得"][c] & (f["wfff"] < 0), wfff, f["wfff"])
    stop = f["day"] + rng.integers(15, 91, n)
    hold = f["day"] + rng.integers(30, 181, n)
    yxq = np.where(_HAS["责令停产停业"][c], stop, np.where(_HAS["暂扣许可证件"][c], hold, -1))
    f["yxq"] = np.where(f["yxq"] >= 0, f["yxq"], yxq)
    return f


def accident_penalties(ctx: Context, rng: np.random.Generator, acc: dict, subj: Subjects) -> dict:
    """ACCIDENT_LIABILITY on responsible units (and on the principal for 较大 and above),
    ACCIDENT_CONCEALED for verified 瞒报/谎报, PRINCIPAL_ABSCONDED."""
    n = acc["category"].size
    day = acc["ts"] // DAY
    unit = acc["unit"]
    has = unit >= 0
    dept = np.where(has, subj.dept[np.maximum(unit, 0)], YJJ)
    decided = day + np.maximum(90, acc["close_days"] + rng.integers(5, 61, n))
    decided = text.weekday_adjust(decided, ctx.d_start, ctx.d_end + 3)
    ok = has & acc["closed"] & (decided <= ctx.d_end)
    fatal = (acc["deaths"] >= 1) | (acc["grade"] >= 1)
    grade = acc["grade"]
    rows = np.arange(n)
    out = []
    # unit liability: Art. 114 band by grade; 特别严重 (¶2) 2–5×
    m = ok & acc["liable"] & fatal
    lo, hi = np.array([30, 100, 200, 1000]), np.array([100, 200, 1000, 2000])
    qj = np.where(rng.random(n) < 0.03, 2, np.where(rng.random(n) < 0.26, 1, 0))
    frac = rng.random(n)
    wan = lo[grade] + (hi[grade] - lo[grade]) * np.where(qj == 0, 0.5 * frac, 0.5 + 0.5 * frac)
    wan = np.where(qj == 2, (lo[grade] + (hi[grade] - lo[grade]) * frac) * rng.uniform(2, 5, n), wan)
    cflb = np.where(
        (grade >= 1) & (rng.random(n) < 0.3), vocab.CFLB_INDEX["罚款;责令停产停业"], vocab.CFLB_INDEX["罚款"]
    )
    tpl = np.where(qj == 2, vocab.T_LIAB_UNIT_SEVERE, vocab.T_LIAB_UNIT) + grade
    out.append(
        select_rows(
            penalty_frame(
                n,
                subj=unit,
                dept=dept,
                code=ACC_LIAB,
                tpl=tpl,
                day=decided,
                fine=_round_fine(wan),
                cflb=cflb,
                qj=qj,
                acc=rows,
                grade=grade,
            ),
            m,
        )
    )
    # the principal, for 较大 and above: Art. 95, 60/80/100 % of last year's income
    income = rng.uniform(15, 60, n)
    pct = np.array([0.4, 0.6, 0.8, 1.0])[grade]
    life_ban = grade >= 2
    pm = m & (grade >= 1)
    out.append(
        select_rows(
            penalty_frame(
                n,
                subj=unit,
                role=1,
                dept=dept,
                code=ACC_LIAB,
                tpl=vocab.T_LIAB_PERSON + grade,
                day=decided,
                fine=_round_fine(income * pct),
                cflb=np.where(life_ban, vocab.CFLB_INDEX["罚款;限制从业"], vocab.CFLB_INDEX["罚款"]),
                qj=np.where(grade >= 2, 1, 0),
                acc=rows,
                grade=grade,
            ),
            pm,
        )
    )
    # concealment (瞒报/谎报), verified by the investigation
    cm = ok & (acc["report"] >= 3)
    cday = text.weekday_adjust(decided + rng.integers(0, 15, n), ctx.d_start, ctx.d_end)
    out.append(
        select_rows(
            penalty_frame(
                n,
                subj=unit,
                dept=dept,
                code=CONCEALED,
                tpl=vocab.T_CONCEALED_UNIT,
                day=cday,
                fine=_round_fine(np.clip(rng.lognormal(np.log(150), 0.5, n), 100, 500)),
                qj=1,
                acc=rows,
                grade=grade,
            ),
            cm,
        )
    )
    out.append(
        select_rows(
            penalty_frame(
                n,
                subj=unit,
                role=1,
                dept=dept,
                code=CONCEALED,
                tpl=vocab.T_CONCEALED_PERSON,
                day=cday,
                fine=_round_fine(income * rng.uniform(0.6, 1.0, n)),
                qj=1,
                acc=rows,
                grade=grade,
            ),
            cm,
        )
    )
    # the principal left the scene or fled
    am = ok & acc["absconded"]
    out.append(
        select_rows(
            penalty_frame(
                n,
                subj=unit,
                role=1,
                dept=dept,
                code=ABSCONDED,
                tpl=vocab.T_ABSCONDED,
                day=cday,
                fine=_round_fine(income * rng.uniform(0.6, 1.0, n)),
                qj=1,
                acc=rows,
                grade=grade,
            ),
            am,
        )
    )
    f = cat_frames(*out)
    f["zxzt"] = _execution(rng, f["day"], ctx)
    return with_cflb_effects(rng, f)


def ordinary_penalties(ctx: Context, rng: np.random.Generator, subj: Subjects) -> dict:
    """Inspections' penalties: ``penalties_per_subject`` × block size, spread over the window
    and the departments, on units drawn ∝ industry risk × √staff among those existing then."""
    eligible = subj.agency_type < 0
    n = cal._sround(rng, ctx.penalties_per_subject * int(eligible.sum()))
    dept = rng.choice(4, n, p=[0.50, 0.20, 0.15, 0.15])
    day = text.weekday_adjust(rng.integers(ctx.d_start, ctx.d_end + 1, n), ctx.d_start, ctx.d_end)
    group = subj.group
    scj_weight = np.where(
        np.isin(
            group,
            [
                _G[g]
                for g in (
                    "manufacturing",
                    "trade",
                    "hospitality",
                    "realestate",
                    "warehouse",
                    "utility",
                    "hazchem",
                    "metal",
                )
            ],
        ),
        1.0,
        0.3,
    )
    pools = {
        YJJ: ~np.isin(group, [_G["construction"], _G["transport"]]),
        ZJJ: group == _G["construction"],
        JTJ: group == _G["transport"],
        SCJ: np.ones(len(subj), bool),
    }
    weight = subj.risk * np.sqrt(subj.employees)
    who = np.full(n, -1, dtype=np.int64)
    for d, pool in pools.items():
        cand = np.flatnonzero(pool & eligible)
        w = weight[cand] * (scj_weight[cand] if d == SCJ else 1.0)
        m = dept == d
        who[m] = pick_by_date(rng, cand, w, subj.founded[cand], day[m])
    fallback = who < 0
    cand = np.flatnonzero(eligible)
    who[fallback] = pick_by_date(rng, cand, weight[cand], subj.founded[cand], day[fallback])
    dept[fallback] = YJJ
    keep = who >= 0
    who, dept, day = who[keep], dept[keep], day[keep]
    n = who.size
    # violation code: each code's target share, drawn among the penalties whose unit it can
    # apply to (NO_LIABILITY_INSURANCE: high-risk units; UNLICENSED_OPERATION: licensed
    # industries); OTHER takes the rest
    g = group[who]
    can = {NO_INS: subj.high_risk[who] & (dept != SCJ), UNLICENSED: (dept != YJJ) | np.isin(g, LICENSED_GROUPS)}
    u = rng.random(n)
    code = np.full(n, OTHER)
    upper = np.zeros(n)
    for c, share in vocab.ORDINARY_CODE_MIX.items():
        if c == OTHER:
            continue
        ok = can.get(c, np.ones(n, bool))
        p_c = np.where(ok, share / max(ok.mean(), share, 1e-9), 0.0)
        code = np.where((u >= upper) & (u < upper + p_c), c, code)
        upper = upper + p_c
    r = rng.random(n)
    tpl = np.zeros(n, dtype=np.int64)
    for (c, d), choices in _ORD_TPL.items():
        m = (code == c) & (dept == d)
        tpl[m] = np.array(choices)[(r[m] * len(choices)).astype(int)]
    # a few penalties on the principal himself (Art. 94)
    role = np.where((code == OTHER) & np.isin(dept, [YJJ, ZJJ]) & (rng.random(n) < 0.04), 1, -1)
    tpl = np.where(role == 1, vocab.T_PRINCIPAL_DUTY, tpl)
    # 处罚类别: the template's own mix, else the ordinary one
    cflb = np.array(_ORD_CFLB)[rng.choice(len(_ORD_CFLB), n, p=_ORD_CFLB_P)]
    r = rng.random(n)
    for t in np.unique(tpl):
        override = _TPL[t][7]
        if override:
            m = tpl == t
            cum = np.cumsum(list(override.values()))
            idx = np.minimum(np.searchsorted(cum, r[m], side="right"), len(override) - 1)
            cflb[m] = np.array([vocab.CFLB_INDEX[c] for c in override])[idx]
    cflb = np.where(role == 1, vocab.CFLB_INDEX["罚款"], cflb)
    qr = rng.random(n)
    qj = np.where(qr < 0.006, 2, np.where(qr < 0.126, 1, 0))
    qj = np.where(code == HIDDEN, np.maximum(qj, (qr < 0.3).astype(int)), qj)
    f = penalty_frame(
        n,
        subj=who,
        role=role,
        dept=dept,
        code=code,
        tpl=tpl,
        day=day,
        fine=_fine_from_template(rng, tpl),
        cflb=cflb,
        qj=qj,
    )
    f["zxzt"] = _execution(rng, day, ctx)
    f["zxzt"] = np.where(role == 1, np.minimum(f["zxzt"], 1), f["zxzt"])
    return with_cflb_effects(rng, f)


def refused_followups(ctx: Context, rng: np.random.Generator, pen: dict) -> dict:
    """REFUSED_EXECUTION for each unit penalty the party refused to execute (Art. 112)."""
    m = (pen["zxzt"] == 2) & (pen["role"] < 0)
    idx = np.flatnonzero(m)
    n = idx.size
    day = text.weekday_adjust(pen["day"][idx] + rng.integers(30, 151, n), ctx.d_start, ctx.d_end + 3)
    orig = pen["fine"][idx]
    fine = np.where(orig > 0, np.minimum(orig * rng.integers(5, 21, n), 200 * WAN), _round_fine(rng.uniform(2, 10, n)))
    f = penalty_frame(
        n,
        subj=pen["subj"][idx],
        dept=pen["dept"][idx],
        code=REFUSED,
        tpl=vocab.T_REFUSED,
        day=day,
        fine=fine,
        cflb=vocab.CFLB_INDEX["罚款;责令停产停业"],
        qj=1,
        ref=idx,
    )
    f = select_rows(f, day <= ctx.d_end)
    f["zxzt"] = _execution(rng, f["day"], ctx)
    f["zxzt"] = np.minimum(f["zxzt"], 1)
    return with_cflb_effects(rng, f)


def listable(pen: dict) -> np.ndarray:
    """Penalties that carry a listing ground on their own (rules.md §3; A2 needs history)."""
    code, qj = pen["code"], pen["qj"]
    return (
        np.isin(code, vocab.GROUND_CODES)
        | ((code == OTHER) & (qj == 2))
        | ((code == ACC_LIAB) & ((pen["grade"] >= 2) | (qj == 2)))
    )


def publication_end(pen: dict) -> np.ndarray:
    """CF_GSJZQ: 3 years for 严重 penalties (吊销, 限制从业, 责令关闭, ≥ 100 万), none for a bare
    warning, else 1 year (安全生产's minimum); -1 = not published."""
    c = pen["cflb"]
    severe = _HAS["吊销许可证件"][c] | _HAS["限制从业"][c] | (pen["fine"] >= 100 * WAN)
    warning_only = np.array([x == "警告" for x in _CFLB])[c]
    return np.where(warning_only, -1, text.add_years(pen["day"], np.where(severe, 3, 1)))


def finish_penalties(ctx: Context, pen: dict) -> dict:
    """Order by decision date and number the decisions per (department, year)."""
    order = np.lexsort((np.arange(pen["day"].size), pen["day"]))
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    pen = {k: v[order] for k, v in pen.items()}
    pen["ref"] = np.where(pen["ref"] >= 0, remap[np.maximum(pen["ref"], 0)], -1)
    pen["wsh_no"] = number_within(ctx.wsh_seq, pen["dept"] * 10000 + year_of(pen["day"]), pen["day"])
    pen["gsjzq"] = publication_end(pen)
    return pen


def wsh_strings(pen: dict) -> pa.Array:
    prefix = take([d["wsh_prefix"] for d in vocab.DEFAULT_DEPARTMENTS], pen["dept"])
    return join(prefix, "〔", int_str(year_of(pen["day"])), "〕", int_str(pen["wsh_no"]), "号")


def _license_text(rng: np.random.Generator, pen: dict, subj: Subjects) -> pa.Array:
    n = pen["day"].size
    year = int_str(year_of(pen["day"]) - rng.integers(1, 6, n))
    num = int_str(rng.integers(1000, 100000, n))
    dept = pen["dept"]
    at = subj.agency_type[np.maximum(pen["subj"], 0)]
    cert = join(
        take([vocab.AGENCY_CERT_PREFIX[t] for t in vocab.AGENCY_TYPES], np.maximum(at, 0)),
        "-3312-",
        int_str(subj.gidx[pen["subj"]] % 10000),
    )
    generic = where(
        dept == ZJJ,
        join("建筑施工企业安全生产许可证（（江）JZ安许证字〔", year, "〕", num, "）"),
        where(
            dept == JTJ,
            join("道路运输经营许可证（江交运管许可江字", num, "号）"),
            where(
                dept == SCJ,
                join("特种设备生产许可证（TS33", num, "）"),
                join("安全生产许可证（（江）WH安许证字〔", year, "〕", num, "）"),
            ),
        ),
    )
    named = where(at >= 0, join("安全生产技术服务机构资质证书（", cert, "）"), generic)
    c = pen["cflb"]
    return where(_HAS["暂扣许可证件"][c] | _HAS["吊销许可证件"][c], named)


def penalty_table(
    ctx: Context,
    rng: np.random.Generator,
    pen: dict,
    subj: Subjects,
    acc_bh: pa.Array | None,
    acc_name: pa.Array | None,
) -> tuple[pa.Table, np.ndarray]:
    n = pen["day"].size
    s = subj.strings
    u = pen["subj"]
    person = pen["role"] >= 0
    unit = ~person
    rows = np.flatnonzero(person)
    pid = np.where(pen["role"] == 1, subj.principal_pid[u], 4 * subj.gidx[u] + pen["role"])[rows]
    names, numbers = subj.persons(ctx.seed, pid)
    pos = np.full(n, -1)
    pos[rows] = np.arange(rows.size)
    p_name, p_id = take(names, pos), take(numbers, pos)
    name = where(person, p_name, take(s["name"], u))
    kind = subj.kind[u]
    lb = where(person, "自然人", take(KIND_LB, kind))
    wsh = wsh_strings(pen)
    tpl = pen["tpl"]
    c = pen["cflb"]
    # 违法事实
    has_acc = pen["acc"] >= 0
    if acc_bh is not None and has_acc.any():
        acc_desc = take(acc_name, pen["acc"], has_acc)
    else:
        acc_desc = pa.nulls(n, pa.string())
    ref = pen["ref"] >= 0
    desc = where(has_acc, acc_desc, where(ref, take(wsh, pen["ref"], ref)))
    fact = [t[3].split("{}") for t in _TPL]
    pre = take([f[0] for f in fact], tpl)
    post = take([f[1] if len(f) > 1 else "" for f in fact], tpl)
    role_word = take(["主要负责人", "主要负责人", "项目负责人", "技术负责人"], np.maximum(pen["role"], 0))
    who = where(person, join(p_name, "（", take(s["name"], u), role_word, "）"), take(s["name"], u))
    inspected = date_cn(pen["day"] - rng.integers(10, 61, n))
    lead = where(has_acc, "经调查，", where(ref, "经查，", join("经查，", inspected, "，执法人员检查发现，")))
    sy = join(lead, who, pre, desc, post, "。上述行为违反了", take([t[4] for t in _TPL], tpl), "的规定。")
    # 处罚内容
    fine = money_str(pen["fine"])
    wfff = money_str(pen["wfff"])
    yxq_ok = pen["yxq"] >= 0
    yxq_cn = where(yxq_ok, date_cn(np.maximum(pen["yxq"], 0)))
    zkdx = _license_text(rng, pen, subj)
    agency_staff = pen["role"] >= 2
    ban = where(
        yxq_ok, join(yxq_cn, "前不得担任任何生产经营单位的主要负责人"), "终身不得担任本行业生产经营单位的主要负责人"
    )
    ban = where(
        agency_staff,
        where(
            yxq_ok,
            join(yxq_cn, "前不得从事安全评价、认证、检测、检验工作"),
            "终身不得从事安全评价、认证、检测、检验工作",
        ),
        ban,
    )
    nr = join(
        where(_HAS["警告"][c], "给予警告"),
        where(_HAS["没收违法所得"][c], join("没收违法所得人民币", wfff, "万元")),
        where(_HAS["罚款"][c], join("处罚款人民币", fine, "万元")),
        where(_HAS["责令停产停业"][c], join("责令停产停业整顿至", yxq_cn)),
        where(_HAS["暂扣许可证件"][c], join("暂扣", zkdx, "至", yxq_cn)),
        where(_HAS["吊销许可证件"][c], join("吊销", zkdx)),
        where(_HAS["降低资质等级"][c], "降低资质等级"),
        where(_HAS["限制从业"][c], ban),
        sep="，",
    )
    depts = vocab.DEFAULT_DEPARTMENTS
    jg = take([d["full_name"] for d in depts], pen["dept"])
    jgdm = take([d["uscc"] for d in depts], pen["dept"])
    yxq = np.where(_HAS["限制从业"][c] | _HAS["责令停产停业"][c] | _HAS["暂扣许可证件"][c], pen["yxq"], -1)
    table = pa.table(
        {
            "CF_XDR_MC": name,
            "CF_XDR_LB": lb,
            "CF_XDR_SHXYM": where(unit, take(s["uscc"], u)),
            "CF_XDR_GSZC": where(unit, take(s["reg_no"], u)),
            "CF_XDR_ZZJG": where(unit, take(s["org_old"], u)),
            "CF_FRDB": where(unit, take(s["legal_name"], u)),
            "CF_FR_ZJLX": where(unit, "身份证"),
            "CF_FR_ZJHM": where(unit, take(s["legal_id"], u)),
            "CF_XDR_ZJLX": where(person, "身份证"),
            "CF_XDR_ZJHM": where(person, p_id),
            "CF_WSH": wsh,
            "CF_WFXW": take([t[2] for t in _TPL], tpl),
            "CF_SY": sy,
            "CF_YJ": take([t[5] for t in _TPL], tpl),
            "CF_CFLB": take(_CFLB, c),
            "CF_NR": nr,
            "CF_NR_FK": fine,
            "CF_NR_WFFF": wfff,
            "CF_NR_ZKDX": zkdx,
            "CF_JDRQ": date_str(pen["day"]),
            "CF_YXQ": date_str(np.maximum(yxq, 0), yxq >= 0),
            "CF_GSJZQ": date_str(np.maximum(pen["gsjzq"], 0), pen["gsjzq"] >= 0),
            "CF_CFJG": jg,
            "CF_CFJGDM": jgdm,
            "CF_SJLY": jg,
            "CF_SJLYDM": jgdm,
            "AQ_WFDM": take(vocab.WFDM, pen["code"], pen["code"] != UNCLASSIFIED),
            "AQ_SGBH": take(acc_bh, pen["acc"], has_acc) if acc_bh is not None else pa.nulls(n, pa.string()),
            "AQ_QJ": take(vocab.QJ, pen["qj"]),
            "AQ_ZXZT": take(vocab.ZXZT, pen["zxzt"]),
            "AQ_ZYFZR": take(s["principal_name"], u),
            "AQ_ZYFZR_ZJHM": take(s["principal_id"], u),
            "AQ_CFDX": where(person, "个人", "单位"),
        }
    )
    return table, updated_at(rng, pen["day"] * DAY, ctx)


# --------------------------------------------------------------------------- agencies

FRAUD_P = 0.012
REVOKE_P = 0.4


def agency_ratings(ctx: Context, rng: np.random.Generator, subj: Subjects) -> tuple[dict, dict]:
    """Half-yearly ratings of the block's agencies, and AGENCY_FRAUD penalties (on the agency
    and one or two of its staff) for ratings that found 租借资质 / 挂靠 / 虚假报告."""
    agencies = np.flatnonzero(subj.agency_type >= 0)
    periods = []
    for y in range(ctx.start.year - 1, ctx.end.year + 1):
        periods.append((y, 1, cal.days(date(y, 7, 1))))
        periods.append((y, 2, cal.days(date(y + 1, 1, 1))))
    a, p = len(agencies), len(periods)
    p_start = np.array([cal.days(date(y, 1 if h == 1 else 7, 1)) for y, h, _ in periods])
    p_rate = np.array([d for _, _, d in periods])
    quality = rng.normal(86, 6, a)
    cert_first = subj.founded[agencies] + rng.integers(60, 400, a)
    rate_day = p_rate[None, :] + rng.integers(5, 31, (a, p))
    score = np.clip(np.round(quality[:, None] + rng.normal(0, 4, (a, p))), 50, 100)
    fraud = rng.random((a, p)) < FRAUD_P
    revoked = fraud & (rng.random((a, p)) < REVOKE_P)
    after_revoke = (np.cumsum(revoked, axis=1) - revoked) > 0
    valid = (
        (rate_day >= ctx.d_start) & (rate_day <= ctx.d_end) & (cert_first[:, None] <= p_start[None, :]) & ~after_revoke
    )
    score = np.where(fraud, rng.integers(50, 69, (a, p)), score)
    minor = ~fraud & (score < 78) & (rng.random((a, p)) < 0.6)
    ai, pi = np.nonzero(valid)
    order = np.lexsort((ai, rate_day[ai, pi]))
    ai, pi = ai[order], pi[order]
    n = ai.size
    years = np.array([y for y, _, _ in periods])[pi]
    half = np.array([h for _, h, _ in periods])[pi]
    ratings = dict(
        agency=agencies[ai],
        year=years,
        half=half,
        day=rate_day[ai, pi],
        score=score[ai, pi].astype(np.int64),
        fraud=fraud[ai, pi],
        revoked=revoked[ai, pi],
        minor=minor[ai, pi],
        cert_first=cert_first[ai],
        v1=rng.integers(0, 3, n),
        v2=rng.integers(0, 5, n),
        two=rng.random(n) < 0.3,
    )
    # penalties for the fraud findings
    fm = ratings["fraud"]
    k = int(fm.sum())
    day = text.weekday_adjust(ratings["day"][fm] + rng.integers(5, 41, k), ctx.d_start, ctx.d_end + 3)
    who = ratings["agency"][fm]
    unit_cflb = np.where(
        ratings["revoked"][fm],
        vocab.CFLB_INDEX["没收违法所得;罚款;吊销许可证件"],
        vocab.CFLB_INDEX["没收违法所得;罚款"],
    )
    unit_pen = penalty_frame(
        k,
        subj=who,
        code=AGENCY_FRAUD,
        tpl=vocab.T_FRAUD_UNIT,
        day=day,
        fine=_fine_from_template(rng, np.full(k, vocab.T_FRAUD_UNIT)),
        cflb=unit_cflb,
        qj=np.where(ratings["revoked"][fm], 2, 1),
    )
    staff = []
    for role, share in ((2, 1.0), (3, 0.5)):
        sm = rng.random(k) < share
        life = rng.random(k) < 0.2
        staff.append(
            select_rows(
                penalty_frame(
                    k,
                    subj=who,
                    role=role,
                    code=AGENCY_FRAUD,
                    tpl=vocab.T_FRAUD_PERSON,
                    day=day,
                    fine=_fine_from_template(rng, np.full(k, vocab.T_FRAUD_PERSON)),
                    cflb=vocab.CFLB_INDEX["罚款;限制从业"],
                    qj=np.where(life, 2, 1),
                    yxq=np.where(life, -1, text.add_years(day, 5)),
                ),
                sm,
            )
        )
    pen = cat_frames(unit_pen, *staff)
    pen = select_rows(pen, pen["day"] <= ctx.d_end)
    pen["zxzt"] = np.minimum(_execution(rng, pen["day"], ctx), 1)
    return ratings, with_cflb_effects(rng, pen)


def ratings_table(ctx: Context, rng: np.random.Generator, r: dict, subj: Subjects) -> tuple[pa.Table, np.ndarray]:
    s = subj.strings
    a = r["agency"]
    at = subj.agency_type[a]
    score = r["score"]
    grade = np.where(r["fraud"], 3, np.where(score >= 85, 0, np.where(score >= 70, 1, 2)))
    five_years = 1826
    expires_k = np.maximum(1, -(-(r["day"] - r["cert_first"]) // five_years))
    expires = text.add_years(r["cert_first"], 5 * expires_k)
    fraud_v = take(vocab.AGENCY_FRAUD_VIOLATIONS, r["v1"])
    minor_v = take(vocab.AGENCY_VIOLATIONS, r["v2"])
    wgqx = where(r["fraud"], join(fraud_v, where(r["two"], minor_v), sep=";"), where(r["minor"], minor_v))
    cert = join(
        take([vocab.AGENCY_CERT_PREFIX[t] for t in vocab.AGENCY_TYPES], at),
        "-3312-",
        text.pc.utf8_lpad(int_str(subj.gidx[a] % 10000), 4, "0"),
    )
    table = pa.table(
        {
            "JG_MC": take(s["name"], a),
            "JG_DM": take(s["uscc"], a),
            "JG_ZZLX": take(vocab.AGENCY_TYPES, at),
            "JG_ZSBH": cert,
            "JG_ZZYXQ": date_str(expires),
            "PJ_ZQ": join(int_str(r["year"]), "H", int_str(r["half"])),
            "PJ_DF": int_str(score),
            "PJ_DJ": take(["蓝", "黄", "橙", "红"], grade),
            "PJ_WGQX": wgqx,
            "PJ_JG": pa.array([vocab.DEFAULT_DEPARTMENTS[YJJ]["full_name"]] * len(a), pa.string()),
            "PJ_RQ": date_str(r["day"]),
        }
    )
    return table, updated_at(rng, r["day"] * DAY, ctx)


# --------------------------------------------------------------------------- credit actions

REPAIR_P, OBJECTION_P, REVOKE_REPAIR_P, PUBLICITY_REPAIR_P = 0.20, 0.02, 0.05, 0.15


def credit_actions(ctx: Context, rng: np.random.Generator, pen: dict) -> dict:
    """信用修复 13–20 months after a listable decision, rarely 异议成立 within days, rarely
    撤销修复 after a repair; 公示修复 for some 3-year publications after the first year."""
    n = pen["day"].size
    day = pen["day"]
    lst = listable(pen)
    u = rng.random(n)
    objection = lst & (u < OBJECTION_P)
    repair = lst & (u >= OBJECTION_P) & (u < OBJECTION_P + REPAIR_P)
    obj_day = text.weekday_adjust(day + rng.integers(3, 21, n), ctx.d_start, ctx.d_end + 3)
    rep_day = text.weekday_adjust(day + rng.integers(396, 611, n), ctx.d_start, ctx.d_end + 3)
    rev_day = text.weekday_adjust(rep_day + rng.integers(30, 181, n), ctx.d_start, ctx.d_end + 3)
    revoke = repair & (rng.random(n) < REVOKE_REPAIR_P)
    three_years = pen["gsjzq"] >= text.add_years(day, 3)
    pub = ~lst & three_years & (pen["zxzt"] == 1) & (pen["role"] < 0) & (rng.random(n) < PUBLICITY_REPAIR_P)
    pub_day = text.weekday_adjust(day + rng.integers(366, 901, n), ctx.d_start, ctx.d_end + 3)
    pub &= pub_day < pen["gsjzq"]
    parts = []
    for kind, mask, when in ((0, repair, rep_day), (1, revoke, rev_day), (2, objection, obj_day), (3, pub, pub_day)):
        m = mask & (when <= ctx.d_end)
        if kind == 1:
            m &= rep_day <= ctx.d_end
        idx = np.flatnonzero(m)
        parts.append(dict(pen=idx, kind=np.full(idx.size, kind), day=when[idx]))
    f = cat_frames(*parts)
    order = np.lexsort((f["kind"], f["pen"], f["day"]))
    return {k: v[order] for k, v in f.items()}


def credit_table(
    ctx: Context, rng: np.random.Generator, act: dict, pen: dict, pen_wsh: pa.Array, pen_code: pa.Array
) -> tuple[pa.Table, np.ndarray]:
    p = act["pen"]
    person = pen["role"][p] >= 0
    depts = vocab.DEFAULT_DEPARTMENTS
    dept = pen["dept"][p]
    table = pa.table(
        {
            "XD_LX": take(vocab.XD_TYPES, act["kind"]),
            "XD_DXLX": where(person, "个人", "单位"),
            "XD_DXDM": take(pen_code, p),
            "XD_WSH": take(pen_wsh, p),
            "XD_RQ": date_str(act["day"]),
            "XD_JG": take([d["full_name"] for d in depts], dept),
            "XD_JGDM": take([d["uscc"] for d in depts], dept),
            "XD_SM": take(vocab.XD_TEXT, act["kind"]),
        }
    )
    return table, updated_at(rng, act["day"] * DAY, ctx)


def credit_record_dept(pen: dict, act: dict) -> np.ndarray:
    """yjj and zjj send their own credit actions; yjj sends those of the others."""
    d = pen["dept"][act["pen"]]
    return np.where(d == ZJJ, ZJJ, YJJ)
