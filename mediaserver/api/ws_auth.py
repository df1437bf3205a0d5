"""The handshake of the API's WebSockets (``/api/events``, ``/api/webrtc``):
the API key and the page's origin, checked before anything is accepted.

A handshake presents a key like every API request (``Authorization: Bearer
KEY``, ``X-API-Key: KEY`` or HTTP Basic), or with ``?key=KEY`` because
browsers cannot set headers on a WebSocket. A refused handshake is answered
with HTTP 401 and the API's JSON error (403 from servers without the
WebSocket denial extension); a handshake from a page of another site (its
``Origin`` is not this server) with 403.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from mediaserver.api.auth import CHALLENGE, KeyCheck, presented_keys
from mediaserver.api.models import ErrorBody, ErrorInfo


async def deny(websocket: WebSocket, status: int, info: ErrorInfo) -> None:
    headers = {"WWW-Authenticate": CHALLENGE} if status == 401 else None
    response = JSONResponse(ErrorBody(error=info).wire(), status_code=status, headers=headers)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:  # the server answers a close before accept with 403
        await websocket.close(code=1008, reason=info.message[:120])


def foreign_origin(websocket: WebSocket) -> str | None:
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


async def authenticate(websocket: WebSocket, what: str) -> str | None:
    """The label of the key the handshake presents, or None once it is refused
    (``what`` names the endpoint in the message to a foreign page)."""
    origin = foreign_origin(websocket)
    if origin is not None:
        message = f"Origin {origin} is another site: open {what} from this server's pages"
        await deny(websocket, 403, ErrorInfo(code="forbidden", message=message, field="origin"))
        return None
    check: KeyCheck = websocket.app.state.key_check
    presented, unreadable = presented_keys(websocket.headers, websocket.query_params.get("key"))
    label = check.verify(presented, unreadable)
    if label is None:
        message = "wrong API key" if presented or unreadable else "an API key is required"
        await deny(websocket, 401, ErrorInfo(code="unauthorized", message=message,
                                             field="authorization"))  # fmt: skip
        return None
    websocket.state.api_key = label
    return label
