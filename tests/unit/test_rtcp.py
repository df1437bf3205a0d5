"""RTCP (RFC 3550 6): packets, compound validation (A.2), NTP time, report interval (A.7)."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.media.rtcp import (
    APP,
    BYE,
    RR,
    RTCP_MIN_INTERVAL,
    SDES,
    SDES_CNAME,
    SDES_NAME,
    SDES_PRIV,
    SDES_TOOL,
    SR,
    ApplicationDefined,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    UnknownRtcpPacket,
    build_compound,
    build_rtcp,
    ntp_from_unix,
    ntp_middle_32,
    parse_compound,
    rtcp_interval,
    unix_from_ntp,
    update_avg_rtcp_size,
)

NTP_UNIX_OFFSET = 2_208_988_800
COMPENSATION = math.e - 1.5  # RFC 3550 6.3.5: e - 3/2 = 1.21828

# Captured from baresip 1.0.0 over loopback (tests/support/baresip.py set-up), answering a
# call from a raw SIP peer that sent it 250 PCMU packets from SSRC 0x5EC0DE01.
BARESIP_SR_SDES = bytes.fromhex(
    "81c8000c97bad159eead0e91515de58e0000d64f000000fa00009c40"
    "5ec0de0100000000000004e0000000000000000000000000"
    "81ca000997bad159011a7369703a746573746572403132372e302e302e313a313636373700000000"
)
BARESIP_SR_WITH_JITTER = bytes.fromhex(
    "81c8000c97bad159eead0e965149949e000172a7000001f4000138805ec0de01"
    "00000000000005d8000000010000000000000000"
    "81ca000997bad159011a7369703a746573746572403132372e302e302e313a313636373700000000"
)
# Its hang-up: BYE first, then SDES, which RFC 3550 6.1 does not allow.
BARESIP_BYE_SDES = bytes.fromhex(
    "81cb000397bad1590441646a6f000000"
    "81ca000997bad159011a7369703a746573746572403132372e302e302e313a313636373700000000"
)
# Sent right after answering to open NAT bindings: a lone APP packet named PING.
BARESIP_APP_PING = bytes.fromhex("80cc000397bad15950494e47504f4e47")
BARESIP_CNAME = "sip:tester@127.0.0.1:16677"


def block(n: int) -> ReportBlock:
    return ReportBlock(
        ssrc=0x10000 + n,
        fraction_lost=n % 256,
        cumulative_lost=n * 1000 - 5000,
        highest_sequence=0x00010000 + n,
        jitter=n * 3,
        lsr=0xB7052000 + n,
        dlsr=0x00054000 + n,
    )


def header(
    packet_type: int, count: int, body: bytes, *, padding: bool = False, version: int = 2
) -> bytes:
    """A common header assembled by hand, with the length derived from the body."""
    first = version << 6 | (0x20 if padding else 0) | count
    return struct.pack("!BBH", first, packet_type, len(body) // 4) + body


def raw_block(b: ReportBlock) -> bytes:
    lost = b.cumulative_lost & 0xFFFFFF
    return struct.pack(
        "!IIIIII", b.ssrc, b.fraction_lost << 24 | lost, b.highest_sequence, b.jitter, b.lsr, b.dlsr
    )


RR_EMPTY = header(RR, 0, struct.pack("!I", 1))
SDES_CNAME_ONLY = build_rtcp(SourceDescription((SdesChunk.with_cname(1, "a@b"),)))


# -- SR and RR -------------------------------------------------------------------


@pytest.mark.parametrize("count", range(32))
def test_sender_report_round_trip_with_report_blocks(count: int) -> None:
    reports = tuple(block(n) for n in range(count))
    sr = SenderReport(0xCAFEBABE, 0xEEAD0E91515DE58E, 54863, 250, 40000, reports)
    data = build_rtcp(sr)
    assert len(data) == 28 + 24 * count
    assert data[0] == 0x80 | count
    assert struct.unpack_from("!H", data, 2)[0] == len(data) // 4 - 1
    assert parse_compound(data) == [sr]


@pytest.mark.parametrize("count", range(32))
def test_receiver_report_round_trip_with_report_blocks(count: int) -> None:
    rr = ReceiverReport(0xCAFEBABE, tuple(block(n) for n in range(count)))
    data = build_rtcp(rr)
    assert len(data) == 8 + 24 * count
    assert data[0] == 0x80 | count
    assert data[1] == RR
    assert parse_compound(data) == [rr]


def test_sender_report_layout_matches_rfc_3550_6_4_1() -> None:
    b = block(7)
    body = struct.pack("!IQIII", 0x11223344, 0x0123456789ABCDEF, 0xDEADBEEF, 17, 2720)
    raw = header(SR, 1, body + raw_block(b))
    sr = SenderReport(0x11223344, 0x0123456789ABCDEF, 0xDEADBEEF, 17, 2720, (b,))
    assert build_rtcp(sr) == raw
    assert parse_compound(raw) == [sr]


def test_report_block_fields_on_the_wire() -> None:
    b = ReportBlock(0xAABBCCDD, 0x40, -2, 0x0002FFFF, 123, 0x12345678, 0x9ABCDEF0)
    rr = build_rtcp(ReceiverReport(1, (b,)))
    assert rr[8:] == bytes.fromhex("aabbccdd 40 fffffe 0002ffff 0000007b 12345678 9abcdef0")


@pytest.mark.parametrize("lost", [-(2**23), -1, 0, 1, 2**23 - 1])
def test_cumulative_lost_is_signed_24_bits(lost: int) -> None:
    b = ReportBlock(1, 0, lost, 0, 0, 0, 0)
    (parsed,) = parse_compound(build_rtcp(ReceiverReport(2, (b,))))
    assert isinstance(parsed, ReceiverReport)
    assert parsed.reports[0].cumulative_lost == lost


@pytest.mark.parametrize("lost", [-(2**23) - 1, 2**23])
def test_cumulative_lost_out_of_range_is_refused(lost: int) -> None:
    with pytest.raises(ValueError, match="24 bits"):
        build_rtcp(ReceiverReport(2, (ReportBlock(1, 0, lost, 0, 0, 0, 0),)))


def test_more_than_31_report_blocks_are_refused() -> None:
    with pytest.raises(ValueError, match="report blocks: 32"):
        build_rtcp(ReceiverReport(1, tuple(block(n) for n in range(32))))
    with pytest.raises(ValueError, match="report blocks: 32"):
        build_rtcp(SenderReport(1, 0, 0, 0, 0, tuple(block(n) for n in range(32))))


def test_profile_extension_after_the_blocks_is_kept() -> None:
    sr = SenderReport(1, 2, 3, 4, 5, (block(1),), b"EXT!" * 3)
    rr = ReceiverReport(1, (), b"more")
    assert parse_compound(build_rtcp(sr)) == [sr]
    assert parse_compound(build_rtcp(rr)) == [rr]
    with pytest.raises(ValueError, match="32-bit words"):
        build_rtcp(ReceiverReport(1, (), b"odd"))


# -- SDES ------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(10))
def test_sdes_cname_padding_to_a_word(length: int) -> None:
    cname = "x" * length
    data = build_rtcp(SourceDescription((SdesChunk.with_cname(0x01020304, cname),)))
    # RFC 3550 6.5: SSRC, type, length, text, then 1 to 4 null octets up to a word boundary.
    items = bytes([SDES_CNAME, length]) + cname.encode()
    nulls = 4 - len(items) % 4
    assert data == header(SDES, 1, struct.pack("!I", 0x01020304) + items + bytes(nulls))
    (parsed,) = parse_compound(data, reduced_size=True)
    assert isinstance(parsed, SourceDescription)
    assert parsed.chunks[0].cname == cname


def test_sdes_with_several_chunks_and_items() -> None:
    sdes = SourceDescription(
        (
            SdesChunk(
                1,
                (
                    SdesItem(SDES_CNAME, b"alice@192.0.2.1"),
                    SdesItem(SDES_NAME, "Alíce".encode()),
                    SdesItem(SDES_TOOL, b"mediaserver"),
                    SdesItem(SDES_PRIV, b"\x03abcvalue"),
                ),
            ),
            SdesChunk(2, ()),
            SdesChunk.with_cname(3, "bob@example.org"),
        )
    )
    (parsed,) = parse_compound(build_rtcp(sdes), reduced_size=True)
    assert parsed == sdes
    assert [chunk.cname for chunk in sdes.chunks] == ["alice@192.0.2.1", None, "bob@example.org"]


def test_empty_sdes_packet() -> None:
    assert build_rtcp(SourceDescription()) == bytes.fromhex("80ca0000")
    assert parse_compound(RR_EMPTY + bytes.fromhex("80ca0000")) == [
        ReceiverReport(1),
        SourceDescription(),
    ]


def test_sdes_items_over_255_bytes_or_of_type_0_are_refused() -> None:
    with pytest.raises(ValueError, match="max 255"):
        build_rtcp(SourceDescription((SdesChunk.with_cname(1, "x" * 256),)))
    with pytest.raises(ValueError, match="type 0"):
        build_rtcp(SourceDescription((SdesChunk(1, (SdesItem(0, b"x"),)),)))


# -- BYE and APP -----------------------------------------------------------------


def test_bye_without_reason() -> None:
    data = build_rtcp(Goodbye((0x01020304,)))
    assert data == bytes.fromhex("81cb0001 01020304")
    assert parse_compound(data, reduced_size=True) == [Goodbye((0x01020304,))]


def test_bye_with_reason_padded_to_a_word() -> None:
    data = build_rtcp(Goodbye((1, 2), "hangup"))
    assert data == header(BYE, 2, struct.pack("!II", 1, 2) + b"\x06hangup" + b"\x00")
    assert parse_compound(data, reduced_size=True) == [Goodbye((1, 2), "hangup")]


@pytest.mark.parametrize("reason", ["", "a", "abc", "🙂 bye", "é" * 127])
def test_bye_reason_round_trip(reason: str) -> None:
    assert parse_compound(build_rtcp(Goodbye((9,), reason)), reduced_size=True) == [
        Goodbye((9,), reason)
    ]


def test_bye_reason_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        build_rtcp(Goodbye((1,), "é" * 128))


def test_bye_with_invalid_utf8_reason_is_still_parsed() -> None:
    data = header(BYE, 1, struct.pack("!I", 5) + b"\x03\xff\xfeA")
    assert parse_compound(data, reduced_size=True) == [Goodbye((5,), "\ufffd\ufffdA")]


def test_app_packet_is_kept_raw() -> None:
    app = ApplicationDefined(5, 0xABCDEF01, b"TEST", b"\x00\x01\x02\x03data")
    data = build_rtcp(app)
    assert data == header(APP, 5, struct.pack("!I", 0xABCDEF01) + b"TEST" + app.data)
    assert parse_compound(RR_EMPTY + data) == [ReceiverReport(1), app]


def test_app_name_and_data_are_checked() -> None:
    with pytest.raises(ValueError, match="4 octets"):
        build_rtcp(ApplicationDefined(0, 1, b"LONGER"))
    with pytest.raises(ValueError, match="4 octets"):
        build_rtcp(ApplicationDefined(0, 1, b"AB"))
    with pytest.raises(ValueError, match="32-bit words"):
        build_rtcp(ApplicationDefined(0, 1, b"NAME", b"abc"))
    with pytest.raises(ValueError, match="APP subtype"):
        build_rtcp(ApplicationDefined(32, 1, b"NAME"))


def test_unknown_packet_types_are_kept_raw() -> None:
    # An RTPFB generic NACK (RFC 4585 6.2.1), which this module does not decode.
    nack = header(205, 1, struct.pack("!IIHH", 1, 2, 100, 0))
    packets = parse_compound(RR_EMPTY + nack)
    assert packets[1] == UnknownRtcpPacket(205, 1, struct.pack("!IIHH", 1, 2, 100, 0))
    assert build_compound(packets) == RR_EMPTY + nack


# -- compound packets --------------------------------------------------------------


def test_compound_round_trip_keeps_order() -> None:
    packets: list[RtcpPacket] = [
        SenderReport(1, 2, 3, 4, 5, (block(0),)),
        ReceiverReport(1, (block(1),)),
        SourceDescription((SdesChunk.with_cname(1, "me@host"),)),
        ApplicationDefined(1, 1, b"ABCD"),
        Goodbye((1,), "done"),
    ]
    data = build_compound(packets)
    assert parse_compound(data) == packets


@pytest.mark.parametrize("padding", [4, 8, 12, 252])
def test_padding_on_the_last_packet(padding: int) -> None:
    packets: list[RtcpPacket] = [ReceiverReport(1), Goodbye((1,), "bye")]
    data = build_compound(packets, padding=padding)
    unpadded = build_compound(packets)
    assert len(data) == len(unpadded) + padding
    bye_start = len(build_rtcp(packets[0]))
    assert data[:bye_start] == unpadded[:bye_start]  # the first packet carries no P bit
    assert data[bye_start] & 0x20
    assert data[-1] == padding
    assert parse_compound(data) == packets


def test_padding_of_a_single_report() -> None:
    data = build_compound([ReceiverReport(7, (block(3),))], padding=16)
    assert data[0] == 0xA1  # version 2, P, one report block
    assert parse_compound(data) == [ReceiverReport(7, (block(3),))]


@pytest.mark.parametrize("padding", [-4, 1, 3, 6, 256])
def test_bad_padding_is_refused_when_building(padding: int) -> None:
    with pytest.raises(ValueError, match="padding"):
        build_compound([ReceiverReport(1)], padding=padding)


def test_building_a_compound_needs_a_report_first() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_compound([])
    with pytest.raises(ValueError, match="start with SR or RR"):
        build_compound([SourceDescription((SdesChunk.with_cname(1, "x"),))])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated: 0 bytes"),
        (b"\x80\xc9\x00", "truncated: 3 bytes"),
        (RR_EMPTY + b"\x00", "not a multiple of 4"),
        (header(RR, 0, struct.pack("!I", 1), version=1), r"packet 0 \(RR\): bad version 1"),
        (RR_EMPTY + header(SDES, 0, b"", version=3), r"packet 1 \(SDES\): bad version 3"),
        (RR_EMPTY + bytes(4), r"packet 1 \(type 0\): bad version 0"),
        (SDES_CNAME_ONLY, r"packet 0 \(SDES\): a compound packet must start with SR or RR"),
        (BARESIP_BYE_SDES, r"packet 0 \(BYE\): a compound packet must start with SR or RR"),
        (
            header(RR, 0, struct.pack("!I", 1) + bytes(3) + b"\x04", padding=True)
            + SDES_CNAME_ONLY,
            r"packet 0 \(RR\): padding is only allowed on the last packet",
        ),
        (b"\x80\xc9\x00\x05" + struct.pack("!I", 1), r"length field says 24 bytes, only 8 remain"),
        (RR_EMPTY + b"\x80\xca\x00\x02" + bytes(4), r"packet 1 \(SDES\): length field says 12"),
        (header(RR, 0, struct.pack("!I", 1) + bytes(4), padding=True), "bad padding count 0"),
        (header(RR, 0, struct.pack("!I", 1) + b"\x00\x00\x00\x02", padding=True), "count 2"),
        (header(RR, 0, struct.pack("!I", 1) + b"\x00\x00\x00\x0c", padding=True), "count 12"),
        (header(RR, 0, b"", padding=False), "an RR is at least 8"),
        (header(SR, 0, bytes(20)), "24-byte packet, an SR is at least 28"),
        (header(RR, 2, struct.pack("!I", 1) + bytes(24)), "2 report blocks need a 56-byte"),
        (header(SR, 1, bytes(24)), "1 report blocks need a 52-byte packet, got 28"),
        (RR_EMPTY + header(SDES, 2, struct.pack("!I", 1) + b"\x00" * 4), "chunk 1 of 2 is missing"),
        (RR_EMPTY + header(SDES, 1, struct.pack("!I", 1) + b"\x01\x02ab"), "no null octet"),
        (RR_EMPTY + header(SDES, 1, struct.pack("!I", 1) + b"\x01\x09abc" + bytes(3)), "truncat"),
        (RR_EMPTY + header(SDES, 1, struct.pack("!I", 1) + bytes(8)), "4 bytes after the 1 chunks"),
        (RR_EMPTY + header(BYE, 2, struct.pack("!I", 1)), "2 sources need a 12-byte packet"),
        (RR_EMPTY + header(BYE, 1, struct.pack("!I", 1) + b"\x09abc"), "reason of 9 bytes"),
        (RR_EMPTY + header(BYE, 1, struct.pack("!I", 1) + b"\x01a\x00\x00" + bytes(4)), "after"),
        (RR_EMPTY + header(APP, 0, struct.pack("!I", 1)), "APP needs 8"),
    ],
)
def test_compound_validation_failures(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason):
        parse_compound(data)


def test_rtcp_error_is_a_value_error() -> None:
    assert issubclass(RtcpError, ValueError)


def test_reduced_size_accepts_any_first_packet() -> None:
    # RFC 5506 3.1: a reduced-size packet may hold a single non-report packet.
    assert parse_compound(SDES_CNAME_ONLY, reduced_size=True) == [
        SourceDescription((SdesChunk.with_cname(1, "a@b"),))
    ]
    with pytest.raises(RtcpError, match="bad version"):
        parse_compound(header(SDES, 0, b"", version=1), reduced_size=True)


# -- real-world packets --------------------------------------------------------------


def test_baresip_sender_report_with_sdes() -> None:
    sr, sdes = parse_compound(BARESIP_SR_SDES)
    assert sr == SenderReport(
        ssrc=0x97BAD159,
        ntp_timestamp=0xEEAD0E91515DE58E,
        rtp_timestamp=0xD64F,
        packet_count=250,
        octet_count=40000,  # 250 PCMU packets of 160 bytes
        reports=(ReportBlock(0x5EC0DE01, 0, 0, 1248, 0, 0, 0),),
    )
    assert isinstance(sdes, SourceDescription)
    assert [chunk.ssrc for chunk in sdes.chunks] == [0x97BAD159]
    assert sdes.chunks[0].cname == BARESIP_CNAME
    assert build_compound([sr, sdes]) == BARESIP_SR_SDES
    # The SR was sent at the end of 2026 (the capture machine's clock).
    assert unix_from_ntp(sr.ntp_timestamp) == pytest.approx(1795330065.3178, abs=1e-4)


def test_baresip_second_report_carries_jitter_and_counts() -> None:
    sr, _ = parse_compound(BARESIP_SR_WITH_JITTER)
    assert isinstance(sr, SenderReport)
    assert (sr.packet_count, sr.octet_count) == (500, 80000)
    assert sr.reports[0].highest_sequence == 1496
    assert sr.reports[0].jitter == 1
    assert build_rtcp(sr) == BARESIP_SR_WITH_JITTER[:52]


def test_baresip_bye_and_app_parse_as_reduced_size() -> None:
    bye, sdes = parse_compound(BARESIP_BYE_SDES, reduced_size=True)
    assert bye == Goodbye((0x97BAD159,), "Adjo")
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].cname == BARESIP_CNAME
    assert parse_compound(BARESIP_APP_PING, reduced_size=True) == [
        ApplicationDefined(0, 0x97BAD159, b"PING", b"PONG")
    ]
    with pytest.raises(RtcpError, match=r"packet 0 \(APP\)"):
        parse_compound(BARESIP_APP_PING)


# -- properties ----------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(2**23), 2**23 - 1),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
words = st.integers(0, 8).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
reports = st.lists(report_blocks, max_size=31).map(tuple)
sender_reports = st.builds(
    SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, reports, words
)
receiver_reports = st.builds(ReceiverReport, u32, reports, words)
sdes_items = st.builds(SdesItem, st.integers(1, 255), st.binary(max_size=255))
sdes_chunks = st.builds(SdesChunk, u32, st.lists(sdes_items, max_size=4).map(tuple))
sdes_packets = st.builds(SourceDescription, st.lists(sdes_chunks, max_size=31).map(tuple))
reasons = st.none() | st.text(max_size=60)
goodbyes = st.builds(Goodbye, st.lists(u32, max_size=31).map(tuple), reasons)
apps = st.builds(
    ApplicationDefined, st.integers(0, 31), u32, st.binary(min_size=4, max_size=4), words
)
unknowns = st.builds(
    UnknownRtcpPacket, st.integers(205, 223) | st.integers(0, 199), st.integers(0, 31), words
)
any_packet = sender_reports | receiver_reports | sdes_packets | goodbyes | apps | unknowns


@given(sender_reports | receiver_reports, st.lists(any_packet, max_size=6), st.integers(0, 63))
def test_any_compound_round_trips(
    first: SenderReport | ReceiverReport, rest: list[RtcpPacket], padding_words: int
) -> None:
    packets = [first, *rest]
    data = build_compound(packets, padding=4 * padding_words)
    assert len(data) % 4 == 0
    assert parse_compound(data) == packets


@given(any_packet)
def test_any_single_packet_round_trips_as_reduced_size(packet: RtcpPacket) -> None:
    assert parse_compound(build_rtcp(packet), reduced_size=True) == [packet]


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_rtcp_error(data: bytes) -> None:
    try:
        packets = parse_compound(data, reduced_size=True)
    except RtcpError:
        return
    assert isinstance(packets, list)


@given(st.lists(any_packet, min_size=1, max_size=4), st.integers(0, 200), st.integers(0, 255))
def test_corrupted_compounds_parse_or_raise_rtcp_error(
    packets: list[RtcpPacket], at: int, value: int
) -> None:
    data = bytearray(b"".join(build_rtcp(p) for p in packets))
    data[at % len(data)] = value
    with contextlib.suppress(RtcpError):
        parse_compound(bytes(data), reduced_size=True)


# -- NTP time --------------------------------------------------------------------------


def test_ntp_epoch_and_fraction() -> None:
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_from_unix(0.5) == NTP_UNIX_OFFSET << 32 | 0x80000000
    assert ntp_from_unix(1.25) == (NTP_UNIX_OFFSET + 1) << 32 | 0x40000000
    # 2000-01-01T00:00:00Z is NTP second 3155673600.
    assert ntp_from_unix(946684800.0) >> 32 == 3155673600


def test_ntp_wraps_in_2036_and_converts_back() -> None:
    era_end = 2**32 - NTP_UNIX_OFFSET  # 2036-02-07T06:28:16Z
    assert ntp_from_unix(era_end - 1) >> 32 == 0xFFFFFFFF
    assert ntp_from_unix(era_end) >> 32 == 0
    assert ntp_from_unix(era_end + 0.5) == 0x80000000
    assert unix_from_ntp(ntp_from_unix(era_end + 0.5)) == era_end + 0.5
    assert unix_from_ntp(ntp_from_unix(era_end - 0.5)) == era_end - 0.5


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_ntp_round_trip(t: float) -> None:
    assert unix_from_ntp(ntp_from_unix(t)) == pytest.approx(t, abs=1e-6)
    assert 0 <= ntp_from_unix(t) < 2**64


def test_ntp_middle_32_bits() -> None:
    # RFC 3550 6.4.1 example: 46864.500 s reads as 0xb710:8000.
    assert ntp_middle_32(0x0000B710_80000000) == 0xB7108000
    assert ntp_middle_32(0xFFFF1234_5678FFFF) == 0x12345678


# -- report interval (RFC 3550 6.3.1, A.7) ---------------------------------------------


def test_two_party_call_uses_the_five_second_minimum() -> None:
    # 64 kbit/s PCMU: 8000 octets/s, RTCP gets 5% = 400 octets/s; two members, both sending.
    interval = rtcp_interval(2, 2, 400.0, True, 128.0, False, draw=0.5)
    assert interval == pytest.approx(5.0 / 1.21828, rel=1e-5)
    assert interval == pytest.approx(4.104, abs=1e-3)
    assert rtcp_interval(2, 2, 400.0, True, 128.0, False, draw=0.0) == pytest.approx(
        2.0521, abs=1e-4
    )
    assert rtcp_interval(2, 2, 400.0, True, 128.0, False, draw=1.0) == pytest.approx(
        6.1562, abs=1e-4
    )


def test_first_interval_uses_half_the_minimum() -> None:
    initial = rtcp_interval(2, 1, 400.0, False, 128.0, True, draw=0.5)
    assert initial == pytest.approx(RTCP_MIN_INTERVAL / 2 / COMPENSATION)


def test_many_receivers_share_three_quarters() -> None:
    # 1000 members, 1 sender, we only listen: n = 999 on 75% of 1000 octets/s.
    interval = rtcp_interval(1000, 1, 1000.0, False, 100.0, False, draw=0.5)
    assert interval == pytest.approx(100.0 * 999 / 750 / COMPENSATION)
    assert interval == pytest.approx(109.33, abs=0.01)


def test_few_senders_share_a_quarter() -> None:
    # The one sender gets 25% of 2000 octets/s: 200 * 1 / 500 = 0.4 s, raised to 5 s.
    assert rtcp_interval(1000, 1, 2000.0, True, 200.0, False, draw=0.5) == pytest.approx(
        5 / COMPENSATION
    )
    # 25 senders of 100 members is still a quarter (RFC 3550 6.3.1: less than or equal):
    # 25 * 1000 / 250 = 100 s, the same as 100 members sharing all, as the RFC intends.
    assert rtcp_interval(100, 25, 1000.0, True, 1000.0, False, draw=0.5) == pytest.approx(
        25 * 1000 / 250 / COMPENSATION
    )


def test_many_senders_share_everything() -> None:
    # 5 senders of 10 members is more than a quarter: all 10 share 100 octets/s.
    assert rtcp_interval(10, 5, 100.0, True, 200.0, False, draw=0.5) == pytest.approx(
        200 * 10 / 100 / COMPENSATION
    )
    assert rtcp_interval(10, 5, 100.0, False, 200.0, False, draw=0.5) == pytest.approx(
        200 * 10 / 100 / COMPENSATION
    )


def test_random_draw_spreads_between_half_and_one_and_a_half() -> None:
    draws = [rtcp_interval(2, 2, 400.0, True, 128.0, False) for _ in range(200)]
    assert all(2.5 / COMPENSATION <= d < 7.5 / COMPENSATION for d in draws)
    assert len(set(draws)) > 100


def test_interval_needs_bandwidth() -> None:
    with pytest.raises(ValueError, match="bandwidth"):
        rtcp_interval(2, 2, 0.0, True, 128.0, False)


def test_average_rtcp_size_moves_a_sixteenth() -> None:
    assert update_avg_rtcp_size(128.0, 228) == 134.25
    assert update_avg_rtcp_size(128.0, 128) == 128.0
