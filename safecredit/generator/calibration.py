"""Accident calibration: a real city record, scaled to the synthetic registry.

Reference record (one Chinese city of about 5 million residents, 2011–2015):

============  =========  ======
category      accidents  deaths
============  =========  ======
road traffic      4,861   1,148
工矿商贸            107     118
other (fires…)    1,960      27
total             6,928   1,293
============  =========  ======

plus about 4.8 较大 accidents a year, 重大 ones very rare (~0.2 a year) and no 特别重大.

Population is mapped to subjects with :data:`REFERENCE_SUBJECTS` = 50,000 registry enterprises
per 5 million residents (a city that size has roughly that many enterprises under safety
supervision); every rate is multiplied by ``scale / REFERENCE_SUBJECTS``.

How the frame is drawn (``generate_accident_frame``): per category, the number of accidents and
the number of deaths over the window are *allocated* (expected value, stochastically rounded),
not Poisson-drawn, so that any whole-year window at reference scale reproduces the record within
:data:`CALIBRATION_TOLERANCE`; the 较大 and 重大 accidents are Poisson-drawn (their yearly count is
the random part worth testing), their deaths come out of the category's budget, and the rest of
the deaths go to 一般 accidents (0, 1 or 2 each). Times are uniform over the window with an
hour-of-day profile per category. The grade is derived from the numbers (rules.md §2).
"""

from __future__ import annotations

from datetime import date

import numpy as np

REFERENCE_RESIDENTS = 5_000_000
REFERENCE_SUBJECTS = 50_000
REFERENCE_YEARS = (2011, 2015)
CATEGORIES = ("road", "industry_trade", "other")
ROAD, INDUSTRY_TRADE, OTHER = range(3)
REFERENCE_RECORD = {
    "road": {"accidents": 4861, "deaths": 1148},
    "industry_trade": {"accidents": 107, "deaths": 118},
    "other": {"accidents": 1960, "deaths": 27},
    "total": {"accidents": 6928, "deaths": 1293},
    "larger_per_year": 4.8,  # 较大
    "major_per_year": 0.2,  # 重大
    "extraordinary_per_year": 0.0,  # 特别重大
}
#: relative tolerance of per-category accident and death totals over a whole-year window
#: at reference scale (the allocation guarantees |error| < 1 accident / death per category)
CALIBRATION_TOLERANCE = 0.05

_N_REF_YEARS = REFERENCE_YEARS[1] - REFERENCE_YEARS[0] + 1
#: per subject-year rates
ACCIDENT_RATE = np.array([REFERENCE_RECORD[c]["accidents"] for c in CATEGORIES]) / (_N_REF_YEARS * REFERENCE_SUBJECTS)
DEATH_RATE = np.array([REFERENCE_RECORD[c]["deaths"] for c in CATEGORIES]) / (_N_REF_YEARS * REFERENCE_SUBJECTS)
#: 较大 / 重大 per year at reference scale, split over categories (sums: 4.8 and 0.2)
LARGER_PER_YEAR = np.array([3.6, 0.8, 0.4])
MAJOR_PER_YEAR = np.array([0.12, 0.08, 0.0])
#: how a 较大 accident reaches its grade: share by deaths, by serious injuries, by direct loss
LARGER_MODE = np.array([[0.95, 0.05, 0.0], [0.85, 0.15, 0.0], [0.25, 0.0, 0.75]])
#: share of fatal 一般 accidents with two deaths
TWO_DEATH_SHARE = np.array([0.12, 0.08, 0.10])
#: share of accidents with a responsible unit (road: a transport company)
UNIT_SHARE = np.array([0.30, 0.98, 0.10])
#: 责任事故 share among investigated accidents
LIABLE_SHARE = np.array([0.75, 0.90, 0.40])
#: P(deaths) for 较大 accidents by deaths: 3..9
_LARGER_DEATHS = np.array([0.45, 0.20, 0.12, 0.08, 0.06, 0.05, 0.04])
#: hour-of-day profile per category
_HOURS = np.array(
    [
        [1, 1, 1, 1, 1, 2, 3, 6, 7, 5, 4, 4, 4, 4, 4, 5, 6, 7, 7, 5, 4, 3, 2, 1],  # road
        [0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 1, 3, 6, 7, 7, 6, 3, 4, 6, 7, 6, 4, 2, 1, 1, 0.5, 0.5, 0.3],
        [2, 2, 2, 2, 1, 1, 1, 2, 3, 3, 3, 4, 5, 4, 3, 3, 3, 4, 5, 5, 5, 4, 3, 3],  # fires at home
    ],
    dtype=float,
)
_HOURS /= _HOURS.sum(axis=1, keepdims=True)
#: investigation closes 60–120 days after the accident
CLOSE_DAYS = (60, 120)
#: reporting: 正常, 迟报, 漏报, 谎报, 瞒报 (the last two only for accidents with a unit)
REPORT_P = np.array([0.955, 0.035, 0.003, 0.002, 0.005])
ABSCONDED_P = (0.003, 0.05)  # 一般 / 较大 and above

