"""``send-dtmf@v1``: send DTMF keys to the caller.

Each key of ``digits`` sounds for ``duration`` seconds followed by 0.1 s of
quiet; ``w`` pauses 0.5 s and ``W`` one second. When the caller's phone
negotiated telephone-event the keys go as RFC 4733 events (what a phone or
an IVR at the other end reads best), otherwise as in-band tones, the two
frequencies of each key played as audio. The action returns once every key
has been sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import MediaError
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.expressions import Template
from mediaserver.actions.params import Param, ParamType
from mediaserver.media.dtmf_out import MAX_DURATION, MIN_DURATION, check_keys


async def send_dtmf(context: ActionContext, params: Mapping[str, Any]) -> None:
    digits = context.sandbox.interpolate(params["digits"])
    try:
        check_keys(digits)
    except ValueError as exc:
        raise ActionFailed(f"digits {digits!r}: {exc}") from None
    try:
        await context.call.send_dtmf(digits, params["duration"])
    except MediaError as exc:
        raise ActionFailed(str(exc)) from None
    context.log.info("dtmf sent", digits=digits)


def _constant_digits(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    template = params["digits"]
    text = template.constant if isinstance(template, Template) else None
    if text is None:
        return []  # interpolated: checked when the action runs
    try:
        check_keys(text)
    except ValueError as exc:
        return [("digits", f"send-dtmf@v1: digits: {exc}")]
    return []


SEND_DTMF = ActionDefinition(
    name="send-dtmf",
    version=1,
    summary="Send DTMF keys to the caller (RFC 4733 events, or in-band tones).",
    params=(
        Param(
            "digits",
            ParamType.STRING,
            "keys to send: 0-9, *, #, A-D; w pauses 0.5 s, W 1 s; ${...} is interpolated",
            required=True,
            interpolated=True,
        ),
        Param(
            "duration",
            ParamType.SECONDS,
            "how long each key sounds (a 0.1 s pause follows each)",
            default=0.1,
            minimum=MIN_DURATION,
            maximum=MAX_DURATION,
        ),
    ),
    run=send_dtmf,
    check=_constant_digits,
)

ACTIONS = (SEND_DTMF,)
