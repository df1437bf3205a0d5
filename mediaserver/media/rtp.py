"""RTP packets (RFC 3550 5.1): parse, build, demultiplex from RTCP, wrap-around arithmetic.

Theory of operation
-------------------
This is the hot path: every media packet of every call goes through
``parse_rtp`` once and every sent packet through ``build_rtp`` once, so both
do the least Python work possible. The fixed 12-byte header is read with one
precompiled ``struct`` call; the variable parts are only skipped, never
decoded: the CSRC list (CC x 4 bytes) and the header extension (RFC 3550
5.3.1: a 4-byte header whose second half counts 32-bit words). Padding
(P bit) is stripped using the count in the packet's last byte. What remains
is the payload, returned as a ``bytes`` slice.

Anything that does not satisfy the RFC 3550 A.1 validity checks raises
``RtpError`` with the reason, so the transport can count and drop it.

Sequence numbers (16 bits) and timestamps (32 bits) wrap around; compare
them only through ``seq_delta`` and ``ts_delta``, which give the signed
shortest distance modulo 2**16 and 2**32 (RFC 3550 A.1 uses the same
modular comparison).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "RTP_HEADER_SIZE",
    "RtpError",
    "RtpPacket",
    "build_rtp",
    "is_rtcp",
    "parse_rtp",
    "seq_delta",
    "ts_delta",
]

# RFC 3550 5.1: V/P/X/CC, M/PT, sequence number, timestamp, SSRC in network byte order.
_HEADER = struct.Struct("!BBHII")
_EXTENSION_LENGTH = struct.Struct("!H")
RTP_HEADER_SIZE = _HEADER.size

_RTP_VERSION = 2
_PADDING_BIT = 0x20
_EXTENSION_BIT = 0x10
_CSRC_COUNT_MASK = 0x0F
_MARKER_BIT = 0x80
_PAYLOAD_TYPE_MASK = 0x7F
_STUN_MAGIC_COOKIE = bytes.fromhex("2112a442")


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet; the message says why."""


@dataclass(slots=True)
class RtpPacket:
    """The fields of an RTP packet that media handling needs, and its payload."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet, skipping CSRCs and header extension and removing padding."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"truncated: {size} bytes, the RTP header alone is {RTP_HEADER_SIZE}")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != _RTP_VERSION:
        raise RtpError(f"bad version {first >> 6}, RTP is version 2")
    # RFC 3550 5.1: CC 32-bit CSRC identifiers follow the fixed header.
    offset = RTP_HEADER_SIZE + 4 * (first & _CSRC_COUNT_MASK)
    if first & _EXTENSION_BIT:
        # RFC 3550 5.3.1: 16-bit profile data, then the extension length in 32-bit words.
        if size < offset + 4:
            raise RtpError("bad extension: header extension truncated")
        (words,) = _EXTENSION_LENGTH.unpack_from(data, offset + 2)
        offset += 4 + 4 * words
    if offset > size:
        if first & _EXTENSION_BIT:
            raise RtpError(f"bad extension: header ends at byte {offset} of a {size}-byte packet")
        raise RtpError(f"truncated: CSRC list ends at byte {offset} of a {size}-byte packet")
    end = size
    if first & _PADDING_BIT:
        # RFC 3550 5.1: the last octet counts the padding octets, itself included.
        padding = data[-1]
        if padding == 0 or padding > size - offset:
            raise RtpError(f"bad padding: count {padding} with {size - offset} bytes after header")
        end -= padding
    return RtpPacket(
        second & _PAYLOAD_TYPE_MASK,
        bool(second & _MARKER_BIT),
        sequence,
        timestamp,
        ssrc,
        data[offset:end],
    )


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
) -> bytes:
    """Build an RTP packet with no CSRC, extension or padding.

    ``sequence`` and ``timestamp`` are taken modulo 2**16 and 2**32, so callers
    can keep plain incrementing counters.
    """
    if not 0 <= payload_type <= _PAYLOAD_TYPE_MASK:
        raise ValueError(f"payload type must be 0-127, got {payload_type}")
    second = payload_type | _MARKER_BIT if marker else payload_type
    header = _HEADER.pack(
        _RTP_VERSION << 6, second, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    return header + payload


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a muxed RTP/RTCP port is RTCP rather than RTP."""
    # RFC 5761 4: RTCP packet types 192-223 read as payload types 64-95 once the M bit is masked.
    return len(data) >= 2 and 64 <= (data[1] & _PAYLOAD_TYPE_MASK) <= 95


def is_stun(data: bytes) -> bool:
    """Whether a datagram on a media port is STUN (an ICE check or a NAT keep-alive,
    as Linphone sends) rather than RTP or RTCP."""
    # RFC 7983 7: a first byte of 0-3 is STUN; RFC 5389 6: the magic cookie follows the
    # 2-byte type and length, and a message is a 20-byte header plus 4-byte-aligned attributes.
    return (
        len(data) >= 20 and data[0] < 4 and data[4:8] == _STUN_MAGIC_COOKIE and len(data) % 4 == 0
    )


def seq_delta(a: int, b: int) -> int:
    """``a - b`` for 16-bit sequence numbers: positive when ``a`` comes after ``b``.

    The result is in [-32768, 32767]; exactly half the space apart reads as -32768.
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps: positive when ``a`` is later than ``b``.

    The result is in [-2**31, 2**31 - 1]; exactly half the space apart reads as -2**31.
    """
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000
