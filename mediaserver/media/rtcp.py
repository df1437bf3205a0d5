"""RTCP packets (RFC 3550 6): parse and build compound packets, NTP time, report interval.

Theory of operation
-------------------
An RTCP datagram is a *compound packet* (RFC 3550 6.1): several RTCP packets
back to back, each with a 4-byte common header (version, padding bit, a
5-bit count, packet type, and its length in 32-bit words minus one). The
packet types handled here are SR and RR (6.4, with up to 31 report blocks
and optional profile-specific extensions kept as raw bytes), SDES (6.5,
chunks of typed items, CNAME among them), BYE (6.6, sources and an optional
reason) and APP (6.7, kept as raw data). Any other type (RTCP feedback,
extended reports, ...) is kept as an :class:`UnknownRtcpPacket` rather than
rejected, so a compound from a richer peer still yields its reports.

``parse_compound`` applies the validity checks of RFC 3550 A.2: every packet
is version 2, only the last one may carry padding, the length fields add up
to exactly the datagram, and the first packet is an SR or RR. That last rule
is relaxed by ``reduced_size=True`` (RFC 5506), which real softphones need:
baresip, for one, sends its RTCP BYE as ``BYE + SDES`` and a lone ``APP``
packet to open NAT bindings. Each packet body is then checked against its
own layout. Whatever fails raises :class:`RtcpError` with the reason and the
index of the packet, so the transport can count and drop the datagram.

The packet classes are frozen dataclasses holding tuples, so a parsed packet
compares equal to the one it was built from, which the tests rely on.

Time on the wire is NTP time (RFC 3550 4): 64 bits, seconds since 1900 in
the high word and the binary fraction in the low word. ``ntp_from_unix``
converts a wall-clock float (``time.time()``); reports carry only the
middle 32 bits (``ntp_middle_32``, units of 1/65536 s) in LSR and DLSR.

``rtcp_interval`` is RFC 3550 A.7, with the random draw passed in when a
test needs a fixed value. For a two-party call it always gives the 5-second
minimum (2.5 s for the first report) scaled by the 0.5..1.5 randomisation
and the reconsideration compensation; a leg may just as well use
``RTCP_MIN_INTERVAL`` directly.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "APP",
    "BYE",
    "RR",
    "RTCP_MIN_INTERVAL",
    "SDES",
    "SDES_CNAME",
    "SDES_NAME",
    "SDES_NOTE",
    "SDES_PRIV",
    "SDES_TOOL",
    "SR",
    "ApplicationDefined",
    "Goodbye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "SdesChunk",
    "SdesItem",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcpPacket",
    "build_compound",
    "build_rtcp",
    "ntp_from_unix",
    "ntp_middle_32",
    "parse_compound",
    "rtcp_interval",
    "unix_from_ntp",
    "update_avg_rtcp_size",
]

# RFC 3550 12.1: RTCP packet types.
SR = 200
RR = 201
SDES = 202
BYE = 203
APP = 204

# RFC 3550 12.2: SDES item types (0 ends a chunk's item list).
SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

_VERSION = 2
_PADDING_BIT = 0x20
_COUNT_MASK = 0x1F
_MAX_COUNT = 31

# RFC 3550 6.4.1: common header; sender info (NTP, RTP timestamp, packet and octet counts).
_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!QIII")
# RFC 3550 6.4.1: SSRC_n, fraction lost, cumulative lost (24 bits), highest seq, jitter, LSR, DLSR.
_REPORT_BLOCK = struct.Struct("!IB3sIIII")
_APP_HEAD = struct.Struct("!I4s")

# RFC 3550 4: NTP counts seconds from 1900-01-01, Unix from 1970-01-01.
_NTP_UNIX_OFFSET = 2_208_988_800
_MAX_LOST = 0x7FFFFF
_MIN_LOST = -0x800000

RTCP_MIN_INTERVAL = 5.0
# RFC 3550 6.3.1: senders get a quarter of the RTCP bandwidth when they are few.
_SENDER_BW_FRACTION = 0.25
# RFC 3550 A.7: timer reconsideration converges below the intended average.
_COMPENSATION = math.e - 1.5


class RtcpError(ValueError):
    """A datagram that is not a valid RTCP compound packet; the message says why."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics about one source (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int  # lost / expected since the last report, times 256
    cumulative_lost: int  # signed 24 bits: duplicates can make it negative
    highest_sequence: int  # extended: cycles in the high 16 bits
    jitter: int  # interarrival jitter in RTP timestamp units
    lsr: int  # middle 32 bits of the NTP time of the last SR from ssrc, 0 if none
    dlsr: int  # delay since that SR, in 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (RFC 3550 6.4.1): sender info, then reports on the sources it hears."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific, kept raw


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (RFC 3550 6.4.2): reports from a participant that has not sent lately."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""


