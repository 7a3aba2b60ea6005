"""Per-key token buckets for the distributor hooks: a steady rate with bursts, in process memory.

Limits hold per app process: with N replicas behind a load balancer a distributor
gets up to N times its rate. Good enough to stop a runaway client; a shared
limiter (PostgreSQL or Redis) is the fix when that matters.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

MAX_KEYS = 100_000  # buckets kept; the longest idle go first (most have refilled by then)


@dataclasses.dataclass
class _Bucket:
    tokens: float
    at: float  # monotonic time of the last refill


class RateLimiter:
    """Token bucket per key: ``burst`` tokens at most, refilled at ``rate_per_s``; one token per request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate_per_s: float, burst: int, now: float | None = None) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available (nothing is taken then)."""
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        t = self._clock() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room()
                bucket = self._buckets[key] = _Bucket(float(burst), t)
            # Refill for the time elapsed; a clock that went backwards refills nothing.
            bucket.tokens = min(float(burst), bucket.tokens + max(0.0, t - bucket.at) * rate_per_s)
            bucket.at = max(bucket.at, t)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate_per_s

    def _make_room(self) -> None:
        """Bound memory under many keys (caller holds the lock): drop the least recently refilled half."""
        if len(self._buckets) < MAX_KEYS:
            return
        by_age = sorted(self._buckets, key=lambda k: self._buckets[k].at)
        for k in by_age[: len(by_age) // 2]:
            del self._buckets[k]
