"""``pause@v1``: wait, playing silence.

On an answered call the pause is played as silence, so a hang-up during it
ends the run at once; before answer (or without a call) it just waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import CallEnded
from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import play_silence


async def pause(context: ActionContext, params: Mapping[str, Any]) -> None:
    seconds: float = params["seconds"]
    if not context.has_call:
        await asyncio.sleep(seconds)
        return
    call = context.call
    if call.answered:
        await play_silence(context, seconds)
        return
    await asyncio.sleep(seconds)
    if call.ended:
        raise CallEnded()


PAUSE = ActionDefinition(
    name="pause",
    version=1,
    summary="Wait for some seconds.",
    params=(
        Param(
            "seconds", ParamType.SECONDS, "how long to wait", required=True, minimum=0, maximum=3600
        ),
    ),
    run=pause,
    needs_call=False,
)

ACTIONS = (PAUSE,)
