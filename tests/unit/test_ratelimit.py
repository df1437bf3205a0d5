"""Per-source token buckets (mediaserver.sip.ratelimit)."""

from __future__ import annotations

import pytest

from mediaserver.sip.ratelimit import RateLimiter


def test_burst_then_steady_rate() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    assert [limiter.allow("a", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.allow("a", 0.05) is False  # half a token so far
    assert limiter.allow("a", 0.1) is True  # one token after 0.1 s at 10/s
    assert limiter.refused == 2


def test_sources_are_independent() -> None:
    limiter = RateLimiter(rate=1, burst=2)
    assert limiter.allow("flood", 0) and limiter.allow("flood", 0)
    assert not limiter.allow("flood", 0)
    assert limiter.allow("other", 0)  # a flood from one address does not hurt another


def test_tokens_never_exceed_the_burst() -> None:
    limiter = RateLimiter(rate=100, burst=3)
    limiter.allow("a", 0)
    assert sum(limiter.allow("a", 1000.0) for _ in range(10)) == 3


def test_table_is_bounded_and_forgets_the_least_recent() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_sources=3)
    for source in "abcd":
        limiter.allow(source, 0)
    assert len(limiter) == 3
    assert limiter.allow("a", 0)  # forgotten, so it starts with a full bucket again


def test_clock_going_backwards_adds_nothing() -> None:
    limiter = RateLimiter(rate=10, burst=1)
    assert limiter.allow("a", 5.0)
    assert not limiter.allow("a", 4.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (1, 0)])
def test_bad_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=rate, burst=burst)


def test_retry_after() -> None:
    assert RateLimiter(rate=20).retry_after() == 1
    assert RateLimiter(rate=0.1).retry_after() == 10
