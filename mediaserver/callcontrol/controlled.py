"""What Call Control adds to a call: its ids, its application, its state between commands."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mediaserver.calls import Call

Direction = Literal["incoming", "outgoing"]
MAX_COMMAND_IDS = 1000
"""The ``command_id`` values remembered per call (the oldest are forgotten first)."""


class CommandRefused(ValueError):
    """A command that cannot apply; ``field``: the body field at fault (None: the state)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Webhook:
    """Where a call's events go: its ``webhook_url`` or its application's URLs."""

    url: str | None
    failover_url: str | None = None
    timeout: float | None = None
    application_id: str = ""
    """The application whose URLs these are (the event log names it); "" for none."""


@dataclass
class ControlledCall:
    """A call driven by Call Control commands (see the package docstring)."""

    call: Call
    direction: Direction
    from_: str
    to: str
    connection_id: str
    webhook: Webhook
    client_state: str | None = None
    call_session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    call_leg_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    commanded: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the first command (the application's first-command timeout)."""
    media: asyncio.Task[None] | None = None
    """The speak or playback under way (a new one replaces it; playback_stop ends it)."""
    gather: asyncio.Task[None] | None = None
    bridge: asyncio.Task[None] | None = None
    recording: str | None = None
    """The channels (single, dual) of the recording under way, None when none is."""
    _command_ids: dict[str, None] = field(default_factory=dict)

    @property
    def call_control_id(self) -> str:
        return self.call.id

    @property
    def alive(self) -> bool:
        return not self.call.ended

    def seen(self, command_id: str | None) -> bool:
        """Whether ``command_id`` was already used on this call (then the command is a
        no-op, as the seed says); remembers it otherwise."""
        if command_id is None:
            return False
        if command_id in self._command_ids:
            return True
        self._command_ids[command_id] = None
        if len(self._command_ids) > MAX_COMMAND_IDS:
            del self._command_ids[next(iter(self._command_ids))]
        return False

    def forget(self, command_id: str | None) -> None:
        """A refused command's id may be used again."""
        if command_id is not None:
            self._command_ids.pop(command_id, None)

    def cancel_tasks(self) -> None:
        """Stop the prompts and gather of a call that ended (a bridge ends by itself,
        hanging up the other call)."""
        for task in (self.media, self.gather):
            if task is not None and not task.done():
                task.cancel()
