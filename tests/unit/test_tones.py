"""Tones: frequency (Goertzel), level, cadence timing and the named tones."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from mediaserver.actions.callapi import SAMPLE_RATE
from mediaserver.media.tones import (
    DBM0_TO_DBFS,
    FULL_SCALE,
    NAMED_TONES,
    cadence,
    named_tone,
    silence,
    tone,
)


def goertzel_power(samples: npt.NDArray[np.int16], frequency: float) -> float:
    """Power of ``frequency`` in ``samples``, normalised by length squared."""
    x = samples.astype(np.float64)
    coeff = 2.0 * math.cos(2.0 * math.pi * frequency / SAMPLE_RATE)
    s_prev = s_prev2 = 0.0
    for value in x:
        s = value + coeff * s_prev - s_prev2
        s_prev2, s_prev = s_prev, s
    power = s_prev2**2 + s_prev**2 - coeff * s_prev * s_prev2
    return power / len(x) ** 2


def rms_dbfs(samples: npt.NDArray[np.int16]) -> float:
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2)))
    # A full-scale sine has RMS FULL_SCALE/sqrt(2) and is 0 dBFS.
    return 20.0 * math.log10(rms * math.sqrt(2.0) / FULL_SCALE)


def frame_active(samples: npt.NDArray[np.int16], frame: int = 80) -> npt.NDArray[np.bool_]:
    """Per 10 ms frame: is there signal?"""
    usable = len(samples) // frame * frame
    frames = samples[:usable].astype(np.float64).reshape(-1, frame)
    active: npt.NDArray[np.bool_] = np.sqrt((frames**2).mean(axis=1)) > 30.0
    return active


def test_silence_length_and_type() -> None:
    pcm = silence(0.5)
    assert pcm.dtype == np.int16
    assert pcm.shape == (4000,)
    assert not pcm.any()
    assert len(silence(0)) == 0


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_silence_rejects_bad_durations(seconds: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        silence(seconds)


@pytest.mark.parametrize("frequency", [350.0, 1000.0, 1633.0, 3400.0])
def test_single_tone_frequency(frequency: float) -> None:
    pcm = tone([frequency], 0.2)
    assert pcm.dtype == np.int16 and pcm.ndim == 1 and len(pcm) == 1600
    on = goertzel_power(pcm, frequency)
    for other in (frequency * 0.8, frequency * 1.2):
        assert on > 1000 * goertzel_power(pcm, other)


def test_dual_tone_has_both_components_equally() -> None:
    pcm = tone([480.0, 620.0], 0.5)
    low, high = goertzel_power(pcm, 480.0), goertzel_power(pcm, 620.0)
    assert low == pytest.approx(high, rel=0.05)
    assert low > 1000 * goertzel_power(pcm, 550.0)


@pytest.mark.parametrize("level", [-3.0, -13.0, -30.0])
def test_level_of_a_single_tone(level: float) -> None:
    pcm = tone([1000.0], 1.0, level, ramp_seconds=0.0)
    assert rms_dbfs(pcm) == pytest.approx(level, abs=0.05)
    assert int(np.abs(pcm).max()) == pytest.approx(FULL_SCALE * 10 ** (level / 20), rel=0.01)


def test_level_is_per_component() -> None:
    pcm = tone([350.0, 440.0], 1.0, -13.0, ramp_seconds=0.0)
    # Two uncorrelated components at -13 dBFS each add 3 dB of power.
    assert rms_dbfs(pcm) == pytest.approx(-13.0 + 10 * math.log10(2), abs=0.1)


def test_loud_multi_tone_never_clips() -> None:
    pcm = tone([350.0, 440.0, 1000.0], 1.0, 0.0, ramp_seconds=0.0)
    peak = int(np.abs(pcm.astype(np.int32)).max())
    assert peak <= FULL_SCALE
    # Scaled as a whole, yet still loud: no component was dropped.
    assert peak > FULL_SCALE * 0.8
    powers = [goertzel_power(pcm, f) for f in (350.0, 440.0, 1000.0)]
    assert max(powers) == pytest.approx(min(powers), rel=0.05)


def test_ramp_softens_the_edges() -> None:
    pcm = tone([1000.0], 0.1)
    assert abs(int(pcm[0])) < 50 and abs(int(pcm[-1])) < 50
    edge = np.abs(pcm[:8].astype(np.int32)).max()
    middle = np.abs(pcm[400:440].astype(np.int32)).max()
    assert edge < middle / 4


@pytest.mark.parametrize(
    ("frequencies", "seconds", "level"),
    [
        ([], 1.0, -13.0),
        ([0.0], 1.0, -13.0),
        ([4000.0], 1.0, -13.0),
        ([1000.0], 1.0, 1.0),
        ([1000.0], -0.1, -13.0),
    ],
)
def test_tone_rejects_bad_arguments(frequencies: list[float], seconds: float, level: float) -> None:
    with pytest.raises(ValueError):
        tone(frequencies, seconds, level)


def test_cadence_timing() -> None:
    pcm = cadence([440.0, 480.0], 0.4, 0.6, 3.0)
    assert len(pcm) == 3 * SAMPLE_RATE
    active = frame_active(pcm)
    expected = np.array([(i % 100) < 40 for i in range(len(active))])
    # Only the frames holding a 5 ms ramp may disagree.
    mismatched = np.flatnonzero(active != expected)
    boundaries = {0, 40, 100, 140, 200, 240}
    assert all(min(abs(i - b) for b in boundaries) <= 1 for i in mismatched)
    assert len(mismatched) <= 6


def test_cadence_cut_inside_a_burst_fades_out() -> None:
    pcm = cadence([1000.0], 1.0, 1.0, 2.5)
    assert len(pcm) == 20000
    assert frame_active(pcm[16000:20000]).all()
    assert abs(int(pcm[-1])) < 50


def test_named_tones_are_listed() -> None:
    assert set(NAMED_TONES) == {"beep", "ringback", "busy", "dial"}


def test_beep() -> None:
    pcm = named_tone("beep")
    assert len(pcm) == 2000
    assert goertzel_power(pcm, 1000.0) > 1000 * goertzel_power(pcm, 800.0)


def test_ringback_is_one_north_american_cycle() -> None:
    pcm = named_tone("ringback")
    assert len(pcm) == 6 * SAMPLE_RATE
    burst = pcm[: 2 * SAMPLE_RATE]
    assert goertzel_power(burst, 440.0) > 1000 * goertzel_power(burst, 400.0)
    assert goertzel_power(burst, 480.0) > 1000 * goertzel_power(burst, 400.0)
    assert not pcm[2 * SAMPLE_RATE :].any()
    # -19 dBm0 per component.
    assert rms_dbfs(burst[400:-400]) == pytest.approx(
        -19.0 + DBM0_TO_DBFS + 10 * math.log10(2), abs=0.1
    )


def test_busy_cadence() -> None:
    pcm = named_tone("busy")
    assert len(pcm) == 4 * SAMPLE_RATE
    active = frame_active(pcm)
    assert active.reshape(4, 100)[:, 2:48].all()
    assert not active.reshape(4, 100)[:, 52:98].any()
    burst = pcm[:4000]
    assert goertzel_power(burst, 480.0) > 1000 * goertzel_power(burst, 550.0)
    assert goertzel_power(burst, 620.0) > 1000 * goertzel_power(burst, 550.0)


def test_dial_tone_is_continuous_and_loops_seamlessly() -> None:
    pcm = named_tone("dial")
    assert len(pcm) == 3 * SAMPLE_RATE
    assert frame_active(pcm).all()
    assert goertzel_power(pcm, 350.0) > 1000 * goertzel_power(pcm, 400.0)
    assert goertzel_power(pcm, 440.0) > 1000 * goertzel_power(pcm, 400.0)
    # Played twice, the sample after the end is the one the tone starts with.
    looped = np.concatenate([pcm, pcm])
    step = np.abs(np.diff(looped.astype(np.int32)))
    assert step[len(pcm) - 1] <= step[: len(pcm) - 1].max()
    assert pcm[0] == 0


def test_named_tone_is_shared_and_read_only() -> None:
    first = named_tone("busy")
    assert named_tone("busy") is first
    with pytest.raises(ValueError):
        first[0] = 1


def test_unknown_named_tone_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="beep, busy, dial, ringback"):
        named_tone("congestion")
