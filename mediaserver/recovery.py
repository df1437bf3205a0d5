"""Start-up after an unclean stop: what the last process left in flight.

Run once when the store is open and before any call is accepted: call
records and runs still marked live become ``interrupted``
(:func:`~mediaserver.store.recovery.mark_interrupted_calls`), recording files
cut short are repaired (:func:`~mediaserver.media.recorder.repair_recordings`),
and the index is given the duration and size each interrupted recording
holds. See :mod:`mediaserver.store.recovery` for the theory of operation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from mediaserver.log import get_logger
from mediaserver.media.recorder import measure_recording, repair_recordings
from mediaserver.store import Store
from mediaserver.store.recordings import locate_recording

log = get_logger("server")


async def recover(store: Store, recordings: Path) -> None:
    """Mark what was in flight as interrupted and repair the recordings in ``recordings``."""
    recovery = await store.mark_interrupted_calls()
    if recovery.calls or recovery.runs or recovery.recordings:
        log.warning(
            "recovered from an unclean stop",
            interrupted_calls=recovery.calls,
            interrupted_runs=recovery.runs,
            interrupted_recordings=recovery.recordings,
        )
    recordings.mkdir(parents=True, exist_ok=True)
    # A folder shared with other nodes holds the files they are writing: not ours to repair.
    root = recordings.resolve()
    located = [locate_recording(root, path) for path in await store.recordings.under_way()]
    under_way = [path for path in located if path is not None]
    # In a thread: the files are read and rewritten, which would stall the loop.
    for report in await asyncio.get_running_loop().run_in_executor(
        None, repair_recordings, recordings, under_way
    ):
        log.warning("recording repaired at start-up", report=str(report))
    await _measure_interrupted_recordings(store, recordings)


async def _measure_interrupted_recordings(store: Store, folder: Path) -> None:
    """Index what each interrupted recording's repaired file holds (it still says 0 s)."""
    loop = asyncio.get_running_loop()
    for record in await store.recordings.unmeasured():
        path = locate_recording(folder.resolve(), record.path)
        if path is None:
            continue  # outside the recordings folder: not ours to read
        measured = await loop.run_in_executor(None, measure_recording, path)
        if measured is None:
            continue  # damaged or gone: the index keeps 0
        duration_s, size = measured
        await store.recordings.measured(record.id, duration_ms=round(duration_s * 1000), size=size)
        log.warning(
            "recording index repaired at start-up",
            recording_id=record.id,
            duration=round(duration_s, 3),
            size=size,
        )
