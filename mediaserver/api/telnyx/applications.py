"""``/call_control_applications``: the seed's CRUD of Call Control applications.

Bodies are the seed's ``Create``/``UpdateCallControlApplicationRequest``
(plus the fields the current SDK sends: ``call_cost_in_webhooks``,
``redact_dtmf_debug_logging``, ``tags``); unknown fields, wrong types and
values out of range get a 422 naming the field (``source.pointer``), an
unknown id a 404. ``PATCH`` changes the fields it is given and keeps the
others (inside ``inbound``/``outbound`` too). ``anchorsite_override`` takes
the seed's quoted spellings (``"\\"Latency\\""``) and the SDK's plain ones
and answers the plain one. Answers are ``{"data": CallControlApplication}``
and lists ``{"data": [...], "meta": PaginationMeta}``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mediaserver.api.deps import applications_of
from mediaserver.api.telnyx.errors import INVALID, TelnyxError, invalid, not_found
from mediaserver.callcontrol.applications import UnknownApplication
from mediaserver.store import ApplicationSettings, CallControlApplication
from mediaserver.store.call_control import InboundSettings, OutboundSettings
from mediaserver.webhooks.envelope import format_occurred_at

router = APIRouter(tags=["Call Control Applications"])

ANCHORSITES = (
    "Latency",
    "Chicago, IL",
    "Ashburn, VA",
    "San Jose, CA",
    "London, UK",
    "Chennai, IN",
    "Amsterdam, Netherlands",
    "Toronto, Canada",
    "Sydney, Australia",
)
MAX_URL = 2048
Name = Annotated[str, Field(min_length=1, max_length=255)]
Url = Annotated[str, Field(max_length=MAX_URL)]
Limit = Annotated[int, Field(ge=1, le=100000)]
ProfileId = Annotated[str, Field(pattern=r"^[0-9]{1,19}$")]
Subdomain = Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")]
AppId = Annotated[str, Field(max_length=32)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InboundIn(_Body):
    channel_limit: Limit | None = None
    sip_subdomain: Subdomain | None = None
    sip_subdomain_receive_settings: Literal["only_my_connections", "from_anyone"] | None = None


class OutboundIn(_Body):
    channel_limit: Limit | None = None
    outbound_voice_profile_id: ProfileId | None = None


class ApplicationPatch(_Body):
    """Update request: every field optional; those given replace the stored ones."""

    application_name: Name | None = None
    webhook_event_url: Url | None = None
    webhook_event_failover_url: Url | None = None
    webhook_api_version: Literal["1", "2"] | None = None
    webhook_timeout_secs: Annotated[int, Field(ge=0, le=30)] | None = None
    first_command_timeout: bool | None = None
    first_command_timeout_secs: Annotated[int, Field(ge=1, le=86400)] | None = None
    active: bool | None = None
    anchorsite_override: Annotated[str, Field(max_length=40)] | None = None
    dtmf_type: Literal["RFC 2833", "Inband", "SIP INFO"] | None = None
    inbound: InboundIn | None = None
    outbound: OutboundIn | None = None
    call_cost_in_webhooks: bool | None = None
    redact_dtmf_debug_logging: bool | None = None
    tags: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=50)] | None = None


class ApplicationIn(ApplicationPatch):
    """Create request: ``application_name`` and ``webhook_event_url`` are required."""

    application_name: Name
    webhook_event_url: Url


class InboundOut(BaseModel):
    channel_limit: int | None
    sip_subdomain: str | None
    sip_subdomain_receive_settings: str


class OutboundOut(BaseModel):
    channel_limit: int | None
    outbound_voice_profile_id: str | None


class ApplicationOut(BaseModel):
    """The seed's ``CallControlApplication``."""

    record_type: Literal["call_control_application"] = "call_control_application"
    id: str
    application_name: str
    active: bool
    anchorsite_override: str
    dtmf_type: str
    first_command_timeout: bool
    first_command_timeout_secs: int
    inbound: InboundOut
    outbound: OutboundOut
    webhook_api_version: str
    webhook_event_failover_url: str
    webhook_event_url: str
    webhook_timeout_secs: int | None
    call_cost_in_webhooks: bool
    redact_dtmf_debug_logging: bool
    tags: list[str]
    created_at: str
    updated_at: str


class ApplicationResponse(BaseModel):
    data: ApplicationOut


class PaginationMeta(BaseModel):
    page_number: int
    page_size: int
    total_pages: int
    total_results: int


class ApplicationList(BaseModel):
    data: list[ApplicationOut]
    meta: PaginationMeta


