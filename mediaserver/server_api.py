"""What scenarios may ask of the server besides their call: HTTP requests
(``fetch@v1``), webhooks (``webhook@v1``) and SIP MESSAGE (``message@v1``).

:class:`ServerActions` implements
:class:`~mediaserver.actions.callapi.ServerApi` for the runner. HTTP goes
through one shared httpx client with a per-request timeout and a response
size limit; a JSON response is parsed. Webhooks are queued on the
dispatcher, so a run never waits for a receiver.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from mediaserver.actions.callapi import FetchError, FetchResult
from mediaserver.actions.model import Scenario
from mediaserver.sip.ua import UserAgent
from mediaserver.webhooks.delivery import WebhookDispatcher

MAX_RESPONSE_BYTES = 1 << 20  # a scenario's data, not a download
METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"))

CallStarter = Callable[..., Awaitable[str]]
"""``Server.start_scenario_call``: places a call that runs a scenario."""


class ServerActions:
    def __init__(
        self,
        ua: UserAgent,
        webhooks: WebhookDispatcher,
        user_agent: str,
        start_call: CallStarter | None = None,
    ) -> None:
        self.ua = ua
        self.webhooks = webhooks
        self._client: httpx.AsyncClient | None = None
        self._user_agent = user_agent
        self._start_call = start_call

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"User-Agent": self._user_agent}, follow_redirects=True
            )
        return self._client

    async def fetch(
        self,
        url: str,
        *,
        method: str,
        headers: Mapping[str, str],
        body: object,
        timeout: float,
    ) -> FetchResult:
        method = method.upper()
        if method not in METHODS:
            raise FetchError(f"method {method!r} is not one of {', '.join(sorted(METHODS))}")
        if not url.startswith(("http://", "https://")):
            raise FetchError(f"{url!r} is not an http(s) URL")
        content = None if body is None else json.dumps(body).encode()
        send_headers = dict(headers)
        if content is not None:
            send_headers.setdefault("Content-Type", "application/json")
        try:
            async with self._http().stream(
                method, url, headers=send_headers, content=content, timeout=timeout
            ) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_RESPONSE_BYTES:
                        raise FetchError(f"{url}: the response is over {MAX_RESPONSE_BYTES} bytes")
        except httpx.TimeoutException:
            raise FetchError(f"{url}: no response within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from None
        parsed: Any = bytes(data).decode("utf-8", "replace")
        if "json" in response.headers.get("content-type", "") and data:
            with contextlib.suppress(ValueError):  # not JSON after all: the text stays
                parsed = json.loads(data)
        return FetchResult(response.status_code, parsed, dict(response.headers))

    def webhook(self, url: str | None, event: str, data: Mapping[str, object]) -> None:
        if url is None:
            self.webhooks.publish(event, "", dict(data))
        else:
            self.webhooks.publish_to(url, event, dict(data))

    async def send_message(self, to: str, text: str, *, sender: str | None) -> int | None:
        return await self.ua.send_message(to, text, sender=sender or "mediaserver")

    async def start_call(
        self,
        to: str,
        scenario: Scenario,
        *,
        caller_id: str | None,
        variables: Mapping[str, object],
        timeout: float,
    ) -> str:
        if self._start_call is None:
            raise ValueError("this server cannot place calls for actions")
        return await self._start_call(
            to, scenario, caller_id=caller_id, variables=dict(variables), timeout=timeout
        )
