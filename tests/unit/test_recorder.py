"""Recordings: formats and channel layouts, pause, live headers, the event loop, crash repair."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from mediaserver.media import recorder as recorder_module
from mediaserver.media.pcm import SAMPLE_RATE, Pcm
from mediaserver.media.recorder import Recorder, RecordingInfo, measure_recording, repair_recordings
from tests.support.audio import goertzel_power

ROOT = Path(__file__).resolve().parents[2]
FRAME = 160
LEFT_HZ, RIGHT_HZ = 440.0, 1000.0


def sine(frequency: float, seconds: float, amplitude: float = 8000.0) -> Pcm:
    n = np.arange(round(seconds * SAMPLE_RATE))
    return np.round(amplitude * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)).astype(np.int16)


def pattern(start: int, count: int) -> Pcm:
    """A signal whose every sample says where it is: lost or shifted audio shows."""
    n = np.arange(start, start + count, dtype=np.int64)
    return ((n * 7) % 20001 - 10000).astype(np.int16)


def write_frames(recorder: Recorder, left: Pcm, right: Pcm | None = None) -> None:
    for start in range(0, len(left), FRAME):
        recorder.write(
            left[start : start + FRAME], None if right is None else right[start : start + FRAME]
        )


def share(samples: npt.NDArray[np.floating], frequency: float) -> float:
    """Fraction of the energy of ``samples`` at ``frequency``."""
    total = float(np.mean(samples.astype(np.float64) ** 2))
    return goertzel_power(samples, SAMPLE_RATE, frequency) / total if total else 0.0


def header_sizes(path: Path) -> tuple[int, int]:
    """(RIFF size, data size) of a canonical 44-byte-header WAV."""
    head = path.read_bytes()[:44]
    assert head[36:40] == b"data"
    return struct.unpack_from("<I", head, 4)[0], struct.unpack_from("<I", head, 40)[0]


def strict_frames(path: Path) -> int:
    """Frames as a strict reader sees them: from the header's data size."""
    with wave.open(str(path), "rb") as reader:
        return reader.getnframes()


# ---------------------------------------------------------------- formats and layouts


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_dual_channel_puts_the_caller_left_and_the_other_party_right(
    tmp_path: Path, fmt: str
) -> None:
    left, right = sine(LEFT_HZ, 2.0), sine(RIGHT_HZ, 2.0)
    path = tmp_path / f"call.{fmt}"
    recorder = Recorder(path, channels="dual")
    write_frames(recorder, left, right)
    info = recorder.close()
    assert info == RecordingInfo(path, 2.0, 16000, fmt, "dual", path.stat().st_size)  # type: ignore[arg-type]
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    assert rate == SAMPLE_RATE and data.shape == (16000, 2)
    if fmt != "ogg":
        assert np.array_equal(data[:, 0], left) and np.array_equal(data[:, 1], right)
    assert share(data[:, 0], LEFT_HZ) > 0.95 and share(data[:, 0], RIGHT_HZ) < 0.01
    assert share(data[:, 1], RIGHT_HZ) > 0.95 and share(data[:, 1], LEFT_HZ) < 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no journal left


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_mono_records_one_side_or_both_mixed(tmp_path: Path, fmt: str) -> None:
    left, right = sine(LEFT_HZ, 1.0), sine(RIGHT_HZ, 1.0)
    one, both = tmp_path / f"one.{fmt}", tmp_path / f"both.{fmt}"
    with Recorder(one) as recorder:
        write_frames(recorder, left)
    with Recorder(both) as recorder:
        write_frames(recorder, left, right)
    single, _ = sf.read(str(one), dtype="int16")
    mixed, _ = sf.read(str(both), dtype="int16")
    assert single.shape == mixed.shape == (8000,)
    assert share(single, LEFT_HZ) > 0.95
    assert share(mixed, LEFT_HZ) == pytest.approx(0.5, abs=0.05)
    assert share(mixed, RIGHT_HZ) == pytest.approx(0.5, abs=0.05)
    if fmt != "ogg":
        assert np.array_equal(single, left)
        assert np.array_equal(mixed, left.astype(np.int32) + right)


