"""The MP3 rendition of a recording (Callr's ``url_mp3``), made once and kept beside it.

Theory of operation. A recording is written as WAV (or the format its
action asked for); the MP3 is encoded lazily, on its first request, by
libsndfile (1.1 and later write MPEG Layer III; the venv's soundfile bundles
1.2.2) in a worker thread, so the event loop never encodes. The file is
``<id>.mp3`` next to the recording; it is written to a temporary name and
renamed, so a reader never sees half a file, and one lock per recording
keeps two first requests from encoding it twice. A recording that is
already MP3 is its own rendition. Deleting a recording deletes its
rendition (:func:`rendition_path`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import soundfile as sf

MP3_SUFFIX = ".mp3"
BLOCK_FRAMES = 64 * 1024


def rendition_path(audio: Path) -> Path:
    """Where the MP3 of the recording at ``audio`` is (the file itself if it is MP3)."""
    return audio if audio.suffix.lower() == MP3_SUFFIX else audio.with_suffix(MP3_SUFFIX)


def encode_mp3(source: Path, target: Path) -> None:
    """Encode ``source`` (any format libsndfile reads) as MP3 at ``target``, atomically."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with (
            sf.SoundFile(str(source)) as reader,
            sf.SoundFile(
                str(partial),
                "w",
                samplerate=reader.samplerate,
                channels=reader.channels,
                format="MP3",
                subtype="MPEG_LAYER_III",
            ) as writer,
        ):
            for block in reader.blocks(blocksize=BLOCK_FRAMES, dtype="float32"):
                writer.write(block)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


class Mp3Renditions:
    """Encodes each recording's MP3 at most once at a time, off the event loop."""

    def __init__(self) -> None:
        self._locks: dict[Path, asyncio.Lock] = {}

    async def ensure(self, audio: Path) -> Path:
        """The MP3 of the recording at ``audio``, encoded now if it is not yet."""
        target = rendition_path(audio)
        if target == audio or target.is_file():
            return target
        lock = self._locks.setdefault(target, asyncio.Lock())
        try:
            async with lock:
                if not target.is_file():
                    await asyncio.to_thread(encode_mp3, audio, target)
        finally:
            if not lock.locked() and self._locks.get(target) is lock:
                del self._locks[target]
        return target
