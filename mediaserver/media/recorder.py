"""Recordings written while the call runs, and repaired after a crash.

Theory of operation
-------------------
A :class:`Recorder` receives one frame per media tick (a call's mono mix,
both sides of a call for a ``dual`` recording, a conference's full mix, a
voicemail) and keeps it in a preallocated NumPy buffer holding
``flush_interval`` seconds (1 s by default). When the buffer fills, or on
:meth:`~Recorder.pause`, :meth:`~Recorder.flush` and close, it is written
with libsndfile (through soundfile) in one call. What libsndfile writes goes
straight to the kernel (it does not buffer WAV data in the process), so a
``kill -9`` loses only what is still in our buffer: less than
``flush_interval`` of audio. Nothing is fsynced while recording (libsndfile's
``flush()`` is only an ``fsync``, about 1 ms on this disk, and a process crash
does not need it); :meth:`~Recorder.close` fsyncs once, as libsndfile's close
does anyway.

Recordings are 8 kHz, the server's audio, or 16 kHz (``sample_rate``) when
every leg recorded is wideband (G.722, Opus: ``media/recording.py``).

What is written while the call runs is always a 16-bit PCM WAV:

* ``wav`` recordings are written in place, at their final path;
* ``flac`` and ``ogg`` recordings are written to a WAV *journal* next to the
  final path (``NAME.flac.part``) and encoded at close into
  ``NAME.flac.tmp``, fsynced and renamed to ``NAME.flac``, then the journal
  is removed. Measured with libsndfile 1.2: a FLAC file being written
  cannot be opened by libsndfile until it is closed ("psf_fseek() failed"),
  and its encoder holds back a 4096-sample block (0.5 s); the Vorbis encoder
  emits a page only every 1.5 s or so at 8 kHz; both exceed the one second a
  crash may lose. Encoding live would also cost 1-2 ms of event-loop time
  per second of Vorbis, where the WAV journal costs about 20 us. The price
  is encoding at close: run :meth:`Recorder.aclose`, which does it in the
  default executor.

libsndfile writes the WAV header's sizes only at close: a live WAV says it
holds no audio. After each buffer write the recorder therefore patches the
RIFF and ``data`` sizes itself (two ``pwrite`` calls), so the file on disk
is a valid WAV of everything written so far at any moment, and can be read
or served while the call runs.

Pausing writes out the buffer and then drops frames until resumed: paused
time is *omitted*, so the recording is the call minus its paused stretches
(what a caller expects when pausing to give a card number).

:func:`repair_recordings` runs at start-up, before any recording starts,
and walks the recordings folder:

* ``*.tmp`` (an encode interrupted by the crash) is removed: its journal is
  still there;
* ``*.part`` journals get their WAV header fixed, are encoded to the final
  format and removed (a crash between rename and removal leaves a journal
  next to a finished file: encoding it again gives the same file);
* ``*.wav`` files whose RIFF or ``data`` size disagree with the file's
  length (a zero-size header as libsndfile leaves it, or audio written after
  the last patch) get both sizes rewritten from the length, keeping whole
  frames (a frame torn by the crash is cut off). A ``data`` chunk followed
  by another chunk (LIST, ...) is a finished file and is left alone;
* a file that is not a RIFF/WAVE with a ``data`` chunk (killed before the
  header was written), or a journal libsndfile cannot read, cannot be
  recovered and is renamed ``*.damaged``;
* a file that cannot be touched (permissions, I/O error) is reported as
  ``failed`` and left as it is: one bad file never stops a start-up.

Final FLAC and OGG files only ever appear by rename of a complete encode, so
repair does not open them. Good files are left alone, and running repair
twice does nothing the second time.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import soundfile as sf

from mediaserver.media.pcm import SAMPLE_RATE, WIDE_RATE, Pcm

__all__ = [
    "FORMATS",
    "Recorder",
    "RecordingInfo",
    "RepairReport",
    "measure_recording",
    "repair_recordings",
]

Format = Literal["wav", "flac", "ogg"]
Channels = Literal["mono", "dual"]
RepairAction = Literal["fixed", "finished", "removed", "damaged", "failed"]

FORMATS = MappingProxyType(
    {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
)
"""Recording formats: libsndfile's major format and subtype for each."""

