"""The database core: opening, migrations, transactions, concurrency, ids, paging."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.store import Store, migrations
from mediaserver.store import db as dbmodule
from mediaserver.store.db import (
    Database,
    Page,
    Where,
    from_ms,
    like_pattern,
    new_id,
    to_ms,
)
from mediaserver.store.errors import SchemaTooNew, StoreError
from mediaserver.store.migrations import MIGRATIONS, Migration
from tests.unit.conftest import integrity_error

T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)
TABLES = {
    "scenarios",
    "numbers",
    "runs",
    "calls",
    "recordings",
    "webhooks",
    "webhook_deliveries",
    "call_control_applications",
    "call_events",
    "schema_migrations",
}


@pytest.fixture
async def db(database_target: str | Path) -> AsyncIterator[Database]:
    database = await Database.open(database_target)
    yield database
    await database.close()


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, to look at the file behind the store's back."""
    return sqlite3.connect(path)


# -- ids and time ------------------------------------------------------------------------


def test_new_ids_are_8_characters_of_a_z_0_9() -> None:
    ids = {new_id() for _ in range(2000)}
    assert all(re.fullmatch(r"[a-z0-9]{8}", i) for i in ids)
    assert len(ids) == 2000  # 36**8 values: a repeat here would mean a broken generator


async def test_unique_id_skips_ids_already_taken(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db)
    first = await store.scenarios.create("one", "x")
    offered = iter([first.id, first.id, "zzzzzzzz"])
    monkeypatch.setattr(dbmodule, "new_id", lambda: next(offered))
    second = await store.scenarios.create("two", "x")
    assert second.id == "zzzzzzzz"


async def test_unique_id_gives_up_when_every_try_collides(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db)
    taken = await store.scenarios.create("one", "x")
    monkeypatch.setattr(dbmodule, "new_id", lambda: taken.id)
    with pytest.raises(StoreError, match="no free id in scenarios"):
        await store.scenarios.create("two", "x")
    assert (await store.scenarios.search()).total == 1


async def test_unique_id_refuses_a_table_name_that_is_not_an_identifier(db: Database) -> None:
    async with db.transaction() as tx:
        with pytest.raises(ValueError, match="not a table name"):
            await tx.unique_id("calls; DROP TABLE calls")


@given(st.integers(min_value=0, max_value=2**42))
def test_milliseconds_round_trip(ms: int) -> None:
    assert to_ms(from_ms(ms)) == ms


def test_times_convert_to_utc_milliseconds_and_naive_ones_are_refused() -> None:
    paris = timezone(timedelta(hours=2))
    assert to_ms(T0) == to_ms(T0.astimezone(paris)) == 1713980548000
    assert from_ms(1713980548000) == T0
    with pytest.raises(ValueError, match="naive datetime"):
        to_ms(datetime(2024, 4, 24, 17, 42, 28))


def test_like_pattern_makes_wildcards_literal() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_where_skips_filters_not_given() -> None:
    where = Where()
    where.equal("a", None)
    where.between("t", None, None)
    assert (where.sql, where.params) == ("", [])
    where.equal("a", 0)
    where.between("t", T0, None)
    assert where.sql == " WHERE a = ? AND t >= ?"
    assert where.params == [0, to_ms(T0)]


def test_page_says_whether_more_follow() -> None:
    assert Page([1, 2], total=5, offset=0, limit=2).has_more
    assert not Page([5], total=5, offset=4, limit=2).has_more
    assert not Page([], total=5, offset=9, limit=2).has_more


# -- opening and migrations ---------------------------------------------------------------


async def test_migrations_build_schema_v1_on_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "store.db"  # parent directories are created
    database = await Database.open(path)
    try:
        assert await database.schema_version() == len(MIGRATIONS) == database.latest_version
        assert await database.integrity_check() == ["ok"]
    finally:
        await database.close()
    with raw(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables >= TABLES
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"calls_started", "calls_number", "recordings_created", "deliveries_at"} <= indexes
        history = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert history[:2] == [(1, "initial"), (2, "call_control")]
        assert history == [(m.version, m.name) for m in MIGRATIONS]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_is_idempotent_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await Store.open(path)
    scenario = await store.scenarios.create("ivr", "branches: {}")
    await store.close()
    for _ in range(2):
        store = await Store.open(path)
        assert await store.scenarios.get(scenario.id) == scenario
        assert await store.db.schema_version() == len(MIGRATIONS)
        await store.close()
    with raw(path) as conn:
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        assert count == len(MIGRATIONS)


