"""Tests for mediaserver.sip.sdp: the SDP model, parser, serializer and offer/answer."""

from __future__ import annotations

import string
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.sip.offer_answer import (
    AudioAnswer,
    NoAcceptableMedia,
    accept_answer,
    make_offer,
    negotiate_answer,
)
from mediaserver.sip.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    RtcpAddress,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)


def crlf(text: str) -> str:
    """An SDP body written one line per source line, with CRLF line ends."""
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines())


# A Linphone-like offer: many codecs, dynamic PTs, three telephone-event clocks.
LINPHONE = crlf("""
    v=0
    o=alice 2890 1024 IN IP4 192.168.1.20
    s=Talk
    c=IN IP4 192.168.1.20
    t=0 0
    a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
    a=record:off
    m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 useinbandfec=1
    a=rtpmap:97 speex/16000
    a=fmtp:97 vbr=on
    a=rtpmap:98 speex/8000
    a=fmtp:98 vbr=on
    a=fmtp:18 annexb=yes
    a=rtpmap:101 telephone-event/48000
    a=rtpmap:99 telephone-event/16000
    a=rtpmap:100 telephone-event/8000
    a=rtcp-fb:* trr-int 1000
    a=rtcp-fb:* ccm tmmbr
""")

# A baresip-like offer: G.711 with rtpmaps, telephone-event 0-15, b=AS, explicit sendrecv.
BARESIP = crlf("""
    v=0
    o=- 1427717239 1427717240 IN IP4 10.0.0.5
    s=-
    c=IN IP4 10.0.0.5
    t=0 0
    m=audio 10000 RTP/AVP 0 8 101
    b=AS:64
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=rtcp-rsize
    a=label:1
    a=sendrecv
""")

# A sipp-like minimal offer: PCMU only, no telephone-event.
SIPP = crlf("""
    v=0
    o=user1 53655765 2353687637 IN IP4 127.0.0.1
    s=-
    c=IN IP4 127.0.0.1
    t=0 0
    m=audio 6000 RTP/AVP 0
    a=rtpmap:0 PCMU/8000
""")

# A carrier (SBC) offer: PCMA first, ptime 30, RTCP on another address (RFC 3605).
CARRIER = crlf("""
    v=0
    o=SBC 1234567 1234568 IN IP4 203.0.113.10
    s=SBC call
    c=IN IP4 203.0.113.10
    t=0 0
    m=audio 30000 RTP/AVP 8 0 18 101
    a=rtpmap:8 PCMA/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:18 G729/8000
    a=fmtp:18 annexb=no
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=ptime:30
    a=maxptime:40
    a=rtcp:30001 IN IP4 203.0.113.11
    a=sendrecv
""")

# Audio and video, with every optional session-level line type.
VIDEO = crlf("""
    v=0
    o=bob 10 20 IN IP4 198.51.100.7
    s=video call
    i=a demo call
    u=http://example.com/call
    e=bob@example.com
    p=+1 555 0100
    c=IN IP4 198.51.100.7
    b=CT:1000
    t=0 0
    k=prompt
    a=tool:videophone 1.0
    m=audio 40000 RTP/AVP 0 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:101 telephone-event/8000
    m=video 40002 RTP/AVP 96 97
    i=camera
    b=AS:512
    a=rtpmap:96 H264/90000
    a=fmtp:96 profile-level-id=42801F
    a=rtpmap:97 VP8/90000
""")

IPV6 = crlf("""
    v=0
    o=- 5 5 IN IP6 2001:db8::1
    s=-
    c=IN IP6 2001:db8::1
    t=0 0
    m=audio 5004 RTP/AVP 8 101
    a=rtpmap:101 telephone-event/8000
""")

REAL_WORLD = {
    "linphone": LINPHONE,
    "baresip": BARESIP,
    "sipp": SIPP,
    "carrier": CARRIER,
    "video": VIDEO,
    "ipv6": IPV6,
}


def offer_with(media_lines: str, session_lines: str = "c=IN IP4 192.0.2.1") -> SessionDescription:
    """An offer with the given m= sections, parsed from text."""
    head = f"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n{session_lines}\nt=0 0\n"
    return SessionDescription.parse(head + "\n".join(x.strip() for x in media_lines.splitlines()))


def answer(
    offer: SessionDescription | str, codecs: tuple[str, ...] = ("PCMU", "PCMA")
) -> AudioAnswer:
    if isinstance(offer, str):
        offer = SessionDescription.parse(offer)
    return negotiate_answer(
        offer,
        codecs=codecs,
        local_address="192.0.2.50",
        local_port=20000,
        session_id=42,
        session_version=1,
    )


# --- parsing and serialization ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_real_world_sdp_serializes_back_byte_for_byte(name: str) -> None:
    text = REAL_WORLD[name]
    assert SessionDescription.parse(text).serialize() == text


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_lf_only_and_trailing_whitespace_parse_the_same(name: str) -> None:
    text = REAL_WORLD[name]
    sloppy = text.replace("\r\n", "  \n")
    assert SessionDescription.parse(sloppy) == SessionDescription.parse(text)
    assert SessionDescription.parse(sloppy).serialize() == text


def test_bytes_body_parses_like_text() -> None:
    assert SessionDescription.parse(BARESIP.encode()) == SessionDescription.parse(BARESIP)


