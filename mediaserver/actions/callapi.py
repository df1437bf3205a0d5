"""What an action may ask of a call.

Actions never touch SIP or RTP directly: they drive a call through this
small interface, which :class:`mediaserver.calls.Call` implements and which
unit tests replace with a fake. Every coroutine raises :class:`CallEnded`
once the call is gone (the caller hung up, or the call was torn down), so a
run stops at the first action that needs the call.

Audio is always 16-bit signed mono PCM at 8 kHz in a NumPy array (``Pcm``);
:mod:`mediaserver.media.sources` produces it from files, tones and speech.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.actions.vms_detect import VmsDetect, VmsVerdict
from mediaserver.media.pcm import SAMPLE_RATE, AudioError, Pcm

if TYPE_CHECKING:
    from mediaserver.actions.model import Scenario

__all__ = [
    "DTMF_KEYS",
    "SAMPLE_RATE",
    "AudioError",
    "CallApi",
    "CallEnded",
    "ConferenceOptions",
    "ConferenceResult",
    "DialError",
    "DialOptions",
    "DialResult",
    "MediaError",
    "Pcm",
    "PromptAudio",
    "RecordOptions",
    "RecordingResult",
    "VoicemailOptions",
]

DTMF_KEYS = "0123456789*#ABCD"


class CallEnded(Exception):
    """The call is gone; whatever the run was doing with it cannot go on."""


class DialError(Exception):
    """The dial could not be attempted at all (the message says why)."""


class MediaError(Exception):
    """A media request the call cannot honour now (no recording to stop, no
    recordings folder, keys that are not DTMF...); the message says why."""


@dataclass(frozen=True)
class DialOptions:
    timeout: float = 30.0
    caller_id: str | None = None
    ringback: str = "tone"
    max_duration: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    record: bool = False  # record the bridged call: caller left, callee right
    wait: bool = True  # False: dial in the background (stop_dial ends it); result "started"
    vms_detect: VmsDetect | None = None  # Callr's voicemail detection on the callee
    vms_media: Pcm | None = None  # its prompt, decoded


@dataclass(frozen=True)
class DialResult:
    """What ``$dial`` holds after dial@v1."""

    status: str  # answered, busy, no-answer, failed, canceled; started (wait: false)
    duration: float  # seconds the bridge lasted
    target: str | None  # who answered, or the last target tried
    sip_status: int | None = None
    recording: RecordingResult | None = None  # with DialOptions.record, once answered
    detection: VmsVerdict | None = None  # with DialOptions.vms_detect, once answered

    def as_variable(self) -> dict[str, object]:
        value: dict[str, object] = {
            "status": self.status,
            "duration": round(self.duration, 3),
            "target": self.target,
        }
        if self.detection is not None:
            value["detection"] = self.detection.as_variable()
        return value


@dataclass(frozen=True)
class RecordingResult:
    """What ``$recording`` holds: a recording's id, file and length (seconds;
    None while it is still being written)."""

    id: str
    path: str
    duration: float | None = None

    def as_variable(self) -> dict[str, object]:
        duration = None if self.duration is None else round(self.duration, 3)
        return {"id": self.id, "path": self.path, "duration": duration}


@dataclass(frozen=True)
class RecordOptions:
    """``record@v1 start``: ``mono`` (both sides mixed) or ``dual`` (caller left,
    other party right); ``wav``, ``flac`` or ``ogg``."""

    channels: str = "mono"
    format: str = "wav"


@dataclass(frozen=True)
class VoicemailOptions:
    max_length: float = 60.0
    silence_timeout: float = 5.0
    finish_on_key: str | None = "#"  # keys that end the message (any of them); None: none


@dataclass(frozen=True)
class ConferenceResult:
    """How a stay in a conference ended, and the room's recording if this call
    started it (``duration`` None while the room goes on without the caller)."""

    outcome: str  # key, ended, full, left or hangup
    recording: RecordingResult | None = None


@dataclass(frozen=True)
class ConferenceOptions:
    """``conference@v1``; ``hold_audio`` already rendered (None: silence)."""

    name: str
    muted: bool = False
    moderator: bool = False
    wait_for_moderator: bool = False
    end_on_exit: bool = False
    beep: str = "both"  # enter, exit, both or none
    hold_audio: Pcm | None = None
    max_participants: int | None = None
    exit_on_key: str | None = None  # a key combination, pressed in order ("#0")
    mute_on_key: str | None = None  # toggles unless unmute_on_key differs
    unmute_on_key: str | None = None
    record: bool = False
    hold_on_exit: bool = False  # leaving puts everyone else on hold until a moderator joins
    send_dtmf: bool = False  # keys pressed are passed on to the members who receive_dtmf
    receive_dtmf: bool = False


@dataclass(frozen=True)
class ConferenceEntry:
    """What a caller joining a room now would find: how many are in it, and
    whether the caller would wait on hold (for a moderator, or a room on hold)."""

    participants: int
    waiting: bool


class CallApi(Protocol):
    """The call as actions see it."""

    @property
    def info(self) -> dict[str, Any]:
        """The read-only ``$call`` variable: id, from, to, direction, sip_call_id,
        started_at, answered_at (epoch ms or None) and headers."""
        ...

    @property
    def answered(self) -> bool: ...

    @property
    def ended(self) -> bool: ...

    def set_customer_field(self, value: str | None) -> None:
        """The ``customer_field`` the call's record gets (actions/cdr_field.py)."""

    async def ring(self) -> None:
        """Send 180 Ringing (no effect once answered)."""

    async def progress(self) -> None:
        """Send 183 Session Progress with SDP: media flows before the answer."""

    async def answer(self) -> None:
        """Answer (200 OK with SDP); no effect if already answered."""

    async def reject(self, reason: str) -> None:
        """Refuse an unanswered call: ``busy`` (486), ``declined`` (603),
        ``unavailable`` (480) or ``not_found`` (404). Ends the call."""

    async def hangup(self, reason: str = "normal_clearing") -> None:
        """End the call: BYE when answered, a final error response otherwise.
        Idempotent; never raises CallEnded."""

    async def play(self, audio: Pcm, stop_keys: str = "") -> str | None:
        """Play audio to the caller (answering first if needed) and return when
        it has been sent, or as soon as one of ``stop_keys`` is pressed. The key
        that stopped playback is returned and stays buffered for the next
        :meth:`next_digit`; ``None`` when playback ran to its end."""

    async def echo(self, seconds: float | None) -> None:
        """Send the caller's own audio back (answering first if needed), for
        ``seconds`` or until the call ends when ``None``."""

    async def next_digit(self, timeout: float | None) -> str | None:
        """The oldest buffered DTMF key, waiting up to ``timeout`` seconds
        (forever when None) for one to arrive; ``None`` on timeout."""

    def flush_digits(self) -> None:
        """Forget buffered DTMF keys."""

    async def transfer(self, target: str, mode: str | None) -> str:
        """Hand the call to ``target``: ``refer`` (SIP REFER: the peer calls the
        target itself), ``bridge`` (we call the target and join the two), or None
        for refer when the peer allows it and the target is a SIP URI, else bridge.
        ``transferred`` (the call is then over for us) or ``failed``."""
        ...

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
        """Wait in a call queue until an agent takes the call (``bridged``, once that
        bridge ends), it is released (``released``) or ``max_wait`` passes
        (``timeout``); ``full`` at once when ``max_calls`` wait already. Without
        ``wait``, join the line and return at once (``queued``)."""
        ...

    def release_next(self, queue: str) -> str:
        """Let the longest-waiting caller out of ``queue`` without bridging it
        (``released``), or ``empty``."""
        ...

    def queue_size(self, queue: str) -> int:
        """How many callers wait in ``queue`` now (0 when there is no such queue)."""
        ...

    def leave_queue(self, queue: str) -> str:
        """Take this call out of ``queue``'s line: ``removed``, or ``absent``."""
        ...

    async def bridge_next(
        self, queue: str, on_taken: Callable[[dict[str, Any]], None] | None = None
    ) -> str:
        """Take the caller who has waited longest in ``queue`` and join them to this
        call: ``bridged`` when that bridge ends, ``empty`` when nobody waits.
        ``on_taken`` gets that caller's ``info`` as soon as it is taken."""
        ...

    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        """Ring ``targets`` at once and bridge the call to the first that answers;
        return when the bridge ends (or nobody answered). Raises DialError when
        dialling is not allowed for this call."""
        ...

    async def stop_dial(self) -> bool:
        """Hang up the call(s) of a dial started with ``wait: false`` (ringing or
        bridged); False when none is under way."""
        ...

    # -- decoded media: keys out, recordings, conferences, background audio --------

    async def send_dtmf(self, keys: str, duration: float) -> None:
        """Send DTMF ``keys`` (``w``/``W``: 0.5 s / 1 s pauses), each lasting
        ``duration`` seconds: RFC 4733 events when the peer negotiated
        telephone-event, in-band tones otherwise. Returns when all are sent."""

    async def start_recording(self, options: RecordOptions) -> RecordingResult:
        """Start recording the call (MediaError if one is running already)."""
        ...

    async def stop_recording(self) -> RecordingResult:
        """Stop the call's recording and return it finished (MediaError if none)."""
        ...

    async def pause_recording(self, paused: bool) -> RecordingResult:
        """Pause (True) or resume (False) the call's recording (MediaError if none)."""
        ...

    async def voicemail(self, options: VoicemailOptions) -> RecordingResult:
        """Record a message from the caller until silence, the finish key,
        ``max_length`` or a hang-up; return it finished (even after a hang-up)."""
        ...

    async def discard_recording(self, recording_id: str) -> bool:
        """Delete a message this call recorded with :meth:`voicemail`: its file and its
        index (the Voxology RECORDMESSAGE ``discard``); False if the call made none
        by that id."""
        ...

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        """Join a conference until the caller leaves; how it ended: ``key``,
        ``ended``, ``full``, ``left`` or ``hangup``."""
        ...

    def conference_entry(
        self, name: str, *, moderator: bool, wait_for_moderator: bool
    ) -> ConferenceEntry:
        """The room ``name`` as a caller joining it now with these roles would
        find it (0 participants when there is no such room)."""
        ...

    async def play_background(self, audio: Pcm, repeat: int) -> None:
        """Start playing ``audio`` ``repeat`` times and return at once; it goes
        on during the next actions until it ends, stop_audio, or another prompt."""

    def stop_audio(self) -> bool:
        """Stop what plays in the background; False when nothing did."""
        ...

    async def listen_levels(self, seconds: float, listener: Callable[[float], bool]) -> None:
        """Feed ``listener`` the level (dBFS, -inf for digital silence) of each 20 ms
        frame the caller sends from now on (answering first if needed), until it
        returns True or ``seconds`` pass (detect@v1)."""

    async def listen_frames(self, seconds: float, listener: Callable[[Pcm], bool]) -> None:
        """Feed ``listener`` each decoded 20 ms frame the caller sends from now on
        (answering first if needed), until it returns True or ``seconds`` pass
        (answering-machine detection). The frame is shared: read it, never change it."""

    def fork_start(
        self,
        *,
        rx: str | None = None,
        tx: str | None = None,
        target: str | None = None,
        stream_type: str = "raw",
    ) -> bool:
        """Copy the call's RTP as it flows: what the peer sends to ``rx``, what it
        receives to ``tx``, or both to ``target`` behind a STREP header
        (:mod:`mediaserver.media.fork`); True when it replaced a running fork.
        ``ForkError`` (a ValueError) names the field of a bad destination."""
        ...

    def fork_stop(self) -> None:
        """Stop forking (MediaError when the call is not forking)."""


