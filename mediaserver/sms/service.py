"""Sending and receiving SMS as SIP MESSAGE, stored and told to the webhooks.

An SMS sent through the API is stored ``created`` and answered at once; a
task of its own then moves it ``pending`` (queued here), ``sent`` (the
MESSAGE routed and on the wire) and to the status its final SIP answer means
(:func:`~mediaserver.sms.rules.status_of_answer`), publishing
``v2.sms.outbound.updated`` at each step, in order. A MESSAGE a peer sends
us that the call switch accepts is stored as an inbound SMS (``delivered``)
and published as ``v2.sms.inbound.received``. Nothing here blocks the SIP
side: the switch gets the new SMS's id at once and the store write follows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from mediaserver.log import get_logger
from mediaserver.sip.uac import TargetError
from mediaserver.sms.rules import (
    OutboundSms,
    Outcome,
    encoding_of,
    parts_of,
    status_of_answer,
    unreachable,
)
from mediaserver.store import NewSms, SmsRecord, Store, StoreError, new_id
from mediaserver.webhooks.delivery import WebhookDispatcher

log = get_logger("sms")

OUTBOUND_UPDATED = "v2.sms.outbound.updated"
INBOUND_RECEIVED = "v2.sms.inbound.received"
INTERRUPTED = "the server stopped before the MESSAGE was answered"


class MessageSender(Protocol):
    """What sends a SIP MESSAGE (the server's :class:`~mediaserver.calls.dialer.Dialer`)."""

    async def send_message(
        self, to: str, text: str, *, sender: str, on_sent: Callable[[], None] | None = None
    ) -> int | None: ...


class SmsUnavailable(Exception):
    """The store is not open (the server is starting or stopping)."""


class SmsService:
    def __init__(
        self,
        store: Callable[[], Store | None],
        sender: MessageSender,
        webhooks: WebhookDispatcher | None,
    ) -> None:
        self._store_now = store
        self._sender = sender
        self._webhooks = webhooks
        self._tasks: set[asyncio.Task[None]] = set()

    def _store(self) -> Store:
        store = self._store_now()
        if store is None:
            raise SmsUnavailable("the server is starting or stopping")
        return store

    async def start(self) -> None:
        """An outbound SMS a crash left on its way will never get its answer: expired."""
        await self._expire_unfinished(self._store())

    async def close(self, timeout: float = 5.0) -> None:
        """Let SMS on their way get their answer (up to ``timeout`` seconds), then stop
        them and mark them expired. Called before the SIP endpoint closes, so an answer
        can still arrive."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        store = self._store_now()
        if store is not None:
            with contextlib.suppress(StoreError):
                await self._expire_unfinished(store)

    async def _expire_unfinished(self, store: Store) -> None:
        for sid in await store.sms.expire_unfinished(INTERRUPTED):
            record = await store.sms.get(sid)
            if record is not None:
                self._publish(OUTBOUND_UPDATED, record)

    # -- outbound --------------------------------------------------------------------

    async def send(self, sms: OutboundSms) -> SmsRecord:
        """Store the SMS ``created`` and start sending it; the record as created."""
        new = NewSms(
            id=new_id(),
            direction="outbound",
            sender=sms.sender,
            recipient=sms.to,
            text=sms.text,
            encoding=sms.encoding,
            parts=sms.parts,
            traffic_type=sms.traffic_type,
            status="created",
        )
        record = await self._store().sms.create(new)
        self._publish(OUTBOUND_UPDATED, record)
        self._spawn(self._deliver(record.id, sms))
        return record

    async def _deliver(self, sid: str, sms: OutboundSms) -> None:
        await self._move(sid, Outcome("pending", None))
        on_wire = asyncio.Event()
        sending = asyncio.ensure_future(
            self._sender.send_message(sms.to, sms.text, sender=sms.sender, on_sent=on_wire.set)
        )
        waiting = asyncio.ensure_future(on_wire.wait())
        try:
            await asyncio.wait({sending, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if on_wire.is_set():
            await self._move(sid, Outcome("sent", None))  # before the answer's status, in order
        try:
            answer = await sending
        except TargetError as exc:
            await self._move(sid, unreachable(str(exc)))
            return
        await self._move(sid, status_of_answer(answer), answer)

    async def _move(self, sid: str, outcome: Outcome, sip_status: int | None = None) -> None:
        record = await self._store().sms.set_status(
            sid, outcome.status, error=outcome.error, sip_status=sip_status
        )
        if record is not None:
            log.info("sms status", sid=sid, status=outcome.status, sip_status=sip_status)
            self._publish(OUTBOUND_UPDATED, record)

    # -- inbound ---------------------------------------------------------------------

    def received(self, message: Mapping[str, str]) -> str:
        """Store a MESSAGE the switch accepted as an inbound SMS; its sid, at once."""
        sid = new_id()
        self._spawn(self._store_inbound(sid, dict(message)))
        return sid

    async def _store_inbound(self, sid: str, message: dict[str, str]) -> None:
        text = message.get("text", "")
        encoding = encoding_of(text)
        new = NewSms(
            id=sid,
            direction="inbound",
            sender=message.get("from", ""),
            recipient=message.get("to", ""),
            text=text,
            encoding=encoding,
            parts=parts_of(text, encoding),
            traffic_type=None,
            status="delivered",
        )
        record = await self._store().sms.create(new)
        self._publish(INBOUND_RECEIVED, record)

    # -- shared ----------------------------------------------------------------------

    def _publish(self, event_type: str, record: SmsRecord) -> None:
        if self._webhooks is not None:
            self._webhooks.publish(event_type, record.id, record.as_sms())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except (StoreError, SmsUnavailable) as exc:
                log.warning("sms not recorded", reason=str(exc))
            except Exception:
                log.exception("sms task failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
