"""The SQLite database: one writer connection, a few readers, migrations at open.

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
queries (a page and its total count agree).

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
import sqlite3
import string
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import aiosqlite

from mediaserver.store import migrations
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
_WAL_SIZE_LIMIT = 64 * 1024 * 1024


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


class _Connection:
    """One aiosqlite connection and whether a transaction may still be open on it.

    ``dirty`` stays set when a transaction's clean-up did not finish (its task
    was cancelled while awaiting it); the next user rolls back first.
    aiosqlite runs statements in submission order, so that rollback lands
    after whatever the cancelled task had queued.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.dirty = False

    async def begin(self, statement: str) -> None:
        if self.dirty:
            await self.rollback()
        self.dirty = True
        await self.conn.execute(statement)

    async def end(self, statement: str) -> None:
        await self.conn.execute(statement)
        self.dirty = False

    async def rollback(self) -> None:
        try:
            await self.conn.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            if "no transaction is active" not in str(error):
                raise
        self.dirty = False


class Session:
    """Queries on one connection (a transaction or a read snapshot)."""

    def __init__(self, conn: aiosqlite.Connection, db: Database) -> None:
        self._conn = conn
        self.db = db

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def fetch_written(self, sql: str, params: Params, what: str) -> sqlite3.Row:
        """A row this transaction has just written: it is there by construction, so
        its absence is a bug, reported naming ``what``."""
        row = await self.fetch_one(sql, params)
        if row is None:
            raise LookupError(f"{what} vanished inside its own transaction")
        return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        rows = await self._conn.execute_fetchall(sql, params)
        return list(rows)

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
        parse: Callable[[sqlite3.Row], T],
    ) -> Page[T]:
        """``select`` + ``where`` sorted and cut to one page, with the total of ``count``."""
        check_paging(limit, offset)
        total = int(await self.fetch_value(count + where.sql, where.params))
        rows: list[sqlite3.Row] = []
        if limit and offset < total:
            sql = f"{select}{where.sql} ORDER BY {order_by} LIMIT ? OFFSET ?"
            rows = await self.fetch_all(sql, [*where.params, limit, offset])
        return Page([parse(row) for row in rows], total, offset, limit)


class Transaction(Session):
    """The writer connection inside ``BEGIN IMMEDIATE`` .. ``COMMIT``."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        async with self._conn.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    async def unique_id(self, table: str, prefix: str = "") -> str:
        """``prefix`` + :func:`new_id` not yet used as ``table.id``.

        Checked inside the write transaction, so no other writer can take it
        before this transaction inserts it.
        """
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        for _ in range(_MAX_ID_TRIES):
            candidate = prefix + new_id()
            if await self.fetch_one(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,)) is None:
                return candidate
        raise StoreError(f"no free id in {table} after {_MAX_ID_TRIES} tries")


class Database:
    """An open SQLite database; create with :meth:`open`, end with :meth:`close`."""

    def __init__(
        self,
        path: Path,
        writer: _Connection,
        readers: list[_Connection],
        clock: Callable[[], datetime],
    ) -> None:
        self.path = path
        self.now = clock
        """The current time as the store records it (replaceable in tests)."""
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[_Connection] = asyncio.Queue()
        self._all_readers = readers
        for reader in readers:
            self._readers.put_nowait(reader)
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        readers: int = 2,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> Database:
        """Open (creating if needed) the database at ``path`` and migrate it.

        Raises :class:`~mediaserver.store.errors.SchemaTooNew` when the
        file was written by a newer mediaserver. ``readers`` read-only
        connections serve queries; ``durability`` is explained in the module
        doc; ``busy_timeout`` is how long to wait on another process's lock;
        ``clock`` gives the time the store records for "now".
        """
        path = Path(path)
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise ValueError("the store needs a file path: readers are separate connections")
        if readers < 1:
            raise ValueError("at least one reader connection is needed")
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        opened: list[aiosqlite.Connection] = []
        try:
            writer = await _connect(path, busy_timeout, opened)
            mode = await _pragma(writer, "journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: SQLite refused WAL journal mode (got {mode!r})")
            await _pragma(writer, f"synchronous = {durability.upper()}")
            # Truncate the WAL back to this size after checkpoints, so a burst leaves no giant file.
            await _pragma(writer, f"journal_size_limit = {_WAL_SIZE_LIMIT}")
            await migrations.apply_migrations(writer, path, clock())
            pool = []
            for _ in range(readers):
                reader = await _connect(path, busy_timeout, opened)
                await _pragma(reader, "query_only = ON")
                pool.append(_Connection(reader))
        except BaseException:
            for conn in opened:
                await conn.close()
            raise
        return cls(path, _Connection(writer), pool, clock)

    @property
    def latest_version(self) -> int:
        return len(migrations.MIGRATIONS)

    async def schema_version(self) -> int:
        return int(await self.fetch_value("PRAGMA user_version"))

    async def close(self) -> None:
        """Wait for the running write, then close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            if self._writer.dirty:
                await self._writer.rollback()
            await self._writer.conn.close()
        for reader in self._all_readers:
            await reader.conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """The write transaction: commit on normal exit, roll back on any exception."""
        self._check_open()
        async with self._write_lock:
            writer = self._writer
            await writer.begin("BEGIN IMMEDIATE")
            transaction = Transaction(writer.conn, self)
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
            await reader.begin("BEGIN")
            try:
                yield Session(reader.conn, self)
            finally:
                await reader.rollback()

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._reader() as reader:
            return await Session(reader.conn, self).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._reader() as reader:
            return await Session(reader.conn, self).fetch_all(sql, params)

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        async with self._reader() as reader:
            return await Session(reader.conn, self).fetch_value(sql, params)

    async def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``: ``["ok"]`` for a sound file."""
        return [str(row[0]) for row in await self.fetch_all("PRAGMA integrity_check")]

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[_Connection]:
        self._check_open()
        reader = await self._readers.get()
        try:
            yield reader
        finally:
            self._readers.put_nowait(reader)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the database is closed")


async def _connect(
    path: Path, busy_timeout: float, opened: list[aiosqlite.Connection]
) -> aiosqlite.Connection:
    # isolation_level=None: no implicit BEGIN; transactions are explicit above.
    conn = await aiosqlite.connect(path, isolation_level=None)
    opened.append(conn)
    conn.row_factory = sqlite3.Row
    await _pragma(conn, f"busy_timeout = {round(busy_timeout * 1000)}")
    await _pragma(conn, "foreign_keys = ON")
    return conn


async def _pragma(conn: aiosqlite.Connection, pragma: str) -> Any:
    async with conn.execute(f"PRAGMA {pragma}") as cursor:
        row = await cursor.fetchone()
        return None if row is None else row[0]
