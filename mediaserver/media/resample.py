"""Integer-ratio resampling of a continuous stream, one 20 ms frame at a time.

The wideband coders (:mod:`mediaserver.media.wideband`) turn 16 or 48 kHz audio
into the server's 8 kHz frames and back. Each frame must come out exactly
``len(frame) / factor`` (or ``* factor``) samples long, with no seam between
frames, so the filter keeps the previous frame's tail as its history: a
windowed-sinc low-pass (Kaiser window) cutting at the lower rate's Nyquist
frequency, run by ``np.convolve`` (no Python loop over samples). soxr, used for
whole files elsewhere, returns a varying number of samples per chunk when it
streams, which a frame clock cannot take.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mediaserver.media.pcm import Pcm

_TAPS_PER_PHASE = 16
_KAISER_BETA = 8.0  # about 80 dB of stop-band attenuation


def _lowpass(factor: int) -> npt.NDArray[np.float64]:
    size = _TAPS_PER_PHASE * factor
    t = np.arange(size) - (size - 1) / 2
    taps: npt.NDArray[np.float64] = np.sinc(t / factor) * np.kaiser(size, _KAISER_BETA)
    return taps / float(taps.sum())


def _to_pcm(samples: npt.NDArray[np.float64]) -> Pcm:
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


class Decimator:
    """From ``factor`` times the rate down to it (48 kHz to 8 kHz: factor 6)."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self._taps = _lowpass(factor)
        self._history = np.zeros(len(self._taps) - 1)

    def __call__(self, samples: Pcm) -> Pcm:
        if len(samples) % self.factor:
            raise ValueError(f"{len(samples)} samples do not divide by {self.factor}")
        stream = np.concatenate([self._history, samples.astype(np.float64)])
        filtered = np.convolve(stream, self._taps, mode="valid")
        self._history = stream[len(stream) - len(self._history) :]
        return _to_pcm(filtered[self.factor - 1 :: self.factor])


class Interpolator:
    """From a rate up to ``factor`` times it (8 kHz to 16 kHz: factor 2)."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self._taps = _lowpass(factor) * factor  # zero-stuffing divided the level by factor
        self._history = np.zeros(len(self._taps) - 1)

    def __call__(self, samples: Pcm) -> Pcm:
        stuffed = np.zeros(len(samples) * self.factor)
        stuffed[:: self.factor] = samples
        stream = np.concatenate([self._history, stuffed])
        filtered = np.convolve(stream, self._taps, mode="valid")
        self._history = stream[len(stream) - len(self._history) :]
        return _to_pcm(filtered)
