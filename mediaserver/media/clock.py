"""The media clock: one 20 ms tick drives every leg that sends decoded audio.

All legs that play audio are ticked together, so the cost per tick grows with
the number of legs and the event loop wakes 50 times a second however many
calls there are. Ticks are scheduled at absolute times (start + n * 20 ms) so
they do not drift; when the loop falls far behind, the clock skips ahead
rather than bursting, and counts the skipped ticks. A member that raises is
logged, counted in ``errors`` and dropped, so one broken leg cannot stop the
clock for every other call.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from mediaserver.log import get_logger

PTIME = 0.020
MAX_LAG_TICKS = 5


class Ticked(Protocol):
    def on_tick(self, now: float) -> None: ...


class MediaClock:
    def __init__(self, ptime: float = PTIME) -> None:
        self.ptime = ptime
        self.ticks = 0
        self.skipped = 0
        self.errors = 0
        self._members: dict[Ticked, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0

    def add(self, member: Ticked) -> None:
        self._members[member] = None
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._next = loop.time() + self.ptime
            self._handle = loop.call_at(self._next, self._tick)

    def remove(self, member: Ticked) -> None:
        self._members.pop(member, None)

    def __len__(self) -> int:
        return len(self._members)

    def stop(self) -> None:
        if self._handle:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.ticks += 1
        for member in list(self._members):
            try:
                member.on_tick(now)
            except Exception:
                # Raising out of a timer callback would end the clock for every call.
                self.errors += 1
                self._members.pop(member, None)
                get_logger("clock").exception("media clock member failed", member=repr(member))
        if not self._members:
            self._handle = None
            return
        self._next += self.ptime
        # Measure the lag after the members ran: a slow member is what makes the clock late.
        late = loop.time() - self._next
        if late > MAX_LAG_TICKS * self.ptime:
            missed = int(late / self.ptime)
            self.skipped += missed
            self._next += missed * self.ptime
        self._handle = loop.call_at(self._next, self._tick)