def test_mono_mixing_of_two_loud_sides_clips_instead_of_wrapping(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    with Recorder(path) as recorder:
        recorder.write(np.full(160, 30000, np.int16), np.full(160, 30000, np.int16))
        recorder.write(np.full(160, -30000, np.int16), np.full(100, -30000, np.int16))
    data, _ = sf.read(str(path), dtype="int16")
    assert data[:160].tolist() == [32767] * 160
    assert data[160:260].tolist() == [-32768] * 100
    assert data[260:].tolist() == [-30000] * 60


def test_a_dual_recording_without_the_other_side_has_a_silent_right_channel(
    tmp_path: Path,
) -> None:
    path = tmp_path / "voicemail.wav"
    with Recorder(path, channels="dual") as recorder:
        recorder.write(sine(LEFT_HZ, 0.02))
        recorder.write(np.ones(100, np.int16), np.ones(160, np.int16))
    data, _ = sf.read(str(path), dtype="int16", always_2d=True)
    assert data.shape == (320, 2)
    assert not data[:160, 1].any()
    assert data[160:260, 0].tolist() == [1] * 100 and not data[260:, 0].any()


def test_any_chunk_size_is_accepted(tmp_path: Path) -> None:
    audio = pattern(0, 30000)
    path = tmp_path / "chunks.wav"
    recorder = Recorder(path, flush_interval=0.5)
    sizes = [1, 159, 4000, 7999, 8001, 9838, 2]
    start = 0
    for size in sizes:
        recorder.write(audio[start : start + size])
        start += size
    assert recorder.close().frames == sum(sizes) == 30000
    assert np.array_equal(sf.read(str(path), dtype="int16")[0], audio)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_an_empty_recording_is_a_readable_file(tmp_path: Path, fmt: str) -> None:
    info = Recorder(tmp_path / f"empty.{fmt}").close()
    assert sf.info(str(info.path)).frames == info.frames <= 1


# ---------------------------------------------------------------- pause


def test_paused_time_is_omitted(tmp_path: Path) -> None:
    path = tmp_path / "paused.wav"
    recorder = Recorder(path)
    write_frames(recorder, pattern(0, 8000))
    recorder.pause()
    assert recorder.paused
    # Everything before the pause is on disk at once: a long pause risks nothing.
    assert strict_frames(path) == 8000
    write_frames(recorder, np.full(8000, 999, np.int16))
    recorder.resume()
    write_frames(recorder, pattern(8000, 8000))
    info = recorder.close()
    assert info.frames == 16000 and info.duration_s == 2.0
    data, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(data, pattern(0, 16000))


def test_pause_and_resume_in_dual_flac(tmp_path: Path) -> None:
    path = tmp_path / "paused.flac"
    recorder = Recorder(path, channels="dual")
    recorder.pause()
    write_frames(recorder, sine(LEFT_HZ, 0.5), sine(RIGHT_HZ, 0.5))
    recorder.resume()
    write_frames(recorder, pattern(0, 4000), pattern(4000, 4000))
    assert recorder.close().frames == 4000
    data, _ = sf.read(str(path), dtype="int16", always_2d=True)
    assert np.array_equal(data[:, 0], pattern(0, 4000))
    assert np.array_equal(data[:, 1], pattern(4000, 4000))


# ---------------------------------------------------------------- the live file


def test_the_live_wav_header_covers_what_was_flushed(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    recorder = Recorder(path, channels="dual", flush_interval=1.0)
    write_frames(recorder, pattern(0, 12000), pattern(1, 12000))
    # 1.5 s written: the first second is on disk, and the header says so.
    assert header_sizes(path) == (36 + 8000 * 4, 8000 * 4)
    assert strict_frames(path) == 8000
    recorder.flush()
    assert strict_frames(path) == 12000
    recorder.close()
    assert strict_frames(path) == 12000


def test_a_zero_flush_interval_writes_through(tmp_path: Path) -> None:
    path = tmp_path / "through.wav"
    recorder = Recorder(path, flush_interval=0)
    recorder.write(pattern(0, 160))
    assert strict_frames(path) == 160
    recorder.close()


def test_a_flac_recording_is_journaled_as_wav_until_closed(tmp_path: Path) -> None:
    path = tmp_path / "journal.flac"
    recorder = Recorder(path)
    write_frames(recorder, pattern(0, 9000))
    assert recorder.live_path == tmp_path / "journal.flac.part"
    assert not path.exists()
    assert strict_frames(recorder.live_path) == 8000
    recorder.close()
    assert not recorder.live_path.exists()
    assert np.array_equal(sf.read(str(path), dtype="int16")[0], pattern(0, 9000))


def test_bad_arguments_and_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown recording format"):
        Recorder(tmp_path / "a.mp3")
    with pytest.raises(ValueError, match="does not match"):
        Recorder(tmp_path / "a.wav", format="flac")
    with pytest.raises(ValueError, match="channels"):
        Recorder(tmp_path / "a.wav", channels="stereo")  # type: ignore[arg-type]
    for interval in (-1.0, 61.0, float("nan")):
        with pytest.raises(ValueError, match="flush_interval"):
            Recorder(tmp_path / "a.wav", flush_interval=interval)
    with pytest.raises(FileNotFoundError):
        Recorder(tmp_path / "missing" / "a.wav")
    assert list(tmp_path.iterdir()) == []
    recorder = Recorder(tmp_path / "a.wav")
    with pytest.raises(FileExistsError):
        Recorder(tmp_path / "a.wav")
    recorder.write(pattern(0, 160))
    info = recorder.close()
    assert recorder.close() is info
    with pytest.raises(ValueError, match="closed"):
        recorder.write(pattern(0, 160))
    (tmp_path / "b.ogg").write_bytes(b"a finished recording")
    with pytest.raises(FileExistsError):
        Recorder(tmp_path / "b.ogg")


# ---------------------------------------------------------------- the event loop


async def test_recording_keeps_the_event_loop_responsive(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    left, right = sine(LEFT_HZ, 60.0), sine(RIGHT_HZ, 60.0)
    lags: list[float] = []
    stop = asyncio.Event()

    async def watchdog() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - before - 0.001)

    async def record(path: Path, channels: str) -> RecordingInfo:
        recorder = Recorder(path, channels=channels)  # type: ignore[arg-type]
        for start in range(0, len(left), FRAME):
            recorder.write(left[start : start + FRAME], right[start : start + FRAME])
            if start % (FRAME * 10) == 0:
                await asyncio.sleep(0)
        return await recorder.aclose()

    guard = asyncio.create_task(watchdog())
    infos = await asyncio.gather(
        *(record(tmp_path / f"r{i}.{fmt}", "dual") for i, fmt in enumerate(["wav", "flac", "ogg"]))
    )
    stop.set()
    await guard
    assert [info.frames for info in infos] == [480000] * 3
    # Closing these three in the loop (close() instead of aclose()) stalls it for about 0.25 s.
    assert max(lags) < 0.1, max(lags)


# ---------------------------------------------------------------- crash and repair

CHILD = """
import sys, time
import numpy as np
from mediaserver.media.recorder import Recorder

path, channels = sys.argv[1], sys.argv[2]
recorder = Recorder(path, channels=channels)
written = 0
while True:
    n = np.arange(written, written + 160, dtype=np.int64)
    left = ((n * 7) % 20001 - 10000).astype(np.int16)
    recorder.write(left, -left if channels == "dual" else None)
    written += 160
    print(written, flush=True)
    time.sleep(0.001)
"""


def record_then_kill(path: Path, channels: str, seconds: float) -> int:
    """Record in a child process, ``kill -9`` it after ``seconds`` of audio;
    returns the frames it reported as written."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), channels],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    written = 0
    deadline = time.monotonic() + 60
    while written < seconds * SAMPLE_RATE and time.monotonic() < deadline:
        line = child.stdout.readline()
        assert line, "the recording process died"
        written = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    # Frames it wrote before dying but we had not read yet.
    for line in child.stdout.read().split():
        written = int(line)
    child.stdout.close()
    return written


@pytest.mark.parametrize(
    ("name", "channels"), [("crash.wav", "mono"), ("crash.wav", "dual"), ("crash.flac", "mono")]
)
def test_a_killed_recording_is_repaired_losing_at_most_a_second(
    tmp_path: Path, name: str, channels: str
) -> None:
    path = tmp_path / name
    written = record_then_kill(path, channels, 3.3)
    reports = repair_recordings(tmp_path)
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    assert rate == SAMPLE_RATE
    kept = len(data)
    # The child may have written (and flushed) one frame it had not reported yet.
    assert written - SAMPLE_RATE < kept <= written + FRAME, (written, kept)
    assert np.array_equal(data[:, 0], pattern(0, kept))
    if channels == "dual":
        assert np.array_equal(data[:, 1], -pattern(0, kept))
    if path.suffix == ".wav":
        assert strict_frames(path) == kept
        # The header patched after each write already covers what reached the disk.
        assert [r.action for r in reports] in ([], ["fixed"])
    else:
        assert [(r.path, r.action, r.frames) for r in reports] == [(path, "finished", kept)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert repair_recordings(tmp_path) == []


def unfinished_wav(path: Path, audio: npt.NDArray[np.int16], channels: int = 1) -> Path:
    """A WAV as libsndfile leaves it until closed: the header says no audio."""
    scratch = path.with_name("scratch-" + path.name)
    with sf.SoundFile(scratch, "w", SAMPLE_RATE, channels, "PCM_16", format="WAV") as file:
        file.write(audio)
        shutil.copyfile(scratch, path)
    scratch.unlink()
    return path


def test_a_wav_with_a_zero_size_header_is_repaired(tmp_path: Path) -> None:
    path = unfinished_wav(tmp_path / "zero.wav", pattern(0, 12345))
    assert header_sizes(path)[1] == 0
    with pytest.raises(wave.Error):
        strict_frames(path)  # a strict reader finds no audio at all
    [report] = repair_recordings(tmp_path)
    assert (report.path, report.action, report.frames) == (path, "fixed", 12345)
    assert report.duration_s == pytest.approx(12345 / SAMPLE_RATE)
    assert header_sizes(path) == (36 + 24690, 24690)
    assert strict_frames(path) == 12345
    assert np.array_equal(sf.read(str(path), dtype="int16")[0], pattern(0, 12345))


def test_a_torn_last_frame_is_cut_off(tmp_path: Path) -> None:
    stereo = np.stack([pattern(0, 1000), pattern(5, 1000)], axis=1)
    path = unfinished_wav(tmp_path / "torn.wav", stereo, channels=2)
    with open(path, "ab") as file:
        file.write(b"\x01\x02\x03")  # three bytes of a four-byte stereo frame
    [report] = repair_recordings(tmp_path)
    assert report.frames == 1000
    assert path.stat().st_size == 44 + 4000
    data, _ = sf.read(str(path), dtype="int16")
    assert np.array_equal(data, stereo)


def test_audio_written_after_the_last_header_update_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "late.wav"
    recorder = Recorder(path)
    write_frames(recorder, pattern(0, 8000))
    recorder.close()
    with open(path, "ab") as file:  # as if killed between a write and its header patch
        file.write(pattern(8000, 4000).tobytes())
    [report] = repair_recordings(tmp_path)
    assert (report.action, report.frames) == ("fixed", 12000)
    assert np.array_equal(sf.read(str(path), dtype="int16")[0], pattern(0, 12000))


def test_a_journal_is_encoded_into_its_final_format(tmp_path: Path) -> None:
    unfinished_wav(tmp_path / "message.ogg.part", sine(LEFT_HZ, 1.5))
    (tmp_path / "message.ogg.tmp").write_bytes(b"half an encode")
    reports = repair_recordings(tmp_path)
    assert [(r.path.name, r.action) for r in reports] == [
        ("message.ogg.tmp", "removed"),
        ("message.ogg", "finished"),
    ]
    assert reports[1].frames == 12000
    data, _ = sf.read(str(tmp_path / "message.ogg"), dtype="int16")
    assert len(data) == 12000 and share(data, LEFT_HZ) > 0.95
    assert sorted(p.name for p in tmp_path.iterdir()) == ["message.ogg"]


def test_a_journal_left_next_to_its_finished_file_is_encoded_again(tmp_path: Path) -> None:
    path = tmp_path / "twice.flac"
    with Recorder(path) as recorder:
        write_frames(recorder, pattern(0, 4000))
    unfinished_wav(tmp_path / "twice.flac.part", pattern(0, 4000))
    [report] = repair_recordings(tmp_path)
    assert (report.action, report.frames) == ("finished", 4000)
    assert np.array_equal(sf.read(str(path), dtype="int16")[0], pattern(0, 4000))


def test_unrecoverable_files_are_renamed_damaged(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "noise.wav").write_bytes(os.urandom(3000))
    (tmp_path / "header-only.flac.part").write_bytes(b"RIFF\0\0\0\0WAVE")
    reports = repair_recordings(tmp_path)
    assert sorted((r.path.name, r.action) for r in reports) == [
        ("empty.wav.damaged", "damaged"),
        ("header-only.flac.part.damaged", "damaged"),
        ("noise.wav.damaged", "damaged"),
    ]
    assert repair_recordings(tmp_path) == []


def test_repair_leaves_good_files_alone_and_is_idempotent(tmp_path: Path) -> None:
    for fmt in ("wav", "flac", "ogg"):
        for channels in ("mono", "dual"):
            with Recorder(tmp_path / f"{channels}.{fmt}", channels=channels) as recorder:
                write_frames(recorder, sine(LEFT_HZ, 0.7), sine(RIGHT_HZ, 0.7))
    with sf.SoundFile(tmp_path / "tagged.wav", "w", SAMPLE_RATE, 1, "PCM_16") as tagged:
        tagged.title = "a LIST chunk after the audio"
        tagged.write(pattern(0, 1234))
    (tmp_path / "notes.txt").write_text("not a recording")
    sub = tmp_path / "2024" / "06"
    sub.mkdir(parents=True)
    unfinished_wav(sub / "nested.wav", pattern(0, 800))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    [report] = repair_recordings(tmp_path)
    assert (report.path, report.action) == (sub / "nested.wav", "fixed")
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {sub / "nested.wav"}
    assert repair_recordings(tmp_path) == []
    assert sf.info(str(tmp_path / "tagged.wav")).frames == 1234


def test_a_file_that_cannot_be_touched_is_reported_and_the_rest_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unfinished_wav(tmp_path / "a-locked.wav", pattern(0, 800))
    unfinished_wav(tmp_path / "b-fine.wav", pattern(0, 800))
    real = recorder_module._repair_wav

    def locked(path: Path) -> tuple[bool, int]:
        if path.name == "a-locked.wav":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(recorder_module, "_repair_wav", locked)
    reports = repair_recordings(tmp_path)
    assert [(r.path.name, r.action) for r in reports] == [
        ("a-locked.wav", "failed"),
        ("b-fine.wav", "fixed"),
    ]
    assert "Permission denied" in reports[0].detail


def test_measure_recording_reads_duration_and_size(tmp_path: Path) -> None:
    """What start-up writes into the index of an interrupted recording once repaired."""
    path = tmp_path / "cut.flac"
    with Recorder(path, flush_interval=0.0) as recorder:
        recorder.write(sine(LEFT_HZ, 1.5))
    measured = measure_recording(path)
    assert measured is not None
    assert measured == (1.5, path.stat().st_size)
    assert measure_recording(tmp_path / "gone.wav") is None
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    assert measure_recording(tmp_path / "junk.wav") is None


def test_recordings_another_server_is_writing_are_left_alone(tmp_path: Path) -> None:
    # A folder shared by several nodes: one starting must not finish another's journal.
    live = unfinished_wav(tmp_path / "live.flac.part", pattern(0, 800))
    left = unfinished_wav(tmp_path / "left.flac.part", pattern(0, 800))
    before = live.read_bytes()
    [report] = repair_recordings(tmp_path, under_way=[(tmp_path / "live.flac").resolve()])
    assert (report.path, report.action) == (tmp_path / "left.flac", "finished")
    assert not left.exists()
    assert live.read_bytes() == before


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_a_wideband_recording_is_written_and_encoded_at_16khz(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"wide.{fmt}"
    with Recorder(path, sample_rate=16000) as recorder:
        for start in range(0, 16000, 320):
            recorder.write(pattern(start, 320))
    info = recorder.close()
    assert (info.frames, info.duration_s) == (16000, 1.0)
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == 16000 and np.array_equal(data, pattern(0, 16000))
    with pytest.raises(ValueError, match="sample_rate must be 8000 or 16000"):
        Recorder(tmp_path / "odd.wav", sample_rate=44100)


def test_a_16khz_wav_repaired_reports_its_duration_at_its_rate(tmp_path: Path) -> None:
    path = tmp_path / "wide.wav"
    scratch = tmp_path / "scratch.wav"
    with sf.SoundFile(scratch, "w", 16000, 1, "PCM_16", format="WAV") as file:
        file.write(pattern(0, 8000))
        shutil.copyfile(scratch, path)
    scratch.unlink()
    [report] = repair_recordings(tmp_path)
    assert (report.action, report.frames, report.sample_rate) == ("fixed", 8000, 16000)
    assert report.duration_s == pytest.approx(0.5)
