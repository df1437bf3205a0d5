"""The one audio format inside the server: 16-bit mono PCM at 8 kHz in NumPy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
"""Mono 16-bit PCM at 8000 Hz."""

SAMPLE_RATE = 8000


class AudioError(Exception):
    """Audio could not be produced (missing file, unknown language, ...); the
    message names the file, language or tone at fault."""
