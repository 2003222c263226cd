"""Vectorised identity codes and stateless per-entity randomness.

Entities that are referenced from several places (persons, subjects' codes) get their
attributes from a keyed bijection of their index (a small Feistel network with cycle walking),
so they are unique by construction and can be recomputed for any index set without storing
them. The check characters are computed here with numpy; tests verify every output code with
the scalar reference implementation in :mod:`safecredit.codes`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from safecredit.codes import ID_CHECK_MAP, ID_WEIGHTS, ORG_WEIGHTS, USCC_ALPHABET, USCC_WEIGHTS

from . import vocab

_U64 = np.uint64
_M1, _M2, _GOLD = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB), _U64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, element-wise on a uint64 array (wrapping arithmetic)."""
    x = np.asarray(x, dtype=_U64) + _GOLD
    x = (x ^ (x >> _U64(30))) * _M1
    x = (x ^ (x >> _U64(27))) * _M2
    return x ^ (x >> _U64(31))


def stream_key(seed: int, stream: int) -> np.uint64:
    return mix64(np.array([(seed & 0xFFFFFFFF) << 20 ^ stream], dtype=_U64))[0]


def hash_uniform(key: np.uint64, idx: np.ndarray, salt: int = 0) -> np.ndarray:
    """U[0,1) floats, a pure function of (key, index, salt)."""
    h = mix64(np.asarray(idx, dtype=_U64) ^ mix64(np.array([key + _U64(salt)], dtype=_U64)))
    return (h >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def permute(idx: np.ndarray, domain: int, key: np.uint64) -> np.ndarray:
    """A keyed bijection of [0, domain) (4-round Feistel network with cycle walking)."""
    bits = max(2, int(domain - 1).bit_length())
    bits += bits % 2
    half = bits // 2
    mask = _U64((1 << half) - 1)
    keys = mix64(np.array([key + _U64(r) for r in range(4)], dtype=_U64))

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> _U64(half), x & mask
        for k in keys:
            left, right = right, left ^ (mix64(right ^ k) & mask)
        return (left << _U64(half)) | right

    x = np.asarray(idx, dtype=_U64)
    if x.size and int(x.max()) >= domain:
        raise ValueError("index outside the permutation domain")
    y = feistel(x)
    out_of_range = y >= _U64(domain)
    while out_of_range.any():
        y[out_of_range] = feistel(y[out_of_range])
        out_of_range = y >= _U64(domain)
    return y.astype(np.int64)


# --------------------------------------------------------------------------- char matrices

_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_USCC_CHARS = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
#: value of an ASCII byte in GB 11714 (0-9, A-Z → 0..35) and in the USCC alphabet
_ORG_VAL = np.zeros(256, dtype=np.int64)
_USCC_VAL = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    _ORG_VAL[_c] = _i
for _i, _c in enumerate(USCC_ALPHABET.encode()):
    _USCC_VAL[_c] = _i


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits as an (n, width) uint8 ASCII matrix."""
    v = np.asarray(values, dtype=np.int64)
    out = np.empty((v.size, width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = _DIGITS[v % 10]
        v = v // 10
    return out


def base31(values: np.ndarray, width: int) -> np.ndarray:
    """Digits in the USCC alphabet (base 31) as an (n, width) uint8 ASCII matrix."""
    v = np.asarray(values, dtype=np.int64)
    out = np.empty((v.size, width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = _USCC_CHARS[v % 31]
        v = v // 31
    return out


def fixed(text: str, n: int) -> np.ndarray:
    return np.tile(np.frombuffer(text.encode(), dtype=np.uint8), (n, 1))


def to_arrow(chars: np.ndarray) -> pa.Array:
    """(n, w) ASCII matrix → pyarrow string array."""
    n, w = chars.shape
    flat = np.ascontiguousarray(chars).view(f"S{w}").reshape(n)
    return pa.array(flat, type=pa.binary(w)).cast(pa.string())


def table_rows(strings: list[str]) -> np.ndarray:
    """Equal-length ASCII strings → (k, w) matrix, for indexing by row."""
    return np.array([list(s.encode()) for s in strings], dtype=np.uint8)


# --------------------------------------------------------------------------- check characters


def with_org_check(first8: np.ndarray) -> np.ndarray:
    total = (_ORG_VAL[first8] * np.array(ORG_WEIGHTS)).sum(axis=1)
    c = 11 - total % 11
    check = np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), ord("0") + c % 10))
    return np.concatenate([first8, check.astype(np.uint8)[:, None]], axis=1)


def with_uscc_check(first17: np.ndarray) -> np.ndarray:
    total = (_USCC_VAL[first17] * np.array(USCC_WEIGHTS)).sum(axis=1)
    return np.concatenate([first17, _USCC_CHARS[(31 - total % 31) % 31][:, None]], axis=1)


def with_id_check(first17: np.ndarray) -> np.ndarray:
    total = ((first17.astype(np.int64) - ord("0")) * np.array(ID_WEIGHTS)).sum(axis=1)
    check = np.frombuffer(ID_CHECK_MAP.encode(), dtype=np.uint8)[total % 11]
    return np.concatenate([first17, check[:, None]], axis=1)


def with_reg15_check(first14: np.ndarray) -> np.ndarray:
    p = np.full(first14.shape[0], 10, dtype=np.int64)
    for j in range(14):
        s = (p + first14[:, j].astype(np.int64) - ord("0")) % 10
        s[s == 0] = 10
        p = (2 * s) % 11
    return np.concatenate([first14, _DIGITS[(11 - p) % 10][:, None]], axis=1)


# --------------------------------------------------------------------------- persons

_BIRTH0 = np.datetime64(vocab.PERSON_BIRTH_FIRST, "D")
_N_BIRTH_DAYS = int((np.datetime64(vocab.PERSON_BIRTH_LAST, "D") - _BIRTH0).astype(int)) + 1
_PERSON_REGIONS = table_rows(vocab.PERSON_REGIONS)
PERSON_DOMAIN = len(vocab.PERSON_REGIONS) * _N_BIRTH_DAYS * 1000
_SURNAMES = pa.array(list(vocab.SURNAMES))
_SURNAME_CUM = np.cumsum(vocab.SURNAME_WEIGHTS) / np.sum(vocab.SURNAME_WEIGHTS)
_GIVEN = [pa.array(list(vocab.GIVEN_FEMALE)), pa.array(list(vocab.GIVEN_MALE))]


def _person_parts(seed: int, pids: np.ndarray):
    x = permute(pids, PERSON_DOMAIN, stream_key(seed, 101))
    region = x % len(vocab.PERSON_REGIONS)
    x //= len(vocab.PERSON_REGIONS)
    day, seq = x % _N_BIRTH_DAYS, x // _N_BIRTH_DAYS
    return region, day, seq


def person_ids(seed: int, pids: np.ndarray) -> pa.Array:
    """Unique 18-digit ID numbers (distinct pids → distinct numbers), born 1955–2000."""
    region, day, seq = _person_parts(seed, pids)
    birth = (_BIRTH0 + day.astype("timedelta64[D]")).astype("datetime64[D]")
    years = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    months = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    body = np.concatenate(
        [_PERSON_REGIONS[region], digits(years, 4), digits(months, 2), digits(days, 2), digits(seq, 3)], axis=1
    )
    return to_arrow(with_id_check(body))


def person_names(seed: int, pids: np.ndarray) -> pa.Array:
    """Chinese names; the given name follows the sex encoded in the ID number's sequence."""
    pids = np.asarray(pids, dtype=np.int64)
    _, _, seq = _person_parts(seed, pids)
    male = seq % 2 == 1
    key = stream_key(seed, 102)
    surname = np.searchsorted(_SURNAME_CUM, hash_uniform(key, pids, 0), side="right")
    surname = np.minimum(surname, len(vocab.SURNAMES) - 1)
    two = hash_uniform(key, pids, 1) < 0.8
    parts = [_SURNAMES.take(pa.array(surname))]
    for k in (2, 3):
        u = hash_uniform(key, pids, k)
        f = _GIVEN[0].take(pa.array((u * len(vocab.GIVEN_FEMALE)).astype(np.int64)))
        m = _GIVEN[1].take(pa.array((u * len(vocab.GIVEN_MALE)).astype(np.int64)))
        ch = pc.if_else(pa.array(male), m, f)
        if k == 3:
            ch = pc.if_else(pa.array(two), ch, pa.scalar(None, pa.string()))
        parts.append(ch)
    return pc.binary_join_element_wise(*parts, "", null_handling="skip")
