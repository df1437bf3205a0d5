"""``GET /api/events``: the live event stream, a WebSocket (like Asterisk ARI's events socket).

The handshake is authenticated like every API request, or with ``?key=KEY``
(:mod:`mediaserver.api.ws_auth`); a bad filter is answered with 422.

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

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from mediaserver.api.models import ErrorInfo
from mediaserver.api.ws_auth import authenticate, deny
from mediaserver.events import EventBus, EventFilter, Subscription, parse_types
from mediaserver.log import get_logger

log = get_logger("api")

router = APIRouter()

CLOSE_GOING_AWAY = 1001  # RFC 6455 7.4.1: the server is going down
CLOSE_TOO_SLOW = 4000  # RFC 6455 7.4.2: 4000-4999 are the application's own


@router.websocket("/api/events")
async def event_stream(websocket: WebSocket) -> None:
    query = websocket.query_params
    label = await authenticate(websocket, "the stream")
    if label is None:
        return
    try:
        types = parse_types(query.get("types"))
    except ValueError as exc:
        await deny(websocket, 422, ErrorInfo(code="invalid_request", message=str(exc),
                                             field="types"))  # fmt: skip
        return
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
