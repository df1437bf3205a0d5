"""Answering-machine detection on a live call: the detector of :mod:`mediaserver.media.amd`
fed by :meth:`CallApi.listen_frames`, for ``detect@v1`` and Call Control alike.

Theory of operation: :class:`MachineDetection` listens in a task of its own from the
moment it is entered, so no frame goes unheard while its user does something with the
first result (posts ``call.machine.detection.ended``, runs a handler) before asking for
the second::

    async with MachineDetection(call, config, follow_greeting=True) as amd:
        detection = await amd.detection()        # human, machine or not_sure
        greeting = await amd.greeting_end()      # after a machine: beep_detected, ended,
                                                 # not_sure; None otherwise

Call Control's ``answering_machine_detection`` modes map onto it with
:func:`follows_greeting` and :func:`reports_greeting_end`; a request's
``answering_machine_detection_config`` becomes an :class:`AmdConfig` through
:func:`~mediaserver.media.amd.config_from`, which names a bad field.

The detector keeps time by the audio it hears; the listening also stops on the wall
clock, a little after both analysis times (:data:`SLACK_SECONDS`), in case frames stop
coming: whatever is still pending is then ``not_sure``. When the call ends, or the
listening fails, both awaits raise what stopped it (``CallEnded``...). Leaving the
``async with`` stops the listening.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType

from mediaserver.actions.callapi import CallApi, Pcm
from mediaserver.media.amd import (
    AmdConfig,
    AmdEvent,
    AnsweringMachineDetector,
    Detection,
    GreetingEnd,
)

CALL_CONTROL_MODES = ("detect", "detect_beep", "detect_words", "greeting_end", "premium")
"""The seed's ``answering_machine_detection`` values that run a detection (not ``disabled``)."""

DETECT_CONFIG = AmdConfig(
    greeting_duration_millis=2400,
    after_greeting_silence_millis=1200,
    initial_silence_millis=None,
)
"""The thresholds of ``detect@v1`` and the Voxology DETECT (a machine after 2.4 s of
speech, a person after 1.2 s of silence that follows speech, from Twilio's AMD
defaults; a silent line is not a machine); the analysis times are the action's."""

SLACK_SECONDS = 2.0
"""Wall-clock margin over the analysis times: the jitter buffer's delay, a late clock."""


class MachineDetection:
    """Answering-machine detection on ``call`` (module docstring)."""

    def __init__(
        self, call: CallApi, config: AmdConfig | None = None, *, follow_greeting: bool = False
    ) -> None:
        self.detector = AnsweringMachineDetector(config, follow_greeting=follow_greeting)
        self._call = call
        loop = asyncio.get_running_loop()
        self._detection: asyncio.Future[Detection] = loop.create_future()
        self._greeting: asyncio.Future[GreetingEnd | None] = loop.create_future()
        self._task: asyncio.Task[None] | None = None

    @property
    def time_limit(self) -> float:
        """Wall-clock seconds the listening may last at most."""
        config = self.detector.config
        seconds = config.total_analysis_time_millis / 1000
        if self.detector.follow_greeting:
            seconds += config.greeting_total_analysis_time_millis / 1000
        return seconds + SLACK_SECONDS

    async def __aenter__(self) -> MachineDetection:
        self._task = asyncio.get_running_loop().create_task(self._listen())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for future in (self._detection, self._greeting):
            if future.done() and not future.cancelled():
                future.exception()  # seen: an unread failure is not worth a warning
            else:
                future.cancel()

    async def detection(self) -> Detection:
        """Who answered: ``human``, ``machine`` or ``not_sure``."""
        return await asyncio.shield(self._detection)

    async def greeting_end(self) -> GreetingEnd | None:
        """How a machine's greeting ended; None for a person, an unsure detection, or
        when the greeting is not followed."""
        return await asyncio.shield(self._greeting)

    async def results(self) -> AsyncIterator[AmdEvent]:
        """The detection, then the greeting's end when there is one."""
        yield await self.detection()
        greeting = await self.greeting_end()
        if greeting is not None:
            yield greeting

    # -- the listening ------------------------------------------------------------------

    async def _listen(self) -> None:
        try:
            await self._call.listen_frames(self.time_limit, self._hear)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the call ended, the media failed: both results fail
            for future in (self._detection, self._greeting):
                if not future.done():
                    future.set_exception(exc)
            return
        self._deliver(self.detector.expire())

    def _hear(self, frame: Pcm) -> bool:
        self._deliver(self.detector.feed(frame))
        return self.detector.finished

    def _deliver(self, events: list[AmdEvent]) -> None:
        for event in events:
            if isinstance(event, Detection):
                self._detection.set_result(event)
            else:
                self._greeting.set_result(event)
        if self.detector.finished and not self._greeting.done():
            self._greeting.set_result(None)  # decided, and no greeting to follow


async def detect_machine(
    call: CallApi, config: AmdConfig | None = None, *, follow_greeting: bool = False
) -> tuple[Detection, GreetingEnd | None]:
    """Both results at once: the detection, and the greeting's end when followed."""
    async with MachineDetection(call, config, follow_greeting=follow_greeting) as amd:
        return await amd.detection(), await amd.greeting_end()


def follows_greeting(mode: str) -> bool:
    """Seed, ``answering_machine_detection``: after a machine, ``greeting_end`` and
    ``detect_words`` report the greeting's end (a beep or silence), ``detect_beep`` a
    beep; ``detect`` reports the detection alone. ``premium`` (a vendor's trained model,
    not here) runs as ``greeting_end``."""
    return mode in ("greeting_end", "detect_words", "detect_beep", "premium")


def reports_greeting_end(mode: str, greeting: GreetingEnd) -> bool:
    """Whether ``call.machine.greeting.ended`` is sent for ``greeting`` in ``mode``: the
    seed sends it for ``detect_beep`` "only if a beep is detected"."""
    return follows_greeting(mode) and (mode != "detect_beep" or greeting.result == "beep_detected")
