"""Every codec the server speaks, by SDP name, and the coder each leg uses.

G.711 (``g711.py``) is a pair of shared lookup tables; G.722 and Opus
(``wideband.py``) keep state between frames, so every leg gets coders of its
own. ``rtp.codecs`` in the config names codecs as they are spelt here, in
any case (``opus``, ``G722``).
"""

from __future__ import annotations

from mediaserver.media.g711 import PCMA, PCMU, Codec
from mediaserver.media.wideband import (
    G722,
    OPUS,
    FrameCoder,
    G722Coder,
    OpusCoder,
    WideDecoder,
)

__all__ = [
    "CODECS",
    "G722",
    "OPUS",
    "PCMA",
    "PCMU",
    "Codec",
    "FrameCoder",
    "WideDecoder",
    "canonical",
    "coder_for",
    "wide_decoder_for",
]

CODECS: dict[str, Codec] = {codec.name: codec for codec in (PCMU, PCMA, G722, OPUS)}
_BY_UPPER = {name.upper(): name for name in CODECS}


def canonical(name: str) -> str | None:
    """The codec's own spelling of ``name`` (``OPUS`` -> ``opus``); None if unknown."""
    return _BY_UPPER.get(name.upper())


def coder_for(codec: Codec) -> FrameCoder:
    """What a leg encodes and decodes ``codec`` with: the shared G.711 tables
    themselves, or a new stateful G.722 or Opus coder (libavcodec loaded then)."""
    if codec is G722 or codec == G722:
        return G722Coder()
    if codec.name == OPUS.name:
        return OpusCoder()
    return codec


def wide_decoder_for(codec: Codec) -> WideDecoder:
    """A new decoder of G.722 or Opus that keeps the band up to 8 kHz (16 kHz
    audio); ValueError for G.711, which has no such band."""
    if codec is G722 or codec == G722:
        return G722Coder()
    if codec.name == OPUS.name:
        return OpusCoder()
    raise ValueError(f"{codec.name} is not a wideband codec")