def test_linphone_offer_fields() -> None:
    sdp = SessionDescription.parse(LINPHONE)
    assert sdp.version == 0
    assert sdp.origin == Origin("alice", 2890, 1024, "IN", "IP4", "192.168.1.20")
    assert sdp.session_name == "Talk"
    assert sdp.connection == Connection("192.168.1.20", "IP4", "IN")
    assert sdp.timing == [Timing(0, 0)]
    assert sdp.attributes[1] == Attribute("record", "off")
    (audio,) = sdp.media
    assert (audio.media, audio.port, audio.port_count, audio.protocol) == (
        "audio",
        7078,
        None,
        "RTP/AVP",
    )
    assert audio.formats == ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    assert audio.connection is None
    maps = audio.rtpmaps()
    assert maps[96] == RtpMap(96, "opus", 48000, 2)
    assert maps[100] == RtpMap(100, "telephone-event", 8000, 1)
    assert 0 not in maps  # static PT without rtpmap
    assert audio.fmtp(96) == "useinbandfec=1"
    assert audio.fmtp(18) == "annexb=yes"
    assert audio.fmtp(0) is None
    assert audio.direction == "sendrecv"
    assert audio.ptime is None
    assert audio.rtcp is None
    assert audio.attribute("rtcp-fb") == "* trr-int 1000"
    assert audio.attribute("nothing") is None


def test_carrier_offer_ptime_and_rtcp() -> None:
    (audio,) = SessionDescription.parse(CARRIER).media
    assert audio.ptime == 30
    assert audio.rtcp == RtcpAddress(30001, "203.0.113.11")
    assert audio.attribute("sendrecv") == ""


def test_video_offer_optional_lines() -> None:
    sdp = SessionDescription.parse(VIDEO)
    assert sdp.information == "a demo call"
    assert sdp.uri == "http://example.com/call"
    assert sdp.emails == ["bob@example.com"]
    assert sdp.phones == ["+1 555 0100"]
    assert sdp.bandwidths == [Bandwidth("CT", 1000)]
    assert sdp.encryption_key == "prompt"
    video = sdp.media[1]
    assert video.media == "video"
    assert video.information == "camera"
    assert video.bandwidths == [Bandwidth("AS", 512)]
    assert video.rtpmaps()[96].clock_rate == 90000


def test_ipv6_connection_is_carried() -> None:
    sdp = SessionDescription.parse(IPV6)
    assert sdp.origin.addr_type == "IP6"
    assert sdp.connection == Connection("2001:db8::1", "IP6")


def test_unknown_lines_and_attributes_are_kept_in_place() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "x=session extension\r\na=x-custom:1 2 3\r\n"
        "m=audio 5000 RTP/AVP 0\r\ny=media extension\r\na=x-flag\r\na=x-empty:\r\n"
    )
    sdp = SessionDescription.parse(text)
    assert sdp.other_lines == [("x", "session extension")]
    assert sdp.attributes == [Attribute("x-custom", "1 2 3")]
    assert sdp.media[0].other_lines == [("y", "media extension")]
    assert sdp.media[0].attributes == [Attribute("x-flag"), Attribute("x-empty", "")]
    assert sdp.serialize() == text


def test_serialize_puts_lines_in_rfc_order() -> None:
    # a tolerated out-of-order body comes back in RFC 8866 5 order
    text = (
        "v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\na=sendonly\nc=IN IP4 192.0.2.1\ns=-\nb=AS:80\n"
        "r=7d 1h 0 25h\nz=2882844526 -1h\n"
        "m=audio 5000 RTP/AVP 0\na=ptime:20\nc=IN IP4 192.0.2.2\nb=AS:64\ni=voice\nk=clear:x\n"
    )
    expected = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nb=AS:80\r\n"
        "t=0 0\r\nr=7d 1h 0 25h\r\nz=2882844526 -1h\r\na=sendonly\r\n"
        "m=audio 5000 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 192.0.2.2\r\nb=AS:64\r\nk=clear:x\r\n"
        "a=ptime:20\r\n"
    )
    assert SessionDescription.parse(text).serialize() == expected


def test_direction_media_level_overrides_session_level() -> None:
    sdp = offer_with(
        "m=audio 5000 RTP/AVP 0\nm=audio 5002 RTP/AVP 0\na=inactive",
        "a=sendonly\nc=IN IP4 192.0.2.1",
    )
    assert sdp.media[0].direction == "sendonly"
    assert sdp.media[1].direction == "inactive"


def test_hand_built_session_binds_session_attributes_to_its_media() -> None:
    audio = MediaDescription("audio", 5000, "RTP/AVP", ["0"])
    SessionDescription(attributes=[Attribute("recvonly"), Attribute("ptime", "40")], media=[audio])
    assert (audio.direction, audio.ptime) == ("recvonly", 40)
    assert MediaDescription("audio", 5000, "RTP/AVP", ["0"]).direction == "sendrecv"


def test_session_level_ptime_is_inherited() -> None:
    sdp = offer_with("m=audio 5000 RTP/AVP 0", "c=IN IP4 192.0.2.1\na=ptime:40")
    assert sdp.media[0].ptime == 40


def test_port_count_multicast_and_rtcp_port_only() -> None:
    sdp = offer_with("m=audio 49170/2 RTP/AVP 0\nc=IN IP4 224.2.1.1/127/3\na=rtcp:53020")
    (m,) = sdp.media
    assert (m.port, m.port_count) == (49170, 2)
    assert m.connection is not None and m.connection.host == "224.2.1.1"
    assert m.rtcp == RtcpAddress(53020, None)
    assert "m=audio 49170/2 RTP/AVP 0\r\n" in sdp.serialize()


def test_non_rtp_media_may_have_non_numeric_formats() -> None:
    sdp = offer_with("m=image 0 udptl t38\nm=application 9 UDP/BFCP *")
    assert [m.formats for m in sdp.media] == [["t38"], ["*"]]


