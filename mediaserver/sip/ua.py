"""The user agent core: what the server does with each SIP request it accepts.

Requests arrive here from the endpoint once the transaction layer has
decided they are new. Policy follows RFC 3261 section 8.2 in order: method
(405 for known methods we do not serve, 501 for unknown ones), Require
(420, 8.2.2.3), body type (415, 8.2.3), then the method itself: INVITE
routes to a scenario and becomes an :class:`~mediaserver.calls.InboundCall`, BYE
and CANCEL end calls, OPTIONS reports capabilities, in-dialog requests for
unknown dialogs get 481.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network

from mediaserver.actions.callapi import DTMF_KEYS
from mediaserver.calls import Call, CallSetup, InboundCall, OutboundCall, transfer
from mediaserver.calls.services import CallServices
from mediaserver.config import LimitsConfig
from mediaserver.journal import CallJournal, RunStart
from mediaserver.log import get_logger
from mediaserver.media.clock import MediaClock
from mediaserver.media.g711 import CODECS
from mediaserver.media.leg import RtpLeg
from mediaserver.media.ports import NoFreePort, PortAllocator
from mediaserver.sip.access import AccessPolicy, Admission
from mediaserver.sip.dialog import Dialog, dialog_problem
from mediaserver.sip.message import Request, Response, make_response, new_call_id, new_tag
from mediaserver.sip.offer_answer import (
    AudioAnswer,
    NoAcceptableMedia,
    make_offer,
    negotiate_answer,
)
from mediaserver.sip.ratelimit import PASS, FloodGuard, RateLimiter, Verdict
from mediaserver.sip.refusals import Refusals
from mediaserver.sip.registrar import Registrar
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.session_timer import negotiate as negotiate_session_timer
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.trunks import Trunk
from mediaserver.sip.uac import InviteParams, TargetError, build_invite, resolve_target
from mediaserver.sip.uri import SipSyntaxError, SipUri, is_token

log = get_logger("ua")

ALLOWED_METHODS = (
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "UPDATE", "INFO", "PRACK", "MESSAGE",
    "REFER", "NOTIFY",
)  # fmt: skip
MAX_MESSAGE_TEXT = 4096
# Methods we know but do not serve answer 405; anything else 501 (RFC 3261 8.2.1).
KNOWN_METHODS = frozenset(
    (*ALLOWED_METHODS, "REGISTER", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "INFO",
     "PRACK", "UPDATE", "PUBLISH")
)  # fmt: skip
SUPPORTED_EXTENSIONS = frozenset(("timer", "100rel"))  # RFC 4028, RFC 3262
DIALOG_ALLOW = ", ".join(ALLOWED_METHODS)  # what a dialog with us accepts
NUMBER = re.compile(r"\+?[0-9A-Za-z*#._-]{1,64}")
# Headers a scenario may not set on an outbound INVITE: the dialog and transport own them.
RESERVED_HEADERS = frozenset(
    ("via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type",
     "max-forwards", "route", "record-route", "allow")
)  # fmt: skip


@dataclass(frozen=True)
class MediaSettings:
    codecs: tuple[str, ...]
    rtp_host: str  # where RTP sockets bind
    public_address: str | None  # written in SDP and Contact; None: work it out per peer
    trusted_networks: tuple[IPv4Network | IPv6Network, ...] = ()


@dataclass(frozen=True)
class PendingInvite:
    """An INVITE accepted for routing, while its call is being set up."""

    transaction: ServerTransaction
    request: Request
    source: Peer
    scenario: str
    offer: SessionDescription | None
    merge_key: tuple[str, str, int]
    admission: Admission
    session_timer: SessionTimer | None


Router = Callable[[str], str | None]
"""Called user or number -> scenario name, None when nothing matches."""

CallServer = Callable[[Call], Awaitable[None]]
"""Runs a new call's scenario (returns when the call is over)."""

MessageServer = Callable[[str, dict[str, str]], None]
"""Runs a scenario's ``inbound-message`` branch for a SIP MESSAGE (scenario, message)."""


