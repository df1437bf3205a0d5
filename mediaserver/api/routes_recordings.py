"""Recordings: the index (search, read flag, delete) and the audio itself.

``/api/recordings/{sid}/file`` serves the file the index points at, with
HTTP Range (RFC 9110 section 14): one range per request (``bytes=A-B``,
``bytes=A-``, ``bytes=-N``) answers 206 with ``Content-Range``; a range that
cannot be satisfied, is malformed, or asks for several parts answers 416
with ``Content-Range: bytes */SIZE``. Only files under ``storage.recordings``
are ever served or deleted: the indexed path is resolved (symlinks
included) and refused unless it lies inside that folder, so a bad row can
never expose another file. Ids are checked against ``[a-z0-9]{8}`` before
anything is looked up, so a path like ``../../etc/passwd`` never reaches the
filesystem.

``/api/recordings/{sid}/file.mp3`` serves the MP3 rendition (``url_mp3``),
encoded on its first request and kept (:mod:`mediaserver.media.mp3`).

The seed's bulk operations, ``PATCH`` and ``DELETE /api/recordings`` with
``?sid=`` given up to 100 times (none: every recording), answer with a task
id (:mod:`mediaserver.tasks`). Deleting every recording is what the seed
says an absent ``sid`` means, so it is guarded the seed's way rather than
refused: that task waits :data:`DELETE_ALL_GRACE` seconds ``pending``, during
which ``DELETE /api/tasks/{taskid}`` cancels it, and a ``sid=`` given empty
is an error, never "all" (a client joining an empty list must not wipe
everything). Recordings still being recorded are never deleted in bulk.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from mediaserver.api.models import (
    CALLID_PATTERN,
    SID_PATTERN,
    ApiError,
    IdCase,
    Recording,
    RecordingOptions,
    RecordingPage,
    RecordingPatch,
    RecordingsPatch,
    ScenarioRef,
    Status,
    not_found,
)
from mediaserver.api.native import (
    CONFLICT,
    JSON_ERROR_RESPONSES,
    Limit,
    Offset,
    SortOrder,
    aware,
    opt_timestamp,
    page_of,
    server_of,
    store_of,
    timestamp,
)
from mediaserver.media.mp3 import rendition_path
from mediaserver.store import Recording as StoredRecording
from mediaserver.store import RecordingFilter
from mediaserver.store.recordings import locate_recording
from mediaserver.tasks import Progress

DELETE_ALL_GRACE = 10.0
"""Seconds a "delete every recording" task waits, cancellable, before it runs."""
MAX_SIDS = 100  # the seed: "Array of strings (SID) <= 100 items"
SID_RE = re.compile(SID_PATTERN)

router = APIRouter(tags=["recordings"])

Sid = Annotated[str, Path(pattern=SID_PATTERN, description="recording sid"), IdCase]
CHUNK = 64 * 1024
CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def recording_out(request: Request, record: StoredRecording) -> Recording:
    scenario = None
    if record.scenario_id is not None or record.scenario_name is not None:
        scenario = ScenarioRef(sid=record.scenario_id, name=record.scenario_name)
    return Recording(
        sid=record.id,
        type=record.kind,
        status=record.status,
        callid=record.call_id,
        caller=record.caller,
        callee=record.callee,
        scenario=scenario,
        created=timestamp(record.created_at),
        read=record.read,
        readAt=opt_timestamp(record.read_at),
        duration=round(record.duration_ms / 1000, 3),
        size=record.size,
        format=record.format,
        channels=record.channels,
        options=RecordingOptions(format=record.format, channels=record.channels),
        url=str(request.url_for("recording_file", sid=record.id)),
        url_mp3=str(request.url_for("recording_mp3", sid=record.id)),
    )


def sids_of(values: list[str] | None) -> list[str] | None:
    """The ``sid`` query values (None: not given, meaning every recording), checked."""
    if values is None:
        return None
    if len(values) > MAX_SIDS:
        raise ApiError(
            422, "invalid_request", f"at most {MAX_SIDS} sid values, got {len(values)}", "sid"
        )
    for value in values:
        if not SID_RE.fullmatch(value.lower()):
            raise ApiError(
                422,
                "invalid_request",
                f"sid {value!r} is not a recording sid (8 of a-z, 0-9); to mean every"
                " recording, leave sid out",
                "sid",
            )
    return list(dict.fromkeys(v.lower() for v in values))


SidList = Annotated[
    list[str] | None,
    Query(description="recording sid; repeat for several (up to 100)"),
]


async def _existing(request: Request, sid: str) -> StoredRecording:
    record = await store_of(request).recordings.get(sid)
    if record is None:
        raise not_found("recording", sid, "sid")
    return record


def recordings_root(request: Request) -> FilePath:
    config = server_of(request).config
    return config.storage_path(config.storage.recordings).resolve()


@router.get("/api/recordings", response_model=RecordingPage, summary="Search recordings")
async def search_recordings(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 10,
    order: SortOrder = "desc",
    sid: SidList = None,
    type: Annotated[Literal["call", "recording", "conference", "voicemail"] | None, Query()] = None,
    status: Annotated[Literal["recording", "ready", "interrupted"] | None, Query()] = None,
    callid: Annotated[str | None, Query(pattern=CALLID_PATTERN), IdCase] = None,
    caller: Annotated[str | None, Query(max_length=256)] = None,
    callee: Annotated[str | None, Query(max_length=256)] = None,
    read: Annotated[bool | None, Query()] = None,
    createdAfter: Annotated[datetime | None, Query()] = None,
    createdBefore: Annotated[datetime | None, Query()] = None,
    readAfter: Annotated[datetime | None, Query()] = None,
    readBefore: Annotated[datetime | None, Query()] = None,
    minDuration: Annotated[int | None, Query(ge=0, le=10**9, description="seconds")] = None,
) -> dict[str, Any]:
    filters = RecordingFilter(
        ids=sids_of(sid),
        kind=type,
        status=status,
        call_id=callid,
        caller=caller,
        callee=callee,
        read=read,
        since=aware(createdAfter, "createdAfter"),
        until=aware(createdBefore, "createdBefore"),
        read_since=aware(readAfter, "readAfter"),
        read_until=aware(readBefore, "readBefore"),
        min_duration_ms=None if minDuration is None else minDuration * 1000,
    )
    page = await store_of(request).recordings.search(
        filters, order=order, limit=limit, offset=offset
    )
    return page_of([recording_out(request, r) for r in page.hits], page.total, offset)


TASK_ID_ANSWER: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "the task id (GET /api/tasks/{taskid})",
        "content": {"application/json": {"schema": {"type": "string"}}},
    }
}


@router.patch(
    "/api/recordings",
    response_model=str,
    status_code=202,
    responses=TASK_ID_ANSWER,
    summary="Update recordings (bulk): their read status",
)
async def update_recordings(request: Request, body: RecordingsPatch, sid: SidList = None) -> str:
    store, ids = store_of(request), sids_of(sid)

    async def work(progress: Progress) -> dict[str, Any]:
        return {"updated": await store.recordings.set_read_many(ids, body.read)}

    return server_of(request).tasks.start("recordings.update", work).id


@router.delete(
    "/api/recordings",
    response_model=str,
    status_code=202,
    responses=TASK_ID_ANSWER,
    summary="Delete recordings (bulk), with their files",
)
async def delete_recordings(request: Request, sid: SidList = None) -> str:
    store, ids, root = store_of(request), sids_of(sid), recordings_root(request)

    async def work(progress: Progress) -> dict[str, Any]:
        removed = await store.recordings.delete_finished(ids)
        for done, (_, indexed) in enumerate(removed, start=1):
            await _unlink_audio(root, indexed)
            progress(done, len(removed))
        return {"deleted": len(removed), "sids": sorted(rid for rid, _ in removed)}

    delay = DELETE_ALL_GRACE if ids is None else 0.0
    return server_of(request).tasks.start("recordings.delete", work, delay=delay).id


async def _unlink_audio(root: FilePath, indexed: str) -> None:
    """Delete a recording's file and its MP3 rendition (the row is gone already)."""
    path = locate_recording(root, indexed)
    if path is not None:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await asyncio.to_thread(rendition_path(path).unlink, missing_ok=True)


