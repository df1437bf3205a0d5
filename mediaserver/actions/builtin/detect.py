"""``detect@v1``: answering-machine detection from the speech/silence pattern.

Who answered an outbound call can be told, most of the time, by how the
first seconds sound: a person says a short "Hello?" and waits for an answer;
a machine plays a greeting of several seconds ("Hi, you have reached...");
nobody says anything when the line is dead or the person waits for us.

The call measures the level of each 20 ms frame the other side sends
(:meth:`CallApi.listen_levels`, decoded audio, dBFS) and feeds it to a
:class:`GreetingClassifier` until it decides or ``timeout`` passes:

- a frame at or above :data:`SPEECH_DBFS` is *voice*, anything quieter is
  silence; voice counts as the start of speech after :data:`MIN_SPEECH`
  seconds in a row, so clicks and line noise do not;
- ``machine`` as soon as the speech, from its start to its latest voice,
  lasts more than :data:`MACHINE_SPEECH` seconds (pauses shorter than
  :data:`END_SILENCE` do not end it: a greeting has pauses between phrases);
- ``human`` when speech of at most that length is followed by
  :data:`END_SILENCE` seconds of silence;
- ``unknown`` when ``timeout`` passes first: no speech at all, or speech
  still going on without having been long enough for a machine.

The thresholds are the defaults of widely used detectors: Twilio's AMD
(``MachineDetectionSpeechThreshold`` 2400 ms of speech for a machine,
``MachineDetectionSpeechEndThreshold`` 1200 ms of silence to end the speech)
and Asterisk's ``app_amd`` (``min_word_length`` 100 ms of voice; its
``silence_threshold`` of 256, an average amplitude of 256/32768, is about
-42 dBFS). Detection starts when the action runs, so it belongs right after
the answer: the first seconds are what tells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType

Verdict = Literal["human", "machine", "unknown"]

FRAME_SECONDS = 0.020
SPEECH_DBFS = -42.0
MIN_SPEECH = 0.100
MACHINE_SPEECH = 2.4
END_SILENCE = 1.2
_EPSILON = FRAME_SECONDS / 2  # sums of 0.02 are not exact in binary


class GreetingClassifier:
    """Classifies the first seconds of a call from frame levels; pure (module docstring)."""

    def __init__(
        self,
        *,
        speech_dbfs: float = SPEECH_DBFS,
        min_speech: float = MIN_SPEECH,
        machine_speech: float = MACHINE_SPEECH,
        end_silence: float = END_SILENCE,
        frame_seconds: float = FRAME_SECONDS,
    ) -> None:
        self.speech_dbfs = speech_dbfs
        self.min_speech = min_speech
        self.machine_speech = machine_speech
        self.end_silence = end_silence
        self.frame_seconds = frame_seconds
        self.elapsed = 0.0
        self.speech_started: float | None = None  # seconds from the start
        self.verdict: Verdict | None = None
        self._voiced = 0.0  # voice in a row before speech started
        self._quiet = 0.0  # silence in a row

    @property
    def speech_seconds(self) -> float:
        """From the start of speech to its latest voice (0 before any speech)."""
        if self.speech_started is None:
            return 0.0
        return max(0.0, self.elapsed - self._quiet - self.speech_started)

    def feed(self, level_dbfs: float) -> bool:
        """Take one frame's level; True once decided (:attr:`verdict` is set)."""
        if self.verdict is not None:
            return True
        self.elapsed += self.frame_seconds
        if level_dbfs >= self.speech_dbfs:
            self._quiet = 0.0
            self._voiced += self.frame_seconds
            if self.speech_started is None and self._voiced >= self.min_speech - _EPSILON:
                self.speech_started = self.elapsed - self._voiced
        else:
            self._quiet += self.frame_seconds
            self._voiced = 0.0
        if self.speech_started is not None:
            if self.speech_seconds > self.machine_speech + _EPSILON:
                self.verdict = "machine"
            elif self._quiet >= self.end_silence - _EPSILON:
                self.verdict = "human"
        return self.verdict is not None

    def result(self) -> Verdict:
        """The verdict, ``unknown`` when undecided (the timeout came first)."""
        return self.verdict or "unknown"


async def detect(context: ActionContext, params: Mapping[str, Any]) -> str:
    classifier = GreetingClassifier()
    await context.call.listen_levels(params["timeout"], classifier.feed)
    verdict = classifier.result()
    context.log.info(
        "answering machine detection",
        result=verdict,
        speech=round(classifier.speech_seconds, 2),
        listened=round(classifier.elapsed, 2),
    )
    return verdict


DETECT = ActionDefinition(
    name="detect",
    version=1,
    summary="Tell a person from an answering machine by the speech/silence pattern of the "
    "first seconds.",
    params=(
        Param(
            "timeout",
            ParamType.SECONDS,
            "seconds to listen at most before answering unknown",
            default=4.0,
            minimum=1,
            maximum=30,
        ),
    ),
    run=detect,
    result="human, machine or unknown",
)

ACTIONS = (DETECT,)
