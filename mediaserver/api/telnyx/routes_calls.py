"""``/calls``: dialling, a call's status, and the commands on a live call (seed 002).

Every command answers ``{"data": {"result": "ok"}}`` once applied (or, for
commands that take time, started). A call the server never had is 404; a
call that has ended gets the seed's "call has already ended" (422, code
90018); a command repeated with the same ``command_id`` is a no-op answered
``ok`` again. ``client_state`` given with a command is echoed on every later
event of the call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from mediaserver.actions.callapi import MediaError
from mediaserver.api.telnyx.commanding import OK, commanding, control_of
from mediaserver.api.telnyx.errors import (
    MISSING,
    TelnyxError,
    call_ended,
    invalid,
    not_found,
    wrong_state,
)
from mediaserver.api.telnyx.models import (
    BridgeIn,
    Command,
    DialIn,
    ForkIn,
    GatherAudioIn,
    GatherSpeakIn,
    PlaybackIn,
    PlaybackStopIn,
    RecordStartIn,
    ReferIn,
    RejectIn,
    SendDtmfIn,
    SpeakIn,
    TransferIn,
    WithWebhook,
)
from mediaserver.api.telnyx.routes_queues import take_from_queue
from mediaserver.callcontrol import commands
from mediaserver.callcontrol.commands import INFINITE_LOOP, Gather, Speech
from mediaserver.callcontrol.controlled import ControlledCall, Webhook
from mediaserver.callcontrol.service import (
    CallControl,
    DialRequest,
    MachineDetectionRequest,
    dial,
)
from mediaserver.media.amd import config_from
from mediaserver.media.fork import ForkError
from mediaserver.sip.uac import TargetError

router = APIRouter(tags=["Call Commands"])

CallControlId = Annotated[str, Path(min_length=1, max_length=128)]


def _call_record(cc: ControlledCall) -> dict[str, Any]:
    call = cc.call
    end = call.ended_at or time.time()
    duration = round(end - call.answered_at) if call.answered_at else 0
    return {
        "record_type": "call",
        "call_control_id": cc.call_control_id,
        "call_leg_id": cc.call_leg_id,
        "call_session_id": cc.call_session_id,
        "is_alive": cc.alive,
        "call_duration": duration,
        "client_state": cc.client_state,
    }


def _live(request: Request, call_control_id: str) -> ControlledCall:
    """The live call a command is for: 404 when there is none, the seed's "call has
    already ended" when it is over."""
    cc = control_of(request).find(call_control_id)
    if cc is None:
        raise not_found("call", call_control_id)
    if not cc.alive:
        raise call_ended(call_control_id)
    return cc


@contextmanager
def _commanding(
    request: Request, call_control_id: str, body: Command
) -> Iterator[ControlledCall | None]:
    """The call a command applies to (None: a repeated ``command_id``, a no-op), with the
    command's ``client_state`` and ``webhook_url`` in force while it runs (its events
    carry them); a refused command leaves the call as it was, its id unused."""
    cc = _live(request, call_control_id)
    with commanding(cc, body.command_id, body.client_state) as applies:
        if not applies:
            yield None
            return
        webhook = cc.webhook
        if isinstance(body, WithWebhook) and body.webhook_url is not None:
            cc.webhook = replace(cc.webhook, url=body.webhook_url)
        try:
            yield cc
        except BaseException:
            cc.webhook = webhook
            raise


def _play_on_answer(control: CallControl, url: str) -> Callable[[ControlledCall], Awaitable[None]]:
    """``audio_url`` of a dial: played to the callee once it answers."""

    async def play(leg: ControlledCall) -> None:
        commands.playback_start(control, leg, url, 1)

    return play


def _machine_detection(body: DialIn | TransferIn) -> MachineDetectionRequest | None:
    """The dial's answering-machine detection, its config checked (the field named)."""
    if body.answering_machine_detection == "disabled":
        return None
    try:
        config = config_from(body.answering_machine_detection_config or {})
    except ValueError as exc:
        message = str(exc)
        raise invalid(message.split(":", 1)[0].split(" ", 1)[0], message) from None
    return MachineDetectionRequest(body.answering_machine_detection, config)