def test_blank_lines_are_tolerated_and_do_not_shift_line_numbers() -> None:
    text = "v=0\n\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n\nm=audio abc RTP/AVP 0\n"
    with pytest.raises(SdpError) as err:
        SessionDescription.parse(text)
    assert err.value.line == 7


GOOD_HEAD = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"]


def body(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


MALFORMED: list[tuple[str, str, int | None, str]] = [
    ("empty", "", None, "empty"),
    ("blank only", "\r\n  \r\n", None, "empty"),
    ("no v= first", body(*GOOD_HEAD[1:], "v=0"), 1, "must start with v=0"),
    ("v=1", body("v=1", *GOOD_HEAD[1:]), 1, "unsupported SDP version '1'"),
    ("garbage line", body(*GOOD_HEAD[:3], "hello world", *GOOD_HEAD[3:]), 4, "<letter>=<value>"),
    ("uppercase type", body(*GOOD_HEAD, "M=audio 5000 RTP/AVP 0"), 6, "<letter>=<value>"),
    ("short o=", body("v=0", "o=- 1 1 IN IP4", *GOOD_HEAD[2:]), 2, "6 fields"),
    (
        "non-numeric session id",
        body("v=0", "o=- abc 1 IN IP4 192.0.2.1", *GOOD_HEAD[2:]),
        2,
        "non-numeric session id 'abc'",
    ),
    (
        "non-numeric session version",
        body("v=0", "o=- 1 v2 IN IP4 192.0.2.1", *GOOD_HEAD[2:]),
        2,
        "non-numeric session version 'v2'",
    ),
    ("no o=", body("v=0", *GOOD_HEAD[2:]), None, "no o= (origin) line"),
    ("no s=", body(*GOOD_HEAD[:2], *GOOD_HEAD[3:]), None, "no s= (session name) line"),
    ("no t=", body(*GOOD_HEAD[:4], "m=audio 5000 RTP/AVP 0"), None, "no t= (timing) line"),
    (
        "duplicate o=",
        body(*GOOD_HEAD[:2], *GOOD_HEAD[1:]),
        3,
        "duplicate o= line (first on line 2)",
    ),
    ("duplicate v=", body(*GOOD_HEAD, "v=0"), 6, "duplicate v= line"),
    (
        "c= without address",
        body(*GOOD_HEAD[:3], "c=IN IP4", "t=0 0"),
        4,
        "missing connection address",
    ),
    ("bad t=", body(*GOOD_HEAD[:4], "t=0"), 5, "t= line must be"),
    ("non-numeric t=", body(*GOOD_HEAD[:4], "t=now later"), 5, "t= line must be"),
    ("bad b=", body(*GOOD_HEAD, "b=AS"), 6, "b= line must be"),
    ("r= before t=", body(*GOOD_HEAD[:4], "r=7d 1h 0", "t=0 0"), 5, "r= line without a t= line"),
    ("empty attribute", body(*GOOD_HEAD, "a="), 6, "no attribute name"),
    ("attribute without name", body(*GOOD_HEAD, "a=:x"), 6, "no attribute name"),
    ("non-numeric port", body(*GOOD_HEAD, "m=audio abc RTP/AVP 0"), 6, "non-numeric port 'abc'"),
    ("negative port", body(*GOOD_HEAD, "m=audio -1 RTP/AVP 0"), 6, "non-numeric port '-1'"),
    ("port above 65535", body(*GOOD_HEAD, "m=audio 70000 RTP/AVP 0"), 6, "above 65535"),
    ("bad port count", body(*GOOD_HEAD, "m=audio 5000/x RTP/AVP 0"), 6, "bad port count 'x'"),
    ("zero port count", body(*GOOD_HEAD, "m=audio 5000/0 RTP/AVP 0"), 6, "bad port count '0'"),
    ("short m=", body(*GOOD_HEAD, "m=audio 5000"), 6, "m= line needs"),
    (
        "non-numeric PT",
        body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0 PCMA"),
        6,
        "non-numeric payload type 'PCMA'",
    ),
    ("PT above 127", body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0 128"), 6, "payload type '128'"),
    (
        "non-numeric PT on SAVPF",
        body(*GOOD_HEAD, "m=audio 5000 UDP/TLS/RTP/SAVPF x"),
        6,
        "payload type 'x'",
    ),
    (
        "no connection anywhere",
        body(
            *GOOD_HEAD[:3],
            "t=0 0",
            "m=audio 5000 RTP/AVP 0",
            "c=IN IP4 192.0.2.1",
            "m=audio 5002 RTP/AVP 0",
        ),
        7,
        "m=audio has no c= line",
    ),
    (
        "duplicate media c=",
        body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.2"),
        8,
        "duplicate c= line (first on line 7)",
    ),
    (
        "o= after m=",
        body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "o=- 1 1 IN IP4 1.2.3.4"),
        7,
        "session-level line",
    ),
    ("t= after m=", body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "t=0 0"), 7, "session-level line"),
    (
        "bad ptime",
        body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "a=ptime:abc"),
        7,
        "malformed a=ptime",
    ),
    ("zero ptime", body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "a=ptime:0"), 7, "malformed a=ptime"),
    (
        "zero session-level ptime",
        body(*GOOD_HEAD, "a=ptime:0", "m=audio 5000 RTP/AVP 0"),
        6,
        "malformed a=ptime",
    ),
    ("bad rtcp", body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "a=rtcp:abc"), 7, "malformed a=rtcp"),
    (
        "rtcp with 2 fields",
        body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", "a=rtcp:5001 IN"),
        7,
        "malformed a=rtcp",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_sdp_names_the_line(text: str, line: int | None, fragment: str) -> None:
    with pytest.raises(SdpError) as err:
        SessionDescription.parse(text)
    assert err.value.line == line
    assert fragment in str(err.value)
    if line is not None:
        assert str(err.value).startswith(f"line {line}: ")


def test_error_message_format_matches_the_contract() -> None:
    with pytest.raises(SdpError, match=r"^line 6: m= line has a non-numeric port 'abc'$"):
        SessionDescription.parse(body(*GOOD_HEAD, "m=audio abc RTP/AVP 0"))


def test_non_utf8_body_names_the_line() -> None:
    raw = body(*GOOD_HEAD[:2], "s=caf\u00e9", *GOOD_HEAD[3:]).encode("latin-1")
    with pytest.raises(SdpError) as err:
        SessionDescription.parse(raw)
    assert err.value.line == 3
    assert "not UTF-8" in str(err.value)


def test_utf8_session_name_is_accepted() -> None:
    raw = body(*GOOD_HEAD[:2], "s=caf\u00e9", *GOOD_HEAD[3:]).encode()
    assert SessionDescription.parse(raw).session_name == "caf\u00e9"


# --- negotiate_answer ------------------------------------------------------------------------


def test_offer_order_wins_over_config_order() -> None:
    result = answer(CARRIER, codecs=("PCMU", "PCMA"))  # offer lists 8 before 0
    assert (result.codec, result.payload_type) == ("PCMA", 8)


def test_config_filters_codecs() -> None:
    result = answer(CARRIER, codecs=("PCMU",))
    assert (result.codec, result.payload_type) == ("PCMU", 0)
    audio = result.sdp.media[0]
    assert audio.formats == ["0", "101"]
    assert "PCMA" not in result.sdp.serialize()


def test_codec_names_in_config_are_case_insensitive() -> None:
    assert answer(CARRIER, codecs=("pcmu",)).codec == "PCMU"


def test_linphone_offer_picks_first_allowed_codec_and_8khz_telephone_event() -> None:
    result = answer(LINPHONE, codecs=("PCMA", "PCMU"))
    # offer order: opus, speex, speex, 0, 8 ... so PCMU (static, no rtpmap) wins
    assert (result.codec, result.payload_type) == ("PCMU", 0)
    assert result.telephone_event_pt == 100
    audio = result.sdp.media[0]
    assert audio.formats == ["0", "100"]
    assert audio.rtpmaps() == {
        0: RtpMap(0, "PCMU", 8000, 1),
        100: RtpMap(100, "telephone-event", 8000, 1),
    }
    assert audio.fmtp(100) == "0-16"


def test_dynamic_payload_type_for_pcmu_counts() -> None:
    offer = offer_with(
        "m=audio 5000 RTP/AVP 112 113\na=rtpmap:112 pcmu/8000\na=rtpmap:113 Telephone-Event/8000"
    )
    result = answer(offer)
    assert (result.codec, result.payload_type, result.telephone_event_pt) == ("PCMU", 112, 113)
    assert result.sdp.media[0].formats == ["112", "113"]
    assert result.sdp.media[0].rtpmaps()[112] == RtpMap(112, "PCMU", 8000, 1)


def test_dynamic_pt_with_wrong_clock_or_channels_does_not_count() -> None:
    offer = offer_with(
        "m=audio 5000 RTP/AVP 110 111 8\na=rtpmap:110 PCMU/16000\na=rtpmap:111 PCMU/8000/2"
    )
    assert answer(offer).payload_type == 8


def test_dynamic_pt_without_rtpmap_is_unknown() -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer_with("m=audio 5000 RTP/AVP 96"))
    assert err.value.warning_code == 305
    assert "offered payload type 96" in err.value.reason


