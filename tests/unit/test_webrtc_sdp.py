"""The WebRTC answer (mediaserver/webrtc/sdp.py) to a real Chromium 156 offer
(tests/unit/data/chromium_offer.sdp, captured from the browser test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.media.ice import IceCredentials
from mediaserver.sip.offer_answer import DtlsTerms, negotiate_answer
from mediaserver.sip.sdp import SessionDescription
from mediaserver.webrtc.sdp import NotWebRtc, remote_ufrag, webrtc_answer

OFFER = SessionDescription.parse(
    (Path(__file__).parent / "data" / "chromium_offer.sdp").read_text()
)
OURS = IceCredentials("fRqjcNrC", "S+/X6bx6eB8iX9j+TcEIHsyh")


def answer_to(offer: SessionDescription) -> SessionDescription:
    agreed = negotiate_answer(
        offer, codecs=["PCMU", "PCMA"], local_address="192.0.2.50", local_port=20000,
        session_id=1, session_version=1, srtp="dtls", dtls_fingerprint="sha-256 CD",
    )  # fmt: skip
    assert agreed.codec == "PCMU" and agreed.telephone_event_pt == 126  # the 8 kHz events
    assert agreed.dtls == DtlsTerms(True, OFFER.media[0].attribute("fingerprint") or "")
    return webrtc_answer(agreed.sdp, offer, OURS, ("192.0.2.50", 20000))


def test_the_answer_is_ice_lite_muxed_bundled_and_passive() -> None:
    answer = answer_to(OFFER)
    assert answer.attribute("ice-lite") == ""
    assert answer.attribute("group") == "BUNDLE 0"
    [audio] = answer.media
    assert audio.protocol == "UDP/TLS/RTP/SAVPF" and audio.formats == ["0", "126"]
    assert audio.attribute("mid") == "0"
    assert audio.attribute("setup") == "passive"  # the browser starts the handshake
    assert audio.attribute("rtcp-mux") == ""
    assert (audio.attribute("ice-ufrag"), audio.attribute("ice-pwd")) == (OURS.ufrag, OURS.pwd)
    assert audio.attribute("candidate") == "1 1 udp 2130706431 192.0.2.50 20000 typ host"
    # What the browser parses back (a round trip through the text).
    again = SessionDescription.parse(answer.serialize())
    assert again.media[0].attribute("end-of-candidates") == ""


def test_a_rejected_stream_keeps_its_mid_and_gets_no_ice() -> None:
    text = (
        OFFER.serialize()
        + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
        + "a=rtpmap:96 VP8/90000\r\n"
    )
    answer = answer_to(SessionDescription.parse(text))
    _, video = answer.media
    assert (
        video.port == 0 and video.attribute("mid") == "1" and video.attribute("ice-ufrag") is None
    )
    assert answer.attribute("group") == "BUNDLE 0"  # only what is accepted is bundled


def test_the_browser_ufrag_and_an_offer_that_is_not_webrtc() -> None:
    assert remote_ufrag(OFFER) == "Ag1t"
    plain = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 5000 RTP/AVP 0\r\n"
    )
    with pytest.raises(NotWebRtc, match="ice-ufrag"):
        remote_ufrag(plain)
