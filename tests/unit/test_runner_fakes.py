"""Fakes of ``CallApi`` and ``PromptAudio`` for the runner and action tests, and their own tests.

The fake call runs on a virtual clock: playing audio, waiting for a key and
echoing advance ``call.now`` instantly, so a test of a 5-second timeout takes
microseconds and is exact. Keys are scheduled at virtual times with
:meth:`FakeCall.press`; they are buffered when their time is reached, like
a real call's type-ahead buffer. ``hangup_at`` makes the caller hang up at a
virtual time: any operation that reaches it raises ``CallEnded``.

(This module is named ``test_*`` only because of how files are owned in
this tree; the other test modules import it.)
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import numpy as np
import pytest

from mediaserver.actions.callapi import (
    SAMPLE_RATE,
    AudioError,
    CallEnded,
    ConferenceEntry,
    ConferenceOptions,
    ConferenceResult,
    DialOptions,
    DialResult,
    FetchError,
    FetchResult,
    MailUnavailable,
    MediaError,
    Pcm,
    RecordingResult,
    RecordOptions,
    VoicemailOptions,
)
from mediaserver.actions.key_combinations import KeyCombinations, commands
from mediaserver.actions.model import Scenario
from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.actions.scenario import load_scenario_data, load_scenario_text
from mediaserver.media.dtmf_out import timeline_seconds
from mediaserver.media.fork import ForkTargets, fork_targets

SPEECH_SECONDS_PER_CHAR = 0.05
FRAME_SECONDS = 0.02
SILENT_DBFS = -120.0
TONE_SECONDS = 1.0
FILE_SECONDS = 2.0


@dataclass
class Played:
    """One call to ``play``: what, when, for how long, and the key that stopped it."""

    start: float
    label: str
    seconds: float
    stopped_by: str | None


class FakePrompts:
    """Audio whose identity says what it is: speech, a file or a tone."""

    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.missing = missing
        self.speech_requests: list[dict[str, Any]] = []
        # Keeping each array alive keeps its id from being reused by another one.
        self._labels: dict[int, tuple[str, Pcm]] = {}

    def _make(self, seconds: float, label: str) -> Pcm:
        audio = np.full(round(seconds * SAMPLE_RATE), 1000, dtype=np.int16)
        self._labels[id(audio)] = (label, audio)
        return audio

    def label(self, audio: Pcm) -> str:
        found = self._labels.get(id(audio))
        if found is not None and found[1] is audio:
            return found[0]
        return "silence" if not audio.any() else "unknown"

    async def speech(
        self, text: str, *, language: str, voice: str, rate: float | None = None
    ) -> Pcm:
        self.speech_requests.append(
            {"text": text, "language": language, "voice": voice, "rate": rate}
        )
        if language == "xx-XX":
            raise AudioError(f"no voice for language {language}")
        return self._make(max(len(text), 1) * SPEECH_SECONDS_PER_CHAR, f"say:{text}")

    async def file(self, location: str) -> Pcm:
        if location in self.missing:
            raise AudioError(f"cannot read {location}: no such file")
        return self._make(FILE_SECONDS, f"file:{location}")

    def tone(self, name: str) -> Pcm:
        return self._make(TONE_SECONDS, f"tone:{name}")


class FakeCall:
    """A call on a virtual clock (see the module docstring)."""

    def __init__(
        self,
        prompts: FakePrompts,
        *,
        answered: bool = False,
        hangup_at: float | None = None,
        info: dict[str, Any] | None = None,
        block_echo: bool = False,
    ) -> None:
        self.prompts = prompts
        self.now = 0.0
        self.hangup_at = hangup_at
        self.block_echo = block_echo
        self.events: list[tuple[float, str]] = []
        self.played: list[Played] = []
        self._answered = answered
        self._ended = False
        self._scheduled: list[tuple[float, str]] = []
        self._buffer: list[str] = []
        # Decoded media: recordings made, the one record@v1 runs, background audio.
        self.recordings: list[RecordingResult] = []
        self.recording: tuple[str, float, RecordOptions] | None = None
        self.background: str | None = None
        self.customer_field: str | None = None  # what the run hands over for the record
        # listen_levels: the level (dBFS) of each 20 ms frame the caller sends; then silence.
        self.levels: list[float] = []
        self._level_at = 0
        # listen_frames (detect@v1): the audio the caller sends; then silence.
        self.sent_audio: Pcm = np.zeros(0, np.int16)
        self._sent_at = 0
        self.conference_size = 0  # others in every room the fake joins
        # Transfers and queues: what the far side does.
        self.transfer_outcome = "transferred"
        self.queue_outcome = "bridged"  # enqueue's, or bridge_next's
        self.queue_wait = 0.0  # virtual seconds spent in a queue
        self.queue_length = 0  # callers already waiting in every queue the fake offers to
        self.dialling = False  # a dial with wait: false under way
        self.forking: ForkTargets | None = None  # fork@v1's destinations while it runs
        self._info = info or {
            "id": "call0001",
            "from": "+33123456789",  # like Call.info: the user part of the From URI
            "to": "ivr",
            "direction": "inbound",
            "sip_call_id": "abc@198.51.100.7",
            "started_at": 1_700_000_000_000,
            "answered_at": None,
            "headers": {},
        }

    # -- test controls --

    def press(self, keys: str, at: float, gap: float = 0.0) -> FakeCall:
        """Schedule ``keys`` to arrive from virtual time ``at``, ``gap`` seconds apart."""
        for index, key in enumerate(keys):
            self._scheduled.append((at + index * gap, key))
        self._scheduled.sort(key=lambda entry: entry[0])
        return self

    def heard(self) -> list[str]:
        """Labels of everything played, silences left out."""
        return [p.label for p in self.played if p.label != "silence"]

    # -- CallApi --

    @property
    def info(self) -> dict[str, Any]:
        return dict(self._info)

    @property
    def answered(self) -> bool:
        return self._answered

    @property
    def ended(self) -> bool:
        return self._ended

    async def ring(self) -> None:
        await self._alive()
        self.events.append((self.now, "ring"))

    async def progress(self) -> None:
        await self._alive()
        self.events.append((self.now, "progress"))

    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        """Nobody answers: every target rings until the timeout."""
        await self._alive()
        self.events.append((self.now, f"dial:{','.join(targets)}"))
        if not options.wait:
            self.dialling = True
            return DialResult("started", 0.0, targets[0])
        self.now += options.timeout
        return DialResult("no-answer", 0.0, targets[-1])

    async def stop_dial(self) -> bool:
        self.events.append((self.now, "stop-dial"))
        stopped, self.dialling = self.dialling, False
        return stopped

    async def answer(self) -> None:
        await self._alive()
        if not self._answered:
            self._answered = True
            self._info["answered_at"] = 1_700_000_001_000
            self.events.append((self.now, "answer"))

    async def reject(self, reason: str) -> None:
        await self._alive()
        self._ended = True
        self.events.append((self.now, f"reject:{reason}"))

    async def hangup(self, reason: str = "normal_clearing") -> None:
        await asyncio.sleep(0)
        if not self._ended:
            self._ended = True
            self.events.append((self.now, f"hangup:{reason}"))

    async def play(self, audio: Pcm, stop_keys: str = "") -> str | None:
        await self._alive()
        await self.answer()
        start = self.now
        end = start + len(audio) / SAMPLE_RATE
        label = self.prompts.label(audio)
        # Like the real call: a stop key already buffered (type-ahead) skips the audio.
        for key in self._buffer:
            if key in stop_keys:
                self.played.append(Played(start, label, 0.0, key))
                return key
        for at, key in list(self._scheduled):
            if at >= end:
                break
            if self.hangup_at is not None and self.hangup_at <= at:
                break
            self._arrive(at)
            if key in stop_keys:
                self.now = max(at, start)
                self.played.append(Played(start, label, self.now - start, key))
                return key
        if self.hangup_at is not None and self.hangup_at < end:
            self.played.append(Played(start, label, self.hangup_at - start, None))
            self._hang_up_now()
        self.now = end
        self.played.append(Played(start, label, end - start, None))
        return None

    async def echo(self, seconds: float | None) -> None:
        await self._alive()
        await self.answer()
        self.events.append((self.now, "echo"))
        if self.block_echo:
            await asyncio.Event().wait()
        end = float("inf") if seconds is None else self.now + seconds
        if self.hangup_at is not None and self.hangup_at <= end:
            self._hang_up_now()
        if seconds is None:
            raise AssertionError("echo until hang-up, but the fake caller never hangs up")
        self.now = end

    async def next_digit(self, timeout: float | None) -> str | None:
        await self._alive()
        self._arrive(self.now)
        if self._buffer:
            return self._buffer.pop(0)
        deadline = float("inf") if timeout is None else self.now + timeout
        upcoming = self._scheduled[0][0] if self._scheduled else None
        if (
            self.hangup_at is not None
            and self.hangup_at <= deadline
            and (upcoming is None or self.hangup_at <= upcoming)
        ):
            self._hang_up_now()
        if upcoming is not None and upcoming <= deadline:
            self._arrive(upcoming)
            return self._buffer.pop(0)
        if timeout is None:
            raise AssertionError("waiting forever for a key that never comes")
        self.now = deadline
        return None

    def flush_digits(self) -> None:
        self._arrive(self.now)
        self.events.append((self.now, f"flush:{''.join(self._buffer)}"))
        self._buffer.clear()

    # -- CallApi: decoded media --

    async def send_dtmf(self, keys: str, duration: float) -> None:
        await self._alive()
        await self.answer()
        self.events.append((self.now, f"dtmf:{keys}"))
        end = self.now + timeline_seconds(keys, duration)
        if self.hangup_at is not None and self.hangup_at <= end:
            self._hang_up_now()
        self.now = end

    def _new_recording(self, fmt: str = "wav") -> RecordingResult:
        rid = f"rec{len(self.recordings) + 1:05d}"
        made = RecordingResult(rid, f"/data/recordings/{rid}.{fmt}")
        self.recordings.append(made)
        return made

    async def start_recording(self, options: RecordOptions) -> RecordingResult:
        await self._alive()
        await self.answer()
        if self.recording is not None:
            raise MediaError("a recording is already running on this call: stop it first")
        made = self._new_recording(options.format)
        self.recording = (made.id, self.now, options)
        self.events.append((self.now, f"record:start:{options.channels}"))
        return made

    async def stop_recording(self) -> RecordingResult:
        await self._alive()
        if self.recording is None:
            raise MediaError("no recording is running on this call (record@v1 start first)")
        rid, started, options = self.recording
        self.recording = None
        self.events.append((self.now, "record:stop"))
        return RecordingResult(rid, f"/data/recordings/{rid}.{options.format}", self.now - started)

    async def pause_recording(self, paused: bool) -> RecordingResult:
        await self._alive()
        if self.recording is None:
            raise MediaError("no recording is running on this call (record@v1 start first)")
        rid, _, options = self.recording
        self.events.append((self.now, "record:pause" if paused else "record:resume"))
        return RecordingResult(rid, f"/data/recordings/{rid}.{options.format}")

    def set_customer_field(self, value: str | None) -> None:
        self.customer_field = value

    async def voicemail(self, options: VoicemailOptions) -> RecordingResult:
        """The fake caller says nothing: the message ends at the silence timeout
        (or at max_length, the finish key, or the hang-up, whichever is first)."""
        await self._alive()
        await self.answer()
        made = self._new_recording()
        start = self.now
        end = start + min(options.silence_timeout, options.max_length)
        for at, key in list(self._scheduled):
            if at >= end or (self.hangup_at is not None and self.hangup_at <= at):
                break
            self._arrive(at)
            self._buffer.remove(key)
            if options.finish_on_key is not None and key in options.finish_on_key:
                end = at
                break
        if self.hangup_at is not None and self.hangup_at < end:
            end = self.hangup_at
            self._ended = True
            self.events.append((end, "caller hung up"))
        self.now = end
        self.events.append((start, "voicemail"))
        return RecordingResult(made.id, made.path, 0.0)

    def conference_entry(
        self, name: str, *, moderator: bool, wait_for_moderator: bool
    ) -> ConferenceEntry:
        return ConferenceEntry(self.conference_size, wait_for_moderator and not moderator)

    async def discard_recording(self, recording_id: str) -> bool:
        self.events.append((self.now, f"discard:{recording_id}"))
        return True

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        """The caller stays until it presses exit_on_key or hangs up; keys are the room's."""
        await self._alive()
        await self.answer()
        self.events.append((self.now, f"conference:{options.name}"))
        if (
            options.max_participants is not None
            and self.conference_size >= options.max_participants
        ):
            return ConferenceResult("full")
        recording = self._new_recording() if options.record else None
        keys = KeyCombinations(
            commands(options.exit_on_key, options.mute_on_key, options.unmute_on_key)
        )
        for at, key in list(self._scheduled):
            if self.hangup_at is not None and self.hangup_at <= at:
                break
            self._arrive(at)
            self._buffer.remove(key)
            if keys.press(key, at) == "exit":
                return ConferenceResult("key", recording)
        if self.hangup_at is None:
            raise AssertionError("in the conference forever: the fake caller never hangs up")
        self.now = self.hangup_at
        self._ended = True
        self.events.append((self.now, "caller hung up"))
        return ConferenceResult("hangup", recording)

    async def play_background(self, audio: Pcm, repeat: int) -> None:
        await self._alive()
        await self.answer()
        self.background = self.prompts.label(audio)
        self.events.append((self.now, f"background:{self.background}x{repeat}"))

    def stop_audio(self) -> bool:
        playing, self.background = self.background, None
        self.events.append((self.now, "stop"))
        return playing is not None

    async def transfer(self, target: str, mode: str | None) -> str:
        await self._alive()
        self.events.append((self.now, f"transfer:{target}:{mode or 'auto'}"))
        if self.transfer_outcome == "transferred":
            self._ended = True
        return self.transfer_outcome

    async def enqueue(
        self,
        queue: str,
        *,
        hold_audio: Pcm,
        max_wait: float | None,
        announce: Callable[[int], Awaitable[Pcm]] | None,
        max_calls: int | None = None,
        wait: bool = True,
    ) -> str:
        await self._alive()
        await self.answer()
        if max_calls is not None and self.queue_length >= max_calls:
            self.events.append((self.now, f"queue-full:{queue}"))
            return "full"
        if not wait:
            self.events.append((self.now, f"offer:{queue}"))
            return "queued"
        hold = self.prompts.label(hold_audio)
        self.events.append((self.now, f"enqueue:{queue}:{hold}"))
        if announce is not None:
            announcement = await announce(1)
            self.played.append(Played(self.now, self.prompts.label(announcement), 0.0, None))
        if max_wait is not None and self.queue_wait >= max_wait:
            self.now += max_wait
            return "timeout"
        self.now += self.queue_wait
        return self.queue_outcome

    async def bridge_next(
        self, queue: str, on_taken: Callable[[dict[str, Any]], None] | None = None
    ) -> str:
        await self._alive()
        self.events.append((self.now, f"bridge-next:{queue}"))
        if self.queue_outcome == "bridged" and on_taken is not None:
            on_taken({"id": "caller01", "from": "+33987654321", "to": "support",
                      "direction": "inbound"})  # fmt: skip
        return self.queue_outcome

    def queue_size(self, queue: str) -> int:
        return self.queue_length

    def release_next(self, queue: str) -> str:
        self.events.append((self.now, f"release-next:{queue}"))
        return "released" if self.queue_length else "empty"

    def leave_queue(self, queue: str) -> str:
        self.events.append((self.now, f"leave:{queue}"))
        return "removed"

    async def listen_levels(self, seconds: float, listener: Callable[[float], bool]) -> None:
        """Feed the scripted ``levels`` (silence after them), one per virtual 20 ms."""
        await self._alive()
        await self.answer()
        self.events.append((self.now, f"listen:{seconds:g}"))
        start = self.now
        for frame in range(round(seconds / FRAME_SECONDS)):
            self.now = start + (frame + 1) * FRAME_SECONDS
            if self.hangup_at is not None and self.hangup_at <= self.now:
                self._hang_up_now()
            at = self._level_at
            self._level_at += 1
            if listener(self.levels[at] if at < len(self.levels) else SILENT_DBFS):
                return
        self.now = start + seconds

    async def listen_frames(self, seconds: float, listener: Callable[[Pcm], bool]) -> None:
        """Feed ``sent_audio`` (silence after it) in 20 ms frames, one per virtual 20 ms."""
        await self._alive()
        await self.answer()
        self.events.append((self.now, f"listen:{seconds:g}"))
        start = self.now
        size = round(SAMPLE_RATE * FRAME_SECONDS)
        for frame in range(round(seconds / FRAME_SECONDS)):
            self.now = start + (frame + 1) * FRAME_SECONDS
            if self.hangup_at is not None and self.hangup_at <= self.now:
                self._hang_up_now()
            audio = self.sent_audio[self._sent_at : self._sent_at + size]
            self._sent_at += size
            audio = np.concatenate([audio, np.zeros(size - len(audio), np.int16)])
            if listener(audio):
                return
        self.now = start + seconds

    def fork_start(
        self,
        *,
        rx: str | None = None,
        tx: str | None = None,
        target: str | None = None,
        stream_type: str = "raw",
    ) -> bool:
        if self._ended:
            raise CallEnded()
        targets = fork_targets(rx=rx, tx=tx, target=target, stream_type=stream_type)
        replaced, self.forking = self.forking is not None, targets
        self.events.append((self.now, f"fork:{','.join(f for f, _ in targets.addresses())}"))
        return replaced

    def fork_stop(self) -> None:
        if self.forking is None:
            raise MediaError("nothing to stop: the call is not forking")
        self.forking = None
        self.events.append((self.now, "fork-stop"))

    # -- internals --

    def _arrive(self, until: float) -> None:
        self.now = max(self.now, until)
        while self._scheduled and self._scheduled[0][0] <= until:
            self._buffer.append(self._scheduled.pop(0)[1])

    async def _alive(self) -> None:
        await asyncio.sleep(0)
        if self._ended:
            raise CallEnded()

    def _hang_up_now(self) -> None:
        assert self.hangup_at is not None
        self.now = self.hangup_at
        self._ended = True
        self.events.append((self.now, "caller hung up"))
        raise CallEnded()


