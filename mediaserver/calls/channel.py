"""A call's dialog channel: the one way the server sends requests inside a dialog.

Every in-dialog request (BYE with its Q.850 Reason, a session refresh and its
ACK, REFER, NOTIFY, the ACK of an outbound call's 2xx) is made the same way: a
fresh Via for a new client transaction, the dialog's From, To, Call-ID, CSeq
and route set (RFC 3261 12.2.1.1), our Contact on the methods that need one,
and sent to the dialog's next hop. :class:`DialogChannel` owns that recipe; a call holds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterable

from mediaserver.calls.causes import q850_cause
from mediaserver.log import get_logger
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, Response
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.uri import SipUri

# Requests that must carry our Contact: target refreshes (RFC 3261 8.1.1.8,
# RFC 3311 5.1), REFER (RFC 3515 2.4.1) and NOTIFY (RFC 6665 4.2.2).
_WITH_CONTACT = frozenset(("INVITE", "UPDATE", "REFER", "NOTIFY"))

Headers = Iterable[tuple[str, str]]

BYE_WAIT = 5.0  # how long a BYE's answer is waited for before the call is let go

log = get_logger("call")


class DialogChannel:
    """Builds and sends the requests of one call's dialog."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        peer: Peer,
        *,
        local_host: str,
        user_agent: str,
        contact: str | None,
    ) -> None:
        self.endpoint = endpoint
        self.peer = peer  # where the dialog's first request came from or went to
        self.local_host = local_host
        self.user_agent = user_agent
        self.contact = contact  # our Contact on target refreshes, REFER and NOTIFY
        self.dialog: Dialog | None = None  # set once the dialog exists (early or confirmed)

    def new_request(
        self, method: str, headers: Headers = (), body: bytes = b"", *, content_type: str = ""
    ) -> Request:
        """A request in the dialog (RFC 3261 12.2.1.1) with its own Via branch; ACK
        keeps the CSeq number of the INVITE it acknowledges (13.2.2.4)."""
        if self.dialog is None:
            raise RuntimeError(f"{method}: the call has no dialog yet")
        via = self.endpoint.new_via(self.peer.transport, self.local_host)
        contact = self.contact if method in _WITH_CONTACT else None
        request = self.dialog.create_request(method, via, contact=contact)
        for name, value in headers:
            request.headers.add(name, value)
        request.headers.add("User-Agent", self.user_agent)
        if body:
            request.headers.add("Content-Type", content_type)
            request.body = body
        return request

    async def request(
        self, method: str, headers: Headers = (), body: bytes = b"", *, content_type: str = ""
    ) -> Response | None:
        """Send a request in the dialog and wait for its final response (None when
        the transaction timed out or failed)."""
        request = self.new_request(method, headers, body, content_type=content_type)
        return await self.endpoint.request(request, self.next_hop())

    async def bye(self, reason: str) -> None:
        """End the dialog with BYE, its hang-up cause in a Q.850 ``Reason`` (RFC 3326);
        its answer is waited for a while, then the call is let go anyway."""
        if self.dialog is None:
            return
        reason_header = ("Reason", f'Q.850;cause={q850_cause(reason)};text="{reason}"')
        with contextlib.suppress(asyncio.TimeoutError):
            response = await asyncio.wait_for(self.request("BYE", [reason_header]), BYE_WAIT)
            log.debug("bye answered", status=response.status if response else None)

    def ack(self) -> Request:
        """Send the ACK of a 2xx to our INVITE (its own transaction-less request, RFC
        3261 13.2.2.4); returned so a retransmitted 2xx gets the same ACK again."""
        ack = self.new_request("ACK")
        self.send(ack)
        return ack

    def send(self, request: Request) -> None:
        """Send a request again as it is (an ACK for a retransmitted 2xx)."""
        self.endpoint.send(request, self.next_hop())

    def next_hop(self) -> Peer:
        """Where in-dialog requests go. Over TCP, the connection the dialog was set
        up on; over UDP, the next hop's address (RFC 3261 12.2.1.1), falling back to
        the original peer when the target is not a literal address."""
        if self.peer.reliable or self.dialog is None:
            return self.peer
        hop = self.dialog.next_hop()
        if isinstance(hop, SipUri) and _is_ip(hop.host):
            return Peer("udp", hop.host.strip("[]"), hop.port or 5060)
        return self.peer


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
