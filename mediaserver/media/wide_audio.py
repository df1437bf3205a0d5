"""The 16 kHz versions of prompt audio that wideband legs play.

Theory of operation
-------------------
Everything a call plays is 8 kHz ``Pcm`` (``media/pcm.py``), decoded or
synthesised once and shared by every call (``sources.FILE_CACHE``, the speech
cache). A G.722 or Opus leg can carry up to 8 kHz of audio, so when a source
has it (a sound file at 16 kHz or more, espeak-ng's 22050 Hz speech) it is
also resampled to 16 kHz, once, when the 8 kHz version is made, and kept
here beside it: :meth:`WideCompanions.wide_of` finds it by the 8 kHz array
itself (the same shared object every call plays), so no action, API or
scenario path changes, and a wideband leg's :meth:`RtpLeg.play` looks it up
once per prompt. Audio without a companion (tones, silence, a file at 8 kHz,
anything assembled on the fly) plays at 8 kHz as before.

This costs nothing unless the server offers a wideband codec: the server
sets :attr:`WideCompanions.enabled` from ``rtp.codecs``, and the sources make
16 kHz versions only then. The store is an LRU bounded by entries and bytes,
like the caches it sits beside; an evicted companion only means that prompt
plays at 8 kHz until its source is loaded again.

The key is the 8 kHz array's identity; each entry holds that array too, so
its id cannot be reused by another array while the entry lives.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from mediaserver.media.pcm import SAMPLE_RATE, WIDE_RATE, Pcm

RATIO = WIDE_RATE // SAMPLE_RATE


class WideCompanions:
    """16 kHz versions of shared 8 kHz arrays, by identity; a bounded LRU."""

    def __init__(self, max_entries: int = 64, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("WideCompanions needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.enabled = False  # the server offers G.722 or Opus: sources make companions
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[int, tuple[Pcm, Pcm]] = OrderedDict()
        self._nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by the companions (the 8 kHz arrays are counted where they live)."""
        return self._nbytes

    def attach(self, narrow: Pcm, wide: Pcm) -> None:
        """Keep ``wide`` (16 kHz) as the companion of ``narrow`` (8 kHz): trimmed or
        padded to exactly twice its length, so both play in step, and read-only."""
        wanted = len(narrow) * RATIO
        if len(wide) != wanted:
            fitted = np.zeros(wanted, np.int16)
            fitted[: min(wanted, len(wide))] = wide[:wanted]
            wide = fitted
        wide.flags.writeable = False
        key = id(narrow)
        old = self._entries.pop(key, None)
        if old is not None:
            self._nbytes -= old[1].nbytes
        if wide.nbytes > self.max_bytes:
            return
        self._entries[key] = (narrow, wide)
        self._nbytes += wide.nbytes
        while len(self._entries) > self.max_entries or self._nbytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._nbytes -= evicted.nbytes

    def wide_of(self, narrow: Pcm) -> Pcm | None:
        """The 16 kHz companion of ``narrow`` (this very array), or None."""
        entry = self._entries.get(id(narrow))
        if entry is None or entry[0] is not narrow:
            self.misses += 1
            return None
        self._entries.move_to_end(id(narrow))
        self.hits += 1
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self._nbytes = 0


COMPANIONS = WideCompanions()
"""The process-wide store, beside ``sources.FILE_CACHE``."""
