"""The native API (SPEC section 5): what every route module shares, and ``/api/ping``.

Routes live by subject in ``routes_scenarios`` (scenarios, runs, numbers),
``routes_calls`` (live calls, conferences, queues, call records),
``routes_recordings`` and ``routes_webhooks``; ``mediaserver.api.app`` puts
them together behind the API-key check. Handlers start runs and change
scenarios and numbers through the services of :mod:`mediaserver.api.deps`;
they read the rest of the running server through :func:`server_of` and its
store through :func:`store_of`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from mediaserver.api.models import MAX_PAGE, ApiError, ErrorBody, Pong
from mediaserver.store import Store
from mediaserver.store.cdrs import rfc3339
from mediaserver.store.db import to_ms

if TYPE_CHECKING:
    from mediaserver.server import Server

MAX_OFFSET = 1_000_000_000

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="search offset (zero-based)")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="number of hits to return")]
SortOrder = Annotated[Literal["asc", "desc"], Query(description="sort order")]

# Every error answer a keyed route may give, so the OpenAPI document lists them.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed JSON body"},
    401: {"model": ErrorBody, "description": "no API key, or a wrong one"},
    404: {"model": ErrorBody, "description": "unknown id"},
    413: {"model": ErrorBody, "description": "body over the size limit"},
    422: {"model": ErrorBody, "description": "invalid input; names the field"},
    500: {"model": ErrorBody, "description": "internal error"},
}
# The same, spelled out for routes whose success is not JSON (CSV, audio, metrics): given a
# "model", FastAPI would document the errors in the route's own media type.
JSON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "description": answer["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for code, answer in ERROR_RESPONSES.items()
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "conflicts with the current state"}
}
ON_ANOTHER_NODE: dict[int | str, dict[str, Any]] = {
    421: {"model": ErrorBody, "description": "the call is live on another node (named)"}
}


def server_of(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def store_of(request: Request) -> Store:
    store = server_of(request).store
    if store is None:
        raise ApiError(503, "unavailable", "the server is starting or stopping")
    return store


def timestamp(moment: datetime) -> str:
    text = rfc3339(moment)
    assert text is not None
    return text


def opt_timestamp(moment: datetime | None) -> str | None:
    return rfc3339(moment)


def aware(moment: datetime | None, field: str) -> datetime | None:
    """A query time as an aware UTC datetime (naive ones are taken as UTC); 422 if unusable."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        to_ms(moment)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "invalid_request", f"{field}: time out of range", field) from None


def page_of(hits: list[Any], total: int, offset: int) -> dict[str, Any]:
    """A page answer (validated by each route's ``Page`` model)."""
    return {"offset": offset, "total": total, "hasMore": offset + len(hits) < total, "hits": hits}


def slice_page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    return page_of(items[offset : offset + limit], len(items), offset)


system = APIRouter(tags=["system"])


@system.get("/api/ping", response_model=Pong, summary="Ping the API")
async def ping(request: Request) -> Pong:
    return Pong(time=timestamp(datetime.now(UTC)), node=server_of(request).config.node.name)
