"""Call-centre queues: callers wait, agents take them in order (``queue@v1``).

Theory of operation: a :class:`CallQueue` per name lives in the server's
:class:`CallQueues` (``services.queues``). ``enqueue`` answers the
caller if needed and puts it at the back: it hears the hold audio in a loop,
and, when asked, its position every so often, until an agent takes it, the
maximum wait passes, or it hangs up. ``bridge_next``, run by an agent's call,
takes the caller who has waited longest and joins the two legs as
``dial@v1`` does (packets relayed, translated between PCMU and PCMA); both
runs go on when that bridge ends, the caller's ``enqueue`` returning
``bridged`` and the agent's ``bridge_next`` too.

``max_calls`` refuses an offer (``full``) when that many callers already
wait. :func:`offer` queues a caller without waiting (Voxology's ``async``):
its run goes on while it is in line, and :func:`leave` takes it out again;
an agent who takes it bridges to it as to any other. :func:`release_next`
(Voxology's ``poll``) lets the longest-waiting caller out of the queue
without bridging it: its ``enqueue`` returns ``released``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mediaserver.actions.callapi import CallEnded, Pcm
from mediaserver.log import get_logger

if TYPE_CHECKING:
    from mediaserver.calls.base import Call

log = get_logger("queue")

ANNOUNCE_EVERY = 30.0  # seconds between position announcements


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class Waiter:
    call: Call
    joined_at: float = field(default_factory=time.monotonic)
    # Set by the agent who takes this caller, then when that agent's bridge ends.
    taken: asyncio.Future[None] = field(default_factory=_future)
    released: asyncio.Future[None] = field(default_factory=_future)
    # Set when the caller's enqueue ends, however (hang-up, a new run on the call).
    left: asyncio.Future[None] = field(default_factory=_future)
    # What the caller's enqueue returns once taken: bridged, or released (release_next).
    taken_as: str = "bridged"
    waits: bool = True  # False: an offer (async): no enqueue waits for the futures


class CallQueue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.waiting: deque[Waiter] = deque()

    def size(self) -> int:
        """How many callers are in line (not those who hung up or left meanwhile)."""
        return sum(1 for w in self.waiting if not w.call.ended and not w.left.done())

    def full(self, max_calls: int | None) -> bool:
        """Whether ``max_calls`` callers (or more) wait already."""
        return max_calls is not None and self.size() >= max_calls

    def position(self, waiter: Waiter) -> int:
        """1 for the next caller to be taken."""
        return self.waiting.index(waiter) + 1

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "name": self.name,
            "waiting": len(self.waiting),
            "longest_wait": round(now - self.waiting[0].joined_at, 1) if self.waiting else 0.0,
            "calls": [w.call.id for w in self.waiting],
        }


class CallQueues:
    """The call queues by name; a queue exists while someone waits in it."""

    def __init__(self) -> None:
        self._queues: dict[str, CallQueue] = {}

    def join(self, name: str) -> CallQueue:
        """The queue ``name``, made when its first caller joins."""
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = CallQueue(name)
        return queue

    def get(self, name: str) -> CallQueue | None:
        return self._queues.get(name)

    def drop_if_empty(self, queue: CallQueue) -> None:
        """Forget ``queue`` once nobody waits in it (unless another took its name)."""
        if not queue.waiting and self._queues.get(queue.name) is queue:
            del self._queues[queue.name]

    def snapshots(self) -> list[dict[str, Any]]:
        """Every queue someone waits in, as the API lists them."""
        return [queue.snapshot() for queue in self._queues.values() if queue.waiting]


Announce = Callable[[int], Awaitable[Pcm]]
"""The audio telling a caller its position in the queue."""


async def enqueue(
    call: Call,
    queues: CallQueues,
    name: str,
    *,
    hold_audio: Pcm,
    max_wait: float | None,
    announce: Announce | None = None,
    max_calls: int | None = None,
) -> str:
    """Wait in the queue ``name``: ``bridged`` once an agent took the call and that
    bridge ended, ``released`` when :func:`release_next` let it out, ``timeout``
    after ``max_wait`` seconds, ``full`` (at once) when ``max_calls`` wait already;
    CallEnded if the caller hangs up. The queue exists in ``queues`` while someone
    waits in it."""
    if not call.answered:
        await call.answer()
    existing = queues.get(name)
    if existing is not None and existing.full(max_calls):
        log.info("queue full", queue=name, max_calls=max_calls, call_id=call.id)
        return "full"
    queue = queues.join(name)
    waiter = Waiter(call)
    queue.waiting.append(waiter)
    log.info("queued", queue=queue.name, position=len(queue.waiting), call_id=call.id)
    _publish(call, "call.enqueued", queue=queue.name, position=len(queue.waiting))
    outcome = "hangup"  # unless the wait ends otherwise
    deadline = None if max_wait is None else time.monotonic() + max_wait
    try:
        while not waiter.taken.done():
            call.check()
            if deadline is not None and time.monotonic() >= deadline:
                log.info("left the queue: waited too long", queue=queue.name, call_id=call.id)
                outcome = "timeout"
                return outcome
            if announce is not None:
                announcement = call.leg.play(await announce(queue.position(waiter)))
                await call.wait_any(
                    [announcement.done, waiter.taken], _left(deadline), wake_on_digit=False
                )
                if waiter.taken.done():
                    break
            call.leg.play(hold_audio, loop=True)
            wait = _left(deadline)
            if announce is not None:
                wait = ANNOUNCE_EVERY if wait is None else min(wait, ANNOUNCE_EVERY)
            await call.wait_any([waiter.taken], wait, wake_on_digit=False)
        # An agent has us: out of the queue; the bridge is theirs to run; wait for it to end.
        _publish(call, "call.left.queue", queue=queue.name, reason=waiter.taken_as)
        outcome = ""
        await call.wait_any([waiter.released], None, wake_on_digit=False)
        call.check()
        return waiter.taken_as
    finally:
        if outcome:  # told already when an agent took the call
            _publish(call, "call.left.queue", queue=queue.name, reason=outcome)
        if waiter in queue.waiting:
            queue.waiting.remove(waiter)
        queues.drop_if_empty(queue)
        waiter.left.set_result(None)
        if not waiter.taken.done():
            call.leg.stop_playback()


def offer(call: Call, queues: CallQueues, name: str, *, max_calls: int | None = None) -> str:
    """Put the call in the queue ``name`` without waiting (Voxology's ``async``
    offer): ``queued``, or ``full`` when ``max_calls`` wait already. It stays in
    line, hearing whatever its run plays, until an agent takes it, :func:`leave`,
    :func:`release_next`, or it hangs up."""
    existing = queues.get(name)
    if existing is not None and existing.full(max_calls):
        log.info("queue full", queue=name, max_calls=max_calls, call_id=call.id)
        return "full"
    queue = queues.join(name)
    waiter = Waiter(call, waits=False)
    queue.waiting.append(waiter)
    log.info("queued", queue=queue.name, position=len(queue.waiting), call_id=call.id, wait=False)
    _publish(call, "call.enqueued", queue=queue.name, position=len(queue.waiting))

    def hung_up(_: object) -> None:
        _out_of_line(queues, queue, waiter, "hangup")

    call.ended_future.add_done_callback(hung_up)
    return "queued"


def leave(call: Call, queues: CallQueues, name: str) -> str:
    """Take the call out of the queue ``name`` wherever it is in line (Voxology's
    ``remove``): ``removed``, or ``absent`` when it was not in line (never
    offered, or taken already)."""
    queue = queues.get(name)
    found = None if queue is None else next((w for w in queue.waiting if w.call is call), None)
    if queue is None or found is None:
        return "absent"
    _out_of_line(queues, queue, found, "removed")
    return "removed"


def _out_of_line(queues: CallQueues, queue: CallQueue, waiter: Waiter, reason: str) -> None:
    """An offered (not waiting) caller leaves the line."""
    if waiter.left.done():
        return
    if waiter in queue.waiting:
        queue.waiting.remove(waiter)
    queues.drop_if_empty(queue)
    waiter.left.set_result(None)
    _publish(waiter.call, "call.left.queue", queue=queue.name, reason=reason)


def release_next(queues: CallQueues, name: str) -> str:
    """Let the longest-waiting caller of ``name`` out of the queue without bridging
    it (Voxology's ``poll``): its run goes on. ``released``, or ``empty``."""
    queue = queues.get(name)
    waiter = _next_waiter(queue) if queue is not None else None
    if queue is None or waiter is None:
        return "empty"
    log.info("queue call released", queue=name, caller=waiter.call.id)
    waiter.taken_as = "released"
    if not waiter.waits:  # an offer: it just leaves the line
        _out_of_line(queues, queue, waiter, "released")
        return "released"
    waiter.call.leg.stop_playback()  # the hold audio: its run plays what comes next
    waiter.taken.set_result(None)
    waiter.released.set_result(None)
    return "released"


def _publish(call: Call, event_type: str, **fields: Any) -> None:
    if call.journal is not None:
        call.journal.events.publish(event_type, {"call_id": call.id, **fields})


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


async def bridge_next(
    agent: Call, queues: CallQueues, name: str, on_taken: Callable[[Call], None] | None = None
) -> str:
    """Join ``agent`` to the caller who has waited longest in the queue ``name``:
    ``bridged`` when that bridge ends, ``empty`` when nobody waits. ``on_taken``
    is told which caller it took, as soon as it does."""
    if not agent.answered:
        await agent.answer()
    agent.check()
    queue = queues.get(name)
    waiter = _next_waiter(queue) if queue is not None else None
    if waiter is None:
        return "empty"
    caller = waiter.call
    log.info("queue call taken", queue=name, caller=caller.id, agent=agent.id)
    if on_taken is not None:
        on_taken(caller)
    if queue is not None and not waiter.waits:  # an offer: no enqueue tells or tidies up
        _publish(caller, "call.left.queue", queue=name, reason="bridged")
        queues.drop_if_empty(queue)
    caller.leg.stop_playback()
    agent.leg.stop_playback()
    caller.leg.relay_to(agent.leg)
    agent.leg.relay_to(caller.leg)
    waiter.taken.set_result(None)
    try:
        await agent.wait_any([caller.ended_future, waiter.left], None, wake_on_digit=False)
    finally:
        caller.leg.relay_to(None)
        agent.leg.relay_to(None)
        if not waiter.released.done():
            waiter.released.set_result(None)
        agent.flush_digits()
    if agent.ended:
        raise CallEnded(agent.hangup_cause or "agent hung up")
    return "bridged"


def _next_waiter(queue: CallQueue) -> Waiter | None:
    """The caller who has waited longest and is still there, out of the queue.
    (It stays in the queue's list until that caller's ``enqueue`` ends.)"""
    while queue.waiting:
        waiter = queue.waiting.popleft()
        if not waiter.call.ended and not waiter.left.done():
            return waiter
    return None
