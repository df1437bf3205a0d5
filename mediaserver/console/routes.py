"""The console's routes: its pages (no key: they hold no data) and the two keyed
endpoints its pages need that the API lacked: a scenario check without saving, a
conference member's mute, and a health summary.

- ``GET /console`` and ``GET /console/{file}``: the static pages, with a
  Content-Security-Policy that allows nothing but this server (no CDN, no inline
  script), so a page cannot be made to send the key elsewhere.
- ``POST /api/scenarios/check``: what ``mediaserver check`` says of a script,
  every problem and warning with its line and column; stores nothing.
- ``PUT /api/conferences/{name}/members/{callid}/muted``: mute or unmute a member
  (kicking one is hanging its call up, ``DELETE /api/calls/{callid}``).
- ``GET /api/console/health``: trunk registrations, RTP ports in use, live calls
  and runs, event-stream subscribers, and the event loop's lag.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from mediaserver import __version__
from mediaserver.api.auth import require_key
from mediaserver.api.deps import runs_of
from mediaserver.api.metrics import Telemetry
from mediaserver.api.models import (
    CALLID_PATTERN,
    ApiError,
    RequestModel,
    ScenarioName,
    Script,
    Status,
    not_found,
)
from mediaserver.api.native import ERROR_RESPONSES, server_of
from mediaserver.console.assets import Asset, load_assets
from mediaserver.yamlsource import Problem, ProblemsError

router = APIRouter()

ASSETS: dict[str, Asset] = load_assets()
INDEX = "index.html"

# CSP level 3: only this server's scripts, styles, media and sockets; blob: for the
# recordings the page fetched with the key; no framing (clickjacking of hang-up).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset_response(name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise ApiError(404, "not_found", f"no console file {name!r}", "file")
    return Response(asset.body, media_type=asset.media_type, headers=SECURITY_HEADERS)


@router.get("/console", include_in_schema=False)
async def console_root() -> RedirectResponse:
    # Relative asset URLs resolve under /console/ only with the slash.
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/", include_in_schema=False)
async def console_index() -> Response:
    return _asset_response(INDEX)


@router.get("/console/{file}", include_in_schema=False)
async def console_file(file: Annotated[str, Path(max_length=64)]) -> Response:
    return _asset_response(file)


# --- keyed endpoints the pages use -----------------------------------------------------------


class CheckIn(RequestModel):
    script: Script
    name: ScenarioName = Field(description="the name it would be saved under: the script's own")


class CheckProblem(BaseModel):
    line: int
    column: int
    message: str
    warning: bool


class CheckOut(BaseModel):
    ok: bool = Field(description="true when the script would be saved (warnings allowed)")
    problems: list[CheckProblem]


def _problem(problem: Problem) -> CheckProblem:
    return CheckProblem(
        line=problem.mark.line,
        column=problem.mark.column,
        message=problem.message,
        warning=problem.warning,
    )


keyed: dict[str, Any] = {"dependencies": [Depends(require_key)], "responses": ERROR_RESPONSES}


@router.post(
    "/api/scenarios/check",
    response_model=CheckOut,
    summary="Check a scenario script without saving it",
    tags=["scenarios"],
    **keyed,
)
async def check_scenario(request: Request, body: CheckIn) -> CheckOut:
    library = server_of(request).library
    try:
        scenario = library.validate(body.name, body.script)
    except ProblemsError as exc:
        found = [*exc.problems, *exc.warnings]
        return CheckOut(ok=False, problems=[_problem(p) for p in found])
    return CheckOut(ok=True, problems=[_problem(w) for w in scenario.warnings])


class Registration(BaseModel):
    trunk: str
    state: str
    status: int | None
    expiresIn: int | None = None


class Health(BaseModel):
    version: str
    uptime: float = Field(description="seconds since the server started")
    callsActive: int
    runsActive: int
    portsInUse: int
    portsCapacity: int
    eventSubscribers: int
    loopLagLast: float = Field(description="seconds the last loop sample ran late")
    loopLagMax: float = Field(description="seconds: the worst sample since start")
    trunks: list[Registration]


@router.get(
    "/api/console/health",
    response_model=Health,
    summary="Server health at a glance",
    tags=["system"],
    **keyed,
)
async def health(request: Request) -> Health:
    server = server_of(request)
    telemetry: Telemetry = request.app.state.telemetry
    lag = telemetry.loop_lag
    live = runs_of(request).live_calls()
    trunks: list[Registration] = []
    for trunk in server.trunks.by_name.values():
        if trunk.registration is not None:
            snap = trunk.registration.snapshot()
            trunks.append(
                Registration(
                    trunk=str(snap["trunk"]),
                    state=str(snap["state"]),
                    status=_int(snap["status"]),
                    expiresIn=_int(snap["expires_in"]),
                )
            )
        else:
            trunks.append(Registration(trunk=trunk.name, state="not registering", status=None))
    return Health(
        version=__version__,
        uptime=round(time.time() - telemetry.calls.started_at, 1),
        callsActive=len(live),
        runsActive=len(server.runs.live()) + sum(1 for c in live if c.scenario is not None),
        portsInUse=server.ports.in_use,
        portsCapacity=server.ports.capacity,
        eventSubscribers=server.events.subscriber_count,
        loopLagLast=round(lag.last, 4),
        loopLagMax=round(lag.worst, 4),
        trunks=trunks,
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


class MuteIn(RequestModel):
    muted: bool


@router.put(
    "/api/conferences/{name}/members/{callid}/muted",
    response_model=Status,
    summary="Mute or unmute a conference member",
    tags=["calls"],
    **keyed,
)
async def mute_member(
    request: Request,
    name: Annotated[str, Path(max_length=128)],
    callid: Annotated[str, Path(pattern=CALLID_PATTERN)],
    body: MuteIn,
) -> Status:
    room = server_of(request).conferences.get(name)
    if room is None:
        raise not_found("conference", name, "name")
    member = next((m for m in room.members.values() if m.call_id == callid.lower()), None)
    if member is None:
        raise not_found("conference member", callid, "callid")
    room.set_muted(member.leg, body.muted)
    word = "muted" if body.muted else "unmuted"
    return Status(code="ok", message=f"call {callid} {word} in conference {name}")
