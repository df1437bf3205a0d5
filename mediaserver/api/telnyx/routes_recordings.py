"""``/recordings``: the finished recordings of the server in the seed's ``Recording`` shape.

Read from the recordings index (``store/recordings.py``), the same one
``/api/recordings`` shows: call recordings (``record_start``, ``record@v1``,
voicemail) are ``source: call``, conference recordings ``source:
conference``. Only finished recordings are listed (the seed's only status
is ``completed``). The Call Control ids are given while the server still
remembers the call; a conference recording's ``conference_id`` while it
remembers the conference (both are kept in memory, not in the index).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from mediaserver.api.native import store_of
from mediaserver.api.telnyx.commanding import control_of
from mediaserver.api.telnyx.errors import TelnyxError, not_found
from mediaserver.api.telnyx.paging import PageNumber, PageRequest, PageSize, meta
from mediaserver.callcontrol.conferences import ConferenceService
from mediaserver.store import Recording as StoredRecording
from mediaserver.store import RecordingFilter
from mediaserver.webhooks.envelope import format_occurred_at

router = APIRouter(tags=["Call Recordings"])

RecordingId = Annotated[str, Path(min_length=1, max_length=128)]
Moment = Annotated[str | None, Query(max_length=64)]


def _conferences(request: Request) -> ConferenceService:
    service: ConferenceService = request.app.state.server.call_control_conferences
    return service


def _moment(value: str | None, parameter: str) -> datetime | None:
    """An ISO 8601 date-time of a filter (UTC when it names no offset)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TelnyxError(
            422,
            "10015",
            "Invalid value",
            f"{parameter} must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z,"
            f" not {value!r}.",
            parameter=parameter,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _record(request: Request, stored: StoredRecording) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    started = stored.created_at
    ended = started + timedelta(milliseconds=stored.duration_ms)
    record: dict[str, Any] = {
        "record_type": "recording",
        "id": stored.id,
        "created_at": format_occurred_at(started),
        "updated_at": format_occurred_at(ended),
        "recording_started_at": format_occurred_at(started),
        "recording_ended_at": format_occurred_at(ended),
        "duration_millis": stored.duration_ms,
        "status": "completed",
        "channels": "dual" if stored.channels == 2 else "single",
        "source": "conference" if stored.kind == "conference" else "call",
        "download_urls": {stored.format: f"{base}/api/recordings/{stored.id}/file"},
    }
    if stored.kind == "conference":
        conference_id = _conferences(request).recordings.conference_of(stored.id)
        if conference_id is not None:
            record["conference_id"] = conference_id
    if stored.call_id is not None:
        record["call_control_id"] = stored.call_id
        cc = control_of(request).find(stored.call_id)
        if cc is not None:
            record["call_leg_id"] = cc.call_leg_id
            record["call_session_id"] = cc.call_session_id
    return record


@router.get("/recordings", summary="List all call recordings")
async def list_recordings(
    request: Request,
    number: PageNumber = 1,
    size: PageSize = 20,
    conference_id: Annotated[
        str | None, Query(alias="filter[conference_id]", max_length=128)
    ] = None,
    since: Annotated[Moment, Query(alias="filter[created_at][gte]")] = None,
    until: Annotated[Moment, Query(alias="filter[created_at][lte]")] = None,
) -> dict[str, Any]:
    page = PageRequest(number, size)
    gte = _moment(since, "filter[created_at][gte]")
    lte = _moment(until, "filter[created_at][lte]")
    store = store_of(request)
    if conference_id is not None:
        found = []
        for rid in _conferences(request).recordings.of_conference(conference_id):
            stored = await store.recordings.get(rid)
            if stored is None or stored.status != "ready":
                continue
            if (gte is None or stored.created_at >= gte) and (
                lte is None or stored.created_at <= lte
            ):
                found.append(stored)
        found.sort(key=lambda r: r.created_at, reverse=True)
        chunk = found[page.offset : page.offset + page.size]
        return {"data": [_record(request, r) for r in chunk], "meta": meta(page, len(found))}
    filters = RecordingFilter(status="ready", since=gte, until=lte)
    result = await store.recordings.search(filters, limit=page.size, offset=page.offset)
    return {
        "data": [_record(request, r) for r in result.hits],
        "meta": meta(page, result.total),
    }


@router.get("/recordings/{id}", summary="Retrieve a call recording")
async def retrieve_recording(request: Request, id: RecordingId) -> dict[str, Any]:
    stored = await store_of(request).recordings.get(id)
    if stored is None or stored.status != "ready":
        raise not_found("recording", id)
    return {"data": _record(request, stored)}