def test_rtpmap_overrides_static_meaning() -> None:
    # an explicit rtpmap says what the payload type carries, even for a static number
    with pytest.raises(NoAcceptableMedia):
        answer(offer_with("m=audio 5000 RTP/AVP 0\na=rtpmap:0 G729/8000"))


def test_telephone_event_payload_type_and_fmtp_are_kept() -> None:
    result = answer(CARRIER)
    assert result.telephone_event_pt == 101
    audio = result.sdp.media[0]
    assert audio.rtpmaps()[101] == RtpMap(101, "telephone-event", 8000, 1)
    assert audio.fmtp(101) == "0-15"


def test_telephone_event_without_fmtp_gets_default_events() -> None:
    result = answer(offer_with("m=audio 5000 RTP/AVP 0 96\na=rtpmap:96 telephone-event/8000"))
    assert result.telephone_event_pt == 96
    assert result.sdp.media[0].fmtp(96) == "0-16"


def test_no_telephone_event_offered_means_none_in_answer() -> None:
    result = answer(SIPP)
    assert result.telephone_event_pt is None
    audio = result.sdp.media[0]
    assert audio.formats == ["0"]
    assert "telephone-event" not in result.sdp.serialize()
    assert audio.fmtp(101) is None


def test_answer_to_sipp_offer_is_exactly_this() -> None:
    result = answer(SIPP)
    assert result.sdp.serialize() == crlf("""
        v=0
        o=mediaserver 42 1 IN IP4 192.0.2.50
        s=mediaserver
        c=IN IP4 192.0.2.50
        t=0 0
        m=audio 20000 RTP/AVP 0
        a=rtpmap:0 PCMU/8000
        a=ptime:20
        a=sendrecv
    """)
    assert (result.remote_address, result.remote_port) == ("127.0.0.1", 6000)
    assert result.remote_rtcp is None
    assert (result.direction, result.on_hold, result.ptime) == ("sendrecv", False, 20)


