"""Live calls, conferences, queues and call records (CDRs).

Live calls are read from the runs service (:mod:`mediaserver.runs`) as they are
now; ``DELETE`` hangs one up (BYE once answered, a final response before) and answers when the
BYE has been answered or timed out. Injected actions replace what the
call's scenario is doing, as a new run on the same call.

Conferences and queues are read from the server's live ``Conferences`` and
``CallQueues`` (``conference@v1`` and ``queue@v1``): a room or queue nobody
is in is gone.

Call records come from the store, filtered on exact values and a start-time
range, newest first; ``/api/cdrs/export`` streams the same filters as CSV,
oldest first, in batches, so memory stays flat however many rows match.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from mediaserver.api.deps import runs_of
from mediaserver.api.models import (
    CALLID_PATTERN,
    MAX_RUNID,
    SID_PATTERN,
    ActionsIn,
    ApiError,
    CallRecord,
    CallRecordPage,
    ConferencePage,
    ErrorDetail,
    IdCase,
    LiveCall,
    LiveCallPage,
    QueuePage,
    RunStarted,
    Status,
    not_found,
)
from mediaserver.api.native import (
    CONFLICT,
    JSON_ERROR_RESPONSES,
    ON_ANOTHER_NODE,
    Limit,
    Offset,
    SortOrder,
    aware,
    opt_timestamp,
    page_of,
    server_of,
    slice_page,
    store_of,
)
from mediaserver.runs import RunRefused
from mediaserver.store import CallFilter
from mediaserver.store import CallRecord as StoredCall
from mediaserver.yamlsource import ProblemsError

if TYPE_CHECKING:
    from mediaserver.calls import Call

router = APIRouter(tags=["calls"])

CallId = Annotated[
    str,
    Path(pattern=CALLID_PATTERN, description="call id, any case", examples=["k3x9a0pq"]),
    IdCase,
]
Number = Annotated[str | None, Query(max_length=256)]


class CsvResponse(StreamingResponse):
    media_type = "text/csv"


def _epoch(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return opt_timestamp(datetime.fromtimestamp(seconds, UTC))


def live_out(call: Call, now: float, node: str) -> LiveCall:
    return LiveCall.model_validate(
        {
            "id": call.id,
            "direction": "inbound" if call.direction == "inbound" else "outbound",
            "from": call.from_user,
            "to": call.to_user,
            "scenario": call.scenario,
            "state": "answered" if call.answered else "ringing",
            "sipCallId": call.sip_call_id,
            "started": _epoch(call.started_at),
            "answered": _epoch(call.answered_at),
            "duration": round(max(0.0, now - call.started_at), 3),
            "codec": call.leg.codec.name,
            "media": dict(call.leg.snapshot()),
            "node": node,
        }
    )


async def _live_call(request: Request, callid: str) -> Call:
    """The live call ``callid`` of this node; when another node sharing the database
    holds it, 421 naming that node (its API is the one that can act on the call)."""
    call = runs_of(request).find_call(callid)
    if call is not None:
        return call
    here = server_of(request).config.node.name
    record = await store_of(request).calls.get(callid)
    if record is not None and record.ended_at is None and record.node not in ("", here):
        # RFC 9110 15.5.20: this server cannot act on it; the call lives on record.node.
        message = f"call {callid} is live on node {record.node}: send this to that node's API"
        raise ApiError(421, "on_another_node", message, "callid")
    raise not_found("live call", callid, "callid")


@router.get("/api/calls", response_model=LiveCallPage, summary="List live calls")
async def list_calls(request: Request, offset: Offset = 0, limit: Limit = 10) -> dict[str, Any]:
    now = time.time()
    calls = sorted(runs_of(request).live_calls(), key=lambda c: (c.started_at, c.id))
    node = server_of(request).config.node.name
    return slice_page([live_out(c, now, node) for c in calls], offset, limit)


@router.get(
    "/api/calls/{callid}",
    response_model=LiveCall,
    responses=ON_ANOTHER_NODE,
    summary="Get a live call",
)
async def get_call(request: Request, callid: CallId) -> LiveCall:
    node = server_of(request).config.node.name
    return live_out(await _live_call(request, callid), time.time(), node)


@router.delete(
    "/api/calls/{callid}",
    response_model=Status,
    responses=ON_ANOTHER_NODE,
    summary="Hang up a live call",
)
async def hangup_call(request: Request, callid: CallId) -> Status:
    call = await _live_call(request, callid)
    await call.hangup("normal_clearing")
    return Status(code="ok", message=f"call {callid} hung up")


@router.post(
    "/api/calls/{callid}/actions",
    response_model=RunStarted,
    status_code=201,
    responses={**CONFLICT, **ON_ANOTHER_NODE},
    summary="Inject actions into a live call",
)
async def inject_actions(request: Request, callid: CallId, body: ActionsIn) -> RunStarted:
    await _live_call(request, callid)
    try:
        runid = runs_of(request).inject_actions(callid, body.actions)
    except ProblemsError as exc:
        details = [ErrorDetail(field="actions", message=p.message) for p in exc.problems]
        first = details[0].message if details else "invalid actions"
        raise ApiError(422, "invalid_actions", f"actions: {first}", "actions", details) from None
    except RunRefused as exc:
        raise ApiError(409, "conflict", str(exc), "callid") from None
    return RunStarted(runid=runid)


@router.get("/api/conferences", response_model=ConferencePage, summary="List conferences")
async def list_conferences(
    request: Request, offset: Offset = 0, limit: Limit = 10
) -> dict[str, Any]:
    rooms = server_of(request).conferences.snapshots()
    conferences = [
        {
            "name": room["name"],
            "participants": len(room["participants"]),
            "members": [
                {
                    "callid": m["call_id"],
                    "muted": m["muted"],
                    "moderator": m["moderator"],
                    "waiting": m["waiting"],
                    "talking": m["talking"],
                }
                for m in room["participants"]
            ],
            "recording": room["recording"],
        }
        for room in sorted(rooms, key=lambda r: str(r["name"]))
    ]
    return slice_page(conferences, offset, limit)


@router.get("/api/queues", response_model=QueuePage, summary="List queues")
async def list_queues(request: Request, offset: Offset = 0, limit: Limit = 10) -> dict[str, Any]:
    snapshots = server_of(request).queues.snapshots()
    queues = [
        {
            "name": queue["name"],
            "waiting": queue["waiting"],
            "longestWait": queue["longest_wait"],
            "callids": queue["calls"],
        }
        for queue in sorted(snapshots, key=lambda q: str(q["name"]))
    ]
    return slice_page(queues, offset, limit)


# --- call records -------------------------------------------------------------------------


def record_out(record: StoredCall) -> CallRecord:
    return CallRecord.model_validate(record.as_record())


def call_filter(
    direction: Annotated[Literal["inbound", "outbound"] | None, Query()] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=256, description="caller")] = None,
    to: Annotated[str | None, Query(max_length=256, description="called number or user")] = None,
    number: Annotated[str | None, Query(max_length=256, description="ours: number called")] = None,
    scenario: Annotated[
        str | None, Query(pattern=SID_PATTERN, description="scenario sid"), IdCase
    ] = None,
    runid: Annotated[str | None, Query(max_length=MAX_RUNID), IdCase] = None,
    status: Annotated[Literal["live", "ended", "interrupted"] | None, Query()] = None,
    startedAfter: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
    startedBefore: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
) -> CallFilter:
    return CallFilter(
        direction=direction,
        from_number=from_,
        to_number=to,
        number=number,
        scenario_id=scenario,
        run_id=runid,
        status=status,
        since=aware(startedAfter, "startedAfter"),
        until=aware(startedBefore, "startedBefore"),
    )


Filters = Annotated[CallFilter, Depends(call_filter)]


@router.get("/api/cdrs", response_model=CallRecordPage, summary="Search call records")
async def search_cdrs(
    request: Request,
    filters: Filters,
    offset: Offset = 0,
    limit: Limit = 10,
    order: SortOrder = "desc",
) -> dict[str, Any]:
    page = await store_of(request).calls.search(filters, order=order, limit=limit, offset=offset)
    return page_of([record_out(r) for r in page.hits], page.total, offset)


@router.get(
    "/api/cdrs/export",
    response_class=CsvResponse,
    responses={
        **JSON_ERROR_RESPONSES,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    summary="Export call records as CSV",
)
async def export_cdrs(request: Request, filters: Filters, order: SortOrder = "asc") -> CsvResponse:
    store = store_of(request)

    async def chunks() -> AsyncIterator[bytes]:
        async for text in store.calls.export_csv(filters, order=order):
            yield text.encode("utf-8")

    return CsvResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cdrs.csv"'},
    )


@router.get("/api/cdrs/{callid}", response_model=CallRecord, summary="Get a call record")
async def get_cdr(request: Request, callid: CallId) -> CallRecord:
    record = await store_of(request).calls.get(callid)
    if record is None:
        raise not_found("call record", callid, "callid")
    return record_out(record)
