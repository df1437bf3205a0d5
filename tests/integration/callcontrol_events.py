"""Reading the Call Control events a test's ``WebPeer`` received, and checking their
signatures with the SDK (``webhooks.unwrap`` and the server's public key)."""

from __future__ import annotations

import json
from typing import Any

import telnyx

from tests.integration.conftest import ServerProcess
from tests.integration.webpeer import Request, WebPeer


def event_of(request: Request) -> dict[str, Any]:
    """The event (the envelope's ``data``) a request carried."""
    data: dict[str, Any] = json.loads(request.body)["data"]
    return data


def wait_request(
    web: WebPeer, event_type: str, *, path: str = "/hooks", timeout: float = 15.0, **fields: Any
) -> Request:
    """The first request to ``path`` carrying ``event_type`` whose payload has ``fields``."""

    def match(request: Request) -> bool:
        if request.path != path:
            return False
        data = event_of(request)
        payload = data["payload"]
        return bool(
            data["event_type"] == event_type and all(payload.get(k) == v for k, v in fields.items())
        )

    return web.wait_for(match, timeout=timeout)


def wait_event(
    web: WebPeer, event_type: str, *, path: str = "/hooks", timeout: float = 15.0, **fields: Any
) -> dict[str, Any]:
    """:func:`wait_request`'s event."""
    return event_of(wait_request(web, event_type, path=path, timeout=timeout, **fields))


def verified(request: Request, server: ServerProcess) -> dict[str, Any]:
    """The request's event, once the SDK's ``webhooks.unwrap`` took it (signature,
    timestamp, typed model) with ``server``'s public key."""
    sdk = telnyx.Telnyx(api_key="unused", base_url=f"{server.api_url}/telnyx/v2")
    unwrapped = sdk.webhooks.unwrap(
        request.body.decode(), headers=request.headers, key=server.public_key
    )
    data = event_of(request)
    assert unwrapped.data is not None and unwrapped.data.event_type == data["event_type"]
    return data
