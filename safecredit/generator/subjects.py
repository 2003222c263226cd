"""The registry (监管对象库): one block of subjects at a time.

A subject is its global index ``gidx``. Codes derive from keyed bijections of ``gidx`` (unique
without bookkeeping); everything else is drawn from the block's own random stream. Persons are
``pid = 4·gidx + role`` (0 legal representative, 1 principal when a different person,
2–3 staff of an agency), see :mod:`.ids`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from . import ids, text, vocab
from .text import date_str, int_str, join, take, where

USCC_START = 16709  # 2015-10-01: codes issued from then on carry "MA…" organisation codes
KIND_CHAR = "123"  # 91 企业, 92 个体工商户, 93 农民专业合作社
KIND_LB = ["法人及非法人组织", "个体工商户", "法人及非法人组织"]
STATUS = ["存续", "在业", "吊销", "注销", "迁出"]
STATUS_P = [0.60, 0.32, 0.03, 0.04, 0.01]
BZH = ["一级", "二级", "三级", "无"]
BZH_SHARE = (0.01, 0.06, 0.20)
_OLD_ORG_DOMAIN = 90_000_000  # 8-digit codes 10000000–99999999 (government bodies use 00…)
_NEW_ORG_DOMAIN = 31**6  # "MA" + 6 characters of the USCC alphabet
_REG_DOMAIN = 100_000_000

_IND_SHARE = np.array(vocab.IND_SHARE) / np.sum(vocab.IND_SHARE)
_IND_GROUP = np.array(vocab.IND_GROUP)
_GROUP_RISK = np.array([g[0] for g in vocab.GROUPS.values()])
_GROUP_ACC = np.array([g[1] for g in vocab.GROUPS.values()])
_GROUP_DEPT = np.array([g[2] for g in vocab.GROUPS.values()])
_HIGH_RISK_IND = np.array([g != "无" for g in vocab.IND_GWHY])
_G = {name: i for i, name in enumerate(vocab.GROUP_NAMES)}

# name pools
_ZIHAO = text.pool(list(vocab.ZIHAO_CHARS))
_PREFIXES = [vocab.CITY, vocab.CITY_SHORT] + [(vocab.CITY + n) if n.endswith("区") else n for n in vocab.DISTRICT_NAMES]
_SHORT_DISTRICT = vocab.DISTRICT_NAMES
_WORDS = [w for ind in vocab.INDUSTRIES for w in ind[5]]
_WORD_OFF = np.cumsum([0] + [len(ind[5]) for ind in vocab.INDUSTRIES])
_WORD_N = np.array([len(ind[5]) for ind in vocab.INDUSTRIES])
_SHOP_GROUPS = list(vocab.SHOP_WORDS)
_SHOP = [w for g in _SHOP_GROUPS for w in vocab.SHOP_WORDS[g]]
_SHOP_OFF = {g: sum(len(vocab.SHOP_WORDS[h]) for h in _SHOP_GROUPS[:i]) for i, g in enumerate(_SHOP_GROUPS)}
_AGENCY_WORDS = [w for t in vocab.AGENCY_TYPES for w in vocab.AGENCY_WORDS[t]]
_AGENCY_OFF = np.cumsum([0] + [len(vocab.AGENCY_WORDS[t]) for t in vocab.AGENCY_TYPES])


def agency_indices(scale: int) -> np.ndarray:
    """Global indexes of the technical-service agencies: 0.3% of the registry, at least 5,
    spread evenly over it."""
    k = min(scale, max(5, round(0.003 * scale)))
    return (np.arange(k, dtype=np.int64) * scale) // k


@dataclass
class Subjects:
    gidx: np.ndarray
    industry: np.ndarray
    kind: np.ndarray  # 0 → 91, 1 → 92, 2 → 93
    region: np.ndarray
    founded: np.ndarray  # day number
    status: np.ndarray
    employees: np.ndarray
    bzh: np.ndarray
    agency_type: np.ndarray  # index into vocab.AGENCY_TYPES or -1
    principal_pid: np.ndarray
    old_codes: np.ndarray
    strings: dict[str, pa.Array] = field(default_factory=dict)
    #: scenario subjects name their persons explicitly: pid → (name, ID number)
    fixed_persons: dict[int, tuple[str, str]] | None = None

    def persons(self, seed: int, pids: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """Names and ID numbers of persons ``pids``."""
        if self.fixed_persons is None:
            return ids.person_names(seed, pids), ids.person_ids(seed, pids)
        rows = [self.fixed_persons[int(p)] for p in pids]
        return (pa.array([r[0] for r in rows], pa.string()), pa.array([r[1] for r in rows], pa.string()))

    def __len__(self) -> int:
        return self.gidx.size

    @property
    def group(self) -> np.ndarray:
        return _IND_GROUP[self.industry]

    @property
    def high_risk(self) -> np.ndarray:
        return _HIGH_RISK_IND[self.industry]

    @property
    def risk(self) -> np.ndarray:
        return _GROUP_RISK[self.group]

    @property
    def accident_weight(self) -> np.ndarray:
        return _GROUP_ACC[self.group] * np.sqrt(self.employees)

    @property
    def dept(self) -> np.ndarray:
        return _GROUP_DEPT[self.group]

    @property
    def legal_pid(self) -> np.ndarray:
        return 4 * self.gidx

    def table(self) -> pa.Table:
        """The ``enterprises`` columns, in the spec's order (without the envelope)."""
        s = self.strings
        return pa.table(
            {
                "QY_DM": s["uscc"],
                "QY_MC": s["name"],
                "QY_CYM": s["former"],
                "QY_ZCH": s["reg_no"],
                "QY_ZZJGDM": s["org_old"],
                "QY_FDDBR": s["legal_name"],
                "QY_ZYFZR": s["principal_name"],
                "QY_ZYFZR_ZJHM": s["principal_id"],
                "QY_HYDM": take(vocab.IND_CODES, self.industry),
                "QY_GWHY": take(vocab.IND_GWHY, self.industry),
                "QY_XZQH": take(vocab.DISTRICT_CODES, self.region),
                "QY_ZT": take(STATUS, self.status),
                "QY_CLRQ": date_str(self.founded),
                "QY_BZHDJ": take(BZH, self.bzh),
                "QY_CYRS": int_str(self.employees),
            }
        )