_EPOCH = date(1970, 1, 1)
WAN = 100  # money is held as integers of 0.01 万元 (100 元)


def days(d: date) -> int:
    return (d - _EPOCH).days


def accident_grade(deaths, injuries, loss) -> np.ndarray:
    """Grade by the numbers (国务院令第493号 Art. 3): 0 一般, 1 较大, 2 重大, 3 特别重大.

    ``loss`` is the direct economic loss in 0.01 万元 units. The highest dimension wins;
    以上 includes the bound.
    """
    deaths, injuries, loss = (np.asarray(a, dtype=np.int64) for a in (deaths, injuries, loss))
    by_deaths = np.searchsorted([3, 10, 30], deaths, side="right")
    by_injuries = np.searchsorted([10, 50, 100], injuries, side="right")
    by_loss = np.searchsorted([1000 * WAN, 5000 * WAN, 10000 * WAN], loss, side="right")
    return np.maximum(np.maximum(by_deaths, by_injuries), by_loss).astype(np.int8)


def _sround(rng: np.random.Generator, x: float) -> int:
    """Stochastic rounding: floor(x) + Bernoulli(frac(x)); unbiased, error < 1."""
    base = int(np.floor(x))
    return base + int(rng.random() < x - base)


def generate_accident_frame(rng: np.random.Generator, start: date, end: date, scale: int) -> dict[str, np.ndarray]:
    """Accidents in [start, end) for a registry of ``scale`` subjects, sorted by time.

    Columns: ``category`` (0 road, 1 工矿商贸, 2 other), ``ts`` (seconds since 1970, local
    time), ``deaths``, ``injuries`` (serious), ``loss`` (0.01 万元), ``grade`` (from the numbers),
    ``has_unit``, ``liable`` (责任事故 if investigated), ``report`` (index into
    vocab.REPORTING), ``absconded``, ``close_days``.
    """
    d0, d1 = days(start), days(end)
    n_days = max(d1 - d0, 0)
    years = n_days / 365.2425
    f = scale / REFERENCE_SUBJECTS * years
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("category", "day", "deaths", "injuries", "loss")}
    for c in range(len(CATEGORIES)):
        n_total = _sround(rng, ACCIDENT_RATE[c] * REFERENCE_SUBJECTS * f)
        deaths_target = _sround(rng, DEATH_RATE[c] * REFERENCE_SUBJECTS * f)
        n_major = min(int(rng.poisson(MAJOR_PER_YEAR[c] * scale / REFERENCE_SUBJECTS * years)), n_total)
        n_larger = min(int(rng.poisson(LARGER_PER_YEAR[c] * scale / REFERENCE_SUBJECTS * years)), n_total - n_major)
        n_general = n_total - n_major - n_larger
        # 重大: 10–29 deaths, mostly just over 10
        major_d = np.minimum(10 + rng.geometric(0.35, n_major) - 1, 29)
        major_i = np.minimum(rng.poisson(6, n_major), 49)
        # 较大 by deaths (3–9), by serious injuries (10–49) or by direct loss (1000–5000 万)
        mode = (rng.random(n_larger)[:, None] > np.cumsum(LARGER_MODE[c])[None, :]).sum(axis=1)
        larger_d = np.where(
            mode == 0, 3 + rng.choice(7, n_larger, p=_LARGER_DEATHS), rng.choice(3, n_larger, p=[0.6, 0.3, 0.1])
        )
        larger_i = np.where(
            mode == 1, 10 + np.minimum(rng.geometric(0.15, n_larger) - 1, 39), np.minimum(rng.poisson(2, n_larger), 9)
        )
        big_deaths = int(major_d.sum() + larger_d.sum())
        rest = int(np.clip(deaths_target - big_deaths, 0, 2 * n_general))
        k2 = int(rng.binomial(rest, TWO_DEATH_SHARE[c] / (1 + TWO_DEATH_SHARE[c]))) if rest else 0
        k2 = min(max(k2, rest - n_general), rest // 2)
        k1 = rest - 2 * k2
        general_d = rng.permutation(np.repeat([2, 1, 0], [k2, k1, n_general - k1 - k2]))
        general_i = np.minimum(rng.poisson([0.6, 0.3, 0.1][c], n_general), 9)
        deaths = np.concatenate([general_d, larger_d, major_d]).astype(np.int32)
        injuries = np.concatenate([general_i, larger_i, major_i]).astype(np.int32)
        # direct loss (万元): compensation per death plus property damage
        per_death = rng.uniform(90, 180, n_total)
        damage = rng.lognormal(np.log([3.0, 8.0, 3.0][c]), [1.0, 1.0, 1.6][c], n_total)
        loss = deaths * per_death + damage
        grade_cap = np.concatenate([np.full(n_general, 999.0), np.full(n_larger, 4999.0), np.full(n_major, 9999.0)])
        loss = np.minimum(loss, grade_cap)
        by_loss = np.concatenate([np.zeros(n_general, bool), mode == 2, np.zeros(n_major, bool)])
        loss[by_loss] = rng.uniform(1000, 4999, int(by_loss.sum()))
        cols["category"].append(np.full(n_total, c, dtype=np.int8))
        cols["deaths"].append(deaths)
        cols["injuries"].append(injuries)
        cols["loss"].append(np.round(loss * WAN).astype(np.int64))
        cols["day"].append(d0 + rng.integers(0, max(n_days, 1), n_total))
    frame = {k: np.concatenate(v) for k, v in cols.items()}
    n = frame["category"].size
    cat = frame["category"]
    hour = (rng.random(n)[:, None] > np.cumsum(_HOURS[cat], axis=1)).sum(axis=1)
    ts = frame.pop("day") * 86400 + np.minimum(hour, 23) * 3600 + rng.integers(0, 3600, n)
    grade = accident_grade(frame["deaths"], frame["injuries"], frame["loss"])
    big = grade >= 1
    has_unit = rng.random(n) < np.where(big & (cat == ROAD), 0.6, UNIT_SHARE[cat])
    report = (rng.random(n)[:, None] > np.cumsum(REPORT_P)[None, :]).sum(axis=1).astype(np.int8)
    report = np.where(has_unit, np.minimum(report, 4), np.minimum(report, 1)).astype(np.int8)
    frame.update(
        ts=ts.astype(np.int64),
        grade=grade,
        has_unit=has_unit,
        liable=rng.random(n) < LIABLE_SHARE[cat],
        report=report,
        absconded=has_unit & (rng.random(n) < np.where(big, ABSCONDED_P[1], ABSCONDED_P[0])),
        close_days=rng.integers(CLOSE_DAYS[0], CLOSE_DAYS[1] + 1, n).astype(np.int32),
    )
    order = np.argsort(frame["ts"], kind="stable")
    return {k: v[order] for k, v in frame.items()}


def calibration_sample(
    seed: int = 0, years: tuple[int, int] = REFERENCE_YEARS, scale: int = REFERENCE_SUBJECTS
) -> dict[str, np.ndarray]:
    """The accident frame for whole calendar years ``years`` (inclusive) at ``scale``: what the
    generator draws for one registry block, without scenario accidents."""
    return generate_accident_frame(np.random.default_rng(seed), date(years[0], 1, 1), date(years[1] + 1, 1, 1), scale)
