"""``GET /api/events``: the live event stream, a WebSocket (like Asterisk ARI's events socket).

The handshake is authenticated like every API request (``Authorization:
Bearer KEY``, ``X-API-Key: KEY`` or HTTP Basic), or with ``?key=KEY``
because browsers cannot set headers on a WebSocket. A refused handshake is
answered with HTTP 401 and the API's JSON error (403 from servers without
the WebSocket denial extension); a bad filter with 422; a handshake from a
page of another site (its ``Origin`` is not this server) with 403.

Filter (query): ``types``, comma-separated event patterns in the webhook
syntax (``call.*,run.action``; default every event), and ``call_id``, one
call's events only. Each event is one JSON text message,
``{"seq", "type", "occurred_at", "payload"}``; the first message is
``stream.subscribed`` with the filter in force. The server ignores what the
client sends. Close codes: 1001 when the server stops, 4000 after a
``stream.dropped`` message when the client read too slowly
(:mod:`mediaserver.events`).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from mediaserver.api.auth import CHALLENGE, KeyCheck, presented_keys
from mediaserver.api.models import ErrorBody, ErrorInfo
from mediaserver.events import EventBus, EventFilter, Subscription, parse_types
from mediaserver.log import get_logger

log = get_logger("api")

router = APIRouter()

CLOSE_GOING_AWAY = 1001  # RFC 6455 7.4.1: the server is going down
CLOSE_TOO_SLOW = 4000  # RFC 6455 7.4.2: 4000-4999 are the application's own


async def _deny(websocket: WebSocket, status: int, info: ErrorInfo) -> None:
    headers = {"WWW-Authenticate": CHALLENGE} if status == 401 else None
    response = JSONResponse(ErrorBody(error=info).wire(), status_code=status, headers=headers)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:  # the server answers a close before accept with 403
        await websocket.close(code=1008, reason=info.message[:120])


def _foreign_origin(websocket: WebSocket) -> str | None:
    """The handshake's Origin when a page of another site opened it, else None.

    Browsers send HTTP Basic credentials they hold for this server with any
    page's WebSocket and WebSockets have no CORS, so a foreign page could read
    the stream (RFC 6455 10.2: servers check Origin). Other clients send none."""
    origin = websocket.headers.get("origin")
    if origin is None or origin == "null":
        return origin
    if urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower():
        return None
    return origin


@router.websocket("/api/events")
async def event_stream(websocket: WebSocket) -> None:
    query = websocket.query_params
    origin = _foreign_origin(websocket)
    if origin is not None:
        message = f"Origin {origin} is another site: open the stream from this server's pages"
        await _deny(websocket, 403, ErrorInfo(code="forbidden", message=message, field="origin"))
        return
    check: KeyCheck = websocket.app.state.key_check
    presented, unreadable = presented_keys(websocket.headers, query.get("key"))
    label = check.verify(presented, unreadable)
    if label is None:
        message = "wrong API key" if presented or unreadable else "an API key is required"
        await _deny(websocket, 401, ErrorInfo(code="unauthorized", message=message,
                                              field="authorization"))  # fmt: skip
        return
    try:
        types = parse_types(query.get("types"))
    except ValueError as exc:
        await _deny(websocket, 422, ErrorInfo(code="invalid_request", message=str(exc),
                                              field="types"))  # fmt: skip
        return
    websocket.state.api_key = label
    event_filter = EventFilter(types, query.get("call_id") or None)
    bus: EventBus = websocket.app.state.server.events
    await websocket.accept()
    subscription = bus.subscribe(event_filter)
    log.info("event stream opened", key=label, types=",".join(types),
             call_id=event_filter.call_id)  # fmt: skip
    hello = {
        "seq": 0,
        "type": "stream.subscribed",
        "payload": {"types": list(types), "call_id": event_filter.call_id},
    }
    sender = asyncio.get_running_loop().create_task(_send(websocket, subscription, hello))
    listener = asyncio.get_running_loop().create_task(_until_disconnect(websocket))
    try:
        await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        bus.unsubscribe(subscription)
        for task in (sender, listener):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        log.info("event stream closed", key=label, reason=subscription.dropped_reason)


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _send(websocket: WebSocket, subscription: Subscription, hello: dict[str, object]) -> None:
    try:
        await websocket.send_json(hello)
        while (event := await subscription.next()) is not None:
            await websocket.send_json(event.wire())
        reason = subscription.dropped_reason or "closed"
        if subscription.lost:  # cut off for lagging, not the server stopping
            dropped = {"seq": 0, "type": "stream.dropped",
                       "payload": {"reason": reason, "lost": subscription.lost}}  # fmt: skip
            await websocket.send_json(dropped)
            await websocket.close(CLOSE_TOO_SLOW, reason[:120])
        else:
            await websocket.close(CLOSE_GOING_AWAY, reason[:120])
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client went away meanwhile
