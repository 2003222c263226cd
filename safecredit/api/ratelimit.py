"""Per-key token buckets: `rate` requests per second, bursts up to `burst` (exchange.md §2).

In-process: each server process limits on its own (one process per home is the deployment this
issue builds; several workers would each allow the full rate).
"""

from __future__ import annotations

import math
import threading
import time

#: buckets kept at most (per-address buckets of keyless callers must not grow without bound)
MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill (monotonic), rate, burst]
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int, cost: float = 1.0, need: float | None = None) -> float:
        """Spend `cost` tokens: 0.0 when allowed, else the seconds until the bucket holds enough.

        Admitted when the bucket holds `need` tokens (default min(cost, burst)); the balance may
        then go below zero, so a 1,000-code batch costs what 1,000 single calls cost (exchange.md
        §2) and the calls after it wait until the debt is paid back."""
        need = min(cost, float(burst)) if need is None else need
        now = time.monotonic()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= MAX_BUCKETS:  # many addresses: forget full (idle) buckets first
                    self._prune(now)
                b = self._buckets[key] = [float(burst), now, rate, float(burst)]
            tokens = min(float(burst), b[0] + (now - b[1]) * rate)
            b[1:] = [now, rate, float(burst)]
            if tokens >= need:
                b[0] = tokens - cost
                return 0.0
            b[0] = tokens
            return (need - tokens) / rate if rate > 0 else 60.0

    def _prune(self, now: float) -> None:
        full = [k for k, (t, last, rate, burst) in self._buckets.items() if t + (now - last) * rate >= burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= MAX_BUCKETS:  # still full: drop the oldest half rather than grow
            for k, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: MAX_BUCKETS // 2]:
                del self._buckets[k]


def retry_after_header(wait: float) -> str:
    """Retry-After is whole seconds (RFC 9110): round up, at least 1."""
    return str(max(1, math.ceil(wait)))