async def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    await (await Database.open(path)).close()
    with raw(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew) as refused:
        await Database.open(path)
    message = str(refused.value)
    assert str(path) in message
    assert "version 99" in message
    assert f"up to {len(MIGRATIONS)}" in message
    assert "newer mediaserver" in message
    with raw(path) as conn:  # untouched
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99


async def test_pending_migrations_apply_in_order_on_an_existing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    store = await Store.open(path)
    kept = await store.scenarios.create("kept", "x")
    await store.close()
    n = len(MIGRATIONS)
    v2 = Migration(n + 1, "notes", ("CREATE TABLE notes (id TEXT PRIMARY KEY)",))
    v3 = Migration(n + 2, "notes_text", ("ALTER TABLE notes ADD COLUMN body TEXT",))
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, v2, v3))
    store = await Store.open(path)
    try:
        assert await store.db.schema_version() == n + 2
        assert await store.scenarios.get(kept.id) == kept
        async with store.db.transaction() as tx:
            await tx.execute("INSERT INTO notes (id, body) VALUES ('n', 'b')")
        rows = await store.db.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, n + 3))
    finally:
        await store.close()


async def test_a_failing_migration_leaves_the_previous_version_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    await (await Database.open(path)).close()
    broken = Migration(
        len(MIGRATIONS) + 1,
        "broken",
        ("CREATE TABLE half (id TEXT)", "INSERT INTO nowhere VALUES (1)"),
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        await Database.open(path)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "half" not in tables
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        assert count == len(MIGRATIONS)


@pytest.mark.parametrize(("durability", "level"), [("normal", 1), ("full", 2)])
async def test_connection_settings(tmp_path: Path, durability: str, level: int) -> None:
    database = await Database.open(
        tmp_path / "store.db",
        durability=durability,  # type: ignore[arg-type]
        busy_timeout=2.5,
    )
    try:
        async with database.transaction() as tx:
            assert await tx.fetch_value("PRAGMA synchronous") == level
            assert await tx.fetch_value("PRAGMA foreign_keys") == 1
            assert await tx.fetch_value("PRAGMA busy_timeout") == 2500
            assert await tx.fetch_value("PRAGMA journal_mode") == "wal"
        assert await database.fetch_value("PRAGMA foreign_keys") == 1
        assert await database.fetch_value("PRAGMA query_only") == 1
    finally:
        await database.close()


async def test_bad_open_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a file path"):
        await Database.open(":memory:")
    with pytest.raises(ValueError, match="reader"):
        await Database.open(tmp_path / "a.db", readers=0)
    with pytest.raises(ValueError, match="durability"):
        await Database.open(tmp_path / "a.db", durability="off")  # type: ignore[arg-type]


async def test_close_is_idempotent_and_a_closed_database_refuses_work(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "store.db")
    await database.close()
    await database.close()
    with pytest.raises(StoreError, match="closed"):
        await database.fetch_value("SELECT 1")
    with pytest.raises(StoreError, match="closed"):
        async with database.transaction():
            pass


# -- transactions --------------------------------------------------------------------------


async def test_an_exception_rolls_the_whole_transaction_back(db: Database) -> None:
    store = Store(db)
    scenario = await store.scenarios.create("ivr", "x")
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as tx:
            await tx.execute("UPDATE scenarios SET source = 'changed'")
            await tx.execute(
                "INSERT INTO numbers (number, scenario_id, attached_at) VALUES ('+331', ?, 0)",
                (scenario.id,),
            )
            raise RuntimeError("boom")
    assert await store.scenarios.get(scenario.id) == scenario
    assert await store.numbers.all() == []
    async with db.transaction() as tx:  # the writer is usable again
        assert await tx.execute("UPDATE scenarios SET source = 'y'") == 1


async def test_a_failing_statement_rolls_back_the_statements_before_it(
    db: Database, engine: str
) -> None:
    with pytest.raises(integrity_error(engine)):
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhooks (id, url, secret, created_at, updated_at)"
                " VALUES ('w1', 'http://a', NULL, 0, 0)"
            )
            await tx.execute(
                "INSERT INTO numbers (number, scenario_id, attached_at) VALUES ('1', 'nope', 0)"
            )  # foreign key: no such scenario
    assert await db.fetch_value("SELECT count(*) FROM webhooks") == 0


