"""Call-progress tones and silence, synthesised with NumPy.

Theory of operation: a tone is a sum of sines computed in one vectorised
step over the sample index, so there is no phase accumulator to drift and a
burst always starts at phase zero. ``level_dbfs`` is the level of *each*
component (a sine whose peak is full scale is 0 dBFS), which is how tone
plans specify dual-frequency tones; when the components together would
exceed full scale they are scaled down as one, so a tone never clips.
Bursts get a short raised-cosine ramp at both ends, since a sine switched on
abruptly is heard as a click. A cadence repeats one on/off cycle up to a
total duration.

The named tones of ``play@v1`` follow the North American Precise Tone Plan
(ANSI T1.401, the frequencies ITU-T E.180 Supplement 2 lists for the USA and
Canada), with each component's dBm0 level mapped to dBFS through G.711's
full-scale sine:

- ``dial``: 350+440 Hz continuous at -13 dBm0, 3 s. 3 s holds whole periods
  of both components, so the tone loops without a seam when repeated.
- ``ringback``: 440+480 Hz at -19 dBm0, 2 s on 4 s off, one 6 s cycle.
- ``busy``: 480+620 Hz at -24 dBm0, 0.5 s on 0.5 s off, four cycles (4 s).
- ``beep``: the answering-machine "record after the tone" beep, one 1000 Hz
  burst of 0.25 s at -13 dBFS: short enough not to eat into the message,
  long enough to be heard, and 1 kHz sits mid-band in the 300-3400 Hz
  telephone channel.

Named tones are built once and returned read-only, so every call shares the
same array and none can alter what the others hear.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from mediaserver.media.pcm import SAMPLE_RATE, Pcm

FULL_SCALE = 32767
"""Peak of a 0 dBFS sine in 16-bit PCM."""

DBM0_TO_DBFS = -3.17
"""Add to a dBm0 level to get dBFS: in ITU-T G.711 mu-law the largest
undistorted sine is +3.17 dBm0, i.e. full scale."""

DEFAULT_RAMP_SECONDS = 0.005
"""Raised-cosine rise and fall of a burst; 5 ms is inaudible as a fade but
removes the click of a hard switch."""

NYQUIST_HZ = SAMPLE_RATE / 2


def silence(seconds: float) -> Pcm:
    """``seconds`` of digital silence (rounded to the nearest sample)."""
    return np.zeros(_sample_count(seconds), dtype=np.int16)


def tone(
    frequencies: Sequence[float],
    seconds: float,
    level_dbfs: float = -13.0,
    *,
    ramp_seconds: float = DEFAULT_RAMP_SECONDS,
) -> Pcm:
    """A burst of the sum of sines at ``frequencies``, each at ``level_dbfs``.

    The burst rises and falls over ``ramp_seconds`` (0 for a hard edge, which
    is what a tone meant to be looped wants). Raises ``ValueError`` for no
    frequencies, a frequency outside (0, 4000) Hz, a level above 0 dBFS or a
    negative duration.
    """
    freqs = _checked_frequencies(frequencies)
    if not math.isfinite(level_dbfs) or level_dbfs > 0.0:
        raise ValueError(f"tone level must be at most 0 dBFS, got {level_dbfs}")
    if not math.isfinite(ramp_seconds) or ramp_seconds < 0.0:
        raise ValueError(f"tone ramp must be a non-negative duration, got {ramp_seconds}")
    count = _sample_count(seconds)
    amplitude = FULL_SCALE * 10.0 ** (level_dbfs / 20.0)
    # Components add up in the worst case: scale all down together if needed.
    amplitude = min(amplitude, FULL_SCALE / len(freqs))
    t = np.arange(count, dtype=np.float64) / SAMPLE_RATE
    wave = np.sin(2.0 * np.pi * np.outer(freqs, t)).sum(axis=0) * amplitude
    _apply_ramp(wave, _ramp_length(ramp_seconds, count))
    return _to_pcm(wave)


def cadence(
    frequencies: Sequence[float],
    on_s: float,
    off_s: float,
    total_s: float,
    level_dbfs: float = -13.0,
) -> Pcm:
    """``frequencies`` switched on for ``on_s`` and off for ``off_s``, repeated
    and cut to ``total_s``. A cut inside a burst gets the same short fade-out
    as a burst's end, so the tone never ends on a click."""
    if not math.isfinite(on_s) or on_s <= 0.0:
        raise ValueError(f"cadence on-time must be positive, got {on_s}")
    burst = tone(frequencies, on_s, level_dbfs)
    cycle = np.concatenate([burst, silence(off_s)])
    total = _sample_count(total_s)
    repeats = -(-total // len(cycle)) if len(cycle) else 0
    signal = np.tile(cycle, repeats)[:total]
    tail = total % len(cycle) if len(cycle) else 0
    if 0 < tail < len(burst):
        ramp = _ramp_length(DEFAULT_RAMP_SECONDS, tail)
        faded = signal[total - ramp :].astype(np.float64)
        faded *= _fall(ramp)
        signal[total - ramp :] = np.round(faded).astype(np.int16)
    return signal


@dataclass(frozen=True, slots=True)
class NamedTone:
    """A tone ``play@v1`` knows by name: a cadence and where it comes from."""

    frequencies: tuple[float, ...]
    on_s: float
    off_s: float
    total_s: float
    level_dbfs: float
    description: str

    def render(self) -> Pcm:
        if self.off_s == 0.0:
            # A continuous tone: no ramps, so repeating it has no seam.
            return tone(self.frequencies, self.total_s, self.level_dbfs, ramp_seconds=0.0)
        return cadence(self.frequencies, self.on_s, self.off_s, self.total_s, self.level_dbfs)


NAMED_TONES: Mapping[str, NamedTone] = MappingProxyType(
    {
        "beep": NamedTone(
            (1000.0,), 0.25, 0.0, 0.25, -13.0, "1000 Hz, 0.25 s: the record-after-the-tone beep"
        ),
        "ringback": NamedTone(
            (440.0, 480.0),
            2.0,
            4.0,
            6.0,
            -19.0 + DBM0_TO_DBFS,
            "440+480 Hz, 2 s on 4 s off, one cycle (North American ringback)",
        ),
        "busy": NamedTone(
            (480.0, 620.0),
            0.5,
            0.5,
            4.0,
            -24.0 + DBM0_TO_DBFS,
            "480+620 Hz, 0.5 s on 0.5 s off, four cycles (North American busy)",
        ),
        "dial": NamedTone(
            (350.0, 440.0),
            3.0,
            0.0,
            3.0,
            -13.0 + DBM0_TO_DBFS,
            "350+440 Hz continuous, 3 s (North American dial tone)",
        ),
    }
)
"""The tones ``play@v1`` accepts as ``tone:``, by name."""


def named_tone(name: str) -> Pcm:
    """The named tone ``name`` (read-only, shared); ``ValueError`` naming the
    known tones when there is no such tone."""
    if name not in NAMED_TONES:
        known = ", ".join(sorted(NAMED_TONES))
        raise ValueError(f"unknown tone {name!r}: known tones are {known}")
    return _rendered(name)


@functools.cache
def _rendered(name: str) -> Pcm:
    pcm = NAMED_TONES[name].render()
    pcm.flags.writeable = False
    return pcm


def _checked_frequencies(frequencies: Sequence[float]) -> npt.NDArray[np.float64]:
    freqs = np.asarray(list(frequencies), dtype=np.float64)
    if freqs.size == 0:
        raise ValueError("a tone needs at least one frequency")
    bad = [f for f in freqs.tolist() if not (0.0 < f < NYQUIST_HZ)]
    if bad:
        # Nyquist: at 8000 samples/s nothing at or above 4000 Hz can be represented.
        raise ValueError(f"tone frequencies must be between 0 and {NYQUIST_HZ:g} Hz, got {bad}")
    return freqs


def _sample_count(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds < 0.0:
        raise ValueError(f"a duration must be a non-negative number of seconds, got {seconds}")
    return round(seconds * SAMPLE_RATE)


def _ramp_length(ramp_seconds: float, count: int) -> int:
    # A burst shorter than two ramps rises for half and falls for half.
    return min(round(ramp_seconds * SAMPLE_RATE), count // 2)


def _fall(length: int) -> npt.NDArray[np.float64]:
    """Raised-cosine gain from 1 down to 0 over ``length`` samples."""
    return 0.5 * (1.0 + np.cos(np.pi * (np.arange(length) + 1) / (length + 1)))


def _apply_ramp(wave: npt.NDArray[np.float64], length: int) -> None:
    if length == 0:
        return
    fall = _fall(length)
    wave[:length] *= fall[::-1]
    wave[len(wave) - length :] *= fall


def _to_pcm(wave: npt.NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(wave), -FULL_SCALE - 1, FULL_SCALE).astype(np.int16)
