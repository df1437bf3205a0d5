"""SMS (Callr v2 "SMS"): send, search, get; carried as SIP MESSAGE (RFC 3428).

``POST /api/sms`` checks the request against the seed's rules
(:func:`~mediaserver.sms.rules.check_outbound`: 422 naming ``to``,
``from``, ``text`` or ``encoding``), stores the SMS ``created`` and answers
it at once; :class:`~mediaserver.sms.service.SmsService` then sends the
MESSAGE and moves it through the seed's statuses. The seed passes ``to``,
``from``, ``encoding`` and ``trafficType`` as query parameters and the text
in the body; they are taken in the body too (the same value in both places,
or one of them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mediaserver.api.models import SID_PATTERN, ApiError, IdCase, Page, RequestModel
from mediaserver.api.native import Limit, Offset, SortOrder, aware, page_of, server_of, store_of
from mediaserver.sms.rules import Encoding, SmsInputError, SmsStatus, TrafficType, check_outbound
from mediaserver.sms.service import SmsUnavailable
from mediaserver.store import SmsFilter

router = APIRouter(tags=["sms"])

E164_PATTERN = r"^\+[1-9][0-9]{5,32}$"
SmsSid = Annotated[
    str, Path(pattern=SID_PATTERN, description="SMS sid", examples=["k3x9a0pq"]), IdCase
]


class SmsBody(BaseModel):
    text: str


class StatusChange(BaseModel):
    status: SmsStatus
    at: str


class Sms(BaseModel):
    """The seed's SMS object; ``sipStatus`` is the final SIP answer to the MESSAGE."""

    model_config = ConfigDict(populate_by_name=True)

    direction: Literal["inbound", "outbound"]
    sid: str
    from_: str = Field(alias="from")
    to: str
    body: SmsBody
    trafficType: TrafficType | None
    status: SmsStatus
    error: str | None
    created: str
    delivered: str | None
    updated: str
    sent: str | None
    parts: int
    network: None = None
    encoding: Encoding
    cost: None = None
    paymentType: None = None
    statusHistory: list[StatusChange]
    sipStatus: int | None = Field(description="final SIP answer to the MESSAGE; null if none")


class SmsPage(Page[Sms]):
    pass


class SmsIn(RequestModel):
    text: str | None = Field(default=None, examples=["Hello world!"])
    to: str | None = None
    from_: str | None = Field(default=None, alias="from")
    encoding: Encoding | None = None
    trafficType: TrafficType | None = None


def _one(field: str, query: Any, body: Any) -> Any:
    if query is not None and body is not None and query != body:
        raise ApiError(
            422, "invalid_request", f"{field}: given twice (query and body) with two values", field
        )
    return query if query is not None else body


@router.post("/api/sms", response_model=Sms, status_code=201, summary="Send SMS")
async def send_sms(
    request: Request,
    body: SmsIn,
    to: Annotated[str | None, Query(description="recipient, E.164")] = None,
    from_: Annotated[str | None, Query(alias="from", description="sender")] = None,
    encoding: Annotated[Encoding | None, Query()] = None,
    trafficType: Annotated[TrafficType | None, Query()] = None,
) -> dict[str, Any]:
    traffic = _one("trafficType", trafficType, body.trafficType)
    try:
        sms = check_outbound(
            _one("to", to, body.to),
            _one("from", from_, body.from_),
            body.text,
            _one("encoding", encoding, body.encoding),
            traffic or "marketing",
        )
    except SmsInputError as exc:
        raise ApiError(422, "invalid_request", str(exc), exc.field) from None
    try:
        record = await server_of(request).sms.send(sms)
    except SmsUnavailable as exc:
        raise ApiError(503, "unavailable", str(exc)) from None
    return record.as_sms()


@router.get("/api/sms", response_model=SmsPage, summary="Search SMS")
async def search_sms(
    request: Request,
    direction: Annotated[Literal["inbound", "outbound"] | None, Query()] = None,
    sid: Annotated[str | None, Query(pattern=SID_PATTERN, description="SMS sid")] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=64, description="sender")] = None,
    to: Annotated[str | None, Query(max_length=64, description="recipient")] = None,
    contains: Annotated[str | None, Query(max_length=64, description="text contains")] = None,
    trafficType: Annotated[TrafficType | None, Query()] = None,
    status: Annotated[SmsStatus | None, Query()] = None,
    createdAfter: Annotated[datetime | None, Query()] = None,
    createdBefore: Annotated[datetime | None, Query()] = None,
    sort: Annotated[Literal["created", "updated"], Query()] = "created",
    order: SortOrder = "desc",
    offset: Offset = 0,
    limit: Limit = 10,
) -> dict[str, Any]:
    filters = SmsFilter(
        direction=direction,
        sid=sid.lower() if sid is not None else None,
        sender=from_,
        recipient=to,
        contains=contains,
        traffic_type=trafficType,
        status=status,
        created_after=aware(createdAfter, "createdAfter"),
        created_before=aware(createdBefore, "createdBefore"),
    )
    page = await store_of(request).sms.search(
        filters, sort=sort, order=order, limit=limit, offset=offset
    )
    return page_of([record.as_sms() for record in page.hits], page.total, offset)


@router.get("/api/sms/{sid}", response_model=Sms, summary="Get SMS")
async def get_sms(request: Request, sid: SmsSid) -> dict[str, Any]:
    record = await store_of(request).sms.get(sid)
    if record is None:
        raise ApiError(404, "not_found", f"no SMS {sid!r}", "sid")
    return record.as_sms()