CHANNEL_COUNTS = MappingProxyType({"mono": 1, "dual": 2})

SAMPLE_RATES = (SAMPLE_RATE, WIDE_RATE)
"""The rates a recording is written at: the server's 8 kHz, or wideband's 16 kHz."""

JOURNAL_SUFFIX = ".part"
ENCODING_SUFFIX = ".tmp"
DAMAGED_SUFFIX = ".damaged"

MAX_FLUSH_INTERVAL = 60.0
"""The buffer holds this much audio at most (1.9 MB in dual); a crash loses up to it."""

ENCODE_BLOCK_FRAMES = 65536
"""Frames copied from a journal to the encoder at a time (8 s at 8 kHz)."""

_HEADER_PROBE_BYTES = 65536
_RIFF_SIZE_OFFSET = 4
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A finished recording."""

    path: Path
    duration_s: float
    frames: int
    format: Format
    channels: Channels
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What :func:`repair_recordings` did to one file.

    ``path`` is the file as it is now (the final file for a finished
    journal, the ``.damaged`` name for a damaged one, the deleted file for
    ``removed``); ``frames`` is the audio it holds (0 when removed/damaged).
    """

    path: Path
    action: RepairAction
    frames: int
    detail: str
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


class Recorder:
    """One recording being written; see the module docstring.

    ``format`` defaults to the path's suffix. The file (and for FLAC/OGG its
    journal) must not exist yet: a recording never overwrites another.
    ``flush_interval`` is the most audio a ``kill -9`` can lose (0 writes
    every frame through to the file). ``sample_rate``: one of
    :data:`SAMPLE_RATES`; what :meth:`write` is given must be at that rate.

    Costs, measured by ``tests/load/mixer_bench.py``: opening, about 0.1 ms
    of blocking I/O; :meth:`write` of a 20 ms frame, a copy into the buffer
    (1-2 us), plus once per ``flush_interval`` the file write and header
    patch (15-25 us); :meth:`close`, an fsync (1-3 ms) and, for FLAC/OGG,
    the encode (about 25 ms per minute of FLAC, 140-280 ms per minute of
    Vorbis): in the event loop use :meth:`aclose`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: Format | None = None,
        channels: Channels = "mono",
        flush_interval: float = 1.0,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.path = Path(path)
        self.format: Format = _checked_format(self.path, format)
        if channels not in CHANNEL_COUNTS:
            raise ValueError(f"channels must be 'mono' or 'dual', got {channels!r}")
        if not 0.0 <= flush_interval <= MAX_FLUSH_INTERVAL:
            raise ValueError(
                f"flush_interval must be between 0 and {MAX_FLUSH_INTERVAL:g} seconds, "
                f"got {flush_interval}"
            )
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be 8000 or 16000, got {sample_rate}")
        self.channels: Channels = channels
        self.flush_interval = flush_interval
        self.sample_rate = sample_rate
        self.frames = 0
        """Frames written (or waiting in the buffer), paused stretches excluded."""
        self.paused = False
        self._width = CHANNEL_COUNTS[channels]
        self._buffer = np.zeros((round(flush_interval * sample_rate), self._width), np.int16)
        self._buffered = 0
        self._on_disk = 0
        self._data_offset: int | None = None
        self._info: RecordingInfo | None = None
        self._closing = False
        if self.format != "wav" and self.path.exists():
            raise FileExistsError(f"{self.path}: a recording already exists there")
        self._live = _journal_path(self.path) if self.format != "wav" else self.path
        # O_EXCL claims the name: two recordings can never write to one file.
        self._fd = os.open(self._live, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            self._file = sf.SoundFile(
                self._live, "w", sample_rate, self._width, "PCM_16", format="WAV"
            )
        except BaseException:
            os.close(self._fd)
            self._live.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------ getters

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def live_path(self) -> Path:
        """The file being written: the final WAV, or the journal of a FLAC/OGG."""
        return self._live

    # ------------------------------------------------------------ writing

    def write(self, left: Pcm, right: Pcm | None = None) -> None:
        """Record one frame (or any number of samples).

        Mono: ``left`` alone, or ``left`` and ``right`` mixed (summed and
        clipped). Dual: ``left`` (the caller) on the left channel, ``right``
        (the other party; silence when None) on the right; a shorter side is
        padded with silence. Ignored while paused. ``ValueError`` once closed.
        """
        if self._closing:
            raise ValueError(f"{self.path}: the recording is closed")
        if self.paused:
            return
        frame: npt.NDArray[np.int16]
        if self._width == 1:
            frame = left if right is None else _mixed(left, right)
            frame = frame.reshape(-1, 1)
        else:
            length = max(len(left), 0 if right is None else len(right))
            frame = np.zeros((length, 2), np.int16)
            frame[: len(left), 0] = left
            if right is not None:
                frame[: len(right), 1] = right
        self.frames += len(frame)
        capacity = len(self._buffer)
        if capacity == 0:
            self._write_file(frame)
            return
        done = 0
        while done < len(frame):
            take = min(capacity - self._buffered, len(frame) - done)
            self._buffer[self._buffered : self._buffered + take] = frame[done : done + take]
            self._buffered += take
            done += take
            if self._buffered == capacity:
                self.flush()

    def flush(self) -> None:
        """Write the buffered audio and update the header sizes (no fsync)."""
        if self._buffered:
            self._write_file(self._buffer[: self._buffered])
            self._buffered = 0

    def pause(self) -> None:
        """Stop recording until :meth:`resume`; the paused time is omitted."""
        if not self._closing:
            self.flush()
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    # ------------------------------------------------------------ closing

    def close(self) -> RecordingInfo:
        """Finish the file and return what was recorded (blocking: fsync, and
        the encode of a FLAC/OGG). Closing again returns the same info."""
        self._begin_close()
        return self._finish_close()

    async def aclose(self) -> RecordingInfo:
        """:meth:`close` with its blocking part in the default executor."""
        self._begin_close()
        return await asyncio.get_running_loop().run_in_executor(None, self._finish_close)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _begin_close(self) -> None:
        """The part of closing that must run where :meth:`write` runs."""
        if not self._closing:
            self.flush()
            self._closing = True

    def _finish_close(self) -> RecordingInfo:
        if self._info is not None:
            return self._info
        if not self._file.closed:
            self._file.close()  # libsndfile writes the final header and fsyncs
            os.close(self._fd)
        frames = self.frames
        if self.format != "wav":
            frames = _encode(self._live, self.path, self.format)
            self._live.unlink()
        self._info = RecordingInfo(
            self.path,
            frames / self.sample_rate,
            frames,
            self.format,
            self.channels,
            self.path.stat().st_size,
        )
        return self._info

    # ------------------------------------------------------------ internals

    def _write_file(self, audio: npt.NDArray[np.int16]) -> None:
        self._file.write(audio)
        self._on_disk += len(audio)
        self._patch_header()

    def _patch_header(self) -> None:
        """Make the sizes in the live WAV's header cover what is on disk."""
        if self._data_offset is None:
            layout = _read_layout(self._fd)
            if layout is None:
                return
            self._data_offset = layout.data_offset
        data_bytes = self._on_disk * self._width * 2
        _write_sizes(self._fd, self._data_offset, data_bytes)


