"""Who has the floor in a conference: the loudest talker, once it has been loudest a while.

Theory of operation. Each tick the room hands :meth:`FloorTracker.update`
the level (dBFS) of the frame of every member who may be heard (not muted,
held or waiting). The loudest one above :data:`FLOOR_DBFS` is the
*candidate*; it takes the floor after being the candidate for
:data:`HOLD_TICKS` ticks in a row, so a cough or a word over the speaker
does not move the floor, and silence leaves it where it is. ``update``
returns the new holder on the tick the floor changes (the room then tells
the application: ``conference.floor.changed``), None otherwise. Pure: no
I/O, no clock, tested tick by tick.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

FLOOR_DBFS = -40.0
"""Frames quieter than this are not someone speaking (G.711 line noise is below)."""
HOLD_TICKS = 15
"""Ticks (20 ms) a new talker must be the loudest to take the floor: 300 ms."""


class FloorTracker(Generic[K]):
    def __init__(self, threshold_dbfs: float = FLOOR_DBFS, hold_ticks: int = HOLD_TICKS) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.hold_ticks = hold_ticks
        self.holder: K | None = None
        self._candidate: K | None = None
        self._ticks = 0

    def update(self, levels: Mapping[K, float]) -> K | None:
        """One tick's levels by member: the new holder if the floor changes now, else None."""
        loudest = max(levels, key=lambda key: levels[key], default=None)
        if loudest is None or levels[loudest] < self.threshold_dbfs or loudest == self.holder:
            self._candidate, self._ticks = None, 0
            return None
        if loudest == self._candidate:
            self._ticks += 1
        else:
            self._candidate, self._ticks = loudest, 1
        if self._ticks < self.hold_ticks:
            return None
        self.holder, self._candidate, self._ticks = loudest, None, 0
        return loudest

    def forget(self, key: K) -> None:
        """``key`` left the room: it holds the floor no more."""
        if self.holder == key:
            self.holder = None
        if self._candidate == key:
            self._candidate, self._ticks = None, 0
