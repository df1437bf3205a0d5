"""The Call Control commands on a live call (seed 002 ``/calls/{id}/actions/*``).

Each command is checked whole before it changes anything (a bad field is a
422 naming it, nothing half-applied), then applied. Commands that take time
(speak, playback, gather, bridge) start in the background and answer at
once; their ``*.started``/``*.ended`` events tell the application how they
went. Speech and audio run as the native actions ``say@v1``, ``play@v1`` and
``gather@v1`` (the text and URLs handed in as run variables, so nothing the
application sends is ever interpolated as a template). A new speak or
playback replaces the one under way, as a new prompt does in a scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from mediaserver.actions.callapi import CallEnded, MediaError, RecordOptions
from mediaserver.actions.model import Scenario
from mediaserver.callcontrol.controlled import CommandRefused, ControlledCall
from mediaserver.callcontrol.service import CallControl, DialRequest, dial
from mediaserver.calls.transfer import refer
from mediaserver.log import get_logger
from mediaserver.sip.uac import TargetError
from mediaserver.yamlsource import ProblemsError

log = get_logger("callcontrol")

INFINITE_LOOP = 1000
"""``loop: "infinity"``: repeats (a playback_stop or a hang-up ends it first)."""


def _answered(cc: ControlledCall) -> None:
    if not cc.call.answered:
        raise CommandRefused(None, "the call is not answered yet: answer it first")


def _start(
    control: CallControl, cc: ControlledCall, slot: str, work: Callable[[], Awaitable[None]]
) -> None:
    """Run ``work`` in the background as the call's ``slot`` task, replacing the one
    under way in that slot."""
    previous: asyncio.Task[None] | None = getattr(cc, slot)
    if previous is not None and not previous.done():
        previous.cancel()

    async def guarded() -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await previous  # the old prompt stops before the new one starts
        try:
            await work()
        except CallEnded:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call control command failed", call_id=cc.call_control_id, slot=slot)

    task = asyncio.get_running_loop().create_task(guarded())
    setattr(cc, slot, task)
    control.keep(task)


def _item(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """A native action item, as a scenario branch lists it."""
    return {"action": f"{action}@v1", "params": params}


def _compile(control: CallControl, items: list[Any], label: str) -> Scenario:
    try:
        return control.runner.compile_items(items, label)
    except ProblemsError as exc:
        problem = exc.problems[0]
        raise CommandRefused(_param_field(problem.message), problem.message) from None


def _param_field(message: str) -> str | None:
    """The body field a native action's parameter error is about (best effort)."""
    for field in ("language", "voice", "valid_digits", "finish_on_key", "url"):
        if field in message:
            return {"url": "audio_url", "finish_on_key": "terminating_digit"}.get(field, field)
    return None


# -- answering and ending ---------------------------------------------------------------


async def answer(control: CallControl, cc: ControlledCall) -> None:
    if cc.direction != "incoming":
        raise CommandRefused(None, "only an incoming call can be answered")
    if cc.call.answered:
        raise CommandRefused(None, "the call is already answered")
    await cc.call.answer()
    control.post(cc, "call.answered", state="answered")


REJECT_CAUSES = {"CALL_REJECTED": "declined", "USER_BUSY": "busy"}


async def reject(control: CallControl, cc: ControlledCall, cause: str) -> None:
    if cc.direction != "incoming" or cc.call.answered:
        raise CommandRefused(None, "only an incoming call that is not answered can be rejected")
    await cc.call.reject(REJECT_CAUSES[cause])


async def hangup(control: CallControl, cc: ControlledCall) -> None:
    await cc.call.hangup("normal_clearing")


# -- speech and audio ------------------------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    text: str
    language: str | None
    voice: str | None