def test_answer_to_baresip_offer_is_exactly_this() -> None:
    result = negotiate_answer(
        SessionDescription.parse(BARESIP),
        codecs=["PCMA", "PCMU"],
        local_address="10.0.0.1",
        local_port=31000,
        session_id=7,
        session_version=8,
        user_agent="mediaserver 0.1",
    )
    assert result.sdp.serialize() == crlf("""
        v=0
        o=mediaserver_0.1 7 8 IN IP4 10.0.0.1
        s=mediaserver 0.1
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 31000 RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=ptime:20
        a=sendrecv
    """)


@pytest.mark.parametrize(
    ("offered", "ours"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ],
)
def test_direction_is_mirrored(offered: str, ours: str) -> None:
    result = answer(offer_with(f"m=audio 5000 RTP/AVP 0\na={offered}"))
    assert result.direction == ours
    assert result.sdp.media[0].direction == ours
    assert result.sdp.media[0].attribute(ours) == ""
    assert result.on_hold == (offered in ("sendonly", "inactive"))


def test_session_level_direction_is_mirrored() -> None:
    result = answer(offer_with("m=audio 5000 RTP/AVP 0", "c=IN IP4 192.0.2.1\na=sendonly"))
    assert result.direction == "recvonly"


@pytest.mark.parametrize(
    ("offered", "ours"),
    [
        ("sendrecv", "recvonly"),
        ("sendonly", "recvonly"),
        ("recvonly", "inactive"),
        ("inactive", "inactive"),
    ],
)
def test_hold_address_means_we_never_send(offered: str, ours: str) -> None:
    result = answer(offer_with(f"m=audio 5000 RTP/AVP 0\na={offered}", "c=IN IP4 0.0.0.0"))
    assert result.on_hold is True
    assert result.remote_address == "0.0.0.0"
    assert result.remote_port == 5000
    assert result.direction == ours


def test_media_level_connection_overrides_session_level() -> None:
    offer = offer_with("m=audio 5000 RTP/AVP 0\nc=IN IP4 198.51.100.9", "c=IN IP4 0.0.0.0")
    result = answer(offer)
    assert result.remote_address == "198.51.100.9"
    assert result.on_hold is False


def test_remote_rtcp_from_rtcp_attribute() -> None:
    result = answer(CARRIER)
    assert result.remote_rtcp == ("203.0.113.11", 30001)
    port_only = answer(offer_with("m=audio 5000 RTP/AVP 0\na=rtcp:6001"))
    assert port_only.remote_rtcp == ("192.0.2.1", 6001)


def test_ptime_is_the_offers_else_20_and_we_ask_for_20() -> None:
    result = answer(CARRIER)
    assert result.ptime == 30
    assert result.sdp.media[0].ptime == 20
    assert answer(SIPP).ptime == 20


def test_video_is_rejected_with_port_zero_and_formats_copied() -> None:
    result = answer(VIDEO)
    assert len(result.sdp.media) == 2
    audio, video = result.sdp.media
    assert (audio.media, audio.port) == ("audio", 20000)
    assert (video.media, video.port, video.protocol) == ("video", 0, "RTP/AVP")
    assert video.formats == ["96", "97"]
    assert video.attributes == []
    assert "m=video 0 RTP/AVP 96 97\r\n" in result.sdp.serialize()


def test_video_before_audio_keeps_the_order() -> None:
    offer = offer_with("m=video 5002 RTP/AVP 96\na=rtpmap:96 H264/90000\nm=audio 5000 RTP/AVP 8")
    result = answer(offer)
    assert [(m.media, m.port) for m in result.sdp.media] == [("video", 0), ("audio", 20000)]
    assert result.remote_port == 5000


def test_second_audio_stream_is_rejected() -> None:
    result = answer(offer_with("m=audio 5000 RTP/AVP 0\nm=audio 5002 RTP/AVP 8"))
    assert [(m.port, m.formats) for m in result.sdp.media] == [(20000, ["0"]), (0, ["8"])]
    assert result.remote_port == 5000


def test_disabled_audio_stream_is_skipped() -> None:
    result = answer(offer_with("m=audio 0 RTP/AVP 0\nm=audio 5002 RTP/AVP 8"))
    assert [(m.port, m.formats) for m in result.sdp.media] == [(0, ["0"]), (20000, ["8"])]
    assert (result.codec, result.remote_port) == ("PCMA", 5002)


def test_srtp_stream_is_skipped_for_a_plain_one() -> None:
    offer = offer_with(
        "m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\n"
        "m=audio 5002 RTP/AVP 0"
    )
    result = answer(offer)
    assert [(m.port, m.protocol) for m in result.sdp.media] == [
        (0, "RTP/SAVP"),
        (20000, "RTP/AVP"),
    ]


def test_avpf_is_accepted_and_echoed() -> None:
    result = answer(offer_with("m=audio 5000 RTP/AVPF 0\na=rtcp-fb:* nack"))
    assert result.sdp.media[0].protocol == "RTP/AVPF"


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_answer_has_one_m_line_per_offered_m_line(name: str) -> None:
    offer = SessionDescription.parse(REAL_WORLD[name])
    result = answer(offer)
    assert len(result.sdp.media) == len(offer.media)
    assert [m.media for m in result.sdp.media] == [m.media for m in offer.media]
    # the answer is valid SDP that survives its own parser
    assert SessionDescription.parse(result.sdp.serialize()) == result.sdp


def test_answer_copies_the_offers_timing() -> None:
    offer = offer_with("m=audio 5000 RTP/AVP 0")
    offer.timing = [Timing(3034423619, 3042462419, ["7d 1h 0 25h"])]
    assert answer(offer).sdp.timing == [Timing(3034423619, 3042462419)]


