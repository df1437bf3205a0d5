"""Runs of scenarios and their variables (Callr v2 ``/scenarios/{sid}/runs/{runid}``).

Theory of operation. A run is recorded ``running`` when it starts and moves
once to a final status (the runner's ``completed``, ``hangup``, ``failed``,
``cancelled``, or ``interrupted`` when the server died under it, see
:mod:`mediaserver.store.recovery`). Its variables are a JSON object saved at
the end and, if the caller wants them visible sooner, along the way with
:meth:`Runs.save_variables`. Run ids follow the seed, ``PREFIX:XXXXXXXX``:
``api`` for the ``api-initiated`` branch, the branch name otherwise
(``inbound-call:k3j9x0aa``); a caller that already has an id (the call's)
passes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mediaserver.store.db import (
    Database,
    Order,
    Page,
    Row,
    Session,
    Where,
    dump_json,
    from_ms,
    opt_from_ms,
    order_sql,
    to_ms,
)
from mediaserver.store.errors import Conflict, UnknownReference

RunState = Literal["running", "completed", "hangup", "failed", "cancelled", "interrupted"]
FINAL_STATES: frozenset[str] = frozenset(
    {"completed", "hangup", "failed", "cancelled", "interrupted"}
)
RUN_ID_PREFIXES = {"api-initiated": "api"}

_COLUMNS = "id, scenario_id, branch, status, variables, error, started_at, ended_at"


@dataclass(frozen=True)
class RunRecord:
    id: str
    scenario_id: str
    branch: str
    status: RunState
    variables: dict[str, Any]
    error: str | None
    started_at: datetime
    ended_at: datetime | None


class Runs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        scenario_id: str,
        branch: str,
        *,
        variables: dict[str, Any] | None = None,
        runid: str | None = None,
        started_at: datetime | None = None,
    ) -> RunRecord:
        """A ``running`` run; a fresh id unless ``runid`` is given.

        :class:`UnknownReference` on ``scenario_id``; :class:`Conflict` on
        ``runid`` when it is taken.
        """
        encoded = dump_json(variables or {})
        started = to_ms(started_at or self.db.now())
        async with self.db.transaction() as tx:
            if await tx.fetch_one("SELECT 1 FROM scenarios WHERE id = ?", (scenario_id,)) is None:
                raise UnknownReference("scenario_id", f"no scenario {scenario_id!r}")
            if runid is None:
                runid = await tx.unique_id("runs", RUN_ID_PREFIXES.get(branch, branch) + ":")
            elif await tx.fetch_one("SELECT 1 FROM runs WHERE id = ?", (runid,)) is not None:
                raise Conflict("runid", f"a run {runid!r} already exists")
            await tx.execute(
                f"INSERT INTO runs ({_COLUMNS}, node)"
                " VALUES (?, ?, ?, 'running', ?, NULL, ?, NULL, ?)",
                (runid, scenario_id, branch, encoded, started, self.db.node),
            )
            return await _load(tx, runid)

    async def get(self, runid: str, scenario_id: str | None = None) -> RunRecord | None:
        """The run, or None; with ``scenario_id``, only if it is a run of that scenario."""
        where = Where()
        where.equal("id", runid)
        where.equal("scenario_id", scenario_id)
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM runs{where.sql}", where.params)
        return None if row is None else _run(row)

    async def save_variables(self, runid: str, variables: dict[str, Any]) -> bool:
        """Replace the variables of a running run; False if it is unknown or over."""
        encoded = dump_json(variables)
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE runs SET variables = ? WHERE id = ? AND status = 'running'",
                (encoded, runid),
            )
            return changed > 0

    async def finish(
        self,
        runid: str,
        status: RunState,
        *,
        variables: dict[str, Any] | None = None,
        error: str | None = None,
        ended_at: datetime | None = None,
    ) -> RunRecord | None:
        """Move a running run to its final ``status``; None if unknown or already over.

        ``variables`` None keeps the last saved ones.
        """
        if status not in FINAL_STATES:
            raise ValueError(f"a run ends as one of {sorted(FINAL_STATES)}, not {status!r}")
        encoded = None if variables is None else dump_json(variables)
        ended = to_ms(ended_at or self.db.now())
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE runs SET status = ?, variables = coalesce(?, variables), error = ?,"
                " ended_at = ? WHERE id = ? AND status = 'running'",
                (status, encoded, error, ended, runid),
            )
            return await _load(tx, runid) if changed else None

    async def search(
        self,
        *,
        scenario_id: str | None = None,
        status: RunState | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[RunRecord]:
        """Runs by start time (``since``/``until`` inclusive), newest first by default."""
        where = Where()
        where.equal("scenario_id", scenario_id)
        where.equal("status", status)
        where.between("started_at", since, until)
        direction = order_sql(order)
        async with self.db.snapshot() as snap:
            return await snap.page(
                f"SELECT {_COLUMNS} FROM runs",
                "SELECT count(*) FROM runs",
                where,
                f"started_at {direction}, id {direction}",
                limit,
                offset,
                _run,
            )


async def _load(session: Session, runid: str) -> RunRecord:
    sql = f"SELECT {_COLUMNS} FROM runs WHERE id = ?"
    return _run(await session.fetch_written(sql, (runid,), f"run {runid}"))


def _run(row: Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        scenario_id=row["scenario_id"],
        branch=row["branch"],
        status=row["status"],
        variables=json.loads(row["variables"]),
        error=row["error"],
        started_at=from_ms(row["started_at"]),
        ended_at=opt_from_ms(row["ended_at"]),
    )
