"""``fetch@v1``: an HTTP request whose answer the scenario can use.

The request goes out through the server (:meth:`ServerApi.fetch`): ``url``
and the ``headers`` values are interpolated; ``body``, when given, is sent as
JSON (``Content-Type: application/json`` unless a header says otherwise),
rendered by :mod:`mediaserver.actions.builtin.data`. The whole exchange,
connection included, must end within ``timeout`` seconds.

The result is ``{status, body, headers}``: the HTTP status, the body parsed
as JSON when the response says it is JSON (else its text), and the response
headers with lower-case names. Any status is a result, 4xx and 5xx included,
so the scenario decides what a 404 means. The action *fails* (its
``on-error`` runs) only when there is no HTTP answer at all: the timeout, a
refused connection, an unknown host, a URL that is not http(s), a response
over 1 MiB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.builtin.data import render
from mediaserver.actions.callapi import FetchError
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
URL_PATTERN = r"(?is)(https?://|\$\{).+"
URL_HINT = "an http:// or https:// URL"


async def fetch(context: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
    sandbox = context.sandbox
    url = sandbox.interpolate(params["url"])
    method: str = params["method"]
    headers = {
        # One spelling of Content-Type, so the JSON default cannot be added beside it.
        "Content-Type" if name.lower() == "content-type" else name: sandbox.interpolate(value)
        for name, value in params["headers"].items()
    }
    body = None if params["body"] is None else render(params["body"], sandbox)
    timeout: float = params["timeout"]
    server = context.server
    try:
        # httpx's timeout bounds each phase; this bounds the whole exchange.
        async with asyncio.timeout(timeout):
            response = await server.fetch(
                url, method=method, headers=headers, body=body, timeout=timeout
            )
    except TimeoutError:
        raise ActionFailed(f"{method} {url}: no response within {timeout:g} s") from None
    except FetchError as exc:
        raise ActionFailed(f"{method} {url}: {exc}") from None
    context.log.info("fetched", method=method, url=url, status=response.status)
    return {
        "status": response.status,
        "body": response.body,
        "headers": {name.lower(): value for name, value in response.headers.items()},
    }


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    if values.get("body") is not None and values.get("method") in ("GET", "HEAD"):
        return [("body", f"fetch@v1: a {values['method']} request has no body; use POST or PUT")]
    return []


FETCH = ActionDefinition(
    name="fetch",
    version=1,
    summary="Make an HTTP request and keep its status and (JSON) body.",
    params=(
        Param(
            "url",
            ParamType.STRING,
            "the http(s) URL; ${...} is interpolated",
            required=True,
            interpolated=True,
            pattern=URL_PATTERN,
            pattern_hint=URL_HINT,
        ),
        Param("method", ParamType.STRING, "the HTTP method", default="GET", choices=METHODS),
        Param(
            "headers",
            ParamType.HEADERS,
            "request headers; values are interpolated",
            default={},
            interpolated=True,
        ),
        Param(
            "body",
            ParamType.DATA,
            "sent as JSON (not with GET or HEAD); default: no body",
        ),
        Param(
            "timeout",
            ParamType.SECONDS,
            "seconds the whole request may take before the action fails",
            default=5.0,
            minimum=0.5,
            maximum=60,
        ),
    ),
    run=fetch,
    result="an object: status (the HTTP status, whatever it is), body (parsed when the "
    "response is JSON, else text), headers (lower-case names)",
    check=_check,
    needs_call=False,
)

ACTIONS = (FETCH,)