def _credentials(username: str | None, password: str | None) -> tuple[str, str] | None:
    if username is None and password is None:
        return None
    if not username or password is None:
        missing = "sip_auth_password" if username else "sip_auth_username"
        raise invalid(missing, "sip_auth_username and sip_auth_password go together.")
    return username, password


def _target_error(exc: TargetError) -> TelnyxError:
    """A refused ``to`` or custom header, naming the field."""
    message = str(exc)
    return invalid("custom_headers" if message.startswith("header ") else "to", message)


def _voice(voice: str) -> str | None:
    """Our voice for a seed ``voice``: ``male``/``female``; None (the default) for a
    provider's voice name."""
    lowered = voice.lower()
    return lowered if lowered in ("male", "female") else None


@router.post("/calls", summary="Dial")
async def dial_call(request: Request, body: DialIn) -> dict[str, Any]:
    control = control_of(request)
    app = control.application(body.connection_id)
    if app is None and body.webhook_url is None:
        raise invalid(
            "connection_id",
            f"No Call Control application {body.connection_id!r}, and no webhook_url given.",
        )
    webhook = app.webhook if app is not None else Webhook(body.webhook_url)
    if body.webhook_url is not None:
        webhook = replace(webhook, url=body.webhook_url)
    session_id = None
    if body.link_to is not None:
        linked = control.find(body.link_to)
        if linked is None:
            raise invalid("link_to", f"No call {body.link_to!r} to link to.")
        session_id = linked.call_session_id
    detection = _machine_detection(body)
    dial_request = DialRequest(
        to=body.to,
        from_=body.from_,
        connection_id=body.connection_id,
        webhook=webhook,
        timeout=float(body.timeout_secs),
        time_limit=float(body.time_limit_secs),
        headers={h.name: h.value for h in body.custom_headers},
        client_state=body.client_state,
        session_id=session_id,
        credentials=_credentials(body.sip_auth_username, body.sip_auth_password),
        display_name=body.from_display_name,
        machine_detection=detection,
        on_answer=_play_on_answer(control, body.audio_url) if body.audio_url else None,
    )
    try:
        cc = await dial(control, control.dialer, dial_request)
    except TargetError as exc:
        raise _target_error(exc) from None
    record = _call_record(cc)
    record["is_alive"] = False  # the seed: dialling is asynchronous
    return {"data": record}


@router.get("/calls/{call_control_id}", summary="Retrieve a call status")
async def call_status(request: Request, call_control_id: CallControlId) -> dict[str, Any]:
    cc = control_of(request).find(call_control_id)
    if cc is None:
        raise not_found("call", call_control_id)
    return {"data": _call_record(cc)}


@router.post("/calls/{call_control_id}/actions/answer", summary="Answer call")
async def answer(request: Request, call_control_id: CallControlId, body: WithWebhook) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            await commands.answer(control_of(request), cc)
    return OK


@router.post("/calls/{call_control_id}/actions/reject", summary="Reject a call")
async def reject(request: Request, call_control_id: CallControlId, body: RejectIn) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            await commands.reject(control_of(request), cc, body.cause)
    return OK