def _checked_format(path: Path, format: str | None) -> Format:
    suffix = path.suffix.lower().lstrip(".")
    chosen = suffix if format is None else format
    if chosen not in FORMATS:
        known = ", ".join(FORMATS)
        raise ValueError(f"{path}: unknown recording format {chosen!r} (known: {known})")
    if format is not None and suffix != format:
        raise ValueError(f"{path}: the suffix does not match the format {format!r}")
    return cast(Format, chosen)


def _journal_path(final: Path) -> Path:
    return final.with_name(final.name + JOURNAL_SUFFIX)


def _mixed(left: Pcm, right: Pcm) -> Pcm:
    """Both sides of a call in one channel: summed in int32, then clipped."""
    length = max(len(left), len(right))
    total = np.zeros(length, np.int32)
    total[: len(left)] += left
    total[: len(right)] += right
    return np.clip(total, -32768, 32767).astype(np.int16)


def _encode(journal: Path, final: Path, format: Format) -> int:
    """Encode a WAV journal into ``final`` (via a fsynced temporary file and
    a rename, so ``final`` is never partial); returns the frames encoded."""
    major, subtype = FORMATS[format]
    temporary = final.with_name(final.name + ENCODING_SUFFIX)
    frames = 0
    with sf.SoundFile(journal) as source:
        channels, rate = source.channels, source.samplerate
        with sf.SoundFile(temporary, "w", rate, channels, subtype, format=major) as target:
            for block in source.blocks(ENCODE_BLOCK_FRAMES, dtype="int16", always_2d=True):
                target.write(block)
                frames += len(block)
            if frames == 0 and format == "flac":
                # libsndfile writes no FLAC header at all for zero frames: one silent frame instead.
                target.write(np.zeros((1, channels), np.int16))
                frames = 1
    with open(temporary, "rb") as written:
        os.fsync(written.fileno())
    os.replace(temporary, final)
    _fsync_directory(final.parent)
    return frames


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- WAV headers


