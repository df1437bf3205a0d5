"""Audio files (Callr v2 ``/audio-files``): uploads, their conversion, and playing them.

Theory of operation. An audio file is a row in the store
(:mod:`mediaserver.store.audio_files`) and up to two files named by its sid
under ``storage.audio_files``: ``SID.upload`` (the bytes as sent, kept
until their conversion ends) and ``SID.wav`` (the converted audio, 16-bit
mono at 8 kHz, what the prompts play). An upload is written to disk, the
row goes ``pending-conversion``, and a task converts it: ``processing``,
the decode in a worker thread (never on the event loop), then ``ready``
with its duration or ``error`` with the reason. Each change posts
``v2.audio-file.updated`` (the audio file as the API shows it) through the
webhook dispatcher. Conversions run :data:`CONCURRENT` at a time.

A stop cancels the conversions under way; their rows stay
``pending-conversion`` or ``processing`` with the upload on disk, and
:meth:`AudioFiles.resume` converts them again at the next start (or marks
them ``error`` when the upload is gone). A deleted file's conversion
finishes in its thread, finds no row, and removes what it wrote.

Scenarios play an audio file by its sid with the media reference
``audio-file:SID`` wherever they name a sound file (:meth:`playable`): an
unknown sid, or a file that is not ``ready``, is an error naming the sid
and its status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediaserver.log import get_logger
from mediaserver.media.conversion import convert
from mediaserver.media.pcm import AudioError
from mediaserver.media.prompts import AUDIO_FILE
from mediaserver.store import Store
from mediaserver.store.audio_files import AudioFile, AudioFileSource, AudioFileStatus
from mediaserver.store.cdrs import rfc3339
from mediaserver.store.db import ID_PATTERN
from mediaserver.webhooks.delivery import WebhookDispatcher

log = get_logger("audio_files")

EVENT = "v2.audio-file.updated"
CONCURRENT = 2


class AudioFileGone(LookupError):
    """The audio file was deleted (or never was)."""


class AudioFileBusy(RuntimeError):
    """Its content is being converted; the message says so."""


def audio_file_view(record: AudioFile) -> dict[str, Any]:
    """The seed's AudioFile object (API answers and webhook payloads alike)."""
    view: dict[str, Any] = {
        "sid": record.id,
        "name": record.name,
        "duration": round(record.duration_ms / 1000, 3),
        "source": record.source,
        "readonly": record.readonly,
        "status": record.status,
        "created": rfc3339(record.created_at),
        "updated": rfc3339(record.updated_at),
    }
    if record.status == "error":
        view["reason"] = record.reason
    return view


