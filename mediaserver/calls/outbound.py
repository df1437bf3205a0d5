"""A call the server places: INVITE as a user agent client (RFC 3261 13.2).

:meth:`OutboundCall.place` sends the INVITE with our SDP offer and waits for
the outcome. Provisional responses with a To tag create the early dialog;
one with SDP gives early media. A 2xx confirms the dialog and is
acknowledged, again for each retransmission (13.2.2.4); the SDP answer it
carries points our leg at the callee. Giving up before an answer sends
CANCEL (9.1), only once a provisional response has arrived, as the RFC
requires; a 2xx that races the CANCEL is acknowledged and hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from mediaserver.calls.base import Call, log, user_of
from mediaserver.calls.security import secure_media
from mediaserver.media.codecs import CODECS
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.auth_client import ClientAuthState
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, Response
from mediaserver.sip.offer_answer import accept_answer
from mediaserver.sip.presentation import cli_presentation
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.uac import build_cancel

CANCEL_WAIT = 4.0  # how long to wait for the 487 after our CANCEL

# The dial@v1 status of each final response class (SPEC section 3).
BUSY = frozenset((486, 600))
NO_ANSWER = frozenset((408, 480, 487))


def dial_status(status: int | None, cancelled: bool) -> str:
    """``answered``, ``busy``, ``no-answer``, ``failed`` or ``canceled``."""
    if status is not None and 200 <= status < 300:
        return "answered"
    if cancelled:
        return "canceled"
    if status in BUSY:
        return "busy"
    if status is None or status in NO_ANSWER:
        return "no-answer"
    return "failed"


class OutboundCall(Call):
    direction = "outbound"

    def __init__(
        self,
        *,
        endpoint: SipEndpoint,
        leg: RtpLeg,
        peer: Peer,
        local_host: str,
        user_agent: str,
        invite: Request,
        offer: SessionDescription,
        target: str,
        on_finished: Callable[[Call], None],
        auth: ClientAuthState | None = None,
    ) -> None:
        super().__init__(
            endpoint=endpoint,
            leg=leg,
            peer=peer,
            local_host=local_host,
            user_agent=user_agent,
            sip_call_id=invite.call_id,
            from_user=user_of(invite.from_.uri) or str(invite.from_.uri),
            to_user=user_of(invite.to.uri) or str(invite.to.uri),
            dialog_headers=[
                ("Contact", invite.headers.get("Contact") or ""),
                ("Allow", invite.headers.get("Allow") or ""),
                ("Server", user_agent),
            ],
            on_finished=on_finished,
        )
        self.invite = invite
        self.from_name = invite.from_.display_name
        self.cli_pres = cli_presentation(invite)
        self.offer = offer
        self.local_sdp = offer
        self.target = target
        self.auth = auth  # answers a trunk's 401/407 (RFC 3261 22.2)
        self.local_tag = invite.from_.tag or ""
        self._last_final: Response | None = None
        self.ringing = False
        self.early_media = False
        self.on_progress: Callable[[OutboundCall, Response], None] | None = None
        self._provisional_seen = False
        self._cancel_wanted = False
        self._cancel_sent = False
        self._ack: Request | None = None
        self._final: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.invite.headers:
            out.setdefault(name, value)
        return out

    async def place(self, timeout: float) -> str:
        """Send the INVITE and wait up to ``timeout`` seconds for an answer; the
        dial@v1 status of the outcome. A 401/407 is answered once with credentials
        (a new INVITE: same dialog identifiers, next CSeq, RFC 3261 22.2)."""
        deadline = asyncio.get_running_loop().time() + timeout
        for attempt in range(2):
            status = await self._invite(deadline)
            retry = (
                attempt == 0
                and self.final_status in (401, 407)
                and self.auth is not None
                and self._last_final is not None
                and self.auth.handle_response(self.invite, self._last_final)
            )
            if not retry:
                return status
            assert self.auth is not None
            self.invite = self._next_invite()
            self.auth.authorize(self.invite)
            self.final_status = None
            self._provisional_seen = False
            log.info("answering the trunk's challenge", target=self.target, call_id=self.id)
        return status

    def _next_invite(self) -> Request:
        """The INVITE again, for a new transaction: new branch, CSeq + 1."""
        invite = Request(method="INVITE", uri=self.invite.uri, headers=self.invite.headers.copy(),
                         body=self.invite.body)  # fmt: skip
        number = self.invite.cseq[0] + 1
        invite.headers.set("CSeq", f"{number} INVITE")
        invite.headers.set("Via", str(self.endpoint.new_via(self.peer.transport, self.local_host)))
        invite.headers.remove("Authorization")
        invite.headers.remove("Proxy-Authorization")
        return invite

    async def _invite(self, deadline: float) -> str:
        """One INVITE transaction, until ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        invite = loop.create_task(
            self.endpoint.request(self.invite, self.peer, on_response=self._on_response)
        )
        try:
            await self.wait_any([invite], max(0.0, deadline - loop.time()), wake_on_digit=False)
            if not invite.done() and not self.ended:
                log.info("no answer in time; cancelling", target=self.target, call_id=self.id)
                self.request_cancel()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(invite), CANCEL_WAIT)
                status = dial_status(self.final_status, cancelled=False)
                self.dial_status = "no-answer" if status != "answered" else status
                return self.dial_status
        finally:
            if not invite.done():
                invite.cancel()
        self.dial_status = dial_status(self.final_status, self._cancel_wanted)
        return self.dial_status

    def request_cancel(self) -> None:
        """Give up ringing: CANCEL now, or as soon as a provisional response makes
        it allowed (RFC 3261 9.1)."""
        if self.answered or self.final_status is not None:
            return
        self._cancel_wanted = True
        if self._provisional_seen:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self._cancel_sent:
            return
        self._cancel_sent = True
        cancel = build_cancel(self.invite)

        async def send() -> None:
            await self.endpoint.request(cancel, self.peer)

        self.schedule(send())

    async def _abandon(self, reason: str) -> None:
        self.request_cancel()

    def _on_response(self, response: Response) -> None:
        status = response.status
        if status < 200:
            self._on_provisional(response)
        elif status < 300:
            self._on_2xx(response)
        elif self.final_status is None:
            self.final_status = status
            self._last_final = response
            if status not in (401, 407) or self.auth is None:
                log.info("call refused", target=self.target, status=status, call_id=self.id)

    def _on_provisional(self, response: Response) -> None:
        if response.status == 100:
            return
        self._provisional_seen = True
        if self._cancel_wanted:
            self._send_cancel()
            return
        if response.to.tag and self.dialog is None:
            self.dialog = Dialog.from_response(self.invite, response)  # early dialog
        self.ringing = True
        if response.body and not self.early_media and self._accept_sdp(response.body):
            self.early_media = True
        if self.on_progress is not None:
            self.on_progress(self, response)

    def _on_2xx(self, response: Response) -> None:
        if self.dialog is None or self.dialog.remote_tag != response.to.tag:
            self.dialog = Dialog.from_response(self.invite, response)
        else:
            self.dialog.update_from_response(response)
        self._send_ack()
        if self.answered:
            return  # a retransmission: acknowledged again, nothing else
        self.final_status = response.status
        self.mark_answered()
        # Our INVITE, our Call-ID (RFC 3261 14.1); the session core answers glare.
        session = self.attach_session(self.invite, transaction=None, owns_call_id=True)
        assert self.session_driver is not None
        self.session_driver.apply(session.confirm)
        if not self._accept_sdp(response.body):
            self.schedule(self.hangup("failed"))
            return
        self.leg.start()
        log.info("call answered", target=self.target, call_id=self.id)
        if self._cancel_wanted or self.ended:
            # The answer crossed our CANCEL: the dialog exists, so end it with BYE.
            self.schedule(self._bye_late_answer())

    async def _bye_late_answer(self) -> None:
        if self.hangup_cause is None:
            self.end("normal_clearing", "server")
        await self._send_bye("normal_clearing")

    def _send_ack(self) -> None:
        """ACK for a 2xx: its own transaction-less request in the dialog, with the
        INVITE's CSeq number (RFC 3261 13.2.2.4); the same ACK for retransmissions."""
        assert self.dialog is not None
        if self._ack is None:
            self._ack = self.channel.ack()
        else:
            self.channel.send(self._ack)

    def _accept_sdp(self, body: bytes) -> bool:
        """Point our leg at the callee's media; False when the answer is unusable."""
        try:
            answer = accept_answer(self.offer, SessionDescription.parse(body))
        except SdpError as exc:
            log.info("bad SDP answer", target=self.target, reason=str(exc), call_id=self.id)
            return False
        self.leg.update_remote(
            (answer.remote_address, answer.remote_port),
            CODECS[answer.codec],
            answer.payload_type,
            answer.telephone_event_pt,
            event_clock=answer.telephone_event_clock,
        )
        secure_media(self.leg, answer)
        return True

    def on_stray_response(self, response: Response) -> None:
        """A 2xx retransmitted after our INVITE transaction ended still gets its ACK."""
        if 200 <= response.status < 300 and self._ack is not None:
            self.channel.send(self._ack)