@dataclass(frozen=True, slots=True)
class _WavLayout:
    data_offset: int
    data_size: int
    riff_size: int
    block_align: int
    sample_rate: int


def _parse_layout(head: bytes) -> _WavLayout | None:
    """Where the audio starts in a RIFF/WAVE header; None if it is not one
    (or its ``data`` chunk is not within ``head``)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    riff_size = struct.unpack_from("<I", head, _RIFF_SIZE_OFFSET)[0]
    block_align = sample_rate = 0
    position = 12
    while position + 8 <= len(head):
        chunk, size = head[position : position + 4], struct.unpack_from("<I", head, position + 4)[0]
        if chunk == b"fmt " and position + 8 + 14 <= len(head):
            sample_rate = struct.unpack_from("<I", head, position + 8 + 4)[0]
            block_align = struct.unpack_from("<H", head, position + 8 + 12)[0]
        elif chunk == b"data":
            if block_align == 0:
                return None
            return _WavLayout(position + 8, size, riff_size, block_align, sample_rate)
        # RIFF chunks are padded to an even size.
        position += 8 + size + (size & 1)
    return None


def _read_layout(fd: int) -> _WavLayout | None:
    return _parse_layout(os.pread(fd, _HEADER_PROBE_BYTES, 0))


def _write_sizes(fd: int, data_offset: int, data_bytes: int) -> None:
    # The data size first: a crash between the two writes leaves a RIFF size repair fixes.
    os.pwrite(fd, struct.pack("<I", data_bytes), data_offset - 4)
    os.pwrite(fd, struct.pack("<I", data_offset + data_bytes - 8), _RIFF_SIZE_OFFSET)


def _looks_like_chunk(fd: int, position: int, file_size: int) -> bool:
    """Whether a RIFF chunk header that fits in the file starts at ``position``."""
    header = os.pread(fd, 8, position)
    if len(header) < 8:
        return False
    name, size = header[:4], struct.unpack("<I", header[4:])[0]
    printable = all(48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 32 for c in name)
    return printable and position + 8 + size <= file_size


class _Damaged(Exception):
    """The file cannot be recovered."""


def _repair_wav(path: Path) -> tuple[bool, int, int]:
    """Fix the sizes in a WAV header from the file's length. Returns whether
    anything changed, the frames the file holds and its sample rate;
    :class:`_Damaged` when it has no usable header."""
    with open(path, "r+b") as file:
        fd = file.fileno()
        file_size = os.fstat(fd).st_size
        layout = _read_layout(fd)
        if layout is None:
            raise _Damaged("no RIFF/WAVE header with a fmt and a data chunk")
        available = file_size - layout.data_offset
        claimed = layout.data_size
        if (
            claimed not in _UNKNOWN_SIZES
            and claimed < available
            and _looks_like_chunk(fd, layout.data_offset + claimed + (claimed & 1), file_size)
        ):
            # Another chunk follows the audio: a finished file, sizes and all.
            return False, claimed // layout.block_align, layout.sample_rate
        data_bytes = max(available, 0) // layout.block_align * layout.block_align
        end = layout.data_offset + data_bytes
        if data_bytes == claimed and layout.riff_size == end - 8 and file_size == end:
            return False, data_bytes // layout.block_align, layout.sample_rate
        if file_size > end:
            os.ftruncate(fd, end)  # only a frame torn by the crash
        _write_sizes(fd, layout.data_offset, data_bytes)
        os.fsync(fd)
        return True, data_bytes // layout.block_align, layout.sample_rate


def _mark_damaged(path: Path, why: str) -> RepairReport:
    damaged = path.with_name(path.name + DAMAGED_SUFFIX)
    os.replace(path, damaged)
    return RepairReport(damaged, "damaged", 0, why)


def _final_path(path: Path) -> str:
    """The recording ``path`` belongs to (itself, or the file its journal or encode makes)."""
    for suffix in (JOURNAL_SUFFIX, ENCODING_SUFFIX):
        if _is_companion(path.name, suffix):
            path = path.with_name(path.name[: -len(suffix)])
    return str(path.resolve())


def _is_companion(name: str, suffix: str) -> bool:
    """Whether ``name`` is a recording's name plus ``suffix`` (a journal, an encode)."""
    final = name[: -len(suffix)].lower()
    return name.endswith(suffix) and any(final.endswith("." + fmt) for fmt in FORMATS)