def test_ipv6_offer_and_ipv6_local_address() -> None:
    result = negotiate_answer(
        SessionDescription.parse(IPV6),
        codecs=["PCMU", "PCMA"],
        local_address="2001:db8::50",
        local_port=20000,
        session_id=1,
        session_version=1,
    )
    assert result.remote_address == "2001:db8::1"
    assert result.codec == "PCMA"
    assert result.telephone_event_pt == 101
    assert result.sdp.origin.addr_type == "IP6"
    assert result.sdp.connection == Connection("2001:db8::50", "IP6")
    assert "c=IN IP6 2001:db8::50\r\n" in result.sdp.serialize()


def test_address_type_follows_local_address() -> None:
    result = answer(IPV6)  # IPv6 offer, IPv4 local address
    assert result.sdp.connection == Connection("192.0.2.50", "IP4")
    assert result.sdp.origin.addr_type == "IP4"


def test_no_allowed_codec_is_a_305() -> None:
    offer = offer_with("m=audio 5000 RTP/AVP 8 18 101\na=rtpmap:101 telephone-event/8000")
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer, codecs=("PCMU",))
    assert err.value.warning_code == 305
    assert err.value.warning_text == "Incompatible media format"
    assert err.value.reason == "no offered codec is allowed (offered PCMA, G729; allowed PCMU)"
    assert err.value.line is None
    assert isinstance(err.value, SdpError)


def test_no_audio_is_a_304() -> None:
    offer = offer_with("m=video 5002 RTP/AVP 96\na=rtpmap:96 H264/90000\nm=audio 0 RTP/AVP 0")
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer)
    assert err.value.warning_code == 304
    assert err.value.warning_text == "Media type not available"
    assert "video port 5002, audio port 0" in err.value.reason


def test_no_media_at_all_is_a_304() -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer_with(""))
    assert err.value.warning_code == 304


def test_srtp_without_keys_is_a_302() -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer_with("m=audio 5000 RTP/SAVP 0"))
    assert err.value.warning_code == 302
    assert err.value.warning_text == "Incompatible transport protocol"
    assert "RTP/SAVP stream with no a=crypto" in err.value.reason


def test_an_unknown_transport_is_a_302() -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer_with("m=audio 5000 UDP/TLS/RTP/SAVP 0"))
    assert err.value.warning_code == 302
    assert "offered UDP/TLS/RTP/SAVP" in err.value.reason


def test_codec_mismatch_is_reported_before_transport_mismatch() -> None:
    offer = offer_with("m=audio 5000 RTP/SAVP 0\nm=audio 5002 RTP/AVP 18")
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer)
    assert err.value.warning_code == 305


def test_bad_local_settings_are_programming_errors() -> None:
    offer = SessionDescription.parse(SIPP)
    with pytest.raises(ValueError, match="G729"):
        answer(offer, codecs=("PCMU", "G729"))
    with pytest.raises(ValueError, match="port"):
        negotiate_answer(
            offer,
            codecs=["PCMU"],
            local_address="1.2.3.4",
            local_port=0,
            session_id=1,
            session_version=1,
        )


def test_hand_built_offer_without_connection_is_refused() -> None:
    offer = SessionDescription(media=[MediaDescription("audio", 5000, "RTP/AVP", ["0"])])
    with pytest.raises(SdpError, match="no c= line"):
        answer(offer)


# --- make_offer and accept_answer ------------------------------------------------------------


def our_offer(
    *,
    codecs: Sequence[str] = ("PCMU", "PCMA"),
    local_address: str = "192.0.2.50",
    local_port: int = 20000,
    telephone_event_pt: int | None = 101,
    direction: str = "sendrecv",
) -> SessionDescription:
    return make_offer(
        codecs=codecs,
        local_address=local_address,
        local_port=local_port,
        session_id=99,
        session_version=1,
        telephone_event_pt=telephone_event_pt,
        direction=direction,
    )


def test_make_offer_is_exactly_this() -> None:
    assert our_offer().serialize() == crlf("""
        v=0
        o=mediaserver 99 1 IN IP4 192.0.2.50
        s=mediaserver
        c=IN IP4 192.0.2.50
        t=0 0
        m=audio 20000 RTP/AVP 0 8 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=sendrecv
    """)


def test_make_offer_follows_config_order_and_options() -> None:
    offer = our_offer(codecs=["PCMA", "PCMU"], telephone_event_pt=96, direction="sendonly")
    audio = offer.media[0]
    assert audio.formats == ["8", "0", "96"]
    assert audio.direction == "sendonly"
    assert audio.fmtp(96) == "0-16"
    assert SessionDescription.parse(offer.serialize()) == offer


def test_make_offer_without_telephone_event_and_on_ipv6() -> None:
    offer = our_offer(codecs=["PCMA"], telephone_event_pt=None, local_address="2001:db8::50")
    assert offer.media[0].formats == ["8"]
    assert offer.connection == Connection("2001:db8::50", "IP6")
    assert "telephone-event" not in offer.serialize()


def test_make_offer_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="at least one codec"):
        our_offer(codecs=[])
    with pytest.raises(ValueError, match="G729"):
        our_offer(codecs=["G729"])
    with pytest.raises(ValueError, match="70000"):
        our_offer(local_port=70000)
    with pytest.raises(ValueError, match="both"):
        our_offer(direction="both")
    with pytest.raises(ValueError, match="96-127"):
        our_offer(telephone_event_pt=8)


def remote_answer(media: str, connection: str = "c=IN IP4 198.51.100.20") -> SessionDescription:
    return SessionDescription.parse(
        f"v=0\no=peer 5 5 IN IP4 198.51.100.20\ns=-\n{connection}\nt=0 0\n"
        + "\n".join(x.strip() for x in media.splitlines())
    )


