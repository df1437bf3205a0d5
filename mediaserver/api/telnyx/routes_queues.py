"""Queues: ``enqueue`` and ``leave_queue`` on a call, and ``/queues`` (seed 002).

A queue exists while a call waits in it (the seed makes it on the first
``enqueue``); ``GET /queues/{name}`` of a queue nobody waits in is 404.
Controlled calls and the callers of a scenario's ``queue@v1`` wait in the
same queues, so both are listed; a call that is not under Call Control shows
its call id for the three Call Control ids and an empty ``connection_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from mediaserver.api.telnyx.commanding import OK, commanding, control_of
from mediaserver.api.telnyx.errors import call_ended, invalid, not_found
from mediaserver.api.telnyx.models import Command, EnqueueIn
from mediaserver.api.telnyx.paging import PageNumber, PageRequest, PageSize, page_of
from mediaserver.callcontrol.controlled import ControlledCall
from mediaserver.callcontrol.queueing import QueueInfo, QueueService, wait_seconds
from mediaserver.callcontrol.service import CallControl
from mediaserver.calls.queues import Waiter
from mediaserver.webhooks.envelope import format_occurred_at

router = APIRouter(tags=["Queue Commands"])

CallControlId = Annotated[str, Path(min_length=1, max_length=128)]
QueueName = Annotated[str, Path(min_length=1, max_length=128)]


def _service(request: Request) -> QueueService:
    service: QueueService = request.app.state.server.call_control_queues
    return service


def _live(request: Request, call_control_id: str) -> ControlledCall:
    cc = control_of(request).find(call_control_id)
    if cc is None:
        raise not_found("call", call_control_id)
    if not cc.alive:
        raise call_ended(call_control_id)
    return cc


def _queue(request: Request, name: str) -> QueueInfo:
    info = _service(request).info(name)
    if info is None:
        raise not_found("queue", name)
    return info


def _queue_record(service: QueueService, info: QueueInfo) -> dict[str, Any]:
    waiting = service.waiting(info)
    waits = [wait_seconds(w) for w in waiting]
    return {
        "record_type": "queue",
        "id": info.id,
        "name": info.queue.name,
        "current_size": len(waiting),
        "max_size": info.max_size,
        "average_wait_time_secs": sum(waits) // len(waits) if waits else 0,
        "created_at": format_occurred_at(info.created_at),
        "updated_at": format_occurred_at(info.updated_at),
    }


def _queue_call(
    control: CallControl, info: QueueInfo, waiter: Waiter, position: int
) -> dict[str, Any]:
    call = waiter.call
    cc = control.find(call.id)
    waited = wait_seconds(waiter)
    record: dict[str, Any] = {
        "record_type": "queue_call",
        "call_control_id": call.id,
        "call_leg_id": call.id if cc is None else cc.call_leg_id,
        "call_session_id": call.id if cc is None else cc.call_session_id,
        "connection_id": "" if cc is None else cc.connection_id,
        "is_alive": not call.ended,
        "from": call.from_user if cc is None else cc.from_,
        "to": call.to_user if cc is None else cc.to,
        "enqueued_at": format_occurred_at(datetime.now(UTC) - timedelta(seconds=waited)),
        "wait_time_secs": waited,
        "queue_position": position,
        "queue_id": info.id,
    }
    return record


def take_from_queue(request: Request, name: str) -> ControlledCall:
    """``bridge`` with ``queue``: the controlled call that has waited longest in
    ``name``, out of the queue (422 on ``/queue`` when none waits)."""
    cc = _service(request).take(name)
    if cc is None:
        raise invalid("queue", f"No call under Call Control waits in queue {name!r}.")
    return cc


@router.post("/calls/{call_control_id}/actions/enqueue", summary="Enqueue call")
async def enqueue(request: Request, call_control_id: CallControlId, body: EnqueueIn) -> Any:
    cc = _live(request, call_control_id)
    max_wait = None if body.max_wait_time_secs is None else float(body.max_wait_time_secs)
    with commanding(cc, body.command_id, body.client_state) as fresh:
        if fresh:
            _service(request).enqueue(
                cc, body.queue_name, max_wait=max_wait, max_size=body.max_size
            )
    return OK


@router.post("/calls/{call_control_id}/actions/leave_queue", summary="Remove call from a queue")
async def leave_queue(request: Request, call_control_id: CallControlId, body: Command) -> Any:
    cc = _live(request, call_control_id)
    with commanding(cc, body.command_id, body.client_state) as fresh:
        if fresh:
            _service(request).leave(cc)
    return OK


@router.get("/queues/{queue_name}", summary="Retrieve a call queue")
async def retrieve_queue(request: Request, queue_name: QueueName) -> dict[str, Any]:
    service = _service(request)
    return {"data": _queue_record(service, _queue(request, queue_name))}


@router.get("/queues/{queue_name}/calls", summary="Retrieve calls from a queue")
async def list_queue_calls(
    request: Request, queue_name: QueueName, number: PageNumber = 1, size: PageSize = 20
) -> dict[str, Any]:
    service = _service(request)
    info = _queue(request, queue_name)
    control = control_of(request)
    calls = [
        _queue_call(control, info, waiter, position)
        for position, waiter in enumerate(service.waiting(info), start=1)
    ]
    return page_of(calls, PageRequest(number, size))


@router.get("/queues/{queue_name}/calls/{call_control_id}", summary="Retrieve a call from a queue")
async def retrieve_queue_call(
    request: Request, queue_name: QueueName, call_control_id: CallControlId
) -> dict[str, Any]:
    service = _service(request)
    info = _queue(request, queue_name)
    for position, waiter in enumerate(service.waiting(info), start=1):
        if waiter.call.id == call_control_id:
            return {"data": _queue_call(control_of(request), info, waiter, position)}
    raise not_found("call in this queue", call_control_id)
