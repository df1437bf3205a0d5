"""A call's media security, as its offer/answer agreed it: SDES keys now, a
DTLS-SRTP handshake to come, or plain RTP (sip/offer_answer.py, media/srtp.py,
media/dtls.py)."""

from __future__ import annotations

from mediaserver.media.leg import RtpLeg
from mediaserver.media.srtp import srtp_channel
from mediaserver.sip.offer_answer import AudioAnswer


def secure_media(leg: RtpLeg, answer: AudioAnswer) -> None:
    if answer.dtls is not None:
        leg.start_dtls(active=answer.dtls.active, peer_fingerprint=answer.dtls.peer_fingerprint)
    else:
        leg.secure(srtp_channel(answer.srtp))
