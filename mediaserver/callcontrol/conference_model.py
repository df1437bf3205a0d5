"""What a Call Control conference is made of: the conference, its participants, its audio.

The data of :mod:`mediaserver.callcontrol.conferences` (which has the
theory of operation): plain records, changed by the
:class:`~mediaserver.callcontrol.conferences.ConferenceService` only.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from mediaserver.callcontrol.controlled import CommandRefused, ControlledCall
from mediaserver.calls.media import ActiveRecording
from mediaserver.media.conference import Conference, Member
from mediaserver.media.mixer import Injection

BEEPS = {"always": "both", "never": "none", "on_enter": "enter", "on_exit": "exit"}
"""The seed's ``beep_enabled`` as the native ``beep`` words."""
DEFAULT_LIFETIME = timedelta(hours=4)
"""A conference's ``expires_at`` without ``duration_minutes`` (the seed's 4 hours)."""
KEEP_ENDED = 1000
"""Ended conferences remembered (GET answers ``completed``)."""
KEEP_RECORDINGS = 10000
"""Conference recordings whose conference id is remembered (``filter[conference_id]``)."""
MAX_PARTICIPANTS = 800
"""The seed's upper bound for ``max_participants``."""

EndReason = Literal["all_left", "ended_via_api", "host_left", "time_exceeded"]


class ConferenceRefused(CommandRefused):
    """A conference command that cannot apply; ``field``: the body field at fault."""


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Participant:
    """A controlled call in a controlled conference."""

    cc: ControlledCall
    member: Member
    end_conference_on_exit: bool = False
    soft_end_conference_on_exit: bool = False
    supervisor_role: str = "none"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    status: Literal["joining", "joined", "left"] = "joined"
    stay: asyncio.Task[None] | None = None

    @property
    def on_hold(self) -> bool:
        return self.member.held or self.member.waiting


@dataclass(eq=False)
class Announcement:
    """Audio played or spoken into the room: to everyone (``None``) or to some legs."""

    injections: dict[str | None, Injection]
    """By the ``call_control_id`` of who hears it; None: everyone."""
    task: asyncio.Task[None] | None = None


@dataclass
class RoomRecording:
    active: ActiveRecording
    started_at: datetime
    base_url: str
    channels: str
    format: str
    limit: asyncio.Task[None] | None = None


@dataclass(eq=False)
class ControlledConference:
    """One conference (module docstring)."""

    name: str
    room: Conference
    creator: ControlledCall
    beep: str
    started: bool
    expires_at: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    participants: dict[str, Participant] = field(default_factory=dict)
    """The participants in the room now, by ``call_control_id``."""
    max_participants: int | None = None
    end_reason: EndReason | None = None
    end_reason_pending: EndReason | None = None
    """Why the room is ending (set before the participants' stays see it)."""
    ended_by: ControlledCall | None = None
    hang_up_on_end: bool = False
    announcements: list[Announcement] = field(default_factory=list)
    recording: RoomRecording | None = None
    timer: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        return self.end_reason is not None

    @property
    def status(self) -> str:
        if self.ended:
            return "completed"
        return "in_progress" if self.started else "init"

    @property
    def connection_id(self) -> str:
        return self.creator.connection_id


@dataclass(frozen=True)
class JoinOptions:
    """``JoinConferenceRequest`` (and the creator's part of ``CreateConferenceRequest``)."""

    mute: bool = False
    hold: bool = False
    beep: str | None = None
    """The native beep word overriding the conference's; None: the conference's."""
    start_conference_on_enter: bool = False
    end_conference_on_exit: bool = False
    soft_end_conference_on_exit: bool = False
    supervisor_role: str = "none"
    hold_audio_url: str | None = None
