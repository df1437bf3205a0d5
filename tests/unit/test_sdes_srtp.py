"""SDES key exchange (RFC 4568, mediaserver/sip/sdes.py), its place in
offer/answer both ways, the SRTP modes per trunk and user
(mediaserver/calls/srtp_policy.py), and the SRTP channel of a leg
(mediaserver/media/srtp.py)."""

from __future__ import annotations

import base64

import pytest

from mediaserver.calls.srtp_policy import SrtpPolicy
from mediaserver.config import TrunkConfig, UserConfig
from mediaserver.media.rtp import build_rtp, parse_rtp
from mediaserver.media.srtp import SrtpChannel
from mediaserver.sip.access import Admission
from mediaserver.sip.offer_answer import (
    NoAcceptableMedia,
    accept_answer,
    make_offer,
    negotiate_answer,
)
from mediaserver.sip.sdes import (
    SUITES,
    CryptoLine,
    SrtpKeys,
    accept_crypto,
    answer_crypto,
    offer_crypto,
    parse_crypto,
)
from mediaserver.sip.sdp import SessionDescription

SHA80, SHA32, GCM = SUITES
KEY30 = bytes(range(30))
KEY28 = bytes(range(28))
INLINE30 = base64.b64encode(KEY30).decode()
INLINE28 = base64.b64encode(KEY28).decode()


def fixed_key(length: int) -> bytes:
    return bytes([0xA5]) * length


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"1 {SHA80} inline:{INLINE30}", CryptoLine(1, SHA80, KEY30)),
        (f"7 {SHA32.lower()} inline:{INLINE30}|2^20", CryptoLine(7, SHA32, KEY30)),
        (f"2 {GCM} inline:{INLINE28}", CryptoLine(2, GCM, KEY28)),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30}|2^20|1:4", None),  # an MKI
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30};inline:{INLINE30}", None),  # two keys
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30} UNENCRYPTED_SRTP", None),  # a session param
        (f"1 AES_256_CM_HMAC_SHA1_80 inline:{INLINE30}", None),  # a suite we lack
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE28}", None),  # the wrong length
        ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64", None),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{INLINE30}", None),
        ("garbage", None),
    ],
)  # fmt: skip
def test_crypto_lines(value: str, expected: CryptoLine | None) -> None:
    assert parse_crypto(value) == expected


def test_the_answer_takes_the_first_usable_line_with_its_tag_and_our_key() -> None:
    offered = [
        f"1 AES_256_CM_HMAC_SHA1_80 inline:{INLINE30}",
        f"3 AES_CM_128_HMAC_SHA1_32 inline:{INLINE30}",
    ]
    line, keys = answer_crypto(offered, fixed_key) or (None, None)
    assert line == CryptoLine(3, "AES_CM_128_HMAC_SHA1_32", fixed_key(30))
    assert keys == SrtpKeys("AES_CM_128_HMAC_SHA1_32", local=fixed_key(30), remote=KEY30)
    assert (
        str(line) == f"3 AES_CM_128_HMAC_SHA1_32 inline:{base64.b64encode(fixed_key(30)).decode()}"
    )


def test_a_re_offer_with_the_same_key_keeps_ours_and_a_new_one_gets_a_new_key() -> None:
    current = SrtpKeys("AES_CM_128_HMAC_SHA1_80", local=b"L" * 30, remote=KEY30)
    same = answer_crypto([f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30}"], fixed_key, current)
    assert same is not None and same[1] == current
    other = base64.b64encode(b"N" * 30).decode()
    changed = answer_crypto([f"1 AES_CM_128_HMAC_SHA1_80 inline:{other}"], fixed_key, current)
    assert changed is not None and changed[1].local == fixed_key(30)


def test_our_offer_and_the_answer_to_it() -> None:
    ours = offer_crypto(fixed_key)
    assert [(line.tag, line.suite) for line in ours] == list(enumerate(SUITES, 1))
    answered = [f"2 AES_CM_128_HMAC_SHA1_32 inline:{INLINE30}"]
    assert accept_crypto(ours, answered) == SrtpKeys(
        "AES_CM_128_HMAC_SHA1_32", fixed_key(30), KEY30
    )
    assert (
        accept_crypto(ours, [f"2 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30}"]) is None
    )  # tag 2 is _32
    assert accept_crypto(ours, []) is None


def offer(protocol: str, crypto: str = "") -> SessionDescription:
    lines = f"a=crypto:{crypto}\n" if crypto else ""
    return SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        f"m=audio 5000 {protocol} 0 101\na=rtpmap:101 telephone-event/8000\n{lines}"
    )


def negotiate(sdp: SessionDescription, srtp: str = "optional") -> object:
    return negotiate_answer(
        sdp,
        codecs=["PCMU"],
        local_address="192.0.2.50",
        local_port=20000,
        session_id=1,
        session_version=1,
        srtp=srtp,
        new_key=fixed_key,
    )


@pytest.mark.parametrize("protocol", ["RTP/SAVP", "RTP/AVP"])
def test_an_offer_with_keys_is_answered_with_ours(protocol: str) -> None:
    agreed = negotiate_answer(
        offer(protocol, f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30}"),
        codecs=["PCMU"], local_address="192.0.2.50", local_port=20000,
        session_id=1, session_version=1, new_key=fixed_key,
    )  # fmt: skip
    assert agreed.srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_80", local=fixed_key(30), remote=KEY30)
    stream = agreed.sdp.media[0]
    assert stream.protocol == protocol  # RFC 3264 6: the answer keeps the offered transport
    assert stream.attribute("crypto") == str(
        CryptoLine(1, "AES_CM_128_HMAC_SHA1_80", fixed_key(30))
    )


