"""G.722 and Opus: the wideband codecs, and the per-leg coders that decode them.

Theory of operation
-------------------
Two legs on the same wideband codec relay packets untouched (``media/leg.py``),
so a G.722 or Opus call keeps its bandwidth end to end without this module
doing anything. Audio is decoded only where the server needs it (a recording,
a conference, in-band DTMF, a prompt played, a bridge to another codec), and
the server's audio is 8 kHz 16-bit frames of 20 ms (``media/pcm.py``): a
coder turns a leg's payloads into those frames and back. A leg that decodes
for its listeners (:class:`DecodedArrivals`) decodes to 16 kHz instead
(:meth:`G722Coder.decode_wide`), so a recording of wideband legs keeps the band
above 4 kHz; the leg derives its 8 kHz frame from that one each tick.

Both codecs carry state from frame to frame (G.722's ADPCM predictors, Opus's
range coder and overlap), so each leg owns its coders; the G.711 codecs stay
the shared stateless tables. The codec work is libavcodec's through PyAV
(``av``: its native ``g722`` and libopus), imported on the first wideband
coder so a G.711-only server never loads it.

* G.722 (RFC 3551 4.5.2): 16 kHz audio at 64 kbit/s, one byte per two
  samples, static payload type 9. Its SDP clock rate is 8000 for historical
  reasons and its RTP timestamps advance 160 per 20 ms like G.711's, so a
  payload's length is its duration on the wire, as for G.711. Decoded 16 kHz
  audio is decimated by 2; our 8 kHz frames are interpolated by 2 to encode.
* Opus (RFC 7587): a dynamic payload type, ``opus/48000/2`` in the rtpmap
  whatever is sent, timestamps at 48 kHz (960 per 20 ms); a payload's duration
  is read from its TOC byte (RFC 6716 3.1). libopus takes our 8 kHz frames as
  they are; its decoder gives 48 kHz, decimated by 6.

A payload the library refuses (a damaged packet) decodes to silence of the
packet's duration: nothing received may raise out of a leg.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mediaserver.media.g711 import Codec
from mediaserver.media.pcm import Pcm
from mediaserver.media.resample import Decimator, Interpolator
from mediaserver.media.rtp import RtpPacket, ts_delta

if TYPE_CHECKING:
    import av

OPUS_PAYLOAD_TYPE = 111  # the dynamic type we offer (RFC 3551 3: 96-127)
OPUS_FMTP = "useinbandfec=1"  # RFC 7587 6.1: we take in-band FEC; mono is the default
OPUS_BITRATE = 24000  # our side is 8 kHz audio: libopus codes it as narrowband
OPUS_WIDE_BITRATE = 32000  # 16 kHz prompts: wideband SILK/hybrid at this rate


class FrameCoder(Protocol):
    """A leg's two conversions between its payloads and 8 kHz frames."""

    def encode(self, pcm: Pcm) -> bytes: ...

    def decode(self, payload: bytes) -> Pcm: ...


class WideEncoder(Protocol):
    """A wideband encoder taking 16 kHz frames (320 samples) as they are."""

    def encode_wide(self, pcm: Pcm) -> bytes: ...


class WideDecoder(Protocol):
    """A wideband decoder keeping the whole band: payloads to 16 kHz audio."""

    def decode_wide(self, payload: bytes) -> Pcm: ...


# RFC 6716 3.1: the frame size, in 48 kHz samples, of each of the 32 TOC configurations.
_SILK = (480, 960, 1920, 2880)  # 10, 20, 40, 60 ms
_HYBRID = (480, 960)
_CELT = (120, 240, 480, 960)  # 2.5, 5, 10, 20 ms
_OPUS_FRAME = [_SILK[c % 4] for c in range(12)] + [_HYBRID[c % 2] for c in range(12, 16)]
_OPUS_FRAME += [_CELT[c % 4] for c in range(16, 32)]


