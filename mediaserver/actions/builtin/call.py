"""Call control: ``answer@v1``, ``progress@v1``, ``hangup@v1``, ``reject@v1``.

``answer@v1`` may let the caller hear ringing first (``ring``: 180 Ringing,
then wait). ``hangup@v1`` and ``reject@v1`` end the call and the run; the
run then counts as completed, since the scenario chose to end it (a hang-up
by the caller ends the run with status ``hangup`` instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import CallEnded
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed, EndRun
from mediaserver.actions.params import Param, ParamType

REJECT_REASONS = ("busy", "declined", "unavailable", "not_found")


async def answer(context: ActionContext, params: Mapping[str, Any]) -> None:
    call = context.call
    ring: float = params["ring"]
    if ring > 0 and not call.answered:
        await call.ring()
        await asyncio.sleep(ring)
        if call.ended:
            raise CallEnded()
    await call.answer()


async def progress(context: ActionContext, params: Mapping[str, Any]) -> None:
    await context.call.progress()


async def hangup(context: ActionContext, params: Mapping[str, Any]) -> None:
    await context.call.hangup(params["reason"])
    raise EndRun("completed", f"hangup@v1 ({params['reason']})")


async def reject(context: ActionContext, params: Mapping[str, Any]) -> None:
    call = context.call
    if call.answered:
        raise ActionFailed("the call is already answered; use hangup@v1")
    await call.reject(params["reason"])
    raise EndRun("completed", f"reject@v1 ({params['reason']})")


ANSWER = ActionDefinition(
    name="answer",
    version=1,
    summary="Answer the call (200 OK), optionally after letting it ring.",
    params=(
        Param(
            "ring",
            ParamType.SECONDS,
            "seconds of ringing (180 Ringing) before answering",
            default=0.0,
            minimum=0,
            maximum=300,
        ),
    ),
    run=answer,
)

PROGRESS = ActionDefinition(
    name="progress",
    version=1,
    summary="Send 183 Session Progress with SDP (early media): later say/play are heard "
    "before the call is answered.",
    params=(),
    run=progress,
)

HANGUP = ActionDefinition(
    name="hangup",
    version=1,
    summary="End the call and the run.",
    params=(
        Param(
            "reason",
            ParamType.STRING,
            "hang-up cause, recorded with the call",
            default="normal_clearing",
            pattern=r"[a-z][a-z0-9_]{0,63}",
            pattern_hint="a cause name in lower_snake_case such as normal_clearing",
        ),
    ),
    run=hangup,
)

REJECT = ActionDefinition(
    name="reject",
    version=1,
    summary="Refuse an unanswered call: busy (486), declined (603), unavailable (480) "
    "or not_found (404); ends the run.",
    params=(
        Param(
            "reason",
            ParamType.STRING,
            "why the call is refused",
            default="declined",
            choices=REJECT_REASONS,
        ),
    ),
    run=reject,
)

ACTIONS = (ANSWER, PROGRESS, HANGUP, REJECT)
