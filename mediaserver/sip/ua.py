"""The user agent core: what the server does with each SIP request it accepts.

Requests arrive here from the endpoint once the transaction layer has
decided they are new. Policy follows RFC 3261 section 8.2 in order: method
(405 for known methods we do not serve, 501 for unknown ones), Require
(420, 8.2.2.3), then the method itself: OPTIONS reports capabilities,
REGISTER goes to the registrar, BYE ends the dialog it names, in-dialog
requests for unknown dialogs get 481, a merged INVITE gets 482.

Calls are not this package's business: an initial INVITE, a MESSAGE, a
CANCEL of an INVITE being set up and the in-dialog requests of a known call
go up to the :class:`CallHandler` the call layer attaches (``calls/switch.py``),
which also finds the call of a dialog. Nothing here imports the layers above.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from mediaserver.config import LimitsConfig
from mediaserver.log import get_logger
from mediaserver.sip.access import AccessPolicy, Admission, Decision
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, Response, make_response, new_tag
from mediaserver.sip.ratelimit import PASS, FloodGuard, RateLimiter, Verdict
from mediaserver.sip.registrar import Binding, Registrar
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.uri import SipSyntaxError

log = get_logger("ua")

ALLOWED_METHODS = (
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "UPDATE", "INFO", "PRACK", "MESSAGE",
    "REFER", "NOTIFY",
)  # fmt: skip
# Methods we know but do not serve answer 405; anything else 501 (RFC 3261 8.2.1).
KNOWN_METHODS = frozenset(
    (*ALLOWED_METHODS, "REGISTER", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "INFO",
     "PRACK", "UPDATE", "PUBLISH")
)  # fmt: skip
SUPPORTED_EXTENSIONS = frozenset(("timer", "100rel"))  # RFC 4028, RFC 3262
DIALOG_ALLOW = ", ".join(ALLOWED_METHODS)  # what a dialog with us accepts
# In-dialog requests the call itself serves (BYE is ended here).
CALL_REQUESTS = frozenset(("INVITE", "UPDATE", "INFO", "PRACK", "REFER", "NOTIFY"))


class DialogUser(Protocol):
    """What the user agent needs of the call on one of its dialogs."""

    @property
    def dialog(self) -> Dialog | None: ...

    @property
    def ended(self) -> bool: ...

    def on_ack(self, ack: Request) -> None: ...

    def on_stray_response(self, response: Response) -> None: ...

    def on_remote_bye(self) -> None: ...


CallT = TypeVar("CallT", bound=DialogUser)


class CallHandler(Protocol[CallT]):
    """The call layer, as the user agent talks to it."""

    def find_call(self, call_id: str, local_tag: str) -> CallT | None:
        """The call whose dialog has this Call-ID and our tag."""
        ...

    def on_invite(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        """An initial INVITE (not merged): admit, refuse or set up a call."""
        ...

    def on_in_dialog(self, call: CallT, tx: ServerTransaction, request: Request) -> None:
        """A re-INVITE, UPDATE, INFO, PRACK, REFER or NOTIFY that passed RFC 3261
        12.2.2's checks on ``call``'s dialog."""
        ...

    def on_message(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        """A SIP MESSAGE (RFC 3428)."""
        ...

    def is_setting_up(self, invite_tx: ServerTransaction) -> bool:
        """Whether the INVITE of ``invite_tx`` is one whose call is being set up."""
        ...

    def on_cancel(self, invite_tx: ServerTransaction) -> None:
        """The INVITE of ``invite_tx`` was CANCELled (its 200 is sent already)."""
        ...

    def on_ack_timeout(self, invite_tx: ServerTransaction) -> None:
        """No ACK came for the 2xx of ``invite_tx`` (RFC 3261 13.3.1.4)."""
        ...


class MergedRequests:
    """The initial INVITEs being set up, by (Call-ID, From tag, CSeq) with the branch
    each came by: the same request by another path is merged (RFC 3261 8.2.2.2)."""

    def __init__(self) -> None:
        self._branches: dict[tuple[str, str, int], str] = {}

    @staticmethod
    def _key(request: Request) -> tuple[str, str, int]:
        return request.call_id, request.from_.tag or "", request.cseq[0]

    def is_merged(self, request: Request) -> bool:
        branch = request.top_via.branch or ""
        return self._branches.get(self._key(request), branch) != branch

    def hold(self, request: Request) -> None:
        self._branches[self._key(request)] = request.top_via.branch or ""

    def release(self, request: Request) -> None:
        self._branches.pop(self._key(request), None)


class UserAgent(Generic[CallT]):
    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        access: AccessPolicy,
        user_agent: str = "mediaserver",
        limits: LimitsConfig | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.access = access
        self.user_agent = user_agent
        self.handler: CallHandler[CallT] | None = None  # attached by the call layer
        self.registrar: Registrar[Peer] = Registrar()
        # Told of a user's bindings after each REGISTER taken (other nodes read them).
        self.on_bindings: Callable[[str, list[Binding[Peer]]], None] | None = None
        self.merges = MergedRequests()
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
        self.users_changed()
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
            self.respond(tx, request, 501, extra=[("Allow", self.allow)])
            return
        if method not in self.allowed_methods:
            self.respond(tx, request, 405, extra=[("Allow", self.allow)])
            return
        try:
            required = request.headers.get_list("Require")
        except SipSyntaxError as exc:
            # The extensions a request requires cannot be ignored (RFC 3261 8.2.2.3).
            self.respond(tx, request, 400, f"Bad Require header: {exc}"[:120])
            return
        unsupported = [tag for tag in required if tag.lower() not in SUPPORTED_EXTENSIONS]
        if unsupported and method not in ("CANCEL", "BYE"):
            # RFC 3261 8.2.2.3: name each unsupported option tag.
            self.respond(tx, request, 420, extra=[("Unsupported", ", ".join(unsupported))])
            return
        if method == "OPTIONS":
            self._on_options(tx, request)
        elif method == "REGISTER":
            self._on_register(tx, request, source)
        elif method == "BYE":
            self._on_bye(tx, request)
        elif method == "CANCEL":
            self._on_cancel(tx, request)
        elif self.handler is None:
            self.respond(tx, request, 503, "No calls served")  # a user agent without calls
        elif method == "INVITE" and not request.to.tag:
            self._on_initial_invite(tx, request, source, self.handler)
        elif method == "MESSAGE":
            self.handler.on_message(tx, request, source)
        elif method in CALL_REQUESTS and (call := self._in_dialog(tx, request)) is not None:
            self.handler.on_in_dialog(call, tx, request)

    def on_ack(self, request: Request, source: Peer) -> None:
        call = self._find_call(request)
        if call is not None:
            call.on_ack(request)

    def on_server_timeout(self, tx: ServerTransaction, timer: str) -> None:
        if self.handler is not None and tx.request.method == "INVITE":
            self.handler.on_ack_timeout(tx)

    def on_stray_response(self, response: Response, source: Peer) -> None:
        # Responses to our own requests carry our tag in From.
        try:
            tag = response.from_.tag
        except SipSyntaxError:
            return
        call = self.handler.find_call(response.call_id, tag or "") if self.handler else None
        if call is not None:
            call.on_stray_response(response)

    # -- answers -------------------------------------------------------------------

    def respond(
        self,
        tx: ServerTransaction,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer ``request`` with a fresh To tag and our Server header."""
        headers = [*(extra or []), ("Server", self.user_agent)]
        tag = new_tag() if status > 100 else None
        response = make_response(request, status, reason, to_tag=tag, extra=headers, body=body)
        self.endpoint.respond(tx, response)

    def now(self) -> float:
        return time.time()

    def user_over_rate(self, decision: Decision) -> int | None:
        """The seconds a digest user over their rate (``limits.per_user``) must wait,
        counted; None when ``decision`` admits no user or they are within it: stolen
        credentials used from many addresses still cannot flood."""
        if not isinstance(decision, Admission) or decision.via != "user":
            return None
        if decision.name is None or self.user_limiter is None:
            return None
        if self.user_limiter.allow(decision.name, self.now()):
            return None
        self.endpoint.stats["refused_rate_user"] += 1
        return self.user_limiter.retry_after()

    # -- requests ----------------------------------------------------------------

    def _find_call(self, request: Request) -> CallT | None:
        """The live call with a dialog that ``request`` belongs to."""
        try:
            tag = request.to.tag
        except SipSyntaxError:
            return None
        if self.handler is None:
            return None
        call = self.handler.find_call(request.call_id, tag or "")
        if call is None or call.ended or call.dialog is None:
            return None
        return call

    def _in_dialog(self, tx: ServerTransaction, request: Request) -> CallT | None:
        """The call a request inside a dialog belongs to, after RFC 3261 12.2.2's
        checks; None when it was answered with an error (481, 500...)."""
        call = self._find_call(request)
        if call is None or call.dialog is None:
            self.respond(tx, request, 481)
            return None
        refusal = call.dialog.check_request(request)
        if refusal is not None:
            self.endpoint.respond(tx, refusal)
            return None
        return call

    def _screen(self, request: Request, source: Peer) -> Verdict:
        """Flood control before any state is kept (``FloodGuard``): trusted networks
        (the operator's own, load tests included) and trunks are not limited."""
        host = source.host
        if host in self.access.trunk_addresses or self.access.is_trusted_network(host):
            return PASS
        new_invite = request.method == "INVITE" and not request.to.tag
        verdict = self.guard.check(host, self.now(), new_invite=new_invite)
        if verdict.reason == "blocking":
            log.warning("blocking a flooding source", peer=host,
                        seconds=self.guard.block_seconds)  # fmt: skip
        return verdict

    def _on_register(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        """The registrar of ``users:`` (RFC 3261 10.3), digest-authenticated."""
        decision = self.access.admit_register(request, self.now())
        if isinstance(decision, Response):
            self.endpoint.respond(tx, decision)
            return
        retry_after = self.user_over_rate(decision)
        if retry_after is not None:
            retry = [("Retry-After", str(retry_after))]
            self.respond(tx, request, 503, "Too many requests", extra=retry)
            return
        assert decision.name is not None
        outcome = self.registrar.handle_register(request, decision.name, source, self.now())
        log.info("register", user=decision.name, status=outcome.status, peer=source.host,
                 bindings=len(outcome.bindings))  # fmt: skip
        if outcome.ok and self.on_bindings is not None:
            self.on_bindings(decision.name, list(outcome.bindings))
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
        self.respond(tx, request, 200, extra=extra)

    def _on_bye(self, tx: ServerTransaction, request: Request) -> None:
        call = self._in_dialog(tx, request)
        if call is not None:
            self.endpoint.respond(tx, make_response(request, 200))
            call.on_remote_bye()

    def _on_cancel(self, tx: ServerTransaction, request: Request) -> None:
        invite_tx = self.endpoint.layer.find_invite_for_cancel(request)
        if invite_tx is None or self.handler is None or not self.handler.is_setting_up(invite_tx):
            self.respond(tx, request, 481)
            return
        # RFC 3261 9.2: 200 to the CANCEL, then (the call's part) 487 to the INVITE.
        self.endpoint.respond(tx, make_response(request, 200))
        self.handler.on_cancel(invite_tx)

    def _on_initial_invite(
        self, tx: ServerTransaction, request: Request, source: Peer, handler: CallHandler[CallT]
    ) -> None:
        if self.merges.is_merged(request):
            # RFC 3261 8.2.2.2: the same request arriving by another path is a merge: 482.
            self.respond(tx, request, 482)
            return
        handler.on_invite(tx, request, source)
