"""Phone numbers (Callr v2 "Phone Numbers" and "Phone Numbers Store").

The numbers listed are those the server answers: E.164 keys of the config's
``routes`` and numbers attached to scenarios through the API
(:mod:`mediaserver.numbers`). Attaching and detaching go through the
scenario catalog like ``PUT/DELETE /api/scenarios/{sid}/numbers/{number}``
(so routing changes at once and ``v2.number.assigned``/``unassigned`` are
published). What a carrier account does with numbers (buying, reserving,
the store's countries, types and prefixes, end users, ending a
subscription) has no meaning on one's own server: those operations answer
501 ``not_applicable`` saying why, instead of a bare 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from mediaserver.api.models import (
    SID_PATTERN,
    ApiError,
    ErrorBody,
    IdCase,
    Page,
    RequestModel,
    Status,
)
from mediaserver.api.native import CONFLICT, Limit, Offset, SortOrder, server_of, slice_page
from mediaserver.api.routes_scenarios import attach, detach
from mediaserver.numbers import NumberType, ServedNumber, seed_type

router = APIRouter(tags=["numbers"])
# The seed's operations with no meaning here: each answers 501 saying why. Left out of the
# OpenAPI document (they have no answer to show; docs/api.md lists them), and included
# before ``router``, whose /api/numbers/{number} would take "store" for a number.
not_applicable_router = APIRouter(tags=["numbers"], include_in_schema=False)

E164_PATTERN = r"^\+[1-9][0-9]{5,32}$"
PhoneNumberPath = Annotated[
    str,
    Path(
        pattern=E164_PATTERN,
        description="a phone number in E.164, + first",
        examples=["+33199001234"],
    ),
]
ScenarioSid = Annotated[
    str, Path(pattern=SID_PATTERN, description="scenario sid", examples=["k3x9a0pq"]), IdCase
]
NOT_APPLICABLE: dict[int | str, dict[str, Any]] = {
    501: {"model": ErrorBody, "description": "not applicable to a self-hosted server"}
}


class ScenarioRef(BaseModel):
    sid: str | None
    name: str


class PhoneNumber(BaseModel):
    """The seed's phone number object; ``origin`` and ``route`` say why it is answered."""

    model_config = ConfigDict(populate_by_name=True)

    sid: str = Field(description="stable id derived from the number")
    e164: str
    class_: Literal["classic", "gold"] = Field(alias="class")
    type: NumberType | None = Field(description="from the numbering plan; null if it says nothing")
    assigned: str = Field(description="when the server started answering the number")
    country: str | None
    scenario: ScenarioRef | None
    compliance: None = None
    contract: None = None
    pricing: None = None
    enduser: None = None
    origin: Literal["config", "api"] = Field(
        description="config: a key of the config's routes; api: attached through the API"
    )
    route: str = Field(description="the route's target or the attached scenario's name")


class PhoneNumberPage(Page[PhoneNumber]):
    pass


class NumberUpdate(RequestModel):
    scenario: str | None = Field(default=None, pattern=SID_PATTERN, examples=["k3x9a0pq"])
    # The seed's end user: taken so it can be refused with why (501), but not offered
    # in the OpenAPI document, as it never works here.
    enduser: SkipJsonSchema[str | None] = Field(default=None, pattern=SID_PATTERN)


def not_applicable(what: str, why: str, field: str | None = None) -> ApiError:
    return ApiError(
        501, "not_applicable", f"{what}: not applicable to a self-hosted server; {why}", field
    )


async def _served(request: Request, number: str) -> ServedNumber:
    served = await server_of(request).numbers.get(number)
    if served is None:
        raise ApiError(
            404,
            "not_found",
            f"number {number} is not answered here: attach it to a scenario or add it "
            "to the config's routes",
            "number",
        )
    return served


# --- the numbers answered here ---------------------------------------------------------------


@router.get("/api/numbers", response_model=PhoneNumberPage, summary="Search phone numbers")
async def search_numbers(
    request: Request,
    sid: Annotated[str | None, Query(pattern=SID_PATTERN, description="phone number sid")] = None,
    class_: Annotated[Literal["gold", "classic"] | None, Query(alias="class")] = None,
    type: Annotated[NumberType | None, Query(description="number type")] = None,
    contains: Annotated[
        str | None, Query(pattern=r"^(\+[1-9])?[0-9]{1,32}$", description="part of the number")
    ] = None,
    detached: Annotated[
        bool | None, Query(description="only numbers not attached to a scenario (true only)")
    ] = None,
    sort: Annotated[Literal["assigned", "e164"], Query()] = "assigned",
    order: SortOrder = "desc",
    offset: Offset = 0,
    limit: Limit = 10,
) -> dict[str, Any]:
    if detached is False:
        raise ApiError(422, "invalid_request", "detached: only true may be passed", "detached")
    hits = []
    for served in await server_of(request).numbers.all():
        if sid is not None and served.as_number()["sid"] != sid.lower():
            continue
        if class_ is not None and class_ != "classic":
            continue
        if type is not None and seed_type(served.e164) != type:
            continue
        if contains is not None and contains not in served.e164:
            continue
        if detached and served.scenario_name is not None:
            continue
        hits.append(served)
    if sort == "e164":
        hits.sort(key=lambda n: n.e164, reverse=order == "desc")
    else:
        hits.sort(key=lambda n: (n.assigned, n.e164), reverse=order == "desc")
    return slice_page([n.as_number() for n in hits], offset, limit)


