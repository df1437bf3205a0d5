"""Answering a new call's offer on its RTP leg: the codec and security agreed
(:func:`~mediaserver.sip.offer_answer.negotiate_answer`) and the leg aimed at
the peer's media with that codec. Shared by the calls that arrive as SIP
INVITEs (``switch.py``) and those a browser places (``webrtc/gateway.py``)."""

from __future__ import annotations

import secrets

from mediaserver.media.codecs import CODECS
from mediaserver.media.dtls import dtls_identity
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.offer_answer import AudioAnswer, negotiate_answer
from mediaserver.sip.sdp import SessionDescription


def answer_offer(
    leg: RtpLeg,
    offer: SessionDescription,
    *,
    codecs: tuple[str, ...],
    local_host: str,
    user_agent: str,
    srtp: str,
) -> AudioAnswer:
    """Our answer to ``offer`` (NoAcceptableMedia when nothing in it is usable),
    the leg set to send and receive what it agrees."""
    answer = negotiate_answer(
        offer,
        codecs=codecs,
        local_address=local_host,
        local_port=leg.local_port,
        session_id=secrets.randbits(31),
        session_version=1,
        user_agent=user_agent,
        srtp=srtp,
        dtls_fingerprint=dtls_identity().fingerprint,
    )
    leg.update_remote(
        (answer.remote_address, answer.remote_port),
        CODECS[answer.codec],
        answer.payload_type,
        answer.telephone_event_pt,
        event_clock=answer.telephone_event_clock,
    )
    return answer