def test_accept_answer_takes_codec_and_telephone_event_from_the_answer() -> None:
    theirs = remote_answer(
        "m=audio 40000 RTP/AVP 8 96\na=rtpmap:8 PCMA/8000\na=rtpmap:96 telephone-event/8000\n"
        "a=ptime:30\na=rtcp:40005"
    )
    result = accept_answer(our_offer(), theirs)
    assert result.sdp is theirs
    assert (result.codec, result.payload_type, result.telephone_event_pt) == ("PCMA", 8, 96)
    assert (result.remote_address, result.remote_port) == ("198.51.100.20", 40000)
    assert result.remote_rtcp == ("198.51.100.20", 40005)
    assert (result.direction, result.on_hold, result.ptime) == ("sendrecv", False, 30)


def test_accept_answer_without_telephone_event() -> None:
    result = accept_answer(our_offer(), remote_answer("m=audio 40000 RTP/AVP 0"))
    assert (result.codec, result.telephone_event_pt, result.ptime) == ("PCMU", None, 20)


def test_accept_answer_needs_as_many_m_lines() -> None:
    theirs = remote_answer("m=audio 40000 RTP/AVP 0\nm=video 0 RTP/AVP 96")
    with pytest.raises(SdpError, match="2 m= lines but the offer had 1"):
        accept_answer(our_offer(), theirs)


def test_accept_answer_refuses_a_codec_we_did_not_offer() -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        accept_answer(our_offer(codecs=["PCMU"]), remote_answer("m=audio 40000 RTP/AVP 8"))
    assert err.value.warning_code == 305
    assert "answered PCMA; offered PCMU" in err.value.reason


def test_accept_answer_skips_unoffered_codecs_listed_first() -> None:
    result = accept_answer(our_offer(codecs=["PCMA"]), remote_answer("m=audio 40000 RTP/AVP 0 8"))
    assert result.codec == "PCMA"


def test_accept_answer_with_rejected_audio_is_a_304() -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        accept_answer(our_offer(), remote_answer("m=audio 0 RTP/AVP 0"))
    assert err.value.warning_code == 304


def test_accept_answer_refuses_another_transport() -> None:
    with pytest.raises(SdpError, match="RTP/SAVP"):
        accept_answer(our_offer(), remote_answer("m=audio 40000 RTP/SAVP 0"))


@pytest.mark.parametrize(
    ("offered", "answered", "ours", "on_hold"),
    [
        ("sendrecv", "sendrecv", "sendrecv", False),
        ("sendrecv", "recvonly", "sendonly", False),
        ("sendrecv", "sendonly", "recvonly", True),
        ("sendrecv", "inactive", "inactive", True),
        ("sendonly", "recvonly", "sendonly", False),
        ("recvonly", "sendonly", "recvonly", True),
        ("inactive", "inactive", "inactive", True),
    ],
)
def test_accept_answer_direction(offered: str, answered: str, ours: str, on_hold: bool) -> None:
    result = accept_answer(
        our_offer(direction=offered), remote_answer(f"m=audio 40000 RTP/AVP 0\na={answered}")
    )
    assert (result.direction, result.on_hold) == (ours, on_hold)


def test_accept_answer_hold_address() -> None:
    result = accept_answer(
        our_offer(), remote_answer("m=audio 40000 RTP/AVP 0", "c=IN IP4 0.0.0.0")
    )
    assert (result.direction, result.on_hold) == ("recvonly", True)


def test_our_offer_negotiates_with_ourselves() -> None:
    offer = our_offer(codecs=["PCMA", "PCMU"])
    reply = answer(SessionDescription.parse(offer.serialize()), codecs=("PCMU", "PCMA"))
    assert (reply.codec, reply.telephone_event_pt) == ("PCMA", 101)
    agreed = accept_answer(offer, SessionDescription.parse(reply.sdp.serialize()))
    assert (agreed.codec, agreed.payload_type, agreed.telephone_event_pt) == ("PCMA", 8, 101)
    assert (agreed.remote_address, agreed.remote_port) == ("192.0.2.50", 20000)


# --- properties --------------------------------------------------------------------------------

TOKEN = st.text(string.ascii_letters + string.digits + "-._+", min_size=1, max_size=8)
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"), max_size=16
).filter(lambda s: s == s.rstrip())
VALIDATED = {"rtpmap", "ptime", "rtcp"}
ATTRIBUTE = st.builds(Attribute, TOKEN.filter(lambda n: n not in VALIDATED), st.none() | TEXT)
OTHER_LINE = st.tuples(st.sampled_from("dfghjlnqwxy"), TEXT)
BANDWIDTH = st.builds(Bandwidth, TOKEN.filter(lambda t: ":" not in t), st.integers(0, 10**9))
CONNECTION = st.builds(Connection, TOKEN, st.sampled_from(["IP4", "IP6"]), st.just("IN"))
REPEAT = st.lists(TOKEN, min_size=1, max_size=3).map(" ".join)


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    protocol = draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udptl", "TCP"]))
    rtp = "RTP/" in protocol
    fmt = st.integers(0, 127).map(str) if rtp else TOKEN
    attributes = draw(st.lists(ATTRIBUTE, max_size=4))
    if rtp and draw(st.booleans()):
        attributes.append(Attribute("rtpmap", f"{draw(st.integers(0, 127))} {draw(TOKEN)}/8000"))
        attributes.append(Attribute("ptime", str(draw(st.integers(1, 200)))))
        attributes.append(Attribute("rtcp", str(draw(st.integers(0, 65535)))))
    return MediaDescription(
        media=draw(st.sampled_from(["audio", "video", "image", "application"])),
        port=draw(st.integers(0, 65535)),
        protocol=protocol,
        formats=draw(st.lists(fmt, max_size=5)),
        port_count=draw(st.none() | st.integers(1, 8)),
        information=draw(st.none() | TEXT),
        connection=draw(st.none() | CONNECTION),
        bandwidths=draw(st.lists(BANDWIDTH, max_size=2)),
        encryption_key=draw(st.none() | TEXT),
        attributes=attributes,
        other_lines=draw(st.lists(OTHER_LINE, max_size=2)),
    )


