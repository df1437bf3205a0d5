"""Crash recovery at start-up: what was in flight when the server died.

Theory of operation. Nothing outlives the process that ran it: a call,
a run or a recording still marked ``live``/``running``/``recording`` when
the server starts belonged to a server that was killed (SIGKILL, power cut,
OOM). :func:`mark_interrupted_calls` runs once at start-up, before the
server accepts calls, and in one transaction marks them all
``interrupted``. A call's ``ended_at`` is the recovery time, so its duration
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
    """Mark every live call, running run and unfinished recording ``interrupted``."""
    at = to_ms(now or db.now())
    greatest = db.dialect.greatest
    async with db.transaction() as tx:
        calls = [
            str(r[0]) for r in await tx.fetch_all("SELECT id FROM calls WHERE status = 'live'")
        ]
        runs = [
            str(r[0]) for r in await tx.fetch_all("SELECT id FROM runs WHERE status = 'running'")
        ]
        recordings = [
            str(r[0])
            for r in await tx.fetch_all("SELECT id FROM recordings WHERE status = 'recording'")
        ]
        await tx.execute(
            "UPDATE calls SET status = 'interrupted',"
            f" ended_at = {greatest}(?, started_at, coalesce(answered_at, started_at)),"
            " hangup_cause = coalesce(hangup_cause, 'interrupted'),"
            " hangup_source = coalesce(hangup_source, 'server') WHERE status = 'live'",
            (at,),
        )
        await tx.execute(
            f"UPDATE runs SET status = 'interrupted', ended_at = {greatest}(?, started_at),"
            " error = coalesce(error, ?) WHERE status = 'running'",
            (at, INTERRUPTED_ERROR),
        )
        await tx.execute("UPDATE recordings SET status = 'interrupted' WHERE status = 'recording'")
    return Recovery(calls, runs, recordings)
