"""``listing_decisions`` of the 应急 department (department-feeds.md §3.6; rules.md §3 "Decisions").

The simulated 市应急管理局 keeps its list in its own system and sends a written 列入 decision for
most of the unit entries its penalties ground: on time (days after the notice period), late (months
after), or never. Its decisions carry their own management period (start = the decision's date), so
they differ from the computed dates on purpose. Once per run (in the first block) it also sends one
decision that disagrees with its penalty (a B4 for an ordinary penalty) and one 撤销列入 annulling an
earlier listing decision. Other departments send none. Deterministic: the block's random stream.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import text, vocab
from .events import DAY, updated_at, year_of
from .text import date_str, int_str, join, take

ON_TIME_P, LATE_P = 0.80, 0.10  # the rest: never decided
#: industry groups (vocab.GROUPS) inside 11号令 Art. 2 as contracts/policy/default/regimes.yaml maps
#: it: the simulated 应急 department lists only these (construction, transport, fishery, utilities,
#: real estate and services are outside it)
AQ11_GROUPS = [
    vocab.GROUP_NAMES.index(g)
    for g in (
        "hazchem",
        "metal",
        "mining",
        "fireworks",
        "explosives",
        "manufacturing",
        "warehouse",
        "trade",
        "hospitality",
        "agency",
    )
]


def _grounds(pen: dict) -> np.ndarray:
    """The ground a unit penalty grounds on its own ('' none): rules.md §3, department-feeds.md §4."""
    code, qj = pen["code"], pen["qj"]
    return np.select(
        [
            code == vocab.UNLICENSED,
            code == vocab.REFUSED,
            code == vocab.AGENCY_FRAUD,
            code == vocab.CONCEALED,
            (code == vocab.OTHER) & (qj == 2),
            (code == vocab.ACC_LIAB) & (qj == 2),
        ],
        ["B1", "B3", "B2", "A4", "B4", "A3"],
        "",
    )


def listing_decisions(
    ctx, rng: np.random.Generator, pen: dict, subj, ptable: pa.Table, pen_wsh: pa.Array, block: int
) -> tuple[pa.Table, np.ndarray]:
    """The 应急 department's decisions on this block's penalties, and their updated_at."""
    dept = vocab.DEFAULT_DEPARTMENTS[vocab.YJJ]
    n = pen["day"].size
    ground = _grounds(pen)
    in_scope = np.isin(subj.group[pen["subj"]], AQ11_GROUPS)
    unit_of_yjj = (pen["dept"] == vocab.YJJ) & (pen["role"] < 0) & in_scope
    u = rng.random(n)
    lag = np.where(u < ON_TIME_P, rng.integers(8, 21, n), rng.integers(40, 241, n))
    listed = unit_of_yjj & (ground != "") & (u < ON_TIME_P + LATE_P)
    agreeing = listed.copy()
    if block == 0:  # one decision that disagrees with its penalty: B4 for an ordinary (一般) penalty
        ordinary = np.flatnonzero(unit_of_yjj & (pen["code"] == vocab.OTHER) & (pen["qj"] == 0))
        if ordinary.size:
            ground[ordinary[0]] = "B4"
            listed[ordinary[0]], lag[ordinary[0]] = True, 10
    day = text.weekday_adjust(pen["day"] + lag, ctx.d_start, ctx.d_end + 3)
    rows = np.flatnonzero(listed & (day <= ctx.d_end))
    number = int_str(block * 100_000 + rows + 1)
    wsh = join(dept["wsh_prefix"].replace("罚", "列"), "〔", int_str(year_of(day[rows])), "〕", number, "号")
    listing = {
        "MD_WSH": wsh,
        "MD_LX": pa.array(["列入"] * rows.size, pa.string()),
        "MD_YWSH": pa.nulls(rows.size, pa.string()),
        "MD_DXLX": pa.array(["单位"] * rows.size, pa.string()),
        "MD_DXDM": take(ptable["CF_XDR_SHXYM"].combine_chunks(), rows),
        "MD_DXMC": take(ptable["CF_XDR_MC"].combine_chunks(), rows),
        "MD_QX": pa.array(ground[rows], pa.string()),
        "MD_CFWSH": take(pen_wsh, rows),
        "MD_JDRQ": date_str(day[rows]),
        "MD_QSRQ": date_str(day[rows]),
        "MD_JZRQ": date_str(text.add_years(day[rows], 3)),
    }
    days = day[rows]
    # one 撤销列入 (the listing annulled: it never stood), a month after the block's first decision
    # that agrees with its penalty
    pick = np.flatnonzero(agreeing[rows])[:1]
    annul_day = days[pick] + 30
    if block == 0 and pick.size and annul_day[0] <= ctx.d_end:
        first = {k: v.slice(int(pick[0]), 1) for k, v in listing.items()}
        annul = {
            **{k: pa.nulls(1, pa.string()) for k in listing},
            "MD_WSH": join(
                dept["wsh_prefix"].replace("罚", "撤列"),
                "〔",
                int_str(year_of(annul_day)),
                "〕",
                int_str(np.array([block * 100_000 + 1])),
                "号",
            ),
            "MD_LX": pa.array(["撤销列入"], pa.string()),
            "MD_YWSH": first["MD_WSH"],
            "MD_DXLX": first["MD_DXLX"],
            "MD_DXDM": first["MD_DXDM"],
            "MD_DXMC": first["MD_DXMC"],
            "MD_JDRQ": date_str(annul_day),
        }
        listing = {k: pa.concat_arrays([listing[k], annul[k]]) for k in listing}
        days = np.concatenate([days, annul_day])
    table = pa.table(
        {
            **listing,
            "MD_JG": pa.array([dept["full_name"]] * days.size, pa.string()),
            "MD_JGDM": pa.array([dept["uscc"]] * days.size, pa.string()),
            "MD_MD": pa.nulls(days.size, pa.string()),  # empty: the department's kind decides (aq11)
        }
    )
    return table, updated_at(rng, days * DAY, ctx)
