"""The 20 ms media clock: absolute tick times, start/stop with members, skipping when late."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable

import pytest

from mediaserver.media.clock import MAX_LAG_TICKS, PTIME, MediaClock


class Member:
    """Records when it was ticked; ``work`` runs inside the tick (to be slow, or to fail)."""

    def __init__(self, work: Callable[[int], None] | None = None) -> None:
        self.times: list[float] = []
        self.given: list[float] = []
        self.work = work

    def on_tick(self, now: float) -> None:
        self.times.append(asyncio.get_running_loop().time())
        self.given.append(now)
        if self.work is not None:
            self.work(len(self.times))


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def wait_ticks(member: Member, count: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while len(member.times) < count:
            await asyncio.sleep(PTIME / 2)


async def test_ticks_are_on_absolute_times_and_do_not_drift() -> None:
    loop = asyncio.get_running_loop()
    clock = MediaClock()
    # Each tick costs 5 ms: a clock that waits 20 ms after each tick would end 250 ms late.
    member = Member(lambda _: busy(0.005))
    start = loop.time()
    clock.add(member)
    try:
        await wait_ticks(member, 50)
    finally:
        clock.remove(member)
    times = member.times[:50]
    lateness = [t - (start + (n + 1) * PTIME) for n, t in enumerate(times)]
    assert min(lateness) > -0.002  # never early
    assert statistics.median(lateness) < 0.010
    assert lateness[-1] < 0.030  # tick 50 lands at start + 1 s, not later
    assert (times[-1] - times[0]) / 49 == pytest.approx(PTIME, abs=0.0006)
    # Members get the loop time of the tick.
    assert member.given[:50] == pytest.approx(times, abs=0.0005)
    assert clock.skipped == 0
    assert clock.ticks >= 50


async def test_all_members_share_each_tick() -> None:
    clock = MediaClock()
    first, second = Member(), Member()
    clock.add(first)
    clock.add(second)
    clock.add(first)  # adding twice is harmless
    assert len(clock) == 2
    await wait_ticks(second, 5)
    clock.remove(first)
    clock.remove(second)
    assert first.given[:5] == second.given[:5]
    assert len(clock) == 0


async def test_the_clock_stops_when_empty_and_restarts() -> None:
    clock = MediaClock()
    member = Member()
    clock.add(member)
    await wait_ticks(member, 3)
    clock.remove(member)
    clock.remove(member)  # removing twice is harmless
    await asyncio.sleep(2 * PTIME)  # the pending tick finds nobody and stops the clock
    stopped_at = clock.ticks
    await asyncio.sleep(5 * PTIME)
    assert clock.ticks == stopped_at
    count = len(member.times)

    again = Member()
    loop = asyncio.get_running_loop()
    restart = loop.time()
    clock.add(again)
    await wait_ticks(again, 3)
    clock.remove(again)
    assert len(member.times) == count  # the removed member is not ticked any more
    assert again.times[0] - restart == pytest.approx(PTIME, abs=0.010)
    assert clock.ticks > stopped_at


async def test_stop_cancels_the_next_tick_and_add_restarts_it() -> None:
    clock = MediaClock()
    member = Member()
    clock.add(member)
    await wait_ticks(member, 2)
    clock.stop()
    count = len(member.times)
    await asyncio.sleep(4 * PTIME)
    assert len(member.times) == count
    clock.add(Member())
    await wait_ticks(member, count + 2)
    clock.stop()


async def test_a_slow_member_makes_the_clock_skip_ahead_instead_of_bursting() -> None:
    loop = asyncio.get_running_loop()
    clock = MediaClock()
    stall = 12 * PTIME
    slow_done: list[float] = []

    def stall_once(count: int) -> None:
        if count == 3:
            busy(stall)
            slow_done.append(loop.time())

    member = Member(stall_once)
    clock.add(member)
    try:
        await wait_ticks(member, 12)
    finally:
        clock.remove(member)
    assert clock.skipped >= 10
    after = [t for t in member.times if t >= slow_done[0]]
    # One tick at once (the current one), then the regular pace again: no catch-up burst.
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert min(gaps) > PTIME / 2
    assert clock.ticks + clock.skipped >= 3 + 10


async def test_a_short_delay_is_caught_up_without_skipping() -> None:
    clock = MediaClock()
    member = Member(lambda count: busy((MAX_LAG_TICKS - 2) * PTIME) if count == 2 else None)
    clock.add(member)
    try:
        await wait_ticks(member, 10)
    finally:
        clock.remove(member)
    assert clock.skipped == 0


async def test_a_failing_member_is_dropped_and_the_others_go_on() -> None:
    clock = MediaClock()

    def fail(count: int) -> None:
        if count == 2:
            raise RuntimeError("broken leg")

    broken, healthy = Member(fail), Member()
    clock.add(broken)
    clock.add(healthy)
    await wait_ticks(healthy, 6)
    clock.remove(healthy)
    assert len(broken.times) == 2
    assert clock.errors == 1
    assert len(clock) == 0
