"""What a WebRTC answer adds to an RFC 3264 answer (RFC 8829 JSEP 5.3, RFC 8839).

:func:`~mediaserver.sip.offer_answer.negotiate_answer` chooses the codec and
the DTLS terms; a browser also needs our ICE credentials and candidate
(we are ICE-lite: one host candidate, RFC 8445 2.5), ``a=rtcp-mux`` (browsers
require it, RFC 8834 5.1.1), the offer's ``a=mid`` (RFC 8843) and a BUNDLE
group when it offered one. We take the DTLS server role (``a=setup:passive``,
allowed by RFC 5763 5): the browser starts the handshake once its checks
have found us, so nothing waits on a retransmission.
"""

from __future__ import annotations

from mediaserver.media.ice import IceCredentials
from mediaserver.sip.sdp import Attribute, SessionDescription


class NotWebRtc(ValueError):
    """The offer lacks what a WebRTC peer always sends (named in the message)."""


def remote_ufrag(offer: SessionDescription) -> str:
    """The browser's ``a=ice-ufrag`` (media or session level)."""
    for m in offer.media:
        ufrag = m.attribute("ice-ufrag")
        if ufrag:
            return ufrag
    raise NotWebRtc("the offer has no a=ice-ufrag: it is not a WebRTC offer")


def webrtc_answer(
    answer: SessionDescription,
    offer: SessionDescription,
    credentials: IceCredentials,
    candidate: tuple[str, int],
) -> SessionDescription:
    """``answer`` (ours, to ``offer``) with the ICE-lite, mux, mid and DTLS-role
    attributes a browser needs; changed in place and returned."""
    answer.attributes.append(Attribute("ice-lite"))  # RFC 8839 5.3: session level
    bundled: list[str] = []
    host, port = candidate
    for ours, theirs in zip(answer.media, offer.media, strict=True):
        mid = theirs.attribute("mid")
        if mid is not None:
            ours.attributes.append(Attribute("mid", mid))  # RFC 8843 7.3.1: even if rejected
        if ours.port == 0:
            continue
        if mid is not None:
            bundled.append(mid)
        ours.attributes = [
            Attribute("setup", "passive") if a.name == "setup" else a for a in ours.attributes
        ]
        ours.attributes += [
            Attribute("ice-ufrag", credentials.ufrag),
            Attribute("ice-pwd", credentials.pwd),
            # RFC 8839 5.1: foundation, component 1 (RTP), UDP, a host candidate's priority.
            Attribute("candidate", f"1 1 udp 2130706431 {host} {port} typ host"),
            Attribute("end-of-candidates"),
            Attribute("rtcp-mux"),
        ]
    if bundled and offer.attribute("group"):
        answer.attributes.append(Attribute("group", "BUNDLE " + " ".join(bundled)))
    return answer
