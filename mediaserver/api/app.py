"""The HTTP API application: routes, authentication, errors, limits, request logs.

:func:`create_app` builds the FastAPI app for a running :class:`Server`.
Every route needs an API key (``mediaserver.api.auth``), the OpenAPI
document at ``/openapi.json`` and the docs pages at ``/docs`` and
``/redoc`` included; ``/metrics`` needs none from loopback, the docs' static
assets none at all, and the ``/api/events`` WebSocket checks its own
handshake. Each request is counted in the metrics and written to the access
log (``mediaserver.api.access_log``). Every error answer, ours or the
framework's, has one JSON shape (:class:`~mediaserver.api.models.ErrorBody`)
naming the field at fault:

- malformed JSON: 400 ``malformed_json``;
- wrong types, missing or unknown fields, bad ids in paths, out-of-range
  query values: 422 ``invalid_request``, every problem in ``details``;
- a body over :data:`MAX_BODY` bytes: 413 ``too_large``, refused before it
  is read in full (by ``Content-Length``, or while it streams in);
- unknown paths 404, wrong methods 405, internal errors 500 (logged).

Handlers validate everything before they change anything, and each change
is one store transaction followed by in-memory updates that cannot fail, so
a refused request leaves nothing half-applied.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediaserver import __version__
from mediaserver.api import metrics
from mediaserver.api.access_log import AccessLog, AccessRecorder
from mediaserver.api.auth import (
    CHALLENGE,
    KeyCheck,
    api_keys,
    require_key,
    require_key_off_loopback,
)
from mediaserver.api.deps import ApplicationService, CatalogService, RunService, WebhookService
from mediaserver.api.docs import add_docs
from mediaserver.api.examples import add_examples
from mediaserver.api.models import ApiError, ErrorBody, ErrorDetail, ErrorInfo
from mediaserver.api.native import ERROR_RESPONSES, JSON_ERROR_RESPONSES, system
from mediaserver.api.routes_audio_files import UPLOAD_LIMIT
from mediaserver.api.routes_audio_files import router as audio_files_router
from mediaserver.api.routes_calls import router as calls_router
from mediaserver.api.routes_events import router as events_router
from mediaserver.api.routes_numbers import not_applicable_router
from mediaserver.api.routes_numbers import router as numbers_router
from mediaserver.api.routes_recordings import router as recordings_router
from mediaserver.api.routes_scenarios import router as scenarios_router
from mediaserver.api.routes_sms import router as sms_router
from mediaserver.api.routes_tasks import router as tasks_router
from mediaserver.api.routes_webhooks import router as webhooks_router
from mediaserver.api.routes_webrtc import router as webrtc_router
from mediaserver.api.telnyx import PREFIX as TELNYX_PREFIX
from mediaserver.api.telnyx.errors import TelnyxError, from_validation, refused, status_error
from mediaserver.api.telnyx.responses import ERROR_RESPONSES as TELNYX_RESPONSES
from mediaserver.api.telnyx.routers import ROUTERS as TELNYX_ROUTERS
from mediaserver.callcontrol.controlled import CommandRefused
from mediaserver.console.routes import router as console_router
from mediaserver.log import get_logger

if TYPE_CHECKING:
    from mediaserver.server import Server

log = get_logger("api")

MAX_BODY = 1024 * 1024
# Paths whose POST bodies may be larger (uploads), each with its own limit.
LARGE_BODIES: tuple[tuple[str, int], ...] = (("/api/audio-files", UPLOAD_LIMIT),)

DESCRIPTION = """\
The native API of mediaserver (shapes from the Callr v2 API). Authenticate with one of
the configured keys as `Authorization: Bearer KEY`, `X-API-Key: KEY` or HTTP Basic
(the key as password). Errors are `{"error": {"code", "message", "field", "details"}}`.
Live call, run, conference and queue events: the WebSocket `/api/events` (not listed here,
as OpenAPI cannot describe WebSockets; see docs/api.md).
"""

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body.wire(), status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "variables", "$x")`` -> ``variables.$x``; ``("query", "limit")`` -> ``limit``."""
    located = bool(loc) and loc[0] in ("body", "query", "path", "header")
    parts = [str(p) for p in loc[1:]] if located else []
    if not parts:
        return str(loc[0]) if loc else "body"
    return ".".join(parts)


def validation_error(exc: RequestValidationError) -> tuple[int, ErrorBody]:
    details: list[ErrorDetail] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        kind = error.get("type", "")
        if kind == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            message = f"malformed JSON body: {reason}"
            info = ErrorInfo(code="malformed_json", message=message, field="body")
            return 400, ErrorBody(error=info)
        field = _field(loc)
        if kind == "extra_forbidden":
            message = f"{field}: unknown field"
        elif kind == "missing" and field == "body":
            message = "body: a JSON object is required"
        else:
            message = f"{field}: {error.get('msg', 'invalid')}"
        details.append(ErrorDetail(field=field, message=message))
    first = details[0] if details else ErrorDetail(field=None, message="invalid request")
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    info = ErrorInfo(
        code="invalid_request", message=first.message + more, field=first.field, details=details
    )
    return 422, ErrorBody(error=info)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int = MAX_BODY) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