@dataclass(frozen=True, slots=True)
class SdesItem:
    """One SDES item (RFC 3550 6.5): a type and up to 255 octets (UTF-8 text for most)."""

    kind: int
    value: bytes


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The items describing one source (RFC 3550 6.5)."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> SdesChunk:
        return cls(ssrc, (SdesItem(SDES_CNAME, cname.encode()),))

    @property
    def cname(self) -> str | None:
        """The canonical name (RFC 3550 6.5.1), the one item every chunk should have."""
        for item in self.items:
            if item.kind == SDES_CNAME:
                return item.value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 6.5)."""

    chunks: tuple[SdesChunk, ...] = ()


@dataclass(frozen=True, slots=True)
class Goodbye:
    """BYE (RFC 3550 6.6): these sources are leaving, optionally saying why."""

    sources: tuple[int, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ApplicationDefined:
    """APP (RFC 3550 6.7): a 4-character name and opaque data, kept raw."""

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class UnknownRtcpPacket:
    """A packet type this module does not decode (RTPFB, PSFB, XR, ...): its raw body."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket: TypeAlias = (
    SenderReport
    | ReceiverReport
    | SourceDescription
    | Goodbye
    | ApplicationDefined
    | UnknownRtcpPacket
)

_TYPE_NAMES = {SR: "SR", RR: "RR", SDES: "SDES", BYE: "BYE", APP: "APP"}


def _type_name(packet_type: int) -> str:
    return _TYPE_NAMES.get(packet_type, f"type {packet_type}")


# -- parsing -------------------------------------------------------------------


def parse_compound(data: bytes, *, reduced_size: bool = False) -> list[RtcpPacket]:
    """Parse a compound RTCP packet, checking it as RFC 3550 A.2 says.

    With ``reduced_size`` the first packet need not be an SR or RR (RFC 5506 3.1).
    """
    size = len(data)
    if size < _HEADER.size:
        raise RtcpError(f"truncated: {size} bytes, an RTCP header alone is 4")
    if size % 4:
        # RFC 3550 6.4.1: every RTCP packet is a whole number of 32-bit words.
        raise RtcpError(f"bad length: {size} bytes is not a multiple of 4")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        index = len(packets)
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        where = f"packet {index} ({_type_name(packet_type)})"
        if first >> 6 != _VERSION:
            raise RtcpError(f"{where}: bad version {first >> 6}, RTCP is version 2")
        if index == 0 and not reduced_size and packet_type not in (SR, RR):
            raise RtcpError(f"{where}: a compound packet must start with SR or RR (RFC 3550 6.1)")
        # RFC 3550 6.4.1: the length field counts 32-bit words minus one, header included.
        end = offset + 4 * (words + 1)
        if end > size:
            raise RtcpError(
                f"{where}: length field says {end - offset} bytes, only {size - offset} remain"
            )
        body = data[offset + 4 : end]
        if first & _PADDING_BIT:
            if end != size:
                raise RtcpError(
                    f"{where}: padding is only allowed on the last packet (RFC 3550 6.1)"
                )
            body = _strip_padding(body, where)
        packets.append(_parse_packet(packet_type, first & _COUNT_MASK, body, where))
        offset = end
    return packets


def _strip_padding(body: bytes, where: str) -> bytes:
    # RFC 3550 6.4.1: the last octet counts the padding, itself included, a multiple of four.
    count = body[-1] if body else 0
    if count == 0 or count % 4 or count > len(body):
        raise RtcpError(f"{where}: bad padding count {count} in a {len(body)}-byte body")
    return body[:-count]


