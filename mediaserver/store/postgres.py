"""The PostgreSQL engine: a server several mediaserver nodes share, through asyncpg.

Theory of operation. :func:`open_postgres` connects one writer and
``readers`` read-only connections (``default_transaction_read_only``) to the
database of a ``postgresql://user:password@host:port/database`` URL, applies
the pending migrations (under an advisory lock, so nodes starting together
apply each migration once) and hands them to the engine-neutral
:class:`~mediaserver.store.db.Database`. Queries arrive written with ``?``
placeholders (:mod:`mediaserver.store.dialect`) and are numbered here.
asyncpg rows (``Record``) read by position and by name, as ``sqlite3.Row``
does, so the repositories parse both alike.

A server that cannot be reached, a refused password, an unknown database or
role, or a URL asyncpg cannot read become one :class:`StoreError` naming the
URL (password hidden) and the likely fix.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from mediaserver.log import get_logger
from mediaserver.store import migrations
from mediaserver.store.db import Database, Link, Notifications, Params, Row
from mediaserver.store.dialect import POSTGRESQL, numbered_placeholders
from mediaserver.store.errors import StoreError

CONNECT_TIMEOUT = 10.0
RELISTEN_DELAY = 1.0

log = get_logger("store")


Connector = Callable[[], Awaitable[asyncpg.Connection]]


class PostgresLink(Link):
    """One connection; replaced by a new one (``connect``) when the server closed it
    between two transactions (a server restart, a proxy's idle timeout, an
    administrator's ``pg_terminate_backend``). Inside a transaction its loss is that
    transaction's error: the server has rolled it back."""

    def __init__(self, conn: asyncpg.Connection, connect: Connector | None = None) -> None:
        super().__init__()
        self.conn = conn
        self._connect = connect

    async def _live(self) -> asyncpg.Connection:
        if self.conn.is_closed() and not self.dirty and self._connect is not None:
            log.warning("the PostgreSQL connection was closed; connecting again")
            self.conn = await self._connect()
        return self.conn

    async def begin(self, statement: str) -> None:
        if self.dirty and self.conn.is_closed():
            self.dirty = False  # the server ended that transaction with the connection
        if not self.dirty:
            await self._live()
        await super().begin(statement)

    async def fetch_one(self, sql: str, params: Params) -> Row | None:
        conn = await self._live()
        row: Row | None = await conn.fetchrow(numbered_placeholders(sql), *_values(params))
        return row

    async def fetch_all(self, sql: str, params: Params) -> list[Row]:
        conn = await self._live()
        return list(await conn.fetch(numbered_placeholders(sql), *_values(params)))

    async def execute(self, sql: str, params: Params) -> int:
        conn = await self._live()
        status: str = await conn.execute(numbered_placeholders(sql), *_values(params))
        return changed_rows(status)

    async def run(self, statement: str) -> None:
        await self.conn.execute(statement)

    async def rollback(self) -> None:
        if not self.conn.is_closed():
            # Outside a transaction PostgreSQL only warns, so no error to tell apart.
            await self.conn.execute("ROLLBACK")
        self.dirty = False

    async def close(self) -> None:
        await self.conn.close()


class PostgresNotifications(Notifications):
    """One more connection, opened at the first :meth:`listen`, that only LISTENs.

    When the server closes it, a new one is opened (retrying every
    :data:`RELISTEN_DELAY` seconds) and every callback is called once: a change
    may have been committed while nobody listened.
    """

    def __init__(self, connect: Connector) -> None:
        self._connect = connect
        self._conn: asyncpg.Connection | None = None
        self._callbacks: dict[str, list[Callable[[], None]]] = {}
        self._relisten: asyncio.Task[None] | None = None
        self._closed = False

    async def listen(self, channel: str, callback: Callable[[], None]) -> None:
        self._callbacks.setdefault(channel, []).append(callback)
        if self._conn is None:
            self._conn = await self._open()
        else:
            await self._conn.add_listener(channel, self._heard)

    def _heard(self, _conn: object, _pid: int, channel: str, _payload: str) -> None:
        for callback in self._callbacks.get(channel, []):
            callback()

    async def _open(self) -> asyncpg.Connection:
        conn = await self._connect()
        for channel in self._callbacks:
            await conn.add_listener(channel, self._heard)
        conn.add_termination_listener(self._lost)
        return conn

    def _lost(self, _conn: object) -> None:
        if self._closed or self._relisten is not None:
            return
        log.warning("the PostgreSQL LISTEN connection was closed; connecting again")
        self._relisten = asyncio.get_running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        try:
            while not self._closed:
                try:
                    self._conn = await self._open()
                except StoreError as exc:
                    log.warning("cannot LISTEN again yet", error=str(exc))
                    await asyncio.sleep(RELISTEN_DELAY)
                    continue
                for callbacks in self._callbacks.values():
                    for callback in callbacks:
                        callback()
                return
        finally:
            self._relisten = None

    async def close(self) -> None:
        self._closed = True
        if self._relisten is not None:
            self._relisten.cancel()
            await asyncio.gather(self._relisten, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _values(params: Params) -> list[Any]:
    """``params`` as PostgreSQL takes them: its text cannot hold NUL (SQLite's can), and a
    peer's header is not worth losing a record over, so NUL becomes U+FFFD."""
    return [
        value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value
        for value in params
    ]


def changed_rows(status: str) -> int:
    """The row count of a command tag: ``UPDATE 3`` is 3, ``INSERT 0 1`` is 1."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def open_postgres(
    url: str, readers: int, busy_timeout: float, clock: Callable[[], datetime]
) -> Database:
    """Connect to ``url``, migrate, and open the pool; see :meth:`Database.open`."""
    where = redacted(url)
    settings = {
        "application_name": "mediaserver",
        # Waiting on another node's row lock gives up after this, like SQLite's busy_timeout.
        "lock_timeout": str(round(busy_timeout * 1000)),
    }
    opened: list[asyncpg.Connection] = []
    try:
        writer = await _connect(url, where, settings, opened)
        link = PostgresLink(writer, lambda: _connect(url, where, settings, []))
        await migrations.apply_migrations(link, POSTGRESQL, where, clock())
        reading = {**settings, "default_transaction_read_only": "on"}
        pool: list[Link] = []
        for _ in range(readers):
            conn = await _connect(url, where, reading, opened)
            pool.append(PostgresLink(conn, lambda: _connect(url, where, reading, [])))
    except BaseException:
        for conn in opened:
            conn.terminate()
        raise
    notifications = PostgresNotifications(lambda: _connect(url, where, settings, []))
    return Database(where, POSTGRESQL, link, pool, clock, notifications=notifications)


async def _connect(
    url: str, where: str, settings: dict[str, str], opened: list[asyncpg.Connection]
) -> asyncpg.Connection:
    try:
        conn: asyncpg.Connection = await asyncpg.connect(
            url, timeout=CONNECT_TIMEOUT, server_settings=settings
        )
    except asyncpg.InvalidPasswordError as exc:
        raise StoreError(f"{where}: the server refused the password ({exc})") from exc
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise StoreError(
            f"{where}: the server refused the connection ({exc}); check the user name "
            "and the server's pg_hba.conf"
        ) from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise StoreError(
            f"{where}: {exc}; create it first (createdb) or name an existing database"
        ) from exc
    except (TimeoutError, OSError, socket.gaierror) as exc:
        reason = str(exc) or type(exc).__name__
        raise StoreError(
            f"{where}: cannot reach the PostgreSQL server ({reason}); is it running and "
            "listening on that host and port?"
        ) from exc
    except (ValueError, asyncpg.ClientConfigurationError) as exc:
        raise StoreError(f"{where}: not a usable PostgreSQL URL ({exc})") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"{where}: the server refused the connection ({exc})") from exc
    opened.append(conn)
    return conn
