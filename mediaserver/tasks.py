"""Tasks: work the API answers at once with an id and does in the background (Callr v2 Tasks).

Theory of operation. The seed's asynchronous operations (the calls export,
the recordings' bulk update and delete) answer with a task id (32 to 256
letters and digits; ours are 32 hex digits); ``GET /api/tasks/{taskid}``
tells its ``status``, ``percent``, ``ended``, ``result`` and ``error``, and
``DELETE /api/tasks/{taskid}`` cancels it while it is ``pending`` or
``running`` (the seed: "if the task is RUNNING, the result is undefined";
here the work stops at its next await, and what it did so far stays done).

A task goes ``pending`` -> ``running`` -> ``done`` | ``error``, or to
``cancelled`` from either of the first two. Every change of status, and each
further tenth of progress, publishes ``v2.task.updated`` with the task
object as payload (the seed's Task). A task may wait ``delay`` seconds in
``pending`` before it runs: the recordings' "delete all" does, so a request
sent by mistake can still be cancelled.

Tasks live in memory for :data:`KEEP_SECONDS` after they end (the seed keeps
an export's file 24 h), and are forgotten at a restart; a task still running
at shutdown is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from mediaserver.log import get_logger
from mediaserver.store.cdrs import rfc3339

log = get_logger("tasks")

TaskStatus = Literal["pending", "running", "done", "error", "cancelled"]
TASK_UPDATED = "v2.task.updated"
KEEP_SECONDS = 24 * 3600  # the seed: an export "will be available for download for 24 hours"
ACTIVE: tuple[TaskStatus, ...] = ("pending", "running")

Publish = Callable[[str, str, Mapping[str, Any]], object]
"""``publish(event_type, subject, payload)``: a WebhookDispatcher.publish."""


def new_task_id() -> str:
    """32 hex digits: within the seed's TaskID (``^[a-zA-Z0-9]{32,256}$``)."""
    return uuid.uuid4().hex


class TaskNotFound(Exception):
    pass


class TaskNotCancellable(Exception):
    """The task has ended: only a ``pending`` or ``running`` one may be cancelled."""


@dataclass
class Task:
    id: str
    type: str
    """What it does: ``calls.export``, ``recordings.update``, ``recordings.delete``."""
    created: datetime
    status: TaskStatus = "pending"
    percent: int = 0
    ended: datetime | None = None
    result: Any = None
    error: str | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    file: Path | None = None
    """The file the task made (an export), deleted when the task is forgotten."""

    def as_json(self) -> dict[str, Any]:
        """The seed's Task object (``type`` and ``created`` are ours, extra)."""
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "percent": self.percent,
            "created": rfc3339(self.created),
            "ended": rfc3339(self.ended),
            "result": self.result,
            "error": self.error,
        }


class Progress:
    """What a task's work reports: how far it is, in percent."""

    def __init__(self, tasks: Tasks, task: Task) -> None:
        self._tasks, self._task = tasks, task

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else max(0, min(99, done * 100 // total))
        previous = self._task.percent
        self._task.percent = percent
        if percent // 10 > previous // 10:  # one event per tenth, not per row
            self._tasks.publish(self._task)


Work = Callable[[Progress], Awaitable[Any]]
"""A task's work: returns the ``result``; raising ends the task in ``error``."""


class Tasks:
    def __init__(self, publish: Publish | None = None) -> None:
        self._publish = publish
        self._tasks: dict[str, Task] = {}

    def start(
        self, type: str, work: Work, *, delay: float = 0.0, task_id: str | None = None
    ) -> Task:
        """Create a ``pending`` task and run ``work`` in the background after ``delay`` s
        (``task_id``: one made with :func:`new_task_id` beforehand)."""
        self._prune()
        task = Task(id=task_id or new_task_id(), type=type, created=datetime.now(UTC))
        self._tasks[task.id] = task
        self.publish(task)
        task.runner = asyncio.get_running_loop().create_task(self._run(task, work, delay))
        return task

    def get(self, task_id: str) -> Task | None:
        self._prune()
        return self._tasks.get(task_id)

    def cancel(self, task_id: str) -> Task:
        """Cancel a ``pending`` or ``running`` task; TaskNotFound, TaskNotCancellable."""
        task = self.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        if task.status not in ACTIVE:
            raise TaskNotCancellable(task.status)
        self._end(task, "cancelled")
        if task.runner is not None:
            task.runner.cancel()
        return task

    async def stop(self) -> None:
        """Cancel the tasks still pending or running (at shutdown)."""
        runners = [t.runner for t in self._tasks.values() if t.runner and not t.runner.done()]
        for task in list(self._tasks.values()):
            if task.status in ACTIVE:
                self._end(task, "cancelled", error="the server stopped")
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    def publish(self, task: Task) -> None:
        if self._publish is not None:
            self._publish(TASK_UPDATED, task.id, task.as_json())

    async def _run(self, task: Task, work: Work, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            task.status = "running"
            self.publish(task)
            result = await work(Progress(self, task))
        except asyncio.CancelledError:
            return  # cancel() has ended it already
        except Exception as exc:
            log.exception("task failed", task=task.id, type=task.type)
            self._end(task, "error", error=str(exc) or type(exc).__name__)
            return
        task.result = result
        task.percent = 100
        self._end(task, "done")

    def _end(self, task: Task, status: TaskStatus, error: str | None = None) -> None:
        task.status, task.error, task.ended = status, error, datetime.now(UTC)
        self.publish(task)

    def _prune(self) -> None:
        horizon = datetime.now(UTC) - timedelta(seconds=KEEP_SECONDS)
        for task_id in [t.id for t in self._tasks.values() if t.ended and t.ended < horizon]:
            gone = self._tasks.pop(task_id)
            if gone.file is not None:
                gone.file.unlink(missing_ok=True)