def _parse_packet(packet_type: int, count: int, body: bytes, where: str) -> RtcpPacket:
    if packet_type == SR:
        return _parse_sender_report(count, body, where)
    if packet_type == RR:
        return _parse_receiver_report(count, body, where)
    if packet_type == SDES:
        return _parse_sdes(count, body, where)
    if packet_type == BYE:
        return _parse_bye(count, body, where)
    if packet_type == APP:
        if len(body) < _APP_HEAD.size:
            raise RtcpError(f"{where}: {len(body)}-byte body, APP needs 8 for SSRC and name")
        ssrc, name = _APP_HEAD.unpack_from(body)
        return ApplicationDefined(count, ssrc, name, body[_APP_HEAD.size :])
    return UnknownRtcpPacket(packet_type, count, body)


def _report_blocks_at(
    count: int, body: bytes, offset: int, where: str
) -> tuple[tuple[ReportBlock, ...], bytes]:
    """The ``count`` report blocks from ``offset``, and the profile extension after them."""
    end = offset + count * _REPORT_BLOCK.size
    if end > len(body):
        raise RtcpError(
            f"{where}: {count} report blocks need a {end + 4}-byte packet, got {len(body) + 4}"
        )
    blocks = []
    for at in range(offset, end, _REPORT_BLOCK.size):
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(body, at)
        # RFC 3550 6.4.1: the cumulative number of packets lost is a signed 24-bit integer.
        lost = int.from_bytes(lost, "big", signed=True)
        blocks.append(ReportBlock(ssrc, fraction, lost, highest, jitter, lsr, dlsr))
    return tuple(blocks), body[end:]


def _parse_sender_report(count: int, body: bytes, where: str) -> SenderReport:
    head = _SSRC.size + _SENDER_INFO.size
    if len(body) < head:
        raise RtcpError(f"{where}: {len(body) + 4}-byte packet, an SR is at least 28")
    (ssrc,) = _SSRC.unpack_from(body)
    ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, _SSRC.size)
    blocks, extension = _report_blocks_at(count, body, head, where)
    return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks, extension)


def _parse_receiver_report(count: int, body: bytes, where: str) -> ReceiverReport:
    if len(body) < _SSRC.size:
        raise RtcpError(f"{where}: {len(body) + 4}-byte packet, an RR is at least 8")
    (ssrc,) = _SSRC.unpack_from(body)
    blocks, extension = _report_blocks_at(count, body, _SSRC.size, where)
    return ReceiverReport(ssrc, blocks, extension)


def _parse_sdes(count: int, body: bytes, where: str) -> SourceDescription:
    chunks: list[SdesChunk] = []
    offset = 0
    size = len(body)
    for number in range(count):
        if offset + 4 > size:
            raise RtcpError(f"{where}: chunk {number} of {count} is missing")
        (ssrc,) = _SSRC.unpack_from(body, offset)
        offset += 4
        items: list[SdesItem] = []
        while True:
            if offset >= size:
                raise RtcpError(f"{where}: chunk {number} has no null octet ending its items")
            kind = body[offset]
            if kind == SDES_END:
                break
            if offset + 2 > size or offset + 2 + body[offset + 1] > size:
                raise RtcpError(f"{where}: chunk {number} item of type {kind} is truncated")
            length = body[offset + 1]
            items.append(SdesItem(kind, body[offset + 2 : offset + 2 + length]))
            offset += 2 + length
        # RFC 3550 6.5: one to four null octets end the list and pad to the next word.
        offset = (offset + 4) & ~3
        if offset > size:
            raise RtcpError(f"{where}: chunk {number} padding runs past the packet")
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if offset != size:
        raise RtcpError(f"{where}: {size - offset} bytes after the {count} chunks")
    return SourceDescription(tuple(chunks))


def _parse_bye(count: int, body: bytes, where: str) -> Goodbye:
    offset = 4 * count
    if offset > len(body):
        raise RtcpError(f"{where}: {count} sources need a {offset + 4}-byte packet")
    sources = struct.unpack_from(f"!{count}I", body)
    reason: str | None = None
    if offset < len(body):
        # RFC 3550 6.6: an optional length-prefixed reason, padded to a 32-bit boundary.
        length = body[offset]
        if offset + 1 + length > len(body):
            raise RtcpError(f"{where}: reason of {length} bytes runs past the packet")
        reason = body[offset + 1 : offset + 1 + length].decode("utf-8", "replace")
        offset = (offset + 1 + length + 3) & ~3
        if offset != len(body):
            raise RtcpError(f"{where}: {len(body) - offset} bytes after the reason")
    return Goodbye(tuple(sources), reason)


