"""Audio files: formats, rates, channels and sample types decoded to 8 kHz
mono int16; errors naming the file; the decode cache."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from mediaserver.actions.callapi import SAMPLE_RATE
from mediaserver.media import sources
from mediaserver.media.sources import (
    AudioError,
    PcmCache,
    decode_file,
    decode_file_rates,
    load_file,
)


def sine(
    frequency: float, seconds: float, rate: int, amplitude: float = 0.5
) -> npt.NDArray[np.float64]:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)


def spectrum(pcm: npt.NDArray[np.int16]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Power spectrum (Hann window) and its bin frequencies."""
    x = pcm.astype(np.float64) * np.hanning(len(pcm))
    power = (np.abs(np.fft.rfft(x)) ** 2).astype(np.float64)
    return power, np.fft.rfftfreq(len(pcm), 1.0 / SAMPLE_RATE).astype(np.float64)


def dominant_frequency(pcm: npt.NDArray[np.int16]) -> float:
    power, freqs = spectrum(pcm)
    return float(freqs[int(np.argmax(power))])


def power_near(pcm: npt.NDArray[np.int16], frequency: float, width: float = 15.0) -> float:
    """Share of the signal's power within ``width`` Hz of ``frequency``."""
    power, freqs = spectrum(pcm)
    return float(power[np.abs(freqs - frequency) <= width].sum() / power.sum())


def middle_rms(pcm: npt.NDArray[np.int16]) -> float:
    core = pcm[len(pcm) // 4 : 3 * len(pcm) // 4].astype(np.float64)
    return math.sqrt(float(np.mean(core**2)))


def write(path: Path, data: npt.NDArray[np.float64], rate: int, fmt: str, subtype: str) -> Path:
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    return path


LOSSLESS_CASES = [
    (rate, channels, fmt, subtype)
    for rate in (44100, 16000, 8000)
    for channels in (1, 2)
    for fmt, subtype in (("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "PCM_24"), ("FLAC", "PCM_16"))
]


@pytest.mark.parametrize(("rate", "channels", "fmt", "subtype"), LOSSLESS_CASES)
def test_lossless_files_decode_to_8k_mono(
    tmp_path: Path, rate: int, channels: int, fmt: str, subtype: str
) -> None:
    signal = sine(1000.0, 1.5, rate)
    data = np.stack([signal] * channels, axis=1) if channels > 1 else signal
    path = write(tmp_path / f"tone.{fmt.lower()}", data, rate, fmt, subtype)
    pcm = decode_file(path)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) - 12000) <= 1
    assert dominant_frequency(pcm) == pytest.approx(1000.0, abs=2.0)
    # Clean resampling: nearly all the power stays at 1 kHz.
    assert power_near(pcm, 1000.0) > 0.999
    # Level kept: a 0.5 sine has RMS 0.5/sqrt(2) of full scale.
    assert middle_rms(pcm) == pytest.approx(0.5 * 32768 / math.sqrt(2), rel=0.01)


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "suffix"),
    [
        ("OGG", "VORBIS", 44100, "ogg"),
        ("OGG", "OPUS", 48000, "opus"),
        ("MP3", "MPEG_LAYER_III", 44100, "mp3"),
        ("MP3", "MPEG_LAYER_III", 16000, "mp3"),
    ],
)
def test_compressed_files_decode(
    tmp_path: Path, fmt: str, subtype: str, rate: int, suffix: str
) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile has no {fmt}")
    data = np.stack([sine(440.0, 2.0, rate), sine(440.0, 2.0, rate)], axis=1)
    pcm = decode_file(write(tmp_path / f"tone.{suffix}", data, rate, fmt, subtype))
    assert abs(len(pcm) - 16000) <= 400
    assert dominant_frequency(pcm) == pytest.approx(440.0, abs=2.0)
    assert power_near(pcm, 440.0) > 0.95


def test_8k_mono_int16_wav_is_bit_exact(tmp_path: Path) -> None:
    original = np.random.default_rng(7).integers(-32768, 32768, 8000).astype(np.int16)
    path = tmp_path / "noise.wav"
    sf.write(path, original, SAMPLE_RATE, subtype="PCM_16")
    assert np.array_equal(decode_file(path), original)


