"""Recording a Call Control conference: ``record_start``/``record_stop`` on the room's mix.

The room's full mix (everyone who may be heard, plus what is played to the
whole room) is written by the native conference recording
(:func:`~mediaserver.calls.media.record_room`), indexed like every
recording (kind ``conference``, under the creating call). It stops on
``record_stop``, after ``max_length`` seconds, or when the conference ends;
``conference.recording.saved`` then gives its id and URL. Which conference
each recording was made in is remembered here (``/recordings``'
``conference_id``), for the last :data:`KEEP_RECORDINGS` recordings.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

from mediaserver.callcontrol.conference_model import (
    KEEP_RECORDINGS,
    ConferenceRefused,
    ControlledConference,
    RoomRecording,
    now,
)
from mediaserver.calls.media import ActiveRecording, record_room
from mediaserver.webhooks.envelope import format_occurred_at

if TYPE_CHECKING:
    from mediaserver.callcontrol.conferences import ConferenceService


class ConferenceRecordings:
    def __init__(self, service: ConferenceService) -> None:
        self.service = service
        self._conference_of: OrderedDict[str, str] = OrderedDict()

    def conference_of(self, recording_id: str) -> str | None:
        """The id of the conference a recording was made in, if remembered."""
        return self._conference_of.get(recording_id)

    def of_conference(self, conference_id: str) -> list[str]:
        """The recordings made in a conference (those remembered)."""
        return [rid for rid, cid in self._conference_of.items() if cid == conference_id]

    def start(
        self,
        conf: ControlledConference,
        *,
        base_url: str,
        fmt: str,
        channels: str,
        max_length: int,
        play_beep: bool = False,
    ) -> None:
        self.service.usable(conf)
        services = conf.creator.call.services
        if services is None:
            raise ConferenceRefused(None, "Recording is not available: the server has no storage.")
        # Dual: the seed's "first leg on channel A, the rest on channel B".
        apart = conf.creator.call.leg if channels == "dual" else None
        active = record_room(services, conf.room, conf.creator.call_control_id, apart=apart)
        if active is None:
            raise ConferenceRefused(None, f"Conference {conf.name!r} is being recorded already.")
        conf.recording = RoomRecording(active, now(), base_url, channels, fmt)
        if play_beep:  # everyone hears that the recording starts (and so does the recording)
            conf.room.mixer.inject(None, self.service.prompts.tone("beep"))
        self._conference_of[active.id] = conf.id
        while len(self._conference_of) > KEEP_RECORDINGS:
            self._conference_of.popitem(last=False)
        if max_length > 0:
            conf.recording.limit = self.service.spawn(self._limit(conf, active, max_length))

    async def _limit(
        self, conf: ControlledConference, active: ActiveRecording, seconds: float
    ) -> None:
        await asyncio.sleep(seconds)
        if conf.recording is not None and conf.recording.active is active:
            await self.stop(conf)

    async def stop(self, conf: ControlledConference) -> None:
        """Stop the recording under way and post ``conference.recording.saved``."""
        recording = conf.recording
        if recording is None:
            raise ConferenceRefused(None, f"Conference {conf.name!r} is not being recorded.")
        conf.recording = None
        if recording.limit is not None and recording.limit is not asyncio.current_task():
            recording.limit.cancel()
        conf.room.stop_recording()
        ended_at = now()
        result = await asyncio.shield(recording.active.stop())
        url = f"{recording.base_url.rstrip('/')}/api/recordings/{result.id}/file"
        self.service.post_conference_event(
            conf,
            "conference.recording.saved",
            call_control_id=conf.creator.call_control_id,
            channels=recording.channels,
            format=recording.format,
            recording_id=result.id,
            recording_urls={recording.format: url},
            public_recording_urls={recording.format: url},
            recording_started_at=format_occurred_at(recording.started_at),
            recording_ended_at=format_occurred_at(ended_at),
        )
