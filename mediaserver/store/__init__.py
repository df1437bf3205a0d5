"""Storage: SQLite through aiosqlite, or PostgreSQL through asyncpg, for
scenarios, runs, call records, recordings and webhooks (SPEC section 7).

Theory of operation. :meth:`Store.open` opens the database file (creating
it, applying pending migrations, refusing a schema newer than the code)
and hands out one repository per kind of record; each repository method is
one transaction, so nothing is ever half-applied. At start-up the server
calls :meth:`Store.mark_interrupted_calls` before taking calls, then loads
the routing table (:meth:`Numbers.all`) and synchronises the scenario files
(:meth:`Scenarios.sync_file`). Layout:

- :mod:`~mediaserver.store.db`: connections, transactions, ids, time, paging;
- :mod:`~mediaserver.store.migrations`: the versioned schema;
- :mod:`~mediaserver.store.scenarios`, :mod:`~mediaserver.store.runs`,
  :mod:`~mediaserver.store.cdrs`, :mod:`~mediaserver.store.recordings`,
  :mod:`~mediaserver.store.webhooks`, :mod:`~mediaserver.store.outbox`,
  :mod:`~mediaserver.store.bindings`,
  :mod:`~mediaserver.store.call_control`,
  :mod:`~mediaserver.store.audio_files`:
  :mod:`~mediaserver.store.sms`:
  the repositories;
- :mod:`~mediaserver.store.recovery`: what a crash left in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from mediaserver.store.audio_files import AudioFile, AudioFileFilter, AudioFilesIndex
from mediaserver.store.bindings import RegistrarBindings, StoredBinding
from mediaserver.store.call_control import (
    Applications,
    ApplicationSettings,
    CallControlApplication,
    CallEvent,
    CallEventFilter,
    CallEvents,
    NewCallEvent,
)
from mediaserver.store.cdrs import (
    CSV_COLUMNS,
    CallEnd,
    CallFilter,
    CallRecord,
    CallRecords,
    NewCall,
)
from mediaserver.store.db import Database, Durability, Page, new_id, utc_now
from mediaserver.store.errors import Conflict, SchemaTooNew, StoreError, UnknownReference
from mediaserver.store.outbox import OutboxPost, OutboxRow, WebhookOutbox
from mediaserver.store.recordings import NewRecording, Recording, RecordingFilter, Recordings
from mediaserver.store.recovery import Recovery, mark_interrupted_calls
from mediaserver.store.runs import RunRecord, Runs
from mediaserver.store.scenarios import NumberAttachment, Numbers, Scenario, Scenarios
from mediaserver.store.sms import NewSms, SmsFilter, SmsMessages, SmsRecord
from mediaserver.store.webhooks import (
    Deliveries,
    Delivery,
    DeliveryFilter,
    NewDelivery,
    Webhook,
    Webhooks,
)

__all__ = [
    "CSV_COLUMNS",
    "ApplicationSettings",
    "Applications",
    "AudioFile",
    "AudioFileFilter",
    "AudioFilesIndex",
    "CallControlApplication",
    "CallEnd",
    "CallEvent",
    "CallEventFilter",
    "CallEvents",
    "CallFilter",
    "CallRecord",
    "CallRecords",
    "Conflict",
    "Database",
    "Deliveries",
    "Delivery",
    "DeliveryFilter",
    "NewCall",
    "NewCallEvent",
    "NewDelivery",
    "NewRecording",
    "NewSms",
    "NumberAttachment",
    "Numbers",
    "OutboxPost",
    "OutboxRow",
    "Page",
    "Recording",
    "RecordingFilter",
    "Recordings",
    "Recovery",
    "RegistrarBindings",
    "RunRecord",
    "Runs",
    "Scenario",
    "Scenarios",
    "SchemaTooNew",
    "SmsFilter",
    "SmsMessages",
    "SmsRecord",
    "Store",
    "StoreError",
    "StoredBinding",
    "UnknownReference",
    "Webhook",
    "WebhookOutbox",
    "Webhooks",
    "new_id",
]


class Store:
    """The open database and its repositories."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.scenarios = Scenarios(db)
        self.numbers = Numbers(db)
        self.runs = Runs(db)
        self.calls = CallRecords(db)
        self.recordings = Recordings(db)
        self.webhooks = Webhooks(db)
        self.deliveries = Deliveries(db)
        self.outbox = WebhookOutbox(db)  # webhook posts on their way, claimed by a node
        self.bindings = RegistrarBindings(db)  # every node's registered contacts
        self.applications = Applications(db)
        self.call_events = CallEvents(db)
        self.audio_files = AudioFilesIndex(db)
        self.sms = SmsMessages(db)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        readers: int = 2,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        node: str = "",
    ) -> Store:
        """Open the database at ``path`` (a file, or a ``postgresql://`` URL) as server
        ``node``; see :meth:`Database.open`."""
        db = await Database.open(
            path,
            readers=readers,
            durability=durability,
            busy_timeout=busy_timeout,
            clock=clock,
            node=node,
        )
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def mark_interrupted_calls(self, now: datetime | None = None) -> Recovery:
        """The crash-recovery rule, run at start-up: see :mod:`mediaserver.store.recovery`."""
        return await mark_interrupted_calls(self.db, now)
