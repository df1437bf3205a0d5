"""Scenarios, their runs and their numbers (Callr v2 ``/actions/scenarios``).

A scenario is stored only once it validates (422 listing every problem with
its line and column otherwise), then made runnable in the library, so the
store and what runs never disagree. Scenarios from ``scenarios_dir`` files
(``origin: file``) are read-only here: changing or deleting one answers 409
(``read_only``), because the file would put it back at the next start or reload; they
can still be started and have numbers attached. Attaching or detaching a
number changes the router at once (routing is live).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from mediaserver.actions.model import Scenario as LoadedScenario
from mediaserver.actions.variables import VariableError, check_name
from mediaserver.api.models import (
    NUMBER_PATTERN,
    RUNID_PATTERN,
    SID_PATTERN,
    ApiError,
    ErrorDetail,
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
from mediaserver.server import INBOUND_BRANCH, RunRefused
from mediaserver.store import Conflict, RunRecord, UnknownReference
from mediaserver.store import Scenario as StoredScenario
from mediaserver.yamlsource import ProblemsError

router = APIRouter(tags=["scenarios"])

Sid = Annotated[str, Path(pattern=SID_PATTERN, description="scenario sid", examples=["k3x9a0pq"])]
RunId = Annotated[str, Path(pattern=RUNID_PATTERN, description="run id", examples=["api:9mnab2h6"])]
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
    record = await store_of(request).scenarios.get(sid)
    if record is None:
        raise not_found("scenario", sid, "sid")
    return record


def _writable(record: StoredScenario) -> None:
    if record.origin == "file":
        raise ApiError(
            409,
            "read_only",
            f"scenario {record.name!r} comes from a file in scenarios_dir; edit the file "
            "and reload the server (SIGHUP) instead",
            "sid",
        )


def _validate(request: Request, name: str, script: str) -> LoadedScenario:
    try:
        return server_of(request).library.validate(name, script)
    except ProblemsError as exc:
        raise problems_error(exc) from None


def _routed_by_config(request: Request, name: str) -> bool:
    return name in server_of(request).router.routes.values()


@router.get("/api/scenarios", response_model=ScenarioPage, summary="Search scenarios")
async def search_scenarios(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 10,
    name: Annotated[str | None, Query(max_length=64, description="part of the name")] = None,
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
    scenario = _validate(request, body.name, body.script)
    try:
        record = await store_of(request).scenarios.create(body.name, body.script, "api")
    except Conflict as exc:
        raise conflict(exc) from None
    server_of(request).library.put(record.name, record.id, scenario)
    return scenario_out(record)


@router.get("/api/scenarios/{sid}", response_model=Scenario, summary="Get a scenario")
async def get_scenario(request: Request, sid: Sid) -> Scenario:
    return scenario_out(await _existing(request, sid))


async def _update(request: Request, sid: str, name: str | None, script: str | None) -> Scenario:
    server = server_of(request)
    record = await _existing(request, sid)
    _writable(record)
    new_name = name if name is not None else record.name
    new_script = script if script is not None else record.source
    scenario = _validate(request, new_name, new_script)
    if INBOUND_BRANCH not in scenario.branches and (
        record.numbers or _routed_by_config(request, record.name)
    ):
        raise ApiError(
            422,
            "invalid_scenario",
            f"script: numbers or routes lead to this scenario, so it needs an "
            f"{INBOUND_BRANCH} branch",
            "script",
        )
    if new_name != record.name and _routed_by_config(request, record.name):
        raise ApiError(
            409,
            "conflict",
            f"the config's routes lead to {record.name!r}: it keeps its name",
            "name",
        )
    try:
        updated = await store_of(request).scenarios.update(sid, name=new_name, source=new_script)
    except Conflict as exc:
        raise conflict(exc) from None
    if updated is None:
        raise not_found("scenario", sid, "sid")
    if updated.name != record.name:
        server.library.remove(record.name)
        server.router.rename(record.name, updated.name)
    server.library.put(updated.name, updated.id, scenario)
    return scenario_out(updated)


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
    server = server_of(request)
    record = await _existing(request, sid)
    _writable(record)
    if _routed_by_config(request, record.name):
        raise ApiError(
            409,
            "conflict",
            f"the config's routes lead to {record.name!r}; change them first",
            "sid",
        )
    if not await store_of(request).scenarios.delete(sid):
        raise not_found("scenario", sid, "sid")
    server.library.remove(record.name)
    server.router.forget(record.name)
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
    try:
        runid = await server_of(request).start_run(
            record.name, to=body.to, variables=body.variables
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
    if not server_of(request).cancel_run(runid):
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
    server = server_of(request)
    record = await _existing(request, sid)
    scenario = server.library.get(record.name)
    if scenario is None or INBOUND_BRANCH not in scenario.branches:
        raise ApiError(
            409,
            "conflict",
            f"scenario {record.name!r} has no {INBOUND_BRANCH} branch to run for calls",
            "sid",
        )
    try:
        previous = await store_of(request).numbers.attach(number, sid)
    except UnknownReference:
        raise not_found("scenario", sid, "sid") from None
    server.router.attach(number, record.name)
    moved = f" (moved from scenario {previous})" if previous not in (None, sid) else ""
    return Status(code="ok", message=f"{number} attached to scenario {sid}{moved}")


@router.delete(
    "/api/scenarios/{sid}/numbers/{number}", response_model=Status, summary="Detach a number"
)
async def detach_number(request: Request, sid: Sid, number: Number) -> Status:
    await _existing(request, sid)
    if not await store_of(request).numbers.detach(number, sid):
        raise ApiError(404, "not_found", f"{number} is not attached to scenario {sid}", "number")
    server_of(request).router.detach(number)
    return Status(code="ok", message=f"{number} detached from scenario {sid}")