@dataclass
class FakeRequest:
    """One ``fetch`` the fake server was asked for."""

    url: str
    method: str
    headers: dict[str, str]
    body: object
    timeout: float


class FakeServer:
    """A :class:`ServerApi` that answers from a table and keeps what it was asked.

    ``responses`` maps a URL to a :class:`FetchResult`, a :class:`FetchError` to
    raise, or a number of seconds to hang (longer than the action's timeout:
    the action's own deadline ends it); any other URL answers 200 with ``{}``.
    ``message_status`` maps a target to the SIP status of its final response
    (None: no answer); targets starting with ``unknown`` cannot be reached.
    """

    def __init__(self) -> None:
        self.responses: dict[str, FetchResult | FetchError | float] = {}
        self.requests: list[FakeRequest] = []
        self.webhooks: list[tuple[str | None, str, dict[str, Any]]] = []
        self.message_status: dict[str, int | None] = {}
        self.messages: list[tuple[str, str, str | None]] = []
        self.mails: list[tuple[EmailMessage, str]] = []  # None: no smtp section
        self.smtp = True
        self.routes: dict[str, str] = {}
        self.recording_codes: dict[str, str] = {}  # audio-file@v1: code -> audio file sid
        self.recorded_audio_files: list[tuple[str, str]] = []  # (sid, recording path)

    def send_mail(self, message: EmailMessage, what: str) -> None:
        if not self.smtp:
            raise MailUnavailable("this server sends no e-mail: add an smtp: section")
        self.mails.append((message, what))

    async def fetch(
        self,
        url: str,
        *,
        method: str,
        headers: Mapping[str, str],
        body: object,
        timeout: float,
    ) -> FetchResult:
        self.requests.append(FakeRequest(url, method, dict(headers), body, timeout))
        answer = self.responses.get(url, FetchResult(200, {}, {"Content-Type": "application/json"}))
        if isinstance(answer, FetchError):
            raise answer
        if isinstance(answer, float | int):
            await asyncio.sleep(answer)
            raise AssertionError("the action should have given up before")
        return answer

    def webhook(self, url: str | None, event: str, data: Mapping[str, object]) -> None:
        self.webhooks.append((url, event, dict(data)))

    async def send_message(self, to: str, text: str, *, sender: str | None) -> int | None:
        await asyncio.sleep(0)
        if to.startswith("unknown"):
            raise ValueError(f"user {to!r} is not registered")
        self.messages.append((to, text, sender))
        return self.message_status.get(to, 200)

    def compile_scenario(self, data: Any, filename: str) -> Scenario:
        return load_scenario_data(data, filename)

    def route_of(self, number: str) -> str | None:
        return self.routes.get(number)

    def audio_file_for_code(self, code: str) -> str | None:
        return self.recording_codes.get(code)

    async def record_audio_file(self, code: str, recording: str) -> str:
        await asyncio.sleep(0)
        sid = self.recording_codes.pop(code, None)
        if sid is None:
            raise ValueError(f"code {code!r} is not a live code (wrong, used or replaced)")
        self.recorded_audio_files.append((sid, recording))
        return sid

    async def start_call(
        self,
        to: str,
        scenario: Any,
        *,
        caller_id: str | None,
        variables: Mapping[str, object],
        timeout: float,
    ) -> str:
        raise ValueError("this fake server places no calls (see test_callflow_fakes)")