def speak(control: CallControl, cc: ControlledCall, speech: Speech) -> None:
    _answered(cc)
    params: dict[str, Any] = {"text": "${speak_text}"}
    if speech.language is not None:
        params["language"] = speech.language
    if speech.voice is not None:
        params["voice"] = speech.voice
    scenario = _compile(control, [_item("say", params)], "speak")

    async def work() -> None:
        control.post(cc, "call.speak.started")
        status = "completed"
        try:
            outcome = await control.runner.run_items(
                cc.call, scenario, "speak", {"$speak_text": speech.text}
            )
            if outcome.status == "hangup" or cc.call.ended:
                status = "call_hangup"
            elif outcome.status == "failed":
                status = "failed"  # not in the seed's enum: the speech could not be made
        finally:
            control.post(cc, "call.speak.ended", status=status)

    _start(control, cc, "media", work)


def playback_start(control: CallControl, cc: ControlledCall, url: str, loop: int) -> None:
    _answered(cc)
    scenario = _compile(
        control, [_item("play", {"url": "${audio_url}", "repeat": loop})], "playback"
    )

    async def work() -> None:
        control.post(cc, "call.playback.started", media_url=url, overlay=False)
        status = "valid"
        try:
            outcome = await control.runner.run_items(
                cc.call, scenario, "playback", {"$audio_url": url}
            )
            if outcome.status == "hangup" or cc.call.ended:
                status = "call_hangup"
            elif outcome.status == "failed":
                status = "invalid"
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            control.post(cc, "call.playback.ended", media_url=url, overlay=False, status=status)

    _start(control, cc, "media", work)


def playback_stop(control: CallControl, cc: ControlledCall) -> None:
    if cc.media is not None and not cc.media.done():
        cc.media.cancel()
    cc.call.stop_audio()


# -- digits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gather:
    prompt: list[dict[str, Any]]
    variables: dict[str, object]
    min_digits: int
    max_digits: int
    timeout: float
    inter_digit_timeout: float
    terminating_digit: str | None
    valid_digits: str | None
    attempts: int
    invalid_prompt: list[dict[str, Any]]


def gather(control: CallControl, cc: ControlledCall, spec: Gather) -> None:
    _answered(cc)
    params: dict[str, Any] = {
        "prompt": spec.prompt,
        "min_digits": spec.min_digits,
        "max_digits": spec.max_digits,
        "timeout": spec.timeout,
        "inter_digit_timeout": spec.inter_digit_timeout,
        "finish_on_key": spec.terminating_digit or "none",
        "attempts": spec.attempts,
    }
    if spec.valid_digits:
        params["valid_digits"] = spec.valid_digits
    if spec.invalid_prompt:
        params["invalid_prompt"] = spec.invalid_prompt
    scenario = _compile(control, [_item("gather", params)], "gather")
    # The keys pressed before the command belong to no gather (Telnyx starts afresh).
    cc.call.flush_digits()

    async def work() -> None:
        digits, status = "", "invalid"
        try:
            outcome = await control.runner.run_items(cc.call, scenario, "gather", spec.variables)
            digits = str(outcome.variables.get("$digits") or "")
            if outcome.status == "hangup" or cc.call.ended:
                status = "call_hangup"
            elif digits:
                status = "valid"
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            control.post(cc, "call.gather.ended", digits=digits, status=status)

    _start(control, cc, "gather", work)


def gather_stop(control: CallControl, cc: ControlledCall) -> None:
    if cc.gather is None or cc.gather.done():
        raise CommandRefused(None, "no gather is under way on this call")
    cc.gather.cancel()


async def send_dtmf(control: CallControl, cc: ControlledCall, digits: str, duration: float) -> None:
    _answered(cc)
    try:
        await cc.call.send_dtmf(digits, duration)
    except MediaError as exc:
        raise CommandRefused("digits", str(exc)) from None


# -- recording ----------------------------------------------------------------------------------


async def record_start(
    control: CallControl, cc: ControlledCall, channels: str, audio_format: str
) -> None:
    _answered(cc)
    try:
        await cc.call.start_recording(
            RecordOptions("dual" if channels == "dual" else "mono", audio_format)
        )
    except MediaError as exc:
        raise CommandRefused(None, str(exc)) from None
    cc.recording = channels


