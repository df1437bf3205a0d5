"""The journal: what happens to calls and runs, written down off the call path.

Calls and runs report their life here (started, answered, ended); the
journal queues each report and one background task applies them in order:
the call record and run record in the store (SPEC section 7) and the native
webhooks (``v2.call.inbound.started`` ...). A call never waits for the
database or a webhook receiver: reporting is a non-blocking append. On
shutdown the queue is drained, so nothing that happened is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mediaserver.calls.base import new_call_id
from mediaserver.calls.causes import q850_cause, q850_of_status
from mediaserver.events import EventBus
from mediaserver.log import get_logger
from mediaserver.store import CallEnd, NewCall, NewRecording, Store, StoreError
from mediaserver.store.cdrs import rfc3339
from mediaserver.store.db import from_ms
from mediaserver.webhooks.delivery import WebhookDispatcher

if TYPE_CHECKING:
    from mediaserver.actions.runner import RunOutcome
    from mediaserver.calls import Call
    from mediaserver.media.recorder import RecordingInfo
    from mediaserver.store.recordings import RecordingKind

log = get_logger("journal")

MAX_BACKLOG = 100_000

Entry = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class RefusedCall:
    """An inbound call refused before its scenario ran (404, 488, 503...)."""

    caller: str
    called: str
    sip_call_id: str
    sip_status: int
    cause: str  # why, by name: no_route, no_codec, no_media_ports...
    scenario: str | None = None


@dataclass(frozen=True)
class RunStart:
    """A run that starts with the call placed for it (an API-started run): the call's
    record names the run from the start, and the run's record is written first."""

    run_id: str
    scenario_id: str | None  # None for a scenario outside the library: no run record
    scenario_name: str
    branch: str
    variables: dict[str, Any]


def _at(epoch: float | None) -> datetime | None:
    # Whole milliseconds, as stored: the webhooks, the record and $call.started agree.
    return from_ms(round(epoch * 1000)) if epoch is not None else None


def _direction(call: Call) -> str:
    return "inbound" if call.direction == "inbound" else "outbound"


