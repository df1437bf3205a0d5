"""``/api/webrtc``: a browser's call, signalled over a WebSocket; ``/phone``: the page.

One call per WebSocket, authenticated like ``/api/events``
(:mod:`mediaserver.api.ws_auth`). The page sends ``{"type": "call", "to":
NUMBER, "sdp": OFFER}`` (a complete offer: non-trickle ICE; ``"from"``
optionally names the caller), the server answers ``{"type": "answer", "sdp",
"call_id"}`` and then tells ``ringing``, ``answered`` and ``{"type":
"hangup", "reason"}``, after which it closes the socket. The page hangs up
with ``{"type": "hangup"}`` or by closing the socket. A call that cannot be
made gets ``{"type": "error", "code", "message"}`` and the socket closes
with 4400. The media is :mod:`mediaserver.webrtc`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import Response

from mediaserver.api.ws_auth import authenticate
from mediaserver.log import get_logger
from mediaserver.webrtc.call import WebRtcCall
from mediaserver.webrtc.gateway import OfferRefused, WebRtcGateway

log = get_logger("webrtc")

router = APIRouter()

CLOSE_REFUSED = 4400  # RFC 6455 7.4.2: the application's own range
OFFER_TIMEOUT = 30.0  # seconds the page has to send its offer
MAX_NAME = 64
_PAGES = {
    "": ("phone.html", "text/html"),
    "phone.js": ("phone.js", "text/javascript"),
    "phone-page.js": ("phone-page.js", "text/javascript"),
}


@router.get("/phone", include_in_schema=False)
@router.get("/phone/{asset}", include_in_schema=False)
async def phone_page(asset: str = "") -> Response:
    """The softphone page and its script (static: the API key is asked for on the page)."""
    if asset not in _PAGES:
        return Response(status_code=404)
    name, media_type = _PAGES[asset]
    page = resources.files("mediaserver.webrtc").joinpath("static", name).read_bytes()
    return Response(page, media_type=media_type, headers={"Cache-Control": "no-cache"})


def _offer(message: Any) -> tuple[str, str, str]:
    """The number, offer and caller of the page's first message; ValueError names
    what is wrong."""
    if not isinstance(message, dict) or message.get("type") != "call":
        raise ValueError('the first message must be {"type": "call", "to": ..., "sdp": ...}')
    to, sdp, caller = message.get("to"), message.get("sdp"), message.get("from", "browser")
    if not isinstance(to, str) or not to.strip():
        raise ValueError("to: the number or route to call is missing")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise ValueError("sdp: the offer (RTCSessionDescription.sdp) is missing")
    if not isinstance(caller, str) or not 0 < len(caller) <= MAX_NAME:
        raise ValueError(f"from: a name of 1 to {MAX_NAME} characters")
    return to.strip(), sdp, caller


@router.websocket("/api/webrtc")
async def webrtc_call(websocket: WebSocket) -> None:
    if await authenticate(websocket, "a call") is None:
        return
    await websocket.accept()
    try:
        first = await asyncio.wait_for(websocket.receive_json(), OFFER_TIMEOUT)
        to, sdp, caller = _offer(first)
    except (ValueError, TimeoutError, WebSocketDisconnect) as exc:
        await _refuse(websocket, "invalid_request", str(exc) or "no offer in time")
        return
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    calls: list[WebRtcCall] = []
    client = websocket.client
    browser = (client.host, client.port) if client is not None else ("127.0.0.1", 0)
    gateway: WebRtcGateway = websocket.app.state.server.webrtc
    loop = asyncio.get_running_loop()
    placing = loop.create_task(
        gateway.place(sdp, to, caller=caller, browser=browser, tell=outbox.put_nowait,
                      on_call=calls.append)
    )  # fmt: skip
    sender = loop.create_task(_send(websocket, outbox))
    listener = loop.create_task(_listen(websocket))
    try:
        await asyncio.wait({placing, sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        if listener.done():  # the page hung up or went away
            if not calls:
                return  # before its call existed: placing is cancelled, the leg freed
            calls[0].on_remote_bye()
        if placing.done() and isinstance(placing.exception(), OfferRefused):
            await _refuse(websocket, "not_acceptable", str(placing.exception()))
            return
        await placing  # the call's run, to its end
        if not listener.done():  # ended here: the page is told (once: the sender stops)
            cause = calls[0].hangup_cause if calls else None
            outbox.put_nowait({"type": "hangup", "reason": cause or "normal_clearing"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sender, 5.0)
    finally:
        for task in (placing, sender, listener):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _send(websocket: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    """The call's messages to the page; the socket closes after ``hangup``."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            message = await outbox.get()
            await websocket.send_json(message)
            if message["type"] == "hangup":
                await websocket.close(1000)
                return


async def _listen(websocket: WebSocket) -> None:
    """Until the page hangs up: a ``hangup`` message or the socket closing."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            with contextlib.suppress(ValueError):
                said = json.loads(message.get("text") or "null")
                if isinstance(said, dict) and said.get("type") == "hangup":
                    return


async def _refuse(websocket: WebSocket, code: str, message: str) -> None:
    log.info("webrtc call refused", reason=message)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_json({"type": "error", "code": code, "message": message})
        await websocket.close(CLOSE_REFUSED, message[:120])