def application_out(app: CallControlApplication) -> ApplicationOut:
    return ApplicationOut(
        id=app.id,
        application_name=app.application_name,
        active=app.active,
        anchorsite_override=app.anchorsite_override,
        dtmf_type=app.dtmf_type,
        first_command_timeout=app.first_command_timeout,
        first_command_timeout_secs=app.first_command_timeout_secs,
        inbound=InboundOut(
            channel_limit=app.inbound.channel_limit,
            sip_subdomain=app.inbound.sip_subdomain,
            sip_subdomain_receive_settings=app.inbound.sip_subdomain_receive_settings,
        ),
        outbound=OutboundOut(
            channel_limit=app.outbound.channel_limit,
            outbound_voice_profile_id=app.outbound.outbound_voice_profile_id,
        ),
        webhook_api_version=app.webhook_api_version,
        webhook_event_failover_url=app.webhook_event_failover_url or "",  # the seed's default
        webhook_event_url=app.webhook_event_url,
        webhook_timeout_secs=app.webhook_timeout_secs,
        call_cost_in_webhooks=app.call_cost_in_webhooks,
        redact_dtmf_debug_logging=app.redact_dtmf_debug_logging,
        tags=list(app.tags),
        created_at=format_occurred_at(app.created_at),
        updated_at=format_occurred_at(app.updated_at),
    )


def page_meta(number: int, size: int, total: int) -> PaginationMeta:
    return PaginationMeta(
        page_number=number,
        page_size=size,
        total_pages=math.ceil(total / size),
        total_results=total,
    )


# --- checks the schema cannot express -------------------------------------------------------


def invalid_parameter(name: str, detail: str) -> TelnyxError:
    """422 for a query parameter (``source.parameter`` names it)."""
    return TelnyxError(422, INVALID, "Invalid value", detail, parameter=name)


def check_url(field: str, url: str) -> None:
    """An absolute http(s) URL with a host (the seed: "Must include a scheme")."""
    problem = None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        problem = str(exc)
    else:
        if parsed.scheme not in ("http", "https"):
            problem = "the scheme must be http or https"
        elif not parsed.host:
            problem = "the URL has no host"
        elif any(c.isspace() for c in url):
            problem = "the URL contains white space"
    if problem is not None:
        raise invalid(field, f"{field} must be an absolute http(s) URL ({problem}): {url!r}.")


def anchorsite(field: str, value: str) -> str:
    """``Latency`` from ``Latency`` or the seed's quoted ``"Latency"``."""
    plain = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if plain not in ANCHORSITES:
        raise invalid(field, f"{field} must be one of {', '.join(ANCHORSITES)}; got {value!r}.")
    return plain


def apply(settings: ApplicationSettings, body: ApplicationPatch) -> ApplicationSettings:
    """``settings`` with the fields ``body`` gives; raises 422 for a value out of place."""
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    for name in (
        "application_name",
        "webhook_event_url",
        "webhook_api_version",
        "first_command_timeout",
        "first_command_timeout_secs",
        "active",
        "dtmf_type",
        "call_cost_in_webhooks",
        "redact_dtmf_debug_logging",
    ):
        if name in given:
            value = getattr(body, name)
            if value is None:
                raise invalid(name, f"{name} cannot be null; leave it out to keep it.")
            changes[name] = value
    if "webhook_event_url" in changes:
        check_url("webhook_event_url", changes["webhook_event_url"])
    if "webhook_event_failover_url" in given:
        failover = body.webhook_event_failover_url or None  # "" (the seed's default) is none
        if failover is not None:
            check_url("webhook_event_failover_url", failover)
        changes["webhook_event_failover_url"] = failover
    if "webhook_timeout_secs" in given:
        changes["webhook_timeout_secs"] = body.webhook_timeout_secs
    if "anchorsite_override" in given:
        site = body.anchorsite_override
        changes["anchorsite_override"] = (
            "Latency" if site is None else anchorsite("anchorsite_override", site)
        )
    if "tags" in given:
        changes["tags"] = tuple(body.tags or ())
    if "inbound" in given:
        changes["inbound"] = _inbound(settings.inbound, body.inbound)
    if "outbound" in given:
        changes["outbound"] = _outbound(settings.outbound, body.outbound)
    return replace(settings, **changes)


def _inbound(current: InboundSettings, body: InboundIn | None) -> InboundSettings:
    if body is None:
        return InboundSettings()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if changes.get("sip_subdomain_receive_settings", "") is None:
        changes["sip_subdomain_receive_settings"] = "from_anyone"  # the seed's default
    return replace(current, **changes)