class BodyLimit:
    """Refuses bodies over ``limit`` bytes (those of :data:`LARGE_BODIES` paths over
    theirs): by Content-Length up front, else while reading."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.default_limit = limit
        self.limit = limit

    def limit_for(self, method: str, path: str) -> int:
        if method == "POST":  # uploads; other methods on those paths take small JSON
            for prefix, limit in LARGE_BODIES:
                if path == prefix or path.startswith(prefix + "/"):
                    return max(limit, self.default_limit)
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("method", "")), str(scope.get("path", "")))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                body = ErrorBody(
                    error=ErrorInfo(
                        code="too_large" if value.isdigit() else "bad_request",
                        message=f"the request body is over {limit} bytes"
                        if value.isdigit()
                        else "Content-Length is not a number",
                        field="body",
                    )
                )
                response = error_response(413 if value.isdigit() else 400, body)
                await response(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route's body read: the error handlers answer 413.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for ``path`` (the ``Allow`` of a 405).

    Starlette would name only the first route matching the path, but FastAPI
    makes one route per method; the document has them all."""
    matches: list[tuple[int, str, list[str]]] = []
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            matches.append((template.count("{"), template, [m.upper() for m in operations]))
    if not matches:
        return []
    # /api/webhooks/logs is its own resource, not /api/webhooks/{sid}: the literal path wins.
    fewest = min(count for count, _, _ in matches)
    return sorted({m for count, _, methods in matches if count == fewest for m in methods})


def create_app(server: Server) -> FastAPI:
    """The API app for ``server`` (whose store is open)."""
    app = FastAPI(
        title="mediaserver",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,  # served below, behind the key
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server
    # What the routes start, cancel and inject runs through, and change scenarios and
    # numbers through (typed here so the services are checked against the protocols).
    runs: RunService = server.runs
    catalog: CatalogService = server.catalog
    app.state.runs = runs
    app.state.catalog = catalog
    app.state.call_control = server.call_control
    applications: ApplicationService = server.call_control_apps
    app.state.call_control_apps = applications
    webhook_targets: WebhookService = server.webhook_targets
    app.state.webhook_targets = webhook_targets
    app.state.key_check = KeyCheck(api_keys(server.config), dict(server.config.http.key_names))
    telemetry = metrics.Telemetry(server)
    telemetry.loop_lag.start()
    app.state.telemetry = telemetry

    keyed: dict[str, Any] = {"dependencies": [Depends(require_key)], "responses": ERROR_RESPONSES}
    for router in (
        system,
        scenarios_router,
        calls_router,
        recordings_router,
        webhooks_router,
        tasks_router,
        audio_files_router,
        not_applicable_router,
        numbers_router,
        sms_router,
    ):
        app.include_router(router, **keyed)
    for router in TELNYX_ROUTERS:
        app.include_router(
            router,
            prefix=TELNYX_PREFIX,
            dependencies=[Depends(require_key)],
            responses=TELNYX_RESPONSES,
        )
    app.include_router(events_router)  # a WebSocket: authenticates its own handshake
    app.include_router(webrtc_router)  # likewise; and the softphone page, static
    app.include_router(console_router)  # pages without data; its API routes are keyed
    add_docs(app)
    generate = app.openapi

    def openapi_with_examples() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_examples(generate())  # FastAPI caches the document it returns: once
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi_with_examples  # type: ignore[method-assign]

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        dependencies=[Depends(require_key_off_loopback)],
        openapi_extra={"security": [{}]},  # appended: no key is one of the options
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            401: JSON_ERROR_RESPONSES[401],
        },
        tags=["system"],
        summary="Prometheus metrics (no key needed from loopback)",
    )
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(telemetry.render(), media_type=metrics.CONTENT_TYPE)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_key)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    def telnyx(request: Request) -> bool:
        """Whether ``request`` is for the Call Control API (the seed's error shape)."""
        path = request.url.path
        return path == TELNYX_PREFIX or path.startswith(TELNYX_PREFIX + "/")

    @app.exception_handler(TelnyxError)
    async def telnyx_error(_: Request, exc: TelnyxError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(CommandRefused)
    async def command_refused(_: Request, exc: CommandRefused) -> JSONResponse:
        return refused(exc).response()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        if telnyx(request):
            converted = status_error(exc.status, exc.body.error.message)
            return converted.response(exc.headers)
        return error_response(exc.status, exc.body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if telnyx(request):
            return from_validation(exc).response()
        status, body = validation_error(exc)
        return error_response(status, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if telnyx(request):
            seed_headers = dict(exc.headers or {}) or None
            if exc.status_code == 405:
                seed_headers = {"Allow": ", ".join(allowed_methods(app, request.url.path))}
            detail = f"No such endpoint: {request.url.path}"
            if exc.status_code != 404:
                detail = str(exc.detail)
            return status_error(exc.status_code, detail).response(seed_headers)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path}"
        field = "body" if exc.status_code == 413 else None
        headers: dict[str, str] | None = dict(exc.headers or {}) or None
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            headers = {"Allow": ", ".join(allowed_methods(app, request.url.path))}
        elif exc.status_code == 401:  # FastAPI's HTTP Basic parser: undecodable credentials
            field, message = "authorization", "malformed Authorization header"
            headers = {"WWW-Authenticate": CHALLENGE}
        body = ErrorBody(error=ErrorInfo(code=code, message=message, field=field))
        return error_response(exc.status_code, body, headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "http request failed",
            method=request.method,
            path=request.url.path,
            exc_info=exc,
        )
        info = ErrorInfo(code="internal_error", message="internal error; see the server log")
        return error_response(500, ErrorBody(error=info))

    app.add_middleware(BodyLimit)
    access_log = server.config.http.access_log
    path = server.config.storage_path(access_log) if access_log is not None else None
    app.add_middleware(AccessLog, recorder=AccessRecorder(path, telemetry.http))
    return app
