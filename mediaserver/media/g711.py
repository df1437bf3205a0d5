"""G.711 mu-law (PCMU) and A-law (PCMA) through NumPy lookup tables.

Theory of operation
-------------------
G.711 maps one 16-bit linear sample to one 8-bit code and back. Both
directions are pure functions of a small domain, so each is computed once at
import for every possible input and stored in a table:

* encode: a 65536-entry ``uint8`` table indexed by the int16 sample viewed as
  uint16 (the bit pattern, so -1 is index 0xFFFF);
* decode: a 256-entry ``int16`` table indexed by the code byte.

Encoding or decoding a 20 ms frame (or all frames of a media tick at once) is
then a single NumPy fancy-indexing call, with no Python work per sample.

The tables are built from the algorithm, not pasted, and match the reference
vectors in ``codecs/g711/`` (made by sox, see ``codecs/README.md``) for all
65536 inputs and all 256 codes:

* Encoders, as sox does it: the 16-bit sample is first rounded to the
  codec's input width, 14 bits for mu-law (``(v + 2) >> 2``) and 13 bits for
  A-law (``(v + 4) >> 3``), arithmetic shift so halves round up, saturating at
  the top (so 32766 and 32767 give 8191 for mu-law, 32764 to 32767 give 4095
  for A-law). The rounded value then goes through the classic segment
  compressor (Sun's linear2ulaw / linear2alaw, the G.191 reference
  algorithm): mu-law adds a bias of 33 to the magnitude clipped at 8159 and
  finds the segment; A-law uses the ones' complement for negatives, finds the
  segment and inverts the even bits (XOR 0x55). An encoder that truncates
  (drops the low bits) instead of rounding gives another code for 508 of the
  65536 inputs in mu-law and 1020 in A-law; we round like sox so the
  reference vectors hold bit-exact.
* Decoders: the ITU-T G.711 reconstruction values (Tables 1a and 2a), i.e.
  the centre of each quantisation interval: mu-law decodes to multiples of 4
  up to +/-32124, A-law to multiples of 8 up to +/-32256.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CODECS",
    "PCMA",
    "PCMU",
    "Codec",
    "alaw_decode",
    "alaw_encode",
    "silence_payload",
    "transcode_table",
    "ulaw_decode",
    "ulaw_encode",
]

# Every int16 bit pattern, in uint16 index order: index i holds the sample whose bits are i.
_ALL_SAMPLES = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int64)
_ALL_CODES = np.arange(256, dtype=np.int64)


def _round_to_bits(samples: NDArray[np.int64], drop: int) -> NDArray[np.int64]:
    """Round 16-bit samples to ``16 - drop`` bits (halves up), saturating at the top, as sox."""
    rounded: NDArray[np.int64] = (samples + (1 << (drop - 1))) >> drop
    return np.minimum(rounded, np.int64((1 << (15 - drop)) - 1))


def _build_ulaw_encode() -> NDArray[np.uint8]:
    v = _round_to_bits(_ALL_SAMPLES, 2)
    # G.711 mu-law: the sign goes in the top bit, and every bit is inverted on the wire.
    mask = np.where(v < 0, 0x7F, 0xFF)
    # Clip at 8159 so that magnitude + bias stays within the last segment (8159 + 33 = 8192).
    magnitude = np.minimum(np.abs(v), 8159) + 33
    # Segment s covers biased magnitudes up to 2**(s+6) - 1.
    segment_ends = np.array([(1 << (s + 6)) - 1 for s in range(8)], dtype=np.int64)
    segment = np.searchsorted(segment_ends, magnitude, side="left")
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa) ^ mask
    return code.astype(np.uint8)


def _build_alaw_encode() -> NDArray[np.uint8]:
    v = _round_to_bits(_ALL_SAMPLES, 3)
    # G.711 A-law: sign bit set for positive values, even bits inverted (XOR 0x55).
    mask = np.where(v >= 0, 0xD5, 0x55)
    # Negative values use the ones' complement magnitude, -v - 1, as in G.191.
    magnitude = np.where(v >= 0, v, -v - 1)
    # Segment s covers 13-bit magnitudes up to 2**(s+5) - 1.
    segment_ends = np.array([(1 << (s + 5)) - 1 for s in range(8)], dtype=np.int64)
    segment = np.searchsorted(segment_ends, magnitude, side="left")
    # Segments 0 and 1 share the same step size (2 in 13-bit units).
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    mantissa = (magnitude >> shift) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa) ^ mask
    return code.astype(np.uint8)


def _build_ulaw_decode() -> NDArray[np.int16]:
    # G.711 Table 2a: undo the wire inversion, then rebuild the interval centre with bias 132.
    u = ~_ALL_CODES & 0xFF
    segment = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + 0x84) << segment) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _build_alaw_decode() -> NDArray[np.int16]:
    # G.711 Table 1a: undo the even-bit inversion, then take the centre of the interval.
    a = _ALL_CODES ^ 0x55
    segment = (a >> 4) & 0x07
    step_centre = ((a & 0x0F) << 4) + 8
    magnitude = np.where(
        segment == 0, step_centre, (step_centre + 0x100) << np.maximum(segment - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encode()
_ALAW_ENCODE = _build_alaw_encode()
_ULAW_DECODE = _build_ulaw_decode()
_ALAW_DECODE = _build_alaw_decode()
# Shared by every call on the server: a stray write would corrupt all audio.
for _table in (_ULAW_ENCODE, _ALAW_ENCODE, _ULAW_DECODE, _ALAW_DECODE):
    _table.setflags(write=False)


def _as_indices(pcm: NDArray[np.int16]) -> NDArray[np.uint16]:
    # A view, not a cast: anything but native int16 would silently index the wrong entries.
    if pcm.dtype != np.int16:
        raise TypeError(f"G.711 encodes native int16 samples, got {pcm.dtype}")
    return pcm.view(np.uint16)


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """Encode int16 samples to mu-law bytes (one byte per sample)."""
    return _ULAW_ENCODE[_as_indices(pcm)].tobytes()


def alaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """Encode int16 samples to A-law bytes (one byte per sample)."""
    return _ALAW_ENCODE[_as_indices(pcm)].tobytes()


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    """Decode mu-law bytes to a new, writable int16 array."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> NDArray[np.int16]:
    """Decode A-law bytes to a new, writable int16 array."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


# eq=False: each codec is one module-level object, so equality and the hash
# (transcode_table's cache key, per relayed packet off the fast path) are identity's.
@dataclass(frozen=True, eq=False)
class Codec:
    """An RTP audio codec: its SDP name, payload type (static, or the dynamic one we
    offer), RTP clock and the two conversions of 8 kHz frames. ``stateful`` codecs
    (G.722, Opus: :mod:`mediaserver.media.wideband`) keep state between frames, so
    each leg encodes and decodes through its own coder (``codecs.coder_for``); their
    ``encode`` and ``decode`` here start from a fresh state (one-off use only)."""

    name: str
    payload_type: int
    clock_rate: int
    encode: Callable[[NDArray[np.int16]], bytes]
    decode: Callable[[bytes], NDArray[np.int16]]
    channels: int = 1  # in the rtpmap (opus/48000/2, RFC 7587 7)
    fmtp: str | None = None  # the format parameters we ask for
    stateful: bool = False
    wideband: bool = False  # carries audio up to 8 kHz (G.722, Opus)
    frame_ticks: int = 160  # RTP timestamp units in 20 ms
    duration: Callable[[bytes], int] = len  # RTP timestamp units in one payload

    @property
    def rtpmap(self) -> str:
        """The encoding of an a=rtpmap line: ``PCMU/8000``, ``opus/48000/2``."""
        tail = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{tail}"


# RFC 3551 6, Table 4: static payload types 0 (PCMU) and 8 (PCMA), both 8000 Hz.
PCMU = Codec("PCMU", 0, 8000, ulaw_encode, ulaw_decode)
PCMA = Codec("PCMA", 8, 8000, alaw_encode, alaw_decode)
CODECS: dict[str, Codec] = {codec.name: codec for codec in (PCMU, PCMA)}


@lru_cache(maxsize=32)
def silence_payload(codec: Codec, samples: int = 160) -> bytes:
    """The encoded payload of ``samples`` zero samples (160 = 20 ms at 8 kHz)."""
    if samples < 0:
        raise ValueError(f"samples must be >= 0, got {samples}")
    return codec.encode(np.zeros(samples, dtype=np.int16))


@lru_cache(maxsize=8)
def transcode_table(source: Codec, target: Codec) -> bytes | None:
    """A 256-byte table turning ``source`` payload bytes into ``target`` ones with
    ``bytes.translate`` (one C call per packet, no decoding); None when the codecs
    are the same. Each entry is the target code of the source code's decoded value,
    so PCMU -> PCMA -> PCMU keeps every level the A-law grid can represent."""
    if source == target:
        return None
    codes = np.arange(256, dtype=np.uint8).tobytes()
    return target.encode(source.decode(codes))
