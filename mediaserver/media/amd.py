"""Answering-machine detection: who answered, and when a machine's greeting ends; pure.

Theory of operation
-------------------
:class:`AnsweringMachineDetector` is fed the decoded audio the other side sends, one
20 ms frame at a time (8 kHz int16, what :meth:`RtpLeg.received_frame` yields), and
keeps its own time: the seconds of audio it was fed (so its rules are exact, and a
media clock that skips ticks when the loop lags shifts nothing but the wall time).
It reports two results, each once:

1. the **detection**: ``human``, ``machine`` or ``not_sure``, from the pattern of
   speech and silence in the first seconds;
2. after a ``machine`` detection, the **greeting end**: ``beep_detected`` when the
   machine's "leave a message after the tone" beep has sounded, ``ended`` when the
   greeting falls silent, ``not_sure`` when neither came in time.

Every threshold is a field of :class:`AmdConfig`, named and defaulted as Telnyx's
``answering_machine_detection_config`` (the Call Control seed), whose knobs are those
of Asterisk's ``app_amd``.

Speech and silence. A frame is *silent* when its average absolute amplitude is under
``silence_threshold`` (256 of 32768, about -42 dBFS for speech), as ``app_amd``
measures it; anything else is *voice*. Voice becomes a *word* once it lasts
:data:`MIN_WORD_LENGTH_MS` in a row (``app_amd``'s ``min_word_length``), so clicks are
not words; a word ends at ``between_words_silence_millis`` of silence. The *greeting*
starts with the first word, and its length is the voice heard since then.

The detection, checked on every frame in this order:

- ``machine`` when the line is silent for ``initial_silence_millis`` before any word (a
  machine that starts late; ``None`` disables the rule);
- ``human`` when, once the greeting started, ``after_greeting_silence_millis`` of silence
  follow (a person says "Hello?" and waits);
- ``machine`` when a word lasts longer than ``maximum_word_length_millis``, when there
  are more than ``maximum_number_of_words`` words, when the greeting is longer than
  ``greeting_duration_millis``, or when a beep is heard (below);
- ``not_sure`` when ``total_analysis_time_millis`` of audio passed first.

The greeting end, after a ``machine`` detection, on the audio that follows it:

- ``beep_detected`` when a beep ends (so what is said next goes onto the message);
- ``ended`` after ``greeting_silence_duration_millis`` of silence;
- ``not_sure`` when ``greeting_total_analysis_time_millis`` passed since the detection.

The beep. Voicemail beeps are a steady single tone, mostly between 400 and 2000 Hz
(1000 Hz, 1400 Hz and 440/850/950 Hz are common; this server's own ``beep`` is
1000 Hz). Each frame goes through a bank of single-frequency DFT terms (what a
Goertzel filter computes), one every :data:`BEEP_STEP_HZ` from :data:`BEEP_LOW_HZ` to
:data:`BEEP_HIGH_HZ`, under a Hann window: a tone anywhere in the band is within half
a step of a filter, whose measure of it is then at most 0.5 dB low. A frame *holds a
tone* when it is not silent (a beep under the silence threshold is not heard) and the
strongest filter's tone carries at least :data:`TONE_DOMINANCE` of the frame's power: a
pure tone anywhere in the band, at any phase, gives 0.9 or more; a voice spreads its
power over a harmonic series. A beep is :data:`BEEP_FRAMES` such frames in a row whose
strongest filter stays within one step of where it started: a voice glides in pitch,
a beep does not. Frames the tone covers for the most part count (the window
weighs a frame's middle most), so wherever it falls, a tone of 150 ms or more is a beep
and one of 128 ms or less never is (``tests/unit/test_amd.py``). A beep that starts
before the detection is decided decides it (``machine``).

Cost: a silent frame is one average; a frame with voice adds one real matrix product
(160 samples by the bank's 130 cosine and sine terms), about 15 microseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from mediaserver.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm

DetectionResult = Literal["human", "machine", "not_sure"]
GreetingResult = Literal["beep_detected", "ended", "not_sure"]
Reason = Literal[
    "initial_silence",
    "after_greeting_silence",
    "maximum_word_length",
    "maximum_number_of_words",
    "greeting_duration",
    "beep",
    "total_analysis_time",
]

MIN_WORD_LENGTH_MS = 100
"""Voice in a row that makes a word (``app_amd``'s ``min_word_length``; not a seed knob)."""

BEEP_LOW_HZ = 400.0
BEEP_HIGH_HZ = 2000.0
BEEP_STEP_HZ = 25.0
TONE_DOMINANCE = 0.8
"""Share of a frame's power the strongest filter's tone must carry."""
BEEP_FRAMES = 7
"""Frames (20 ms) in a row holding the same tone that make a beep (140 ms)."""

_F64: TypeAlias = npt.NDArray[np.float64]

_BANK_HZ: _F64 = np.arange(BEEP_LOW_HZ, BEEP_HIGH_HZ + BEEP_STEP_HZ / 2, BEEP_STEP_HZ)
_HANN: _F64 = np.hanning(FRAME_SAMPLES + 2)[1:-1]  # no zero end points: every sample counts
# One DFT term per filter, its real and imaginary parts side by side: frame @ basis gives
# them all at once (a real product: many times faster than a complex one).
_PHASE = 2 * np.pi * np.arange(FRAME_SAMPLES)[:, None] * _BANK_HZ[None, :] / SAMPLE_RATE
_BASIS: _F64 = np.ascontiguousarray(
    np.concatenate([_HANN[:, None] * np.cos(_PHASE), _HANN[:, None] * np.sin(_PHASE)], axis=1)
)
# A sine of amplitude A at a filter's frequency gives |term| = A * sum(window) / 2.
_AMPLITUDE_SCALE = 2.0 / float(_HANN.sum())


@dataclass(frozen=True)
class AmdConfig:
    """The thresholds, in milliseconds unless named otherwise: the fields, names and
    defaults of the seed's ``answering_machine_detection_config``, so that a request's
    object unpacks into one (``AmdConfig(**config)``)."""

    after_greeting_silence_millis: int = 800
    between_words_silence_millis: int = 50
    greeting_duration_millis: int = 3500
    greeting_silence_duration_millis: int = 1500
    greeting_total_analysis_time_millis: int = 5000
    initial_silence_millis: int | None = 3500
    maximum_number_of_words: int = 5
    maximum_word_length_millis: int = 3500
    silence_threshold: int = 256
    """Average absolute amplitude (of 32768) under which a frame is silent."""
    total_analysis_time_millis: int = 3500

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name == "initial_silence_millis":
                continue  # no initial-silence rule
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{field.name}: expected a whole number, 0 or more, got {value!r}")


def config_from(
    fields: Mapping[str, Any], where: str = "answering_machine_detection_config"
) -> AmdConfig:
    """An :class:`AmdConfig` from a request's object (the seed's field names; the rest
    default); ValueError naming ``where`` and the field for an unknown or bad one."""
    known = {field.name for field in dataclasses.fields(AmdConfig)}
    for name in fields:
        if name not in known:
            raise ValueError(f"{where}: unknown field {name!r}; known: {', '.join(sorted(known))}")
    try:
        return AmdConfig(**fields)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None


@dataclass(frozen=True)
class Detection:
    """Who answered, why, and after how many seconds of audio."""

    result: DetectionResult
    reason: Reason
    at: float
    words: int
    greeting_seconds: float


@dataclass(frozen=True)
class GreetingEnd:
    """How a machine's greeting ended, after how many seconds of audio, and the beep's pitch."""

    result: GreetingResult
    at: float
    beep_hz: float | None = None


AmdEvent: TypeAlias = Detection | GreetingEnd


def is_silent(frame: Pcm, threshold: int) -> bool:
    """``app_amd``'s test: the average absolute amplitude is under ``threshold``."""
    if not len(frame):
        return True
    return float(np.abs(frame.astype(np.int32)).mean()) < threshold


def frame_tone(frame: Pcm) -> tuple[int, float] | None:
    """The strongest filter of the beep bank (its index) and the share of the frame's
    power its tone carries; None for a frame of another size or digital silence."""
    if len(frame) != FRAME_SAMPLES:
        return None
    samples = frame.astype(np.float64)
    power = float(np.dot(samples, samples)) / FRAME_SAMPLES
    if power <= 0.0:
        return None
    terms = samples @ _BASIS
    count = len(_BANK_HZ)
    squared = terms[:count] ** 2 + terms[count:] ** 2
    best = int(np.argmax(squared))
    amplitude_squared = float(squared[best]) * _AMPLITUDE_SCALE**2
    return best, (amplitude_squared / 2.0) / power


def bank_hz(index: int) -> float:
    """The frequency of filter ``index`` of the beep bank."""
    return float(_BANK_HZ[index])


class BeepTracker:
    """Finds beeps: :data:`BEEP_FRAMES` frames in a row holding the same tone; pure."""

    def __init__(self) -> None:
        self.filter: int | None = None  # where the current run of tone frames started
        self.frames = 0

    @property
    def sounding(self) -> bool:
        """A beep is sounding now (long enough, not ended yet)."""
        return self.frames >= BEEP_FRAMES

    @property
    def hz(self) -> float | None:
        """The frequency of the tone being tracked, if any."""
        return None if self.filter is None else bank_hz(self.filter)

    def feed(self, tone: tuple[int, float] | None) -> float | None:
        """Take one frame's :func:`frame_tone` (None when silent); the beep's
        frequency when a beep ended with the frame before this one."""
        held = tone[0] if tone is not None and tone[1] >= TONE_DOMINANCE else None
        if held is not None and self.filter is not None and abs(held - self.filter) <= 1:
            self.frames += 1
            return None
        ended = self.hz if self.sounding else None
        self.filter, self.frames = held, (0 if held is None else 1)
        return ended


class AnsweringMachineDetector:
    """The detection, then a machine's greeting end, from 20 ms frames (module docstring)."""

    def __init__(self, config: AmdConfig | None = None, *, follow_greeting: bool = True) -> None:
        self.config = config or AmdConfig()
        self.follow_greeting = follow_greeting
        self.heard = 0.0  # seconds of audio fed
        self.detection: Detection | None = None
        self.greeting: GreetingEnd | None = None
        self.words = 0
        self.greeting_seconds = 0.0  # voice since the first word
        self._in_greeting = False
        self._in_word = False
        self._voice_run = 0.0
        self._silence_run = 0.0
        self._beep = BeepTracker()

    @property
    def finished(self) -> bool:
        """Nothing more to report: decided, and the greeting end found or not wanted."""
        if self.detection is None:
            return False
        if self.detection.result != "machine" or not self.follow_greeting:
            return True
        return self.greeting is not None

    def feed(self, frame: Pcm) -> list[AmdEvent]:
        """Take one frame; the results it brought (none, or one, or the detection and
        the greeting end at once)."""
        if self.finished:
            return []
        seconds = len(frame) / SAMPLE_RATE
        self.heard += seconds
        silent = is_silent(frame, self.config.silence_threshold)
        beep_ended = self._beep.feed(None if silent else frame_tone(frame))
        self._count(silent, seconds)
        events: list[AmdEvent] = []
        if self.detection is None:
            detection = self._detect()
            if detection is None:
                return events
            self.detection = detection
            events.append(detection)
            self._silence_run = 0.0  # the greeting's end is silence heard after the detection
            if self.finished:
                return events
        greeting = self._greeting_end(beep_ended)
        if greeting is not None:
            self.greeting = greeting
            events.append(greeting)
        return events

    def expire(self) -> list[AmdEvent]:
        """The listening stopped before a result (the caller's own time limit):
        ``not_sure`` for whatever is still pending."""
        events: list[AmdEvent] = []
        if self.detection is None:
            self.detection = self._decided("not_sure", "total_analysis_time")
            events.append(self.detection)
        if not self.finished:
            self.greeting = GreetingEnd("not_sure", round(self.heard, 3))
            events.append(self.greeting)
        return events

    # -- the detection ----------------------------------------------------------------

    def _count(self, silent: bool, seconds: float) -> None:
        if silent:
            self._silence_run += seconds
            self._voice_run = 0.0
            if _reached(self._silence_run, self.config.between_words_silence_millis):
                self._in_word = False
            return
        self._silence_run = 0.0
        self._voice_run += seconds
        if self._in_greeting:
            self.greeting_seconds += seconds
        if not self._in_word and _reached(self._voice_run, MIN_WORD_LENGTH_MS):
            self._in_word = True
            self.words += 1
            if not self._in_greeting:
                self._in_greeting = True
                self.greeting_seconds = self._voice_run  # the first word counts whole

    def _detect(self) -> Detection | None:
        config = self.config
        if not self._in_greeting:
            initial = config.initial_silence_millis
            if initial is not None and _reached(self._silence_run, initial):
                return self._decided("machine", "initial_silence")
        elif _reached(self._silence_run, config.after_greeting_silence_millis):
            return self._decided("human", "after_greeting_silence")
        if _beyond(self._voice_run, config.maximum_word_length_millis):
            return self._decided("machine", "maximum_word_length")
        if self.words > config.maximum_number_of_words:
            return self._decided("machine", "maximum_number_of_words")
        if _beyond(self.greeting_seconds, config.greeting_duration_millis):
            return self._decided("machine", "greeting_duration")
        if self._beep.sounding:
            return self._decided("machine", "beep")
        if _reached(self.heard, config.total_analysis_time_millis):
            return self._decided("not_sure", "total_analysis_time")
        return None

    def _decided(self, result: DetectionResult, reason: Reason) -> Detection:
        return Detection(
            result, reason, round(self.heard, 3), self.words, round(self.greeting_seconds, 3)
        )

    # -- the greeting end ----------------------------------------------------------------

    def _greeting_end(self, beep_ended: float | None) -> GreetingEnd | None:
        assert self.detection is not None
        at = round(self.heard, 3)
        if beep_ended is not None:
            return GreetingEnd("beep_detected", at, beep_ended)
        if _reached(self._silence_run, self.config.greeting_silence_duration_millis):
            return GreetingEnd("ended", at)
        since = self.heard - self.detection.at
        if _reached(since, self.config.greeting_total_analysis_time_millis):
            if self._beep.sounding:  # a tone that goes on and on: still a beep heard
                return GreetingEnd("beep_detected", at, self._beep.hz)
            return GreetingEnd("not_sure", at)
        return None


_EPSILON = 1e-6  # sums of 20 ms frames are not exact in binary


def _reached(seconds: float, milliseconds: int) -> bool:
    return seconds >= milliseconds / 1000.0 - _EPSILON


def _beyond(seconds: float, milliseconds: int) -> bool:
    return seconds > milliseconds / 1000.0 + _EPSILON
