"""Recording on the clock: both sides of a call (following a bridge), and messages ended
by silence or length, with the trailing silence left out."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_fakes import ManualClock, sine

from mediaserver.media.leg import SILENT_FRAME
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.recorder import Recorder
from mediaserver.media.recording import (
    SILENCE_DBFS,
    CallRecording,
    MessageRecording,
    SilenceDetector,
    frame_dbfs,
)


class FakeLeg:
    """A leg whose received and sent audio are given per tick."""

    def __init__(self, clock: ManualClock, heard: Pcm | None = None, said: Pcm | None = None):
        self.clock = clock
        self.heard = heard if heard is not None else np.zeros(0, np.int16)
        self.said = said if said is not None else np.zeros(0, np.int16)
        self.fed_by: FakeLeg | None = None
        self.listeners: set[object] = set()

    def listen(self, owner: object) -> None:
        self.listeners.add(owner)

    def unlisten(self, owner: object) -> None:
        self.listeners.discard(owner)

    def _frame(self, audio: Pcm) -> Pcm:
        start = (self.clock.ticks - 1) * FRAME_SAMPLES
        frame = audio[start : start + FRAME_SAMPLES]
        return frame if len(frame) == FRAME_SAMPLES else SILENT_FRAME

    def received_frame(self) -> Pcm:
        return self._frame(self.heard)

    def sent_frame(self) -> Pcm:
        if self.fed_by is not None:
            return self.fed_by.received_frame()
        return self._frame(self.said)


def test_levels_and_silence() -> None:
    assert frame_dbfs(SILENT_FRAME) == -math.inf
    assert frame_dbfs(np.full(160, 32767, np.int16)) == pytest.approx(0.0, abs=0.01)
    assert frame_dbfs(sine(1000, 0.02, peak=32767)) == pytest.approx(-3.0, abs=0.1)
    detector = SilenceDetector(timeout=0.1)
    quiet = np.full(160, 100, np.int16)  # -50 dBFS: below the threshold
    assert frame_dbfs(quiet) < SILENCE_DBFS
    assert [detector.feed(quiet) for _ in range(4)] == [True] * 4 and not detector.timed_out
    assert not detector.feed(sine(500, 0.02))
    assert detector.heard and detector.silent_seconds == 0.0
    for _ in range(5):
        detector.feed(quiet)
    assert detector.timed_out


async def test_dual_recording_follows_the_leg_relayed_to_the_caller(tmp_path: Path) -> None:
    clock = ManualClock()
    caller = FakeLeg(clock, heard=sine(700, 1.0), said=sine(350, 1.0))
    callee = FakeLeg(clock, heard=sine(1100, 1.0))
    recorder = Recorder(tmp_path / "call.wav", channels="dual")
    recording = CallRecording(clock, caller, recorder)  # type: ignore[arg-type]
    assert recording in caller.listeners
    for _ in range(25):
        clock.step()
    caller.fed_by = callee  # dial@v1 bridges the call
    for _ in range(25):
        clock.step()
    assert recording in callee.listeners  # the callee's leg is decoded for the recording
    caller.fed_by = None
    clock.step()
    assert recording not in callee.listeners
    info = await recording.stop()
    assert recording.stop() is recording.stop()
    assert recording not in caller.listeners and recording not in clock.members()
    assert info.duration_s == pytest.approx(51 * 0.02)
    data, _ = sf.read(str(info.path), dtype="int16", always_2d=True)
    assert np.array_equal(data[:, 0], sine(700, 1.02)[: len(data)] * (np.arange(len(data)) < 8000))
    assert np.array_equal(data[:4000, 1], sine(350, 0.5))
    assert np.array_equal(data[4000:8000, 1], sine(1100, 1.0)[4000:8000])


async def test_mono_recording_mixes_both_sides_and_pause_leaves_time_out(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    leg = FakeLeg(clock, heard=np.full(8000, 1000, np.int16), said=np.full(8000, 200, np.int16))
    recording = CallRecording(clock, leg, Recorder(tmp_path / "m.wav"))  # type: ignore[arg-type]
    for _ in range(10):
        clock.step()
    recording.pause()
    for _ in range(10):
        clock.step()
    recording.resume()
    for _ in range(10):
        clock.step()
    info = await recording.stop()
    data, _ = sf.read(str(info.path), dtype="int16")
    assert len(data) == 20 * FRAME_SAMPLES and set(data.tolist()) == {1200}


def voice_then(silence_s: float, *, voice_s: float = 1.0, lead_s: float = 0.2) -> Pcm:
    return np.concatenate(
        [
            np.zeros(round(lead_s * 8000), np.int16),
            sine(400, voice_s),
            np.zeros(round(silence_s * 8000), np.int16),
        ]
    )


async def test_a_message_ends_after_the_silence_which_is_not_kept(tmp_path: Path) -> None:
    clock = ManualClock()
    leg = FakeLeg(clock, heard=voice_then(3.0))
    message = MessageRecording(
        clock,
        leg,
        Recorder(tmp_path / "vm.wav"),
        max_length=60,
        silence_timeout=1.0,  # type: ignore[arg-type]
    )
    ticks = 0
    while not message.ended.done():
        clock.step()
        ticks += 1
    assert message.ended.result() == "silence"
    assert ticks == round((0.2 + 1.0 + 1.0) / 0.02)
    info = await message.stop()
    assert info.duration_s == pytest.approx(1.2)  # the lead-in and the voice; not the silence
    data, _ = sf.read(str(info.path), dtype="int16")
    assert not data[:1600].any() and data[1600:].any()


async def test_a_message_ends_at_max_length_and_keeps_inner_pauses(tmp_path: Path) -> None:
    clock = ManualClock()
    talk = np.concatenate([voice_then(0.5, lead_s=0), voice_then(0.0, voice_s=3.0, lead_s=0)])
    leg = FakeLeg(clock, heard=talk)
    message = MessageRecording(
        clock,
        leg,
        Recorder(tmp_path / "vm.wav"),
        max_length=2.0,
        silence_timeout=1.0,  # type: ignore[arg-type]
    )
    while not message.ended.done():
        clock.step()
    assert message.ended.result() == "max_length"
    info = await message.stop()
    assert info.duration_s == pytest.approx(2.0)


async def test_a_message_stopped_early_drops_the_silence_held_back(tmp_path: Path) -> None:
    clock = ManualClock()
    leg = FakeLeg(clock, heard=voice_then(2.0, lead_s=0))
    message = MessageRecording(
        clock,
        leg,
        Recorder(tmp_path / "vm.wav"),
        max_length=60,
        silence_timeout=5,  # type: ignore[arg-type]
    )
    for _ in range(75):  # 1 s of voice, 0.5 s of silence: then the caller presses #
        clock.step()
    info = await message.stop()
    assert message.ended.result() == "stopped"
    assert info.duration_s == pytest.approx(1.0)


async def test_a_failing_disk_stops_the_recording_not_the_clock(tmp_path: Path) -> None:
    clock = ManualClock()
    leg = FakeLeg(clock, heard=sine(500, 1.0))
    recorder = Recorder(tmp_path / "full.wav", flush_interval=0)
    recording = CallRecording(clock, leg, recorder)  # type: ignore[arg-type]
    clock.step()

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    recorder.write = full  # type: ignore[method-assign]
    clock.step()
    assert recording.failed == "[Errno 28] No space left on device"
    assert recording not in clock.members()
    info = await recording.stop()
    assert info.frames == FRAME_SAMPLES  # what reached the disk is a valid file