@router.get("/api/numbers/{number}", response_model=PhoneNumber, summary="Get phone number")
async def get_number(request: Request, number: PhoneNumberPath) -> dict[str, Any]:
    return (await _served(request, number)).as_number()


@router.patch(
    "/api/numbers/{number}",
    response_model=Status,
    responses={**CONFLICT, **NOT_APPLICABLE},
    summary="Update a phone number (attach it to a scenario)",
)
async def update_number(request: Request, number: PhoneNumberPath, body: NumberUpdate) -> Status:
    if body.enduser is not None:
        why = "there are no end users on one's own server"
        raise not_applicable("Assigning an end user", why, "enduser")
    if body.scenario is None:
        raise ApiError(
            422, "invalid_request", "scenario: the scenario sid to attach to", "scenario"
        )
    return await attach(request, body.scenario.lower(), number)


@router.put(
    "/api/numbers/{number}/scenario/{sid}",
    response_model=Status,
    responses=CONFLICT,
    summary="Attach phone number to scenario",
)
async def attach_to_scenario(request: Request, number: PhoneNumberPath, sid: ScenarioSid) -> Status:
    return await attach(request, sid, number)


@router.delete(
    "/api/numbers/{number}/scenario",
    response_model=Status,
    responses=CONFLICT,
    summary="Detach phone number from scenario",
)
async def detach_from_scenario(request: Request, number: PhoneNumberPath) -> Status:
    served = await _served(request, number)
    if served.origin != "api" or served.scenario_sid is None:
        raise ApiError(
            409,
            "conflict",
            f"{number} is not attached through the API: the config's routes lead it to "
            f"{served.route!r}; change routes and reload instead",
            "number",
        )
    return await detach(request, served.scenario_sid, number)


# --- the number store: not applicable (literal paths before {token})

_NO_STORE = "numbers are not bought here; route your own numbers (config routes or attach)"


@not_applicable_router.post(
    "/api/numbers/store", responses=NOT_APPLICABLE, summary="Reserve numbers (not applicable)"
)
async def reserve_numbers() -> None:
    raise not_applicable("Reserving numbers", _NO_STORE)


@not_applicable_router.get(
    "/api/numbers/store",
    responses=NOT_APPLICABLE,
    summary="Reserve numbers, as a GET (not applicable)",
)
async def reserve_numbers_get() -> None:
    raise not_applicable("Reserving numbers", _NO_STORE)


@not_applicable_router.get(
    "/api/numbers/store/countries",
    responses=NOT_APPLICABLE,
    summary="List available countries (not applicable)",
)
async def store_countries() -> None:
    raise not_applicable("Listing the number store's countries", _NO_STORE)


@not_applicable_router.get(
    "/api/numbers/store/types",
    responses=NOT_APPLICABLE,
    summary="List available number types (not applicable)",
)
async def store_types() -> None:
    raise not_applicable("Listing the number store's types", _NO_STORE)


@not_applicable_router.get(
    "/api/numbers/store/prefixes",
    responses=NOT_APPLICABLE,
    summary="List available prefixes (not applicable)",
)
async def store_prefixes() -> None:
    raise not_applicable("Listing the number store's prefixes", _NO_STORE)


@not_applicable_router.post(
    "/api/numbers/store/{token}",
    responses=NOT_APPLICABLE,
    summary="Buy phone numbers (not applicable)",
)
async def buy_numbers(token: str) -> None:
    raise not_applicable("Buying numbers", _NO_STORE)


@not_applicable_router.get(
    "/api/numbers/store/{token}",
    responses=NOT_APPLICABLE,
    summary="Get reservation status (not applicable)",
)
async def reservation_status(token: str) -> None:
    raise not_applicable("Number reservations", _NO_STORE)


@not_applicable_router.delete(
    "/api/numbers/store/{token}",
    responses=NOT_APPLICABLE,
    summary="Cancel reservation (not applicable)",
)
async def cancel_reservation(token: str) -> None:
    raise not_applicable("Number reservations", _NO_STORE)


# --- what a carrier account does: not applicable ------------------------------------------------


@not_applicable_router.delete(
    "/api/numbers/{number}",
    responses=NOT_APPLICABLE,
    summary="Remove phone number from your account (not applicable)",
)
async def remove_number(number: PhoneNumberPath) -> None:
    raise not_applicable(
        "Removing a number", "there is no subscription to end; detach it or remove its route"
    )


@not_applicable_router.put(
    "/api/numbers/{number}/enduser/{sid}",
    responses=NOT_APPLICABLE,
    summary="Assign phone number to end user (not applicable)",
)
async def assign_to_enduser(number: PhoneNumberPath, sid: ScenarioSid) -> None:
    raise not_applicable("Assigning an end user", "there are no end users on one's own server")
