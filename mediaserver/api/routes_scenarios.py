"""Scenarios, their runs and their numbers (Callr v2 ``/actions/scenarios``).

A scenario is stored only once it validates (422 listing every problem with
its line and column otherwise), then made runnable in the library, so the
store and what runs never disagree. Scenarios from ``scenarios_dir`` files
(``origin: file``) are read-only here: changing or deleting one answers 409
(``read_only``), because the file would put it back at the next start or reload; they
can still be started and have numbers attached. Attaching or detaching a
number changes the router at once (routing is live). The routes do each
change through the scenario catalog (:mod:`mediaserver.catalog`), which keeps
the store, the library and the router in step, and start and cancel runs
through the runs service (:mod:`mediaserver.runs`), both reached by the
protocols of :mod:`mediaserver.api.deps`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from mediaserver.actions.variables import VariableError, check_name
from mediaserver.actions.vms_detect import VmsDetectError, vms_detect_from
from mediaserver.api.deps import catalog_error, catalog_of, runs_of
from mediaserver.api.models import (
    MAX_RUNID,
    NUMBER_PATTERN,
    RUNID_PATTERN,
    SID_PATTERN,
    ApiError,
    ErrorDetail,
    IdCase,
    Run,
    RunStarted,
    Scenario,
    ScenarioIn,
    ScenarioPage,
    ScenarioPatch,
    StartIn,
    Status,
    not_found,
)
from mediaserver.api.native import (
    CONFLICT,
    Limit,
    Offset,
    SortOrder,
    opt_timestamp,
    page_of,
    server_of,
    store_of,
    timestamp,
)
from mediaserver.catalog import CatalogError
from mediaserver.runs import RunRefused
from mediaserver.store import Conflict, RunRecord
from mediaserver.store import Scenario as StoredScenario
from mediaserver.yamlsource import ProblemsError

router = APIRouter(tags=["scenarios"])

Sid = Annotated[
    str, Path(pattern=SID_PATTERN, description="scenario sid", examples=["k3x9a0pq"]), IdCase
]
RunId = Annotated[
    str,
    Path(
        pattern=RUNID_PATTERN,
        max_length=MAX_RUNID,
        description="run id, any case",
        examples=["api:9mnab2h6", "api:9MNAB2H6"],
    ),
    IdCase,
]
Number = Annotated[
    str,
    Path(pattern=NUMBER_PATTERN, description="E.164 number or SIP user", examples=["+33199001234"]),
]


def scenario_out(record: StoredScenario) -> Scenario:
    return Scenario(
        sid=record.id,
        name=record.name,
        script=record.source,
        origin=record.origin,
        readonly=record.origin == "file",
        numbers=list(record.numbers),
        created=timestamp(record.created_at),
        updated=timestamp(record.updated_at),
    )


def problems_error(exc: ProblemsError) -> ApiError:
    details = [
        ErrorDetail(field="script", message=p.message, line=p.mark.line, column=p.mark.column)
        for p in exc.problems
    ]
    first = details[0] if details else None
    where = f" (line {first.line}, column {first.column})" if first else ""
    count = f"; {len(details)} problems in all" if len(details) > 1 else ""
    message = f"script: {first.message if first else 'invalid'}{where}{count}"
    return ApiError(422, "invalid_scenario", message, "script", details)


def conflict(exc: Conflict) -> ApiError:
    return ApiError(409, "conflict", str(exc), exc.field)


async def _existing(request: Request, sid: str) -> StoredScenario:
    try:
        return await catalog_of(request).get(sid)
    except CatalogError as exc:
        raise catalog_error(exc) from None


@router.get("/api/scenarios", response_model=ScenarioPage, summary="Search scenarios")
async def search_scenarios(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 10,
    # Only what a name may hold: SQLite's LIKE ends its pattern at a NUL, so "%00"
    # would match every scenario.
    name: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[A-Za-z0-9 _.-]*$", description="part of the name"),
    ] = None,
    origin: Annotated[Literal["file", "api"] | None, Query()] = None,
    sort: Annotated[Literal["name", "created", "updated"], Query()] = "updated",
    order: SortOrder = "desc",
) -> dict[str, object]:
    page = await store_of(request).scenarios.search(
        name=name, origin=origin, sort=sort, order=order, limit=limit, offset=offset
    )
    return page_of([scenario_out(s) for s in page.hits], page.total, offset)


@router.post(
    "/api/scenarios",
    response_model=Scenario,
    status_code=201,
    responses=CONFLICT,
    summary="Create a scenario",
)
async def create_scenario(request: Request, body: ScenarioIn) -> Scenario:
    try:
        record = await catalog_of(request).create(body.name, body.script)
    except ProblemsError as exc:
        raise problems_error(exc) from None
    except Conflict as exc:
        raise conflict(exc) from None
    except CatalogError as exc:
        raise catalog_error(exc) from None
    return scenario_out(record)


@router.get("/api/scenarios/{sid}", response_model=Scenario, summary="Get a scenario")
async def get_scenario(request: Request, sid: Sid) -> Scenario:
    return scenario_out(await _existing(request, sid))


async def _update(request: Request, sid: str, name: str | None, script: str | None) -> Scenario:
    try:
        return scenario_out(await catalog_of(request).update(sid, name, script))
    except ProblemsError as exc:
        raise problems_error(exc) from None
    except Conflict as exc:
        raise conflict(exc) from None
    except CatalogError as exc:
        raise catalog_error(exc) from None


@router.put(
    "/api/scenarios/{sid}",
    response_model=Scenario,
    responses=CONFLICT,
    summary="Replace a scenario",
)
async def replace_scenario(request: Request, sid: Sid, body: ScenarioIn) -> Scenario:
    return await _update(request, sid, body.name, body.script)


@router.patch(
    "/api/scenarios/{sid}",
    response_model=Scenario,
    responses=CONFLICT,
    summary="Update a scenario (partial)",
)
async def update_scenario(request: Request, sid: Sid, body: ScenarioPatch) -> Scenario:
    return await _update(request, sid, body.name, body.script)


@router.delete(
    "/api/scenarios/{sid}", response_model=Status, responses=CONFLICT, summary="Delete a scenario"
)
async def delete_scenario(request: Request, sid: Sid) -> Status:
    try:
        await catalog_of(request).delete(sid)
    except Conflict as exc:
        raise conflict(exc) from None
    except CatalogError as exc:
        raise catalog_error(exc) from None
    return Status(code="ok", message=f"scenario {sid} deleted")


# --- runs -------------------------------------------------------------------------------------


@router.post(
    "/api/scenarios/{sid}/start",
    response_model=RunStarted,
    status_code=201,
    responses=CONFLICT,
    summary="Start the api-initiated branch",
)
async def start_scenario(request: Request, sid: Sid, body: StartIn) -> RunStarted:
    record = await _existing(request, sid)
    for key in body.variables:
        try:
            check_name(key)
        except VariableError as exc:
            raise ApiError(422, "invalid_request", str(exc), f"variables.{key}") from None
    vms_detect = None
    if body.options.vms_detect is not None:
        try:
            vms_detect = vms_detect_from(body.options.vms_detect, "options.vms_detect")
        except VmsDetectError as exc:
            raise ApiError(422, "invalid_request", str(exc), exc.field) from None
    try:
        runid = await runs_of(request).start_run(
            record.name, to=body.to, variables=body.variables, vms_detect=vms_detect
        )
    except RunRefused as exc:
        if exc.field == "scenario":  # no api-initiated branch: the scenario, not the request
            raise ApiError(409, "conflict", str(exc), "sid") from None
        raise ApiError(422, "run_refused", str(exc), exc.field) from None
    return RunStarted(runid=runid)


def run_out(run: RunRecord) -> Run:
    return Run(
        runid=run.id,
        scenario=run.scenario_id,
        branch=run.branch,
        status=run.status,
        variables=run.variables,
        error=run.error,
        started=timestamp(run.started_at),
        ended=opt_timestamp(run.ended_at),
    )


async def _run(request: Request, sid: str, runid: str) -> RunRecord:
    await _existing(request, sid)
    store = store_of(request)
    run = await store.runs.get(runid, sid)
    if run is None:
        # Started a moment ago, its record may still wait in the journal's queue.
        await server_of(request).journal.flush()
        run = await store.runs.get(runid, sid)
    if run is None:
        raise not_found("run", runid, "runid")
    return run


@router.get("/api/scenarios/{sid}/runs/{runid}", response_model=Run, summary="Get a run")
async def get_run(request: Request, sid: Sid, runid: RunId) -> Run:
    return run_out(await _run(request, sid, runid))


@router.delete(
    "/api/scenarios/{sid}/runs/{runid}",
    response_model=Status,
    responses=CONFLICT,
    summary="Cancel a run",
)
async def cancel_run(request: Request, sid: Sid, runid: RunId) -> Status:
    run = await _run(request, sid, runid)
    if not runs_of(request).cancel_run(runid):
        raise ApiError(409, "conflict", f"run {runid} is not running ({run.status})", "runid")
    return Status(code="ok", message=f"run {runid} cancelled")


# --- numbers ----------------------------------------------------------------------------------


@router.put(
    "/api/scenarios/{sid}/numbers/{number}",
    response_model=Status,
    responses=CONFLICT,
    summary="Attach a number",
)
async def attach_number(request: Request, sid: Sid, number: Number) -> Status:
    return await attach(request, sid, number)


async def attach(request: Request, sid: str, number: str) -> Status:
    """Attach ``number`` to scenario ``sid`` (also the phone-number routes' way)."""
    try:
        attached = await catalog_of(request).attach(sid, number)
    except Conflict as exc:
        raise conflict(exc) from None
    except CatalogError as exc:
        raise catalog_error(exc) from None
    moved = f" (moved from scenario {attached.previous})" if attached.previous else ""
    return Status(code="ok", message=f"{number} attached to scenario {sid}{moved}")


@router.delete(
    "/api/scenarios/{sid}/numbers/{number}", response_model=Status, summary="Detach a number"
)
async def detach_number(request: Request, sid: Sid, number: Number) -> Status:
    return await detach(request, sid, number)


async def detach(request: Request, sid: str, number: str) -> Status:
    """Detach ``number`` from scenario ``sid`` (also the phone-number routes' way)."""
    try:
        await catalog_of(request).detach(sid, number)
    except CatalogError as exc:
        raise catalog_error(exc) from None
    return Status(code="ok", message=f"{number} detached from scenario {sid}")
