"""The HTTP client of scenarios: ``fetch@v1`` requests, and the Call Flow Loop's
callbacks, which go through the same :meth:`HttpFetcher.fetch`.

One shared httpx client (made on first use, so a server whose scenarios never
fetch opens none) with a per-request timeout and a response size limit;
redirects are followed. A JSON response is parsed, anything else is returned
as text. Every failure is a :class:`~mediaserver.actions.callapi.FetchError`
naming the URL, which the run reports like any action error.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import httpx

from mediaserver.actions.callapi import FetchError, FetchResult

MAX_RESPONSE_BYTES = 1 << 20  # a scenario's data, not a download
METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"))


class HttpFetcher:
    """Makes the HTTP requests scenarios ask for, with one shared client."""

    def __init__(self, user_agent: str) -> None:
        self._client: httpx.AsyncClient | None = None
        self._user_agent = user_agent

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
