"""The run owner of a call: the runs driving it, the tasks tied to it, its release.

A call serves one run at a time as a child task, so a hang-up can cancel the
run alone and the API can inject another run in its place (the injected one
goes on where the cancelled one stopped). When the last run ends the call is
hung up if it is not over yet, and released exactly once, however the runs
ended: its summary logged, then the call told (it closes its record and
leaves the live calls). Work a call starts in the background (a CANCEL, a late BYE, a
transfer) is kept here too, so it is not garbage-collected mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import structlog

from mediaserver.log import get_logger

if TYPE_CHECKING:
    from mediaserver.actions.runner import RunOutcome
    from mediaserver.media.leg import RtpLeg
    from mediaserver.sip.transport import Peer

log = get_logger("call")


class OwnedCall(Protocol):
    """What the run owner needs of its call: to end it, and what its summary says."""

    id: str
    direction: str
    sip_call_id: str
    from_user: str
    to_user: str
    scenario: str | None
    peer: Peer
    leg: RtpLeg
    answered_at: float | None
    ended_at: float | None
    hangup_cause: str | None
    hangup_source: str | None
    final_status: int | None

    @property
    def ended(self) -> bool: ...

    @property
    def answered(self) -> bool: ...

    async def hangup(self, reason: str = "normal_clearing") -> None: ...

    def end(self, cause: str, source: str) -> None: ...


C = TypeVar("C", bound=OwnedCall)


class RunOwner(Generic[C]):
    """Starts, replaces and cancels the runs of one call."""

    def __init__(self, call: C, on_finished: Callable[[C], None]) -> None:
        """``on_finished``: told once, when the call is released."""
        self.call = call
        self._on_finished = on_finished
        self.outcome: RunOutcome | None = None  # how the last run ended
        self._run_task: asyncio.Task[RunOutcome] | None = None
        self._injected: Callable[[C], Coroutine[Any, Any, RunOutcome]] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._released = False

    async def serve(self, run: Callable[[C], Coroutine[Any, Any, RunOutcome]]) -> None:
        """Run ``run`` (and the runs injected meanwhile), then make sure the call is
        over and released."""
        call = self.call
        structlog.contextvars.bind_contextvars(call_id=call.id)
        log.info(
            "call started",
            direction=call.direction,
            sip_call_id=call.sip_call_id,
            caller=call.from_user,
            called=call.to_user,
            scenario=call.scenario,
            transport=call.peer.transport,
        )
        try:
            next_run: Callable[[C], Coroutine[Any, Any, RunOutcome]] | None = run
            while next_run is not None and not call.ended:
                # The run is a child task so a hang-up or an injection can cancel it alone.
                self._run_task = asyncio.get_running_loop().create_task(next_run(call))
                self._injected = None
                try:
                    self.outcome = await self._run_task
                except asyncio.CancelledError:
                    if not self._run_task.cancelled():
                        self._run_task.cancel()  # the server itself is stopping
                        raise
                next_run = self._injected
            if not call.ended:
                failed = self.outcome is not None and self.outcome.status == "failed"
                await call.hangup("failed" if failed and not call.answered else "normal_clearing")
        except Exception:
            log.exception("call failed")
            with contextlib.suppress(Exception):
                await call.hangup("failed")
        finally:
            # A relay worker carrying the call's bridge gives its final figures first.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await call.leg.home()
            self.finish()

    def inject(self, run: Callable[[C], Coroutine[Any, Any, RunOutcome]]) -> bool:
        """Stop the current run and go on with ``run``; False when the call has no
        run to replace."""
        if self.call.ended or self._run_task is None or self._run_task.done():
            return False
        self._injected = run
        self._run_task.cancel()
        return True

    def cancel(self) -> None:
        """Cancel the current run (the call is over); the call is then released."""
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

    def schedule(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a coroutine in the background, tied to this call."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def finish(self) -> None:
        """The call is over for good: log its summary and release it (once)."""
        call = self.call
        call.end(call.hangup_cause or "normal_clearing", call.hangup_source or "server")
        if self._released:
            return
        self._released = True
        duration = (call.ended_at or time.time()) - (call.answered_at or 0)
        outcome = self.outcome
        log.info(
            "call ended",
            call_id=call.id,
            direction=call.direction,
            cause=call.hangup_cause,
            source=call.hangup_source,
            status=call.final_status,
            run=outcome.status if outcome else ("hangup" if self._run_task else None),
            duration=round(duration, 3) if call.answered_at else 0,
            media=call.leg.snapshot(),
        )
        self._on_finished(call)
