"""The SIP timer values of RFC 3261 Table 4 and RFC 6026."""

from __future__ import annotations

import pytest

from mediaserver.sip.timers import TimerConfig


def test_defaults_are_the_rfc_values() -> None:
    timers = TimerConfig()
    assert (timers.t1, timers.t2, timers.t4) == (0.5, 4.0, 5.0)


def test_unreliable_transport_values() -> None:
    t = TimerConfig()
    assert t.a(reliable=False) == 0.5
    assert t.b() == 32.0
    assert t.d(reliable=False) == 32.0
    assert t.e(reliable=False) == 0.5
    assert t.f() == 32.0
    assert t.g(reliable=False) == 0.5
    assert t.h() == 32.0
    assert t.i(reliable=False) == 5.0
    assert t.j(reliable=False) == 32.0
    assert t.k(reliable=False) == 5.0
    assert t.l() == 32.0
    assert t.m() == 32.0
    assert t.retransmit_2xx() == 0.5


def test_reliable_transport_values() -> None:
    t = TimerConfig()
    # RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1: no retransmission timers over reliable transports.
    assert t.a(reliable=True) is None
    assert t.e(reliable=True) is None
    assert t.g(reliable=True) is None
    # ...and zero-length waits for retransmissions that cannot happen.
    assert t.d(reliable=True) == 0.0
    assert t.i(reliable=True) == 0.0
    assert t.j(reliable=True) == 0.0
    assert t.k(reliable=True) == 0.0
    # The transaction timeouts do not depend on the transport.
    assert (t.b(), t.f(), t.h(), t.l(), t.m()) == (32.0, 32.0, 32.0, 32.0, 32.0)
    # RFC 3261 13.3.1.4: the 2xx is retransmitted even over a reliable first hop.
    assert t.retransmit_2xx() == 0.5


def test_backoff_doubles_up_to_t2() -> None:
    t = TimerConfig()
    intervals = [0.5]
    for _ in range(6):
        intervals.append(t.backoff(intervals[-1]))
    assert intervals == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_timer_a_doubles_without_cap() -> None:
    t = TimerConfig()
    intervals = [t.a(reliable=False) or 0.0]
    for _ in range(5):
        intervals.append(t.next_a(intervals[-1]))
    assert intervals == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_timers_scale_with_t1_and_t4() -> None:
    t = TimerConfig(t1=0.1, t2=0.4, t4=0.7)
    assert t.b() == pytest.approx(6.4)
    assert t.j(reliable=False) == pytest.approx(6.4)
    assert t.k(reliable=False) == 0.7
    assert t.backoff(0.3) == 0.4
    # Timer D stays at least 32 s (RFC 3261 17.1.1.2) ...
    assert t.d(reliable=False) == 32.0
    # ... and never shorter than the server's retransmission window 64*T1.
    assert TimerConfig(t1=1.0, t2=4.0).d(reliable=False) == 64.0


@pytest.mark.parametrize(
    ("t1", "t2", "t4"), [(0.0, 4.0, 5.0), (-1.0, 4.0, 5.0), (5.0, 4.0, 5.0), (0.5, 4.0, 0.0)]
)
def test_rejects_impossible_values(t1: float, t2: float, t4: float) -> None:
    with pytest.raises(ValueError, match="TimerConfig"):
        TimerConfig(t1=t1, t2=t2, t4=t4)
