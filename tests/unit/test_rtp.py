"""RTP packet parsing and building (RFC 3550 5.1), RTCP demultiplexing and wrap-around helpers."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.media.rtp import (
    RTP_HEADER_SIZE,
    RtpError,
    RtpPacket,
    build_rtp,
    is_rtcp,
    is_stun,
    parse_rtp,
    seq_delta,
    ts_delta,
)


def raw_packet(
    *,
    version: int = 2,
    padding: bytes = b"",
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    marker: bool = False,
    payload_type: int = 0,
    sequence: int = 0x1234,
    timestamp: int = 0x89ABCDEF,
    ssrc: int = 0xDEADBEEF,
    payload: bytes = b"audio",
) -> bytes:
    """Assemble a packet field by field, independently of build_rtp."""
    first = version << 6 | (0x20 if padding else 0) | (0x10 if extension is not None else 0)
    first |= len(csrcs)
    second = (0x80 if marker else 0) | payload_type
    header = struct.pack("!BBHII", first, second, sequence, timestamp, ssrc)
    header += b"".join(struct.pack("!I", csrc) for csrc in csrcs)
    if extension is not None:
        header += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    return header + payload + padding


def test_header_fields() -> None:
    packet = parse_rtp(raw_packet(payload_type=8, payload=b"\xd5" * 160))
    assert packet == RtpPacket(8, False, 0x1234, 0x89ABCDEF, 0xDEADBEEF, b"\xd5" * 160)


def test_marker_bit_is_not_part_of_payload_type() -> None:
    packet = parse_rtp(raw_packet(marker=True, payload_type=101))
    assert packet.marker is True
    assert packet.payload_type == 101


def test_csrc_list_is_skipped() -> None:
    packet = parse_rtp(raw_packet(csrcs=(1, 2, 3), payload=b"after csrcs"))
    assert packet.payload == b"after csrcs"
    assert packet.ssrc == 0xDEADBEEF


def test_header_extension_is_skipped() -> None:
    data = raw_packet(csrcs=(7,), extension=b"\x10\xff\x00\x00" * 2, payload=b"after ext")
    assert parse_rtp(data).payload == b"after ext"


def test_empty_header_extension() -> None:
    assert parse_rtp(raw_packet(extension=b"", payload=b"p")).payload == b"p"


def test_padding_is_removed() -> None:
    assert parse_rtp(raw_packet(payload=b"voice", padding=b"\x00\x00\x03")).payload == b"voice"


def test_padding_can_fill_everything_after_the_header() -> None:
    assert parse_rtp(raw_packet(payload=b"", padding=b"\x00\x00\x00\x04")).payload == b""


def test_empty_payload() -> None:
    assert parse_rtp(raw_packet(payload=b"")).payload == b""


@pytest.mark.parametrize("size", [0, 1, 11])
def test_truncated_header(size: int) -> None:
    with pytest.raises(RtpError, match="truncated"):
        parse_rtp(raw_packet()[:size])


def test_truncated_csrc_list() -> None:
    data = raw_packet(csrcs=(1, 2), payload=b"")[:-2]
    with pytest.raises(RtpError, match="truncated: CSRC"):
        parse_rtp(data)


@pytest.mark.parametrize("version", [0, 1, 3])
def test_bad_version(version: int) -> None:
    with pytest.raises(RtpError, match=f"bad version {version}"):
        parse_rtp(raw_packet(version=version))


def test_rtp_error_is_a_value_error() -> None:
    assert issubclass(RtpError, ValueError)


@pytest.mark.parametrize(
    "data",
    [
        # The padding count is zero: it must at least count itself.
        raw_packet(payload=b"x", padding=b"\x00"),
        # More padding than bytes after the header.
        raw_packet(payload=b"", padding=b"\x00\x09"),
        # The count byte is the last header byte: no room at all.
        raw_packet(payload=b"")[:-1] + b"\x01",
    ],
)
def test_bad_padding(data: bytes) -> None:
    if not data[0] & 0x20:
        data = bytes([data[0] | 0x20]) + data[1:]
    with pytest.raises(RtpError, match="bad padding"):
        parse_rtp(data)


def test_extension_header_truncated() -> None:
    data = raw_packet(payload=b"")
    data = bytes([data[0] | 0x10]) + data[1:] + b"\xbe\xde"
    with pytest.raises(RtpError, match="bad extension"):
        parse_rtp(data)


def test_extension_longer_than_packet() -> None:
    data = raw_packet(extension=b"\x00" * 8, payload=b"")
    data = data[:RTP_HEADER_SIZE] + struct.pack("!HH", 0xBEDE, 50) + data[RTP_HEADER_SIZE + 4 :]
    with pytest.raises(RtpError, match="bad extension"):
        parse_rtp(data)


def test_extension_and_padding_overlapping() -> None:
    data = raw_packet(extension=b"\x00" * 4, payload=b"", padding=b"\x00" * 4 + b"\x09")
    with pytest.raises(RtpError, match="bad padding"):
        parse_rtp(data)


def test_build_layout() -> None:
    data = build_rtp(0, 0x1234, 0x89ABCDEF, 0xDEADBEEF, b"audio")
    assert data == raw_packet()
    assert len(data) == RTP_HEADER_SIZE + 5


def test_build_marker() -> None:
    data = build_rtp(101, 1, 2, 3, b"", marker=True)
    assert data[1] == 0x80 | 101
    assert data[0] == 0x80


def test_build_wraps_sequence_and_timestamp() -> None:
    packet = parse_rtp(build_rtp(0, 0x10001, 0x100000005, 1, b""))
    assert (packet.sequence, packet.timestamp) == (1, 5)


@pytest.mark.parametrize("payload_type", [-1, 128, 255])
def test_build_refuses_bad_payload_type(payload_type: int) -> None:
    with pytest.raises(ValueError, match="payload type"):
        build_rtp(payload_type, 0, 0, 0, b"")


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    marker=st.booleans(),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=400),
)


@given(packets)
def test_parse_inverts_build(packet: RtpPacket) -> None:
    data = build_rtp(
        packet.payload_type,
        packet.sequence,
        packet.timestamp,
        packet.ssrc,
        packet.payload,
        marker=packet.marker,
    )
    assert parse_rtp(data) == packet


@given(st.binary(max_size=64))
def test_parse_never_fails_other_than_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert len(packet.payload) <= len(data) - RTP_HEADER_SIZE


@pytest.mark.parametrize(
    ("second_byte", "expected"),
    [
        (200, True),  # sender report
        (201, True),  # receiver report
        (192, True),  # first RTCP type in the RFC 5761 range
        (223, True),  # last one
        (0x00, False),  # PCMU
        (0x08, False),  # PCMA
        (0x80 | 101, False),  # telephone-event with marker
        (0x80 | 0, False),  # PCMU with marker
        (191, False),  # 63 with marker
        (224, False),  # 96 with marker
        (96, False),
    ],
)
def test_is_rtcp(second_byte: int, expected: bool) -> None:
    assert is_rtcp(bytes([0x80, second_byte, 0, 1])) is expected


def test_is_rtcp_on_short_datagrams() -> None:
    assert is_rtcp(b"") is False
    assert is_rtcp(b"\x80") is False


@pytest.mark.parametrize(
    ("a", "b", "delta"),
    [
        (5, 3, 2),
        (3, 5, -2),
        (0, 0xFFFF, 1),
        (0xFFFF, 0, -1),
        (10, 0xFFF0, 26),
        (0x7FFF, 0, 0x7FFF),
        (0x8000, 0, -0x8000),
        (0, 0x8001, 0x7FFF),
    ],
)
def test_seq_delta(a: int, b: int, delta: int) -> None:
    assert seq_delta(a, b) == delta


@pytest.mark.parametrize(
    ("a", "b", "delta"),
    [
        (160, 0, 160),
        (0, 160, -160),
        (80, 0xFFFFFFB0, 160),
        (0xFFFFFFB0, 80, -160),
        (0x7FFFFFFF, 0, 0x7FFFFFFF),
        (0x80000000, 0, -0x80000000),
    ],
)
def test_ts_delta(a: int, b: int, delta: int) -> None:
    assert ts_delta(a, b) == delta


@given(st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF))
def test_seq_delta_inverts_modular_addition(start: int, step: int) -> None:
    assert seq_delta((start + step) & 0xFFFF, start) == step


@given(st.integers(0, 0xFFFFFFFF), st.integers(-0x80000000, 0x7FFFFFFF))
def test_ts_delta_inverts_modular_addition(start: int, step: int) -> None:
    assert ts_delta((start + step) & 0xFFFFFFFF, start) == step


STUN_BINDING_REQUEST = (
    bytes.fromhex("0001 0000 2112a442".replace(" ", "")) + bytes(range(12))  # RFC 5389 6
)


def test_is_stun_for_a_binding_request() -> None:
    assert is_stun(STUN_BINDING_REQUEST) is True


def test_is_stun_with_attributes() -> None:
    software = bytes.fromhex("8022 0004") + b"lin\x00"  # SOFTWARE, padded to 4 bytes
    header = bytes.fromhex("0001 0008 2112a442".replace(" ", "")) + bytes(12)
    assert is_stun(header + software) is True
    assert is_stun(bytes.fromhex("0101") + header[2:] + software) is True  # success response


@pytest.mark.parametrize(
    "data",
    [
        build_rtp(0, 1, 160, 0x1234, bytes(160)),  # RTP: first byte 128-191 (RFC 7983 7)
        bytes([0x80, 201, 0, 1]) + bytes(4),  # RTCP
        STUN_BINDING_REQUEST[:19],  # shorter than a STUN header
        STUN_BINDING_REQUEST[:4] + b"\x00\x00\x00\x00" + STUN_BINDING_REQUEST[8:],  # no cookie
        STUN_BINDING_REQUEST + b"\x00",  # STUN messages are 4-byte aligned
        bytes([4]) + STUN_BINDING_REQUEST[1:],  # 4-19 is not STUN (ZRTP, RFC 7983)
        b"",
    ],
)
def test_is_stun_refuses_everything_else(data: bytes) -> None:
    assert is_stun(data) is False