def test_stereo_channels_are_averaged(tmp_path: Path) -> None:
    left, right = sine(440.0, 1.0, 16000), sine(1200.0, 1.0, 16000)
    pcm = decode_file(
        write(tmp_path / "two.wav", np.stack([left, right], axis=1), 16000, "WAV", "PCM_16")
    )
    assert power_near(pcm, 440.0) == pytest.approx(0.5, abs=0.01)
    assert power_near(pcm, 1200.0) == pytest.approx(0.5, abs=0.01)
    # Each channel at half level: averaging, not summing.
    assert middle_rms(pcm) == pytest.approx(0.5 * 32768 / 2, rel=0.01)


def test_many_channels(tmp_path: Path) -> None:
    data = np.stack([sine(700.0, 1.0, 8000)] * 6, axis=1)
    pcm = decode_file(write(tmp_path / "six.wav", data, 8000, "WAV", "PCM_16"))
    assert dominant_frequency(pcm) == pytest.approx(700.0, abs=2.0)


def test_long_file_crosses_read_blocks_cleanly(tmp_path: Path) -> None:
    seconds = 3 * sources.BLOCK_FRAMES / 44100 + 0.3
    data = np.stack([sine(1000.0, seconds, 44100)] * 2, axis=1)
    pcm = decode_file(write(tmp_path / "long.wav", data, 44100, "WAV", "PCM_16"))
    assert abs(len(pcm) - round(seconds * 8000)) <= 1
    assert power_near(pcm, 1000.0) > 0.999


def test_long_mp3_crosses_read_blocks_without_gaps(tmp_path: Path) -> None:
    """libsndfile's MP3 decoder restarts when soundfile seeks after each read: the
    blocks must be read in sequence, or ~0.3 s after every block boundary is lost."""
    seconds = 2 * sources.BLOCK_FRAMES / 44100 + 0.5
    path = write(
        tmp_path / "long.mp3", sine(700.0, seconds, 44100)[:, None], 44100, "MP3", "MPEG_LAYER_III"
    )
    pcm = decode_file(path)
    assert abs(len(pcm) - round(seconds * 8000)) <= 400
    windows = pcm[: len(pcm) // 400 * 400].astype(np.float64).reshape(-1, 400)[1:-1]
    quietest = float(np.sqrt(np.mean(windows**2, axis=1)).min())
    assert quietest > 0.4 * 0.5 * 32768, f"a 50 ms gap in the tone (rms {quietest:.0f})"
    assert power_near(pcm, 700.0) > 0.99


def test_float_overrange_is_clipped_not_wrapped(tmp_path: Path) -> None:
    pcm = decode_file(
        write(tmp_path / "loud.wav", sine(500.0, 1.0, 8000, amplitude=3.0), 8000, "WAV", "FLOAT")
    )
    assert pcm.max() == 32767 and pcm.min() == -32768
    # Wrapping would put large negative values where the sine is positive.
    positive_half = sine(500.0, 1.0, 8000) > 0.4
    assert (pcm[positive_half] > 0).all()


def test_empty_audio_file_gives_empty_pcm(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0), 44100, subtype="PCM_16")
    pcm = decode_file(path)
    assert pcm.dtype == np.int16 and len(pcm) == 0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
        decode_file(tmp_path / "missing.wav")


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "greeting.wav"
    path.write_text("this is not audio\n" * 10)
    with pytest.raises(
        AudioError, match=r"greeting\.wav: not an audio file libsndfile can read \(.+\)"
    ):
        decode_file(path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.wav: not an audio file"):
        decode_file(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        decode_file(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.wav", sine(440.0, 0.1, 8000), 8000, "WAV", "PCM_16")
    path.chmod(0)
    with pytest.raises(AudioError, match=r"secret\.wav: permission denied"):
        decode_file(path)


class CountingDecoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, path: str | os.PathLike[str], *, wide: bool
    ) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16] | None]:
        self.calls += 1
        return decode_file_rates(path, wide=wide)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingDecoder:
    counter = CountingDecoder()
    monkeypatch.setattr(sources, "decode_file_rates", counter)
    monkeypatch.setattr(sources, "FILE_CACHE", PcmCache())
    return counter


async def test_load_file_decodes_once(tmp_path: Path, counting: CountingDecoder) -> None:
    path = write(tmp_path / "prompt.wav", sine(1000.0, 1.0, 44100), 44100, "WAV", "PCM_16")
    first = await load_file(path)
    second = await load_file(str(path))
    assert counting.calls == 1
    assert second is first
    assert len(first) == 8000 and dominant_frequency(first) == pytest.approx(1000.0, abs=2.0)
    with pytest.raises(ValueError):
        first[0] = 0


