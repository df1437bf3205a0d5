"""CallMedia.listen_levels (detect@v1's ears): the level of each decoded frame, on the clock."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest
from media_fakes import ManualClock, RtpSource, frames, make_leg, sine

from mediaserver.actions.callapi import CallEnded
from mediaserver.calls.media import CallMedia
from mediaserver.media.leg import RtpLeg


class LevelCall:
    """Just what CallMedia.listen_levels uses of a Call."""

    def __init__(self, leg: RtpLeg) -> None:
        self.leg = leg
        self.services = None
        self.answered = False
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def ended_future(self) -> asyncio.Future[None]:
        return self._ended

    async def _ensure_media(self) -> None:
        self.answered = True

    def check(self) -> None:
        if self._ended.done():
            raise CallEnded("gone")

    async def wait_any(
        self, futures: list[asyncio.Future[Any]], timeout: float | None, **_: Any
    ) -> None:
        await asyncio.wait({self._ended, *futures}, timeout=timeout, return_when="FIRST_COMPLETED")


async def feed(clock: ManualClock, leg: RtpLeg, task: asyncio.Task[None], seconds: float) -> None:
    """The peer sends a 1 kHz tone, one packet per tick, until the task ends."""
    source = RtpSource()
    for index, frame in enumerate(frames(sine(1000, seconds))):
        if task.done():
            return
        source.send(leg, frame)
        clock.step(now=index * 0.02)
        await asyncio.sleep(0)


async def test_levels_are_fed_until_the_listener_is_done() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    call = LevelCall(leg)
    media = CallMedia(call)  # type: ignore[arg-type]
    levels: list[float] = []

    def listener(level: float) -> bool:
        levels.append(level)
        return level > -30

    task = asyncio.create_task(media.listen_levels(5.0, listener))
    await asyncio.sleep(0)
    assert call.answered and leg.decoding  # answered first, then listened to
    await feed(clock, leg, task, 2.0)
    await asyncio.wait_for(task, 1)
    # A 1 kHz tone of 8000 peak is -15 dBFS; the listener stopped at the first loud frame.
    assert levels[-1] == pytest.approx(-15.3, abs=0.5)
    assert all(level == -math.inf for level in levels[:-1])  # the buffer's lead-in, if any
    assert len(levels) < 10
    assert not leg.decoding and clock.members() == []  # nothing left behind


async def test_the_time_limit_ends_the_listening() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    media = CallMedia(LevelCall(leg))  # type: ignore[arg-type]
    levels: list[float] = []
    await asyncio.wait_for(
        media.listen_levels(0.05, lambda level: levels.append(level) or False), 1
    )
    assert levels == []  # the clock was never ticked
    assert not leg.decoding and clock.members() == []


async def test_a_listener_that_raises_fails_the_listening() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    media = CallMedia(LevelCall(leg))  # type: ignore[arg-type]

    def listener(level: float) -> bool:
        raise ValueError("broken listener")

    task = asyncio.create_task(media.listen_levels(5.0, listener))
    await asyncio.sleep(0)
    clock.step()
    with pytest.raises(ValueError, match="broken listener"):
        await asyncio.wait_for(task, 1)
    assert not leg.decoding and clock.members() == []


async def test_the_call_ending_ends_the_listening() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    call = LevelCall(leg)
    media = CallMedia(call)  # type: ignore[arg-type]
    task = asyncio.create_task(media.listen_levels(5.0, lambda level: False))
    await asyncio.sleep(0)
    assert leg.decoding
    call.ended_future.set_result(None)
    with pytest.raises(CallEnded):
        await asyncio.wait_for(task, 1)
    assert not leg.decoding and clock.members() == []


async def test_frames_are_the_decoded_audio_the_caller_sends() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    media = CallMedia(LevelCall(leg))  # type: ignore[arg-type]
    heard: list[Any] = []

    def listener(frame: Any) -> bool:
        heard.append(frame.copy())
        return bool(abs(frame.astype(int)).mean() > 1000)

    task = asyncio.create_task(media.listen_frames(5.0, listener))
    await asyncio.sleep(0)
    await feed(clock, leg, task, 2.0)
    await asyncio.wait_for(task, 1)
    assert all(frame.dtype == np.int16 and len(frame) == 160 for frame in heard)
    # The first loud frame is the tone sent, through G.711 (within its quantisation).
    sent = abs(sine(1000, 0.02).astype(int)).mean()
    assert abs(heard[-1].astype(int)).mean() == pytest.approx(sent, rel=0.02)
    assert not leg.decoding and clock.members() == []
