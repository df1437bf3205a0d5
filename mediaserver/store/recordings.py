"""The recordings index (Callr v2 ``/recordings``): where each audio file is, and about it.

Theory of operation. The audio lives in files under ``storage.recordings``,
named by the recording's id (SPEC section 7); this table indexes them. The
recorder creates a row when it starts (``status='recording'``, the path may
contain ``{id}``, replaced by the new id so the file can be named after it)
and :meth:`Recordings.finish` marks it ``ready`` with its duration and size;
a recorder that writes a file in one go creates it ``ready`` directly. A row
still ``recording`` at start-up lost its recorder in a crash and becomes
``interrupted`` (:mod:`mediaserver.store.recovery`); once its file is
repaired, :meth:`Recordings.measured` writes the duration and size the file
holds, so searches by duration find it.

Deleting removes the row and returns the file's path: the caller deletes the
file, after the row is gone, so a crash in between leaves an orphan file
(harmless) rather than a row pointing at nothing. Searches join the call
record to filter on and show the caller and callee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
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
    opt_from_ms,
    order_sql,
    to_ms,
)
from mediaserver.store.errors import Conflict, UnknownReference

RecordingKind = Literal["call", "recording", "conference", "voicemail"]


def locate_recording(root: Path, indexed: str) -> Path | None:
    """The indexed file, resolved, if it lies inside ``root`` (resolved); None otherwise.

    Rows name the file relative to ``root`` (``k3d9x0qa.wav``). Older rows hold
    the path as the server saw it then: absolute, or relative to its working
    folder through the data folder (``data/recordings/k3d9x0qa.wav``); for those
    the file of that name in ``root`` is the one meant (files are named by id).
    """
    path = Path(indexed)
    named = (root / path).resolve()  # root / an absolute path is that path
    inside = named if named.is_relative_to(root) else None
    if (inside is None or not inside.exists()) and len(path.parts) > 1:
        by_id = (root / path.name).resolve()
        if by_id.is_relative_to(root) and by_id.exists():
            return by_id
    return inside


RecordingStatus = Literal["recording", "ready", "interrupted"]

_SELECT = (
    "SELECT r.id, r.call_id, r.kind, r.status, r.path, r.format, r.channels, r.duration_ms,"
    " r.size, r.created_at, r.read, r.read_at, c.from_number AS caller,"
    " c.to_number AS callee, c.scenario_id, c.scenario_name"
    " FROM recordings r LEFT JOIN calls c ON c.id = r.call_id"
)
_COUNT = "SELECT count(*) FROM recordings r LEFT JOIN calls c ON c.id = r.call_id"


@dataclass(frozen=True)
class NewRecording:
    path: str
    """Where the file is; ``{id}`` in it is replaced by the recording's id."""
    format: str
    """File format, e.g. ``wav``."""
    kind: RecordingKind = "call"
    call_id: str | None = None
    channels: int = 1
    status: RecordingStatus = "ready"
    duration_ms: int = 0
    size: int = 0
    """Bytes."""
    created_at: datetime | None = None
    """None: now."""
    id: str | None = None
    """None: the store picks a fresh, unused id (preferred)."""


@dataclass(frozen=True)
class Recording:
    id: str
    call_id: str | None
    kind: RecordingKind
    status: RecordingStatus
    path: str
    format: str
    channels: int
    duration_ms: int
    size: int
    created_at: datetime
    read: bool
    read_at: datetime | None
    """When it was first marked read; None while unread."""
    caller: str | None
    """From the call record: its ``from_number``."""
    callee: str | None
    """From the call record: its ``to_number``."""
    scenario_id: str | None
    scenario_name: str | None


@dataclass(frozen=True)
class RecordingFilter:
    """Search filters; None means any. Time ranges are inclusive."""

    ids: Sequence[str] | None = None
    """Any of these recordings (Callr's ``sid``, one or several)."""
    kind: RecordingKind | None = None
    status: RecordingStatus | None = None
    call_id: str | None = None
    caller: str | None = None
    callee: str | None = None
    read: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    read_since: datetime | None = None
    read_until: datetime | None = None
    min_duration_ms: int | None = None

    def where(self) -> Where:
        where = Where()
        if self.ids is not None:
            where.add(f"r.id IN ({', '.join('?' * len(self.ids))})" if self.ids else "0", *self.ids)
        where.equal("r.kind", self.kind)
        where.equal("r.status", self.status)
        where.equal("r.call_id", self.call_id)
        where.equal("c.from_number", self.caller)
        where.equal("c.to_number", self.callee)
        where.equal("r.read", None if self.read is None else int(self.read))
        where.between("r.created_at", self.since, self.until)
        where.between("r.read_at", self.read_since, self.read_until)
        if self.min_duration_ms is not None:
            where.add("r.duration_ms >= ?", self.min_duration_ms)
        return where


