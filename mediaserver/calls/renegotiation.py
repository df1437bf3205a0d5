"""Offer/answer inside a call's dialog: the peer's re-INVITEs and UPDATEs, and hold.

A new offer is negotiated on the same RTP port, preferring the codec in use,
and the leg follows it: hold when the peer stops receiving (``sendonly``,
``inactive``, ``c=0.0.0.0``), resume when it comes back (RFC 3264 8). Our SDP
version rises only when our answer changes. An offerless re-INVITE (a session
refresh) gets our current description; an UPDATE without a body just
refreshes the session (RFC 3311, RFC 4028). An unusable offer leaves the call
as it was (488, RFC 3261 14.2). Glare is the session core's to answer first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mediaserver.calls.security import secure_media
from mediaserver.log import get_logger
from mediaserver.media.codecs import CODECS
from mediaserver.media.dtls import dtls_identity
from mediaserver.media.srtp import srtp_keys
from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.offer_answer import AudioAnswer, NoAcceptableMedia, negotiate_answer
from mediaserver.sip.sdp import SdpError, SessionDescription

if TYPE_CHECKING:
    from mediaserver.calls.session_driver import SessionDriver
    from mediaserver.media.leg import RtpLeg
    from mediaserver.sip.dialog import Dialog
    from mediaserver.sip.session_timer import SessionTimer
    from mediaserver.sip.transaction import ServerTransaction
    from mediaserver.sip.transport import SipEndpoint

log = get_logger("call")


class RenegotiatedCall(Protocol):
    """What in-dialog offer/answer needs of its call."""

    id: str
    endpoint: SipEndpoint
    leg: RtpLeg
    local_host: str
    user_agent: str
    codecs: tuple[str, ...]  # what we accept, preferred first
    srtp: str  # rtp.srtp: off, optional or required
    dialog_headers: list[tuple[str, str]]
    local_sdp: SessionDescription | None  # what we last told the peer

    @property
    def dialog(self) -> Dialog | None: ...

    @property
    def session_timer(self) -> SessionTimer | None: ...

    @property
    def session_driver(self) -> SessionDriver | None: ...

    @property
    def awaiting_ack(self) -> dict[int, ServerTransaction]: ...


class Renegotiation:
    """Answers the offers a call's peer makes inside the dialog."""

    def __init__(self, call: RenegotiatedCall) -> None:
        self.call = call
        self.on_hold = False  # the peer put us on hold (it stopped receiving)

    def on_reinvite(self, tx: ServerTransaction, request: Request) -> None:
        """A re-INVITE or UPDATE in the dialog (RFC 3261 14.2, RFC 3311); the session
        core answers glare first (491 or 500, RFC 3261 14.2, RFC 3311 5.2)."""
        call = self.call
        driver = call.session_driver
        if driver is not None and not driver.handle_request(tx, request):
            return
        if call.local_sdp is None or call.dialog is None:
            self._answer(tx, request, make_response(request, 488))
            return
        if request.method == "UPDATE" and not request.body:
            # RFC 3311 / RFC 4028: an UPDATE without an offer just refreshes the session.
            extra = [*call.dialog_headers, *self.session_timer_headers()]
            ok = make_response(request, 200, to_tag=call.dialog.local_tag, extra=extra)
            self._answer(tx, request, ok)
            return
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer = negotiate_answer(
                    offer,
                    codecs=self._codec_preference(),
                    local_address=call.local_host,
                    local_port=call.leg.local_port,
                    session_id=call.local_sdp.origin.session_id,
                    session_version=call.local_sdp.origin.session_version,
                    user_agent=call.user_agent,
                    srtp=call.srtp,
                    current_keys=srtp_keys(call.leg.srtp),
                    dtls_fingerprint=dtls_identity().fingerprint,
                )
            except SdpError as exc:
                status = 488 if isinstance(exc, NoAcceptableMedia) else 400
                response = make_response(request, status, f"Bad SDP offer: {exc}"[:100])
                self._answer(tx, request, response)
                return
            self._apply(answer)
        assert call.local_sdp is not None
        extra = [*call.dialog_headers, ("Content-Type", "application/sdp")]
        extra += self.session_timer_headers()
        body = call.local_sdp.serialize().encode()
        ok = make_response(request, 200, to_tag=call.dialog.local_tag, extra=extra, body=body)
        if request.method == "INVITE":
            call.awaiting_ack[request.cseq[0]] = tx
        self._answer(tx, request, ok)

    def session_timer_headers(self) -> list[tuple[str, str]]:
        """The session-timer headers of our 2xx to a refresh (RFC 4028 9)."""
        timer = self.call.session_timer
        return [] if timer is None else timer.headers()

    def _answer(self, tx: ServerTransaction, request: Request, response: Response) -> None:
        """Send our final response to a re-INVITE or UPDATE and tell the session (its 2xx
        refreshes the session timer, RFC 4028 10)."""
        self.call.endpoint.respond(tx, response)
        driver = self.call.session_driver
        if driver is not None:
            session = driver.session
            driver.apply(lambda now: session.answer_offer(request, response, now))

    def _codec_preference(self) -> tuple[str, ...]:
        """The codec in use first, so a re-offer does not switch codecs needlessly."""
        current = self.call.leg.codec.name
        return (current, *(c for c in self.call.codecs if c != current))

    def _apply(self, answer: AudioAnswer) -> None:
        """Point the leg at a renegotiated description and keep our new answer, its
        version raised only when it differs from the last one (RFC 3264 8)."""
        call = self.call
        previous = call.local_sdp
        sdp = answer.sdp
        if previous is not None and _without_version(sdp) != _without_version(previous):
            sdp.origin.session_version = previous.origin.session_version + 1
        call.local_sdp = sdp
        was_held = self.on_hold
        self.on_hold = answer.on_hold
        call.leg.update_remote(
            (answer.remote_address, answer.remote_port),
            CODECS[answer.codec],
            answer.payload_type,
            answer.telephone_event_pt,
            hold=answer.on_hold,
            event_clock=answer.telephone_event_clock,
        )
        secure_media(call.leg, answer)
        if answer.on_hold != was_held:
            log.info("call held" if answer.on_hold else "call resumed", call_id=call.id)


def _without_version(sdp: SessionDescription) -> str:
    """An SDP's text with the origin's session version blanked out."""
    lines = sdp.serialize().split("\r\n")
    return "\r\n".join(line for line in lines if not line.startswith("o="))
