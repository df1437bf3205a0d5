"""Queues under Call Control (seed 002 ``enqueue``, ``leave_queue``, ``/queues``).

Theory of operation. A controlled call waits in the same
:class:`~mediaserver.calls.queues.CallQueue` as the callers of
``queue@v1``: :meth:`QueueService.enqueue` answers at once, puts a
:class:`~mediaserver.calls.queues.Waiter` at the back and starts the call's
wait in the background (hold audio looped, when the server has some). The
wait ends when

* an agent takes the call (a scenario's ``queue@v1`` ``bridge_next``, or a
  ``bridge`` command naming the queue): reason ``bridged``;
* the application sends ``leave_queue``: ``leave``;
* ``max_wait_time_secs`` pass: ``timeout``;
* the call ends: ``hangup``;

and ``call.left.queue`` then tells the application why; the call stays
under its control. What Call Control adds to a queue (its ``id``,
``max_size``, when it was made) is kept here, by name, while the queue lives.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mediaserver.callcontrol.controlled import CommandRefused, ControlledCall
from mediaserver.calls.queues import CallQueue, CallQueues, Waiter
from mediaserver.log import get_logger
from mediaserver.media.pcm import Pcm

if TYPE_CHECKING:
    from mediaserver.callcontrol.service import CallControl

log = get_logger("callcontrol")


class QueueRefused(CommandRefused):
    """An enqueue or leave_queue that cannot apply; ``field``: the body field at fault."""


@dataclass
class QueueInfo:
    """What Call Control knows of a queue beyond its waiters."""

    queue: CallQueue
    max_size: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(eq=False)
class Queued:
    """A controlled call waiting in a queue."""

    cc: ControlledCall
    info: QueueInfo
    waiter: Waiter
    enqueued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    left: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Set with the reason when the application or the time limit takes the call out."""
    told: bool = False
    """``call.left.queue`` is posted already (a bridge took the call)."""


class QueueService:
    def __init__(
        self, control: CallControl, queues: CallQueues, hold_audio: Pcm | None = None
    ) -> None:
        self.control = control
        self.queues = queues
        self.hold_audio = hold_audio
        self._infos: dict[str, QueueInfo] = {}
        self._queued: dict[str, Queued] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def info(self, name: str) -> QueueInfo | None:
        """The queue ``name`` while someone waits in it."""
        queue = self.queues.get(name)
        if queue is None:
            self._infos.pop(name, None)
            return None
        info = self._infos.get(name)
        if info is None or info.queue is not queue:
            info = self._infos[name] = QueueInfo(queue, max_size=100)
        return info

    def waiting(self, info: QueueInfo) -> list[Waiter]:
        return [w for w in info.queue.waiting if not w.call.ended and not w.left.done()]

    def queued(self, call_control_id: str) -> Queued | None:
        return self._queued.get(call_control_id)

    def enqueue(
        self, cc: ControlledCall, name: str, *, max_wait: float | None, max_size: int
    ) -> None:
        if not cc.call.answered:
            raise QueueRefused(None, "the call is not answered yet: answer it first")
        if cc.call_control_id in self._queued:
            current = self._queued[cc.call_control_id].info.queue.name
            raise QueueRefused(None, f"the call is in queue {current!r} already: leave it first")
        if cc.call.leg.mixed_by is not None:
            raise QueueRefused(None, "the call is in a conference: leave it first")
        info = self.info(name)
        if info is not None and len(self.waiting(info)) >= info.max_size:
            raise QueueRefused("queue_name", f"Queue {name!r} is full ({info.max_size} calls).")
        queue = self.queues.join(name)
        if info is None:
            info = self._infos[name] = QueueInfo(queue, max_size=max_size)
        for slot in (cc.media, cc.gather):
            if slot is not None and not slot.done():
                slot.cancel()
        cc.call.stop_audio()
        waiter = Waiter(cc.call)
        queue.waiting.append(waiter)
        queued = Queued(cc, info, waiter)
        self._queued[cc.call_control_id] = queued
        info.updated_at = datetime.now(UTC)
        if self.hold_audio is not None:
            cc.call.leg.play(self.hold_audio, loop=True)
        self._post(queued, "call.enqueued", current_position=queue.position(waiter))
        log.info("call control call queued", queue=name, call_id=cc.call_control_id)
        task = asyncio.get_running_loop().create_task(self._wait(queued, max_wait))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def leave(self, cc: ControlledCall) -> None:
        queued = self._queued.get(cc.call_control_id)
        if queued is None or queued.left.done():
            raise QueueRefused(None, "the call is in no queue")
        queued.left.set_result("leave")

    def take(self, name: str) -> ControlledCall | None:
        """The controlled call that has waited longest in ``name``, taken out of it
        for a ``bridge`` (reason ``bridged``); None when none waits. Callers of a
        scenario's ``queue@v1`` are left for its agents."""
        info = self.info(name)
        if info is None:
            return None
        for waiter in self.waiting(info):
            queued = next((q for q in self._queued.values() if q.waiter is waiter), None)
            if queued is not None:
                waiter.taken.set_result(None)
                waiter.released.set_result(None)  # the bridge is the application's to end
                queued.cc.call.leg.stop_playback()
                # Told now, before the bridge's own events.
                self._post(queued, "call.left.queue", reason="bridged")
                queued.told = True
                return queued.cc
        return None

    def position(self, queued: Queued) -> int:
        return queued.info.queue.position(queued.waiter)

    async def _wait(self, queued: Queued, max_wait: float | None) -> None:
        waiter = queued.waiter
        call = queued.cc.call
        reason = "hangup"
        try:
            waits: list[asyncio.Future[Any]] = [waiter.taken, queued.left, call.ended_future]
            done, _ = await asyncio.wait(
                waits, timeout=max_wait, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter.taken.done():
                reason = "bridged"
            elif queued.left.done():
                reason = queued.left.result()
            elif not done:
                reason = "timeout"
        finally:
            self._queued.pop(queued.cc.call_control_id, None)
            queue = queued.info.queue
            if waiter in queue.waiting:
                queue.waiting.remove(waiter)
            if reason != "bridged":
                self._let_go(waiter)
            self.queues.drop_if_empty(queue)
            if not queued.told:
                self._post(queued, "call.left.queue", reason=reason)
            log.info("call control call left queue", queue=queue.name, reason=reason)
        if reason != "bridged":
            return
        try:
            # The agent runs the bridge (bridge_next) until the call ends or we let go.
            await asyncio.wait([waiter.released, call.ended_future])
        finally:
            self._let_go(waiter)

    @staticmethod
    def _let_go(waiter: Waiter) -> None:
        """The call waits no more: an agent's bridge with it ends, the hold audio stops."""
        if not waiter.left.done():
            waiter.left.set_result(None)
        if not waiter.taken.done() and not waiter.call.ended:
            waiter.call.leg.stop_playback()

    def _post(self, queued: Queued, event_type: str, **fields: Any) -> None:
        cc = queued.cc
        payload: dict[str, Any] = {
            "call_control_id": cc.call_control_id,
            "call_leg_id": cc.call_leg_id,
            "call_session_id": cc.call_session_id,
            "client_state": cc.client_state,
            "connection_id": cc.connection_id,
            "queue": queued.info.queue.name,
            **fields,
        }
        self.control.post_payload(cc.webhook, event_type, payload, cc.call_control_id)


def wait_seconds(waiter: Waiter) -> int:
    return int(time.monotonic() - waiter.joined_at)
