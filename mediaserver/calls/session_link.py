"""What ties a call to its INVITE session core: the events acted on, the requests built.

The session core (``sip/invite_session.py``) decides, and the driver
(``session_driver.py``) runs it on the loop; this part is the call's side. It
gives the dialog its session, paced by the server's configured timers, and
acts on what the session asks: a session refresh (RFC 4028 9: UPDATE without
SDP when the peer allows it, else a re-INVITE with our description, ACKed on
2xx), a hang-up when the session expired or our 2xx got no ACK (RFC 3261
13.3.1.4), and the ACKs of our 2xx to INVITEs, which stop their
retransmission by the INVITE server transaction (RFC 6026 7.1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.calls.session_driver import SessionDriver
from mediaserver.log import get_logger
from mediaserver.sip.invite_session import (
    AckTimedOut,
    Event,
    InviteSession,
    ProvisionalAcknowledged,
    ProvisionalTimedOut,
    RefreshDue,
    RetryDue,
    SessionExpired,
)

if TYPE_CHECKING:
    from mediaserver.calls.channel import DialogChannel
    from mediaserver.sip.dialog import Dialog
    from mediaserver.sip.message import Request
    from mediaserver.sip.sdp import SessionDescription
    from mediaserver.sip.session_timer import SessionTimer
    from mediaserver.sip.transaction import ServerTransaction
    from mediaserver.sip.transport import SipEndpoint

log = get_logger("call")


class SessionCall(Protocol):
    """What the session link needs of its call."""

    id: str
    endpoint: SipEndpoint
    channel: DialogChannel
    peer_allow: list[str]  # the methods the peer said it allows
    local_sdp: SessionDescription | None

    @property
    def ended(self) -> bool: ...

    @property
    def dialog(self) -> Dialog | None: ...

    @property
    def session_timer(self) -> SessionTimer | None: ...

    async def hangup(self, reason: str = "normal_clearing") -> None: ...

    def schedule(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    def on_ack_timeout(self) -> None: ...

    def on_provisional_event(
        self, event: ProvisionalAcknowledged | ProvisionalTimedOut
    ) -> None: ...


class SessionLink:
    """A call's session core, once it has one, and the call's reactions to it."""

    def __init__(self, call: SessionCall) -> None:
        self.call = call
        self.driver: SessionDriver | None = None  # set once the dialog has a session
        # Our 2xx to INVITEs not acknowledged yet, by CSeq number.
        self.awaiting_ack: dict[int, ServerTransaction] = {}

    def attach(
        self, invite: Request, *, transaction: ServerTransaction | None, owns_call_id: bool
    ) -> InviteSession:
        """Give the dialog its session core, paced by the server's configured timers;
        the INVITE transaction resends our 2xx and times its ACK out (RFC 6026 7.1)."""
        call = self.call
        session = InviteSession(
            invite,
            timers=call.endpoint.layer.timers,
            session_timer=call.session_timer,
            owns_call_id=owns_call_id,
            transaction_awaits_ack=True,
        )
        self.driver = SessionDriver(
            session, call.endpoint, invite_transaction=transaction, on_event=self.on_event
        )
        return session

    def on_event(self, event: Event) -> None:
        """What the session core asks of the call."""
        call = self.call
        if isinstance(event, RefreshDue | RetryDue):
            call.schedule(self._refresh())
        elif isinstance(event, SessionExpired) and not call.ended:
            log.info("session expired; hanging up", call_id=call.id)
            call.schedule(call.hangup("session_expired"))
        elif isinstance(event, AckTimedOut):
            call.on_ack_timeout()
        elif isinstance(event, ProvisionalAcknowledged | ProvisionalTimedOut):
            call.on_provisional_event(event)

    def on_ack(self, ack: Request) -> None:
        """An ACK for one of our 2xx to an INVITE: it stops that 2xx's retransmission.
        The ACK carries the CSeq number of the INVITE it acknowledges (RFC 3261
        13.2.2.4), which tells a re-INVITE's from the first INVITE's."""
        tx = self.awaiting_ack.pop(ack.cseq[0], None)
        endpoint = self.call.endpoint
        if tx is not None:
            endpoint.layer.ack_received(tx, asyncio.get_running_loop().time())
        if self.driver is not None:
            session = self.driver.session
            self.driver.apply(lambda now: session.handle_ack(ack, now))

    def ack_timed_out(self) -> None:
        """No ACK for our 2xx: RFC 3261 13.3.1.4 says to end the dialog with BYE."""
        call = self.call
        if not call.ended:
            log.info("no ACK for 200 OK; hanging up", call_id=call.id)
            call.schedule(call.hangup("failed"))

    async def _refresh(self) -> None:
        """One refresh (RFC 4028 9): UPDATE without SDP when the peer allows it, else a
        re-INVITE with our current description, acknowledged on 2xx; the session core
        says when, and what its response means."""
        call = self.call
        driver = self.driver
        timer = call.session_timer
        if call.ended or call.dialog is None or driver is None or timer is None:
            return
        session = driver.session
        allow = {m.strip().upper() for m in call.peer_allow}
        method = "UPDATE" if "UPDATE" in allow else "INVITE"
        if not driver.apply(lambda now: session.send_offer(method, now)):
            return  # an offer is pending: its answer refreshes the session
        headers = [("Session-Expires", f"{timer.interval};refresher=uas"), ("Supported", "timer")]
        body = b""
        if method == "INVITE" and call.local_sdp is not None:
            body = call.local_sdp.serialize().encode()
        response = await call.channel.request(method, headers, body, content_type="application/sdp")
        if method == "INVITE" and response is not None and 200 <= response.status < 300:
            call.channel.ack()
        status = response.status if response is not None else None
        if status is None or status in (408, 481):
            log.info("session refresh failed; hanging up", call_id=call.id, status=status)
        driver.apply(lambda now: session.handle_response(status, now))