@pytest.mark.parametrize(
    ("sdp", "srtp", "reason"),
    [
        (offer("RTP/AVP"), "required", "RTP/AVP stream with no a=crypto; SRTP is required"),
        (offer("RTP/SAVP", f"1 F8_128 inline:{INLINE30}"), "optional", "no usable a=crypto"),
        (offer("RTP/SAVP", f"1 {SHA80} inline:{INLINE30}"), "off", "but SRTP is off"),
    ],
)  # fmt: skip
def test_what_srtp_does_not_allow_is_a_302(sdp: SessionDescription, srtp: str, reason: str) -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        negotiate(sdp, srtp)
    assert err.value.warning_code == 302 and reason in err.value.reason


def test_srtp_off_answers_keys_on_plain_rtp_in_clear() -> None:
    agreed = negotiate(offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE30}"), "off")
    assert agreed.srtp is None and agreed.sdp.media[0].attribute("crypto") is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("suite", list(SUITES))
def test_two_channels_with_crossed_keys_talk(suite: str) -> None:
    a_key, b_key = bytes([1]) * SUITES[suite], bytes([2]) * SUITES[suite]
    a = SrtpChannel(suite, local=a_key, remote=b_key)
    b = SrtpChannel(suite, local=b_key, remote=a_key)
    rtp = build_rtp(0, 1000, 160, 0x1234, b"\xff" * 160, True)
    protected = a.protect(rtp)
    assert protected is not None and protected != rtp and b"\xff" * 160 not in protected
    plain = b.unprotect(protected)
    assert plain is not None and parse_rtp(plain).payload == b"\xff" * 160
    assert b.unprotect(protected) is None  # a replay
    tampered = bytearray(a.protect(build_rtp(0, 1001, 320, 0x1234, b"\xff" * 160, False)) or b"")
    tampered[20] ^= 1
    assert b.unprotect(bytes(tampered)) is None and b.refused == 2
    # RTCP goes as SRTCP: a receiver report (PT 201) with our SSRC
    rtcp = bytes([0x80, 201, 0, 1]) + (0x1234).to_bytes(4, "big")
    secured = a.protect(rtcp)
    assert secured is not None and len(secured) > len(rtcp)
    assert b.unprotect(secured) == rtcp


def our_offer(srtp: str) -> SessionDescription:
    return make_offer(
        codecs=["PCMU"],
        local_address="192.0.2.50",
        local_port=20000,
        session_id=1,
        session_version=1,
        srtp=srtp,
        new_key=fixed_key,
    )


def their_answer(offer_sdp: SessionDescription, crypto: str = "") -> SessionDescription:
    m = offer_sdp.media[0]
    lines = f"a=crypto:{crypto}\n" if crypto else ""
    return SessionDescription.parse(
        "v=0\no=- 2 2 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n"
        f"m=audio 7000 {m.protocol} 0\n{lines}"
    )


@pytest.mark.parametrize(("srtp", "protocol", "lines"), [
    ("off", "RTP/AVP", 0), ("optional", "RTP/AVP", 3), ("required", "RTP/SAVP", 3),
])  # fmt: skip
def test_our_offer_carries_keys_as_configured(srtp: str, protocol: str, lines: int) -> None:
    stream = our_offer(srtp).media[0]
    assert stream.protocol == protocol
    assert len([a for a in stream.attributes if a.name == "crypto"]) == lines


def test_the_answer_to_our_keys_gives_the_srtp_keys() -> None:
    offer_sdp = our_offer("required")
    agreed = accept_answer(offer_sdp, their_answer(offer_sdp, f"2 {SHA32} inline:{INLINE30}"))
    assert agreed.srtp == SrtpKeys(SHA32, local=fixed_key(30), remote=KEY30)


def test_a_plain_answer_to_optional_keys_is_plain_rtp_and_to_required_ones_a_302() -> None:
    optional = our_offer("optional")
    assert accept_answer(optional, their_answer(optional)).srtp is None
    required = our_offer("required")
    with pytest.raises(NoAcceptableMedia) as err:
        accept_answer(required, their_answer(required))
    assert err.value.warning_code == 302


def test_the_policy_per_trunk_and_user() -> None:
    policy = SrtpPolicy(
        "optional",
        trunks=[TrunkConfig("carrier", "sips:c.example", srtp="required")],
        users=[UserConfig("alice", "pw", "off"), UserConfig("bob", "pw")],
    )
    assert policy.answering(Admission("trunk", "carrier")) == "required"
    assert policy.answering(Admission("user", "alice")) == "off"
    assert policy.answering(Admission("user", "bob")) == "optional"  # rtp.srtp
    assert policy.answering(Admission("network")) == "optional"
    assert policy.offering(trunk="carrier") == "required"
    assert policy.offering(user="bob") == "off"  # keys only to who is set up for them
    assert policy.offering() == "off"
    policy.set_users([UserConfig("bob", "pw", "required")])  # a reload
    assert policy.offering(user="bob") == "required" and policy.offering(user="alice") == "off"
