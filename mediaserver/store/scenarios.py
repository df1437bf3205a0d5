"""Scenarios and the numbers attached to them (Callr v2 ``/scenarios``).

Theory of operation. A scenario is a name and its YAML source; ``origin``
says where it came from: ``file`` for the files of ``configs/scenarios/``
(synchronised at start-up by :meth:`Scenarios.sync_file`, the file winning
when its text changed) or ``api`` for those created through the HTTP API.
Names are unique across both origins.

A number (or SIP user) is attached to at most one scenario; attaching it
elsewhere moves it, and :meth:`Numbers.attach` says where it came from.
Deleting a scenario detaches its numbers and deletes its runs (foreign keys
with ``ON DELETE CASCADE``); call records keep the scenario's id and name.
The router reads :meth:`Numbers.all` at start-up and applies each
attach/detach as it is made, so routing changes live.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from mediaserver.store.db import (
    Database,
    Order,
    Page,
    Row,
    Session,
    Transaction,
    Where,
    from_ms,
    like_pattern,
    order_sql,
    to_ms,
)
from mediaserver.store.errors import Conflict, UnknownReference

Origin = Literal["file", "api"]
ScenarioSort = Literal["name", "created", "updated"]

CATALOG_CHANNEL = "mediaserver_catalog"
"""Notified by every change of a scenario or a number (nodes sharing a database reload)."""

_SORT_COLUMNS = {"name": "name", "created": "created_at", "updated": "updated_at"}
_COLUMNS = "id, name, source, origin, created_at, updated_at"


@dataclass(frozen=True)
class Scenario:
    id: str
    name: str
    source: str
    """The YAML text, as written."""
    origin: Origin
    created_at: datetime
    updated_at: datetime
    numbers: tuple[str, ...]
    """Numbers attached, sorted."""


@dataclass(frozen=True)
class NumberAttachment:
    number: str
    scenario_id: str
    scenario_name: str
    attached_at: datetime


class Scenarios:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, source: str, origin: Origin = "api") -> Scenario:
        """A new scenario; :class:`Conflict` on ``name`` when the name is taken."""
        async with self.db.transaction() as tx:
            await _check_name_free(tx, name)
            sid = await tx.unique_id("scenarios")
            now = to_ms(self.db.now())
            inserted = await tx.execute(
                f"INSERT INTO scenarios ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (sid, name, source, origin, now, now),
            )
            if not inserted:  # another node sharing the database took it since the check
                raise Conflict("name", f"a scenario named {name!r} already exists")
            await tx.notify(CATALOG_CHANNEL)
            return await _load(tx, sid)

    async def get(self, sid: str) -> Scenario | None:
        async with self.db.snapshot() as snap:
            return await _load_if(snap, "id", sid)

    async def get_by_name(self, name: str) -> Scenario | None:
        async with self.db.snapshot() as snap:
            return await _load_if(snap, "name", name)

    async def update(
        self, sid: str, *, name: str | None = None, source: str | None = None
    ) -> Scenario | None:
        """Change the name and/or source (None: unchanged); None if ``sid`` is unknown."""
        async with self.db.transaction() as tx:
            if await tx.fetch_one("SELECT 1 FROM scenarios WHERE id = ?", (sid,)) is None:
                return None
            if name is not None:
                await _check_name_free(tx, name, sid)
            await tx.execute(
                "UPDATE scenarios SET name = coalesce(?, name), source = coalesce(?, source),"
                " updated_at = ? WHERE id = ?",
                (name, source, to_ms(self.db.now()), sid),
            )
            await tx.notify(CATALOG_CHANNEL)
            return await _load(tx, sid)

    async def delete(self, sid: str) -> bool:
        """Delete the scenario, its number attachments and its runs."""
        async with self.db.transaction() as tx:
            await tx.notify(CATALOG_CHANNEL)
            return await tx.execute("DELETE FROM scenarios WHERE id = ?", (sid,)) > 0

    async def sync_file(self, name: str, source: str) -> Scenario:
        """The scenario of file ``name`` (its stem), created or brought up to ``source``.

        :class:`Conflict` if an API-created scenario already has the name.
        """
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT id, origin, source FROM scenarios WHERE name = ?", (name,)
            )
            if row is None:
                sid = await tx.unique_id("scenarios")
                now = to_ms(self.db.now())
                await tx.execute(
                    f"INSERT INTO scenarios ({_COLUMNS}) VALUES (?, ?, ?, 'file', ?, ?)",
                    (sid, name, source, now, now),
                )
                return await _load(tx, sid)
            if row["origin"] != "file":
                raise Conflict(
                    "name",
                    f"scenario file {name!r}: a scenario created through the API has that "
                    "name; rename the file or the API scenario",
                )
            if row["source"] != source:
                await tx.execute(
                    "UPDATE scenarios SET source = ?, updated_at = ? WHERE id = ?",
                    (source, to_ms(self.db.now()), row["id"]),
                )
            return await _load(tx, str(row["id"]))

    async def search(
        self,
        *,
        name: str | None = None,
        origin: Origin | None = None,
        sort: ScenarioSort = "updated",
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[Scenario]:
        """Scenarios whose name contains ``name`` (case-insensitive), sorted and paged."""
        where = Where()
        if name:
            where.add("lower(name) LIKE lower(?) ESCAPE '\\'", like_pattern(name))
        where.equal("origin", origin)
        column = _SORT_COLUMNS[sort]
        direction = order_sql(order)
        async with self.db.snapshot() as snap:
            page = await snap.page(
                f"SELECT {_COLUMNS} FROM scenarios",
                "SELECT count(*) FROM scenarios",
                where,
                f"{column} {direction}, id {direction}",
                limit,
                offset,
                lambda row: _scenario(row, ()),
            )
            numbers = await _numbers_of(snap, [scenario.id for scenario in page.hits])
        hits = [replace(s, numbers=numbers.get(s.id, ())) for s in page.hits]
        return Page(hits, page.total, page.offset, page.limit)


class Numbers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def attach(self, number: str, scenario_id: str) -> str | None:
        """Route ``number`` to the scenario; the scenario it was attached to before, if any.

        :class:`UnknownReference` on ``scenario_id`` for an unknown scenario.
        """
        async with self.db.transaction() as tx:
            if await tx.fetch_one("SELECT 1 FROM scenarios WHERE id = ?", (scenario_id,)) is None:
                raise UnknownReference("scenario_id", f"no scenario {scenario_id!r}")
            previous = await tx.fetch_value(
                "SELECT scenario_id FROM numbers WHERE number = ?", (number,)
            )
            if previous == scenario_id:
                return scenario_id  # already there: keep the original attachment time
            await tx.execute(
                "INSERT INTO numbers (number, scenario_id, attached_at) VALUES (?, ?, ?)"
                " ON CONFLICT (number) DO UPDATE SET"
                " scenario_id = excluded.scenario_id, attached_at = excluded.attached_at",
                (number, scenario_id, to_ms(self.db.now())),
            )
            await tx.notify(CATALOG_CHANNEL)
            return None if previous is None else str(previous)

    async def detach(self, number: str, scenario_id: str | None = None) -> bool:
        """Detach ``number`` (only from ``scenario_id`` when given); False if it was not."""
        where = Where()
        where.equal("number", number)
        where.equal("scenario_id", scenario_id)
        async with self.db.transaction() as tx:
            await tx.notify(CATALOG_CHANNEL)
            return await tx.execute(f"DELETE FROM numbers{where.sql}", where.params) > 0

    async def scenario_for(self, number: str) -> str | None:
        """The id of the scenario ``number`` is attached to."""
        value = await self.db.fetch_value(
            "SELECT scenario_id FROM numbers WHERE number = ?", (number,)
        )
        return None if value is None else str(value)

    async def of_scenario(self, scenario_id: str) -> list[str]:
        rows = await self.db.fetch_all(
            "SELECT number FROM numbers WHERE scenario_id = ? ORDER BY number", (scenario_id,)
        )
        return [str(row[0]) for row in rows]

    async def all(self) -> list[NumberAttachment]:
        """Every attachment, with the scenario's name: the routing table."""
        rows = await self.db.fetch_all(
            "SELECT n.number, n.scenario_id, s.name, n.attached_at"
            " FROM numbers n JOIN scenarios s ON s.id = n.scenario_id ORDER BY n.number"
        )
        return [NumberAttachment(str(r[0]), str(r[1]), str(r[2]), from_ms(int(r[3]))) for r in rows]


