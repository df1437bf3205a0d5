"""Recording: ``record@v1`` (the call, in the background) and ``voicemail@v1`` (a message).

``record@v1`` with ``command: start`` starts recording the call and returns
at once: the recording goes on while the next actions run, until
``command: stop``, or the end of the call. ``mono`` mixes both sides into
one channel; ``dual`` puts the caller on the left and what the caller hears
(prompts, the bridged party during ``dial@v1``, a conference) on the right.
``pause`` leaves the paused time out of the file, ``resume`` goes on. The
result is the recording's id; ``$recording`` gets ``id``, ``path`` and
``duration`` (``null`` until stopped).

``voicemail@v1`` plays a beep (``beep``), then records what the caller says,
alone, until ``silence_timeout`` seconds of silence, the ``finish_on_key``
key (``any``: every key), ``max_length`` seconds, or a hang-up. The silence
that ended the message is not kept. The result and ``$recording`` are ``id``, ``path`` and
``duration``.

Callr's voicemail options (``App.Param.Vms``, :mod:`mediaserver.actions.vms`):
``intro`` is played before the beep; ``record: false`` hangs up after it
(no message), ``active: false`` hangs up at once; ``emails`` mails the message
through the config's ``smtp:`` server, attached as ``file_format`` under
``file_name`` (the seed's ``{CALLID}``, ``{MEDIA_HASH}``, ``{DATETIME}`` tags,
dates in ``timezone``). The mail goes out after the action returns: the run
never waits for the mail server.

Files are written while the call runs, under ``storage.recordings``, named
by their id, and indexed in the database (``GET /api/recordings``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaserver.actions.callapi import (
    DTMF_KEYS,
    AudioError,
    MailUnavailable,
    MediaError,
    RecordingResult,
    RecordOptions,
    VoicemailOptions,
)
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import tone_or_sound
from mediaserver.actions.vms import (
    DEFAULT_FILE_NAME,
    FILE_FORMATS,
    VoicemailMessage,
    attachment_name,
    check_address,
    check_file_name,
    encode,
    voicemail_email,
    zone,
)

COMMANDS = ("start", "stop", "pause", "resume")


async def _beep(context: ActionContext) -> None:
    try:
        audio = context.prompts.tone("beep")
    except AudioError as exc:
        raise ActionFailed(str(exc)) from None
    await context.call.play(audio)


async def record(context: ActionContext, params: Mapping[str, Any]) -> str:
    call = context.call
    command = params["command"]
    try:
        if command == "start":
            if params["beep"]:
                await _beep(context)
            result = await call.start_recording(RecordOptions(params["channels"], params["format"]))
        elif command == "stop":
            result = await call.stop_recording()
        else:
            result = await call.pause_recording(command == "pause")
    except MediaError as exc:
        raise ActionFailed(str(exc)) from None
    _remember(context, result)
    context.log.info(f"recording {command}", **result.as_variable())
    return result.id


async def voicemail(context: ActionContext, params: Mapping[str, Any]) -> dict[str, object]:
    call = context.call
    if not params["active"]:  # App.Param.Vms: "If not activated, the call is hang up"
        await call.hangup()
        return {"id": None, "path": None, "duration": None}
    recipients = _recipients(context, params["emails"])
    intro = await tone_or_sound(context, params["intro"])
    if intro is not None:
        if not call.answered:
            await call.answer()
        await call.play(intro)
    if not params["record"]:  # App.Param.Vms: hang up after the prompt
        await call.hangup()
        return {"id": None, "path": None, "duration": None}
    if params["beep"]:
        await _beep(context)
    finish = params["finish_on_key"]
    options = VoicemailOptions(
        max_length=params["max_length"],
        silence_timeout=params["silence_timeout"],
        finish_on_key=None if finish == "none" else DTMF_KEYS if finish == "any" else finish,
    )
    try:
        result = await call.voicemail(options)
    except MediaError as exc:
        raise ActionFailed(str(exc)) from None
    _remember(context, result)
    context.log.info("voicemail recorded", **result.as_variable())
    if recipients:
        await _mail(context, params, result, recipients)
    return result.as_variable()


def _recipients(context: ActionContext, emails: tuple[Any, ...]) -> list[str]:
    """The interpolated addresses, checked before anything is recorded."""
    out = []
    for index, email in enumerate(emails):
        try:
            out.append(check_address(context.sandbox.interpolate(email)))
        except ValueError as exc:
            raise ActionFailed(f"emails[{index}]: {exc}") from None
    return out


async def _mail(
    context: ActionContext,
    params: Mapping[str, Any],
    result: RecordingResult,
    recipients: list[str],
) -> None:
    """Queue the message's e-mail; the attachment is read and encoded off the loop."""
    info = context.call.info
    fmt = params["file_format"]
    tz = zone(params["timezone"])
    message = VoicemailMessage(
        call_id=str(info.get("id")),
        recording_id=result.id,
        caller=str(info.get("from") or ""),
        called=str(info.get("to") or ""),
        left_at=datetime.now(UTC),
        duration=result.duration,
        path=Path(result.path),
    )
    try:
        attachment = await asyncio.to_thread(encode, message.path, fmt)
    except (OSError, RuntimeError) as exc:
        # The message itself is kept and indexed: the run goes on, the log tells.
        context.log.error("voicemail not mailed", recording_id=result.id, reason=str(exc))
        return
    name = attachment_name(params["file_name"], message, tz, fmt)
    mail = voicemail_email(message, recipients, attachment, name, fmt, tz)
    try:
        context.server.send_mail(mail, f"voicemail {result.id}")
    except MailUnavailable as exc:
        raise ActionFailed(f"emails: {exc}") from None
    context.log.info("voicemail mail queued", recording_id=result.id, to=recipients, file=name)