@router.post("/calls/{call_control_id}/actions/hangup", summary="Hangup call")
async def hangup(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            await commands.hangup(control_of(request), cc)
    return OK


@router.post("/calls/{call_control_id}/actions/speak", summary="Speak text")
async def speak(request: Request, call_control_id: CallControlId, body: SpeakIn) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            speech = Speech(body.payload, body.language, _voice(body.voice))
            commands.speak(control_of(request), cc, speech)
    return OK


@router.post("/calls/{call_control_id}/actions/playback_start", summary="Play audio URL")
async def playback_start(request: Request, call_control_id: CallControlId, body: PlaybackIn) -> Any:
    if body.audio_url is None:
        raise invalid("audio_url", "audio_url is required (media_name needs a media storage).")
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            loop = INFINITE_LOOP if body.loop == "infinity" else body.loop
            commands.playback_start(control_of(request), cc, body.audio_url, loop)
    return OK


@router.post("/calls/{call_control_id}/actions/playback_stop", summary="Stop audio playback")
async def playback_stop(
    request: Request, call_control_id: CallControlId, body: PlaybackStopIn
) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            commands.playback_stop(control_of(request), cc)
    return OK


def _gather_spec(body: GatherAudioIn | GatherSpeakIn) -> Gather:
    if body.maximum_digits < body.minimum_digits:
        raise invalid("maximum_digits", "maximum_digits is less than minimum_digits.")
    variables: dict[str, object] = {}
    prompt: list[dict[str, Any]] = []
    invalid_prompt: list[dict[str, Any]] = []
    if isinstance(body, GatherSpeakIn):
        say = {"language": body.language, "voice": _voice(body.voice)}
        say = {k: v for k, v in say.items() if v is not None}
        variables["$gather_text"] = body.payload
        prompt = [{"say": {"text": "${gather_text}", **say}}]
        if body.invalid_payload:
            variables["$gather_invalid_text"] = body.invalid_payload
            invalid_prompt = [{"say": {"text": "${gather_invalid_text}", **say}}]
    else:
        if body.audio_url:
            variables["$gather_url"] = body.audio_url
            prompt = [{"play": {"url": "${gather_url}"}}]
        if body.invalid_audio_url:
            variables["$gather_invalid_url"] = body.invalid_audio_url
            invalid_prompt = [{"play": {"url": "${gather_invalid_url}"}}]
    valid = body.valid_digits.replace(body.terminating_digit, "")
    return Gather(
        prompt=prompt,
        variables=variables,
        min_digits=body.minimum_digits,
        max_digits=body.maximum_digits,
        timeout=body.timeout_millis / 1000,
        inter_digit_timeout=body.inter_digit_timeout_millis / 1000,
        terminating_digit=body.terminating_digit,
        valid_digits=valid or None,
        attempts=body.maximum_tries,
        invalid_prompt=invalid_prompt,
    )


@router.post("/calls/{call_control_id}/actions/gather_using_audio", summary="Gather using audio")
async def gather_using_audio(
    request: Request, call_control_id: CallControlId, body: GatherAudioIn
) -> Any:
    spec = _gather_spec(body)
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            commands.gather(control_of(request), cc, spec)
    return OK


@router.post("/calls/{call_control_id}/actions/gather_using_speak", summary="Gather using speak")
async def gather_using_speak(
    request: Request, call_control_id: CallControlId, body: GatherSpeakIn
) -> Any:
    spec = _gather_spec(body)
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            commands.gather(control_of(request), cc, spec)
    return OK


@router.post("/calls/{call_control_id}/actions/gather_stop", summary="Gather stop")
async def gather_stop(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            commands.gather_stop(control_of(request), cc)
    return OK


@router.post("/calls/{call_control_id}/actions/send_dtmf", summary="Send DTMF")
async def send_dtmf(request: Request, call_control_id: CallControlId, body: SendDtmfIn) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            digits = "".join(k for k in body.digits.upper() if k != "W")  # w/W: pauses
            await commands.send_dtmf(control_of(request), cc, digits, body.duration_millis / 1000)
    return OK


@router.post("/calls/{call_control_id}/actions/record_start", summary="Recording start")
async def record_start(
    request: Request, call_control_id: CallControlId, body: RecordStartIn
) -> Any:
    if body.format == "mp3":
        raise invalid("format", "mp3 recordings are not available here: use wav.")
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            await commands.record_start(control_of(request), cc, body.channels, body.format)
    return OK


@router.post("/calls/{call_control_id}/actions/record_stop", summary="Recording stop")
async def record_stop(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            await commands.record_stop(control_of(request), cc, str(request.base_url))
    return OK


async def _record_pause(request: Request, call_control_id: str, body: Command, pause: bool) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            await commands.record_pause(control_of(request), cc, pause)
    return OK


@router.post("/calls/{call_control_id}/actions/record_pause", summary="Record pause")
async def record_pause(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    return await _record_pause(request, call_control_id, body, True)


@router.post("/calls/{call_control_id}/actions/record_resume", summary="Record resume")
async def record_resume(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    return await _record_pause(request, call_control_id, body, False)


@router.post("/calls/{call_control_id}/actions/bridge", summary="Bridge calls")
async def bridge(request: Request, call_control_id: CallControlId, body: BridgeIn) -> Any:
    control = control_of(request)
    if body.queue is not None:  # the first call of the queue (the SDK sends an id too)
        body.call_control_id = take_from_queue(request, body.queue).call_control_id
    other_id = body.other
    if other_id is None:
        raise TelnyxError(
            422,
            MISSING,
            "Missing required parameter",
            "The 'call_control_id' parameter is required: the call to bridge with.",
            pointer="/call_control_id",
        )
    other = control.find(other_id)
    if other is None:
        raise invalid("call_control_id", f"No call {other_id!r} to bridge with.")
    if not other.alive:
        raise invalid("call_control_id", f"Call {other_id!r} has already ended.")
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            commands.bridge(control, cc, other, body.park_after_unbridge == "self")
    return OK


def _no_recogniser() -> TelnyxError:
    return invalid(
        "transcription_engine",
        "No speech recogniser is configured on this server: transcription is not available.",
    )


@router.post("/calls/{call_control_id}/actions/transcription_start", summary="Transcription start")
async def transcription_start(
    request: Request, call_control_id: CallControlId, body: Command
) -> Any:
    _live(request, call_control_id)  # 404 or "ended" first, as for any command
    raise _no_recogniser()


@router.post("/calls/{call_control_id}/actions/transcription_stop", summary="Transcription stop")
async def transcription_stop(
    request: Request, call_control_id: CallControlId, body: Command
) -> Any:
    _live(request, call_control_id)  # 404 or "ended" first, as for any command
    raise _no_recogniser()


@router.post("/calls/{call_control_id}/actions/transfer", summary="Transfer call")
async def transfer(request: Request, call_control_id: CallControlId, body: TransferIn) -> Any:
    detection = _machine_detection(body)
    control = control_of(request)
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            webhook = cc.webhook
            if body.webhook_url is not None:
                webhook = replace(webhook, url=body.webhook_url)
            leg = DialRequest(
                to=body.to,
                from_=body.from_ or cc.from_,
                connection_id=cc.connection_id,
                webhook=webhook,
                timeout=float(body.timeout_secs),
                time_limit=float(body.time_limit_secs),
                headers={h.name: h.value for h in body.custom_headers},
                client_state=body.target_leg_client_state,
                session_id=cc.call_session_id,
                credentials=_credentials(body.sip_auth_username, body.sip_auth_password),
                display_name=body.from_display_name,
                machine_detection=detection,
            )
            await commands.transfer(control, cc, leg)
    return OK


@router.post("/calls/{call_control_id}/actions/refer", summary="SIP Refer a call")
async def refer(request: Request, call_control_id: CallControlId, body: ReferIn) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            headers = [(h.name, h.value) for h in body.custom_headers]
            commands.refer_call(control_of(request), cc, body.sip_address, headers)
    return OK


@router.post("/calls/{call_control_id}/actions/fork_start", summary="Forking start")
async def fork_start(request: Request, call_control_id: CallControlId, body: ForkIn) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            try:
                cc.call.fork_start(
                    rx=body.rx or None,
                    tx=body.tx or None,
                    target=body.target or None,
                    stream_type=body.stream_type,
                    call_leg_id=cc.call_leg_id,
                )
            except ForkError as exc:
                raise invalid(exc.field, str(exc)) from None
    return OK


@router.post("/calls/{call_control_id}/actions/fork_stop", summary="Forking stop")
async def fork_stop(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    with _commanding(request, call_control_id, body) as cc:
        if cc is not None:
            try:
                cc.call.fork_stop()
            except MediaError as exc:
                raise wrong_state(str(exc)) from None
    return OK
