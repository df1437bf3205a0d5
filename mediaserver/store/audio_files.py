"""The audio files index (Callr v2 ``/audio-files``): names, statuses and durations.

Theory of operation. A row is created ``pending-content`` (a name, no audio
yet) or ``pending-conversion`` (the upload is on disk, waiting for its
conversion); :class:`~mediaserver.audio_files.AudioFiles` then moves it to
``processing`` and on to ``ready`` (with its duration) or ``error`` (with
the reason). Every change stamps ``updated_at``, the seed's default sort.
The audio lives in files named by the id under ``storage.audio_files``;
deleting a row returns nothing to delete by path: the caller removes the
files named by the id, after the row is gone, so a crash in between leaves
orphan files rather than a row pointing at nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mediaserver.store.db import (
    Database,
    Order,
    Page,
    Row,
    Session,
    Where,
    from_ms,
    order_sql,
    to_ms,
)

AudioFileStatus = Literal["pending-content", "pending-conversion", "processing", "ready", "error"]
AudioFileSource = Literal["file-upload", "phone-record", "system"]
AudioFileSort = Literal["name", "created", "updated"]

_SELECT = (
    "SELECT id, name, source, readonly, status, reason, format, duration_ms, created_at,"
    " updated_at FROM audio_files"
)
_COUNT = "SELECT count(*) FROM audio_files"
_SORT_COLUMNS: dict[AudioFileSort, str] = {
    "name": "name",
    "created": "created_at",
    "updated": "updated_at",
}


@dataclass(frozen=True)
class AudioFile:
    id: str
    name: str
    source: AudioFileSource
    readonly: bool
    status: AudioFileStatus
    reason: str
    """Why the conversion failed (status ``error``); empty otherwise."""
    format: str
    """The uploaded content's format (``mp3``, ``wav``...); empty before any upload."""
    duration_ms: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AudioFileFilter:
    """Search filters; None means any. ``name`` matches any part of the name, in any case."""

    name: str | None = None
    status: AudioFileStatus | None = None
    source: AudioFileSource | None = None

    def where(self) -> Where:
        where = Where()
        if self.name is not None:
            escaped = self.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.add("lower(name) LIKE lower(?) ESCAPE '\\'", f"%{escaped}%")
        where.equal("status", self.status)
        where.equal("source", self.source)
        return where


class AudioFilesIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        name: str,
        *,
        status: AudioFileStatus,
        source: AudioFileSource = "file-upload",
        format: str = "",
    ) -> AudioFile:
        now = to_ms(self.db.now())
        async with self.db.transaction() as tx:
            sid = await tx.unique_id("audio_files")
            await tx.execute(
                "INSERT INTO audio_files"
                " (id, name, source, status, format, created_at, updated_at, node)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, name, source, status, format, now, now, self.db.node),
            )
            return await _load(tx, sid)

    async def get(self, sid: str) -> AudioFile | None:
        row = await self.db.fetch_one(f"{_SELECT} WHERE id = ?", (sid,))
        return None if row is None else _audio_file(row)

    async def search(
        self,
        filters: AudioFileFilter | None = None,
        *,
        sort: AudioFileSort = "updated",
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[AudioFile]:
        """Matching audio files, most recently updated first by default."""
        direction = order_sql(order)
        column = _SORT_COLUMNS[sort]
        async with self.db.snapshot() as snap:
            return await snap.page(
                _SELECT,
                _COUNT,
                (filters or AudioFileFilter()).where(),
                f"{column} {direction}, id {direction}",
                limit,
                offset,
                _audio_file,
            )

    async def rename(self, sid: str, name: str) -> AudioFile | None:
        return await self._update(sid, "name = ?", (name,))

    async def set_status(
        self,
        sid: str,
        status: AudioFileStatus,
        *,
        reason: str = "",
        duration_ms: int | None = None,
        format: str | None = None,
        source: AudioFileSource | None = None,
        only_from: tuple[AudioFileStatus, ...] | None = None,
    ) -> AudioFile | None:
        """Move to ``status``; None if unknown or (with ``only_from``) in another status."""
        sets = ["status = ?", "reason = ?"]
        params: list[object] = [status, reason]
        if duration_ms is not None:
            sets.append("duration_ms = ?")
            params.append(duration_ms)
        if format is not None:
            sets.append("format = ?")
            params.append(format)
        if source is not None:
            sets.append("source = ?")
            params.append(source)
        condition = ""
        if only_from is not None:
            condition = f" AND status IN ({', '.join('?' * len(only_from))})"
            params.extend(only_from)
        return await self._update(sid, ", ".join(sets), tuple(params), condition)

    async def in_status(self, *statuses: AudioFileStatus) -> list[AudioFile]:
        """This node's files in one of ``statuses`` (at start-up: conversions a stop
        interrupted; another node sharing the database converts its own)."""
        marks = ", ".join("?" * len(statuses))
        mine, node = self.db.own_rows()
        rows = await self.db.fetch_all(
            f"{_SELECT} WHERE status IN ({marks}){mine} ORDER BY updated_at, id",
            [*statuses, *node],
        )
        return [_audio_file(row) for row in rows]

    async def delete(self, sid: str) -> bool:
        async with self.db.transaction() as tx:
            return bool(await tx.execute("DELETE FROM audio_files WHERE id = ?", (sid,)))

    async def _update(
        self, sid: str, sets: str, params: tuple[object, ...], condition: str = ""
    ) -> AudioFile | None:
        now = to_ms(self.db.now())
        async with self.db.transaction() as tx:
            # The WHERE's own parameters (sid, then the condition's) follow the SET's.
            head, tail = _split(params, sets.count("?"))
            changed = await tx.execute(
                f"UPDATE audio_files SET {sets}, updated_at = ? WHERE id = ?{condition}",
                (*head, now, sid, *tail),
            )
            return await _load(tx, sid) if changed else None


def _split(params: tuple[object, ...], count: int) -> tuple[tuple[object, ...], tuple[object, ...]]:
    return params[:count], params[count:]


async def _load(session: Session, sid: str) -> AudioFile:
    return _audio_file(
        await session.fetch_written(f"{_SELECT} WHERE id = ?", (sid,), f"audio file {sid}")
    )


def _audio_file(row: Row) -> AudioFile:
    return AudioFile(
        id=row["id"],
        name=row["name"],
        source=row["source"],
        readonly=bool(row["readonly"]),
        status=row["status"],
        reason=row["reason"],
        format=row["format"],
        duration_ms=row["duration_ms"],
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
    )
