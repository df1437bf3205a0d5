"""``GET /call_events``: the log of Call Control webhook attempts (and commands), seed 002.

Filters are the seed's (``filter[type]``, ``filter[status]``,
``filter[call_leg_id]``, ``filter[call_session_id]``, one
``filter[event_timestamp][gt|gte|lt|lte|eq]``) and the SDK's spellings of the
same (``filter[leg_id]``, ``filter[application_session_id]``,
``filter[occurred_at][...]``), plus ``filter[application_name][contains]``
and ``filter[name]`` (the event type). As the seed says, events are ordered
by time, oldest first, and without a call leg or session filter only the
last 24 hours are searched. Each line is one attempt: ``metadata.event`` is
the body posted, ``metadata.delivery`` how it went.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from mediaserver.api.native import store_of
from mediaserver.api.telnyx.applications import PaginationMeta, invalid_parameter, page_meta
from mediaserver.store import CallEvent, CallEventFilter
from mediaserver.webhooks.envelope import format_occurred_at

router = APIRouter(tags=["Debugging"])

WINDOW = timedelta(hours=24)
BOUNDS = ("gt", "gte", "lt", "lte", "eq")
Id = Annotated[str | None, Query(max_length=128)]


class CallEventOut(BaseModel):
    """The seed's ``CallEvent``."""

    record_type: Literal["call_event"] = "call_event"
    call_leg_id: str
    call_session_id: str
    event_timestamp: str
    name: str
    type: Literal["command", "webhook"]
    metadata: dict[str, Any]


class CallEventList(BaseModel):
    data: list[CallEventOut]
    meta: PaginationMeta


def call_event_out(event: CallEvent) -> CallEventOut:
    return CallEventOut(
        call_leg_id=event.call_leg_id,
        call_session_id=event.call_session_id,
        event_timestamp=format_occurred_at(event.at),
        name=event.name,
        type=event.type,
        metadata=event.metadata,
    )


def parse_timestamp(parameter: str, text: str) -> datetime:
    """ISO 8601 (``2025-08-15T13:52:20.331Z``); without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise invalid_parameter(
            parameter,
            f"{parameter} must be an ISO 8601 time such as 2025-08-15T13:52:20.331Z; got {text!r}.",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def time_bound(request: Request) -> tuple[str, datetime] | None:
    """The one ``filter[event_timestamp][OP]`` (or ``filter[occurred_at][OP]``) given."""
    given = [
        (f"filter[{name}][{op}]", op)
        for name in ("event_timestamp", "occurred_at")
        for op in BOUNDS
        if f"filter[{name}][{op}]" in request.query_params
    ]
    if not given:
        return None
    if len(given) > 1:
        names = ", ".join(p for p, _ in given)
        raise invalid_parameter(
            given[1][0], f"Only one filter[event_timestamp] can be passed; got {names}."
        )
    parameter, op = given[0]
    return op, parse_timestamp(parameter, request.query_params[parameter])


@router.get("/call_events", summary="List call events", operation_id="listCallEvents")
async def list_call_events(
    request: Request,
    page_number: Annotated[int, Query(alias="page[number]", ge=1)] = 1,
    page_size: Annotated[int, Query(alias="page[size]", ge=1, le=250)] = 20,
    type: Annotated[Literal["command", "webhook"] | None, Query(alias="filter[type]")] = None,
    status: Annotated[Literal["delivered", "failed"] | None, Query(alias="filter[status]")] = None,
    leg: Annotated[str | None, Query(alias="filter[call_leg_id]", max_length=128)] = None,
    leg_sdk: Annotated[str | None, Query(alias="filter[leg_id]", max_length=128)] = None,
    session: Annotated[str | None, Query(alias="filter[call_session_id]", max_length=128)] = None,
    session_sdk: Annotated[
        str | None, Query(alias="filter[application_session_id]", max_length=128)
    ] = None,
    application: Annotated[
        str | None, Query(alias="filter[application_name][contains]", max_length=255)
    ] = None,
    name: Annotated[str | None, Query(alias="filter[name]", max_length=100)] = None,
    gt: Annotated[str | None, Query(alias="filter[event_timestamp][gt]")] = None,
    gte: Annotated[str | None, Query(alias="filter[event_timestamp][gte]")] = None,
    lt: Annotated[str | None, Query(alias="filter[event_timestamp][lt]")] = None,
    lte: Annotated[str | None, Query(alias="filter[event_timestamp][lte]")] = None,
    eq: Annotated[str | None, Query(alias="filter[event_timestamp][eq]")] = None,
) -> CallEventList:
    # The bounds are declared for the OpenAPI document; time_bound reads them (either spelling).
    del gt, gte, lt, lte, eq
    bound = time_bound(request)
    bounds: dict[str, datetime] = {}
    if bound is not None:
        op, moment = bound
        key = {"gt": "after", "gte": "since", "lt": "before", "lte": "until", "eq": "at"}[op]
        bounds[key] = moment
    call_leg_id = leg if leg is not None else leg_sdk
    call_session_id = session if session is not None else session_sdk
    window_start = None
    if call_leg_id is None and call_session_id is None:
        window_start = datetime.now(UTC) - WINDOW  # the seed: "only ... the last 24 hours"
    filters = CallEventFilter(
        type=type,
        name=name,
        status=status,
        call_leg_id=call_leg_id,
        call_session_id=call_session_id,
        application_name_contains=application,
        window_start=window_start,
        **bounds,
    )
    page = await store_of(request).call_events.search(
        filters, limit=page_size, offset=(page_number - 1) * page_size
    )
    return CallEventList(
        data=[call_event_out(e) for e in page.hits],
        meta=page_meta(page_number, page_size, page.total),
    )
