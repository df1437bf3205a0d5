"""The database: one writer connection, a few readers, migrations at open.

Two engines sit behind it: SQLite, embedded, the default
(:mod:`~mediaserver.store.sqlite_engine`), and PostgreSQL, a server several
mediaserver nodes share (:mod:`~mediaserver.store.postgres`);
:meth:`Database.open` picks by the target (a file path, or a
``postgresql://`` URL). What differs in their SQL is in
:mod:`~mediaserver.store.dialect`; everything here is the same for both.

Theory of operation. SQLite allows one writer at a time, so the process keeps
exactly one writer connection and serialises every write through an
:class:`asyncio.Lock`: :meth:`Database.transaction` takes the lock, issues
``BEGIN IMMEDIATE`` and yields a :class:`Transaction`; leaving the block
commits, and any exception (cancellation included) rolls back, so a
multi-statement change is applied whole or not at all. Reads go to a small
pool of separate read-only connections; in WAL mode readers never wait for
the writer and see the last committed state. aiosqlite runs every
connection in its own thread, so neither reads nor writes block the event
loop. :meth:`Database.snapshot` holds one read transaction across several
queries (a page and its total count agree). PostgreSQL is given the same
shape: one writer connection per process serialised by the lock (so a
read-then-write inside a transaction sees no other write of this process),
readers in read-only sessions, snapshots in ``REPEATABLE READ``; writes of
other nodes are ordered by the server's row locks and constraints.

Durability. The journal is WAL with ``synchronous=NORMAL`` by default: a
commit is in the WAL file (handed to the OS) before ``COMMIT`` returns, so a
process crash, SIGKILL included, loses nothing committed and never corrupts
the file. What NORMAL gives up is the fsync on every commit: after a power
cut or kernel crash the last commits before the next checkpoint may be
missing (the database is still consistent). Call records are written a few
times per call at hundreds of calls per second, and one fsync per commit on
a serialised writer would cap that at the disk's fsync rate; pass
``durability="full"`` to :meth:`Database.open` where records must survive
power loss.

Timestamps are stored as integer milliseconds since the Unix epoch (UTC):
they sort and compare in SQL and have no time-zone ambiguity. Python code
sees aware :class:`~datetime.datetime` objects; :func:`to_ms` and
:func:`from_ms` convert.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from mediaserver.database_url import is_postgres_url
from mediaserver.store.dialect import Dialect
from mediaserver.store.errors import StoreError

T = TypeVar("T")
Durability = Literal["normal", "full"]
Order = Literal["asc", "desc"]
Params = Sequence[Any]

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 8
ID_PATTERN = re.compile(r"[a-z0-9]{8}")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_MAX_ID_TRIES = 16


class Row(Protocol):
    """A result row, read by position or by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


def new_id() -> str:
    """A fresh id as the API shows it: 8 characters of ``[a-z0-9]``.

    36**8 (2.8e12) values; uniqueness is still checked on insert
    (:meth:`Transaction.unique_id`).
    """
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are refused (their zone is a guess)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass an aware one (UTC)")
    return round(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def opt_to_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_ms(moment)


def opt_from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


def dump_json(value: Any) -> str:
    """JSON for a TEXT column; raises ``TypeError`` before anything is written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``%``, ``_`` and ``\\`` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def order_sql(order: Order) -> str:
    """``ASC`` or ``DESC``; anything else is refused (it is pasted into SQL)."""
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    return order.upper()


def check_paging(limit: int, offset: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, not {offset}")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a search, shaped like the Callr v2 search answer."""

    hits: list[T]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.hits) < self.total


