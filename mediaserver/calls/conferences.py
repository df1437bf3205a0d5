"""The live conference rooms, by name (``conference@v1``).

A room is made when the first call joins it and forgotten when it empties;
every call of the server shares one :class:`Conferences` (through
:class:`~mediaserver.calls.services.CallServices`), and the API lists it.
"""

from __future__ import annotations

from typing import Any

from mediaserver.media.clock import MediaClock
from mediaserver.media.conference import Conference


class Conferences:
    """Conference rooms by name; a room exists while someone is in it."""

    def __init__(self) -> None:
        self._rooms: dict[str, Conference] = {}

    def room(self, name: str, clock: MediaClock) -> Conference:
        """The room ``name``, made on first use; it is forgotten once it empties."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Conference(name, clock, on_empty=self.drop)
        return room

    def get(self, name: str) -> Conference | None:
        return self._rooms.get(name)

    def drop(self, room: Conference) -> None:
        """Forget ``room`` (emptied, or never joined), unless another took its name."""
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    def snapshots(self) -> list[dict[str, Any]]:
        """Every live room, as the API lists them."""
        return [room.snapshot() for room in self._rooms.values()]

    def __len__(self) -> int:
        return len(self._rooms)
