"""Audio files (Callr v2 "Audio Files"): search, upload, get, rename, delete, new content.

``POST /api/audio-files`` takes either ``multipart/form-data`` (a ``name``
field and a ``file`` part: the file is converted in the background, status
``pending-conversion``) or ``application/json`` with only ``name`` (no
content yet, status ``pending-content``; send it later with ``POST
/api/audio-files/{sid}/file``). The part's type (or its file name's
extension) picks the format (:mod:`mediaserver.media.conversion`); a type
this server does not convert is refused with 415 naming it, while content
that cannot be decoded ends the conversion in ``error`` with the reason.
Uploads may be up to :data:`~mediaserver.media.conversion.MAX_UPLOAD_BYTES`
(``mediaserver.api.app.BodyLimit`` lets these paths past the 1 MiB limit of
the other routes).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediaserver.api.models import SID_PATTERN, ApiError, IdCase, Page, RequestModel, Status
from mediaserver.api.models import Timestamp as TimestampField
from mediaserver.api.native import CONFLICT, Limit, Offset, SortOrder, page_of, server_of
from mediaserver.audio_files import AudioFileBusy, AudioFileGone, AudioFiles, audio_file_view
from mediaserver.audio_phone import NoRecordingLine
from mediaserver.media.conversion import MAX_UPLOAD_BYTES, UnsupportedAudio, upload_format
from mediaserver.store.audio_files import AudioFile as StoredAudioFile
from mediaserver.store.audio_files import AudioFileFilter

router = APIRouter(tags=["audio files"])

Sid = Annotated[str, Path(pattern=SID_PATTERN, description="audio file sid"), IdCase]
AudioFileStatus = Literal["ready", "processing", "pending-content", "pending-conversion", "error"]
AudioFileSource = Literal["phone-record", "system", "file-upload"]
AudioFileName = Annotated[
    str, Field(min_length=1, max_length=64, examples=["My Audio File"], description="1 to 64")
]
# A urlencoded form cannot carry a file: taken so that its missing file is named.
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
UPLOAD_LIMIT = MAX_UPLOAD_BYTES + 64 * 1024
"""The body limit of the upload routes: the file and the multipart framing around it."""


class AudioFile(BaseModel):
    """The seed's AudioFile."""

    sid: str
    name: str
    duration: float = Field(description="seconds; 0 until the content is converted")
    source: AudioFileSource
    readonly: bool
    status: AudioFileStatus
    created: TimestampField
    updated: TimestampField
    reason: str | None = Field(
        default=None, description="status error only: why the conversion failed"
    )


class AudioFilePage(Page[AudioFile]):
    pass


class AudioFilePhone(BaseModel):
    """The seed's answer to "Update audio file on the phone"."""

    code: int = Field(
        ge=100000, le=999999, description="6 digits to enter as DTMF; valid 10 minutes"
    )
    number: str = Field(description="the recording line to call (a route to audio-recorder)")


Country = Annotated[
    str,
    Query(
        pattern="^[A-Z]{2}$",
        examples=["FR", "US"],
        description="ISO 3166-1 alpha-2: the country wanted for the recording number; "
        "the closest one when there is none there",
    ),
]


class AudioFileNameBody(RequestModel):
    name: AudioFileName


TOO_LARGE: dict[int | str, dict[str, Any]] = {
    415: {"description": "not an audio type this server converts; names it"},
}
_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64}
_EXAMPLE_FILE = "ID3....(the audio file's bytes)"
_FILE_SCHEMA = {"type": "string", "format": "binary"}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "file"],
                    "properties": {"name": _NAME_SCHEMA, "file": _FILE_SCHEMA},
                },
                "example": {"name": "Welcome", "file": _EXAMPLE_FILE},
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _NAME_SCHEMA},
                    "additionalProperties": False,
                },
                "example": {"name": "Opening hours"},
            },
        },
    }
}
CONTENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": _FILE_SCHEMA},
                },
                "example": {"file": _EXAMPLE_FILE},
            }
        },
    }
}


_EXAMPLE = AudioFile(
    sid="k3x9a0pq",
    name="Welcome",
    duration=4.25,
    source="file-upload",
    readonly=False,
    status="ready",
    created="2024-04-24T17:42:28.000Z",
    updated="2024-04-24T17:42:31.250Z",
).model_dump(mode="json", exclude_none=True)
_CONVERTING = {**_EXAMPLE, "duration": 0.0, "status": "pending-conversion"}

