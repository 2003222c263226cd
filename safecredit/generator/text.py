"""Vectorised string building on pyarrow arrays (dates, money, joins)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL = pa.scalar(None, pa.string())


def pool(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def take(values: pa.Array | Sequence[str], idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """values[idx]; rows where ``mask`` is False (or idx < 0) are null."""
    if not isinstance(values, pa.Array):
        values = pool(values)
    idx = np.asarray(idx, dtype=np.int64)
    valid = idx >= 0 if mask is None else (np.asarray(mask, dtype=bool) & (idx >= 0))
    return values.take(pa.array(np.where(valid, idx, 0), mask=~valid))


def join(*parts, sep: str = "") -> pa.Array:
    """Element-wise concatenation; null parts are skipped."""
    return pc.binary_join_element_wise(*parts, sep, null_handling="skip")


def join_strict(*parts) -> pa.Array:
    """Element-wise concatenation; null if any part is null."""
    return pc.binary_join_element_wise(*parts, "", null_handling="emit_null")


def where(mask: np.ndarray, a, b=NULL) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), a, b)


def int_str(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())
    return arr if mask is None else where(mask, arr)


def date_str(day: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Days since 1970-01-01 → ``YYYY-MM-DD``; null where ``mask`` is False."""
    arr = pa.array(np.asarray(day, dtype=np.int32), type=pa.date32()).cast(pa.string())
    return arr if mask is None else where(mask, arr)


def date_cn(day: np.ndarray) -> pa.Array:
    """Days → ``2024年3月5日``."""
    d = np.asarray(day, dtype="int64").astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return join(int_str(y), "年", int_str(m), "月", int_str(dd), "日")


def month_day(ts: np.ndarray) -> tuple[pa.Array, pa.Array]:
    d = (np.asarray(ts, dtype=np.int64) // 86400).astype("datetime64[D]")
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return int_str(m), int_str(dd)


def datetime_str(ts: np.ndarray) -> pa.Array:
    """Seconds (local time) → ``YYYY-MM-DD HH:MM:SS``."""
    return pa.array(np.asarray(ts, dtype=np.int64), type=pa.timestamp("s")).cast(pa.string())


def rfc3339(ts: np.ndarray) -> pa.Array:
    """Seconds (Asia/Shanghai local time) → ``YYYY-MM-DDTHH:MM:SS+08:00``."""
    return pc.strftime(
        pa.array(np.asarray(ts, dtype=np.int64), type=pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S+08:00"
    )


def money_str(cents: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Integers of 0.01 万元 → canonical decimal strings (``3.5``, ``12``, ``0.25``).
    Negative values mean absent (null)."""
    v = np.asarray(cents, dtype=np.int64)
    valid = v >= 0 if mask is None else (np.asarray(mask, dtype=bool) & (v >= 0))
    v = np.maximum(v, 0)
    q, r = v // 100, v % 100
    whole = int_str(q)
    one = join(whole, ".", int_str(r // 10))
    two = join(whole, ".", pc.utf8_lpad(int_str(r), 2, "0"))
    out = where(r == 0, whole, where(r % 10 == 0, one, two))
    return where(valid, out)


def add_years(day: np.ndarray, years: int | np.ndarray) -> np.ndarray:
    """Calendar years added to day numbers (29 Feb → 28 Feb)."""
    d = np.asarray(day, dtype=np.int64).astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    offset = d - month_start.astype("datetime64[D]")
    target = month_start + np.asarray(years, dtype=np.int64) * 12
    last = (target + 1).astype("datetime64[D]") - 1
    return np.minimum(target.astype("datetime64[D]") + offset, last).astype(np.int64)


def weekday_adjust(day: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Move Saturdays back to Friday and Sundays on to Monday, within [lo, hi]."""
    d = np.asarray(day, dtype=np.int64)
    dow = (d + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    d = d - (dow == 5) + (dow == 6)
    return np.clip(d, lo, hi)
