"""Webhooks created through the API, and the log of every delivery attempt.

Theory of operation. A :class:`Webhook` is a URL, the event patterns it
subscribes to (matched by the dispatcher,
:func:`mediaserver.webhooks.subscriptions.event_matches`; ``("*",)`` takes
every event), an optional signing secret (kept in clear: HMAC needs it) and an
enabled flag. It fits the dispatcher's
``WebhookSubscription`` protocol as it is. :meth:`Webhooks.enabled` is what
the dispatcher loads.

The delivery log gets one row per attempt, appended by
:meth:`Deliveries.append`; its input is anything shaped like the
dispatcher's ``DeliveryRecord`` (:class:`DeliveryAttempt`). In the same
transaction the webhook's ``failed`` counter (consecutive failed attempts,
Callr's ``failed``) and ``last_failed_at`` (Callr's ``lastfailed``) are
updated: a delivered attempt resets the counter. Log rows of webhooks from
the configuration file, which are not rows here, are kept just the same.
The log grows with traffic; :meth:`Deliveries.prune` drops old rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from mediaserver.store.db import (
    Database,
    Order,
    Page,
    Row,
    Session,
    Where,
    dump_json,
    from_ms,
    opt_from_ms,
    order_sql,
    to_ms,
)

Outcome = Literal["delivered", "retrying", "failed"]

WEBHOOKS_CHANNEL = "mediaserver_webhooks"
"""Notified by every change of a stored webhook (nodes sharing a database reload them)."""

_COLUMNS = (
    "id, url, events, secret, enabled, failed, last_failed_at, created_at, updated_at, hmac_algo"
)
_DELIVERY_FIELDS = (
    "webhook_id, url, event_id, event_type, subject_sid, attempt, outcome, status_code,"
    " error, duration_ms, payload, at"
)
_DELIVERY_COLUMNS = f"id, {_DELIVERY_FIELDS}"


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str | None
    enabled: bool
    failed: int
    """Consecutive failed attempts since the last delivery."""
    last_failed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    hmac_algo: str = "SHA256"
    """The hash of the signature's HMAC: MD5, SHA1, SHA256 or SHA512."""


class DeliveryAttempt(Protocol):
    """One attempt to post one event, as the dispatcher reports it."""

    @property
    def webhook_id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def subject_sid(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True)
class NewDelivery:
    """A :class:`DeliveryAttempt` for callers that do not have the dispatcher's record."""

    webhook_id: str
    url: str
    event_id: str
    event_type: str
    attempt: int
    outcome: Outcome
    status_code: int | None
    error: str | None
    duration_ms: float
    at: datetime
    subject_sid: str = ""


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: str
    url: str
    event_id: str
    event_type: str
    subject_sid: str
    attempt: int
    outcome: Outcome
    status_code: int | None
    error: str | None
    duration_ms: float
    payload: str | None
    """The body posted, when the caller logged it."""
    at: datetime


@dataclass(frozen=True)
class DeliveryFilter:
    """Log search filters; None means any. ``since``/``until`` are inclusive."""

    webhook_id: str | None = None
    url: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    subject_sid: str | None = None
    outcome: Outcome | None = None
    status_code: int | None = None
    attempt: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> Where:
        where = Where()
        where.equal("webhook_id", self.webhook_id)
        where.equal("url", self.url)
        where.equal("event_id", self.event_id)
        where.equal("event_type", self.event_type)
        where.equal("subject_sid", self.subject_sid)
        where.equal("outcome", self.outcome)
        where.equal("status_code", self.status_code)
        where.equal("attempt", self.attempt)
        where.between("at", self.since, self.until)
        return where


