"""A run of silence of a given length in the audio a call sends; pure.

Callr's SILENCE voicemail detection (:mod:`mediaserver.actions.vms_detect`)
asks whether the callee falls silent for ``silence_ms`` in a row. A frame is
silent by the answering-machine detector's own measure
(:func:`mediaserver.media.amd.is_silent`, ``app_amd``'s average absolute
amplitude under ``silence_threshold``), so both detectors hear speech and
silence alike. Time is the audio fed: 20 ms a frame.
"""

from __future__ import annotations

from mediaserver.media.amd import AmdConfig, is_silent
from mediaserver.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm

FRAME_MS = 1000 * FRAME_SAMPLES // SAMPLE_RATE


class SilenceWatch:
    """Fed frames; :attr:`heard` once ``silence_ms`` of silence came in a row."""

    def __init__(self, silence_ms: int, threshold: int = AmdConfig().silence_threshold) -> None:
        self.silence_ms = silence_ms
        self.threshold = threshold
        self.silent_ms = 0
        self.heard = False

    def reset(self) -> None:
        self.silent_ms = 0
        self.heard = False

    def hear(self, frame: Pcm) -> bool:
        """Take one frame; True (stop listening) once the silence is long enough."""
        if is_silent(frame, self.threshold):
            self.silent_ms += FRAME_MS
        else:
            self.silent_ms = 0
        self.heard = self.heard or self.silent_ms >= self.silence_ms
        return self.heard