def _check_vms(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """App.Param.Vms values that can be checked before the run."""
    problems = []
    try:
        check_file_name(params["file_name"])
    except ValueError as exc:
        problems.append(("file_name", f"voicemail@v1: file_name: {exc}"))
    try:
        zone(params["timezone"])
    except ValueError as exc:
        problems.append(("timezone", f"voicemail@v1: timezone: {exc}"))
    for index, email in enumerate(params["emails"]):
        constant = getattr(email, "constant", email)
        if isinstance(constant, str):
            try:
                check_address(constant)
            except ValueError as exc:
                problems.append(("emails", f"voicemail@v1: emails[{index}]: {exc}"))
    return problems


def _remember(context: ActionContext, result: RecordingResult) -> None:
    context.set_builtin("$recording", result.as_variable())


RECORD = ActionDefinition(
    name="record",
    version=1,
    summary="Record the call in the background: start, stop, pause or resume.",
    params=(
        Param("command", ParamType.STRING, "what to do", default="start", choices=COMMANDS),
        Param(
            "channels",
            ParamType.STRING,
            "start: mono (both sides mixed) or dual (caller left, other party right)",
            default="mono",
            choices=("mono", "dual"),
        ),
        Param(
            "format",
            ParamType.STRING,
            "start: file format",
            default="wav",
            choices=("wav", "flac", "ogg"),
        ),
        Param("beep", ParamType.BOOLEAN, "start: play a beep to the caller first", default=False),
    ),
    run=record,
    result="the recording's id (also in $recording, with path and duration)",
)

VOICEMAIL = ActionDefinition(
    name="voicemail",
    version=1,
    summary="Record a message from the caller, ended by silence, a key or a length.",
    params=(
        Param("beep", ParamType.BOOLEAN, "play a beep before recording", default=True),
        Param(
            "max_length",
            ParamType.SECONDS,
            "longest message, in seconds",
            default=60.0,
            minimum=1,
            maximum=3600,
        ),
        Param(
            "silence_timeout",
            ParamType.SECONDS,
            "seconds of silence from the caller that end the message",
            default=5.0,
            minimum=0.5,
            maximum=600,
        ),
        Param(
            "finish_on_key",
            ParamType.STRING,
            "key that ends the message; any: every key does; none to disable",
            default="#",
            choices=(*DTMF_KEYS, "any", "none"),
        ),
        Param(
            "intro",
            ParamType.STRING,
            "played before the beep: a tone name, a sound file or an http(s) URL",
            interpolated=True,
        ),
        Param("record", ParamType.BOOLEAN, "false: hang up after the intro", default=True),
        Param("active", ParamType.BOOLEAN, "false: hang up at once, no message", default=True),
        Param(
            "emails",
            ParamType.STRINGS,
            "mail the message to these addresses (the config's smtp: server)",
            default=(),
            interpolated=True,
        ),
        Param(
            "file_name",
            ParamType.STRING,
            "the attachment's name: {CALLID}, {MEDIA_HASH} (recording id), {DATETIME}",
            default=DEFAULT_FILE_NAME,
        ),
        Param(
            "file_format",
            ParamType.STRING,
            "the attachment's format",
            default="wav",
            choices=FILE_FORMATS,
        ),
        Param("timezone", ParamType.STRING, "IANA time zone of the mail's dates; default UTC"),
    ),
    check=_check_vms,
    run=voicemail,
    result="the message: id, path, duration (seconds); also in $recording",
)

ACTIONS = (RECORD, VOICEMAIL)
