"""Crash recovery at start-up: what was in flight when the server died.

Theory of operation. Nothing outlives the process that ran it: a call,
a run or a recording still marked ``live``/``running``/``recording`` when
the server starts belonged to a server that was killed (SIGKILL, power cut,
OOM). :func:`mark_interrupted_calls` runs once at start-up, before the
server accepts calls, and in one transaction marks them all
``interrupted``: all of them in an SQLite file (one server's), only this
node's (``node.name``, see migration v007) in a PostgreSQL database several
nodes share. A call's ``ended_at`` is the recovery time, so its duration
is an upper bound (when exactly the old process died is not known); its
hangup cause and source, when not already set, become ``interrupted`` and
``server``. Recordings keep their file, possibly truncated: the server then
repairs the file (:func:`~mediaserver.media.recorder.repair_recordings`) and
writes the duration and size it holds into the index
(:meth:`~mediaserver.store.recordings.Recordings.measured`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mediaserver.store.db import Database, to_ms

INTERRUPTED_ERROR = "the server stopped before the run finished"


@dataclass(frozen=True)
class Recovery:
    """What start-up found in flight, by id."""

    calls: list[str]
    runs: list[str]
    recordings: list[str]


async def mark_interrupted_calls(db: Database, now: datetime | None = None) -> Recovery:
    """Mark this node's live calls, running runs and unfinished recordings ``interrupted``."""
    at = to_ms(now or db.now())
    greatest = db.dialect.greatest
    mine, node = db.own_rows()
    async with db.transaction() as tx:
        calls = [
            str(r[0])
            for r in await tx.fetch_all(f"SELECT id FROM calls WHERE status = 'live'{mine}", node)
        ]
        runs = [
            str(r[0])
            for r in await tx.fetch_all(f"SELECT id FROM runs WHERE status = 'running'{mine}", node)
        ]
        recordings = [
            str(r[0])
            for r in await tx.fetch_all(
                f"SELECT id FROM recordings WHERE status = 'recording'{mine}", node
            )
        ]
        await tx.execute(
            "UPDATE calls SET status = 'interrupted',"
            f" ended_at = {greatest}(?, started_at, coalesce(answered_at, started_at)),"
            " hangup_cause = coalesce(hangup_cause, 'interrupted'),"
            f" hangup_source = coalesce(hangup_source, 'server') WHERE status = 'live'{mine}",
            [at, *node],
        )
        await tx.execute(
            f"UPDATE runs SET status = 'interrupted', ended_at = {greatest}(?, started_at),"
            f" error = coalesce(error, ?) WHERE status = 'running'{mine}",
            [at, INTERRUPTED_ERROR, *node],
        )
        await tx.execute(
            f"UPDATE recordings SET status = 'interrupted' WHERE status = 'recording'{mine}", node
        )
    return Recovery(calls, runs, recordings)
