"""A call's decoded-media actions: keys out, recordings, voicemail, conferences, background audio.

Theory of operation: :class:`CallMedia` holds what one call has going on the
media clock beyond its own playback, and implements the media half of
:class:`~mediaserver.actions.callapi.CallApi` for :class:`Call`
(``send_dtmf``, ``start_recording``/``stop_recording``/``pause_recording``,
``voicemail``, ``conference``, ``play_background``/``stop_audio``, and
``listen_frames``: each decoded frame the caller sends, for answering-machine
detection, and ``listen_levels``, their levels).

Recordings. Each recording gets an 8-character id; its file is
``<recordings_dir>/<id>.<format>``, written on the clock while the call runs
(:mod:`mediaserver.media.recording`). The journal indexes it when it starts
(status ``recording``: a crash leaves it ``interrupted``, and the repaired
file stays where the index says) and again when it is finished (``ready``,
with duration and size, and ``v2.recording.updated`` published). Every
recording stops when the call ends at the latest: the call's end wakes
:meth:`CallMedia._call_ended`. Finishing (fsync, the FLAC/OGG encode, the
index) runs in a task of its own, so a hang-up or a cancelled run cannot lose
it; :func:`flush_recordings` waits for those at shutdown.

Background audio. ``play_background`` starts a prompt and returns; it plays
on during the next actions until it ends, ``stop_audio`` (``stop@v1``), or a
prompt played by a later action replaces it. In the synchronous action model
that is the only audio still playing when ``stop@v1`` runs: say, play and
gather prompts have ended before the next action starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mediaserver.actions.callapi import (
    ConferenceEntry,
    ConferenceOptions,
    ConferenceResult,
    MediaError,
    Pcm,
    RecordingResult,
    RecordOptions,
    VoicemailOptions,
)
from mediaserver.actions.key_combinations import KeyCombinations, commands
from mediaserver.log import get_logger
from mediaserver.media.conference import Conference, ConferenceFull, Member
from mediaserver.media.dtmf_out import check_keys, event_steps, inband_audio
from mediaserver.media.leg import Playback, RtpLeg
from mediaserver.media.pcm import SAMPLE_RATE
from mediaserver.media.recorder import (
    CHANNEL_COUNTS,
    FORMATS,
    Channels,
    Format,
    Recorder,
    RecordingInfo,
)
from mediaserver.media.recording import (
    CallRecording,
    MessageRecording,
    frame_dbfs,
    recording_rate,
)

if TYPE_CHECKING:
    from mediaserver.calls.base import Call
    from mediaserver.calls.services import CallServices
    from mediaserver.store.recordings import RecordingKind

KEY_PASSED_SECONDS = 0.1
"""How long a key passed on to other conference members sounds."""

log = get_logger("media")

_FINISHING: set[asyncio.Task[RecordingResult]] = set()
"""Recordings being finished (fsync, encode, index), whatever became of their call."""


async def flush_recordings(timeout: float = 30.0) -> None:
    """Wait (up to ``timeout``) until every stopped recording is finished and indexed."""
    if _FINISHING:
        await asyncio.wait(set(_FINISHING), timeout=timeout)


def _new_recorder(
    services: CallServices, fmt: str, channels: str, rate: int
) -> tuple[str, Recorder]:
    """A recorder on a fresh ``<id>.<fmt>`` in the recordings folder, at ``rate`` Hz."""
    from mediaserver.calls.base import new_call_id  # same alphabet: 8 of [a-z0-9]

    if fmt not in FORMATS:
        raise MediaError(f"unknown recording format {fmt!r}: use {', '.join(FORMATS)}")
    if channels not in CHANNEL_COUNTS:
        raise MediaError(f"unknown channels {channels!r}: use mono or dual")
    folder = services.recordings_dir
    for _ in range(8):
        rid = new_call_id()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            recorder = Recorder(
                folder / f"{rid}.{fmt}",
                format=cast(Format, fmt),
                channels=cast(Channels, channels),
                sample_rate=rate,
            )
        except FileExistsError:
            continue
        except (OSError, ValueError) as exc:
            raise MediaError(f"cannot start a recording in {folder}: {exc}") from None
        return rid, recorder
    raise MediaError(f"cannot find a free recording name in {folder}")


class ActiveRecording:
    """One recording from its start to its index entry."""

    def __init__(
        self,
        services: CallServices,
        rid: str,
        recorder: Recorder,
        *,
        kind: RecordingKind,
        call_id: str,
        stop_writing: Callable[[], asyncio.Task[RecordingInfo]],
    ) -> None:
        self.services = services
        self.id = rid
        self.recorder = recorder
        self.kind = kind
        self.call_id = call_id
        self._stop_writing = stop_writing
        self._finished: asyncio.Task[RecordingResult] | None = None
        channels = 2 if recorder.channels == "dual" else 1
        if services.journal is not None:
            services.journal.recording_started(
                rid,
                call_id=call_id,
                kind=kind,
                # Relative to the recordings folder: valid whatever the cwd or data dir.
                path=recorder.path.name,
                format=recorder.format,
                channels=channels,
            )
        log.info("recording started", recording_id=rid, kind=kind, path=str(recorder.path))

    @property
    def stopped(self) -> bool:
        return self._finished is not None

    def result(self) -> RecordingResult:
        """The recording as ``$recording`` shows it (duration once finished)."""
        finished = self._finished
        if (
            finished is not None
            and finished.done()
            and not finished.cancelled()
            and finished.exception() is None
        ):
            return finished.result()
        return RecordingResult(self.id, str(self.recorder.path), None)

    def stop(self) -> asyncio.Task[RecordingResult]:
        """Stop writing and finish in the background; the same task every time."""
        if self._finished is None:
            writing = self._stop_writing()
            task = asyncio.get_running_loop().create_task(self._finish(writing))
            _FINISHING.add(task)
            task.add_done_callback(_FINISHING.discard)
            self._finished = task
        return self._finished

    async def _finish(self, writing: asyncio.Task[RecordingInfo]) -> RecordingResult:
        try:
            info = await writing
        except Exception as exc:
            # The file stays as written (repaired at start-up); its index entry stays
            # "recording", and becomes "interrupted" then.
            log.error("recording could not be finished", recording_id=self.id, reason=str(exc))
            return RecordingResult(self.id, str(self.recorder.path), None)
        if self.services.journal is not None:
            self.services.journal.recording_saved(self.id, call_id=self.call_id, info=info)
        log.info(
            "recording saved",
            recording_id=self.id,
            kind=self.kind,
            duration=round(info.duration_s, 3),
            path=str(info.path),
        )
        return RecordingResult(self.id, str(info.path), info.duration_s)


class CallMedia:
    """The decoded-media state of one call (module docstring)."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.recording: ActiveRecording | None = None  # record@v1's
        self._active: set[ActiveRecording] = set()
        self._messages: dict[str, str] = {}  # voicemail id -> file, until discarded
        self._background: asyncio.Task[None] | None = None
        self._background_playback: Playback | None = None
        if call.services is not None:
            call.leg.jitter_buffer_ms = call.services.jitter_buffer_ms
        call.ended_future.add_done_callback(self._call_ended)

    def _services(self) -> CallServices:
        services = self.call.services
        if services is None:
            raise MediaError("recording is not available: the server gave this call no storage")
        return services

    def _call_ended(self, _: object) -> None:
        # Recordings stop with the call at the latest (the leg is closed now).
        for active in list(self._active):
            active.stop()
        self.stop_audio()

    # -- keys out --------------------------------------------------------------------

    async def send_dtmf(self, keys: str, duration: float) -> None:
        call = self.call
        try:
            check_keys(keys)
        except ValueError as exc:
            raise MediaError(str(exc)) from None
        await call._ensure_media()
        leg = call.leg
        if leg.telephone_event_pt is None:
            log.info("sending dtmf in-band", keys=keys)
            await call.play(inband_audio(keys, duration))
            return
        log.info("sending dtmf", keys=keys, payload_type=leg.telephone_event_pt)
        done = leg.send_dtmf(event_steps(keys, duration, leg.telephone_event_clock))
        try:
            await call.wait_any([done], None, wake_on_digit=False)
            call.check()
        finally:
            if not done.done():
                leg.stop_dtmf()

    # -- recordings ------------------------------------------------------------------

    def open_recording(
        self, options: RecordOptions, kind: RecordingKind = "call"
    ) -> ActiveRecording:
        """Start recording the call's two sides now (also dial@v1's ``record``)."""
        self.call.check()
        services = self._services()
        leg = self.call.leg
        rid, recorder = _new_recorder(
            services, options.format, options.channels, recording_rate(leg)
        )
        writer = CallRecording(leg.clock, leg, recorder)
        active = ActiveRecording(
            services, rid, recorder, kind=kind, call_id=self.call.id, stop_writing=writer.stop
        )
        self._active.add(active)
        return active

    async def start_recording(self, options: RecordOptions) -> RecordingResult:
        await self.call._ensure_media()
        if self.recording is not None and not self.recording.stopped:
            raise MediaError("a recording is already running on this call: stop it first")
        self.recording = self.open_recording(options)
        return self.recording.result()

    async def stop_recording(self) -> RecordingResult:
        active = self._running()
        self.recording = None
        self._active.discard(active)
        return await asyncio.shield(active.stop())

    async def pause_recording(self, paused: bool) -> RecordingResult:
        active = self._running()
        if paused:
            active.recorder.pause()
        else:
            active.recorder.resume()
        return active.result()

    def _running(self) -> ActiveRecording:
        active = self.recording
        if active is None or active.stopped:
            raise MediaError("no recording is running on this call (record@v1 start first)")
        return active

    async def voicemail(self, options: VoicemailOptions) -> RecordingResult:
        call = self.call
        await call._ensure_media(early=False)
        services = self._services()
        call.flush_digits()
        rate = recording_rate(call.leg, other_side=False)
        rid, recorder = _new_recorder(services, "wav", "mono", rate)
        writer = MessageRecording(
            call.leg.clock,
            call.leg,
            recorder,
            max_length=options.max_length,
            silence_timeout=options.silence_timeout,
        )
        active = ActiveRecording(
            services, rid, recorder, kind="voicemail", call_id=call.id, stop_writing=writer.stop
        )
        self._active.add(active)
        reason = "hangup"
        try:
            reason = await self._message_end(writer, options.finish_on_key)
        finally:
            finishing = active.stop()
            self._active.discard(active)
        result = await asyncio.shield(finishing)
        log.info("voicemail recorded", recording_id=rid, ended_by=reason, duration=result.duration)
        self._messages[rid] = result.path
        return result

    async def discard_recording(self, recording_id: str) -> bool:
        path = self._messages.pop(recording_id, None)
        if path is None:
            return False
        services = self._services()
        if services.journal is not None:
            # The index row goes through the journal, after the writes that made it.
            services.journal.recording_discarded(recording_id)
        await asyncio.to_thread(Path(path).unlink, missing_ok=True)
        log.info("voicemail discarded", recording_id=recording_id)
        return True

    async def _message_end(self, writer: MessageRecording, finish_on_key: str | None) -> str:
        """Why the message ended: silence, max_length, key or hangup."""
        call = self.call
        while True:
            await call.wait_any([writer.ended], None)
            if writer.ended.done():
                return writer.ended.result()
            if call.ended:
                return "hangup"
            while (key := await call.next_digit(0)) is not None:
                if finish_on_key is not None and key in finish_on_key:
                    return "key"

    # -- conferences -----------------------------------------------------------------

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        call = self.call
        await call._ensure_media(early=False)
        services = self._services()
        room = services.conferences.room(options.name, call.leg.clock)
        member = Member(
            call.leg,
            call.id,
            moderator=options.moderator,
            wait_for_moderator=options.wait_for_moderator,
            end_on_exit=options.end_on_exit,
            hold_on_exit=options.hold_on_exit,
            send_dtmf=options.send_dtmf,
            receive_dtmf=options.receive_dtmf,
            beep_on_enter=options.beep in ("enter", "both"),
            beep_on_exit=options.beep in ("exit", "both"),
            muted=options.muted,
        )
        try:
            room.join(
                member, max_participants=options.max_participants, hold_audio=options.hold_audio
            )
        except ConferenceFull as exc:
            log.info("conference full", conference=options.name, reason=str(exc))
            if not room.members:
                services.conferences.drop(room)
            return ConferenceResult("full")
        log.info(
            "conference joined",
            conference=options.name,
            participants=len(room),
            waiting=member.waiting,
        )
        self._publish(
            "conference.participant.joined",
            conference=options.name,
            participants=len(room),
            waiting=member.waiting,
        )
        call.flush_digits()
        recording = self._record_room(services, room) if options.record else None
        outcome = "hangup"  # unless the stay ends otherwise (a cancelled run: the call ended)
        try:
            outcome = await self._stay(room, member, options)
        finally:
            room.leave(call.leg, outcome)
            log.info("conference left", conference=options.name, outcome=outcome)
            self._publish(
                "conference.participant.left",
                conference=options.name,
                participants=len(room),
                outcome=outcome,
            )
        saved = None
        if recording is not None:
            saved = recording.result()
        return ConferenceResult(outcome, saved)

    def _publish(self, event_type: str, **fields: Any) -> None:
        if self.call.journal is not None:
            self.call.journal.events.publish(event_type, {"call_id": self.call.id, **fields})

    async def _stay(self, room: Conference, member: Member, options: ConferenceOptions) -> str:
        call = self.call
        keys = KeyCombinations(
            commands(options.exit_on_key, options.mute_on_key, options.unmute_on_key)
        )
        loop = asyncio.get_running_loop()
        while True:
            await call.wait_any([member.outcome], None)
            if member.outcome.done():
                return member.outcome.result()
            if call.ended:
                return "hangup"
            while (key := await call.next_digit(0)) is not None:
                self._pass_key(room, key)
                command = keys.press(key, loop.time())
                if command == "exit":
                    return "key"
                if command is not None and call.leg in room:
                    muted = not member.muted if command == "toggle" else command == "mute"
                    room.set_muted(call.leg, muted)
                    log.info("conference mute", conference=room.name, muted=member.muted)

    def _pass_key(self, room: Conference, key: str) -> None:
        """Voxology ``send_dtmf``/``receive_dtmf``: a key this member presses goes to
        every member who receives keys, as a telephone-event (RFC 4733); a member
        whose peer did not negotiate telephone-event gets nothing."""
        for leg in room.dtmf_receivers(self.call.leg):
            if isinstance(leg, RtpLeg) and leg.telephone_event_pt is not None:
                leg.send_dtmf(event_steps(key, KEY_PASSED_SECONDS, leg.telephone_event_clock))
                log.info("conference key passed on", conference=room.name, key=key)

    def conference_entry(
        self, name: str, *, moderator: bool, wait_for_moderator: bool
    ) -> ConferenceEntry:
        room = self.call.services.conferences.get(name) if self.call.services else None
        if room is None:
            return ConferenceEntry(0, wait_for_moderator and not moderator)
        return ConferenceEntry(len(room), room.would_wait(moderator, wait_for_moderator))

    def leave_conference(self) -> bool:
        """Take the call out of its conference (the API's ``leave``): the action's
        result is ``left``. False when the call is in no conference."""
        room = self.call.leg.mixed_by
        if not isinstance(room, Conference) or self.call.leg not in room:
            return False
        room.leave(self.call.leg, "left")
        return True

    def _record_room(self, services: CallServices, room: Conference) -> ActiveRecording | None:
        return record_room(services, room, self.call.id)

    # -- background audio --------------------------------------------------------------

    async def play_background(self, audio: Pcm, repeat: int) -> None:
        await self.call._ensure_media()
        self.stop_audio()
        self._background = asyncio.get_running_loop().create_task(self._loop(audio, repeat))

    async def _loop(self, audio: Pcm, repeat: int) -> None:
        for _ in range(repeat):
            playback = self.call.leg.play(audio)
            self._background_playback = playback
            await playback.done
            if not playback.completed:
                return  # stopped, or replaced by another prompt
        self._background_playback = None

    def stop_audio(self) -> bool:
        task, self._background = self._background, None
        playback, self._background_playback = self._background_playback, None
        stopped = False
        if playback is not None and self.call.leg.playing is playback:
            self.call.leg.stop_playback()
            stopped = True
        if task is not None and not task.done():
            task.cancel()
            stopped = True
        return stopped

    # -- what the caller sends, frame by frame (answering-machine detection) ----------

    async def listen_levels(self, seconds: float, listener: Callable[[float], bool]) -> None:
        await self.listen_frames(seconds, lambda frame: listener(frame_dbfs(frame)))

    async def listen_frames(self, seconds: float, listener: Callable[[Pcm], bool]) -> None:
        call = self.call
        await call._ensure_media()
        tap = _FrameTap(call.leg, listener)
        call.leg.listen(tap)
        call.leg.clock.add(tap)
        try:
            await call.wait_any([tap.done], seconds, wake_on_digit=False)
        finally:
            call.leg.clock.remove(tap)
            call.leg.unlisten(tap)
        error = tap.done.exception() if tap.done.done() else None
        call.check()
        if error is not None:
            raise error  # the listener's own failure fails the action


