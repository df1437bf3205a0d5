"""The HTTP access log: one JSON object per request, and the HTTP request metrics.

Each answered request gives one line: ``at`` (RFC 3339 UTC), ``method``,
``path`` (never the query string: it may hold ``?key=``), ``route`` (the
template, ``/api/calls/{call_id}``), ``status``, ``ms``, ``client`` and
``key``: the *name* of the API key used (:func:`~mediaserver.api.auth.key_label`,
``null`` when none was needed or none was right), never the key itself.

With ``http.access_log: PATH`` in the config the lines are appended to that
file (relative paths under the data folder), one JSON object per line, flushed
as written; without it each one is logged as an ``http request`` event at
info level on the process log (JSON there with ``--log-format json``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediaserver.api.metrics import HttpMetrics
from mediaserver.log import get_logger

log = get_logger("access")

UNMATCHED = "unmatched"  # the route of a 404: a raw path would be unbounded in the metrics


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/api/calls/{call_id}``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    mounted = scope.get("root_path")  # a mount (the docs' assets) answered: its prefix
    return f"{mounted}/{{path}}" if isinstance(mounted, str) and mounted else UNMATCHED


class AccessRecorder:
    """Writes access lines and counts requests (one per app)."""

    def __init__(self, path: Path | None, http: HttpMetrics | None = None) -> None:
        self.path = path
        self.http = http
        self._file: IO[str] | None = None

    def record(self, entry: dict[str, Any]) -> None:
        if self.http is not None:
            self.http.observe(entry["method"], entry["route"], entry["status"], entry["ms"] / 1000)
        if self.path is None:
            log.info("http request", **entry)
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", buffering=1)  # line-buffered
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class AccessLog:
    """ASGI middleware: times each HTTP request and records it once it is answered."""

    def __init__(self, app: ASGIApp, recorder: AccessRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        at = datetime.now(UTC)
        started = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            state = scope.get("state") or {}
            self.recorder.record(
                {
                    "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "method": scope.get("method", ""),
                    "path": scope.get("path", ""),
                    "route": route_of(scope),
                    "status": status or 500,  # no answer started: the app failed
                    "ms": round((time.monotonic() - started) * 1000, 1),
                    "client": client[0] if client else None,
                    "key": state.get("api_key"),
                }
            )