def _outbound(current: OutboundSettings, body: OutboundIn | None) -> OutboundSettings:
    if body is None:
        return OutboundSettings()
    return replace(current, **{name: getattr(body, name) for name in body.model_fields_set})


# --- routes ---------------------------------------------------------------------------------

SORTS = ("created_at", "connection_name", "active")


@router.get(
    "/call_control_applications",
    summary="List call control applications",
    operation_id="listCallControlApplications",
)
async def list_applications(
    request: Request,
    page_number: Annotated[int, Query(alias="page[number]", ge=1)] = 1,
    page_size: Annotated[int, Query(alias="page[size]", ge=1, le=250)] = 20,
    name_contains: Annotated[
        str | None, Query(alias="filter[application_name][contains]", max_length=255)
    ] = None,
    profile_id: Annotated[
        str | None, Query(alias="filter[outbound_voice_profile_id]", max_length=19)
    ] = None,
    profile_id_sdk: Annotated[
        str | None,
        Query(alias="filter[outbound.outbound_voice_profile_id]", max_length=19),
    ] = None,
    sort: Annotated[str | None, Query(max_length=20)] = None,
) -> ApplicationList:
    apps = applications_of(request).all()
    if name_contains is not None:
        if len(name_contains) < 3:
            raise invalid_parameter(
                "filter[application_name][contains]",
                "filter[application_name][contains] needs at least three characters.",
            )
        wanted = name_contains.casefold()
        apps = [a for a in apps if wanted in a.application_name.casefold()]
    profile = profile_id if profile_id is not None else profile_id_sdk
    if profile is not None:
        apps = [a for a in apps if a.outbound.outbound_voice_profile_id == profile]
    apps = sorted_applications(apps, sort)
    start = (page_number - 1) * page_size
    return ApplicationList(
        data=[application_out(a) for a in apps[start : start + page_size]],
        meta=page_meta(page_number, page_size, len(apps)),
    )


def sorted_applications(
    apps: list[CallControlApplication], sort: str | None
) -> list[CallControlApplication]:
    """The seed's ``sort``: a key, ``-`` first for descending; none: newest first."""
    if sort is None:
        return sorted(apps, key=lambda a: (a.created_at, a.id), reverse=True)
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise invalid_parameter(
            "sort",
            f"sort must be one of {', '.join(SORTS)}, with - first for descending; got {sort!r}.",
        )
    descending = sort.startswith("-")
    if key == "connection_name":
        return sorted(apps, key=lambda a: (a.application_name.casefold(), a.id), reverse=descending)
    if key == "active":
        return sorted(apps, key=lambda a: (a.active, a.created_at, a.id), reverse=descending)
    return sorted(apps, key=lambda a: (a.created_at, a.id), reverse=descending)


@router.post(
    "/call_control_applications",
    status_code=201,
    summary="Create a call control application",
    operation_id="createCallControlApplication",
)
async def create_application(request: Request, body: ApplicationIn) -> ApplicationResponse:
    # Every check runs before anything is stored.
    blank = ApplicationSettings(application_name="", webhook_event_url="")
    settings = apply(blank, body)
    app = await applications_of(request).create(settings)
    return ApplicationResponse(data=application_out(app))


@router.get(
    "/call_control_applications/{id}",
    summary="Retrieve a call control application",
    operation_id="retrieveCallControlApplication",
)
async def retrieve_application(request: Request, id: AppId) -> ApplicationResponse:
    app = applications_of(request).get(id)
    if app is None:
        raise not_found("call control application", id)
    return ApplicationResponse(data=application_out(app))


@router.patch(
    "/call_control_applications/{id}",
    summary="Update a call control application",
    operation_id="updateCallControlApplication",
)
async def update_application(
    request: Request, id: AppId, body: ApplicationPatch
) -> ApplicationResponse:
    try:
        app = await applications_of(request).update(id, lambda current: apply(current, body))
    except UnknownApplication:
        raise not_found("call control application", id) from None
    return ApplicationResponse(data=application_out(app))


@router.delete(
    "/call_control_applications/{id}",
    summary="Delete a call control application",
    operation_id="deleteCallControlApplication",
)
async def delete_application(request: Request, id: AppId) -> ApplicationResponse:
    try:
        app = await applications_of(request).delete(id)
    except UnknownApplication:
        raise not_found("call control application", id) from None
    return ApplicationResponse(data=application_out(app))