def opus_duration(payload: bytes) -> int:
    """The duration of an Opus packet in 48 kHz RTP timestamp units (RFC 6716 3.1:
    the TOC byte's configuration and frame count code); 960 for an empty or
    truncated one, as if it were the usual 20 ms."""
    if not payload:
        return 960
    toc = payload[0]
    frames = (1, 2, 2, 0)[toc & 3]
    if frames == 0:  # code 3: the count is in the next byte (RFC 6716 3.2.5)
        if len(payload) < 2:
            return 960
        frames = payload[1] & 0x3F
    return _OPUS_FRAME[toc >> 3] * frames


def _silence(samples: int) -> Pcm:
    return np.zeros(samples, np.int16)


class _AvCoder:
    """One libavcodec encoder and decoder pair (through PyAV) at fixed rates."""

    name = ""
    encode_rate = 8000
    decode_rate = 8000

    def __init__(self) -> None:
        import av

        self._av: Any = av
        self._encoder = self._context("w", self.encode_rate)
        self._decoder = self._context("r", self.decode_rate)
        self._pts = 0

    def _context(self, mode: str, rate: int) -> av.AudioCodecContext:
        context: Any = self._av.CodecContext.create(self.name, mode)
        context.sample_rate = rate
        context.layout = "mono"
        context.format = "s16"
        return context  # type: ignore[no-any-return]

    def _encode(self, samples: Pcm) -> bytes:
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.encode_rate
        frame.pts = self._pts
        self._pts += len(samples)
        return b"".join(bytes(packet) for packet in self._encoder.encode(frame))

    def _decode(self, payload: bytes) -> Pcm | None:
        try:
            frames = self._decoder.decode(self._av.Packet(payload))
        except (self._av.error.FFmpegError, ValueError):
            return None  # a damaged packet: the caller conceals it
        if not frames:
            return None
        parts = [f.to_ndarray().reshape(-1).astype(np.int16, copy=False) for f in frames]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class G722Coder(_AvCoder):
    """G.722 at 16 kHz, seen from 8 kHz frames."""

    name = "g722"
    encode_rate = 16000
    decode_rate = 16000

    def __init__(self) -> None:
        super().__init__()
        self._up = Interpolator(2)
        self._down = Decimator(2)

    def encode(self, pcm: Pcm) -> bytes:
        return self._encode(self._up(pcm.reshape(-1)))

    def encode_wide(self, pcm: Pcm) -> bytes:
        """16 kHz audio as it is (a frame of 320 samples: 160 bytes)."""
        return self._encode(pcm.reshape(-1))

    def decode(self, payload: bytes) -> Pcm:
        return self._down(self.decode_wide(payload))

    def decode_wide(self, payload: bytes) -> Pcm:
        """The payload at G.722's own 16 kHz."""
        wide = self._decode(payload)
        # one byte per two 16 kHz samples
        if wide is None or len(wide) != 2 * len(payload):
            return _silence(2 * len(payload))
        return wide