class Recordings:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, new: NewRecording) -> Recording:
        """Index a recording.

        :class:`UnknownReference` on ``call_id`` for an unknown call;
        :class:`Conflict` on ``id`` when a given id is taken.
        """
        created = to_ms(new.created_at or self.db.now())
        async with self.db.transaction() as tx:
            if new.id is None:
                rid = await tx.unique_id("recordings")
            elif await tx.fetch_one("SELECT 1 FROM recordings WHERE id = ?", (new.id,)):
                raise Conflict("id", f"a recording {new.id!r} already exists")
            else:
                rid = new.id
            if new.call_id is not None and not await tx.fetch_one(
                "SELECT 1 FROM calls WHERE id = ?", (new.call_id,)
            ):
                raise UnknownReference("call_id", f"no call {new.call_id!r}")
            await tx.execute(
                "INSERT INTO recordings (id, call_id, kind, status, path, format, channels,"
                " duration_ms, size, created_at, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rid,
                    new.call_id,
                    new.kind,
                    new.status,
                    new.path.replace("{id}", rid),
                    new.format,
                    new.channels,
                    new.duration_ms,
                    new.size,
                    created,
                    self.db.node,
                ),
            )
            return await _load(tx, rid)

    async def finish(self, rid: str, *, duration_ms: int, size: int) -> Recording | None:
        """Mark a ``recording`` row ``ready``; None if unknown or not being recorded."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE recordings SET status = 'ready', duration_ms = ?, size = ?"
                " WHERE id = ? AND status = 'recording'",
                (duration_ms, size, rid),
            )
            return await _load(tx, rid) if changed else None

    async def under_way(self) -> list[str]:
        """The paths of the recordings being written now, on any node (after start-up
        recovery, another node's: a shared folder's files this node must not touch)."""
        rows = await self.db.fetch_all("SELECT path FROM recordings WHERE status = 'recording'")
        return [str(row[0]) for row in rows]

    async def unmeasured(self) -> list[Recording]:
        """Recordings a crash interrupted whose duration and size were never written."""
        rows = await self.db.fetch_all(
            f"{_SELECT} WHERE r.status = 'interrupted' AND r.size = 0 ORDER BY r.created_at"
        )
        return [_recording(row) for row in rows]

    async def measured(self, rid: str, *, duration_ms: int, size: int) -> Recording | None:
        """Give an ``interrupted`` recording the duration and size its file has after repair."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE recordings SET duration_ms = ?, size = ?"
                " WHERE id = ? AND status = 'interrupted'",
                (duration_ms, size, rid),
            )
            return await _load(tx, rid) if changed else None

    async def get(self, rid: str) -> Recording | None:
        row = await self.db.fetch_one(f"{_SELECT} WHERE r.id = ?", (rid,))
        return None if row is None else _recording(row)

    async def search(
        self,
        filters: RecordingFilter | None = None,
        *,
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[Recording]:
        """Matching recordings by creation time, newest first by default."""
        direction = order_sql(order)
        async with self.db.snapshot() as snap:
            return await snap.page(
                _SELECT,
                _COUNT,
                (filters or RecordingFilter()).where(),
                f"r.created_at {direction}, r.id {direction}",
                limit,
                offset,
                _recording,
            )

    async def set_read(self, rid: str, read: bool) -> Recording | None:
        """Mark one recording read or unread; None if unknown."""
        async with self.db.transaction() as tx:
            if not await self._set_read(tx, read, [rid]):
                return None
            return await _load(tx, rid)

    async def set_read_many(self, ids: Sequence[str] | None, read: bool) -> int:
        """Mark the given recordings (None: all of them) read or unread; how many exist."""
        async with self.db.transaction() as tx:
            return await self._set_read(tx, read, ids)

    async def delete(self, rid: str) -> str | None:
        """Remove the row; the file's path for the caller to delete, None if unknown."""
        paths = await self.delete_many([rid])
        return paths[0] if paths else None

    async def delete_many(self, ids: Sequence[str] | None) -> list[str]:
        """Remove the given rows (None: all); the paths of the files to delete."""
        where = _ids_where(ids)
        async with self.db.transaction() as tx:
            rows = await tx.fetch_all(f"SELECT path FROM recordings{where.sql}", where.params)
            await tx.execute(f"DELETE FROM recordings{where.sql}", where.params)
            return [str(row[0]) for row in rows]

    async def delete_finished(self, ids: Sequence[str] | None) -> list[tuple[str, str]]:
        """Remove the given rows (None: all) except those still being recorded; the
        ``(id, path)`` of each removed, for the caller to delete the files."""
        where = _ids_where(ids)
        where.add("status != 'recording'")
        async with self.db.transaction() as tx:
            rows = await tx.fetch_all(f"SELECT id, path FROM recordings{where.sql}", where.params)
            await tx.execute(f"DELETE FROM recordings{where.sql}", where.params)
            return [(str(row[0]), str(row[1])) for row in rows]

    async def _set_read(self, tx: Transaction, read: bool, ids: Sequence[str] | None) -> int:
        where = _ids_where(ids)
        # Keep the first read time when marked read again (Callr's date_read).
        sql = (
            "UPDATE recordings SET read = ?,"
            " read_at = CASE WHEN ? = 1 THEN coalesce(read_at, ?) ELSE NULL END"
        )
        params = [int(read), int(read), to_ms(self.db.now()), *where.params]
        return await tx.execute(sql + where.sql, params)


def _ids_where(ids: Sequence[str] | None) -> Where:
    where = Where()
    if ids is not None:
        marks = ", ".join("?" * len(ids))
        where.add(f"id IN ({marks})" if ids else "1 = 0", *ids)
    return where


async def _load(session: Session, rid: str) -> Recording:
    sql = f"{_SELECT} WHERE r.id = ?"
    return _recording(await session.fetch_written(sql, (rid,), f"recording {rid}"))


def _recording(row: Row) -> Recording:
    return Recording(
        id=row["id"],
        call_id=row["call_id"],
        kind=row["kind"],
        status=row["status"],
        path=row["path"],
        format=row["format"],
        channels=row["channels"],
        duration_ms=row["duration_ms"],
        size=row["size"],
        created_at=from_ms(row["created_at"]),
        read=bool(row["read"]),
        read_at=opt_from_ms(row["read_at"]),
        caller=row["caller"],
        callee=row["callee"],
        scenario_id=row["scenario_id"],
        scenario_name=row["scenario_name"],
    )