@dataclass
class Where:
    """A WHERE clause built from optional filters, with its parameters."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def equal(self, column: str, value: Any) -> None:
        """``column = value`` unless ``value`` is None (filter not given)."""
        if value is not None:
            self.add(f"{column} = ?", value)

    def between(self, column: str, since: datetime | None, until: datetime | None) -> None:
        """Both bounds inclusive, as the Callr search filters are."""
        if since is not None:
            self.add(f"{column} >= ?", to_ms(since))
        if until is not None:
            self.add(f"{column} <= ?", to_ms(until))

    @property
    def sql(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


class Link(ABC):
    """One connection of either engine, and whether a transaction may still be open on it.

    ``dirty`` stays set when a transaction's clean-up did not finish (its task
    was cancelled while awaiting it); the next user rolls back first.
    """

    def __init__(self) -> None:
        self.dirty = False

    @abstractmethod
    async def fetch_one(self, sql: str, params: Params) -> Row | None: ...

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params) -> list[Row]: ...

    @abstractmethod
    async def execute(self, sql: str, params: Params) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def run(self, statement: str) -> None:
        """A statement without parameters or result (BEGIN, COMMIT, DDL)."""

    @abstractmethod
    async def rollback(self) -> None:
        """Roll back the open transaction, if any, and clear ``dirty``."""

    @abstractmethod
    async def close(self) -> None: ...

    async def begin(self, statement: str) -> None:
        if self.dirty:
            await self.rollback()
        self.dirty = True
        await self.run(statement)

    async def end(self, statement: str) -> None:
        await self.run(statement)
        self.dirty = False


class Notifications(ABC):
    """Where a database tells of changes other processes committed (PostgreSQL's LISTEN)."""

    @abstractmethod
    async def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the event loop) after each commit that notified ``channel``."""

    @abstractmethod
    async def close(self) -> None: ...


class Session:
    """Queries on one connection (a transaction or a read snapshot)."""

    def __init__(self, link: Link, db: Database) -> None:
        self._link = link
        self.db = db

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await self._link.fetch_one(sql, params)

    async def fetch_written(self, sql: str, params: Params, what: str) -> Row:
        """A row this transaction has just written: it is there by construction, so
        its absence is a bug, reported naming ``what``."""
        row = await self.fetch_one(sql, params)
        if row is None:
            raise LookupError(f"{what} vanished inside its own transaction")
        return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._link.fetch_all(sql, params)

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def page(
        self,
        select: str,
        count: str,
        where: Where,
        order_by: str,
        limit: int,
        offset: int,
        parse: Callable[[Row], T],
    ) -> Page[T]:
        """``select`` + ``where`` sorted and cut to one page, with the total of ``count``."""
        check_paging(limit, offset)
        total = int(await self.fetch_value(count + where.sql, where.params))
        rows: list[Row] = []
        if limit and offset < total:
            sql = f"{select}{where.sql} ORDER BY {order_by} LIMIT ? OFFSET ?"
            rows = await self.fetch_all(sql, [*where.params, limit, offset])
        return Page([parse(row) for row in rows], total, offset, limit)


class Transaction(Session):
    """The writer connection inside its write transaction (``BEGIN`` .. ``COMMIT``)."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return await self._link.execute(sql, params)

    async def notify(self, channel: str) -> None:
        """Tell the other nodes sharing the database, once this transaction commits, that
        what ``channel`` names changed (PostgreSQL's NOTIFY; SQLite has one process)."""
        if self.db.dialect.name == "postgresql":
            await self.fetch_one("SELECT pg_notify(?, '')", (channel,))

    async def unique_id(self, table: str, prefix: str = "") -> str:
        """``prefix`` + :func:`new_id` not yet used as ``table.id``.

        Checked inside the write transaction, so no other writer of this process
        can take it before this transaction inserts it (the primary key refuses
        another node's twin: 36**8 values make that a lottery win).
        """
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        for _ in range(_MAX_ID_TRIES):
            candidate = prefix + new_id()
            if await self.fetch_one(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,)) is None:
                return candidate
        raise StoreError(f"no free id in {table} after {_MAX_ID_TRIES} tries")


