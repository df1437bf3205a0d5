"""The SQLite engine: a file, one writer connection, read-only readers, all through aiosqlite.

aiosqlite runs every connection in its own thread, so neither reads nor
writes block the event loop; it runs statements in submission order, so a
rollback after a cancelled transaction lands after whatever the cancelled
task had queued. The journal and durability settings are explained in
:mod:`mediaserver.store.db`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from mediaserver.store import migrations
from mediaserver.store.db import Database, Durability, Link, Params, Row
from mediaserver.store.dialect import SQLITE
from mediaserver.store.errors import StoreError

_WAL_SIZE_LIMIT = 64 * 1024 * 1024


class SqliteLink(Link):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        super().__init__()
        self.conn = conn

    async def fetch_one(self, sql: str, params: Params) -> Row | None:
        async with self.conn.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def fetch_all(self, sql: str, params: Params) -> list[Row]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Params) -> int:
        async with self.conn.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    async def run(self, statement: str) -> None:
        await self.conn.execute(statement)

    async def rollback(self) -> None:
        try:
            await self.conn.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            if "no transaction is active" not in str(error):
                raise
        self.dirty = False

    async def close(self) -> None:
        await self.conn.close()


async def open_sqlite(
    path: Path,
    readers: int,
    durability: Durability,
    busy_timeout: float,
    clock: Callable[[], datetime],
) -> Database:
    """Open (creating if needed) the file at ``path`` and migrate it; see :meth:`Database.open`."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        raise ValueError("the store needs a file path: readers are separate connections")
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
        link = SqliteLink(writer)
        await migrations.apply_migrations(link, SQLITE, str(path), clock())
        pool: list[Link] = []
        for _ in range(readers):
            reader = await _connect(path, busy_timeout, opened)
            await _pragma(reader, "query_only = ON")
            pool.append(SqliteLink(reader))
    except BaseException:
        for conn in opened:
            await conn.close()
        raise
    return Database(str(path), SQLITE, link, pool, clock, path=path)


async def _connect(
    path: Path, busy_timeout: float, opened: list[aiosqlite.Connection]
) -> aiosqlite.Connection:
    # isolation_level=None: no implicit BEGIN; transactions are explicit in Database.
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
