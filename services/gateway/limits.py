"""Per-principal rate limiting: a token bucket of events."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Buckets kept at most; the fullest (idlest) are dropped first beyond it.
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    level: float
    at: float


class RateLimiter:
    """`rate` events per second per principal on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, who: str, events: int) -> int | None:
        """Take `events` from `who`'s bucket: None when granted, else the seconds to wait
        (at least 1) before the same request would be. A request larger than the bucket is
        charged the whole bucket (it is granted when the bucket is full)."""
        now = self.clock()
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            bucket = self._buckets[who] = _Bucket(float(self.burst), now)
        bucket.level = min(float(self.burst), bucket.level + (now - bucket.at) * self.rate)
        bucket.at = now
        cost = float(min(events, self.burst))
        if bucket.level >= cost:
            bucket.level -= cost
            return None
        return max(1, math.ceil((cost - bucket.level) / self.rate))

    def _prune(self, now: float) -> None:
        full = [who for who, b in self._buckets.items()
                if b.level + (now - b.at) * self.rate >= self.burst]
        for who in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[who]
