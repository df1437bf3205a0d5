"""The call switch: what becomes of the call requests the user agent passes up.

:class:`CallSwitch` is the :class:`~mediaserver.sip.ua.CallHandler` of the
user agent. An initial INVITE is decided by :func:`~mediaserver.calls.admission.admit_invite`;
a refusal is answered and told to :class:`~mediaserver.calls.refusals.Refusals`;
an admitted call leases an RTP leg for exactly the time it is set up and served,
becomes an :class:`~mediaserver.calls.inbound.InboundCall` and is handed to
``serve_call`` (which runs its scenario). A MESSAGE is admitted and routed like a
call, then handed to the scenario's ``inbound-sms`` branch. Requests inside
a call's dialog go to the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mediaserver.actions.callapi import DTMF_KEYS
from mediaserver.calls import transfer
from mediaserver.calls.admission import Admit, Challenge, Refuse, Router, admit_invite
from mediaserver.calls.answering import answer_offer
from mediaserver.calls.base import Call
from mediaserver.calls.dialer import Dialer
from mediaserver.calls.inbound import CallSetup, InboundCall
from mediaserver.calls.live import LiveCalls, MediaSettings
from mediaserver.calls.refusals import Refusals
from mediaserver.calls.security import secure_media
from mediaserver.calls.services import CallServices
from mediaserver.journal import CallJournal
from mediaserver.log import get_logger
from mediaserver.media.leg import RtpLeg
from mediaserver.media.ports import NoFreePort
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, Response, make_response, new_tag
from mediaserver.sip.offer_answer import AudioAnswer, NoAcceptableMedia
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, local_address_for
from mediaserver.sip.ua import DIALOG_ALLOW, UserAgent
from mediaserver.sip.uri import contact_transport

log = get_logger("ua")

MAX_MESSAGE_TEXT = 4096

CallServer = Callable[[Call], Awaitable[None]]
"""Runs a new call's scenario (returns when the call is over)."""

MessageServer = Callable[[str, dict[str, str]], None]
"""Runs a scenario's ``inbound-sms`` branch for a SIP MESSAGE (scenario, message)."""


@dataclass(frozen=True)
class PendingInvite:
    """An INVITE admitted, while its call is being set up."""

    transaction: ServerTransaction
    request: Request
    source: Peer
    admitted: Admit


