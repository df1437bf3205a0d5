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

Files are written while the call runs, under ``storage.recordings``, named
by their id, and indexed in the database (``GET /api/recordings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import (
    DTMF_KEYS,
    AudioError,
    MediaError,
    RecordingResult,
    RecordOptions,
    VoicemailOptions,
)
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

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
    return result.as_variable()


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
    ),
    run=voicemail,
    result="the message: id, path, duration (seconds); also in $recording",
)

ACTIONS = (RECORD, VOICEMAIL)