@st.composite
def session_descriptions(draw: st.DrawFn) -> SessionDescription:
    media = draw(st.lists(media_descriptions(), max_size=3))
    connection = draw(st.none() | CONNECTION)
    if connection is None:
        for m in media:  # RFC 8866 5.7: a c= for every stream, one way or the other
            m.connection = m.connection or draw(CONNECTION)
    return SessionDescription(
        origin=draw(
            st.builds(
                Origin,
                TOKEN,
                st.integers(0, 2**64),
                st.integers(0, 2**64),
                st.just("IN"),
                st.sampled_from(["IP4", "IP6"]),
                TOKEN,
            )
        ),
        session_name=draw(TEXT),
        connection=connection,
        timing=draw(
            st.lists(
                st.builds(
                    Timing,
                    st.integers(0, 2**40),
                    st.integers(0, 2**40),
                    st.lists(REPEAT, max_size=2),
                ),
                min_size=1,
                max_size=2,
            )
        ),
        media=media,
        attributes=draw(st.lists(ATTRIBUTE, max_size=4)),
        bandwidths=draw(st.lists(BANDWIDTH, max_size=2)),
        information=draw(st.none() | TEXT),
        uri=draw(st.none() | TEXT),
        emails=draw(st.lists(TEXT, max_size=2)),
        phones=draw(st.lists(TEXT, max_size=2)),
        time_zones=draw(st.none() | TEXT),
        encryption_key=draw(st.none() | TEXT),
        other_lines=draw(st.lists(OTHER_LINE, max_size=2)),
    )


@settings(max_examples=300)
@given(session_descriptions())
def test_parse_of_serialize_is_identity(sdp: SessionDescription) -> None:
    text = sdp.serialize()
    assert SessionDescription.parse(text) == sdp
    assert SessionDescription.parse(text.encode()) == sdp
    assert SessionDescription.parse(text.replace("\r\n", "\n")) == sdp


@settings(max_examples=300)
@given(session_descriptions(), st.lists(st.sampled_from(["PCMU", "PCMA"]), unique=True))
def test_negotiation_either_answers_in_shape_or_says_why(
    offer: SessionDescription, codecs: list[str]
) -> None:
    try:
        result = answer(SessionDescription.parse(offer.serialize()), codecs=tuple(codecs))
    except NoAcceptableMedia as err:
        assert err.warning_code in (302, 304, 305)
        return
    assert len(result.sdp.media) == len(offer.media)
    active = [m for m in result.sdp.media if m.port != 0]
    assert len(active) == 1 and active[0].media == "audio"
    assert result.codec in codecs
    assert SessionDescription.parse(result.sdp.serialize()) == result.sdp


@settings(max_examples=500)
@given(
    st.lists(
        st.sampled_from(
            [
                *GOOD_HEAD,
                "m=audio 5000 RTP/AVP 0 8",
                "a=rtpmap:0 PCMU/8000",
                "a=sendonly",
                "c=IN IP4 0.0.0.0",
                "m=video 0 RTP/AVP 96",
                "b=AS:64",
                "r=1 2 3",
                "a=ptime:x",
            ]
        )
        | st.text(max_size=30),
        max_size=12,
    )
)
def test_any_input_parses_or_raises_sdp_error(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        SessionDescription.parse(text)
    except SdpError as err:
        assert err.line is None or 1 <= err.line <= len(text.split("\n"))


@pytest.mark.parametrize(
    "rtpmap", ["a=rtpmap:0 PCMU", "a=rtpmap:0 PCMU/fast", "a=rtpmap:x PCMU/8000", "a=rtpmap:31 LPC"]
)
def test_a_malformed_rtpmap_only_spoils_its_own_format(rtpmap: str) -> None:
    """Postel: a bad rtpmap is ignored, not fatal (RFC 4475 3.1.1.3's body has
    ``a=rtpmap:31 LPC`` on a video stream); static types keep their RFC 3551 meaning."""
    sdp = SessionDescription.parse(body(*GOOD_HEAD, "m=audio 5000 RTP/AVP 0", rtpmap))
    assert 0 not in sdp.media[0].rtpmaps() or sdp.media[0].rtpmaps()[0].clock_rate == 8000
    answer = negotiate_answer(sdp, codecs=["PCMU"], local_address="192.0.2.1",
                              local_port=4000, session_id=1, session_version=1)  # fmt: skip
    assert answer.codec == "PCMU"


def test_rfc4475_body_with_a_bad_video_rtpmap_negotiates_audio() -> None:
    sdp = SessionDescription.parse(
        body(
            *GOOD_HEAD,
            "m=audio 5000 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "m=video 3227 RTP/AVP 31",
            "a=rtpmap:31 LPC",
        )
    )
    answer = negotiate_answer(sdp, codecs=["PCMU"], local_address="192.0.2.1",
                              local_port=4000, session_id=1, session_version=1)  # fmt: skip
    assert answer.codec == "PCMU" and answer.sdp.media[1].port == 0
