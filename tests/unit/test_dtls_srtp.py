"""DTLS-SRTP (RFC 5763/5764): the handshake core of mediaserver/media/dtls.py
between two in-memory ends, and the DTLS terms of offer/answer."""

from __future__ import annotations

import pytest

from mediaserver.media import dtls
from mediaserver.media.dtls import DtlsError, DtlsHandshake, DtlsIdentity, is_dtls
from mediaserver.media.rtp import build_rtp
from mediaserver.media.srtp import SrtpChannel
from mediaserver.sip.offer_answer import (
    DtlsTerms,
    NoAcceptableMedia,
    accept_answer,
    make_offer,
    negotiate_answer,
)
from mediaserver.sip.sdp import SessionDescription


def identities() -> tuple[DtlsIdentity, DtlsIdentity]:
    first = dtls.dtls_identity()
    dtls.dtls_identity.cache_clear()
    second = dtls.dtls_identity()
    return first, second


def shake(client: DtlsHandshake, server: DtlsHandshake, first: list[bytes] | None = None) -> None:
    """Carry the flights between the two ends until both are done (bounded)."""
    flights = client.start() if first is None else first
    for _ in range(10):
        replies = [out for datagram in flights for out in server.receive(datagram)]
        flights = [out for datagram in replies for out in client.receive(datagram)]
        if client.finished and server.finished:
            return
    raise AssertionError(f"no handshake: {client.failed or server.failed}")


def test_both_ends_export_crossed_keys_that_carry_srtp() -> None:
    ours, theirs = identities()
    client = DtlsHandshake(ours, active=True, peer_fingerprint=theirs.fingerprint)
    server = DtlsHandshake(theirs, active=False, peer_fingerprint=ours.fingerprint)
    hello = client.start()
    assert hello and all(is_dtls(d) for d in hello)
    shake(client, server, hello)
    suite, local, remote = client.keys()
    assert (suite, remote, local) == server.keys()  # RFC 5764 4.2: client and server halves
    assert suite == "AES_CM_128_HMAC_SHA1_80" and len(local) == 30
    sender = SrtpChannel(suite, local=local, remote=remote)
    suite, theirs_local, theirs_remote = server.keys()
    receiver = SrtpChannel(suite, local=theirs_local, remote=theirs_remote)
    packet = build_rtp(0, 7, 160, 9, b"\x11" * 160, False)
    assert receiver.unprotect(sender.protect(packet) or b"") == packet


def test_a_certificate_other_than_the_sdp_fingerprint_is_refused() -> None:
    ours, theirs = identities()
    _, impostor = identities()
    client = DtlsHandshake(ours, active=True, peer_fingerprint=impostor.fingerprint)
    server = DtlsHandshake(theirs, active=False, peer_fingerprint=ours.fingerprint)
    shake(client, server)
    with pytest.raises(DtlsError, match="does not match its SDP fingerprint"):
        client.keys()


def test_an_unknown_fingerprint_hash_is_refused() -> None:
    ours, _ = identities()
    with pytest.raises(DtlsError, match="md9"):
        DtlsHandshake(ours, active=True, peer_fingerprint="md9 AB:CD")


def test_rfc_7983_demultiplexing() -> None:
    assert is_dtls(bytes([22, 254, 253])) and is_dtls(bytes([20]))
    assert not is_dtls(bytes([0x80, 0])) and not is_dtls(b"\x00\x01") and not is_dtls(b"")


FINGERPRINT = "sha-256 " + ":".join(["AB"] * 32)


def dtls_offer(
    setup: str | None = "actpass", fingerprint: str | None = FINGERPRINT
) -> SessionDescription:
    lines = f"a=setup:{setup}\n" if setup else ""
    lines += f"a=fingerprint:{fingerprint}\n" if fingerprint else ""
    return SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        f"m=audio 5000 UDP/TLS/RTP/SAVP 0\n{lines}"
    )


def answer(
    offer: SessionDescription, srtp: str = "optional", ours: str | None = "sha-256 CD"
) -> object:
    return negotiate_answer(
        offer, codecs=["PCMU"], local_address="192.0.2.50", local_port=20000,
        session_id=1, session_version=1, srtp=srtp, dtls_fingerprint=ours,
    )  # fmt: skip


