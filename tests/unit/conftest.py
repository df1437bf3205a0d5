"""Fixtures of the unit tests: the storage engine every store test runs on.

``database_target`` is parametrised over both engines: a file in the test's
folder for SQLite, a fresh database on one throw-away PostgreSQL cluster for
the session (:mod:`tests.support.postgres`, started on first use) for PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from mediaserver.store import Store
from tests.support.hand_clock import HandClock
from tests.support.postgres import PostgresCluster

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_target(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """Where a test's store lives: an SQLite file, or a fresh PostgreSQL database's URL."""
    if engine == "sqlite":
        return tmp_path / "store.db"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()


def integrity_error(engine: str) -> type[Exception]:
    """What the engine raises when a constraint (CHECK, foreign key, unique) refuses a row."""
    if engine == "sqlite":
        return sqlite3.IntegrityError
    return asyncpg.IntegrityConstraintViolationError


@pytest.fixture
def clock() -> HandClock:
    """A clock the test moves by hand (tests/support/hand_clock.py)."""
    return HandClock()


@pytest.fixture
async def nodes(
    database_target: str | Path, clock: HandClock
) -> AsyncIterator[tuple[Store, Store]]:
    """Two nodes on one database (on SQLite: two processes opening one file)."""
    alpha = await Store.open(database_target, clock=clock, node="alpha")
    beta = await Store.open(database_target, clock=clock, node="beta")
    yield alpha, beta
    await beta.close()
    await alpha.close()