class Webhooks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        url: str,
        events: Sequence[str] = ("*",),
        *,
        secret: str | None = None,
        enabled: bool = True,
        hmac_algo: str = "SHA256",
    ) -> Webhook:
        encoded = _events_json(events)
        async with self.db.transaction() as tx:
            wid = await tx.unique_id("webhooks")
            now = to_ms(self.db.now())
            await tx.execute(
                f"INSERT INTO webhooks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, NULL, ?, ?, ?)",
                (wid, url, encoded, secret, int(enabled), now, now, hmac_algo),
            )
            await tx.notify(WEBHOOKS_CHANNEL)
            return await _load(tx, wid)

    async def get(self, wid: str) -> Webhook | None:
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?", (wid,))
        return None if row is None else _webhook(row)

    async def update(
        self,
        wid: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        secret: str | None = None,
        clear_secret: bool = False,
        enabled: bool | None = None,
        hmac_algo: str | None = None,
    ) -> Webhook | None:
        """Change the given fields (None: unchanged; ``clear_secret`` stops signing)."""
        if clear_secret and secret is not None:
            raise ValueError("give a new secret or clear_secret, not both")
        encoded = None if events is None else _events_json(events)
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE webhooks SET url = coalesce(?, url), events = coalesce(?, events),"
                " secret = CASE WHEN ? = 1 THEN NULL ELSE coalesce(?, secret) END,"
                " enabled = coalesce(?, enabled), hmac_algo = coalesce(?, hmac_algo),"
                " updated_at = ? WHERE id = ?",
                (
                    url,
                    encoded,
                    int(clear_secret),
                    secret,
                    None if enabled is None else int(enabled),
                    hmac_algo,
                    to_ms(self.db.now()),
                    wid,
                ),
            )
            await tx.notify(WEBHOOKS_CHANNEL)
            return await _load(tx, wid) if changed else None

    async def delete(self, wid: str) -> bool:
        """Delete the webhook; its delivery log stays."""
        async with self.db.transaction() as tx:
            await tx.notify(WEBHOOKS_CHANNEL)
            return await tx.execute("DELETE FROM webhooks WHERE id = ?", (wid,)) > 0

    async def search(
        self,
        *,
        event: str | None = None,
        enabled: bool | None = None,
        sid: str | None = None,
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[Webhook]:
        """Webhooks by creation time; ``event`` keeps those listing that exact pattern."""
        where = Where()
        where.equal("id", sid)
        if event is not None:
            where.add(self.db.dialect.json_array_has("events"), event)
        where.equal("enabled", None if enabled is None else int(enabled))
        direction = order_sql(order)
        async with self.db.snapshot() as snap:
            return await snap.page(
                f"SELECT {_COLUMNS} FROM webhooks",
                "SELECT count(*) FROM webhooks",
                where,
                f"created_at {direction}, id {direction}",
                limit,
                offset,
                _webhook,
            )

    async def enabled(self) -> list[Webhook]:
        """Every enabled webhook, oldest first: what the dispatcher posts to."""
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM webhooks WHERE enabled = 1 ORDER BY created_at, id"
        )
        return [_webhook(row) for row in rows]


class Deliveries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, attempt: DeliveryAttempt, payload: str | None = None) -> Delivery:
        """Log one attempt (``payload``: the body posted, if worth keeping)."""
        at = to_ms(attempt.at)
        failed = attempt.outcome != "delivered"
        async with self.db.transaction() as tx:
            row_id = await tx.fetch_value(
                f"INSERT INTO webhook_deliveries ({_DELIVERY_FIELDS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    attempt.webhook_id,
                    attempt.url,
                    attempt.event_id,
                    attempt.event_type,
                    attempt.subject_sid,
                    attempt.attempt,
                    attempt.outcome,
                    attempt.status_code,
                    attempt.error,
                    max(0.0, float(attempt.duration_ms)),
                    payload,
                    at,
                ),
            )
            if failed:
                await tx.execute(
                    "UPDATE webhooks SET failed = failed + 1, last_failed_at = ? WHERE id = ?",
                    (at, attempt.webhook_id),
                )
            else:
                await tx.execute(
                    "UPDATE webhooks SET failed = 0 WHERE id = ? AND failed != 0",
                    (attempt.webhook_id,),
                )
            row = await tx.fetch_written(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?",
                (row_id,),
                f"delivery {row_id}",
            )
        return _delivery(row)

    async def search(
        self,
        filters: DeliveryFilter | None = None,
        *,
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[Delivery]:
        """Log rows by time, newest first by default."""
        direction = order_sql(order)
        async with self.db.snapshot() as snap:
            return await snap.page(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries",
                "SELECT count(*) FROM webhook_deliveries",
                (filters or DeliveryFilter()).where(),
                f"at {direction}, id {direction}",
                limit,
                offset,
                _delivery,
            )

    async def prune(self, before: datetime) -> int:
        """Drop log rows older than ``before``; how many went."""
        async with self.db.transaction() as tx:
            return await tx.execute("DELETE FROM webhook_deliveries WHERE at < ?", (to_ms(before),))


def _events_json(events: Sequence[str]) -> str:
    if isinstance(events, str):
        raise TypeError("events is a list of event patterns, not one string")
    return dump_json(list(events))


async def _load(session: Session, wid: str) -> Webhook:
    sql = f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?"
    return _webhook(await session.fetch_written(sql, (wid,), f"webhook {wid}"))


def _webhook(row: Row) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=tuple(json.loads(row["events"])),
        secret=row["secret"],
        enabled=bool(row["enabled"]),
        failed=row["failed"],
        last_failed_at=opt_from_ms(row["last_failed_at"]),
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
        hmac_algo=row["hmac_algo"],
    )


def _delivery(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        url=row["url"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        subject_sid=row["subject_sid"],
        attempt=row["attempt"],
        outcome=row["outcome"],
        status_code=row["status_code"],
        error=row["error"],
        duration_ms=row["duration_ms"],
        payload=row["payload"],
        at=from_ms(row["at"]),
    )