# (method, path) -> (request body or None, the 2xx answer), for mediaserver.api.examples;
# the request bodies are in UPLOAD_BODY and CONTENT_BODY, one per media type.
EXAMPLES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("GET", "/api/audio-files"): (
        None,
        {"offset": 0, "total": 1, "hasMore": False, "hits": [_EXAMPLE]},
    ),
    ("POST", "/api/audio-files"): (None, _CONVERTING),
    ("GET", "/api/audio-files/{sid}"): (None, _EXAMPLE),
    ("PATCH", "/api/audio-files/{sid}"): ({"name": "Welcome"}, _EXAMPLE),
    ("DELETE", "/api/audio-files/{sid}"): (
        None,
        {"code": "ok", "message": "audio file k3x9a0pq deleted"},
    ),
    ("POST", "/api/audio-files/{sid}/file"): (None, _CONVERTING),
    ("POST", "/api/audio-files/{sid}/phone"): (None, {"code": 123456, "number": "+33199001234"}),
}


def audio_file_out(record: StoredAudioFile) -> AudioFile:
    return AudioFile.model_validate(audio_file_view(record))


def audio_files_of(request: Request) -> AudioFiles:
    service: AudioFiles = server_of(request).audio_files
    if server_of(request).store is None:
        raise ApiError(503, "unavailable", "the server is starting or stopping")
    return service


def _gone(sid: str) -> ApiError:
    return ApiError(404, "not_found", f"no audio file {sid!r}", "sid")


async def _existing(request: Request, sid: str) -> StoredAudioFile:
    record = await audio_files_of(request).store.audio_files.get(sid)
    if record is None:
        raise _gone(sid)
    return record


def _writable(record: StoredAudioFile) -> None:
    if record.readonly:
        raise ApiError(403, "forbidden", f"audio file {record.id} is read-only", "sid")