@router.get("/api/recordings/{sid}", response_model=Recording, summary="Get a recording")
async def get_recording(request: Request, sid: Sid) -> Recording:
    return recording_out(request, await _existing(request, sid))


@router.patch(
    "/api/recordings/{sid}", response_model=Recording, summary="Mark a recording read or unread"
)
async def update_recording(request: Request, sid: Sid, body: RecordingPatch) -> Recording:
    record = await _existing(request, sid)
    if body.read is not None:
        updated = await store_of(request).recordings.set_read(sid, body.read)
        if updated is None:
            raise not_found("recording", sid, "sid")
        record = updated
    return recording_out(request, record)


@router.delete(
    "/api/recordings/{sid}",
    response_model=Status,
    responses=CONFLICT,
    summary="Delete a recording and its file",
)
async def delete_recording(request: Request, sid: Sid) -> Status:
    record = await _existing(request, sid)
    if record.status == "recording":
        raise ApiError(409, "conflict", f"recording {sid} is still being recorded", "sid")
    indexed = await store_of(request).recordings.delete(sid)
    if indexed is None:
        raise not_found("recording", sid, "sid")
    # The row goes first: a crash in between leaves an orphan file, never a dangling row.
    await _unlink_audio(recordings_root(request), indexed)
    return Status(code="ok", message=f"recording {sid} deleted")


