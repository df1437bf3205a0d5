"""The webhook outbox: each post on its way is a row some node has claimed.

Theory of operation. Every node sharing the database posts webhooks, and each
event must reach its URL once however many nodes run and whichever dies. So
a post is a row (:class:`OutboxRow`, migration 8) before it is sent:

- The node where the event happens inserts it claimed by itself
  (:meth:`WebhookOutbox.insert`) and posts it at once from memory. Its
  ``event_key`` is unique: a second insert of the same key (the same event
  published by another node) changes nothing and returns None, and that node
  does not post.
- After each attempt the holder records the outcome (:meth:`~WebhookOutbox.attempted`):
  delivered or failed end the row; a retry counts the attempt and sets when the
  next is due. A failed post sent on to its failover URL changes URL in place
  (:meth:`~WebhookOutbox.moved`).
- A claim is a lease: the holder renews it (:meth:`~WebhookOutbox.renew`) while
  it holds the row. A node that dies stops renewing; once the lease ran out,
  the next node to look claims the row (:meth:`~WebhookOutbox.claim`, PostgreSQL's
  ``SELECT ... FOR UPDATE SKIP LOCKED`` in one short transaction, so two nodes
  never take the same row) and posts what is left of it. Rows this node
  claimed before it (re)started are its own dead process's: taken back at once.
  On SQLite one server owns the file, so every unfinished row from before the
  start is taken back at once.
- A node stopping cleanly releases what it could not post (:meth:`~WebhookOutbox.release`):
  another node, or this one when it starts again, takes it at once.

A post can be sent twice only when its node dies between the receiver's 2xx
and the row's update (at least once there, never lost). Finished rows stay
until :meth:`~WebhookOutbox.prune`: while they do, the same key is not posted again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from mediaserver.store.db import Database, Row, dump_json, from_ms, to_ms

State = Literal["pending", "delivered", "failed", "dropped"]

_FIELDS = (
    "event_key, webhook_id, url, secret, hmac_algo, event_type, event_id, subject_sid,"
    " payload, event_at, failover_url, timeout, failover"
)
_COLUMNS = (
    f"id, {_FIELDS}, attempts, state, due_at, claimed_by, claimed_at, lease_until, created_at"
)
_RENEW_CHUNK = 500  # ids per renewing UPDATE (PostgreSQL takes up to 32767 parameters)


@dataclass(frozen=True)
class OutboxPost:
    """One event for one URL, as the dispatcher queues it."""

    event_key: str
    """Unique: the same key inserted twice is one post (``event_id/webhook_id/url``)."""
    webhook_id: str
    url: str
    secret: str | None
    hmac_algo: str
    event_type: str
    event_id: str
    subject_sid: str
    payload: dict[str, Any]
    event_at: datetime
    failover_url: str | None = None
    timeout: float | None = None
    failover: bool = False


@dataclass(frozen=True)
class OutboxRow(OutboxPost):
    id: int = 0
    attempts: int = 0
    """Attempts made so far."""
    state: State = "pending"
    due_at: datetime | None = None
    """When the next attempt may go."""
    claimed_by: str = ""
    claimed_at: datetime | None = None
    lease_until: datetime | None = None


def event_key(event_id: str, webhook_id: str, url: str) -> str:
    """The outbox key of one event for one webhook."""
    return f"{event_id}/{webhook_id}/{url}"


class WebhookOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, post: OutboxPost, lease: float) -> int | None:
        """Store ``post`` claimed by this node for ``lease`` seconds, due now; its row id,
        or None when its key is there already (another node has the event)."""
        now = self.db.now()
        async with self.db.transaction() as tx:
            row_id = await tx.fetch_value(
                f"INSERT INTO webhook_outbox ({_FIELDS}, due_at, claimed_by, claimed_at,"
                " lease_until, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (event_key) DO NOTHING RETURNING id",
                (
                    post.event_key,
                    post.webhook_id,
                    post.url,
                    post.secret,
                    post.hmac_algo,
                    post.event_type,
                    post.event_id,
                    post.subject_sid,
                    dump_json(post.payload),
                    to_ms(post.event_at),
                    post.failover_url,
                    post.timeout,
                    int(post.failover),
                    to_ms(now),
                    self.db.node,
                    to_ms(now),
                    to_ms(now + timedelta(seconds=lease)),
                    to_ms(now),
                    to_ms(now),
                ),
            )
        return None if row_id is None else int(row_id)

    async def attempted(
        self, row_id: int, attempts: int, state: State, retry_in: float | None = None
    ) -> None:
        """Record that ``attempts`` attempts were made: the row ends in ``state``, or
        (``pending``) its next attempt is due in ``retry_in`` seconds."""
        now = self.db.now()
        due = now + timedelta(seconds=retry_in or 0.0)
        async with self.db.transaction() as tx:
            # Only while this node holds it: a node that lost its lease leaves the row be.
            await tx.execute(
                "UPDATE webhook_outbox SET attempts = ?, state = ?, due_at = ?, updated_at = ?"
                " WHERE id = ? AND claimed_by = ?",
                (attempts, state, to_ms(due), to_ms(now), row_id, self.db.node),
            )

    async def moved(self, row_id: int, url: str) -> None:
        """Every attempt at the row's URL failed: it goes on to ``url`` (its failover),
        from a first attempt, due now."""
        now = to_ms(self.db.now())
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE webhook_outbox SET url = ?, failover_url = NULL, failover = 1,"
                " attempts = 0, due_at = ?, updated_at = ? WHERE id = ? AND claimed_by = ?",
                (url, now, now, row_id, self.db.node),
            )

    async def renew(self, row_ids: Iterable[int], lease: float) -> int:
        """Extend this node's claim on the rows it holds by ``lease`` seconds from now;
        how many rows it still held."""
        ids = sorted(set(row_ids))
        until = to_ms(self.db.now() + timedelta(seconds=lease))
        renewed = 0
        async with self.db.transaction() as tx:
            for start in range(0, len(ids), _RENEW_CHUNK):
                chunk = ids[start : start + _RENEW_CHUNK]
                marks = ", ".join("?" * len(chunk))
                renewed += await tx.execute(
                    f"UPDATE webhook_outbox SET lease_until = ? WHERE claimed_by = ?"
                    f" AND state = 'pending' AND id IN ({marks})",
                    (until, self.db.node, *chunk),
                )
        return renewed

    async def claim(self, lease: float, started: datetime, limit: int = 100) -> list[OutboxRow]:
        """Claim for ``lease`` seconds up to ``limit`` unfinished rows nobody holds: their
        lease ran out, or this node claimed them before it ``started`` (its previous
        process). Oldest first."""
        now = self.db.now()
        params: list[Any]
        if self.db.dialect.name == "sqlite":
            # One server owns the file: what it claimed before this start is orphaned.
            orphaned, params = "(lease_until < ? OR claimed_at < ?)", [to_ms(now), to_ms(started)]
        else:
            orphaned = "(lease_until < ? OR (claimed_by = ? AND claimed_at < ?))"
            params = [to_ms(now), self.db.node, to_ms(started)]
        async with self.db.transaction() as tx:
            rows = await tx.fetch_all(
                "UPDATE webhook_outbox SET claimed_by = ?, claimed_at = ?, lease_until = ?"
                " WHERE id IN (SELECT id FROM webhook_outbox WHERE state = 'pending'"
                f" AND {orphaned} ORDER BY id LIMIT ?{self.db.dialect.skip_locked})"
                f" RETURNING {_COLUMNS}",
                (
                    self.db.node,
                    to_ms(now),
                    to_ms(now + timedelta(seconds=lease)),
                    *params,
                    limit,
                ),
            )
        return sorted((_row(row) for row in rows), key=lambda row: row.id)

    async def release(self, row_ids: Iterable[int]) -> None:
        """Give up this node's claim on rows it will not post (it is stopping)."""
        ids = sorted(set(row_ids))
        async with self.db.transaction() as tx:
            for start in range(0, len(ids), _RENEW_CHUNK):
                chunk = ids[start : start + _RENEW_CHUNK]
                marks = ", ".join("?" * len(chunk))
                await tx.execute(
                    "UPDATE webhook_outbox SET claimed_by = '', claimed_at = 0, lease_until = 0"
                    f" WHERE claimed_by = ? AND state = 'pending' AND id IN ({marks})",
                    (self.db.node, *chunk),
                )

    async def get(self, row_id: int) -> OutboxRow | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM webhook_outbox WHERE id = ?", (row_id,)
        )
        return None if row is None else _row(row)

    async def pending(self) -> list[OutboxRow]:
        """Every unfinished row, oldest first."""
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM webhook_outbox WHERE state = 'pending' ORDER BY id"
        )
        return [_row(row) for row in rows]

    async def prune(self, before: datetime) -> int:
        """Drop finished rows created before ``before``; how many went."""
        async with self.db.transaction() as tx:
            return await tx.execute(
                "DELETE FROM webhook_outbox WHERE state != 'pending' AND created_at < ?",
                (to_ms(before),),
            )


def _row(row: Row) -> OutboxRow:
    return OutboxRow(
        event_key=row["event_key"],
        webhook_id=row["webhook_id"],
        url=row["url"],
        secret=row["secret"],
        hmac_algo=row["hmac_algo"],
        event_type=row["event_type"],
        event_id=row["event_id"],
        subject_sid=row["subject_sid"],
        payload=json.loads(row["payload"]),
        event_at=from_ms(row["event_at"]),
        failover_url=row["failover_url"],
        timeout=row["timeout"],
        failover=bool(row["failover"]),
        id=int(row["id"]),
        attempts=row["attempts"],
        state=row["state"],
        due_at=from_ms(row["due_at"]),
        claimed_by=row["claimed_by"],
        claimed_at=from_ms(row["claimed_at"]),
        lease_until=from_ms(row["lease_until"]),
    )