class OpusCoder(_AvCoder):
    """Opus, encoding our 8 kHz frames directly, decoding at 48 kHz."""

    name = "libopus"
    encode_rate = 8000
    decode_rate = 48000

    def __init__(self) -> None:
        super().__init__()
        self._encoder.bit_rate = OPUS_BITRATE
        self._down = Decimator(6)
        self._down_wide: Decimator | None = None  # 48 to 16 kHz, made by decode_wide
        self._wide_encoder: Any = None  # a 16 kHz encoder, made by encode_wide
        self._wide_pts = 0
        self._up = Interpolator(2)  # our 8 kHz frames, once the 16 kHz encoder runs

    def encode(self, pcm: Pcm) -> bytes:
        if self._wide_encoder is not None:
            # Once a 16 kHz prompt was sent, one encoder for everything: no seam
            # in the peer's decoder at each prompt's start and end.
            return self.encode_wide(self._up(pcm.reshape(-1)))
        return self._encode(pcm.reshape(-1))

    def decode(self, payload: bytes) -> Pcm:
        samples = opus_duration(payload)
        wide = self._decode(payload)
        if wide is None or len(wide) != samples:
            return _silence(samples // 6)
        return self._down(wide)

    def encode_wide(self, pcm: Pcm) -> bytes:
        """16 kHz audio (a prompt that has it) through an encoder at 16 kHz, made
        on first use and then used for our 8 kHz frames too (interpolated): a
        leg that never plays a 16 kHz prompt keeps its 8 kHz encoder. The
        peer's decoder follows the switch: each Opus packet says its mode and
        band (RFC 6716 3.1)."""
        if self._wide_encoder is None:
            self._wide_encoder = self._context("w", 16000)
            self._wide_encoder.bit_rate = OPUS_WIDE_BITRATE
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm, np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        frame.pts = self._wide_pts
        self._wide_pts += len(pcm)
        return b"".join(bytes(packet) for packet in self._wide_encoder.encode(frame))

    def decode_wide(self, payload: bytes) -> Pcm:
        """The payload at 16 kHz (decoded at 48 kHz, decimated by 3)."""
        if self._down_wide is None:
            self._down_wide = Decimator(3)
        samples = opus_duration(payload)
        wide = self._decode(payload)
        if wide is None or len(wide) != samples:
            return _silence(samples // 3)
        return self._down_wide(wide)


def _g722_encode(pcm: Pcm) -> bytes:
    return G722Coder().encode(pcm)


def _g722_decode(payload: bytes) -> Pcm:
    return G722Coder().decode(payload)


def _opus_encode(pcm: Pcm) -> bytes:
    return OpusCoder().encode(pcm)


def _opus_decode(payload: bytes) -> Pcm:
    return OpusCoder().decode(payload)


# RFC 3551 4.5.2 and table 4: G.722 is static type 9 with an 8000 Hz RTP clock.
G722 = Codec("G722", 9, 8000, _g722_encode, _g722_decode, stateful=True, wideband=True)
# RFC 7587 7: opus/48000/2 in every rtpmap, timestamps at 48 kHz.
OPUS = Codec(
    "opus",
    OPUS_PAYLOAD_TYPE,
    48000,
    _opus_encode,
    _opus_decode,
    channels=2,
    fmtp=OPUS_FMTP,
    stateful=True,
    wideband=True,
    frame_ticks=960,
    duration=opus_duration,
)


class DecodedArrivals:
    """G.722 or Opus packets decoded as they arrive, for a leg's jitter buffer,
    which holds their audio as 16 kHz 16-bit PCM (``JitterBuffer(width=4,
    rate_factor=2)``: two samples per 8 kHz timestamp unit): an Opus
    payload has no fixed size per 10 ms, and the buffer may decode a stored
    frame twice (looking for a quiet one to drop), which a stateful decoder must
    not. Timestamps go onto an 8 kHz line (Opus: each packet's offset from the
    previous divided by 6, so the 32-bit wrap of either line never shows; G.722
    is already there). Decoded in arrival order: a reordered packet costs the
    decoder a little continuity, not the audio."""

    def __init__(self, coder: WideDecoder, ratio: int = 6) -> None:
        self._coder = coder
        self._ratio = ratio
        self._anchor: tuple[int, int] | None = None  # (wire timestamp, 8 kHz timestamp)

    def convert(self, packet: RtpPacket) -> RtpPacket:
        pcm = self._coder.decode_wide(packet.payload)
        if self._anchor is None:
            narrow = packet.timestamp // self._ratio
        else:
            wire, ours = self._anchor
            narrow = (ours + ts_delta(packet.timestamp, wire) // self._ratio) & 0xFFFFFFFF
        self._anchor = (packet.timestamp, narrow)
        return replace(packet, timestamp=narrow, payload=pcm.astype("<i2").tobytes())


def linear_decode(data: bytes) -> Pcm:
    """The jitter buffer's decode of :class:`DecodedArrivals` units."""
    return np.frombuffer(data, "<i2").astype(np.int16)
