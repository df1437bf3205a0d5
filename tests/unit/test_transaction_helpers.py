"""Builders shared by the ``test_transaction*`` modules (no tests here).

Time is a plain float: the layer never reads a clock, so each test says when things happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mediaserver.sip.message import Headers, Request, Response, make_response
from mediaserver.sip.transaction import TransactionEvent, TransactionLayer, Transmit

UDP_PEER = ("192.0.2.10", 5060)
TCP_PEER = ("tcp-connection", 7)
TO_TAG = "8321234356"


def make_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK776asdhds",
    call_id: str = "a84b4c76e66710@pc33.example.com",
    cseq: int = 1,
    from_tag: str | None = "1928301774",
    to_tag: str | None = None,
    uri: str = "sip:bob@192.0.2.4",
    via_host: str = "pc33.example.com",
    via_port: int | None = 5060,
    transport: str = "UDP",
    routes: Iterable[str] = (),
) -> Request:
    headers = Headers()
    sent_by = via_host if via_port is None else f"{via_host}:{via_port}"
    headers.add("Via", f"SIP/2.0/{transport} {sent_by}" + (f";branch={branch}" if branch else ""))
    for route in routes:
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", "Alice <sip:alice@example.com>" + (f";tag={from_tag}" if from_tag else ""))
    headers.add("To", "Bob <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    headers.add("Contact", "<sip:alice@pc33.example.com>")
    return Request(method=method, uri=uri, headers=headers)


def respond(request: Request, status: int, to_tag: str | None = TO_TAG) -> Response:
    """The response a UAS would send (RFC 3261 8.2.6), with its To tag except on 100."""
    return make_response(request, status, to_tag=to_tag)


def make_ack(invite: Request, response: Response) -> Request:
    """The hop-by-hop ACK for a non-2xx final: same branch as the INVITE (RFC 3261 17.1.1.3)."""
    headers = Headers()
    headers.add("Via", invite.headers.get_list("Via")[0])
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} ACK")
    return Request(method="ACK", uri=invite.uri, headers=headers)


def make_2xx_ack(invite: Request, response: Response, branch: str = "z9hG4bKack2xx") -> Request:
    """The end-to-end ACK for a 2xx: a new branch (RFC 3261 13.2.2.4)."""
    ack = make_ack(invite, response)
    via = invite.top_via
    ack.headers.set("Via", f"SIP/2.0/{via.transport} {via.host}:{via.port or 5060};branch={branch}")
    return ack


def make_cancel(invite: Request) -> Request:
    """CANCEL for ``invite`` (RFC 3261 9.1): same top Via, Request-URI, Call-ID, From, To
    and CSeq number."""
    headers = Headers()
    headers.add("Via", invite.headers.get_list("Via")[0])
    headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        headers.add(name, invite.headers.get(name) or "")
    headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    return Request(method="CANCEL", uri=invite.uri, headers=headers)


@dataclass
class Timeline:
    """What the layer sent and reported, with the time of each."""

    sent: list[tuple[float, Transmit]] = field(default_factory=list)
    events: list[tuple[float, TransactionEvent]] = field(default_factory=list)

    def send_times(self, start_line_prefix: str = "") -> list[float]:
        return [t for t, tr in self.sent if tr.message.start_line().startswith(start_line_prefix)]

    def event_names(self) -> list[str]:
        return [type(e).__name__ for _, e in self.events]


def drain(layer: TransactionLayer, now: float, timeline: Timeline | None = None) -> Timeline:
    timeline = timeline if timeline is not None else Timeline()
    timeline.sent += [(now, tr) for tr in layer.poll_transmit()]
    timeline.events += [(now, ev) for ev in layer.poll_events()]
    return timeline


def advance(layer: TransactionLayer, end: float) -> Timeline:
    """Run the layer's timers up to ``end`` the way the endpoint's loop does: sleep until
    ``next_deadline()``, call ``handle_timeouts``, drain."""
    timeline = Timeline()
    while (deadline := layer.next_deadline()) is not None and deadline <= end:
        layer.handle_timeouts(deadline)
        drain(layer, deadline, timeline)
    layer.handle_timeouts(end)
    return drain(layer, end, timeline)
