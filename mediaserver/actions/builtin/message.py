"""``message@v1``: send a SIP MESSAGE (RFC 3428), the SMS of SIP.

``to`` is a SIP URI, a registered user (the message goes where the phone
registered from) or a number (through the first trunk), as for ``dial@v1``;
``from`` is the user part of the From (default ``mediaserver``; a trunk's
``from_user`` replaces it). The action waits for the final response, at most
32 s (RFC 3261 Timer F, 64*T1, when nobody answers at all).

The result is ``{status, delivered}``: the SIP status of the final response
(``null`` when none came) and whether it was a 2xx. A refusal (404, 486...)
or no answer is a result, not a failure; the action fails only when the
message cannot be sent: ``to`` is not something the server can reach (an
unregistered user, a number without a trunk), ``from`` is not a SIP user
part, or ``text`` is too long.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

MAX_TEXT_BYTES = 1024
"""RFC 3428 section 9: a MESSAGE on a transport without congestion control
(UDP) must stay under 1300 bytes, headers included; headers take about 300."""

_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]{1,64}")
"""RFC 3261 25.1 ``user``: what may stand before the @ of the From URI."""


async def message(context: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
    sandbox = context.sandbox
    to = sandbox.interpolate(params["to"]).strip()
    if not to:
        raise ActionFailed("to: the recipient is empty")
    text = sandbox.interpolate(params["text"])
    size = len(text.encode())
    if size > MAX_TEXT_BYTES:
        raise ActionFailed(f"text: {size} bytes is over the {MAX_TEXT_BYTES}-byte limit")
    sender = None
    if params["from"] is not None:
        sender = sandbox.interpolate(params["from"]).strip()
        if not _USER.fullmatch(sender):
            raise ActionFailed(f"from: {sender!r} is not a SIP user name or number")
    try:
        status = await context.server.send_message(to, text, sender=sender)
    except ValueError as exc:  # the user agent's TargetError: nowhere to send it
        raise ActionFailed(f"to: {exc}") from None
    delivered = status is not None and 200 <= status < 300
    context.log.info("message sent", to=to, status=status, delivered=delivered)
    return {"status": status, "delivered": delivered}


MESSAGE = ActionDefinition(
    name="message",
    version=1,
    summary="Send a SIP MESSAGE (a text message) to a SIP URI, user or number.",
    params=(
        Param(
            "to",
            ParamType.STRING,
            "a SIP URI, a registered user or a number",
            required=True,
            interpolated=True,
        ),
        Param(
            "text",
            ParamType.STRING,
            f"the message, at most {MAX_TEXT_BYTES} bytes in UTF-8",
            required=True,
            interpolated=True,
        ),
        Param(
            "from",
            ParamType.STRING,
            "user part of the From URI (a name or number); default: mediaserver",
            interpolated=True,
        ),
    ),
    run=message,
    result="an object: status (the SIP status of the final response, null without one), "
    "delivered (true for a 2xx)",
    needs_call=False,
)

ACTIONS = (MESSAGE,)
