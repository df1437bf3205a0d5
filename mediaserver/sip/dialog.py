"""SIP dialogs (RFC 3261 section 12), sans-I/O.

A dialog is the peer-to-peer relationship an INVITE sets up: identified by
Call-ID and the two tags, it remembers the remote target (Contact), the
route set (Record-Route) and both CSeq counters, so that requests inside it
(BYE, re-INVITE) are built and checked the way section 12.2 says.

Only state lives here; sending and timers belong to the transaction layer
and the user agent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.uri import NameAddress, SipSyntaxError, SipUri, Uri, Via, parse_uri


def dialog_problem(invite: Request) -> str | None:
    """Why an initial INVITE cannot set up a dialog (a 400 reason naming the header),
    or None. RFC 3261 8.1.1.8: its Contact holds exactly one SIP or SIPS URI; 12.1.1:
    the Record-Route values become the route set."""
    try:
        contacts = invite.headers.get_list("Contact")
    except SipSyntaxError as exc:
        return f"Bad Contact header: {exc}"[:120]
    if len(contacts) > 1:
        return "Bad Contact header: an INVITE has exactly one Contact"
    if contacts:
        if contacts[0] == "*":
            return "Bad Contact header: '*' is only for REGISTER"
        try:
            target = NameAddress.parse(contacts[0]).uri
        except SipSyntaxError as exc:
            return f"Bad Contact header: {exc}"[:120]
        if not isinstance(target, SipUri):
            return "Bad Contact header: not a SIP or SIPS URI"
    try:
        for route in invite.headers.get_list("Record-Route"):
            NameAddress.parse(route)
    except SipSyntaxError as exc:
        return f"Bad Record-Route header: {exc}"[:120]
    return None


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_party: str  # our From/To header value, without tag
    remote_party: str  # their From/To header value, without tag
    remote_target: str  # Contact URI
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None
    state: DialogState = DialogState.EARLY

    @classmethod
    def from_invite(cls, invite: Request, local_tag: str) -> Dialog:
        """The UAS side of a dialog created by an incoming INVITE (RFC 3261 12.1.1)."""
        remote = invite.from_
        local = invite.to
        contacts = invite.headers.get_list("Contact")
        # Without a Contact, fall back to the From URI.
        target = str(NameAddress.parse(contacts[0]).uri) if contacts else str(remote.uri)
        remote.params.pop("tag", None)
        local.params.pop("tag", None)
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag,
            local_party=str(local),
            remote_party=str(remote),
            remote_target=target,
            # RFC 3261 12.1.1: the UAS keeps the Record-Route values in order.
            route_set=invite.headers.get_list("Record-Route"),
            local_cseq=0,
            remote_cseq=invite.cseq[0],
        )

    @classmethod
    def from_response(cls, invite: Request, response: Response) -> Dialog:
        """The UAC side of a dialog created by a response with a To tag to our
        INVITE (RFC 3261 12.1.2)."""
        local = invite.from_
        remote = response.to
        contacts = response.headers.get_list("Contact")
        target = str(NameAddress.parse(contacts[0]).uri) if contacts else str(invite.uri)
        local_tag = local.params.pop("tag", None) or ""
        remote_tag = remote.params.pop("tag", None)
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_party=str(local),
            remote_party=str(remote),
            remote_target=target,
            # RFC 3261 12.1.2: the UAC keeps the Record-Route values in reverse order.
            route_set=list(reversed(response.headers.get_list("Record-Route"))),
            local_cseq=invite.cseq[0],
            remote_cseq=None,
            state=DialogState.CONFIRMED if response.status < 300 else DialogState.EARLY,
        )

    def update_from_response(self, response: Response) -> None:
        """A 2xx confirming an early dialog refreshes its target and route set (RFC
        3261 12.1.2, 13.2.2.4)."""
        contacts = response.headers.get_list("Contact")
        if contacts:
            self.remote_target = str(NameAddress.parse(contacts[0]).uri)
        self.route_set = list(reversed(response.headers.get_list("Record-Route")))
        if 200 <= response.status < 300:
            self.confirm()

    @property
    def id(self) -> tuple[str, str, str | None]:
        return self.call_id, self.local_tag, self.remote_tag

    def confirm(self) -> None:
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    def check_request(self, request: Request) -> Response | None:
        """Apply RFC 3261 12.2.2 to a request inside this dialog; a response to
        refuse it with, or None to accept it."""
        cseq, _ = request.cseq
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_cseq is not None and cseq < self.remote_cseq:
            return make_response(request, 500, "CSeq out of order")
        self.remote_cseq = cseq
        # RFC 3261 12.2.2: a target refresh request updates the remote target.
        if request.method in ("INVITE", "UPDATE"):
            try:
                contacts = request.headers.get_list("Contact")
                if contacts:
                    self.remote_target = str(NameAddress.parse(contacts[0]).uri)
            except SipSyntaxError:
                return make_response(request, 400, "Bad Contact header")
        return None

    def create_request(self, method: str, via: Via, contact: str | None = None) -> Request:
        """A request inside the dialog (RFC 3261 12.2.1.1); ``via`` carries the branch."""
        if method != "ACK":
            self.local_cseq += 1
        request = Request(method=method, uri=self.remote_target)
        headers = request.headers
        headers.add("Via", str(via))
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{self.local_party};tag={self.local_tag}")
        to = self.remote_party + (f";tag={self.remote_tag}" if self.remote_tag else "")
        headers.add("To", to)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_cseq} {method}")
        if self.route_set:
            first = NameAddress.parse(self.route_set[0])
            if "lr" in getattr(first.uri, "params", {}):
                for route in self.route_set:
                    headers.add("Route", route)
            else:
                # RFC 3261 12.2.1.1: strict routing puts the first route in the Request-URI.
                uri = first.uri
                if isinstance(uri, SipUri):
                    # RFC 3261 19.1.1 Table 1: no method parameter or headers in a Request-URI.
                    params = {k: v for k, v in uri.params.items() if k != "method"}
                    uri = replace(uri, params=params, headers="")
                request.uri = str(uri)
                for route in self.route_set[1:]:
                    headers.add("Route", route)
                headers.add("Route", f"<{self.remote_target}>")
        if contact:
            headers.add("Contact", contact)
        return request

    def next_hop(self) -> Uri:
        """Where requests in this dialog go: the first route, else the remote target."""
        if self.route_set:
            return NameAddress.parse(self.route_set[0]).uri
        return parse_uri(self.remote_target)
