"""``echo@v1``: send the caller's own audio back to them (a line test).

Without ``seconds`` it echoes until the caller hangs up, which ends the run
with status ``hangup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType


async def echo(context: ActionContext, params: Mapping[str, Any]) -> None:
    await context.call.echo(params["seconds"])


ECHO = ActionDefinition(
    name="echo",
    version=1,
    summary="Echo the caller's audio back to them.",
    params=(
        Param(
            "seconds",
            ParamType.SECONDS,
            "how long to echo; default: until the caller hangs up",
            minimum=0,
        ),
    ),
    run=echo,
)

ACTIONS = (ECHO,)
