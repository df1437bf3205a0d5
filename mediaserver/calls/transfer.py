"""Blind transfer: ``transfer@v1`` by bridge or by REFER (RFC 3515), and REFER both ways.

As the transferor (``transfer@v1`` in ``refer`` mode) the server sends REFER
in the call's dialog asking the peer to call the target, then follows the
progress the peer reports in NOTIFY requests (``Event: refer``, a
``message/sipfrag`` body holding a status line, RFC 3515 2.4.5). A 2xx there
means the transfer worked and the server hangs up its own dialog (RFC 5589
6); anything else leaves the call with the server, which goes on.

As the transferee the server accepts a REFER from the callee of a
``dial@v1`` bridge: it calls the target and, when it answers, puts it in the
callee's place (the caller stays connected), reporting progress to the
transferor with NOTIFY. A REFER on a call in no bridge is declined.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mediaserver.actions.callapi import DialError, DialOptions
from mediaserver.log import get_logger
from mediaserver.sip.message import REASON_PHRASES, Request, make_response
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.uri import NameAddress, SipSyntaxError

if TYPE_CHECKING:
    from mediaserver.calls.base import Call
    from mediaserver.calls.bridge import Bridge

log = get_logger("transfer")

REFER_TIMEOUT = 30.0  # how long the transferor waits for the final NOTIFY
TRANSFEROR_BYE_WAIT = 5.0  # RFC 5589 6: the transferor ends its dialog; if it does not, we do

_SIPFRAG = re.compile(r"^SIP/2\.0 (\d{3})")


def sipfrag_status(request: Request) -> int | None:
    """The status line of a NOTIFY's message/sipfrag body (RFC 3420)."""
    if not request.content_type.startswith("message/sipfrag"):
        return None
    m = _SIPFRAG.match(request.body.decode("utf-8", "replace").lstrip())
    return int(m.group(1)) if m else None


async def transfer(call: Call, target: str, mode: str | None) -> str:
    """``transfer@v1``: by REFER when asked, or by default when the target is a SIP
    URI, the peer allows REFER and the call is answered; otherwise by bridging
    (``dial@v1`` to the target, then this call is hung up once it answers)."""
    call.check()
    is_uri = target.lower().startswith(("sip:", "sips:"))
    allows_refer = "REFER" in {m.strip().upper() for m in call.peer_allow}
    if mode is None:
        mode = "refer" if is_uri and allows_refer and call.answered else "bridge"
    if mode == "refer":
        if not is_uri:
            raise DialError("transfer by REFER needs a SIP URI target")
        if not call.answered:
            await call.answer()
        return await refer(call, target)
    result = await call.dial([target], DialOptions())
    if result.status != "answered":
        return "failed"
    await call.hangup("normal_clearing")
    return "transferred"


async def refer(
    call: Call,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    on_status: Callable[[int], None] | None = None,
) -> str:
    """Ask the peer to call ``target`` (REFER, with ``headers`` besides), then follow
    its NOTIFYs (each status told to ``on_status``): ``transferred`` (the call is then
    hung up) or ``failed`` (the call goes on)."""
    call.check()
    assert call.dialog is not None
    refer_headers = [
        ("Refer-To", f"<{target}>"),
        ("Referred-By", f"<sip:mediaserver@{call.local_host}>"),
        *headers,
    ]
    updates: asyncio.Queue[int] = asyncio.Queue()
    call.refer_updates = updates
    try:
        response = await call.channel.request("REFER", refer_headers)
        if response is None or not 200 <= response.status < 300:
            log.info("REFER refused", status=response.status if response else None, call_id=call.id)
            if on_status is not None:
                on_status(response.status if response is not None else 408)
            return "failed"
        status = 100
        deadline = asyncio.get_running_loop().time() + REFER_TIMEOUT
        while status < 200:
            update = asyncio.ensure_future(updates.get())
            left = deadline - asyncio.get_running_loop().time()
            await call.wait_any([update], max(0.0, left), wake_on_digit=False)
            if not update.done():
                update.cancel()
                call.check()  # the peer hung up meanwhile: the run ends
                log.info("no final NOTIFY for our REFER", call_id=call.id)
                return "failed"
            status = update.result()
            if on_status is not None:
                on_status(status)
    finally:
        call.refer_updates = None
    if not 200 <= status < 300:
        log.info("transfer failed", status=status, call_id=call.id)
        return "failed"
    log.info("call transferred", target=target, call_id=call.id)
    await call.hangup("normal_clearing")
    return "transferred"


def on_notify(call: Call, tx: ServerTransaction, request: Request) -> None:
    """A NOTIFY in the call's dialog: the progress of our REFER (RFC 3515 2.4.4)."""
    event = (request.headers.get("Event") or request.headers.get("o") or "").split(";")[0]
    if event.strip().lower() != "refer":
        call.endpoint.respond(tx, make_response(request, 489, "Bad Event"))  # RFC 6665 8.2.3
        return
    call.endpoint.respond(tx, make_response(request, 200))
    status = sipfrag_status(request)
    if status is not None and call.refer_updates is not None:
        call.refer_updates.put_nowait(status)


def on_refer(call: Call, bridge: Bridge | None, tx: ServerTransaction, request: Request) -> None:
    """A REFER from the peer: accepted (202) when the call is the callee of a bridge,
    whose caller then gets connected to the Refer-To target."""
    if bridge is None or bridge.callee is not call:
        call.endpoint.respond(tx, make_response(request, 603, "Decline (no bridge to transfer)"))
        return
    try:
        target = NameAddress.parse(request.headers.get("Refer-To") or "").uri
    except SipSyntaxError:
        call.endpoint.respond(tx, make_response(request, 400, "Bad Refer-To header"))
        return
    if "?" in str(target):  # Replaces=...: an attended transfer (RFC 3891), not supported
        call.endpoint.respond(tx, make_response(request, 501, "Attended transfer not supported"))
        return
    if bridge.transfer is not None and not bridge.transfer.done():
        call.endpoint.respond(tx, make_response(request, 491, "A transfer is under way"))
        return
    call.endpoint.respond(tx, make_response(request, 202))
    bridge.transfer = call.schedule(_transferee(call, bridge, str(target)))


async def _transferee(call: Call, bridge: Bridge, target: str) -> None:
    await _notify(call, 100, active=True)
    status = await bridge.replace_callee(target)
    await _notify(call, status, active=False)
    if status == 200:
        # The transferor now ends its own dialog (RFC 5589 6); otherwise we do.
        await call.wait_any([], TRANSFEROR_BYE_WAIT, wake_on_digit=False)
        if not call.ended:
            await call.hangup("normal_clearing")
        call.finish()


async def _notify(call: Call, status: int, *, active: bool) -> None:
    """Report the transfer's progress to the transferor (RFC 3515 2.4.4)."""
    if call.ended or call.dialog is None:
        return
    state = "active;expires=60" if active else "terminated;reason=noresource"
    headers = [("Event", "refer"), ("Subscription-State", state)]
    sipfrag = f"SIP/2.0 {status} {REASON_PHRASES.get(status, 'Unknown')}\r\n".encode()
    with contextlib.suppress(Exception):
        await call.channel.request(
            "NOTIFY", headers, sipfrag, content_type="message/sipfrag;version=2.0"
        )
