"""``transfer@v1``: hand the call to someone else.

In ``refer`` mode the server sends the caller's phone a SIP REFER: the phone
calls the target itself and the server leaves the call once the phone reports
success. In ``bridge`` mode the server calls the target and joins the two
calls, as ``dial@v1`` does, until either hangs up. Without ``mode``, REFER is
used when the caller's phone allows it (its ``Allow`` header) and the target
is a SIP URI; otherwise the call is bridged. The result is ``transferred``
(the call is then over for this run) or ``failed`` (the call goes on here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import DialError
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

MODES = ("refer", "bridge")


async def transfer(context: ActionContext, params: Mapping[str, Any]) -> str:
    target = context.sandbox.interpolate(params["target"])
    try:
        outcome = await context.call.transfer(target, params["mode"])
    except DialError as exc:
        raise ActionFailed(str(exc)) from None
    context.log.info("transfer ended", target=target, outcome=outcome)
    return outcome


TRANSFER = ActionDefinition(
    name="transfer",
    version=1,
    summary="Hand the call to another party: by SIP REFER, or by calling them and bridging.",
    params=(
        Param(
            "target",
            ParamType.STRING,
            "a SIP URI (REFER or bridge), a registered user or a number (bridge)",
            required=True,
            interpolated=True,
        ),
        Param(
            "mode",
            ParamType.STRING,
            "refer or bridge; default: refer when the caller's phone allows it and the "
            "target is a SIP URI, else bridge",
            choices=MODES,
        ),
    ),
    run=transfer,
    result="transferred (the call is over for this run) or failed (the call goes on)",
)

ACTIONS = (TRANSFER,)
