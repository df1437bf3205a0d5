"""SMS sent and received (Callr v2 ``/sms``), one row each, with its status history.

An outbound SMS is created ``created`` and moved through the seed's statuses
by :meth:`SmsMessages.set_status`, which appends to its history and stamps
``sent`` and ``delivered`` as they happen; an inbound one is created
``delivered`` (it reached us). An outbound SMS still on its way when the
server stops (``created``, ``pending``, ``sent``), or found so at the next
start after a crash, is marked ``expired`` by
:meth:`SmsMessages.expire_unfinished`: nobody waits for its answer any more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mediaserver.store.cdrs import rfc3339
from mediaserver.store.db import (
    Database,
    Order,
    Page,
    Row,
    Where,
    dump_json,
    from_ms,
    like_pattern,
    opt_from_ms,
    order_sql,
    to_ms,
)

Direction = Literal["inbound", "outbound"]

_COLUMNS = (
    "id, direction, sender, recipient, text, encoding, parts, traffic_type, status, error,"
    " sip_status, history, created_at, updated_at, sent_at, delivered_at"
)
_SORT = {"created": "created_at", "updated": "updated_at"}
UNFINISHED = ("created", "pending", "sent")


@dataclass(frozen=True)
class NewSms:
    id: str
    direction: Direction
    sender: str
    recipient: str
    text: str
    encoding: str
    parts: int
    traffic_type: str | None
    status: str


@dataclass(frozen=True)
class SmsRecord:
    id: str
    direction: Direction
    sender: str
    recipient: str
    text: str
    encoding: str
    parts: int
    traffic_type: str | None
    status: str
    error: str | None
    sip_status: int | None
    history: tuple[tuple[str, datetime], ...]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None

    def as_sms(self) -> dict[str, Any]:
        """The seed's SMS object (``GET /api/sms/{sid}`` and the ``v2.sms.*`` payloads).
        A self-hosted server has no carrier network, cost or payment type: null."""
        return {
            "direction": self.direction,
            "sid": self.id,
            "from": self.sender,
            "to": self.recipient,
            "body": {"text": self.text},
            "trafficType": self.traffic_type,
            "status": self.status,
            "error": self.error,
            "created": rfc3339(self.created_at),
            "delivered": rfc3339(self.delivered_at),
            "updated": rfc3339(self.updated_at),
            "sent": rfc3339(self.sent_at),
            "parts": self.parts,
            "network": None,
            "encoding": self.encoding,
            "cost": None,
            "paymentType": None,
            "statusHistory": [{"status": s, "at": rfc3339(at)} for s, at in self.history],
            "sipStatus": self.sip_status,
        }


@dataclass(frozen=True)
class SmsFilter:
    """The seed's search filters; None: not filtered."""

    direction: Direction | None = None
    sid: str | None = None
    sender: str | None = None
    recipient: str | None = None
    contains: str | None = None
    traffic_type: str | None = None
    status: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def where(self) -> Where:
        where = Where()
        where.equal("direction", self.direction)
        where.equal("id", self.sid)
        where.equal("sender", self.sender)
        where.equal("recipient", self.recipient)
        if self.contains:
            where.add("lower(text) LIKE lower(?) ESCAPE '\\'", like_pattern(self.contains))
        where.equal("traffic_type", self.traffic_type)
        where.equal("status", self.status)
        where.between("created_at", self.created_after, self.created_before)
        return where


class SmsMessages:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, new: NewSms) -> SmsRecord:
        now = to_ms(self.db.now())
        history = dump_json([[new.status, now]])
        delivered = now if new.status == "delivered" else None
        async with self.db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO sms ({_COLUMNS}, node) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, NULL, ?, ?)",
                (new.id, new.direction, new.sender, new.recipient, new.text, new.encoding,
                 new.parts, new.traffic_type, new.status, history, now, now, delivered,
                 self.db.node),
            )  # fmt: skip
            row = await tx.fetch_written(
                f"SELECT {_COLUMNS} FROM sms WHERE id = ?", (new.id,), "sms"
            )
        return _sms(row)

    async def set_status(
        self, sid: str, status: str, *, error: str | None = None, sip_status: int | None = None
    ) -> SmsRecord | None:
        """Move an SMS to ``status`` (appended to its history); None if unknown."""
        now = to_ms(self.db.now())
        async with self.db.transaction() as tx:
            row = await tx.fetch_one("SELECT history FROM sms WHERE id = ?", (sid,))
            if row is None:
                return None
            history = json.loads(row[0])
            history.append([status, now])
            await tx.execute(
                "UPDATE sms SET status = ?, error = coalesce(?, error),"
                " sip_status = coalesce(?, sip_status), history = ?, updated_at = ?,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,"
                " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END"
                " WHERE id = ?",
                (status, error, sip_status, dump_json(history), now, status, now, status, now,
                 sid),
            )  # fmt: skip
            written = await tx.fetch_written(
                f"SELECT {_COLUMNS} FROM sms WHERE id = ?", (sid,), "sms"
            )
        return _sms(written)

    async def get(self, sid: str) -> SmsRecord | None:
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM sms WHERE id = ?", (sid,))
        return _sms(row) if row is not None else None

    async def search(
        self,
        filters: SmsFilter | None = None,
        *,
        sort: Literal["created", "updated"] = "created",
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[SmsRecord]:
        direction = order_sql(order)
        column = _SORT[sort]
        async with self.db.snapshot() as snap:
            return await snap.page(
                f"SELECT {_COLUMNS} FROM sms",
                "SELECT count(*) FROM sms",
                (filters or SmsFilter()).where(),
                f"{column} {direction}, id {direction}",
                limit,
                offset,
                _sms,
            )

    async def expire_unfinished(self, reason: str) -> list[str]:
        """Mark this node's outbound SMS still on their way ``expired``; their ids."""
        mine, node = self.db.own_rows()
        rows = await self.db.fetch_all(
            f"SELECT id FROM sms WHERE direction = 'outbound' AND status IN (?, ?, ?){mine}",
            [*UNFINISHED, *node],
        )
        ids = [str(row[0]) for row in rows]
        for sid in ids:
            await self.set_status(sid, "expired", error=reason)
        return ids


def _sms(row: Row) -> SmsRecord:
    return SmsRecord(
        id=str(row["id"]),
        direction="inbound" if row["direction"] == "inbound" else "outbound",
        sender=str(row["sender"]),
        recipient=str(row["recipient"]),
        text=str(row["text"]),
        encoding=str(row["encoding"]),
        parts=int(row["parts"]),
        traffic_type=row["traffic_type"],
        status=str(row["status"]),
        error=row["error"],
        sip_status=row["sip_status"],
        history=tuple((str(s), from_ms(int(at))) for s, at in json.loads(row["history"])),
        created_at=from_ms(int(row["created_at"])),
        updated_at=from_ms(int(row["updated_at"])),
        sent_at=opt_from_ms(row["sent_at"]),
        delivered_at=opt_from_ms(row["delivered_at"]),
    )