class _FrameTap:
    """A media-clock member handing each decoded frame the caller sends to a listener."""

    def __init__(self, leg: RtpLeg, listener: Callable[[Pcm], bool]) -> None:
        self.leg = leg
        self.listener = listener
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_tick(self, now: float) -> None:
        if self.done.done():
            return
        try:
            if self.listener(self.leg.received_frame()):
                self.done.set_result(None)
        except Exception as exc:  # the clock would drop us; the action should fail instead
            self.done.set_exception(exc)


def record_room(
    services: CallServices,
    room: Conference,
    call_id: str,
    *,
    apart: RtpLeg | None = None,
) -> ActiveRecording | None:
    """Record the room's full mix until it empties (or :meth:`Conference.stop_recording`),
    indexed under ``call_id``; None when the room is recorded already. With ``apart``:
    two channels, that leg's voice and the rest of the room."""
    if room.recording:
        return None
    # The room's mix is 8 kHz audio, whatever its members' codecs.
    channels = "mono" if apart is None else "dual"
    rid, recorder = _new_recorder(services, "wav", channels, SAMPLE_RATE)

    def stop_writing() -> asyncio.Task[RecordingInfo]:
        return asyncio.get_running_loop().create_task(recorder.aclose())

    active = ActiveRecording(
        services, rid, recorder, kind="conference", call_id=call_id, stop_writing=stop_writing
    )
    room.record(recorder, rid, active.stop, apart=apart)
    return active
