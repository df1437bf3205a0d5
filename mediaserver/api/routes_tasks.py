"""Tasks (Callr v2 "Tasks") and the calls export that starts one ("Export calls").

``GET /api/tasks/{taskid}`` is the seed's Task; ``DELETE`` cancels one that
is ``pending`` or ``running`` (409 otherwise). ``POST /api/calls/export``
takes the seed's filters (``direction``, ``from``, ``to``, at most 31 days
apart, and optionally ``scenario`` and ``number``) and answers the task id
at once; when the task is ``done`` its ``result.url`` is
``/api/tasks/{taskid}/file``, the CSV (the columns of the synchronous
``GET /api/cdrs/export``, which stays). The seed's limit of 5 exports a day
protects a shared platform and does not apply here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse

from mediaserver.api.models import (
    SID_PATTERN,
    TASK_ID_PATTERN,
    ApiError,
    IdCase,
    Status,
    TaskOut,
    not_found,
)
from mediaserver.api.native import CONFLICT, JSON_ERROR_RESPONSES, aware, server_of, store_of
from mediaserver.api.routes_recordings import TASK_ID_ANSWER
from mediaserver.exports import MAX_DAYS, export_calls, exports_folder
from mediaserver.store import CallFilter
from mediaserver.tasks import Progress, Task, TaskNotCancellable, TaskNotFound, new_task_id

router = APIRouter(tags=["tasks"])

TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="task id")]


def task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(task.as_json())


def _existing(request: Request, taskid: str) -> Task:
    task = server_of(request).tasks.get(taskid)
    if task is None:
        raise not_found("task", taskid, "taskid")
    return task


@router.get("/api/tasks/{taskid}", response_model=TaskOut, summary="Get task")
async def get_task(request: Request, taskid: TaskId) -> TaskOut:
    return task_out(_existing(request, taskid))


@router.delete(
    "/api/tasks/{taskid}", response_model=Status, responses=CONFLICT, summary="Cancel task"
)
async def cancel_task(request: Request, taskid: TaskId) -> Status:
    try:
        server_of(request).tasks.cancel(taskid)
    except TaskNotFound:
        raise not_found("task", taskid, "taskid") from None
    except TaskNotCancellable as exc:
        raise ApiError(
            409, "conflict", f"task {taskid} is {exc}: only a pending or running task can be"
            " cancelled", "taskid",
        ) from None  # fmt: skip
    return Status(code="ok", message=f"task {taskid} cancelled")


@router.get(
    "/api/tasks/{taskid}/file",
    response_class=FileResponse,
    responses={
        **JSON_ERROR_RESPONSES,
        **CONFLICT,
        200: {"description": "the CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    summary="Download a task's file (an export's CSV)",
    name="task_file",
)
async def task_file(request: Request, taskid: TaskId) -> FileResponse:
    task = _existing(request, taskid)
    if task.file is None:
        raise ApiError(404, "not_found", f"task {taskid} ({task.type}) makes no file", "taskid")
    if task.status != "done":
        raise ApiError(
            409, "conflict", f"task {taskid} is {task.status}: its file is there once done",
            "taskid",
        )  # fmt: skip
    if not await asyncio.to_thread(task.file.is_file):
        raise ApiError(404, "not_found", f"the file of task {taskid} is gone", "taskid")
    return FileResponse(
        task.file, media_type="text/csv; charset=utf-8", filename=f"calls-{taskid}.csv"
    )


@router.post(
    "/api/calls/export",
    response_model=str,
    status_code=202,
    responses=TASK_ID_ANSWER,
    summary="Export calls (a task; the CSV at its result.url)",
)
async def export_calls_task(
    request: Request,
    direction: Annotated[Literal["inbound", "outbound"], Query()],
    from_: Annotated[datetime, Query(alias="from", description="RFC 3339, inclusive")],
    to: Annotated[datetime, Query(description="RFC 3339, inclusive")],
    scenario: Annotated[
        str | None, Query(pattern=SID_PATTERN, description="scenario sid"), IdCase
    ] = None,
    number: Annotated[
        str | None, Query(max_length=256, description="the records' number (as GET /api/cdrs)")
    ] = None,
) -> str:
    since, until = aware(from_, "from"), aware(to, "to")
    assert since is not None and until is not None
    if until < since:
        raise ApiError(422, "invalid_request", "to is before from: give from <= to", "to")
    if until - since > timedelta(days=MAX_DAYS):
        raise ApiError(
            422, "invalid_request", f"at most {MAX_DAYS} days at once (as the seed says): split the"
            " export in several requests", "to",
        )  # fmt: skip
    filters = CallFilter(
        direction=direction,
        number=number,
        scenario_id=scenario,
        since=since,
        until=until,
    )
    server = server_of(request)
    store = store_of(request)
    task_id = new_task_id()
    target = exports_folder(server.config.storage_path(server.config.storage.cache)) / (
        f"{task_id}.csv"
    )
    url = str(request.url_for("task_file", taskid=task_id))

    async def work(progress: Progress) -> dict[str, Any]:
        rows = await export_calls(store, filters, target, progress)
        return {"url": url, "rows": rows, "format": "csv"}

    task = server.tasks.start("calls.export", work, task_id=task_id)
    task.file = target
    return task.id
