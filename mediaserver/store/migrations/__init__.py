"""Versioned schema migrations, applied in order when the database opens.

Theory of operation. Migration N is the module ``vNNN_*.py`` listed in
:data:`MIGRATIONS` at index N-1; it holds a name and a tuple of SQL
statements, written for SQLite; on PostgreSQL their column types are
translated (:func:`~mediaserver.store.dialect.postgres_ddl`), or a migration
gives its own PostgreSQL statements (``POSTGRESQL`` in its module) where
the SQL cannot be shared. The version numbers are the same on both. On
SQLite the schema version lives in ``PRAGMA user_version`` (in the file
header, so it is changed by the same transaction as the schema), and
``schema_migrations`` keeps a human-readable history of when each version
was applied; on PostgreSQL that history is the version (its highest
number), and each migration runs under an advisory lock so nodes starting
together apply it once. At open, each pending migration runs in its own
write transaction together with the version bump: a failure
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

from mediaserver.store.db import Link
from mediaserver.store.dialect import Dialect, postgres_ddl
from mediaserver.store.errors import SchemaTooNew
from mediaserver.store.migrations import (
    v001_initial,
    v002_call_control,
    v003_webhook_hmac,
    v004_callr_cdr,
    v005_audio_files,
    v006_sms,
    v007_node,
    v008_webhook_outbox,
    v009_registrar_bindings,
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] | None = None
    """PostgreSQL's own statements, where translating ``statements`` would not do."""

    def statements_for(self, dialect: Dialect) -> tuple[str, ...]:
        if dialect.name == "sqlite":
            return self.statements
        if self.postgresql is not None:
            return self.postgresql
        return tuple(postgres_ddl(statement) for statement in self.statements)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, v001_initial.NAME, v001_initial.STATEMENTS),
    Migration(2, v002_call_control.NAME, v002_call_control.STATEMENTS),
    Migration(3, v003_webhook_hmac.NAME, v003_webhook_hmac.STATEMENTS),
    Migration(4, v004_callr_cdr.NAME, v004_callr_cdr.STATEMENTS),
    Migration(5, v005_audio_files.NAME, v005_audio_files.STATEMENTS),
    Migration(6, v006_sms.NAME, v006_sms.STATEMENTS),
    Migration(7, v007_node.NAME, v007_node.STATEMENTS),
    Migration(8, v008_webhook_outbox.NAME, v008_webhook_outbox.STATEMENTS),
    Migration(9, v009_registrar_bindings.NAME, v009_registrar_bindings.STATEMENTS),
)

_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""
_HISTORY_TABLE_POSTGRESQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)
"""
# Any constant both processes agree on: the advisory lock serialising migrations.
_MIGRATION_LOCK = 0x6D656469  # "medi"


def _check_sequence() -> None:
    for index, migration in enumerate(MIGRATIONS, start=1):
        if migration.version != index:
            raise AssertionError(f"migration {migration.name} is numbered {migration.version}")


_check_sequence()


async def current_version(link: Link, dialect: Dialect) -> int:
    """The schema version of the database behind ``link`` (0 when empty)."""
    if dialect.name == "sqlite":
        row = await link.fetch_one("PRAGMA user_version", ())
        return int(row[0]) if row is not None else 0
    exists = await link.fetch_one(
        "SELECT count(*) FROM pg_tables"
        " WHERE schemaname = current_schema() AND tablename = 'schema_migrations'",
        (),
    )
    if exists is None or not exists[0]:
        return 0
    row = await link.fetch_one("SELECT coalesce(max(version), 0) FROM schema_migrations", ())
    return int(row[0]) if row is not None else 0


async def apply_migrations(link: Link, dialect: Dialect, where: str, now: datetime) -> int:
    """Bring the database on ``link`` (outside any transaction) to the newest version;
    return it. ``where`` names the database in messages."""
    latest = len(MIGRATIONS)
    current = await current_version(link, dialect)
    if current > latest:
        raise SchemaTooNew(
            f"{where}: the database schema is version {current}, but this mediaserver "
            f"only knows versions up to {latest}; run a newer mediaserver, or point "
            "storage.database at another database"
        )
    applied_at = round(now.timestamp() * 1000)
    for migration in MIGRATIONS[current:]:
        await link.begin(dialect.begin_write)
        try:
            if dialect.name == "postgresql":
                await link.fetch_one("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            if await current_version(link, dialect) >= migration.version:  # another got here
                await link.rollback()
                continue
            postgres = dialect.name == "postgresql"
            await link.run(_HISTORY_TABLE_POSTGRESQL if postgres else _HISTORY_TABLE)
            for statement in migration.statements_for(dialect):
                await link.run(statement)
            await link.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, applied_at),
            )
            if not postgres:
                # PRAGMA takes no parameters; the version is an int from the table above.
                await link.run(f"PRAGMA user_version = {int(migration.version)}")
            await link.end("COMMIT")
        except BaseException:
            await link.rollback()
            raise
    return max(current, latest)
