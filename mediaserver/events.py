"""The live event bus: what happens to calls, runs, conferences and queues, as it happens.

Theory of operation. The journal, the runner and the conference and queue
code publish events here (:meth:`EventBus.publish`, synchronous, never
awaits); the API's event stream (``GET /api/events``, a WebSocket) subscribes.
Each subscriber has its own bounded queue: publishing only appends to the
queues of the subscribers whose filter wants the event, so a call never
waits for a client. A subscriber whose queue is full has fallen too far
behind: it is cut off at once (its queue is emptied and it is told why
through a ``stream.dropped`` event), and the stream closes. A slow client
loses its stream, never slows a call.

Event types follow the Call Control webhook vocabulary of ``seeds/002`` where
it has a name (``call.initiated``, ``call.answered``, ``call.hangup``,
``conference.participant.joined``/``left``, ``call.enqueued``,
``call.left.queue``, ``call.fork.started``/``stopped``); runs, which it does
not have, are ``run.started``, ``run.action`` and ``run.ended``. Every
payload about a call carries its ``call_id``, the key of the ``call_id`` filter.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mediaserver.webhooks.subscriptions import subscription_wants

EventSink = Callable[[str, dict[str, Any]], None]
"""What publishers hold: ``sink(type, payload)`` (an :meth:`EventBus.publish`)."""

DEFAULT_BACKLOG = 1000
"""Events a subscriber may have unread before it is cut off."""

EVENT_TYPES = (
    "call.initiated",
    "call.answered",
    "call.hangup",
    "run.started",
    "run.action",
    "run.ended",
    "conference.participant.joined",
    "conference.participant.left",
    "call.enqueued",
    "call.left.queue",
    "call.fork.started",
    "call.fork.stopped",
)


@dataclass(frozen=True)
class Event:
    seq: int  # increases by one per event published on this server
    type: str
    occurred_at: datetime
    payload: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        """The JSON object sent to clients."""
        at = self.occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"seq": self.seq, "type": self.type, "occurred_at": at, "payload": self.payload}


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants: type patterns (webhook syntax) and one call."""

    types: tuple[str, ...] = ("*",)
    call_id: str | None = None

    def wants(self, event_type: str, payload: dict[str, Any]) -> bool:
        if self.call_id is not None and payload.get("call_id") != self.call_id:
            return False
        return subscription_wants(self.types, event_type)


@dataclass
class Subscription:
    filter: EventFilter
    backlog: int
    queue: asyncio.Queue[Event | None] = field(init=False)
    dropped_reason: str | None = None  # set when cut off for lagging (or the bus closed)
    lost: int = 0  # events discarded when it was cut off

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.backlog + 1)  # +1: room for the closing sentinel

    async def next(self) -> Event | None:
        """The next event; None once the subscription is over (see ``dropped_reason``)."""
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self._seq = itertools.count(1)
        self.dropped_subscribers = 0
        self.closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, event_filter: EventFilter | None = None, backlog: int = DEFAULT_BACKLOG
    ) -> Subscription:
        subscription = Subscription(event_filter or EventFilter(), backlog)
        if self.closed:
            self._end(subscription, "the server is stopping")
        else:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def publish(self, event_type: str, payload: dict[str, Any]) -> None:
        """Queue the event for every subscriber that wants it (never blocks)."""
        if not self._subscribers:
            next(self._seq)
            return
        event = Event(next(self._seq), event_type, datetime.now(UTC), payload)
        for subscription in list(self._subscribers):
            if not subscription.filter.wants(event_type, payload):
                continue
            if subscription.queue.qsize() >= subscription.backlog:
                self.dropped_subscribers += 1
                self.unsubscribe(subscription)
                self._end(subscription, f"too slow: more than {subscription.backlog} events unread")
                continue
            subscription.queue.put_nowait(event)

    def close(self) -> None:
        """End every subscription (the server is stopping)."""
        self.closed = True
        for subscription in self._subscribers:
            subscription.dropped_reason = "the server is stopping"
            subscription.queue.put_nowait(None)  # the +1 slot: always room
        self._subscribers.clear()

    @staticmethod
    def _end(subscription: Subscription, reason: str) -> None:
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
            subscription.lost += 1
        subscription.dropped_reason = reason
        subscription.queue.put_nowait(None)


def parse_types(text: str | None) -> tuple[str, ...]:
    """``"call.*,run.action"`` -> the patterns; ValueError naming a bad one."""
    if text is None or not text.strip():
        return ("*",)
    patterns = tuple(p.strip() for p in text.split(","))
    for pattern in patterns:
        if not pattern or any(ch.isspace() for ch in pattern):
            raise ValueError(f"types: {pattern!r} is not an event pattern (e.g. call.*,run.action)")
    return patterns