class Database:
    """An open database of either engine; create with :meth:`open`, end with :meth:`close`."""

    def __init__(
        self,
        location: str,
        dialect: Dialect,
        writer: Link,
        readers: list[Link],
        clock: Callable[[], datetime],
        path: Path | None = None,
        node: str = "",
        notifications: Notifications | None = None,
    ) -> None:
        self.location = location
        """Where the data is, as messages show it (a file, or the URL without password)."""
        self.path = path
        """The SQLite file; None on PostgreSQL."""
        self.dialect = dialect
        self.node = node
        """This server's ``node.name``: stamped on the calls, runs and recordings it writes."""
        self.now = clock
        """The current time as the store records it (replaceable in tests)."""
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[Link] = asyncio.Queue()
        self._all_readers = readers
        for reader in readers:
            self._readers.put_nowait(reader)
        self._notifications = notifications
        self._closed = False

    @classmethod
    async def open(
        cls,
        target: str | Path,
        *,
        readers: int = 2,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        node: str = "",
    ) -> Database:
        """Open (creating if needed) the database at ``target`` and migrate it.

        ``target`` is a file path (SQLite) or a ``postgresql://`` URL. Raises
        :class:`~mediaserver.store.errors.SchemaTooNew` when the database was
        written by a newer mediaserver. ``readers`` read-only connections serve
        queries; ``durability`` is explained in
        :mod:`~mediaserver.store.sqlite_engine` (PostgreSQL keeps its server's
        setting); ``busy_timeout`` is how long to wait on another process's
        lock; ``clock`` gives the time the store records for "now"; ``node``
        names this server among those sharing the database.
        """
        if readers < 1:
            raise ValueError("at least one reader connection is needed")
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
        if is_postgres_url(target):
            from mediaserver.store.postgres import open_postgres

            database = await open_postgres(str(target), readers, busy_timeout, clock)
        else:
            from mediaserver.store.sqlite_engine import open_sqlite

            database = await open_sqlite(Path(target), readers, durability, busy_timeout, clock)
        database.node = node
        return database

    @property
    def latest_version(self) -> int:
        from mediaserver.store import migrations

        return len(migrations.MIGRATIONS)

    async def schema_version(self) -> int:
        from mediaserver.store import migrations

        async with self._reader() as reader:
            return await migrations.current_version(reader, self.dialect)

    async def close(self) -> None:
        """Wait for the running write, then close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            if self._writer.dirty:
                await self._writer.rollback()
            await self._writer.close()
        for reader in self._all_readers:
            await reader.close()
        if self._notifications is not None:
            await self._notifications.close()

    def own_rows(self) -> tuple[str, list[str]]:
        """``AND ...`` keeping the rows this node wrote (and those older than node
        names), with its parameters: what is in flight is only ever this node's to close.

        An SQLite file belongs to one server, so every row is its own there; on a
        shared PostgreSQL database another node's rows are alive and not ours.
        """
        if self.dialect.name == "sqlite":
            return "", []
        return " AND node IN (?, '')", [self.node]

    async def listen(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another transaction (of any node) notified ``channel``
        (:meth:`Transaction.notify`). Nothing on SQLite: its file has one server."""
        self._check_open()
        if self._notifications is not None:
            await self._notifications.listen(channel, callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """The write transaction: commit on normal exit, roll back on any exception."""
        self._check_open()
        async with self._write_lock:
            writer = self._writer
            await writer.begin(self.dialect.begin_write)
            transaction = Transaction(writer, self)
            try:
                yield transaction
                await writer.end("COMMIT")
            except BaseException:
                await writer.rollback()
                raise

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Session]:
        """A read transaction: every query inside sees the same committed state."""
        async with self._reader() as reader:
            await reader.begin(self.dialect.begin_snapshot)
            try:
                yield Session(reader, self)
            finally:
                await reader.rollback()

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._reader() as reader:
            return await reader.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._reader() as reader:
            return await reader.fetch_all(sql, params)

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        async with self._reader() as reader:
            return await Session(reader, self).fetch_value(sql, params)

    async def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: ``["ok"]`` for a sound file. PostgreSQL
        checks its own pages; there ``["ok"]`` means the server answers queries."""
        if self.dialect.name == "postgresql":
            return ["ok"] if await self.fetch_value("SELECT 1") == 1 else ["no answer"]
        return [str(row[0]) for row in await self.fetch_all("PRAGMA integrity_check")]

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[Link]:
        self._check_open()
        reader = await self._readers.get()
        try:
            yield reader
        finally:
            self._readers.put_nowait(reader)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.location}: the database is closed")
