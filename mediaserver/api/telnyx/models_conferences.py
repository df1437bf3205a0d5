"""Request bodies of the conference commands (seed 002 ``*Conference*Request`` schemas).

As for the call commands (:mod:`.models`): the seed's names and defaults,
unknown fields ignored, a known field with a wrong type or value a 422
naming it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaserver.api.telnyx.models import LANGUAGE, Command, Loop

Beep = Literal["always", "never", "on_enter", "on_exit"]
SupervisorRole = Literal["barge", "monitor", "none", "whisper"]
CallControlId = str
CallIds = list[CallControlId]


def _url() -> Any:
    return Field(default=None, min_length=1, max_length=2048)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreateConferenceIn(Command):
    call_control_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    beep_enabled: Beep = "never"
    comfort_noise: bool = True
    duration_minutes: int | None = Field(default=None, ge=1, le=14400)
    hold_audio_url: str | None = _url()
    hold_media_name: str | None = None
    max_participants: int | None = Field(default=None, ge=2, le=800)
    start_conference_on_create: bool = True


class JoinConferenceIn(Command):
    call_control_id: str = Field(min_length=1, max_length=128)
    beep_enabled: Beep | None = None
    end_conference_on_exit: bool = False
    soft_end_conference_on_exit: bool = False
    hold: bool = False
    hold_audio_url: str | None = _url()
    hold_media_name: str | None = None
    mute: bool = False
    start_conference_on_enter: bool = False
    supervisor_role: SupervisorRole = "none"
    whisper_call_control_ids: CallIds = Field(default_factory=list, max_length=800)


class LeaveConferenceIn(Command):
    call_control_id: str = Field(min_length=1, max_length=128)
    beep_enabled: Beep | None = None


class ParticipantsIn(Lenient):
    """Mute, unmute, unhold, stop: which participants (none or empty: all)."""

    call_control_ids: CallIds | None = Field(default=None, max_length=800)


class HoldIn(ParticipantsIn):
    audio_url: str | None = _url()
    media_name: str | None = None


class ConferencePlayIn(ParticipantsIn):
    audio_url: str | None = _url()
    media_name: str | None = None
    loop: Loop = 1


class ConferenceSpeakIn(ParticipantsIn):
    command_id: str | None = Field(default=None, max_length=256)
    payload: str = Field(min_length=1, max_length=5000)
    payload_type: Literal["text", "ssml"] = "text"
    voice: str = Field(min_length=1, max_length=128)
    language: str | None = Field(default=None, pattern=LANGUAGE)


class ConferenceRecordIn(Command):
    format: Literal["wav", "mp3"]
    channels: Literal["single", "dual"] = "single"
    play_beep: bool = False
    max_length: int = Field(default=0, ge=0, le=14400)


class UpdateConferenceIn(Command):
    call_control_id: str = Field(min_length=1, max_length=128)
    supervisor_role: SupervisorRole
    whisper_call_control_ids: CallIds = Field(default_factory=list, max_length=800)


class DialParticipantIn(Command):
    call_control_id: str = Field(min_length=1, max_length=128)
    to: str = Field(min_length=1, max_length=512)
    from_: str = Field(alias="from", min_length=1, max_length=256)
    hold: bool = False
    hold_audio_url: str | None = _url()
    mute: bool = False
    start_conference_on_enter: bool = False
    supervisor_role: SupervisorRole = "none"