@pytest.mark.parametrize(("setup", "we_are_active", "ours"), [
    ("actpass", True, "active"), ("passive", True, "active"), ("active", False, "passive"),
    (None, True, "active"),
])  # fmt: skip
def test_the_answer_takes_the_other_role_and_names_our_fingerprint(
    setup: str | None, we_are_active: bool, ours: str
) -> None:
    agreed = answer(dtls_offer(setup))
    assert agreed.dtls == DtlsTerms(we_are_active, FINGERPRINT)  # type: ignore[attr-defined]
    stream = agreed.sdp.media[0]  # type: ignore[attr-defined]
    assert stream.protocol == "UDP/TLS/RTP/SAVP"
    assert (stream.attribute("setup"), stream.attribute("fingerprint")) == (ours, "sha-256 CD")


@pytest.mark.parametrize(("offer", "srtp", "ours", "reason"), [
    (dtls_offer(fingerprint=None), "optional", "sha-256 CD", "without a=fingerprint"),
    (dtls_offer(setup="holdconn"), "optional", "sha-256 CD", "a=setup:holdconn"),
    (dtls_offer(), "off", "sha-256 CD", "offered UDP/TLS/RTP/SAVP"),
    (dtls_offer(), "optional", None, "offered UDP/TLS/RTP/SAVP"),  # no certificate here
])  # fmt: skip
def test_what_dtls_cannot_take_is_a_302(
    offer: SessionDescription, srtp: str, ours: str | None, reason: str
) -> None:
    with pytest.raises(NoAcceptableMedia) as err:
        answer(offer, srtp, ours)
    assert err.value.warning_code == 302 and reason in err.value.reason


def test_dtls_mode_answers_dtls_offers_only() -> None:
    sdes = SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=audio 5000 RTP/SAVP 0\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n"
    )
    with pytest.raises(NoAcceptableMedia) as err:
        answer(sdes, "dtls")
    assert err.value.warning_code == 302
    assert "allowed UDP/TLS/RTP/SAVP, UDP/TLS/RTP/SAVPF" in err.value.reason
    assert answer(dtls_offer(), "dtls").dtls == DtlsTerms(True, FINGERPRINT)  # type: ignore[attr-defined]


def our_dtls_offer() -> SessionDescription:
    return make_offer(
        codecs=["PCMU"], local_address="192.0.2.50", local_port=20000, session_id=1,
        session_version=1, srtp="dtls", dtls_fingerprint="sha-256 CD",
    )  # fmt: skip


def test_a_dtls_offer_lets_the_answerer_choose_its_role() -> None:
    stream = our_dtls_offer().media[0]
    assert stream.protocol == "UDP/TLS/RTP/SAVP"
    assert (stream.attribute("setup"), stream.attribute("fingerprint")) == ("actpass", "sha-256 CD")
    assert stream.attribute("crypto") is None  # no SDES keys beside DTLS
    with pytest.raises(ValueError, match="fingerprint"):
        make_offer(
            codecs=["PCMU"], local_address="192.0.2.50", local_port=20000, session_id=1,
            session_version=1, srtp="dtls",
        )  # fmt: skip


def dtls_answer(setup: str | None, fingerprint: str | None = FINGERPRINT) -> SessionDescription:
    lines = f"a=setup:{setup}\n" if setup else ""
    lines += f"a=fingerprint:{fingerprint}\n" if fingerprint else ""
    return SessionDescription.parse(
        "v=0\no=- 2 1 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n"
        f"m=audio 6000 UDP/TLS/RTP/SAVP 0\n{lines}"
    )


@pytest.mark.parametrize(("setup", "we_are_active"), [
    ("active", False), ("passive", True), (None, False),  # RFC 4145 4: none is active
])  # fmt: skip
def test_the_answer_to_our_dtls_offer_gives_our_role(
    setup: str | None, we_are_active: bool
) -> None:
    agreed = accept_answer(our_dtls_offer(), dtls_answer(setup))
    assert agreed.dtls == DtlsTerms(we_are_active, FINGERPRINT)
    assert agreed.srtp is None


@pytest.mark.parametrize(("setup", "fingerprint", "reason"), [
    ("actpass", FINGERPRINT, "a=setup:actpass"),
    ("active", None, "no a=fingerprint"),
])  # fmt: skip
def test_an_answer_without_usable_dtls_terms_is_refused(
    setup: str, fingerprint: str | None, reason: str
) -> None:
    with pytest.raises(NoAcceptableMedia, match=reason):
        accept_answer(our_dtls_offer(), dtls_answer(setup, fingerprint))