def scenario_text(actions: str, *, header: str = "", branch: str = "inbound-call") -> str:
    """A scenario whose ``branch`` has the given actions (YAML list text, any indent)."""
    body = textwrap.indent(textwrap.dedent(actions).strip("\n"), "      ")
    return f"{textwrap.dedent(header)}branches:\n  {branch}:\n    actions:\n{body}\n"


async def run_actions(
    actions: str,
    *,
    keys: str = "",
    keys_at: float = 0.0,
    key_gap: float = 0.0,
    header: str = "",
    call: FakeCall | None = None,
    prompts: FakePrompts | None = None,
    variables: dict[str, Any] | None = None,
    max_actions: int = 10_000,
    server: FakeServer | None = None,
) -> tuple[RunOutcome, FakeCall, Run]:
    """Load a one-branch scenario around ``actions`` and run it against a fake call
    (and a fake server, when given)."""
    scenario = load_scenario_text(scenario_text(actions, header=header), "test.yaml")
    prompts = prompts or (call.prompts if call else FakePrompts())
    call = call or FakeCall(prompts)
    if keys:
        call.press(keys, keys_at, key_gap)
    run = Run(
        scenario,
        "inbound-call",
        call=call,
        prompts=prompts,
        run_id="run-test",
        variables=variables,
        max_actions=max_actions,
        server=server,
    )
    outcome = await run.execute()
    return outcome, call, run


# -- tests of the fakes themselves -----------------------------------------------------------


async def test_fake_play_is_stopped_by_a_key_that_stays_buffered() -> None:
    prompts = FakePrompts()
    call = FakeCall(prompts).press("5", at=0.5)
    audio = prompts.tone("beep")
    assert await call.play(audio, stop_keys="5") == "5"
    assert call.now == pytest.approx(0.5)
    assert await call.next_digit(0) == "5"


async def test_fake_next_digit_times_out_on_the_virtual_clock() -> None:
    call = FakeCall(FakePrompts()).press("1", at=10)
    assert await call.next_digit(3) is None
    assert call.now == pytest.approx(3)
    assert await call.next_digit(10) == "1"
    assert call.now == pytest.approx(10)


async def test_fake_hangup_raises_call_ended() -> None:
    call = FakeCall(FakePrompts(), hangup_at=2)
    with pytest.raises(CallEnded):
        await call.next_digit(5)
    assert call.ended