class CallSwitch:
    def __init__(
        self,
        ua: UserAgent[Call],
        *,
        live: LiveCalls,
        dialer: Dialer,
        router: Router,
        serve_call: CallServer,
        media: MediaSettings,
        user_agent: str = "mediaserver",
        journal: CallJournal | None = None,
        services: CallServices | None = None,
        serve_message: MessageServer | None = None,
    ) -> None:
        self.ua = ua
        self.endpoint = ua.endpoint
        self.live = live
        self.dialer = dialer
        self.router = router
        self.serve_call = serve_call
        self.media = media
        self.user_agent = user_agent
        self.journal = journal
        self.services = services
        self.serve_message = serve_message
        self.draining = False
        self.refusals = Refusals(journal)  # initial INVITEs refused: logged, counted, recorded
        self._invites: dict[ServerTransaction, InboundCall | None] = {}
        self._cancelled: set[ServerTransaction] = set()  # CANCELled before the call was set up
        self._tasks: set[asyncio.Task[None]] = set()
        ua.handler = self

    @property
    def calls(self) -> dict[tuple[str, str], Call]:
        """The calls with a dialog, by (Call-ID, our tag)."""
        return self.live.calls

    @property
    def active_calls(self) -> list[Call]:
        return self.live.active

    async def hangup_all(self, reason: str = "normal_clearing") -> None:
        await self.live.hangup_all(reason)

    async def wait_idle(self) -> None:
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(set(self._tasks), timeout=1.0)

    # -- CallHandler -------------------------------------------------------------

    def find_call(self, call_id: str, local_tag: str) -> Call | None:
        return self.live.find(call_id, local_tag)

    def on_in_dialog(self, call: Call, tx: ServerTransaction, request: Request) -> None:
        method = request.method
        if method in ("INVITE", "UPDATE"):
            call.on_reinvite(tx, request)  # hold, resume, codec change, session refresh
        elif method == "INFO":
            key = dtmf_from_info(request)  # key presses from phones that send DTMF this way
            if key is not None:
                call.deliver_digit(key)
            self.endpoint.respond(tx, make_response(request, 200))
        elif method == "PRACK":
            if isinstance(call, InboundCall):
                call.on_prack(tx, request)
            else:
                self.ua.respond(tx, request, 481)
        elif method == "REFER":
            transfer.on_refer(call, call.bridge, tx, request)
        elif method == "NOTIFY":
            transfer.on_notify(call, tx, request)

    def is_setting_up(self, invite_tx: ServerTransaction) -> bool:
        return invite_tx in self._invites

    def on_cancel(self, invite_tx: ServerTransaction) -> None:
        call = self._invites[invite_tx]
        if call is None:
            response = make_response(invite_tx.request, 487, to_tag=new_tag())
            self.endpoint.respond(invite_tx, response)
            self._cancelled.add(invite_tx)
        elif not call.answered and call.final_status is None:
            response = make_response(invite_tx.request, 487, to_tag=call.dialog_tag)
            self.endpoint.respond(invite_tx, response)
            call.on_cancel()

    def on_ack_timeout(self, invite_tx: ServerTransaction) -> None:
        call = self._invites.get(invite_tx)
        if call is not None and call.answered:
            call.on_ack_timeout()

    def on_message(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        """A SIP MESSAGE (RFC 3428), the SMS of SIP: admitted and routed like a call,
        answered 200 once accepted, handed to the scenario's inbound-sms branch."""
        if request.to.tag:
            self.ua.respond(tx, request, 200)  # inside a call: accepted, nothing runs
            return
        decision = self.ua.access.admit_call(request, source.host, self.ua.now())
        if isinstance(decision, Response):
            self.endpoint.respond(tx, decision)
            return
        retry_after = self.ua.user_over_rate(decision)
        if retry_after is not None:
            retry = [("Retry-After", str(retry_after))]
            self.ua.respond(tx, request, 503, "Too many requests", extra=retry)
            return
        if not request.content_type.startswith("text/"):
            self.ua.respond(tx, request, 415, extra=[("Accept", "text/plain")])
            return
        if len(request.body) > MAX_MESSAGE_TEXT:
            self.ua.respond(tx, request, 413, "Message text too long")
            return
        called = request.request_uri.user_unescaped or ""
        scenario = self.router(called)
        if scenario is None or self.serve_message is None:
            self.ua.respond(tx, request, 404, "No route for messages")
            return
        self.ua.respond(tx, request, 200)
        self.serve_message(
            scenario,
            {
                "from": request.from_.uri.user_unescaped or str(request.from_.uri),
                "to": called,
                "text": request.body.decode("utf-8", "replace"),
                "content_type": request.content_type,
            },
        )

    def on_invite(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        access = self.ua.access.admit_call(request, source.host, self.ua.now())
        decision = admit_invite(
            request,
            access,
            user_retry_after=self.ua.user_over_rate(access),
            draining=self.draining,
            route=self.router,
        )
        if isinstance(decision, Challenge):
            self.endpoint.respond(tx, decision.response)
            # A challenge is one step of a normal call: no count, no record.
            log.info("call challenged", peer=source.host, sip_call_id=request.call_id)
        elif isinstance(decision, Refuse):
            self._refuse(tx, request, source, decision)
        else:
            self.ua.merges.hold(request)
            self._invites[tx] = None
            invite = PendingInvite(tx, request, source, decision)
            task = asyncio.get_running_loop().create_task(self._start_call(invite))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- refused calls -----------------------------------------------------------

    def _refuse(
        self, tx: ServerTransaction, request: Request, source: Peer, refusal: Refuse
    ) -> None:
        """Refuse an initial INVITE before its scenario runs, and say so (``Refusals``)."""
        if refusal.response is not None:
            self.endpoint.respond(tx, refusal.response)
        else:
            self.ua.respond(tx, request, refusal.status, refusal.reason, extra=list(refusal.extra))
        self.refusals.add(request, source.host, refusal.status, refusal.reason, refusal.why,
                          record=refusal.record, scenario=refusal.scenario)  # fmt: skip

    # -- inbound call set-up ---------------------------------------------------------

    async def _start_call(self, invite: PendingInvite) -> None:
        """Set up and serve one inbound call. Its RTP leg is leased for exactly the
        time of this coroutine, so no refusal, error or cancellation can keep its ports."""
        tx, request, source = invite.transaction, invite.request, invite.source
        scenario = invite.admitted.scenario
        call: InboundCall | None = None
        try:
            async with self.live.legs.leased() as leg:
                call = self._new_inbound_call(invite, leg)
                if call is None:
                    return
                self.live.add(call, call.dialog_tag)
                self._invites[tx] = call
                await self.serve_call(call)
        except NoFreePort as exc:
            log.warning("cannot take call", reason=str(exc))
            refusal = Refuse(503, "no_media_ports", "No media ports available", scenario=scenario)
            self._refuse(tx, request, source, refusal)
        except Exception:
            # A bug, not bad input (that is refused before here): count it like the endpoint.
            self.endpoint.stats["internal_errors"] += 1
            log.exception("error setting up call", sip_call_id=request.call_id)
            if call is None:
                if not tx.finalised:
                    refusal = Refuse(500, "internal_error", scenario=scenario)
                    self._refuse(tx, request, source, refusal)
            else:
                if not tx.finalised:
                    self.ua.respond(tx, request, 500)
                call.end("failed", "server")
                call.finish()
        finally:
            self.ua.merges.release(request)
            self._cancelled.discard(tx)
            self._invites.pop(tx, None)

    def _new_inbound_call(self, invite: PendingInvite, leg: RtpLeg) -> InboundCall | None:
        """The call of an INVITE on its leased leg; None when it was refused or cancelled."""
        local_host = self.media.public_address or local_address_for(invite.source.host)
        setup = self._call_setup(invite, leg, local_host)
        if setup is None:
            return None
        call = InboundCall(setup, on_finished=self.live.finished)
        call.journal = self.journal
        call.services = self.services
        return call

    def _call_setup(self, invite: PendingInvite, leg: RtpLeg, local_host: str) -> CallSetup | None:
        """Negotiate media and describe the new call; None when it was refused."""
        tx, request, offer = invite.transaction, invite.request, invite.admitted.offer
        answer: AudioAnswer | None = None
        if offer is not None:
            try:
                answer = answer_offer(
                    leg,
                    offer,
                    codecs=self.media.codecs,
                    local_host=local_host,
                    user_agent=self.user_agent,
                    srtp=self.media.srtp.answering(invite.admitted.admission),
                )
            except NoAcceptableMedia as exc:
                warning = f'{exc.warning_code} {local_host} "{exc}"'
                refusal = Refuse(488, "no_codec", extra=(("Warning", warning[:200]),),
                                 scenario=invite.admitted.scenario)  # fmt: skip
                self._refuse(tx, request, invite.source, refusal)
                return None
            secure_media(leg, answer)
        if tx in self._cancelled:
            return None
        transport = invite.source.transport
        contact_port = self.endpoint.local_address(transport)[1]
        suffix = contact_transport(transport)
        host = f"[{local_host}]" if ":" in local_host else local_host
        return CallSetup(
            endpoint=self.endpoint,
            invite=request,
            transaction=tx,
            source=invite.source,
            dialog=Dialog.from_invite(request, new_tag()),
            leg=leg,
            local_host=local_host,
            dialog_headers=[
                # RFC 5630 3.1.3: a dialog set up with a sips: URI keeps sips: Contacts.
                ("Contact", f"<{_scheme(request.uri)}:{host}:{contact_port}{suffix}>"),
                ("Allow", DIALOG_ALLOW),
                ("Server", self.user_agent),
            ],
            answer_sdp=answer.sdp if answer else None,
            codecs=self.media.codecs,
            srtp=self.media.srtp.answering(invite.admitted.admission),
            user_agent=self.user_agent,
            scenario=invite.admitted.scenario,
            dialer=self.dialer,
            session_timer=invite.admitted.session_timer,
        )


def _scheme(uri: str) -> str:
    return "sips" if uri[:5].lower() == "sips:" else "sip"


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