@router.get(
    "/api/audio-files",
    response_model=AudioFilePage,
    response_model_exclude_none=True,
    summary="Search audio files",
)
async def search_audio_files(
    request: Request,
    name: Annotated[
        str | None, Query(min_length=1, max_length=64, description="any part of the name")
    ] = None,
    status: Annotated[AudioFileStatus | None, Query()] = None,
    source: Annotated[AudioFileSource | None, Query()] = None,
    sort: Annotated[Literal["name", "created", "updated"], Query()] = "updated",
    order: SortOrder = "desc",
    offset: Offset = 0,
    limit: Limit = 10,
) -> dict[str, Any]:
    index = audio_files_of(request).store.audio_files
    page = await index.search(
        AudioFileFilter(name=name, status=status, source=source),
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    return page_of([audio_file_out(r) for r in page.hits], page.total, offset)


@router.post(
    "/api/audio-files",
    response_model=AudioFile,
    response_model_exclude_none=True,
    status_code=201,
    responses=TOO_LARGE,
    openapi_extra=UPLOAD_BODY,
    summary="Upload an audio file (multipart), or create it empty (JSON with only a name)",
)
async def upload_audio_file(request: Request) -> AudioFile:
    service = audio_files_of(request)
    media = _media_type(request)
    if media == "application/json":
        body = _json_body(await request.body())
        return audio_file_out(await service.create_empty(body.name))
    if media not in FORMS:
        raise _unsupported_body(media, "multipart/form-data or application/json")
    form = await _form(request, max_fields=4)
    try:
        _only_fields(form, ("name", "file"))
        name = _form_name(form)
        data, format = await _form_file(form)
    finally:
        await form.close()
    return audio_file_out(await service.upload(name, data, format))


@router.get(
    "/api/audio-files/{sid}",
    response_model=AudioFile,
    response_model_exclude_none=True,
    summary="Get an audio file",
)
async def get_audio_file(request: Request, sid: Sid) -> AudioFile:
    return audio_file_out(await _existing(request, sid))


@router.patch(
    "/api/audio-files/{sid}",
    response_model=AudioFile,
    response_model_exclude_none=True,
    summary="Rename an audio file (the name is the only property that changes)",
)
async def update_audio_file(request: Request, sid: Sid, body: AudioFileNameBody) -> AudioFile:
    _writable(await _existing(request, sid))
    try:
        return audio_file_out(await audio_files_of(request).rename(sid, body.name))
    except AudioFileGone:
        raise _gone(sid) from None


@router.delete("/api/audio-files/{sid}", response_model=Status, summary="Delete an audio file")
async def delete_audio_file(request: Request, sid: Sid) -> Status:
    _writable(await _existing(request, sid))
    try:
        await audio_files_of(request).delete(sid)
    except AudioFileGone:
        raise _gone(sid) from None
    return Status(code="ok", message=f"audio file {sid} deleted")


@router.post(
    "/api/audio-files/{sid}/file",
    response_model=AudioFile,
    response_model_exclude_none=True,
    responses={**TOO_LARGE, **CONFLICT},
    openapi_extra=CONTENT_BODY,
    summary="Upload new content for an audio file (converted in the background)",
)
async def upload_audio_file_content(request: Request, sid: Sid) -> AudioFile:
    service = audio_files_of(request)
    _writable(await _existing(request, sid))
    media = _media_type(request)
    if media not in FORMS:
        raise _unsupported_body(media, "multipart/form-data")
    form = await _form(request, max_fields=2)
    try:
        _only_fields(form, ("file",))
        data, format = await _form_file(form)
    finally:
        await form.close()
    try:
        return audio_file_out(await service.replace_content(sid, data, format))
    except AudioFileGone:
        raise _gone(sid) from None
    except AudioFileBusy as exc:
        raise ApiError(409, "conflict", str(exc), "sid") from None


@router.post(
    "/api/audio-files/{sid}/phone",
    response_model=AudioFilePhone,
    responses=CONFLICT,
    summary="Update audio file on the phone: a number to call and a code to enter",
)
async def record_audio_file_on_the_phone(
    request: Request, sid: Sid, country: Country
) -> AudioFilePhone:
    record = await _existing(request, sid)
    _writable(record)
    try:
        offer = server_of(request).recording_line.offer(record, country)
    except NoRecordingLine as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return AudioFilePhone(code=offer.code, number=offer.number)


# -- the request's parts ----------------------------------------------------------------------


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _unsupported_body(media: str, wanted: str) -> ApiError:
    given = f"{media!r}" if media else "no Content-Type"
    return ApiError(
        415, "unsupported_media_type", f"Content-Type: {given}; send {wanted}", "Content-Type"
    )


async def _form(request: Request, max_fields: int) -> FormData:
    """The form, one file at most; a malformed one is 400 naming what is wrong."""
    try:
        return await request.form(max_files=1, max_fields=max_fields)
    except StarletteHTTPException as exc:
        if exc.status_code != 400:
            raise
        field = "file" if "files" in str(exc.detail) else "body"
        raise ApiError(
            400,
            "bad_request",
            f"{field}: {exc.detail} Send multipart/form-data with one file part named file",
            field,
        ) from None


def _json_body(raw: bytes) -> AudioFileNameBody:
    try:
        return AudioFileNameBody.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def _only_fields(form: FormData, known: tuple[str, ...]) -> None:
    for key in form:
        if key not in known:
            fields = " and ".join(known)
            raise ApiError(422, "invalid_request", f"{key}: unknown field; send {fields}", key)


def _form_name(form: FormData) -> str:
    names = form.getlist("name")
    if not names:
        raise ApiError(422, "invalid_request", "name: field required (1 to 64 characters)", "name")
    name = names[0]
    if not isinstance(name, str) or len(names) > 1:
        raise ApiError(422, "invalid_request", "name: one text field of 1 to 64 characters", "name")
    if not 1 <= len(name) <= 64:
        raise ApiError(
            422,
            "invalid_request",
            f"name: {len(name)} characters; give 1 to 64",
            "name",
        )
    return name


async def _form_file(form: FormData) -> tuple[bytes, str]:
    part = form.get("file")
    if part is None:
        raise ApiError(
            422, "invalid_request", "file: field required (the audio, as a file part)", "file"
        )
    if not isinstance(part, UploadFile):
        raise ApiError(
            422,
            "invalid_request",
            "file: a file part is required (filename=... in its Content-Disposition), not text",
            "file",
        )
    try:
        format = upload_format(part.content_type, part.filename)
    except UnsupportedAudio as exc:
        raise ApiError(415, "unsupported_media_type", str(exc), "file") from None
    data = await part.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(
            413, "too_large", f"file: over {MAX_UPLOAD_BYTES} bytes; send a shorter file", "file"
        )
    if not data:
        raise ApiError(422, "invalid_request", "file: the file part is empty", "file")
    return data, format
