"""Per-key token buckets: `rate` requests per second, bursts up to `burst` (exchange.md §2).

In-process: each server process limits on its own (one process per home is the deployment this
issue builds; several workers would each allow the full rate).
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}  # key id -> [tokens, last refill (monotonic)]
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = [float(burst), now]
            tokens = min(float(burst), b[0] + (now - b[1]) * rate)
            b[1] = now
            if tokens >= 1.0:
                b[0] = tokens - 1.0
                return 0.0
            b[0] = tokens
            return (1.0 - tokens) / rate if rate > 0 else 60.0


def retry_after_header(wait: float) -> str:
    """Retry-After is whole seconds (RFC 9110): round up, at least 1."""
    return str(max(1, math.ceil(wait)))