# -- building ------------------------------------------------------------------


def build_rtcp(packet: RtcpPacket, padding: int = 0) -> bytes:
    """Serialise one RTCP packet, with ``padding`` octets (a multiple of 4) at its end."""
    if isinstance(packet, SenderReport):
        count = _check_report_count(packet.reports)
        body = _SSRC.pack(packet.ssrc) + _SENDER_INFO.pack(
            packet.ntp_timestamp,
            packet.rtp_timestamp,
            packet.packet_count,
            packet.octet_count,
        )
        body += _report_blocks(packet.reports) + _aligned(packet.extension, "SR extension")
        return _with_header(SR, count, body, padding)
    if isinstance(packet, ReceiverReport):
        count = _check_report_count(packet.reports)
        body = _SSRC.pack(packet.ssrc) + _report_blocks(packet.reports)
        body += _aligned(packet.extension, "RR extension")
        return _with_header(RR, count, body, padding)
    if isinstance(packet, SourceDescription):
        count = _check_count(len(packet.chunks), "SDES chunks")
        return _with_header(SDES, count, b"".join(map(_sdes_chunk, packet.chunks)), padding)
    if isinstance(packet, Goodbye):
        count = _check_count(len(packet.sources), "BYE sources")
        body = struct.pack(f"!{count}I", *packet.sources)
        if packet.reason is not None:
            reason = packet.reason.encode()
            if len(reason) > 255:
                raise ValueError(f"BYE reason is {len(reason)} bytes encoded, at most 255")
            body += _null_padded(bytes([len(reason)]) + reason, minimum=0)
        return _with_header(BYE, count, body, padding)
    if isinstance(packet, ApplicationDefined):
        count = _check_count(packet.subtype, "APP subtype", count=False)
        if len(packet.name) != 4:
            raise ValueError(f"APP name must be 4 octets, got {packet.name!r}")
        body = _APP_HEAD.pack(packet.ssrc, packet.name) + _aligned(packet.data, "APP data")
        return _with_header(APP, count, body, padding)
    count = _check_count(packet.count, "packet count field", count=False)
    if not 0 <= packet.packet_type <= 255:
        raise ValueError(f"packet type {packet.packet_type} does not fit 8 bits")
    return _with_header(packet.packet_type, count, _aligned(packet.body, "body"), padding)


def build_compound(packets: Sequence[RtcpPacket], *, padding: int = 0) -> bytes:
    """Serialise a compound packet; ``padding`` octets go on the last packet (RFC 3550 6.1)."""
    if not packets:
        raise ValueError("a compound RTCP packet needs at least one packet")
    if not isinstance(packets[0], SenderReport | ReceiverReport):
        # RFC 3550 6.1: the first packet of a compound packet is always a report.
        raise ValueError(f"a compound packet must start with SR or RR, not {packets[0]!r}")
    last = len(packets) - 1
    return b"".join(build_rtcp(p, padding if i == last else 0) for i, p in enumerate(packets))


def _with_header(packet_type: int, count: int, body: bytes, padding: int) -> bytes:
    first = _VERSION << 6 | count
    if padding:
        if padding % 4 or not 0 < padding <= 252:
            raise ValueError(f"padding must be a multiple of 4 from 4 to 252, got {padding}")
        # RFC 3550 6.4.1: the last padding octet counts the padding, itself included.
        body += bytes(padding - 1) + bytes([padding])
        first |= _PADDING_BIT
    words = len(body) // 4
    if words > 0xFFFF:
        raise ValueError(f"RTCP packet of {len(body) + 4} bytes does not fit the length field")
    return _HEADER.pack(first, packet_type, words) + body


def _check_count(value: int, what: str, *, count: bool = True) -> int:
    if not 0 <= value <= _MAX_COUNT:
        limit = "at most 31" if count else "0-31"
        raise ValueError(f"{what}: {value}, the 5-bit field holds {limit}")
    return value


def _check_report_count(reports: tuple[ReportBlock, ...]) -> int:
    # RFC 3550 6.4: more than 31 sources need further RR packets in the compound.
    return _check_count(len(reports), "report blocks")