async def test_cancelling_a_task_inside_a_transaction_rolls_it_back(db: Database) -> None:
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhooks (id, url, created_at, updated_at) VALUES ('w', 'u', 0, 0)"
            )
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.fetch_value("SELECT count(*) FROM webhooks") == 0
    await Store(db).webhooks.create("http://after")
    assert await db.fetch_value("SELECT count(*) FROM webhooks") == 1


async def test_cancellation_at_any_point_never_wedges_the_writer(db: Database) -> None:
    store = Store(db)
    for steps in range(12):
        task = asyncio.create_task(store.scenarios.create(f"s{steps}", "x"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        created = None
        with contextlib.suppress(asyncio.CancelledError):
            created = await task
        after = await store.scenarios.create(f"after{steps}", "x")  # never "within a transaction"
        assert after.name == f"after{steps}"
        found = await store.scenarios.get_by_name(f"s{steps}")
        if created is not None:
            assert found == created
    assert await db.integrity_check() == ["ok"]


async def test_concurrent_transactions_are_serialised(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        await tx.execute("INSERT INTO counter VALUES (0)")

    async def increment() -> None:
        async with db.transaction() as tx:
            n = await tx.fetch_value("SELECT n FROM counter")
            await asyncio.sleep(0)  # another task would interleave here without the lock
            await tx.execute("UPDATE counter SET n = ?", (n + 1,))

    await asyncio.gather(*(increment() for _ in range(100)))
    assert await db.fetch_value("SELECT n FROM counter") == 100


async def test_many_concurrent_inserts_each_get_their_own_id(db: Database) -> None:
    store = Store(db)
    created = await asyncio.gather(*(store.webhooks.create(f"http://h/{i}") for i in range(200)))
    assert len({w.id for w in created}) == 200
    assert (await store.webhooks.search(limit=0)).total == 200


async def test_reads_are_not_blocked_by_an_open_write_and_do_not_see_it(db: Database) -> None:
    store = Store(db)
    before = await store.webhooks.create("http://before")
    holding = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE webhooks SET url = 'http://during'")
            holding.set()
            await release.wait()

    task = asyncio.create_task(slow_writer())
    await holding.wait()
    seen = await asyncio.wait_for(store.webhooks.get(before.id), timeout=2)
    assert seen is not None
    assert seen.url == "http://before"
    release.set()
    await task
    after = await store.webhooks.get(before.id)
    assert after is not None
    assert after.url == "http://during"


async def test_a_snapshot_sees_one_state_across_queries(db: Database) -> None:
    store = Store(db)
    await store.webhooks.create("http://one")
    async with db.snapshot() as snap:
        first = await snap.fetch_value("SELECT count(*) FROM webhooks")
        await store.webhooks.create("http://two")  # committed by the writer meanwhile
        second = await snap.fetch_value("SELECT count(*) FROM webhooks")
    assert first == second == 1
    assert await db.fetch_value("SELECT count(*) FROM webhooks") == 2


async def test_reader_connections_cannot_write(db: Database, engine: str) -> None:
    refused: type[Exception] = sqlite3.OperationalError
    if engine == "postgresql":
        refused = asyncpg.ReadOnlySQLTransactionError
    with pytest.raises(refused, match=r"readonly|read-only"):
        await db.fetch_all("DELETE FROM webhooks")


async def test_paging_arguments_are_checked(db: Database) -> None:
    store = Store(db)
    with pytest.raises(ValueError, match="limit"):
        await store.webhooks.search(limit=-1)
    with pytest.raises(ValueError, match="offset"):
        await store.webhooks.search(offset=-1)
    with pytest.raises(ValueError, match="order"):
        await store.webhooks.search(order="sideways")  # type: ignore[arg-type]