class CallJournal:
    def __init__(
        self,
        store: Store | None,
        webhooks: WebhookDispatcher | None,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        # The live event stream: published at once, not queued (the bus never blocks).
        self.events = events if events is not None else EventBus()
        self._queue: asyncio.Queue[Entry] = asyncio.Queue(MAX_BACKLOG)
        self._worker: asyncio.Task[None] | None = None
        self.dropped = 0
        # Called synchronously as each call starts and ends (the API's metrics count them).
        self.on_call_started: list[Callable[[Call], None]] = []
        self.on_call_ended: list[Callable[[Call], None]] = []

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self, timeout: float = 10.0) -> None:
        """Apply what is queued (for up to ``timeout`` seconds), then stop."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if not self._queue.empty():
            log.warning("journal entries not written at shutdown", count=self._queue.qsize())

    async def flush(self) -> None:
        """Wait until everything reported so far is written."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            entry = await self._queue.get()
            try:
                await entry()
            except StoreError as exc:
                log.warning("journal entry refused by the store", reason=str(exc))
            except Exception:
                log.exception("journal entry failed")
            finally:
                self._queue.task_done()

    def _add(self, entry: Entry) -> None:
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("journal backlog full; a record is lost", backlog=MAX_BACKLOG)

    @staticmethod
    def _tell(listeners: list[Callable[[Call], None]], call: Call) -> None:
        for listener in listeners:
            try:
                listener(call)
            except Exception:
                log.exception("call listener failed")

    # -- runs -------------------------------------------------------------------------

    def run_started(
        self, runid: str, scenario_id: str | None, branch: str, variables: dict[str, Any]
    ) -> None:
        store = self.store
        if store is None or scenario_id is None:
            return

        async def write() -> None:
            await store.runs.create(scenario_id, branch, variables=variables, runid=runid)

        self._add(write)

    def run_ended(self, runid: str, outcome: RunOutcome | None) -> None:
        store = self.store
        if store is None:
            return
        status = outcome.status if outcome is not None else "hangup"
        variables = dict(outcome.variables) if outcome is not None else None
        error = outcome.error if outcome is not None else None

        async def write() -> None:
            await store.runs.finish(runid, status, variables=variables, error=error)

        self._add(write)

    # -- calls ------------------------------------------------------------------------

    def call_started(
        self,
        call: Call,
        *,
        number: str | None = None,
        scenario_id: str | None = None,
        run_id: str | None = None,
        parent: Call | None = None,
        run: RunStart | None = None,
    ) -> None:
        if run is not None:
            self.run_started(run.run_id, run.scenario_id, run.branch, run.variables)
            scenario_id, run_id = run.scenario_id, run.run_id
        self._tell(self.on_call_started, call)
        record = NewCall(
            id=call.id,
            direction="inbound" if call.direction == "inbound" else "outbound",
            from_number=call.from_user,
            to_number=call.to_user,
            number=number,
            started_at=_at(call.started_at) or datetime.now(UTC),
            scenario_id=scenario_id,
            scenario_name=call.scenario,
            run_id=run_id if scenario_id is not None else None,
            parent_call_id=parent.id if parent is not None else None,
            sip_call_id=call.sip_call_id,
            from_name=call.from_name,
            cli_pres=call.cli_pres,
        )
        self.events.publish(
            "call.initiated",
            {
                "call_id": call.id,
                "direction": record.direction,
                "from": call.from_user,
                "to": call.to_user,
                "scenario": call.scenario,
                "parent_call_id": record.parent_call_id,
            },
        )
        event = f"v2.call.{record.direction}.started"
        payload: dict[str, Any] = {
            "callid": call.id,
            "direction": record.direction,
            "from": call.from_user,
            "to": call.to_user,
            "scenario": call.scenario,
            "start": rfc3339(record.started_at),
        }
        store = self.store

        async def write() -> None:
            nonlocal payload
            if store is not None:
                created = await store.calls.create(record)
                # The seed's CDR object (Callr v1 CDR.In/CDR.Out, as .ended carries it),
                # and the record as GET /api/cdrs/{callid} shows it.
                payload = {**created.as_cdr(), "record": created.as_record()}
            if self.webhooks is not None:
                self.webhooks.publish(event, call.id, payload)

        self._add(write)

    def call_answered(self, call: Call) -> None:
        self.events.publish(
            "call.answered",
            {
                "call_id": call.id,
                "direction": "inbound" if call.direction == "inbound" else "outbound",
            },
        )
        store = self.store
        at = _at(call.answered_at)
        if store is None or at is None:
            return

        async def write() -> None:
            await store.calls.answered(call.id, at)

        self._add(write)

    def call_ended(self, call: Call, *, dial_status: str | None = None) -> None:
        self._tell(self.on_call_ended, call)
        end = CallEnd(
            ended_at=_at(call.ended_at) or datetime.now(UTC),
            hangup_cause=call.hangup_cause,
            hangup_source=call.hangup_source,
            hangup_cause_code=q850_cause(call.hangup_cause),
            sip_status=call.final_status,
            dial_status=dial_status,
            media_stats={"a": call.leg.snapshot()},
            customer_field=call.cdr_customer_field,
        )
        direction = call.direction
        self.events.publish(
            "call.hangup",
            {
                "call_id": call.id,
                "direction": _direction(call),
                "hangup_cause": call.hangup_cause,
                "hangup_source": call.hangup_source,
                "sip_status": call.final_status,
                "dial_status": dial_status,
            },
        )
        store = self.store

        async def write() -> None:
            payload: dict[str, Any] = {"callid": call.id, "direction": direction}
            if store is not None:
                record = await store.calls.finish(call.id, end)
                if record is not None:
                    # The Callr v1 CDR (seeds/000), and the native record of /api/cdrs.
                    payload = {**record.as_cdr(), "record": record.as_record()}
            if self.webhooks is not None:
                self.webhooks.publish(f"v2.call.{direction}.ended", call.id, payload)

        self._add(write)

    def call_refused(self, refused: RefusedCall) -> None:
        """A call record for a refused call: started and ended at once, never answered,
        with the refusal's status and reason (no webhooks: no call ever started)."""
        store = self.store
        if store is None:
            return
        now = datetime.now(UTC)
        record = NewCall(
            id=new_call_id(),
            direction="inbound",
            from_number=refused.caller,
            to_number=refused.called,
            number=refused.called,
            started_at=now,
            scenario_name=refused.scenario,
            sip_call_id=refused.sip_call_id,
        )
        end = CallEnd(
            ended_at=now,
            hangup_cause=refused.cause,
            hangup_source="server",
            hangup_cause_code=q850_of_status(refused.sip_status),
            sip_status=refused.sip_status,
        )

        async def write() -> None:
            created = await store.calls.create(record)
            await store.calls.finish(created.id, end)

        self._add(write)

    # -- recordings (written by mediaserver.calls.media) -------------------------------

    def recording_started(
        self,
        rid: str,
        *,
        call_id: str,
        kind: RecordingKind,
        path: str,
        format: str,
        channels: int,
    ) -> None:
        """Index a recording as it starts (``recording``; a crash leaves it ``interrupted``)."""
        store = self.store
        if store is None:
            return
        new = NewRecording(
            id=rid,
            path=path,
            format=format,
            kind=kind,
            call_id=call_id,
            channels=channels,
            status="recording",
        )

        async def write() -> None:
            await store.recordings.create(new)

        self._add(write)

    def recording_discarded(self, rid: str) -> None:
        """A recording deleted by its call (RECORDMESSAGE ``discard``): its row goes."""
        store = self.store
        if store is None:
            return

        async def write() -> None:
            await store.recordings.delete(rid)

        self._add(write)

    def recording_saved(self, rid: str, *, call_id: str, info: RecordingInfo) -> None:
        """A recording is finished: mark it ``ready`` and publish ``v2.recording.updated``."""
        store = self.store
        duration_ms = round(info.duration_s * 1000)

        async def write() -> None:
            payload: dict[str, Any] = {
                "sid": rid,
                "callid": call_id,
                "status": "ready",
                "duration": round(info.duration_s, 3),
                "size": info.size_bytes,
                "format": info.format,
            }
            if store is not None:
                record = await store.recordings.finish(
                    rid, duration_ms=duration_ms, size=info.size_bytes
                )
                if record is not None:
                    payload["type"] = record.kind
                    payload["created"] = record.created_at.isoformat()
                    payload["channels"] = record.channels
            if self.webhooks is not None:
                self.webhooks.publish("v2.recording.updated", rid, payload)

        self._add(write)