def _report_blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    out = bytearray()
    for block in reports:
        if not _MIN_LOST <= block.cumulative_lost <= _MAX_LOST:
            raise ValueError(f"cumulative lost {block.cumulative_lost} does not fit 24 bits")
        out += _REPORT_BLOCK.pack(
            block.ssrc,
            block.fraction_lost,
            block.cumulative_lost.to_bytes(3, "big", signed=True),
            block.highest_sequence,
            block.jitter,
            block.lsr,
            block.dlsr,
        )
    return bytes(out)


def _sdes_chunk(chunk: SdesChunk) -> bytes:
    out = bytearray(_SSRC.pack(chunk.ssrc))
    for item in chunk.items:
        if not 1 <= item.kind <= 255:
            raise ValueError(f"SDES item type {item.kind}: 0 ends the list, types are 1-255")
        if len(item.value) > 255:
            raise ValueError(f"SDES item of type {item.kind} is {len(item.value)} bytes, max 255")
        out += bytes([item.kind, len(item.value)]) + item.value
    # RFC 3550 6.5: at least one null octet ends the items, more pad to a 32-bit boundary.
    return _null_padded(bytes(out), minimum=1)


def _null_padded(data: bytes, *, minimum: int) -> bytes:
    total = (len(data) + minimum + 3) & ~3
    return data + bytes(total - len(data))


def _aligned(data: bytes, what: str) -> bytes:
    if len(data) % 4:
        raise ValueError(f"{what} is {len(data)} bytes, not a whole number of 32-bit words")
    return data


# -- time and scheduling ---------------------------------------------------------


def ntp_from_unix(t: float) -> int:
    """The 64-bit NTP timestamp (RFC 3550 4) of a Unix time in seconds."""
    seconds = math.floor(t)
    fraction = min(int((t - seconds) * 2**32), 0xFFFFFFFF)
    # RFC 3550 4: the seconds wrap in 2036; the low 32 bits are what goes on the wire.
    return ((seconds + _NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32 | fraction


def unix_from_ntp(ntp: int) -> float:
    """The Unix time of a 64-bit NTP timestamp, in the era 1968-2104."""
    seconds = ntp >> 32
    if seconds < 0x80000000:
        # RFC 4330 3: a clear top bit means the era that starts in 2036.
        seconds += 2**32
    return seconds - _NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / 2**32


def ntp_middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as LSR carries it (RFC 3550 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def rtcp_interval(
    members: int,
    senders: int,
    rtcp_bw: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    *,
    draw: float | None = None,
) -> float:
    """Seconds until the next RTCP report, as RFC 3550 A.7 computes it.

    ``rtcp_bw`` is the RTCP bandwidth in octets per second (5% of the session
    bandwidth, RFC 3550 6.2); ``avg_rtcp_size`` counts IP and UDP headers too.
    ``draw`` is the uniform random value in [0, 1) (drawn here when None).
    """
    if rtcp_bw <= 0:
        raise ValueError(f"RTCP bandwidth must be positive, got {rtcp_bw}")
    # RFC 3550 6.2: a 5 s floor keeps small sessions from reporting in bursts.
    minimum = RTCP_MIN_INTERVAL / 2 if initial else RTCP_MIN_INTERVAL
    n = members
    if senders <= members * _SENDER_BW_FRACTION:
        # RFC 3550 6.3.1: few senders share 25% of the bandwidth, receivers the rest.
        if we_sent:
            rtcp_bw *= _SENDER_BW_FRACTION
            n = senders
        else:
            rtcp_bw *= 1 - _SENDER_BW_FRACTION
            n -= senders
    interval = max(avg_rtcp_size * n / rtcp_bw, minimum)
    if draw is None:
        draw = random.random()
    # RFC 3550 6.3.1: spread uniformly over [0.5, 1.5] times, to avoid synchronised reports.
    return interval * (draw + 0.5) / _COMPENSATION


def update_avg_rtcp_size(avg_rtcp_size: float, packet_size: int) -> float:
    """The running average of compound RTCP sizes after one more (RFC 3550 6.3.3)."""
    return avg_rtcp_size + (packet_size - avg_rtcp_size) / 16
