"""Requests the server sends as a client: INVITE, its CANCEL, and where they go.

Pure builders (RFC 3261 8.1.1 for a new request, 9.1 for CANCEL) plus the
one asynchronous step of finding the next hop of a target URI (RFC 3263
reduced to what a media server needs: a literal address or an A/AAAA lookup
of the host, with the port and transport of the URI).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from mediaserver.sip.message import Headers, Request, new_call_id, new_tag
from mediaserver.sip.transport import Peer
from mediaserver.sip.uri import NameAddress, SipUri, Via


class TargetError(ValueError):
    """A target that cannot be called (bad URI, unknown host, unsupported transport)."""


@dataclass(frozen=True)
class InviteParams:
    """What the caller decides about a new outbound INVITE."""

    target: SipUri  # the Request-URI
    from_uri: str  # e.g. sip:+33123@203.0.113.5
    from_display: str | None
    contact: str  # our Contact header value
    via: Via  # top Via with a fresh branch
    user_agent: str
    sdp: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()
    call_id: str | None = None


def build_invite(params: InviteParams, local_host: str) -> Request:
    """A new INVITE with an SDP offer (RFC 3261 8.1.1: To, From with a tag,
    Call-ID, CSeq, Max-Forwards, Via with a branch, Contact)."""
    target = params.target
    # The To URI is the target without its parameters (transport etc. are for routing).
    to = NameAddress(uri=SipUri(target.host, target.user, port=target.port, scheme=target.scheme))
    from_ = NameAddress.parse(f"<{params.from_uri}>")
    from_.display_name = params.from_display
    from_.params["tag"] = new_tag()
    headers = Headers()
    headers.add("Via", str(params.via))
    headers.add("Max-Forwards", "70")
    headers.add("From", str(from_))
    headers.add("To", str(to))
    headers.add("Call-ID", params.call_id or new_call_id(local_host))
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", params.contact)
    headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
    headers.add("User-Agent", params.user_agent)
    for name, value in params.extra_headers:
        headers.add(name, value)
    headers.add("Content-Type", "application/sdp")
    return Request(method="INVITE", uri=str(params.target), headers=headers, body=params.sdp)


def build_cancel(invite: Request) -> Request:
    """CANCEL for a pending INVITE (RFC 3261 9.1): same Request-URI, Call-ID,
    From, To and CSeq number; only the INVITE's top Via (same branch, so the
    CANCEL matches its transaction at the far end); the same Route headers."""
    headers = Headers()
    headers.add("Via", invite.headers.get_list("Via")[0])
    headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        headers.add(name, invite.headers.get(name) or "")
    headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return Request(method="CANCEL", uri=invite.uri, headers=headers)


async def resolve_target(uri: SipUri) -> Peer:
    """The transport address to send a request for ``uri`` to. Hostnames are
    resolved with the system resolver (no SRV/NAPTR lookups yet)."""
    transport = uri.transport
    if transport not in ("udp", "tcp", "tls"):
        raise TargetError(f"{uri}: transport {transport} is not supported (udp, tcp, tls)")
    port = uri.port or (5061 if transport == "tls" else 5060)  # RFC 3261 19.1.2
    host = uri.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise TargetError(f"{uri}: cannot resolve {host} ({exc.strerror or exc})") from None
        if not infos:
            raise TargetError(f"{uri}: no address for {host}") from None
        host = str(infos[0][4][0])
    return Peer(transport, host, port)