class PromptAudio(Protocol):
    """Where actions get audio from: speech, files and named tones.

    Implementations raise :class:`AudioError` (or a subclass) with a message
    that names the file, language or tone at fault.
    """

    async def speech(
        self, text: str, *, language: str, voice: str, rate: float | None = None
    ) -> Pcm:
        """Synthesised speech for ``text``."""
        ...

    async def file(self, location: str) -> Pcm:
        """A sound file; relative paths resolve against the scenarios folder."""
        ...

    def tone(self, name: str) -> Pcm:
        """A named tone: ``beep``, ``ringback``, ``busy`` or ``dial``."""
        ...


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch@v1`` got back: the status and the body (parsed when JSON)."""

    status: int
    body: object
    headers: Mapping[str, str] = field(default_factory=dict)


class FetchError(Exception):
    """The request could not be made or answered (timeout, refused, bad URL)."""


class MailUnavailable(Exception):
    """The server has no ``smtp:`` section: it cannot send e-mail."""


class ServerApi(Protocol):
    """What actions may ask of the server itself, with or without a call."""

    def send_mail(self, message: EmailMessage, what: str) -> None:
        """Queue an e-mail to the configured SMTP server (never waits for it);
        MailUnavailable without one. ``what`` names it in the log."""

    async def fetch(
        self,
        url: str,
        *,
        method: str,
        headers: Mapping[str, str],
        body: object,
        timeout: float,
    ) -> FetchResult:
        """An HTTP request; FetchError when it cannot be made or times out."""
        ...

    def webhook(self, url: str | None, event: str, data: Mapping[str, object]) -> None:
        """Post an event to ``url``, or to the configured webhooks when None
        (queued: never waits for the receiver)."""

    async def send_message(self, to: str, text: str, *, sender: str | None) -> int | None:
        """Send a SIP MESSAGE (RFC 3428); the final SIP status, None without one."""
        ...

    def compile_scenario(self, data: Any, filename: str) -> Scenario:
        """The server's scenario compiler (a :data:`~mediaserver.actions.model.ScenarioCompiler`):
        ``data`` checked against every action the server knows; ProblemsError naming
        each mistake. The Call Flow Loop translates its JSON actions through it."""
        ...

    def audio_file_for_code(self, code: str) -> str | None:
        """The audio file a live recording code was given for (``POST
        /api/audio-files/{sid}/phone``); None when it is wrong, used or expired."""
        ...

    async def record_audio_file(self, code: str, recording: str) -> str:
        """Use the recording code up and make the file at ``recording`` its audio
        file's new content; the sid. ValueError saying why not."""
        ...

    def route_of(self, number: str) -> str | None:
        """Where a call to ``number`` would go: the route target the attached numbers
        or the config's ``routes`` give it (``callflow:URL``, a scenario name...), None
        when nothing routes it (the Voxology DIAL's ``override_callback_config``)."""
        ...

    async def start_call(
        self,
        to: str,
        scenario: Scenario,
        *,
        caller_id: str | None,
        variables: Mapping[str, object],
        timeout: float,
    ) -> str:
        """Call ``to`` (ringing up to ``timeout`` seconds) and run ``scenario``'s
        ``api-initiated`` branch with ``variables``, once answered or, ``$dial``
        telling why, without the call; returns the run id at once. ValueError when
        ``to`` cannot be called (the Voxology DIAL action)."""
        ...
