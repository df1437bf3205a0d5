"""Outbound dialling: placing calls and sending SIP MESSAGE.

The server composes one :class:`Dialer` and passes it to whoever places calls:
``dial@v1`` and transfers (through each inbound call's set-up), runs the API
starts, and ``message@v1`` (through ``ServerActions``). A target is a SIP URI,
the name of a registered user (sent where the phone registered from) or a
number, sent through the first trunk.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping

from mediaserver.actions.cdr_field import CUSTOMER_FIELD, customer_field
from mediaserver.calls.base import Call
from mediaserver.calls.live import LiveCalls, MediaSettings
from mediaserver.calls.outbound import OutboundCall
from mediaserver.calls.services import CallServices
from mediaserver.journal import CallJournal, RunStart
from mediaserver.media.dtls import dtls_identity
from mediaserver.media.leg import RtpLeg
from mediaserver.media.ports import NoFreePort
from mediaserver.sip.access import AccessPolicy
from mediaserver.sip.auth_client import ClientAuthState
from mediaserver.sip.message import Request, new_call_id, new_tag
from mediaserver.sip.offer_answer import make_offer
from mediaserver.sip.registrar import Registrar
from mediaserver.sip.transport import Peer, SipEndpoint, local_address_for
from mediaserver.sip.trunks import Trunk
from mediaserver.sip.uac import InviteParams, TargetError, build_invite, resolve_target
from mediaserver.sip.uri import SipSyntaxError, SipUri, contact_transport, is_token
from mediaserver.store.bindings import StoredBinding

NUMBER = re.compile(r"\+?[0-9A-Za-z*#._-]{1,64}")
# Headers a scenario may not set on an outbound INVITE: the dialog and transport own them.
RESERVED_HEADERS = frozenset(
    ("via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type",
     "max-forwards", "route", "record-route", "allow")
)  # fmt: skip


class Dialer:
    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        live: LiveCalls,
        media: MediaSettings,
        access: AccessPolicy,
        registrar: Registrar[Peer],
        trunks: Mapping[str, Trunk],
        user_agent: str = "mediaserver",
        journal: CallJournal | None = None,
        services: CallServices | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.live = live
        self.media = media
        self.access = access
        self.registrar = registrar
        self.trunks = trunks
        self.user_agent = user_agent
        self.journal = journal
        self.services = services
        # The bindings other nodes sharing the database hold, by user (none alone).
        self.bindings_elsewhere: Callable[[str], Awaitable[list[StoredBinding]]] | None = None

    async def originate(
        self,
        target: str,
        *,
        caller_id: str,
        headers: Mapping[str, str],
        parent: Call | None = None,
        run: RunStart | None = None,
        credentials: tuple[str, str] | None = None,
        display_name: str | None = None,
    ) -> OutboundCall:
        """Prepare (not yet place) a call: ``target`` is a SIP URI, the name of a
        registered user, or a number for the first trunk; ``run``, the run the call
        is placed for, which its record names from the start; ``credentials``
        (user, password) answer a digest challenge instead of the trunk's;
        ``display_name``, the caller's name in From. TargetError when it cannot be
        called."""
        extra = []
        for name, value in headers.items():
            if not is_token(name) or name.lower() in RESERVED_HEADERS:
                raise TargetError(f"header {name!r} cannot be set on an outbound call")
            if "\r" in value or "\n" in value:
                raise TargetError(f"header {name!r} has a line break in its value")
            extra.append((name, value))
        uri, peer, trunk = await self._route_out(target)
        from_host: str | None = None
        if trunk is not None:
            caller_id = trunk.from_user or caller_id
            from_host = trunk.uri.host  # carriers expect their own domain in From
        local_host = self.media.public_address or local_address_for(peer.host)
        try:
            leg = await self.live.legs.open()
        except NoFreePort as exc:
            raise TargetError(f"{target}: {exc}") from None
        try:
            auth = ClientAuthState(*credentials) if credentials is not None else None
            return self._outbound_call(leg, target, uri, peer, trunk, caller_id, from_host,
                                       local_host, extra, parent, run, auth,
                                       display_name)  # fmt: skip
        except BaseException:
            self.live.legs.release(leg)  # the call never existed: nobody else gives the port back
            raise

    def _outbound_call(
        self,
        leg: RtpLeg,
        target: str,
        uri: SipUri,
        peer: Peer,
        trunk: Trunk | None,
        caller_id: str,
        from_host: str | None,
        local_host: str,
        extra: list[tuple[str, str]],
        parent: Call | None,
        run: RunStart | None,
        auth: ClientAuthState | None = None,
        display_name: str | None = None,
    ) -> OutboundCall:
        srtp = self.media.srtp.offering(
            trunk=trunk.name if trunk is not None else None,
            user=target if target in self.access.users else None,
        )
        offer = make_offer(
            srtp=srtp,
            dtls_fingerprint=dtls_identity().fingerprint if srtp == "dtls" else None,
            codecs=self.media.codecs,
            local_address=local_host,
            local_port=leg.local_port,
            session_id=secrets.randbits(31),
            session_version=1,
            user_agent=self.user_agent,
        )
        host = f"[{local_host}]" if ":" in local_host else local_host
        sip_port = self.endpoint.local_address(peer.transport)[1]
        suffix = contact_transport(peer.transport)
        invite = build_invite(
            InviteParams(
                target=uri,
                from_uri=f"sip:{caller_id}@{from_host or host}",
                from_display=display_name,
                contact=f"<sip:mediaserver@{host}:{sip_port}{suffix}>",
                via=self.endpoint.new_via(peer.transport, local_host),
                user_agent=self.user_agent,
                sdp=offer.serialize().encode(),
                extra_headers=tuple(extra),
            ),
            local_host,
        )
        call = OutboundCall(
            endpoint=self.endpoint,
            leg=leg,
            peer=peer,
            local_host=local_host,
            user_agent=self.user_agent,
            invite=invite,
            offer=offer,
            target=target,
            on_finished=self.live.finished,
            auth=auth or (trunk.auth if trunk is not None else None),
        )
        self.live.add(call, call.local_tag)
        call.codecs = self.media.codecs
        call.srtp = srtp  # what the callee's re-offers may use
        call.journal = self.journal
        call.services = self.services
        if run is not None:
            call.scenario = run.scenario_name
            # The record has the run's field even if the call is never answered.
            call.customer_field = customer_field(run.variables.get(CUSTOMER_FIELD))
        call.cdr_parent = parent
        if self.journal is not None:
            self.journal.call_started(call, number=caller_id, parent=parent, run=run)
        return call

    async def send_message(
        self, to: str, text: str, *, sender: str, on_sent: Callable[[], None] | None = None
    ) -> int | None:
        """Send a SIP MESSAGE (RFC 3428) to a SIP URI, a registered user or a number
        (through the first trunk, answering its challenge once); the final status,
        None when nobody answered. TargetError when ``to`` cannot be reached;
        ``on_sent`` is called once the MESSAGE is routed and handed to the transport."""
        uri, peer, trunk = await self._route_out(to)
        local_host = self.media.public_address or local_address_for(peer.host)
        if trunk is not None:
            sender = trunk.from_user or sender
        from_host = trunk.uri.host if trunk is not None else local_host
        call_id, tag = new_call_id(local_host), new_tag()
        status: int | None = None
        for cseq in (1, 2):
            request = Request(method="MESSAGE", uri=str(uri))
            headers = request.headers
            headers.add("Via", str(self.endpoint.new_via(peer.transport, local_host)))
            headers.add("Max-Forwards", "70")
            headers.add("From", f"<sip:{sender}@{from_host}>;tag={tag}")
            to_uri = SipUri(uri.host, uri.user, port=uri.port, scheme=uri.scheme)
            headers.add("To", f"<{to_uri}>")
            headers.add("Call-ID", call_id)
            headers.add("CSeq", f"{cseq} MESSAGE")
            headers.add("User-Agent", self.user_agent)
            headers.add("Content-Type", "text/plain;charset=utf-8")
            request.body = text.encode()
            if trunk is not None and trunk.auth is not None:
                trunk.auth.authorize(request)
            if on_sent is not None and cseq == 1:
                on_sent()
            response = await self.endpoint.request(request, peer)
            if response is None:
                return None
            status = response.status
            retry = (
                status in (401, 407)
                and trunk is not None
                and trunk.auth is not None
                and trunk.auth.handle_response(request, response)
            )
            if not retry:
                break
        return status

    async def _route_elsewhere(self, target: str) -> tuple[SipUri, Peer, Trunk | None]:
        """A user registered on another node sharing the database (shared_bindings.py)."""
        found = await self.bindings_elsewhere(target) if self.bindings_elsewhere else []
        if not found:
            raise TargetError(f"user {target!r} is not registered")
        uri, peer = reach_elsewhere(target, found[0])
        return uri, peer, None

    async def _route_out(self, target: str) -> tuple[SipUri, Peer, Trunk | None]:
        """The Request-URI and next hop of an outbound call (and its trunk, if any)."""
        if target.lower().startswith(("sip:", "sips:")):
            try:
                uri = SipUri.parse(target)
            except SipSyntaxError as exc:
                raise TargetError(f"{target!r}: {exc}") from None
            return uri, await resolve_target(uri), None
        if target in self.access.users:
            bindings = self.registrar.lookup(target, time.time())
            if not bindings:
                return await self._route_elsewhere(target)
            binding = bindings[0]  # highest q, most recently refreshed
            # Send where the phone registered from (its NAT binding), RFC 3581 style.
            return SipUri.parse(str(binding.contact)), binding.source, None
        if not NUMBER.fullmatch(target):
            raise TargetError(f"{target!r} is not a SIP URI, a user or a number")
        if not self.trunks:
            raise TargetError(
                f"{target!r} is no user here, and no trunk is configured to call numbers"
            )
        trunk = next(iter(self.trunks.values()))
        peer = trunk.peer or await trunk.resolve()
        return trunk.request_uri(target), peer, trunk


def reach_elsewhere(target: str, binding: StoredBinding) -> tuple[SipUri, Peer]:
    """The Request-URI and next hop of a call to ``target`` through a binding another
    node holds; TargetError when only that node can reach the phone."""
    if binding.transport != "udp":
        # A connection's far end is reached only through the node holding it.
        raise TargetError(
            f"user {target!r} is registered on node {binding.node!r} over"
            f" {binding.transport.upper()}: only that node holds the connection; send"
            f" calls that dial {target!r} to {binding.node!r} (Kamailio sends calls to the"
            " user's name there), or have the phone register over UDP"
        )
    try:
        uri = SipUri.parse(binding.contact)
    except SipSyntaxError as exc:
        raise TargetError(f"user {target!r}: contact {binding.contact!r}: {exc}") from None
    # Where its REGISTER came from (the phone, or the proxy in front of the nodes).
    return uri, Peer("udp", binding.source_host, binding.source_port)
