"""Versioned schema migrations, applied in order when the database opens.

Theory of operation. Migration N is the module ``vNNN_*.py`` listed in
:data:`MIGRATIONS` at index N-1; it holds a name and a tuple of SQL
statements. The schema version lives in ``PRAGMA user_version`` (in the
file header, so it is changed by the same transaction as the schema), and
``schema_migrations`` keeps a human-readable history of when each version
was applied. At open, each pending migration runs in its own
``BEGIN IMMEDIATE`` transaction together with the version bump: a failure
leaves the database at the previous version, never between two. The
version is read again inside that transaction, so two processes opening the
same file cannot apply a migration twice.

A database whose version is above the newest migration this code knows was
written by a newer mediaserver: opening it is refused with
:class:`~mediaserver.store.errors.SchemaTooNew` rather than running code
against a schema it does not understand.

Statements are executed one by one (not ``executescript``, which would
commit the open transaction first). A shipped migration is never edited;
changes go in a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiosqlite

from mediaserver.store.errors import SchemaTooNew
from mediaserver.store.migrations import (
    v001_initial,
    v002_call_control,
    v003_webhook_hmac,
    v004_callr_cdr,
    v005_audio_files,
    v006_sms,
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, v001_initial.NAME, v001_initial.STATEMENTS),
    Migration(2, v002_call_control.NAME, v002_call_control.STATEMENTS),
    Migration(3, v003_webhook_hmac.NAME, v003_webhook_hmac.STATEMENTS),
    Migration(4, v004_callr_cdr.NAME, v004_callr_cdr.STATEMENTS),
    Migration(5, v005_audio_files.NAME, v005_audio_files.STATEMENTS),
    Migration(6, v006_sms.NAME, v006_sms.STATEMENTS),
)

_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""


def _check_sequence() -> None:
    for index, migration in enumerate(MIGRATIONS, start=1):
        if migration.version != index:
            raise AssertionError(f"migration {migration.name} is numbered {migration.version}")


_check_sequence()


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0


async def apply_migrations(conn: aiosqlite.Connection, path: Path, now: datetime) -> int:
    """Bring the database on ``conn`` (autocommit mode) to the newest version; return it."""
    latest = len(MIGRATIONS)
    current = await _user_version(conn)
    if current > latest:
        raise SchemaTooNew(
            f"{path}: the database schema is version {current}, but this mediaserver "
            f"only knows versions up to {latest}; run a newer mediaserver, or point "
            "storage.database at another file"
        )
    applied_at = round(now.timestamp() * 1000)
    for migration in MIGRATIONS[current:]:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            if await _user_version(conn) >= migration.version:  # another process got here first
                await conn.execute("ROLLBACK")
                continue
            await conn.execute(_HISTORY_TABLE)
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, applied_at),
            )
            # PRAGMA takes no parameters; the version is an int from the table above.
            await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return max(current, latest)