class UserAgent:
    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        router: Router,
        serve_call: CallServer,
        media: MediaSettings,
        ports: PortAllocator,
        clock: MediaClock,
        user_agent: str = "mediaserver",
        journal: CallJournal | None = None,
        access: AccessPolicy | None = None,
        trunks: Mapping[str, Trunk] | None = None,
        services: CallServices | None = None,
        serve_message: MessageServer | None = None,
        limits: LimitsConfig | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.router = router
        self.serve_call = serve_call
        self.media = media
        self.ports = ports
        self.clock = clock
        self.user_agent = user_agent
        self.journal = journal
        self.services = services
        self.serve_message = serve_message
        self.access = access or AccessPolicy(trusted_networks=media.trusted_networks)
        self.registrar: Registrar[Peer] = Registrar()
        limits = limits or LimitsConfig()
        self.guard = FloodGuard(
            source_rate=limits.per_source.rate,
            source_burst=limits.per_source.burst,
            global_rate=limits.global_invites.rate,
            global_burst=limits.global_invites.burst,
            block_after=limits.block_after,
            block_seconds=limits.block_seconds,
            max_sources=limits.max_sources,
        )
        self.user_limiter: RateLimiter | None = None
        if limits.per_user.rate > 0:
            self.user_limiter = RateLimiter(
                limits.per_user.rate, limits.per_user.burst, max_sources=limits.max_sources
            )
        self.trunks = dict(trunks or {})
        self.users_changed()
        self.draining = False
        self.refusals = Refusals(journal)  # initial INVITEs refused: logged, counted, recorded
        self.calls: dict[tuple[str, str], Call] = {}  # (Call-ID, our tag) -> call
        self._invites: dict[ServerTransaction, InboundCall | None] = {}
        self._merge_keys: dict[tuple[str, str, int], str] = {}
        self._cancelled: set[ServerTransaction] = set()  # CANCELled before the call was set up
        self._tasks: set[asyncio.Task[None]] = set()
        endpoint.handler = self
        endpoint.screen = self._screen

    def users_changed(self) -> None:
        """``access.users`` was set (at start, or by a reload): REGISTER is served when
        there are users to register, and refused with 405 otherwise."""
        self.allowed_methods = ALLOWED_METHODS + (("REGISTER",) if self.access.has_users else ())
        self.allow = ", ".join(self.allowed_methods)

    # -- RequestHandler --------------------------------------------------------

    def on_request(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        method = request.method
        if method not in KNOWN_METHODS:
            self._respond(tx, request, 501, extra=[("Allow", self.allow)])
            return
        if method not in self.allowed_methods:
            self._respond(tx, request, 405, extra=[("Allow", self.allow)])
            return
        try:
            required = request.headers.get_list("Require")
        except SipSyntaxError as exc:
            # The extensions a request requires cannot be ignored (RFC 3261 8.2.2.3).
            self._respond(tx, request, 400, f"Bad Require header: {exc}"[:120])
            return
        unsupported = [tag for tag in required if tag.lower() not in SUPPORTED_EXTENSIONS]
        if unsupported and method not in ("CANCEL", "BYE"):
            # RFC 3261 8.2.2.3: name each unsupported option tag.
            self._respond(tx, request, 420, extra=[("Unsupported", ", ".join(unsupported))])
            return
        if method == "INVITE":
            self._on_invite(tx, request, source)
        elif method == "BYE":
            self._on_bye(tx, request)
        elif method == "CANCEL":
            self._on_cancel(tx, request)
        elif method == "OPTIONS":
            self._on_options(tx, request)
        elif method == "REGISTER":
            self._on_register(tx, request, source)
        elif method == "UPDATE":
            self._on_in_dialog_offer(tx, request)
        elif method == "INFO":
            self._on_info(tx, request)
        elif method == "PRACK":
            self._on_prack(tx, request)
        elif method == "MESSAGE":
            self._on_message(tx, request, source)
        elif method == "REFER" and (call := self._in_dialog(tx, request)) is not None:
            transfer.on_refer(call, call.bridge, tx, request)
        elif method == "NOTIFY" and (call := self._in_dialog(tx, request)) is not None:
            transfer.on_notify(call, tx, request)

    def on_ack(self, request: Request, source: Peer) -> None:
        call = self._find_call(request)
        if call is not None:
            call.on_ack(request)

    def on_server_timeout(self, tx: ServerTransaction, timer: str) -> None:
        call = self._invites.get(tx)
        if isinstance(call, InboundCall) and call.answered:
            call.on_ack_timeout()

    def on_stray_response(self, response: Response, source: Peer) -> None:
        # Responses to our own requests carry our tag in From.
        try:
            tag = response.from_.tag
        except SipSyntaxError:
            return
        call = self.calls.get((response.call_id, tag or ""))
        if call is not None:
            call.on_stray_response(response)

    # -- requests ----------------------------------------------------------------

    def _respond(
        self,
        tx: ServerTransaction,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        headers = [*(extra or []), ("Server", self.user_agent)]
        tag = new_tag() if status > 100 else None
        response = make_response(request, status, reason, to_tag=tag, extra=headers, body=body)
        self.endpoint.respond(tx, response)

    def _find_call(self, request: Request) -> Call | None:
        """The live call with a dialog that ``request`` belongs to."""
        try:
            tag = request.to.tag
        except SipSyntaxError:
            return None
        call = self.calls.get((request.call_id, tag or ""))
        if call is None or call.ended or call.dialog is None:
            return None
        return call

    def _now(self) -> float:
        return time.time()

    def _screen(self, request: Request, source: Peer) -> Verdict:
        """Flood control before any state is kept (``FloodGuard``): trusted networks
        (the operator's own, load tests included) and trunks are not limited."""
        host = source.host
        if host in self.access.trunk_addresses or self.access.is_trusted_network(host):
            return PASS
        new_invite = request.method == "INVITE" and not request.to.tag
        verdict = self.guard.check(host, self._now(), new_invite=new_invite)
        if verdict.reason == "blocking":
            log.warning("blocking a flooding source", peer=host,
                        seconds=self.guard.block_seconds)  # fmt: skip
        return verdict

    def _user_limited(
        self, tx: ServerTransaction, request: Request, source: Peer, admission: Admission
    ) -> bool:
        """Refuse (503) a request of a digest user over their rate (``limits.per_user``):
        stolen credentials used from many addresses still cannot flood."""
        if admission.via != "user" or admission.name is None or self.user_limiter is None:
            return False
        if self.user_limiter.allow(admission.name, self._now()):
            return False
        self.endpoint.stats["refused_rate_user"] += 1
        retry = [("Retry-After", str(self.user_limiter.retry_after()))]
        if request.method == "INVITE":
            self._refuse(tx, request, source, 503, "Too many requests", why="rate_limited",
                         extra=retry, record=False)  # fmt: skip
        else:
            self._respond(tx, request, 503, "Too many requests", extra=retry)
        return True

    def _on_register(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        """The registrar of ``users:`` (RFC 3261 10.3), digest-authenticated."""
        decision = self.access.admit_register(request, self._now())
        if isinstance(decision, Response):
            self.endpoint.respond(tx, decision)
            return
        if self._user_limited(tx, request, source, decision):
            return
        assert decision.name is not None
        outcome = self.registrar.handle_register(request, decision.name, source, self._now())
        log.info("register", user=decision.name, status=outcome.status, peer=source.host,
                 bindings=len(outcome.bindings))  # fmt: skip
        self.endpoint.respond(tx, outcome.response(request, to_tag=new_tag()))

    def _on_options(self, tx: ServerTransaction, request: Request) -> None:
        # RFC 3261 11.2: advertise what we accept.
        extra = [
            ("Allow", self.allow),
            ("Accept", "application/sdp"),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"),
            ("Supported", ""),
        ]
        self._respond(tx, request, 200, extra=extra)

    def _on_bye(self, tx: ServerTransaction, request: Request) -> None:
        call = self._find_call(request)
        if call is None or call.dialog is None:
            self._respond(tx, request, 481)
            return
        refusal = call.dialog.check_request(request)
        if refusal is not None:
            self.endpoint.respond(tx, refusal)
            return
        self.endpoint.respond(tx, make_response(request, 200))
        call.on_remote_bye()

    def _in_dialog(self, tx: ServerTransaction, request: Request) -> Call | None:
        """The call a request inside a dialog belongs to, after RFC 3261 12.2.2's
        checks; None when it was answered with an error (481, 500...)."""
        call = self._find_call(request)
        if call is None or call.dialog is None:
            self._respond(tx, request, 481)
            return None
        refusal = call.dialog.check_request(request)
        if refusal is not None:
            self.endpoint.respond(tx, refusal)
            return None
        return call

    def _on_in_dialog_offer(self, tx: ServerTransaction, request: Request) -> None:
        """re-INVITE or UPDATE: hold, resume, codec change, session refresh."""
        call = self._in_dialog(tx, request)
        if call is not None:
            call.on_reinvite(tx, request)

    def _on_message(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        """A SIP MESSAGE (RFC 3428), the SMS of SIP: admitted and routed like a call,
        answered 200 once accepted, handed to the scenario's inbound-message branch."""
        if request.to.tag:
            self._respond(tx, request, 200)  # inside a call: accepted, nothing runs
            return
        decision = self.access.admit_call(request, source.host, self._now())
        if isinstance(decision, Response):
            self.endpoint.respond(tx, decision)
            return
        if self._user_limited(tx, request, source, decision):
            return
        if not request.content_type.startswith("text/"):
            self._respond(tx, request, 415, extra=[("Accept", "text/plain")])
            return
        if len(request.body) > MAX_MESSAGE_TEXT:
            self._respond(tx, request, 413, "Message text too long")
            return
        called = request.request_uri.user_unescaped or ""
        scenario = self.router(called)
        if scenario is None or self.serve_message is None:
            self._respond(tx, request, 404, "No route for messages")
            return
        self._respond(tx, request, 200)
        self.serve_message(
            scenario,
            {
                "from": request.from_.uri.user_unescaped or str(request.from_.uri),
                "to": called,
                "text": request.body.decode("utf-8", "replace"),
                "content_type": request.content_type,
            },
        )

    def _on_prack(self, tx: ServerTransaction, request: Request) -> None:
        call = self._in_dialog(tx, request)
        if isinstance(call, InboundCall):
            call.on_prack(tx, request)
        elif call is not None:
            self._respond(tx, request, 481)

    def _on_info(self, tx: ServerTransaction, request: Request) -> None:
        """SIP INFO: key presses from phones that send DTMF this way."""
        call = self._in_dialog(tx, request)
        if call is None:
            return
        key = dtmf_from_info(request)
        if key is not None:
            call.deliver_digit(key)
        self.endpoint.respond(tx, make_response(request, 200))

    def _on_cancel(self, tx: ServerTransaction, request: Request) -> None:
        invite_tx = self.endpoint.layer.find_invite_for_cancel(request)
        if invite_tx is None or invite_tx not in self._invites:
            self._respond(tx, request, 481)
            return
        # RFC 3261 9.2: 200 to the CANCEL, then 487 to the INVITE if still unanswered.
        self.endpoint.respond(tx, make_response(request, 200))
        call = self._invites[invite_tx]
        if call is None:
            self._invites[invite_tx] = None
            response = make_response(invite_tx.request, 487, to_tag=new_tag())
            self.endpoint.respond(invite_tx, response)
            self._cancelled.add(invite_tx)
        elif not call.answered and call.final_status is None:
            response = make_response(invite_tx.request, 487, to_tag=call.dialog_tag)
            self.endpoint.respond(invite_tx, response)
            call.on_cancel()

    def _on_invite(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        if request.to.tag:
            self._on_in_dialog_offer(tx, request)
            return
        # RFC 3261 8.2.2.2: the same request arriving by another path is a merge: 482.
        cseq = request.cseq[0]
        merge_key = (request.call_id, request.from_.tag or "", cseq)
        branch = request.top_via.branch or ""
        if self._merge_keys.get(merge_key, branch) != branch:
            self._respond(tx, request, 482)
            return
        decision = self.access.admit_call(request, source.host, self._now())
        if isinstance(decision, Response):
            self.endpoint.respond(tx, decision)
            if decision.status == 407:
                # A challenge is one step of a normal call: no count, no record.
                log.info("call challenged", peer=source.host, sip_call_id=request.call_id)
            else:
                # The caller is unknown: counted, but no record (strangers could fill the table).
                why = "forbidden" if decision.status == 403 else "bad_credentials"
                self.refusals.add(request, source.host, decision.status, decision.reason, why,
                                  record=False)  # fmt: skip
            return
        if self._user_limited(tx, request, source, decision):
            return
        if self.draining:
            retry = [("Retry-After", "60")]
            self._refuse(tx, request, source, 503, "Shutting down", why="shutting_down",
                         extra=retry)  # fmt: skip
            return
        problem = dialog_problem(request)
        if problem is not None:
            self._refuse(tx, request, source, 400, problem, why="bad_request")
            return
        timer = negotiate_session_timer(request)
        if isinstance(timer, Response):
            self.endpoint.respond(tx, timer)
            why = "session_interval_too_small" if timer.status == 422 else "bad_request"
            self.refusals.add(request, source.host, timer.status, timer.reason, why)
            return
        if request.body and request.content_type != "application/sdp":
            # RFC 3261 8.2.3: say what we accept.
            self._refuse(tx, request, source, 415, why="unsupported_media",
                         extra=[("Accept", "application/sdp")])  # fmt: skip
            return
        if "Accept" in request.headers and not _accepts_sdp(request):
            # RFC 3261 21.4.7: our answer is SDP, which the caller says it cannot take.
            self._refuse(tx, request, source, 406, "Not Acceptable (answers are application/sdp)",
                         why="unsupported_media")  # fmt: skip
            return
        encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
        if request.body and encoding != "identity":
            self._refuse(tx, request, source, 415, why="unsupported_media",
                         extra=[("Accept-Encoding", "identity")])  # fmt: skip
            return
        uri = request.request_uri
        called = uri.user_unescaped or request.to.uri.user_unescaped or ""
        scenario = self.router(called)
        if scenario is None:
            reason = f"No route for {called[:40]}" if called else None
            self._refuse(tx, request, source, 404, reason, why="no_route")
            return
        offer: SessionDescription | None = None
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
            except SdpError as exc:
                self._refuse(tx, request, source, 400, f"Bad SDP: {exc}"[:120],
                             why="bad_request", scenario=scenario)  # fmt: skip
                return
        self._merge_keys[merge_key] = branch
        self._invites[tx] = None
        invite = PendingInvite(tx, request, source, scenario, offer, merge_key, decision, timer)
        task = asyncio.get_running_loop().create_task(self._start_call(invite))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- refused calls -----------------------------------------------------------

    def _refuse(
        self,
        tx: ServerTransaction,
        request: Request,
        source: Peer,
        status: int,
        reason: str | None = None,
        *,
        why: str,
        extra: list[tuple[str, str]] | None = None,
        scenario: str | None = None,
        record: bool = True,
    ) -> None:
        """Refuse an initial INVITE before its scenario runs, and say so (``Refusals``)."""
        self._respond(tx, request, status, reason, extra=extra)
        self.refusals.add(request, source.host, status, reason, why, record=record,
                          scenario=scenario)  # fmt: skip

    # -- inbound call set-up ---------------------------------------------------------

    async def _start_call(self, invite: PendingInvite) -> None:
        """Set up and serve one inbound call. Its RTP leg is leased for exactly the
        time of this coroutine, so no refusal, error or cancellation can keep its ports."""
        tx, request, source = invite.transaction, invite.request, invite.source
        call: InboundCall | None = None
        try:
            async with self._leased_leg() as leg:
                call = self._new_inbound_call(invite, leg)
                if call is None:
                    return
                self.calls[call.sip_call_id, call.dialog_tag] = call
                self._invites[tx] = call
                await self.serve_call(call)
        except NoFreePort as exc:
            log.warning("cannot take call", reason=str(exc))
            self._refuse(tx, request, source, 503, "No media ports available",
                         why="no_media_ports", scenario=invite.scenario)  # fmt: skip
        except Exception:
            # A bug, not bad input (that is refused before here): count it like the endpoint.
            self.endpoint.stats["internal_errors"] += 1
            log.exception("error setting up call", sip_call_id=request.call_id)
            if call is None:
                if not tx.finalised:
                    self._refuse(tx, request, source, 500, why="internal_error",
                                 scenario=invite.scenario)  # fmt: skip
            else:
                if not tx.finalised:
                    self._respond(tx, request, 500)
                call.end("failed", "server")
                call.finish()
        finally:
            self._merge_keys.pop(invite.merge_key, None)
            self._cancelled.discard(tx)
            self._invites.pop(tx, None)

    def _new_inbound_call(self, invite: PendingInvite, leg: RtpLeg) -> InboundCall | None:
        """The call of an INVITE on its leased leg; None when it was refused or cancelled."""
        local_host = self.media.public_address or local_address_for(invite.source.host)
        setup = self._call_setup(invite, leg, local_host)
        if setup is None:
            return None
        call = InboundCall(setup, on_finished=self._finished)
        call.journal = self.journal
        call.services = self.services
        return call

    def _call_setup(self, invite: PendingInvite, leg: RtpLeg, local_host: str) -> CallSetup | None:
        """Negotiate media and describe the new call; None when it was refused."""
        tx, request, offer = invite.transaction, invite.request, invite.offer
        port = leg.local_port
        local_tag = new_tag()
        answer: AudioAnswer | None = None
        if offer is not None:
            try:
                answer = negotiate_answer(
                    offer,
                    codecs=self.media.codecs,
                    local_address=local_host,
                    local_port=port,
                    session_id=secrets.randbits(31),
                    session_version=1,
                    user_agent=self.user_agent,
                )
            except NoAcceptableMedia as exc:
                warning = f'{exc.warning_code} {local_host} "{exc}"'
                extra = [("Warning", warning[:200])]
                self._refuse(tx, request, invite.source, 488, why="no_codec", extra=extra,
                             scenario=invite.scenario)  # fmt: skip
                return None
            leg.update_remote(
                (answer.remote_address, answer.remote_port),
                CODECS[answer.codec],
                answer.payload_type,
                answer.telephone_event_pt,
            )
        if tx in self._cancelled:
            return None
        transport = invite.source.transport
        contact_port = self.endpoint.local_address(transport)[1]
        suffix = ";transport=tcp" if transport == "tcp" else ""
        host = f"[{local_host}]" if ":" in local_host else local_host
        setup = CallSetup(
            endpoint=self.endpoint,
            invite=request,
            transaction=tx,
            source=invite.source,
            dialog=Dialog.from_invite(request, local_tag),
            leg=leg,
            local_host=local_host,
            dialog_headers=[
                ("Contact", f"<sip:{host}:{contact_port}{suffix}>"),
                ("Allow", DIALOG_ALLOW),
                ("Server", self.user_agent),
            ],
            answer_sdp=answer.sdp if answer else None,
            codecs=self.media.codecs,
            user_agent=self.user_agent,
            scenario=invite.scenario,
            dialer=self,
            session_timer=invite.session_timer,
        )
        return setup

    async def send_message(self, to: str, text: str, *, sender: str) -> int | None:
        """Send a SIP MESSAGE (RFC 3428) to a SIP URI, a registered user or a number
        (through the first trunk, answering its challenge once); the final status,
        None when nobody answered. TargetError when ``to`` cannot be reached."""
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

    async def _route_out(self, target: str) -> tuple[SipUri, Peer, Trunk | None]:
        """The Request-URI and next hop of an outbound call (and its trunk, if any)."""
        if target.lower().startswith(("sip:", "sips:")):
            try:
                uri = SipUri.parse(target)
            except SipSyntaxError as exc:
                raise TargetError(f"{target!r}: {exc}") from None
            return uri, await resolve_target(uri), None
        if target in self.access.users:
            bindings = self.registrar.lookup(target, self._now())
            if not bindings:
                raise TargetError(f"user {target!r} is not registered")
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

    async def _new_leg(self) -> RtpLeg:
        """An RTP leg on the next free port pair (RTP, then RTCP on port + 1)."""
        codec = CODECS[self.media.codecs[0]]
        leg = RtpLeg(
            self.clock,
            codec,
            payload_type=codec.payload_type,
            telephone_event_pt=101,
            remote=None,
            on_digit=lambda key: None,
        )
        if self.services is not None:
            leg.jitter_buffer_ms = self.services.jitter_buffer_ms  # rtp.jitter_buffer_ms
        _, _, port = await self.ports.bind(self.media.rtp_host, lambda: leg)
        leg.local_port = port
        try:
            if not await leg.open_rtcp(self.media.rtp_host, port + 1):
                log.info("RTCP port taken; the leg goes without RTCP", port=port + 1)
        except BaseException:
            self._release(leg)
            raise
        return leg

    @contextlib.asynccontextmanager
    async def _leased_leg(self) -> AsyncIterator[RtpLeg]:
        """A new RTP leg for the time of the ``async with``: however the block ends,
        the leg is closed and its ports given back (NoFreePort when there are none)."""
        leg = await self._new_leg()
        try:
            yield leg
        finally:
            self._release(leg)

    def _release(self, leg: RtpLeg) -> None:
        """Close a leg and give its port back; harmless when done already."""
        leg.close()
        if leg.local_port:
            self.ports.release(leg.local_port, leg)

    def _finished(self, call: Call) -> None:
        """A call is over: forget its dialog, give its RTP port back."""
        for key, known in list(self.calls.items()):
            if known is call:
                del self.calls[key]
        self._release(call.leg)

    # -- outbound calls (the Dialer of bridge.py) --------------------------------

    async def originate(
        self,
        target: str,
        *,
        caller_id: str,
        headers: Mapping[str, str],
        parent: Call | None = None,
        run: RunStart | None = None,
    ) -> OutboundCall:
        """Prepare (not yet place) a call: ``target`` is a SIP URI, the name of a
        registered user, or a number for the first trunk; ``run``, the run the call
        is placed for, which its record names from the start. TargetError when it
        cannot be called."""
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
            leg = await self._new_leg()
        except NoFreePort as exc:
            raise TargetError(f"{target}: {exc}") from None
        try:
            return self._outbound_call(leg, target, uri, peer, trunk, caller_id, from_host,
                                       local_host, extra, parent, run)  # fmt: skip
        except BaseException:
            self._release(leg)  # the call never existed: nobody else would give the port back
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
    ) -> OutboundCall:
        port = leg.local_port

        offer = make_offer(
            codecs=self.media.codecs,
            local_address=local_host,
            local_port=port,
            session_id=secrets.randbits(31),
            session_version=1,
            user_agent=self.user_agent,
        )
        host = f"[{local_host}]" if ":" in local_host else local_host
        sip_port = self.endpoint.local_address(peer.transport)[1]
        suffix = ";transport=tcp" if peer.transport == "tcp" else ""
        invite = build_invite(
            InviteParams(
                target=uri,
                from_uri=f"sip:{caller_id}@{from_host or host}",
                from_display=None,
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
            on_finished=self._finished,
            auth=trunk.auth if trunk is not None else None,
        )
        self.calls[call.sip_call_id, call.local_tag] = call
        call.codecs = self.media.codecs
        call.journal = self.journal
        call.services = self.services
        if run is not None:
            call.scenario = run.scenario_name
        if self.journal is not None:
            self.journal.call_started(call, number=caller_id, parent=parent, run=run)
        return call

    # -- shutdown ----------------------------------------------------------------

    @property
    def active_calls(self) -> list[Call]:
        return [call for call in self.calls.values() if not call.ended]

    async def hangup_all(self, reason: str = "normal_clearing") -> None:
        calls = self.active_calls
        await asyncio.gather(*(call.hangup(reason) for call in calls), return_exceptions=True)

    async def wait_idle(self) -> None:
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(set(self._tasks), timeout=1.0)


def _accepts_sdp(request: Request) -> bool:
    """Whether the Accept header allows an SDP body (an empty one allows none)."""
    values = request.headers.get_list("Accept", lenient=True)
    if not values and (request.headers.get("Accept") or "").strip():
        return True  # malformed: ignored, as if absent
    wanted = {value.split(";")[0].strip().lower() for value in values}
    return bool(wanted & {"application/sdp", "application/*", "*/*"})


def dtmf_from_info(request: Request) -> str | None:
    """The key of an INFO body: ``application/dtmf-relay`` (``Signal=5``, the
    de-facto format) or ``application/dtmf`` (the key alone)."""
    text = request.body.decode("ascii", "replace")
    if request.content_type == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                text = value
                break
        else:
            return None
    elif request.content_type != "application/dtmf":
        return None
    key = text.strip().upper()
    key = {"10": "*", "11": "#"}.get(key, key)  # some phones send event codes
    return key if len(key) == 1 and key in DTMF_KEYS else None


@lru_cache(maxsize=256)
def local_address_for(remote_host: str) -> str:
    """The local IP address the kernel would use to reach ``remote_host``: what
    goes into SDP and Contact when we listen on a wildcard address."""
    family = socket.AF_INET6 if ":" in remote_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((remote_host, 9))  # no packet is sent for a UDP connect
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"
