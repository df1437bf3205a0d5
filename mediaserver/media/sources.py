"""Audio files decoded to the server's one audio format, with a cache.

Theory of operation: everything a call plays is ``Pcm`` (16-bit mono at
8 kHz), so a file is converted once, when it is loaded, never per packet.
:func:`decode_file` reads whatever libsndfile reads (WAV in any PCM or float
subtype, FLAC, OGG Vorbis/Opus, MP3 and the rest of libsndfile's formats)
block by block as float32, mixes the channels to mono by averaging them (so
two full-scale channels cannot overflow), resamples to 8 kHz with a
streaming soxr resampler when the file's rate differs, and rounds to int16
with clipping. Working block by block keeps memory near the size of the
8 kHz result whatever the file's rate and channel count.

When the server offers a wideband codec (``wide_audio.COMPANIONS.enabled``),
a file above 8 kHz is also resampled to 16 kHz in the same pass, and that
version is kept beside the 8 kHz one for G.722 and Opus legs
(:mod:`mediaserver.media.wide_audio`): once per file, never per call.

Decoding blocks, so :func:`load_file` runs it in the event loop's default
executor and keeps the results in a :class:`PcmCache`: an LRU bounded by
entry count and by bytes, keyed by (absolute path, mtime, size) so that an
edited file is decoded afresh while a prompt played on every call is decoded
once. Concurrent loads of the same key share one decode. Cached arrays are
read-only: every call plays the same array, and none may change it for the
others.
"""

from __future__ import annotations

import asyncio
import functools
import os
import stat
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Hashable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from mediaserver.media.pcm import SAMPLE_RATE, WIDE_RATE, AudioError, Pcm
from mediaserver.media.wide_audio import COMPANIONS

BLOCK_FRAMES = 65536
"""Frames read from the file at a time (1.5 s at 44.1 kHz)."""

RESAMPLE_QUALITY = "HQ"
"""soxr's high quality: far below what G.711's own noise floor lets through."""


def decode_file(path: str | os.PathLike[str]) -> Pcm:
    """Decode the audio file at ``path`` to 8 kHz mono int16 (blocking).

    Raises :class:`AudioError` naming the file when it is missing, unreadable
    or not audio libsndfile can decode.
    """
    return decode_file_rates(path, wide=False)[0]


def decode_file_rates(path: str | os.PathLike[str], *, wide: bool) -> tuple[Pcm, Pcm | None]:
    """:func:`decode_file`, and with ``wide`` the file at 16 kHz too when it has
    more than 8 kHz of band to give (its rate is above 8000); else None."""
    name = os.fspath(path)
    try:
        # Opening the file ourselves turns OS errors into precise messages
        # instead of libsndfile's generic "System error".
        with open(name, "rb") as raw, sf.SoundFile(raw) as audio:
            return _decode(audio, wide=wide)
    except FileNotFoundError:
        raise AudioError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise AudioError(f"{name}: is a directory, not an audio file") from None
    except PermissionError:
        raise AudioError(f"{name}: permission denied") from None
    except OSError as exc:
        raise AudioError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except sf.LibsndfileError as exc:
        raise AudioError(
            f"{name}: not an audio file libsndfile can read ({exc.error_string})"
        ) from None
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{name}: cannot be decoded ({exc})") from None


def _decode(audio: sf.SoundFile, *, wide: bool = False) -> tuple[Pcm, Pcm | None]:
    rate = int(audio.samplerate)
    channels = int(audio.channels)
    if rate <= 0 or channels <= 0:
        raise ValueError(f"{channels} channel(s) at {rate} Hz is not playable audio")
    narrow = _Resampled(rate, SAMPLE_RATE)
    # A file at 8 kHz or below has nothing a 16 kHz version would add.
    wideband = _Resampled(rate, WIDE_RATE) if wide and rate > SAMPLE_RATE else None
    for block in _blocks(audio, channels):
        mono = np.ascontiguousarray(block.mean(axis=1, dtype=np.float32))
        narrow.add(mono)
        if wideband is not None:
            wideband.add(mono)
    return narrow.result(), None if wideband is None else wideband.result()


class _Resampled:
    """Mono float blocks at one rate, gathered as ``Pcm`` at another (soxr, streaming)."""

    def __init__(self, source: int, target: int) -> None:
        self._resampler = (
            None
            if source == target
            else soxr.ResampleStream(source, target, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        )
        self._pieces: list[Pcm] = []

    def add(self, mono: npt.NDArray[np.float32]) -> None:
        resampler = self._resampler
        self._pieces.append(to_pcm(mono if resampler is None else resampler.resample_chunk(mono)))

    def result(self) -> Pcm:
        if self._resampler is not None:
            # Flush the resampler's filter delay so the end of the file is not lost.
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self._pieces.append(to_pcm(tail))
        if not self._pieces:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._pieces)


