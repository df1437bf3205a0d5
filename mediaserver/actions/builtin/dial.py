"""``dial@v1``: ring one or several targets and bridge the caller to the first
that answers.

The targets ring at once; the others are cancelled when one answers. While
they ring the caller hears ``ringback``. The bridge lasts until either side
hangs up (or ``max_duration``); then the run goes on with ``$dial`` telling
what happened: ``status`` (``answered``, ``busy``, ``no-answer``, ``failed``,
``canceled``), ``duration`` (seconds bridged) and ``target``.

Only admitted callers reach a scenario at all (an authenticated user, a trunk,
or a caller from ``sip.trusted_networks``), so nobody else can make the server
dial out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import DialError, DialOptions
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

RINGBACK = ("tone", "early-media", "none")


async def dial(context: ActionContext, params: Mapping[str, Any]) -> dict[str, object]:
    interpolate = context.sandbox.interpolate
    targets = [interpolate(target) for target in params["targets"]]
    caller_id = params["caller_id"]
    options = DialOptions(
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
    ),
    run=dial,
    result="an object: status (answered, busy, no-answer, failed, canceled; started with "
    "wait: false), duration (seconds bridged), target; also in $dial",
)

ACTIONS = (DIAL,)
