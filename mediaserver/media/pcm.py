"""The one audio format inside the server: 16-bit mono PCM at 8 kHz in NumPy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
"""Mono 16-bit PCM at 8000 Hz."""

SAMPLE_RATE = 8000
WIDE_RATE = 16000
"""Wideband audio (G.722, Opus) where it is kept whole: a wideband leg's decoded
frames for its recordings (``media/leg.py``), 320 samples per tick."""
FRAME_SAMPLES = 160
"""Samples in one 20 ms media tick."""


def frame_at(
    audio: Pcm, position: int, *, loop: bool = False, samples: int = FRAME_SAMPLES
) -> tuple[Pcm, int]:
    """The frame of ``audio`` starting at ``position``, and the position after it.
    Looped audio wraps round to its start without a seam, whatever its length;
    otherwise the end is padded with silence (and the position passes the end).
    ``samples``: the frame's length (320 for 16 kHz audio)."""
    size = len(audio)
    end = position + samples
    if end <= size:
        return audio[position:end], end
    if loop and size:
        return audio[np.arange(position, end) % size], end % size
    tail = audio[position:]
    return np.concatenate([tail, np.zeros(samples - len(tail), np.int16)]), end


class AudioError(Exception):
    """Audio could not be produced (missing file, unknown language, ...); the
    message names the file, language or tone at fault."""