def _blocks(audio: sf.SoundFile, channels: int) -> Iterator[npt.NDArray[np.float32]]:
    """The file's frames, :data:`BLOCK_FRAMES` at a time, read strictly in sequence.

    ``SoundFile.read`` and ``blocks`` seek to where each read ended; libsndfile
    1.2's MP3 decoder restarts on any seek and loses thousands of samples at
    every block boundary (silence, then misaligned audio), so the blocks are
    read with ``sf_readf_float`` itself, which never seeks.
    """
    while True:
        block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
        pointer = sf._ffi.cast("float *", sf._ffi.from_buffer(block))
        read = int(sf._snd.sf_readf_float(audio._file, pointer, BLOCK_FRAMES))
        if read <= 0:
            error = sf._snd.sf_error(audio._file)
            if error:
                raise sf.LibsndfileError(error)
            return
        yield block[:read]


def to_pcm(samples: npt.NDArray[np.floating[Any]]) -> Pcm:
    """Float samples in [-1, 1) to int16, rounding and clipping what exceeds it.

    The scale is 32768, libsndfile's own for int16 to float, so a 16-bit file
    goes through float and back unchanged.
    """
    scaled = np.round(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


class PcmCache:
    """A least-recently-used cache of decoded audio, bounded by entries and bytes.

    :meth:`get_or_load` also shares one load among concurrent requests for
    the same key. Stored arrays are made read-only. An array larger than the
    whole byte budget is returned but not kept.
    """

    def __init__(self, max_entries: int = 64, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a PcmCache needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Pcm] = OrderedDict()
        self._nbytes = 0
        self._loading: dict[Hashable, asyncio.Task[Pcm]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached arrays."""
        return self._nbytes

    def get(self, key: Hashable) -> Pcm | None:
        pcm = self._entries.get(key)
        if pcm is not None:
            self._entries.move_to_end(key)
        return pcm

    def put(self, key: Hashable, pcm: Pcm) -> Pcm:
        """Store ``pcm`` (made read-only) under ``key`` and return it."""
        pcm.flags.writeable = False
        old = self._entries.pop(key, None)
        if old is not None:
            self._nbytes -= old.nbytes
        if pcm.nbytes > self.max_bytes:
            return pcm
        self._entries[key] = pcm
        self._nbytes += pcm.nbytes
        while len(self._entries) > self.max_entries or self._nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._nbytes -= evicted.nbytes
        return pcm

    def clear(self) -> None:
        self._entries.clear()
        self._nbytes = 0

    async def get_or_load(self, key: Hashable, load: Callable[[], Coroutine[Any, Any, Pcm]]) -> Pcm:
        """The cached entry for ``key``, or the result of ``load()`` stored
        under it. A caller cancelled while waiting leaves the load running for
        the others, and its result is cached."""
        cached = self.get(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        task = self._loading.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._load(key, load))
            task.add_done_callback(_retrieve_outcome)
            self._loading[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Coroutine[Any, Any, Pcm]]) -> Pcm:
        try:
            return self.put(key, await load())
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]


def _retrieve_outcome(task: asyncio.Task[Any]) -> None:
    """Mark a shared task's failure as seen: its waiters may all have been
    cancelled, and the next request retries anyway."""
    if not task.cancelled():
        task.exception()


FILE_CACHE = PcmCache(max_entries=64, max_bytes=64 * 1024 * 1024)
"""The process-wide cache behind :func:`load_file`."""


async def load_file(path: str | os.PathLike[str]) -> Pcm:
    """Decode ``path`` in the default executor, or return the cached result.

    The result is read-only and may be shared with other calls. Raises
    :class:`AudioError` like :func:`decode_file`.
    """
    name = os.fspath(path)
    absolute = os.path.abspath(name)
    try:
        # One stat of a local file costs microseconds; only the decode needs a thread.
        info = os.stat(absolute)
    except FileNotFoundError:
        raise AudioError(f"{name}: no such file") from None
    except OSError as exc:
        raise AudioError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{name}: is a directory, not an audio file")
    key = (absolute, info.st_mtime_ns, info.st_size)

    async def decode() -> Pcm:
        wide = COMPANIONS.enabled
        loop = asyncio.get_running_loop()
        narrow, wideband = await loop.run_in_executor(
            None, functools.partial(decode_file_rates, name, wide=wide)
        )
        if wideband is not None:
            COMPANIONS.attach(narrow, wideband)  # the array the cache keeps and calls play
        return narrow

    return await FILE_CACHE.get_or_load(key, decode)
