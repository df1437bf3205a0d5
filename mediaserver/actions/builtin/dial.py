"""``dial@v1``: ring one or several targets and bridge the caller to the first
that answers.

The targets ring at once; the others are cancelled when one answers. While
they ring the caller hears ``ringback``. The bridge lasts until either side
hangs up (or ``max_duration``); then the run goes on with ``$dial`` telling
what happened: ``status`` (``answered``, ``busy``, ``no-answer``, ``failed``,
``canceled``, ``voicemail``), ``duration`` (seconds bridged) and ``target``.

``vms_detect`` (Callr's ``App.Param.VmsDetect``, :mod:`mediaserver.actions.vms_detect`)
checks who answered before the bridge: a voicemail is hung up and the status is
``voicemail``; ``$dial.detection`` tells the verdict either way.

Only admitted callers reach a scenario at all (an authenticated user, a trunk,
or a caller from ``sip.trusted_networks``), so nobody else can make the server
dial out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import DialError, DialOptions
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.expressions import Template
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import tone_or_sound
from mediaserver.actions.vms_detect import VmsDetect, VmsDetectError, vms_detect_from

RINGBACK = ("tone", "early-media", "none")


async def dial(context: ActionContext, params: Mapping[str, Any]) -> dict[str, object]:
    interpolate = context.sandbox.interpolate
    targets = [interpolate(target) for target in params["targets"]]
    caller_id = params["caller_id"]
    vms_detect = _vms_detect(context, params["vms_detect"])
    vms_media = await tone_or_sound(context, vms_detect.media) if vms_detect else None
    options = DialOptions(
        vms_detect=vms_detect,
        vms_media=vms_media,
        timeout=params["timeout"],
        caller_id=interpolate(caller_id) if caller_id is not None else None,
        ringback=params["ringback"],
        max_duration=params["max_duration"],
        headers={name: interpolate(value) for name, value in params["headers"].items()},
        record=params["record"],
        wait=params["wait"],
    )
    try:
        result = await context.call.dial(targets, options)
    except DialError as exc:
        raise ActionFailed(str(exc)) from None
    value = result.as_variable()
    context.set_builtin("$dial", value)
    if result.recording is not None:
        context.set_builtin("$recording", result.recording.as_variable())
    context.log.info("dial ended" if options.wait else "dial started", **value)
    return value


def _vms_detect(context: ActionContext, data: Any) -> VmsDetect | None:
    """The checked settings, ``${...}`` fields interpolated; None when absent or inactive."""
    if data is None:
        return None
    try:
        settings = vms_detect_from(_plain(data, context.sandbox.interpolate))
    except VmsDetectError as exc:
        raise ActionFailed(str(exc)) from None
    return settings if settings.active else None


def _plain(data: Any, text: Any) -> Any:
    """A DATA value with its templates turned into text by ``text``."""
    if isinstance(data, Template):
        return text(data)
    if isinstance(data, dict):
        return {key: _plain(value, text) for key, value in data.items()}
    return data


def _check(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """vms_detect as far as it is known before the run: fields whose values are
    ``${...}`` are checked when the action runs."""
    data = params["vms_detect"]
    if data is None:
        return []
    fixed = _plain(data, lambda t: t.constant if t.constant is not None else _LATER)
    if isinstance(fixed, dict):
        if fixed.get("method") is _LATER:
            return []  # the method decides which fields apply: all checked at run time
        fixed = {key: value for key, value in fixed.items() if value is not _LATER}
    try:
        vms_detect_from(fixed)
    except VmsDetectError as exc:
        return [("vms_detect", f"dial@v1: {exc}")]
    return []


_LATER = object()


DIAL = ActionDefinition(
    name="dial",
    version=1,
    summary="Ring one or several targets at once and bridge the call to the first to answer.",
    params=(
        Param(
            "targets",
            ParamType.STRINGS,
            "SIP URIs to ring at once (sip:alice@192.0.2.10:5060)",
            required=True,
            interpolated=True,
        ),
        Param(
            "caller_id",
            ParamType.STRING,
            "user part of the From of the outbound calls; default: the caller's",
            interpolated=True,
        ),
        Param(
            "timeout",
            ParamType.SECONDS,
            "seconds to wait for an answer",
            default=30.0,
            minimum=1,
            maximum=600,
        ),
        Param(
            "ringback",
            ParamType.STRING,
            "what the caller hears meanwhile: tone (ringing), early-media (the "
            "callee's 183 audio) or none",
            default="tone",
            choices=RINGBACK,
        ),
        Param(
            "max_duration",
            ParamType.SECONDS,
            "end the bridge after this many seconds; default: no limit",
            minimum=1,
        ),
        Param(
            "record",
            ParamType.BOOLEAN,
            "record the bridged call, caller left and callee right (id in $recording)",
            default=False,
        ),
        Param(
            "headers",
            ParamType.HEADERS,
            "extra SIP headers on the outbound INVITEs",
            default={},
            interpolated=True,
        ),
        Param(
            "wait",
            ParamType.BOOLEAN,
            "false: ring and bridge in the background, the scenario goes on at once "
            "(result status: started; the callee is heard instead of the scenario's audio "
            "while bridged); stop@v1 with dial: true hangs it up",
            default=True,
        ),
        Param(
            "vms_detect",
            ParamType.DATA,
            "Callr's voicemail detection on whoever answers (App.Param.VmsDetect: method "
            "DTMF or SILENCE and their parameters); a voicemail is hung up: status voicemail",
        ),
    ),
    check=_check,
    run=dial,
    result="an object: status (answered, busy, no-answer, failed, canceled, voicemail; "
    "started with wait: false), duration (seconds bridged), target, and detection with "
    "vms_detect; also in $dial",
)

ACTIONS = (DIAL,)