class RangeNotSatisfiable(Exception):
    pass


def byte_range(header: str, size: int) -> tuple[int, int]:
    """The inclusive (first, last) byte of one ``Range`` spec; RangeNotSatisfiable otherwise."""
    m = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if m is None or size == 0:
        raise RangeNotSatisfiable
    first, last = m.group(1), m.group(2)
    if not first:
        if not last or int(last) == 0:
            raise RangeNotSatisfiable
        return max(0, size - int(last)), size - 1  # the last N bytes
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


async def _read(path: FilePath, start: int, length: int) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(handle.seek, start)
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


AUDIO_CONTENT: dict[str, Any] = {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in sorted(set(CONTENT_TYPES.values()))
}


@router.get(
    "/api/recordings/{sid}/file",
    response_class=StreamingResponse,
    responses={
        **JSON_ERROR_RESPONSES,
        200: {"description": "the whole file", "content": AUDIO_CONTENT},
        206: {"description": "the range asked for", "content": AUDIO_CONTENT},
        416: {
            "description": "range not satisfiable",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        },
    },
    summary="Download a recording's audio",
    name="recording_file",
)
async def recording_file(
    request: Request,
    sid: Sid,
    range_header: Annotated[
        str | None,
        Header(alias="range", max_length=200, description="bytes=A-B, bytes=A- or bytes=-N"),
    ] = None,
) -> StreamingResponse:
    record = await _existing(request, sid)
    path = locate_recording(recordings_root(request), record.path)
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"the audio of recording {sid} is missing", "sid")
    size = path.stat().st_size
    media_type = CONTENT_TYPES.get(record.format.lower(), "application/octet-stream")
    headers = {"Accept-Ranges": "bytes"}
    if range_header is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_read(path, 0, size), media_type=media_type, headers=headers)
    try:
        start, end = byte_range(range_header, size)
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"range {range_header!r}: give one range within the {size} bytes, e.g. bytes=0-1023",
            "range",
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        ) from None
    length = end - start + 1
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _read(path, start, length), status_code=206, media_type=media_type, headers=headers
    )


@router.get(
    "/api/recordings/{sid}/file.mp3",
    response_class=StreamingResponse,
    responses={
        **JSON_ERROR_RESPONSES,
        200: {"description": "the MP3", "content": {"audio/mpeg": AUDIO_CONTENT["audio/mpeg"]}},
        409: {
            "description": "still being recorded",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        },
    },
    summary="Download a recording as MP3",
    name="recording_mp3",
)
async def recording_mp3(request: Request, sid: Sid) -> StreamingResponse:
    record = await _existing(request, sid)
    if record.status == "recording":
        raise ApiError(
            409, "conflict", f"recording {sid} is still being recorded; ask when it is ready", "sid"
        )
    path = locate_recording(recordings_root(request), record.path)
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"the audio of recording {sid} is missing", "sid")
    try:
        mp3 = await server_of(request).mp3.ensure(path)
    except (RuntimeError, OSError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise ApiError(
            500, "encoding_failed", f"recording {sid} could not be encoded as MP3: {exc}", "sid"
        ) from None
    size = mp3.stat().st_size
    headers = {"Content-Length": str(size)}
    return StreamingResponse(_read(mp3, 0, size), media_type="audio/mpeg", headers=headers)