def repair_recordings(
    folder: str | os.PathLike[str], under_way: Collection[Path] = ()
) -> list[RepairReport]:
    """Repair what a crash left in ``folder`` (and below); see the module
    docstring. Returns one report per file acted on, none for good files; a
    file that cannot be touched (permissions, I/O error) gets a ``failed``
    report and is left as it is, so one bad file never stops a start-up.
    ``under_way``: recordings (their final paths, resolved) another server
    sharing the folder is writing now; they and their companions are left alone.
    Blocking: run at start-up, before any recording starts."""
    skipped = {str(path) for path in under_way}
    # Encodes first (their journals are still there), then journals, then WAVs.
    phases: list[tuple[Callable[[str], bool], Callable[[Path], RepairReport | None]]] = [
        (lambda name: _is_companion(name, ENCODING_SUFFIX), _remove_encoding),
        (lambda name: _is_companion(name, JOURNAL_SUFFIX), _finish_journal),
        (lambda name: name.lower().endswith(".wav"), _repair_final_wav),
    ]
    reports: list[RepairReport] = []
    for directory, _, names in os.walk(folder):
        for applies, repair in phases:
            for name in sorted(names):
                path = Path(directory) / name
                if _final_path(path) in skipped:
                    continue
                if applies(name) and path.exists():
                    report = _attempt(path, repair)
                    if report is not None:
                        reports.append(report)
    return reports


def measure_recording(path: str | os.PathLike[str]) -> tuple[float, int] | None:
    """A repaired recording's duration (seconds) and size (bytes); None when there is
    no readable file (damaged, deleted). Blocking."""
    try:
        info = sf.info(str(path))
        size = os.stat(path).st_size
    except (OSError, sf.LibsndfileError, RuntimeError):
        return None
    return info.frames / info.samplerate, size


def _attempt(path: Path, repair: Callable[[Path], RepairReport | None]) -> RepairReport | None:
    try:
        return repair(path)
    except OSError as exc:
        return RepairReport(path, "failed", 0, f"left as it is: {exc.strerror or exc}")


def _remove_encoding(path: Path) -> RepairReport:
    path.unlink(missing_ok=True)
    return RepairReport(path, "removed", 0, "an encode interrupted by the crash")


def _finish_journal(journal: Path) -> RepairReport:
    final = journal.with_name(journal.name[: -len(JOURNAL_SUFFIX)])
    try:
        _, _, rate = _repair_wav(journal)
    except _Damaged as exc:
        return _mark_damaged(journal, str(exc))
    format = _checked_format(final, None)
    if format == "wav":
        os.replace(journal, final)
        frames = sf.info(str(final)).frames
    else:
        try:
            frames = _encode(journal, final, format)
        except (sf.LibsndfileError, RuntimeError) as exc:
            final.with_name(final.name + ENCODING_SUFFIX).unlink(missing_ok=True)
            return _mark_damaged(journal, f"libsndfile cannot read it: {exc}")
        journal.unlink()
    return RepairReport(final, "finished", frames, f"encoded from {journal.name}", rate)


def _repair_final_wav(path: Path) -> RepairReport | None:
    try:
        changed, frames, rate = _repair_wav(path)
    except _Damaged as exc:
        try:
            # A layout we do not parse may still be a good file: libsndfile decides.
            sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError):
            return _mark_damaged(path, str(exc))
        return None
    if not changed:
        return None
    return RepairReport(path, "fixed", frames, "header sizes rewritten from the file length", rate)
