"""The audio analysis helpers of the test harness, on synthetic signals.

Integration tests trust these helpers to say what a peer heard, so each one
is checked here both ways: it finds what is there and does not find what
is not.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support import audio

RATE = 8000


def _noise(seconds: float, level: float = 0.3, seed: int = 1) -> audio.Samples:
    return np.random.default_rng(seed).normal(0.0, level, round(seconds * RATE))


def _mulaw_roundtrip(x: audio.Samples) -> audio.Samples:
    """Continuous mu-law companding then 8-bit quantisation, like a G.711 path."""
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127) / 127
    return np.asarray(np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu, dtype=np.float64)


# ---------------------------------------------------------------- levels


def test_energy_envelope_levels() -> None:
    x = np.concatenate([audio.tone(1000, 0.5, RATE, 1.0), audio.silence(0.5, RATE)])
    env = audio.energy_envelope(x, RATE, window_s=0.02)
    assert len(env) == 50
    assert np.allclose(env[:25], -3.01, atol=0.1)  # full-scale sine
    assert np.all(env[25:] == audio.SILENCE_DBFS)


def test_silence_has_no_activity_or_speech() -> None:
    x = audio.silence(2.0, RATE)
    assert audio.active_seconds(x, RATE) == 0.0
    assert audio.speech_seconds(x, RATE) == 0.0
    assert audio.active_intervals(x, RATE) == []


def test_low_noise_is_not_activity() -> None:
    x = _noise(2.0, level=0.001)  # about -60 dBFS
    assert audio.active_seconds(x, RATE, threshold_dbfs=-40) == 0.0


def test_dc_offset_is_not_speech() -> None:
    x = np.full(RATE * 2, 0.05)  # -26 dBFS of DC: active, but not speech
    assert audio.active_seconds(x, RATE) == pytest.approx(2.0)
    assert audio.speech_seconds(x, RATE) == 0.0


def test_active_intervals_find_bursts() -> None:
    x = np.concatenate(
        [
            audio.silence(0.5, RATE),
            _noise(1.0),
            audio.silence(1.0, RATE),
            _noise(0.5, seed=2),
            audio.silence(0.3, RATE),
        ]
    )
    spans = audio.active_intervals(x, RATE)
    assert len(spans) == 2
    assert spans[0] == pytest.approx((0.5, 1.5), abs=0.03)
    assert spans[1] == pytest.approx((2.5, 3.0), abs=0.03)
    assert audio.active_seconds(x, RATE) == pytest.approx(1.5, abs=0.05)


# ---------------------------------------------------------------- tones


@pytest.mark.parametrize("freq", [350.0, 440.0, 1000.0, 1400.0, 3000.0])
def test_dominant_frequency_finds_the_tone(freq: float) -> None:
    x = audio.tone(freq, 1.0, RATE, 0.5) + _noise(1.0, level=0.01)
    assert audio.dominant_frequency(x, RATE) == pytest.approx(freq, abs=2.0)


def test_goertzel_power_is_the_component_mean_square() -> None:
    x = audio.tone(440, 1.0, RATE, 0.5)
    assert audio.goertzel_power(x, RATE, 440) == pytest.approx(0.125, rel=0.01)
    assert audio.goertzel_power(x, RATE, 1000) < 1e-4


def test_tone_present_at_the_right_frequency_only() -> None:
    x = np.concatenate([audio.silence(0.5, RATE), audio.tone(440, 1.0, RATE), audio.silence(0.5)])
    assert audio.tone_present(x, RATE, 440, 0.9)
    assert not audio.tone_present(x, RATE, 440, 1.3)  # it lasts one second
    assert not audio.tone_present(x, RATE, 480, 0.1)  # 40 Hz off
    assert not audio.tone_present(x, RATE, 1000, 0.1)
    assert audio.tone_seconds(x, RATE, 440) == pytest.approx(1.0, abs=0.06)


def test_dual_tone_needs_both_frequencies() -> None:
    ringback = audio.tone([440, 480], 2.0, RATE, 0.5)
    assert audio.tone_present(ringback, RATE, [440, 480], 1.9)
    assert not audio.tone_present(ringback, RATE, 440, 0.1)  # half the energy only


def test_tone_survives_g711_and_is_not_found_in_noise() -> None:
    x = _mulaw_roundtrip(audio.tone(1000, 1.0, RATE, 0.3))
    assert audio.tone_present(x, RATE, 1000, 0.9)
    assert not audio.tone_present(_noise(1.0), RATE, 1000, 0.1)


def test_quiet_tone_below_floor_is_not_present() -> None:
    x = audio.tone(440, 1.0, RATE, 0.001)  # about -63 dBFS
    assert not audio.tone_present(x, RATE, 440, 0.1)
    assert audio.tone_present(x, RATE, 440, 0.9, min_dbfs=-70)


# ---------------------------------------------------------------- DTMF


@pytest.mark.parametrize("digits", ["0123456789", "*#ABCD", "1", "159#", "2580*"])
def test_detect_dtmf_sequences(digits: str) -> None:
    x = audio.dtmf_samples(digits, rate=RATE, lead_s=0.2, tail_s=0.2)
    assert audio.detect_dtmf(x, RATE) == digits


def test_detect_dtmf_repeated_key_needs_a_gap() -> None:
    x = audio.dtmf_samples("11", rate=RATE, tone_s=0.08, gap_s=0.06)
    assert audio.detect_dtmf(x, RATE) == "11"
    one_long_press = audio.tone(audio.DTMF_FREQS["1"], 0.5, RATE)
    assert audio.detect_dtmf(one_long_press, RATE) == "1"


def test_detect_dtmf_through_g711_with_noise_and_at_16k() -> None:
    x = audio.dtmf_samples("1234567890*#", rate=RATE, tone_s=0.06, gap_s=0.05)
    x = _mulaw_roundtrip(x + _noise(len(x) / RATE, level=0.01))
    assert audio.detect_dtmf(x, RATE) == "1234567890*#"
    y = audio.dtmf_samples("987", rate=16000)
    assert audio.detect_dtmf(y, 16000) == "987"


def test_detect_dtmf_ignores_silence_noise_tones_and_short_blips() -> None:
    assert audio.detect_dtmf(audio.silence(1.0), RATE) == ""
    assert audio.detect_dtmf(_noise(2.0), RATE) == ""
    assert audio.detect_dtmf(audio.tone(697, 1.0, RATE), RATE) == ""  # one tone only
    assert audio.detect_dtmf(audio.tone([440, 480], 1.0, RATE), RATE) == ""
    blip = audio.tone(audio.DTMF_FREQS["5"], 0.02, RATE)
    blips = np.concatenate([audio.silence(0.1), blip, audio.silence(0.1)])
    assert audio.detect_dtmf(blips, RATE) == ""


def test_detect_dtmf_rejects_strong_twist() -> None:
    low, high = audio.DTMF_FREQS["5"]
    t = np.arange(RATE // 2) / RATE
    x = 0.4 * np.sin(2 * np.pi * low * t) + 0.04 * np.sin(2 * np.pi * high * t)  # 20 dB
    assert audio.detect_dtmf(x, RATE) == ""


# ---------------------------------------------------------------- files


def test_make_tone_wav_is_8k_mono_16bit(tmp_path: Path) -> None:
    path = audio.make_tone_wav(tmp_path / "t.wav", 440, 1.0, lead_s=0.5, tail_s=0.25)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    x, rate = audio.read_mono(path)
    assert rate == 8000 and len(x) == 14000
    assert audio.active_intervals(x, rate) == [pytest.approx((0.5, 1.5), abs=0.03)]
    assert audio.dominant_frequency(x, rate) == pytest.approx(440, abs=2)


def test_make_dtmf_wav_roundtrip(tmp_path: Path) -> None:
    path = audio.make_dtmf_wav(tmp_path / "d.wav", "42#", lead_s=0.3)
    x, rate = audio.read_mono(path)
    assert audio.detect_dtmf(x, rate) == "42#"
    with pytest.raises(ValueError, match="not a DTMF key"):
        audio.make_dtmf_wav(tmp_path / "bad.wav", "1x")


def test_read_mono_of_a_wav_still_being_written(tmp_path: Path) -> None:
    """baresip's sndfile writes the RIFF sizes only at the end of the call."""
    x = audio.tone(440, 0.5, RATE, 0.5)
    pcm = (x * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    header = b"RIFF" + struct.pack("<I", 0) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    path = tmp_path / "growing.wav"
    path.write_bytes(header + b"data" + struct.pack("<I", 0) + pcm + b"\x01")  # odd byte
    y, rate = audio.read_mono(path)
    assert rate == RATE and len(y) == len(x)
    assert np.allclose(y, x, atol=1e-4)


def test_read_mono_averages_stereo(tmp_path: Path) -> None:
    left = audio.tone(440, 0.2, RATE, 0.5)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, np.zeros_like(left)], axis=1), RATE)
    y, _ = audio.read_mono(path)
    assert np.allclose(y, left / 2, atol=1e-4)


def test_pad_wav_resamples_and_pads(tmp_path: Path) -> None:
    if shutil.which("sox") is None:
        pytest.skip("sox not installed")
    src = audio.write_wav(tmp_path / "16k.wav", audio.tone(1000, 0.5, 16000), 16000)
    out = audio.pad_wav(src, tmp_path / "padded.wav", 2.0, rate=8000)
    y, rate = audio.read_mono(out)
    assert rate == 8000 and len(y) == 16000
    assert audio.active_intervals(y, rate) == [pytest.approx((0.0, 0.5), abs=0.03)]
    assert audio.dominant_frequency(y[:4000], rate) == pytest.approx(1000, abs=2)


def test_make_speech_wav(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng or sox not installed")
    path = audio.make_speech_wav(tmp_path / "s.wav", "Welcome. Press one for sales.")
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    x, rate = audio.read_mono(path)
    assert audio.speech_seconds(x, rate) > 1.0
    assert audio.detect_dtmf(x, rate) == ""  # speech is not DTMF