def _founding_days(rng: np.random.Generator, n: int, end_day: int) -> np.ndarray:
    end_year = int(np.datetime64(end_day, "D").astype("datetime64[Y]").astype(int)) + 1970
    years = np.arange(1985, end_year + 1)
    w = np.exp(0.12 * (years - 1985))
    y = rng.choice(years, n, p=w / w.sum())
    y0 = (y - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    day = y0 + rng.integers(0, 365, n)
    return np.minimum(day, end_day - 1)


def make_subjects(
    seed: int, gidx: np.ndarray, rng: np.random.Generator, *, end_day: int, agencies: np.ndarray
) -> Subjects:
    """Draw a block of subjects (``agencies``: the global indexes that are service agencies)."""
    n = gidx.size
    is_agency = np.isin(gidx, agencies)
    agency_type = np.where(is_agency, rng.choice(4, n, p=vocab.AGENCY_TYPE_WEIGHTS), -1)
    ind = rng.choice(len(vocab.INDUSTRIES), n, p=_IND_SHARE)
    ind = np.where(
        is_agency, np.array([vocab.AGENCY_INDUSTRY[t] for t in vocab.AGENCY_TYPES])[np.maximum(agency_type, 0)], ind
    )
    group = _IND_GROUP[ind]
    u = rng.random(n)
    p92 = np.array([vocab.INDIVIDUAL_SHARE.get(g, 0.0) for g in vocab.GROUP_NAMES])[group]
    p93 = np.array([vocab.COOP_SHARE.get(g, 0.0) for g in vocab.GROUP_NAMES])[group]
    kind = np.where(u < p92, 1, np.where(u < p92 + p93, 2, 0))
    kind[is_agency] = 0
    region = rng.choice(len(vocab.DISTRICTS), n, p=vocab.DISTRICT_WEIGHTS)
    founded = _founding_days(rng, n, end_day)
    status = rng.choice(len(STATUS), n, p=STATUS_P)
    employees = np.maximum(1, np.round(rng.lognormal(np.log(20), 1.1, n))).astype(np.int64)
    employees = np.where(kind == 1, 1 + rng.poisson(2, n), employees)
    employees = np.where(is_agency, np.round(rng.lognormal(np.log(25), 0.6, n)) + 3, employees)
    # 标准化 level: the largest (with noise) get the higher levels, fixed shares per block
    score = np.log(employees) + rng.normal(0, 1, n) + 0.5 * _HIGH_RISK_IND[ind]
    eligible = (kind != 1) & ~is_agency
    bzh = np.full(n, 3)
    if eligible.any():
        ranks = np.argsort(np.argsort(-np.where(eligible, score, -np.inf), kind="stable"))
        m = eligible.sum()
        cuts = np.cumsum(np.round(np.array(BZH_SHARE) * m)).astype(int)
        bzh = np.where(eligible, np.searchsorted(cuts, ranks, side="right"), 3)
        bzh = np.minimum(bzh, 3)
    same_principal = (kind == 1) | (rng.random(n) < 0.7)
    principal_pid = 4 * gidx + np.where(same_principal, 0, 1)
    old_codes = (founded < USCC_START) & (rng.random(n) < 0.25)
    s = Subjects(gidx, ind, kind, region, founded, status, employees, bzh, agency_type, principal_pid, old_codes)
    s.strings = _strings(seed, s, rng)
    return s


def _zihao(rng: np.random.Generator, n: int) -> pa.Array:
    k = len(vocab.ZIHAO_CHARS)
    c = rng.integers(0, k, (3, n))
    three = rng.random(n) < 0.2
    return join(take(_ZIHAO, c[0]), take(_ZIHAO, c[1]), take(_ZIHAO, c[2], three))


def _strings(seed: int, s: Subjects, rng: np.random.Generator) -> dict[str, pa.Array]:
    n = len(s)
    # --- codes
    new_style = s.founded >= USCC_START
    old_body = ids.digits(
        10_000_000 + ids.permute(s.gidx % _OLD_ORG_DOMAIN, _OLD_ORG_DOMAIN, ids.stream_key(seed, 201)), 8
    )
    new_body = np.concatenate(
        [
            ids.fixed("MA", n),
            ids.base31(ids.permute(s.gidx % _NEW_ORG_DOMAIN, _NEW_ORG_DOMAIN, ids.stream_key(seed, 202)), 6),
        ],
        axis=1,
    )
    org = ids.with_org_check(np.where(new_style[:, None], new_body, old_body))
    region = ids.table_rows(vocab.DISTRICT_CODES)[s.region]
    kind_char = np.frombuffer(KIND_CHAR.encode(), dtype=np.uint8)[s.kind][:, None]
    uscc = ids.with_uscc_check(np.concatenate([ids.fixed("9", n), kind_char, region, org], axis=1))
    reg = ids.with_reg15_check(
        np.concatenate(
            [region, ids.digits(ids.permute(s.gidx % _REG_DOMAIN, _REG_DOMAIN, ids.stream_key(seed, 203)), 8)], axis=1
        )
    )
    # --- names
    group = s.group
    prefix_idx = np.where(rng.random(n) < 0.75, (rng.random(n) < 0.8).astype(int) ^ 1, 2 + s.region)
    prefix = take(_PREFIXES, prefix_idx)
    zihao = _zihao(rng, n)
    word_pick = rng.integers(0, 1 << 30, n)
    word = take(_WORDS, _WORD_OFF[s.industry] + word_pick % _WORD_N[s.industry])
    suffix_idx = rng.choice(3, n, p=vocab.COMPANY_SUFFIX_WEIGHTS)
    suffix = take(vocab.COMPANY_SUFFIXES, suffix_idx)
    name = join(prefix, zihao, word, suffix)
    # agencies: a word of their qualification type
    at = np.maximum(s.agency_type, 0)
    agency_word = take(_AGENCY_WORDS, _AGENCY_OFF[at] + word_pick % np.diff(_AGENCY_OFF)[at])
    name = where(s.agency_type >= 0, join(prefix, zihao, agency_word, suffix), name)
    # 个体工商户: district + 字号 + shop word; 合作社: prefix + 字号 + 专业合作社
    shop_idx = np.zeros(n, dtype=np.int64)
    for g, off in _SHOP_OFF.items():
        m = group == _G[g]
        shop_idx[m] = off + word_pick[m] % len(vocab.SHOP_WORDS[g])
    shop = take(_SHOP, shop_idx)
    name = where(s.kind == 1, join(take(_SHORT_DISTRICT, s.region), zihao, shop), name)
    name = where(s.kind == 2, join(prefix, zihao, word, "专业合作社"), name)
    # --- former names (~8%): another 字号, the other company form, or another prefix
    has_former = (rng.random(n) < 0.08) & (s.kind != 1)
    how = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    other_suffix = take(vocab.COMPANY_SUFFIXES, np.where(suffix_idx == 0, 1, 0))
    base_suffix = where(s.kind == 2, "专业合作社", suffix)
    alt_suffix = where(s.kind == 2, "专业合作社", other_suffix)
    body_word = where(s.agency_type >= 0, agency_word, word)
    former1 = where(
        how == 0,
        join(prefix, _zihao(rng, n), body_word, base_suffix),
        where(
            how == 1,
            join(prefix, zihao, body_word, alt_suffix),
            join(take(_PREFIXES, (prefix_idx + 1) % len(_PREFIXES)), zihao, body_word, base_suffix),
        ),
    )
    second = rng.random(n) < 0.15
    former2 = where(second, join(prefix, _zihao(rng, n), body_word, base_suffix))
    former = where(has_former, join(former1, former2, sep=";"))
    # --- persons
    legal = s.legal_pid
    names = ids.person_names(seed, np.concatenate([legal, s.principal_pid]))
    pids = ids.person_ids(seed, s.principal_pid)
    return {
        "uscc": ids.to_arrow(uscc),
        "org": ids.to_arrow(org),
        "name": name,
        "former": former,
        "reg_no": where(s.old_codes, ids.to_arrow(reg)),
        "org_old": where(s.old_codes, ids.to_arrow(org)),
        "legal_name": names.slice(0, n),
        "legal_id": ids.person_ids(seed, legal),
        "principal_name": names.slice(n, n),
        "principal_id": pids,
    }
