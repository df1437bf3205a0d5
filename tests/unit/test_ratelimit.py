"""Per-source token buckets (mediaserver.sip.ratelimit)."""

from __future__ import annotations

import pytest

from mediaserver.sip.ratelimit import PASS, FloodGuard, RateLimiter, Verdict


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


# -- FloodGuard: per-source buckets, blocking, the global INVITE bucket -------------------


def guard(**settings: float) -> FloodGuard:
    defaults: dict[str, float] = dict(source_rate=10, source_burst=5, global_rate=0,
                                      block_after=3, block_seconds=30)  # fmt: skip
    return FloodGuard(**(defaults | settings))  # type: ignore[arg-type]


def actions(flood: FloodGuard, source: str, now: float, count: int) -> list[str]:
    return [flood.check(source, now, new_invite=True).action for _ in range(count)]


def test_over_the_burst_refuses_then_blocks_and_drops() -> None:
    flood = guard()
    assert actions(flood, "a", 0.0, 5) == ["pass"] * 5
    refused = flood.check("a", 0.0, new_invite=True)
    assert (refused.action, refused.reason, refused.retry_after) == ("refuse", "source", 1)
    assert actions(flood, "a", 0.0, 2) == ["refuse"] * 2
    assert flood.check("a", 0.0, new_invite=True).reason == "blocking"  # the 4th in a row
    assert flood.check("a", 0.0, new_invite=True) == Verdict("drop", "blocked")
    assert flood.blocked(0.0) == 1
    assert actions(flood, "b", 0.0, 5) == ["pass"] * 5  # other sources are not affected


def test_a_source_that_keeps_flooding_stays_blocked() -> None:
    flood = guard()
    actions(flood, "a", 0.0, 10)  # blocked at 0.0 until 30.0
    for step in range(1, 100):  # 10 requests a second more than its rate, for 99 s
        assert actions(flood, "a", float(step), 20)[-1] == "drop"
    assert flood.blocked(99.0) == 1


def test_a_source_that_calms_down_is_let_back_in() -> None:
    flood = guard()
    actions(flood, "a", 0.0, 10)  # blocked until 30.0
    assert flood.check("a", 10.0, new_invite=True).action == "drop"  # within its rate, still
    assert flood.blocked(29.9) == 1 and flood.blocked(30.1) == 0
    assert flood.check("a", 31.0, new_invite=True) is PASS


def test_passing_requests_reset_the_strikes() -> None:
    flood = guard(block_after=2)
    actions(flood, "a", 0.0, 5)
    assert actions(flood, "a", 0.0, 2) == ["refuse"] * 2
    assert flood.check("a", 0.1, new_invite=True) is PASS  # a token after 0.1 s at 10/s
    assert actions(flood, "a", 0.1, 2) == ["refuse"] * 2  # counted afresh: not blocked yet


def test_the_global_bucket_takes_only_new_invites() -> None:
    flood = guard(source_rate=0, global_rate=2, global_burst=3)
    assert actions(flood, "a", 0.0, 2) + actions(flood, "b", 0.0, 2) == ["pass"] * 3 + ["refuse"]
    assert flood.check("c", 0.0, new_invite=True) == Verdict("refuse", "global", 1)
    assert flood.check("c", 0.0, new_invite=False) is PASS  # BYE, OPTIONS... not counted
    assert flood.check("c", 0.5, new_invite=True) is PASS  # one token after 0.5 s at 2/s


def test_the_table_of_sources_is_bounded() -> None:
    flood = guard(max_sources=100)
    for n in range(10_000):
        flood.check(f"10.0.{n // 256}.{n % 256}", 0.0, new_invite=True)
    assert len(flood) == 100


def test_rate_zero_turns_a_limit_off() -> None:
    flood = guard(source_rate=0, global_rate=0)
    assert set(actions(flood, "a", 0.0, 1000)) == {"pass"}


@pytest.mark.parametrize(
    "settings",
    [{"source_rate": -1}, {"global_burst": 0}, {"block_after": -1}, {"max_sources": 0}],
)
def test_bad_guard_settings(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        guard(**settings)
