"""Rate limits on SIP requests, so one flooding peer cannot starve the others.

:class:`RateLimiter` keeps a token bucket per key (``rate`` tokens a second, up
to ``burst``): each request takes one, and with none left it is refused. The
table of buckets is bounded; idle buckets are forgotten (least recently used
first), which can only ever forgive a key, never block an innocent one. The
user agent keys one by digest user name (``limits.per_user``).

:class:`FloodGuard` screens every request from an untrusted source before the
transaction layer sees it, the way Kamailio's pike module does, so a flood
costs no transaction state and no retransmissions:

- each source address has a bucket (``limits.per_source``); a request over it
  is *refused*: the endpoint answers one stateless 503 with Retry-After;
- a source refused more than ``block_after`` times in a row is *blocked* for
  ``block_seconds``: its requests are dropped without an answer. While blocked
  it still draws on its bucket, and each request it sends with the bucket
  empty restarts the block, so a source that keeps flooding stays blocked
  and one that calms down is let back in ``block_seconds`` later;
- new INVITEs (no To tag) that pass their source's bucket also draw on one
  global bucket (``limits.global_invites``), refused the same way when empty.

Everything is pure: the caller passes the time and acts on the verdict.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal


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


Action = Literal["pass", "refuse", "drop"]


@dataclass(frozen=True)
class Verdict:
    """What to do with a request: pass it on, refuse it (one stateless 503 with
    Retry-After), or drop it unanswered. ``reason`` names the limit for counts."""

    action: Action
    reason: str = ""  # source, global, blocking (this request blocked its source), blocked
    retry_after: int = 0


PASS = Verdict("pass")


@dataclass
class _Source:
    tokens: float
    updated: float
    strikes: int = 0  # requests refused in a row
    blocked_until: float = 0.0


class FloodGuard:
    def __init__(
        self,
        *,
        source_rate: float = 20.0,
        source_burst: float = 60.0,
        global_rate: float = 200.0,
        global_burst: float = 400.0,
        block_after: int = 20,
        block_seconds: float = 60.0,
        max_sources: int = 10_000,
    ) -> None:
        """A rate of 0 turns that limit off."""
        if source_rate < 0 or global_rate < 0 or source_burst < 1 or global_burst < 1:
            raise ValueError("rates must be 0 (off) or positive, bursts at least 1")
        if block_after < 0 or block_seconds < 0 or max_sources < 1:
            raise ValueError("block_after and block_seconds must be 0 or more, max_sources 1+")
        self.source_rate, self.source_burst = source_rate, source_burst
        self.global_rate, self.global_burst = global_rate, global_burst
        self.block_after, self.block_seconds = block_after, block_seconds
        self.max_sources = max_sources
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._global = _Bucket(global_burst, 0.0)
        self._global_started = False

    def check(self, source: str, now: float, *, new_invite: bool) -> Verdict:
        """The verdict on one request from ``source`` at ``now``."""
        if self.source_rate > 0:
            verdict = self._check_source(source, now)
            if verdict is not PASS:
                return verdict
        if new_invite and self.global_rate > 0 and not self._take_global(now):
            return Verdict("refuse", "global", max(1, round(1.0 / self.global_rate)))
        return PASS

    def blocked(self, now: float) -> int:
        """How many sources are blocked at ``now``."""
        return sum(1 for state in self._sources.values() if state.blocked_until > now)

    def __len__(self) -> int:
        return len(self._sources)

    def _check_source(self, source: str, now: float) -> Verdict:
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _Source(self.source_burst, now)
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)  # forgets (forgives) the least recent
        else:
            self._sources.move_to_end(source)
            elapsed = max(0.0, now - state.updated)
            state.tokens = min(self.source_burst, state.tokens + elapsed * self.source_rate)
            state.updated = now
        if state.blocked_until > now:
            if state.tokens >= 1.0:
                state.tokens -= 1.0  # calm enough: the block runs out
            else:
                state.blocked_until = now + self.block_seconds  # still flooding
            return Verdict("drop", "blocked")
        if state.tokens >= 1.0:
            state.tokens -= 1.0
            state.strikes = 0
            return PASS
        state.strikes += 1
        if state.strikes > self.block_after and self.block_seconds > 0:
            state.blocked_until = now + self.block_seconds
            return Verdict("drop", "blocking")
        return Verdict("refuse", "source", max(1, round(1.0 / self.source_rate)))

    def _take_global(self, now: float) -> bool:
        bucket = self._global
        if not self._global_started:
            self._global_started, bucket.updated = True, now
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.global_burst, bucket.tokens + elapsed * self.global_rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False