async def _check_name_free(tx: Transaction, name: str, sid: str | None = None) -> None:
    row = await tx.fetch_one("SELECT id FROM scenarios WHERE name = ?", (name,))
    if row is not None and row["id"] != sid:
        raise Conflict("name", f"a scenario named {name!r} already exists")


async def _load(session: Session, sid: str) -> Scenario:
    scenario = await _load_if(session, "id", sid)
    if scenario is None:
        raise LookupError(f"scenario {sid} vanished inside its own transaction")
    return scenario


async def _load_if(session: Session, column: Literal["id", "name"], value: str) -> Scenario | None:
    row = await session.fetch_one(f"SELECT {_COLUMNS} FROM scenarios WHERE {column} = ?", (value,))
    if row is None:
        return None
    numbers = await _numbers_of(session, [str(row["id"])])
    return _scenario(row, numbers.get(str(row["id"]), ()))


async def _numbers_of(session: Session, ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = await session.fetch_all(
        f"SELECT scenario_id, number FROM numbers WHERE scenario_id IN ({marks}) ORDER BY number",
        ids,
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(str(row[0]), []).append(str(row[1]))
    return {sid: tuple(numbers) for sid, numbers in found.items()}


def _scenario(row: Row, numbers: tuple[str, ...]) -> Scenario:
    return Scenario(
        id=row["id"],
        name=row["name"],
        source=row["source"],
        origin=row["origin"],
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
        numbers=numbers,
    )