async def record_stop(control: CallControl, cc: ControlledCall, base_url: str) -> None:
    try:
        result = await cc.call.stop_recording()
    except MediaError as exc:
        raise CommandRefused(None, str(exc)) from None
    channels = cc.recording or "single"
    cc.recording = None
    url = f"{base_url.rstrip('/')}/api/recordings/{result.id}/file"
    fmt = result.path.rsplit(".", 1)[-1] if "." in result.path else "wav"
    control.post(
        cc,
        "call.recording.saved",
        channels=channels,
        recording_id=result.id,
        recording_urls={fmt: url},
        public_recording_urls={fmt: url},
        duration_secs=result.duration,
    )


async def record_pause(control: CallControl, cc: ControlledCall, paused: bool) -> None:
    try:
        await cc.call.pause_recording(paused)
    except MediaError as exc:
        raise CommandRefused(None, str(exc)) from None


# -- bridging ---------------------------------------------------------------------------------


def bridge(control: CallControl, a: ControlledCall, b: ControlledCall, park_after: bool) -> None:
    """Join two answered calls' media until one of them ends; the other is then hung
    up, unless ``park_after`` (the seed's ``park_after_unbridge: self``)."""
    if a is b:
        raise CommandRefused("call_control_id", "a call cannot be bridged to itself")
    for cc in (a, b):
        if not cc.call.answered:
            raise CommandRefused(
                "call_control_id" if cc is b else None,
                f"call {cc.call_control_id!r} is not answered yet",
            )
    for cc in (a, b):
        if cc.media is not None and not cc.media.done():
            cc.media.cancel()
        cc.call.stop_audio()
    a.call.leg.relay_to(b.call.leg)
    b.call.leg.relay_to(a.call.leg)
    control.post(a, "call.bridged", state="bridged")
    control.post(b, "call.bridged", state="bridged")

    async def joined() -> None:
        try:
            await asyncio.wait(
                [a.call.ended_future, b.call.ended_future], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            a.call.leg.relay_to(None)
            b.call.leg.relay_to(None)
        other = a if b.call.ended else b
        if not park_after and not other.call.ended:
            await other.call.hangup("normal_clearing")

    task = asyncio.get_running_loop().create_task(joined())
    a.bridge = b.bridge = task
    control.keep(task)


# -- handing the call on -----------------------------------------------------------------------


async def transfer(control: CallControl, cc: ControlledCall, request: DialRequest) -> None:
    """Call ``request.to`` and, once it answers, bridge it with ``cc`` (answering ``cc``
    first if it is still parked). When nobody answers, the new leg's ``call.hangup`` says
    so and ``cc`` stays as it was, ready for other commands."""

    async def connect(leg: ControlledCall) -> None:
        if not cc.alive:
            await leg.call.hangup("normal_clearing")
            return
        if not cc.call.answered:
            await cc.call.answer()
            control.post(cc, "call.answered", state="answered")
        bridge(control, cc, leg, park_after=False)

    try:
        await dial(control, control.dialer, replace(request, on_answer=connect))
    except TargetError as exc:
        message = str(exc)
        field = "custom_headers" if message.startswith("header ") else "to"
        raise CommandRefused(field, message) from None


def refer_call(
    control: CallControl, cc: ControlledCall, target: str, headers: list[tuple[str, str]]
) -> None:
    """Ask the peer to call ``target`` (SIP REFER); ``call.refer.started``, then
    ``call.refer.completed`` or ``call.refer.failed`` with the NOTIFY's status."""
    _answered(cc)
    final: list[int] = []

    def told(status: int) -> None:
        # Posted as the NOTIFYs come: a completed transfer hangs the call up at once.
        if status < 200:
            control.post(cc, "call.refer.started", sip_notify_response=status)
            return
        final.append(status)
        event = "call.refer.completed" if 200 <= status < 300 else "call.refer.failed"
        control.post(cc, event, sip_notify_response=status)

    async def work() -> None:
        await refer(cc.call, target, headers, told)
        if not final:  # no final NOTIFY in time
            control.post(cc, "call.refer.failed", sip_notify_response=0)

    _start(control, cc, "media", work)
