"""Per-tenant request rate limits: a token bucket per tenant, refilled continuously.

Per process: with several server processes each enforces the limit on its own share of
traffic (documented; a shared limiter is a follow-up).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, updated_at)
        self._lock = threading.Lock()

    def _refilled(self, key: str, capacity: float, rate: float) -> tuple[float, float]:
        """The bucket's tokens now, and now; call with the lock held."""
        now = self._clock()
        tokens, updated = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + (now - updated) * rate), now

    def wait(self, key: str, per_minute: int) -> float:
        """The seconds until ``key`` has a token again, without taking one (0 when it has)."""
        capacity = float(max(per_minute, 1))
        rate = capacity / 60.0
        with self._lock:
            tokens, _ = self._refilled(key, capacity, rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def acquire(self, tenant: str, per_minute: int) -> float:
        """Take one request's token; returns 0 when allowed, else the seconds to wait."""
        capacity = float(max(per_minute, 1))
        rate = capacity / 60.0
        with self._lock:
            tokens, now = self._refilled(tenant, capacity, rate)
            if tokens >= 1.0:
                self._buckets[tenant] = (tokens - 1.0, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return (1.0 - tokens) / rate


def retry_after_header(wait_s: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}
