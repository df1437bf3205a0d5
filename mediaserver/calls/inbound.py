"""A call that arrived as an INVITE: answered, rejected or rung through its
server transaction.

Answering sends 200 with our SDP answer (or, for an offerless INVITE, our
offer, the answer then coming in the ACK). ``progress`` sends 183 with SDP so
prompts are heard before the answer (early media). Hanging up before the
answer sends a final error response chosen by the hangup reason.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediaserver.actions.callapi import DialError, DialOptions, DialResult
from mediaserver.calls.background_dial import BackgroundDial
from mediaserver.calls.base import Call, log, user_of
from mediaserver.calls.security import secure_media
from mediaserver.media.codecs import CODECS
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.invite_session import ProvisionalAcknowledged, ProvisionalTimedOut
from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.offer_answer import accept_answer, make_offer
from mediaserver.sip.presentation import cli_presentation
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from mediaserver.calls.bridge import Dialer

# SIP status for hanging up a call that was never answered, by hangup reason.
UNANSWERED_STATUS = {
    "busy": 486,
    "declined": 603,
    "rejected": 603,
    "unavailable": 480,
    "not_found": 404,
    "no_answer": 480,
    "failed": 500,
}
REJECT_STATUS = {"busy": 486, "declined": 603, "unavailable": 480, "not_found": 404}


@dataclass
class CallSetup:
    """What the call switch hands a new inbound call."""

    endpoint: SipEndpoint
    invite: Request
    transaction: ServerTransaction
    source: Peer
    dialog: Dialog
    leg: RtpLeg
    local_host: str  # address for Contact and SDP
    dialog_headers: list[tuple[str, str]]  # Contact, Allow, Server on our dialog responses
    answer_sdp: SessionDescription | None  # None: the INVITE had no offer
    codecs: tuple[str, ...]
    user_agent: str
    scenario: str
    dialer: Dialer | None
    session_timer: SessionTimer | None = None
    srtp: str = "optional"  # rtp.srtp, for the call's re-offers


class InboundCall(Call):
    direction = "inbound"

    def __init__(self, setup: CallSetup, on_finished: Callable[[Call], None]) -> None:
        invite = setup.invite
        super().__init__(
            endpoint=setup.endpoint,
            leg=setup.leg,
            peer=setup.source,
            local_host=setup.local_host,
            user_agent=setup.user_agent,
            sip_call_id=invite.call_id,
            from_user=user_of(invite.from_.uri) or str(invite.from_.uri),
            to_user=user_of(invite.to.uri) or str(invite.to.uri),
            dialog_headers=setup.dialog_headers,
            on_finished=on_finished,
        )
        self.setup = setup
        self.invite = invite
        self.from_name = invite.from_.display_name
        self.cli_pres = cli_presentation(invite)
        self.transaction = setup.transaction
        self.dialog = setup.dialog
        self.scenario = setup.scenario
        self.codecs = setup.codecs
        self.srtp = setup.srtp
        self.session_timer = setup.session_timer
        # A malformed Allow is ignored: it only says which methods the caller takes.
        self.peer_allow = invite.headers.get_list("Allow", lenient=True)
        self.local_sdp = setup.answer_sdp
        self._offer: SessionDescription | None = None
        self._acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # RFC 3262: reliable provisional responses when the caller requires them.
        self.reliable = "100rel" in {t.lower() for t in invite.headers.get_list("Require")}
        self._pracked: asyncio.Future[None] | None = None
        self.session = self.attach_session(invite, transaction=self.transaction, owns_call_id=False)

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.invite.headers:
            out.setdefault(name, value)
        return out

    # -- answering ---------------------------------------------------------------

    async def ring(self) -> None:
        self.check()
        if self.answered or self.final_status is not None:
            return
        ringing = make_response(self.invite, 180, to_tag=self.dialog_tag, extra=self.dialog_headers)
        await self._provisional(ringing)

    async def progress(self) -> None:
        """183 Session Progress with our SDP: media flows before the answer."""
        self.check()
        if self.answered or self.early_media_sent or self.local_sdp is None:
            return  # an offerless INVITE cannot have early media without 100rel
        self.early_media_sent = True
        extra = [*self.dialog_headers, ("Content-Type", "application/sdp")]
        body = self.local_sdp.serialize().encode()
        progress = make_response(self.invite, 183, to_tag=self.dialog_tag, extra=extra, body=body)
        await self._provisional(progress)
        self.leg.start()

    # -- reliable provisional responses (RFC 3262) ------------------------------

    async def _provisional(self, response: Response) -> None:
        """Send a 1xx; reliably when the caller requires it (RFC 3262 3): the session
        core adds RSeq and resends it until PRACKed, and only once the previous one was
        PRACKed."""
        if not self.reliable:
            self.endpoint.respond(self.transaction, response)
            return
        await self._prack_of_previous()
        self.check()
        self._pracked = asyncio.get_running_loop().create_future()
        assert self.session_driver is not None
        self.session_driver.apply(lambda now: self.session.send_reliable(response, now))

    async def _prack_of_previous(self) -> None:
        if self._pracked is not None and not self._pracked.done():
            # The session core gives up after 64*T1 and ends the call, which wakes this.
            await self.wait_any([self._pracked], None, wake_on_digit=False)

    def on_provisional_event(self, event: ProvisionalAcknowledged | ProvisionalTimedOut) -> None:
        if isinstance(event, ProvisionalAcknowledged):
            if self._pracked is not None and not self._pracked.done():
                self._pracked.set_result(None)
            return
        # RFC 3262 3: no PRACK within 64*T1: refuse the INVITE with a 5xx.
        log.info("no PRACK for a reliable provisional response", call_id=self.id)
        self._final_error(504)
        self.end("failed", "server")
        self.cancel_run()

    def on_prack(self, tx: ServerTransaction, request: Request) -> None:
        """A PRACK: the session core acknowledges our reliable provisional whose RSeq
        and CSeq its RAck names (RFC 3262 7.2), and answers anything else with 481."""
        assert self.session_driver is not None
        if self.session_driver.handle_request(tx, request):
            # The session is over: nothing to acknowledge.
            self.endpoint.respond(tx, make_response(request, 481, "No such reliable response"))

    @property
    def dialog_tag(self) -> str:
        assert self.dialog is not None
        return self.dialog.local_tag

    async def answer(self) -> None:
        self.check()
        if self.answered:
            return
        unacked = self.session.unacknowledged
        if unacked is not None and unacked.body:
            # RFC 3262 3: no 2xx while a reliable provisional with SDP is unacknowledged.
            await self._prack_of_previous()
            self.check()
        if self.local_sdp is None:
            # Offerless INVITE: our offer goes in the 200, the answer comes in the ACK.
            self._offer = make_offer(
                codecs=self.setup.codecs,
                local_address=self.local_host,
                local_port=self.leg.local_port,
                session_id=secrets.randbits(31),
                session_version=1,
                user_agent=self.user_agent,
                # Keys go only to a caller that must use them (calls/srtp_policy.py).
                srtp="required" if self.srtp == "required" else "off",
            )
            self.local_sdp = self._offer
            body = self._offer.serialize().encode()
        else:
            body = self.local_sdp.serialize().encode()
        extra = [*self.dialog_headers, ("Content-Type", "application/sdp"), ("Supported", "timer")]
        if self.session_timer is not None:
            extra += self.session_timer.headers()
        ok = make_response(self.invite, 200, to_tag=self.dialog_tag, extra=extra, body=body)
        self.endpoint.respond(self.transaction, ok)
        self.awaiting_ack[self.invite.cseq[0]] = self.transaction
        self.final_status = 200
        self.mark_answered()
        # The session core confirms the dialog and starts the session timer (RFC 4028 10).
        assert self.session_driver is not None
        self.session_driver.apply(lambda now: self.session.send_final(ok, now))
        assert self.dialog is not None
        self.dialog.confirm()
        log.info("call answered")
        if self._offer is not None:
            await self.wait_any([self._acked], None, wake_on_digit=False)
            self.check()
        else:
            self.leg.start()

    async def reject(self, reason: str) -> None:
        self.check()
        if self.answered:
            raise ValueError("reject@v1: the call is already answered; use hangup@v1")
        self._final_error(REJECT_STATUS.get(reason, 603))
        self.end(reason, "server")

    async def _abandon(self, reason: str) -> None:
        if self.final_status is None:
            self._final_error(UNANSWERED_STATUS.get(reason, 480))

    def _final_error(self, status: int) -> None:
        self.final_status = status
        response = make_response(self.invite, status, to_tag=self.dialog_tag)
        self.endpoint.respond(self.transaction, response)
        if self.session_driver is not None:  # the final stops 1xx retransmission
            self.session_driver.apply(lambda now: self.session.send_final(response, now))

    _background_dial: BackgroundDial | None = None

    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        from mediaserver.calls.bridge import dial

        if self._background_dial is not None and self._background_dial.running:
            # Two bridges would fight over the caller's audio.
            raise DialError("a dial with wait: false is under way (stop it first)")
        if options.wait:
            return await dial(self, targets, options)
        self._background_dial = BackgroundDial(self, targets, options)
        return DialResult("started", 0.0, targets[0] if targets else None)

    async def stop_dial(self) -> bool:
        background, self._background_dial = self._background_dial, None
        return background is not None and await background.stop()

    # -- events from the user agent --------------------------------------------

    def on_ack(self, ack: Request) -> None:
        super().on_ack(ack)
        if ack.cseq[0] != self.invite.cseq[0]:
            return  # the ACK of a re-INVITE
        if self._offer is not None and not self._acked.done():
            try:
                answer = accept_answer(self._offer, SessionDescription.parse(ack.body))
            except SdpError as exc:
                log.info("bad SDP answer in ACK", reason=str(exc), call_id=self.id)
                self._acked.set_result(None)
                self.schedule(self.hangup("failed"))
                return
            self.leg.update_remote(
                (answer.remote_address, answer.remote_port),
                CODECS[answer.codec],
                answer.payload_type,
                answer.telephone_event_pt,
                event_clock=answer.telephone_event_clock,
            )
            secure_media(self.leg, answer)
            self.leg.start()
        if not self._acked.done():
            self._acked.set_result(None)

    def on_cancel(self) -> None:
        """CANCEL arrived before we answered; the 487 is already sent."""
        self.final_status = 487
        self.end("originator_cancel", "caller")
        self.cancel_run()