async def test_load_file_relative_and_absolute_share_an_entry(
    tmp_path: Path, counting: CountingDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "prompt.wav", sine(1000.0, 0.5, 8000), 8000, "WAV", "PCM_16")
    monkeypatch.chdir(tmp_path)
    await load_file("prompt.wav")
    await load_file(tmp_path / "prompt.wav")
    assert counting.calls == 1


async def test_load_file_notices_a_changed_file(tmp_path: Path, counting: CountingDecoder) -> None:
    path = write(tmp_path / "prompt.wav", sine(1000.0, 0.5, 8000), 8000, "WAV", "PCM_16")
    before = await load_file(path)
    write(path, sine(500.0, 0.75, 8000), 8000, "WAV", "PCM_16")
    after = await load_file(path)
    assert counting.calls == 2
    assert len(before) == 4000 and len(after) == 6000
    assert dominant_frequency(after) == pytest.approx(500.0, abs=2.0)


async def test_concurrent_loads_share_one_decode(tmp_path: Path, counting: CountingDecoder) -> None:
    path = write(tmp_path / "hold.flac", sine(600.0, 5.0, 44100), 44100, "FLAC", "PCM_16")
    results = await asyncio.gather(*(load_file(path) for _ in range(10)))
    assert counting.calls == 1
    assert all(r is results[0] for r in results)


async def test_load_file_errors(tmp_path: Path, counting: CountingDecoder) -> None:
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
        await load_file(tmp_path / "missing.wav")
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS" + b"\0" * 100)
    with pytest.raises(AudioError, match=r"bad\.ogg: not an audio file"):
        await load_file(bad)
    with pytest.raises(AudioError, match="is a directory"):
        await load_file(tmp_path)
    # A failure is not cached: the fixed file loads.
    write(bad, sine(440.0, 0.5, 8000), 8000, "OGG", "VORBIS")
    assert len(await load_file(bad)) > 3000


def pcm_of(length: int) -> npt.NDArray[np.int16]:
    return np.zeros(length, dtype=np.int16)


def test_cache_evicts_least_recently_used_by_count() -> None:
    cache = PcmCache(max_entries=2, max_bytes=10**6)
    cache.put("a", pcm_of(10))
    cache.put("b", pcm_of(10))
    assert cache.get("a") is not None
    cache.put("c", pcm_of(10))
    assert "a" in cache and "c" in cache and "b" not in cache
    assert len(cache) == 2 and cache.nbytes == 40


def test_cache_evicts_by_bytes_and_skips_oversize() -> None:
    cache = PcmCache(max_entries=100, max_bytes=1000)
    for key in "abcd":
        cache.put(key, pcm_of(200))  # 400 bytes each: only two fit
    assert list("cd") == [k for k in "abcd" if k in cache]
    assert cache.nbytes == 800
    huge = cache.put("huge", pcm_of(501))  # 1002 bytes: more than the whole budget
    assert "huge" not in cache and len(huge) == 501 and cache.nbytes == 800
    cache.put("d", pcm_of(100))  # replacing an entry recounts its bytes
    assert cache.nbytes == 400 + 200


async def test_cancelled_waiter_leaves_the_load_running_for_others() -> None:
    cache = PcmCache()
    release = asyncio.Event()
    loads = 0

    async def slow_load() -> npt.NDArray[np.int16]:
        nonlocal loads
        loads += 1
        await release.wait()
        return pcm_of(80)

    impatient = asyncio.create_task(cache.get_or_load("prompt", slow_load))
    patient = asyncio.create_task(cache.get_or_load("prompt", slow_load))
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.sleep(0)
    release.set()
    assert len(await patient) == 80
    assert impatient.cancelled() and loads == 1 and "prompt" in cache


async def test_failed_load_is_not_cached() -> None:
    cache = PcmCache()
    attempts = 0

    async def flaky_load() -> npt.NDArray[np.int16]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise AudioError("prompt.wav: not yet")
        return pcm_of(8)

    with pytest.raises(AudioError, match="not yet"):
        await cache.get_or_load("prompt", flaky_load)
    assert len(await cache.get_or_load("prompt", flaky_load)) == 8
    assert attempts == 2