class AudioFiles:
    def __init__(
        self,
        store: Callable[[], Store | None],
        folder: Path,
        webhooks: WebhookDispatcher | None = None,
    ) -> None:
        self._store = store
        self.folder = folder
        self.webhooks = webhooks
        self._slots = asyncio.Semaphore(CONCURRENT)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- where the audio is ------------------------------------------------------------

    def content_path(self, sid: str) -> Path:
        return self.folder / f"{sid}.wav"

    def upload_path(self, sid: str) -> Path:
        return self.folder / f"{sid}.upload"

    @property
    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("audio files used before the store is open")
        return store

    # -- changes -----------------------------------------------------------------------

    async def create_empty(self, name: str) -> AudioFile:
        """A named audio file with no content yet (``pending-content``)."""
        record = await self.store.audio_files.create(name, status="pending-content")
        self._publish(record)
        return record

    async def upload(self, name: str, data: bytes, format: str) -> AudioFile:
        """A new audio file with content, queued for conversion (``pending-conversion``)."""
        record = await self.store.audio_files.create(
            name, status="pending-conversion", format=format
        )
        try:
            await asyncio.to_thread(self._write_upload, record.id, data)
        except OSError as exc:
            await self.store.audio_files.delete(record.id)
            raise RuntimeError(f"cannot store the upload of {record.id}: {exc}") from exc
        self._publish(record)
        self._start(record.id)
        return record

    async def replace_content(
        self, sid: str, data: bytes, format: str, *, source: AudioFileSource | None = None
    ) -> AudioFile:
        """New content for ``sid``, queued for conversion; not playable until it is ready.
        ``source``: where it came from now (``phone-record``); None keeps the file's."""
        index = self.store.audio_files
        # The status moves first, so two uploads at once cannot both pass (the second is busy).
        record = await index.set_status(
            sid,
            "pending-conversion",
            format=format,
            source=source,
            only_from=("pending-content", "ready", "error"),
        )
        if record is None:
            current = await index.get(sid)
            if current is None:
                raise AudioFileGone(sid)
            raise AudioFileBusy(
                f"audio file {sid} is {current.status}: wait for it to be ready or error"
            )
        try:
            await asyncio.to_thread(self._write_upload, sid, data)
        except OSError as exc:
            await index.set_status(sid, "error", reason="the upload could not be stored")
            raise RuntimeError(f"cannot store the upload of {sid}: {exc}") from exc
        self._publish(record)
        self._start(sid)
        return record

    async def rename(self, sid: str, name: str) -> AudioFile:
        record = await self.store.audio_files.rename(sid, name)
        if record is None:
            raise AudioFileGone(sid)
        self._publish(record)
        return record

    async def delete(self, sid: str) -> None:
        if not await self.store.audio_files.delete(sid):
            raise AudioFileGone(sid)
        # The row goes first: a crash in between leaves orphan files, never a dangling row.
        await asyncio.to_thread(self._remove_files, sid)

    # -- playing -----------------------------------------------------------------------

    async def playable(self, sid: str) -> Path:
        """The converted audio of ``sid``; AudioError naming the sid unless it is ready."""
        where = f"{AUDIO_FILE}{sid}"
        if not ID_PATTERN.fullmatch(sid):
            raise AudioError(f"{where}: an audio file sid is 8 characters of a-z and 0-9")
        record = await self.store.audio_files.get(sid)
        if record is None:
            raise AudioError(f"{where}: no such audio file (see GET /api/audio-files)")
        if record.status != "ready":
            why = f" ({record.reason})" if record.reason else ""
            raise AudioError(
                f"{where}: audio file {record.name!r} is {record.status}{why}, not ready"
            )
        path = self.content_path(sid)
        if not path.is_file():
            raise AudioError(f"{where}: the converted audio is missing; upload the file again")
        return path

    # -- conversion --------------------------------------------------------------------

    async def resume(self) -> None:
        """At start-up: convert again what a stop interrupted."""
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        for record in await self.store.audio_files.in_status("pending-conversion", "processing"):
            if self.upload_path(record.id).is_file():
                self._start(record.id)
                continue
            changed = await self.store.audio_files.set_status(
                record.id, "error", reason="the upload was lost in a restart; upload it again"
            )
            if changed is not None:
                self._publish(changed)

    async def stop(self) -> None:
        """Cancel the conversions under way (resumed at the next start)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait for the conversions under way (tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _start(self, sid: str) -> None:
        task = asyncio.get_running_loop().create_task(self._convert(sid), name=f"convert {sid}")
        self._tasks[sid] = task
        task.add_done_callback(lambda done: self._finished(sid, done))

    def _finished(self, sid: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(sid) is task:
            del self._tasks[sid]
        if not task.cancelled() and task.exception() is not None:
            log.error("audio file conversion failed", sid=sid, exc_info=task.exception())

    async def _convert(self, sid: str) -> None:
        async with self._slots:
            index = self.store.audio_files
            record = await index.set_status(
                sid, "processing", only_from=("pending-conversion", "processing")
            )
            if record is None:
                return  # deleted while it waited
            self._publish(record)
            upload, target = self.upload_path(sid), self.content_path(sid)
            status: AudioFileStatus = "ready"
            reason, duration_ms = "", 0
            try:
                duration_ms = await asyncio.to_thread(convert, upload, target)
            except AudioError as exc:
                status, reason = "error", str(exc)
            done = await index.set_status(
                sid,
                status,
                reason=reason,
                duration_ms=duration_ms if status == "ready" else None,
                only_from=("processing",),
            )
            if done is None:  # deleted during the conversion: take back what it wrote
                await asyncio.to_thread(self._remove_files, sid)
                return
            await asyncio.to_thread(upload.unlink, missing_ok=True)
            log.info("audio file converted", sid=sid, status=status, reason=reason or None)
            self._publish(done)

    # -- helpers -----------------------------------------------------------------------

    def _write_upload(self, sid: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.upload_path(sid).with_suffix(".upload.part")
        partial.write_bytes(data)
        partial.replace(self.upload_path(sid))

    def _remove_files(self, sid: str) -> None:
        for path in (self.upload_path(sid), self.content_path(sid)):
            path.unlink(missing_ok=True)

    def _publish(self, record: AudioFile) -> None:
        if self.webhooks is not None:
            self.webhooks.publish(EVENT, record.id, audio_file_view(record))
