"""Per-source rate limiting of new requests, so one flooding peer cannot starve
the others.

Each source address has a token bucket (``rate`` tokens a second, up to
``burst``): a new INVITE (or REGISTER, MESSAGE) takes one; with none left the
request is refused with 503 and Retry-After before any work is done for it.
The table of buckets is bounded; idle buckets are forgotten (least recently
used first), which can only ever forgive a source, never block an innocent one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float = 20.0, burst: float = 60.0, max_sources: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    def allow(self, source: str, now: float) -> bool:
        """Take a token for ``source`` at time ``now``; False when it has none left."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[source] = bucket
            if len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self.refused += 1
        return False

    def retry_after(self) -> int:
        """Seconds after which a refused source has a token again."""
        return max(1, round(1.0 / self.rate))

    def __len__(self) -> int:
        return len(self._buckets)
