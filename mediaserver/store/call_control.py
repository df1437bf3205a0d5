"""Call Control applications and the call event log (seed 002, SPEC section 5).

Theory of operation. A :class:`CallControlApplication` is the seed's
"connection": where its calls' events are posted (``webhook_event_url``, the
failover URL, the timeout) and how its calls behave. Its id is a numeric
string as the seed shows them (``"1293384261075731499"``: 19 digits, an
int64). :class:`Applications` keeps them; each method is one transaction.
The settings are stored as one JSON object and read back over the defaults,
so a setting added later reads as its default in older rows.

:class:`CallEvents` is the log ``GET /telnyx/v2/call_events`` lists: one row
per webhook attempt (``type='webhook'``) or command (``type='command'``),
with the call leg and session it concerns, the application's id and name at
the time, ``delivered``/``failed`` and the event's metadata (the body posted
and how the attempt went). It grows with traffic; :meth:`CallEvents.prune`
drops old rows.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from mediaserver.store.db import (
    Database,
    Page,
    Row,
    Transaction,
    Where,
    dump_json,
    from_ms,
    like_pattern,
    to_ms,
)
from mediaserver.store.errors import StoreError

EventType = Literal["command", "webhook"]
EventStatus = Literal["delivered", "failed"]

_APP_COLUMNS = "id, application_name, settings, created_at, updated_at"
APPLICATIONS_CHANNEL = "mediaserver_call_control_applications"
"""Notified by every change of an application (nodes sharing a database reload them)."""

_EVENT_FIELDS = (
    "type, name, call_leg_id, call_session_id, application_id, application_name, status,"
    " metadata, at"
)
_EVENT_COLUMNS = f"id, {_EVENT_FIELDS}"
_ID_LOW = 10**18  # ids have 19 digits and stay below 2**63, as the seed's int64 ids do
_ID_SPAN = 2**63 - _ID_LOW  # [10**18, 2**63): 19 digits, an int64
_MAX_ID_TRIES = 16


def new_application_id() -> str:
    """A fresh application id: 19 decimal digits, below 2**63 (the seed's int64)."""
    return str(_ID_LOW + secrets.randbelow(_ID_SPAN))


@dataclass(frozen=True)
class InboundSettings:
    """The seed's ``CallControlApplicationInbound``."""

    channel_limit: int | None = None
    sip_subdomain: str | None = None
    sip_subdomain_receive_settings: Literal["only_my_connections", "from_anyone"] = "from_anyone"


@dataclass(frozen=True)
class OutboundSettings:
    """The seed's ``CallControlApplicationOutbound``."""

    channel_limit: int | None = None
    outbound_voice_profile_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApplicationSettings:
    """What a request sets on an application (the seed's defaults where it gives them)."""

    application_name: str
    webhook_event_url: str
    webhook_event_failover_url: str | None = None
    webhook_api_version: Literal["1", "2"] = "1"
    webhook_timeout_secs: int | None = None
    first_command_timeout: bool = False
    first_command_timeout_secs: int = 30
    active: bool = True
    anchorsite_override: str = "Latency"
    dtmf_type: Literal["RFC 2833", "Inband", "SIP INFO"] = "RFC 2833"
    inbound: InboundSettings = field(default_factory=InboundSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    call_cost_in_webhooks: bool = False
    redact_dtmf_debug_logging: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CallControlApplication(ApplicationSettings):
    """A stored application: its settings, id and times."""

    id: str
    created_at: datetime
    updated_at: datetime

    @property
    def settings(self) -> ApplicationSettings:
        values = {f.name: getattr(self, f.name) for f in fields(ApplicationSettings)}
        return ApplicationSettings(**values)


def settings_json(settings: ApplicationSettings) -> str:
    """The JSON kept in ``settings`` (everything but the name, which has its column)."""
    values = asdict(settings)
    del values["application_name"]
    values["tags"] = list(settings.tags)
    return dump_json(values)


def settings_from_json(name: str, text: str) -> ApplicationSettings:
    """Settings read back: unknown keys ignored, missing ones at their defaults."""
    stored: dict[str, Any] = json.loads(text)
    known = {f.name for f in fields(ApplicationSettings)}
    values = {k: v for k, v in stored.items() if k in known}
    inbound = values.get("inbound") or {}
    outbound = values.get("outbound") or {}
    values["inbound"] = InboundSettings(
        **{k: v for k, v in inbound.items() if k in {f.name for f in fields(InboundSettings)}}
    )
    values["outbound"] = OutboundSettings(
        **{k: v for k, v in outbound.items() if k in {f.name for f in fields(OutboundSettings)}}
    )
    values["tags"] = tuple(values.get("tags") or ())
    values["application_name"] = name
    return ApplicationSettings(**values)


class Applications:
    """The stored Call Control applications."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[CallControlApplication]:
        """Every application, oldest first (what the server loads at start)."""
        rows = await self.db.fetch_all(
            f"SELECT {_APP_COLUMNS} FROM call_control_applications ORDER BY created_at, id"
        )
        return [_application(row) for row in rows]

    async def create(self, settings: ApplicationSettings) -> CallControlApplication:
        now = to_ms(self.db.now())
        async with self.db.transaction() as tx:
            app_id = await _unique_application_id(tx)
            await tx.execute(
                f"INSERT INTO call_control_applications ({_APP_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (app_id, settings.application_name, settings_json(settings), now, now),
            )
            await tx.notify(APPLICATIONS_CHANNEL)
            return await _load(tx, app_id)

    async def update(
        self, app_id: str, settings: ApplicationSettings
    ) -> CallControlApplication | None:
        """Replace the settings of ``app_id``; None when there is no such application."""
        now = to_ms(self.db.now())
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE call_control_applications SET application_name = ?, settings = ?,"
                f" updated_at = {self.db.dialect.greatest}(?, created_at) WHERE id = ?",
                (settings.application_name, settings_json(settings), now, app_id),
            )
            await tx.notify(APPLICATIONS_CHANNEL)
            return await _load(tx, app_id) if changed else None

    async def delete(self, app_id: str) -> CallControlApplication | None:
        """Delete ``app_id``; what it was, None when there was no such application."""
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(
                f"SELECT {_APP_COLUMNS} FROM call_control_applications WHERE id = ?", (app_id,)
            )
            if row is None:
                return None
            await tx.execute("DELETE FROM call_control_applications WHERE id = ?", (app_id,))
            await tx.notify(APPLICATIONS_CHANNEL)
            return _application(row)


async def _unique_application_id(tx: Transaction) -> str:
    for _ in range(_MAX_ID_TRIES):
        candidate = new_application_id()
        taken = await tx.fetch_one(
            "SELECT 1 FROM call_control_applications WHERE id = ?", (candidate,)
        )
        if taken is None:
            return candidate
    raise StoreError(f"no free application id after {_MAX_ID_TRIES} tries")


async def _load(tx: Transaction, app_id: str) -> CallControlApplication:
    sql = f"SELECT {_APP_COLUMNS} FROM call_control_applications WHERE id = ?"
    return _application(await tx.fetch_written(sql, (app_id,), f"application {app_id}"))


def _application(row: Row) -> CallControlApplication:
    settings = settings_from_json(row["application_name"], row["settings"])
    values = {f.name: getattr(settings, f.name) for f in fields(ApplicationSettings)}
    return CallControlApplication(
        **values,
        id=row["id"],
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
    )


# --- the call event log ---------------------------------------------------------------------


@dataclass(frozen=True)
class NewCallEvent:
    """A line of the call event log, as written."""

    type: EventType
    name: str  # the event type (call.hangup) or the command (answer)
    status: EventStatus
    at: datetime
    call_leg_id: str = ""
    call_session_id: str = ""
    application_id: str = ""
    application_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallEvent(NewCallEvent):
    """A line of the call event log, as read (with its row id)."""

    id: int = 0


@dataclass(frozen=True)
class CallEventFilter:
    """``GET /call_events`` filters; None means any. Time bounds as the seed names them."""

    type: EventType | None = None
    name: str | None = None
    status: EventStatus | None = None
    call_leg_id: str | None = None
    call_session_id: str | None = None
    application_name_contains: str | None = None
    after: datetime | None = None  # gt
    since: datetime | None = None  # gte
    before: datetime | None = None  # lt
    until: datetime | None = None  # lte
    at: datetime | None = None  # eq (to the millisecond)
    window_start: datetime | None = None  # the seed's 24-hour window, when it applies

    def where(self) -> Where:
        where = Where()
        where.equal("type", self.type)
        where.equal("name", self.name)
        where.equal("status", self.status)
        where.equal("call_leg_id", self.call_leg_id)
        where.equal("call_session_id", self.call_session_id)
        if self.application_name_contains is not None:
            # LIKE is case-insensitive for ASCII, as the seed's "contains" filters are.
            pattern = like_pattern(self.application_name_contains)
            where.add("lower(application_name) LIKE lower(?) ESCAPE '\\'", pattern)
        for op, moment in ((">", self.after), (">=", self.since), ("<", self.before)):
            if moment is not None:
                where.add(f"at {op} ?", to_ms(moment))
        if self.until is not None:
            where.add("at <= ?", to_ms(self.until))
        if self.at is not None:
            where.add("at = ?", to_ms(self.at))
        if self.window_start is not None:
            where.add("at >= ?", to_ms(self.window_start))
        return where


class CallEvents:
    """The call event log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, event: NewCallEvent) -> int:
        """Log one event; its row id."""
        async with self.db.transaction() as tx:
            row_id = await tx.fetch_value(
                f"INSERT INTO call_events ({_EVENT_FIELDS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    event.type,
                    event.name,
                    event.call_leg_id,
                    event.call_session_id,
                    event.application_id,
                    event.application_name,
                    event.status,
                    dump_json(event.metadata),
                    to_ms(event.at),
                ),
            )
            return int(row_id)

    async def search(
        self, filters: CallEventFilter | None = None, *, limit: int = 20, offset: int = 0
    ) -> Page[CallEvent]:
        """Log rows by time, oldest first (the seed: "ordered by event_timestamp")."""
        async with self.db.snapshot() as snap:
            return await snap.page(
                f"SELECT {_EVENT_COLUMNS} FROM call_events",
                "SELECT count(*) FROM call_events",
                (filters or CallEventFilter()).where(),
                "at ASC, id ASC",
                limit,
                offset,
                _event,
            )

    async def prune(self, before: datetime) -> int:
        """Drop log rows older than ``before``; how many went."""
        async with self.db.transaction() as tx:
            return await tx.execute("DELETE FROM call_events WHERE at < ?", (to_ms(before),))


def _event(row: Row) -> CallEvent:
    return CallEvent(
        id=row["id"],
        type=row["type"],
        name=row["name"],
        status=row["status"],
        at=from_ms(row["at"]),
        call_leg_id=row["call_leg_id"],
        call_session_id=row["call_session_id"],
        application_id=row["application_id"],
        application_name=row["application_name"],
        metadata=json.loads(row["metadata"]),
    )
