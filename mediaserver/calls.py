"""A call: one SIP dialog, its RTP leg and the scenario run driving them.

The :class:`Call` is what actions talk to (it implements
:class:`~mediaserver.actions.callapi.CallApi`). It turns their requests into
SIP responses and requests through the endpoint (answer, reject, BYE) and
into media operations on its leg (play, echo), and it buffers the DTMF keys
the leg reports until a gather reads them.

Its task (:meth:`Call.serve`) runs the scenario and always ends the call
cleanly: whatever way the run finishes, the call is hung up, the leg closed
and its port released. When the caller hangs up first, the run is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from mediaserver.actions.callapi import CallEnded, Pcm
from mediaserver.log import get_logger
from mediaserver.media.g711 import CODECS
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, make_response
from mediaserver.sip.sdp import SdpError, SessionDescription, accept_answer, make_offer
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.uri import SipUri

if TYPE_CHECKING:
    from mediaserver.actions.runner import RunOutcome

log = get_logger("call")

# SIP status for hanging up a call that was never answered, by hangup reason.
UNANSWERED_STATUS = {
    "busy": 486,
    "declined": 603,
    "rejected": 603,
    "unavailable": 480,
    "not_found": 404,
    "no_answer": 480,
    "failed": 500,
}
REJECT_STATUS = {"busy": 486, "declined": 603, "unavailable": 480, "not_found": 404}
# RFC 3326 Reason header: Q.850 cause of each hangup reason.
Q850_CAUSES = {"normal_clearing": 16, "busy": 17, "no_answer": 19, "declined": 21, "failed": 41}
MAX_BUFFERED_DIGITS = 64
BYE_WAIT = 5.0

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_call_id() -> str:
    """A call id as the API shows it: 8 characters of [a-z0-9]."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


@dataclass
class CallSetup:
    """What the user agent hands a new inbound call."""

    endpoint: SipEndpoint
    invite: Request
    transaction: ServerTransaction
    source: Peer
    dialog: Dialog
    leg: RtpLeg
    local_host: str  # address for Contact and SDP
    dialog_headers: list[tuple[str, str]]  # Contact, Allow, Server on our dialog responses
    answer_sdp: SessionDescription | None  # None: the INVITE had no offer
    codecs: tuple[str, ...]
    user_agent: str
    scenario: str


class Call:
    """One inbound call and what the scenario does with it."""

    def __init__(self, setup: CallSetup, on_finished: Callable[[Call], None]) -> None:
        self.setup = setup
        self.id = new_call_id()
        self.endpoint = setup.endpoint
        self.dialog = setup.dialog
        self.leg = setup.leg
        self.invite = setup.invite
        self.transaction = setup.transaction
        self.started_at = time.time()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: str | None = None
        self.hangup_source: str | None = None
        self.final_status: int | None = None
        self.outcome: RunOutcome | None = None
        self._on_finished = on_finished
        self._digits: deque[str] = deque(maxlen=MAX_BUFFERED_DIGITS)
        self._wakers: list[asyncio.Future[None]] = []
        self._ended = asyncio.get_running_loop().create_future()
        self._acked = asyncio.get_running_loop().create_future()
        self._run_task: asyncio.Task[RunOutcome] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._local_sdp = setup.answer_sdp
        self._offer: SessionDescription | None = None
        self._sdp_version = 1
        self.leg.on_digit = self._on_digit
        from_ = self.invite.from_
        to = self.invite.to
        self.from_user = _user_of(from_.uri) or str(from_.uri)
        self.to_user = _user_of(to.uri) or str(to.uri)

    # -- CallApi ---------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in self.invite.headers:
            headers.setdefault(name, value)
        return {
            "id": self.id,
            "from": self.from_user,
            "to": self.to_user,
            "direction": "inbound",
            "sip_call_id": self.invite.call_id,
            "started_at": int(self.started_at * 1000),
            "answered_at": int(self.answered_at * 1000) if self.answered_at else None,
            "headers": headers,
        }

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def ended(self) -> bool:
        return self._ended.done()

    def _check(self) -> None:
        if self.ended:
            raise CallEnded(self.hangup_cause or "call ended")

    async def ring(self) -> None:
        self._check()
        if self.answered or self.final_status is not None:
            return
        ringing = make_response(
            self.invite, 180, to_tag=self.dialog.local_tag, extra=self.setup.dialog_headers
        )
        self.endpoint.respond(self.transaction, ringing)

    async def answer(self) -> None:
        self._check()
        if self.answered:
            return
        if self._local_sdp is None:
            # Offerless INVITE: our offer goes in the 200, the answer comes in the ACK.
            self._offer = make_offer(
                codecs=self.setup.codecs,
                local_address=self.setup.local_host,
                local_port=self.leg.local_port,
                session_id=secrets.randbits(31),
                session_version=self._sdp_version,
                user_agent=self.setup.user_agent,
            )
            body = self._offer.serialize().encode()
        else:
            body = self._local_sdp.serialize().encode()
        extra = [*self.setup.dialog_headers, ("Content-Type", "application/sdp")]
        ok = make_response(self.invite, 200, to_tag=self.dialog.local_tag, extra=extra, body=body)
        self.endpoint.respond(self.transaction, ok)
        self.final_status = 200
        self.answered_at = time.time()
        self.dialog.confirm()
        log.info("call answered")
        if self._offer is not None:
            await self._wait_any([self._acked], None)
            self._check()
        else:
            self.leg.start()

    async def reject(self, reason: str) -> None:
        self._check()
        if self.answered:
            raise ValueError("reject@v1: the call is already answered; use hangup@v1")
        self._final_error(REJECT_STATUS.get(reason, 603))
        self._end(reason, "server")

    async def hangup(self, reason: str = "normal_clearing") -> None:
        if self.ended:
            return
        self._end(reason, "server")
        if not self.answered:
            if self.final_status is None:
                self._final_error(UNANSWERED_STATUS.get(reason, 480))
            return
        await self._send_bye(reason)

    async def play(self, audio: Pcm, stop_keys: str = "") -> str | None:
        await self._ensure_answered()
        key = self._buffered_key(stop_keys)
        if key is not None:
            return key  # type-ahead: a key pressed before the prompt skips it
        playback = self.leg.play(audio)
        try:
            while True:
                await self._wait_any([playback.done], None)
                self._check()
                key = self._buffered_key(stop_keys)
                if key is not None:
                    return key
                if playback.done.done():
                    return None
        finally:
            if not playback.done.done():
                self.leg.stop_playback()

    async def echo(self, seconds: float | None) -> None:
        await self._ensure_answered()
        self.leg.set_echo(True)
        try:
            await self._wait_any([], seconds, wake_on_digit=False)
            self._check()
        finally:
            self.leg.set_echo(False)

    async def next_digit(self, timeout: float | None) -> str | None:
        self._check()
        if not self._digits:
            await self._wait_any([], timeout)
            self._check()
        return self._digits.popleft() if self._digits else None

    def flush_digits(self) -> None:
        self._digits.clear()

    # -- helpers -------------------------------------------------------------

    async def _ensure_answered(self) -> None:
        self._check()
        if not self.answered:
            await self.answer()

    def _buffered_key(self, stop_keys: str) -> str | None:
        for key in self._digits:
            if key in stop_keys:
                return key
        return None

    async def _wait_any(
        self,
        futures: list[asyncio.Future[None]],
        timeout: float | None,
        *,
        wake_on_digit: bool = True,
    ) -> None:
        """Wait until one of ``futures`` is done, a digit arrives, the call ends,
        or ``timeout`` seconds pass."""
        waiters: set[asyncio.Future[Any]] = {self._ended, *futures}
        waker: asyncio.Future[None] | None = None
        if wake_on_digit:
            waker = asyncio.get_running_loop().create_future()
            self._wakers.append(waker)
            waiters.add(waker)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if waker is not None:
                with contextlib.suppress(ValueError):
                    self._wakers.remove(waker)

    def _on_digit(self, key: str) -> None:
        # Runs in datagram_received, outside the call's task: name the call explicitly.
        log.info("dtmf received", key=key, call_id=self.id)
        self._digits.append(key)
        for waker in self._wakers:
            if not waker.done():
                waker.set_result(None)

    def _final_error(self, status: int) -> None:
        self.final_status = status
        response = make_response(self.invite, status, to_tag=self.dialog.local_tag)
        self.endpoint.respond(self.transaction, response)

    def _end(self, cause: str, source: str) -> None:
        if self.ended:
            return
        self.hangup_cause = cause
        self.hangup_source = source
        self.ended_at = time.time()
        self.dialog.terminate()
        self._ended.set_result(None)
        self.leg.close()

    async def _send_bye(self, reason: str) -> None:
        via = self.endpoint.new_via(self.setup.source.transport, self.setup.local_host)
        bye = self.dialog.create_request("BYE", via)
        bye.headers.add("Reason", f'Q.850;cause={Q850_CAUSES.get(reason, 16)};text="{reason}"')
        bye.headers.add("User-Agent", self.setup.user_agent)
        peer = self._in_dialog_peer()
        with contextlib.suppress(asyncio.TimeoutError):
            response = await asyncio.wait_for(self.endpoint.request(bye, peer), BYE_WAIT)
            log.debug("bye answered", status=response.status if response else None)

    def _in_dialog_peer(self) -> Peer:
        """Where in-dialog requests go. Over TCP, the connection the INVITE came on;
        over UDP, the next hop's address (RFC 3261 12.2.1.1), falling back to the
        INVITE's source when the target is not a literal address."""
        source = self.setup.source
        if source.reliable:
            return source
        hop = self.dialog.next_hop()
        if isinstance(hop, SipUri) and _is_ip(hop.host):
            return Peer("udp", hop.host.strip("[]"), hop.port or 5060)
        return source

    # -- events from the user agent -------------------------------------------

    def on_ack(self, ack: Request) -> None:
        self.endpoint.layer.ack_received(self.transaction, asyncio.get_running_loop().time())
        if self._offer is not None and not self._acked.done():
            try:
                answer = accept_answer(self._offer, SessionDescription.parse(ack.body))
            except SdpError as exc:
                log.info("bad SDP answer in ACK", reason=str(exc))
                self._acked.set_result(None)
                self._schedule(self.hangup("failed"))
                return
            codec = CODECS[answer.codec]
            self.leg.update_remote(
                (answer.remote_address, answer.remote_port),
                codec,
                answer.payload_type,
                answer.telephone_event_pt,
            )
            self.leg.start()
        if not self._acked.done():
            self._acked.set_result(None)

    def on_ack_timeout(self) -> None:
        """No ACK for our 2xx: RFC 3261 13.3.1.4 says to end the dialog with BYE."""
        if not self.ended:
            log.info("no ACK for 200 OK; hanging up")
            self._schedule(self.hangup("failed"))

    def on_remote_bye(self) -> None:
        self._end("normal_clearing", "caller")
        self._cancel_run()

    def on_cancel(self) -> None:
        """CANCEL arrived before we answered; the 487 is already sent."""
        self.final_status = 487
        self._end("originator_cancel", "caller")
        self._cancel_run()

    def on_reinvite(self, tx: ServerTransaction, request: Request) -> None:
        """A session refresh or media change in the dialog: answer with our
        current description (hold and codec changes come with the SIP issue)."""
        if self._local_sdp is None and self._offer is None:
            self.endpoint.respond(tx, make_response(request, 488, to_tag=self.dialog.local_tag))
            return
        sdp = self._local_sdp or self._offer
        assert sdp is not None
        extra = [*self.setup.dialog_headers, ("Content-Type", "application/sdp")]
        body = sdp.serialize().encode()
        ok = make_response(request, 200, to_tag=self.dialog.local_tag, extra=extra, body=body)
        self.endpoint.respond(tx, ok)

    def _cancel_run(self) -> None:
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

    def _schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the call's life ---------------------------------------------------------

    async def serve(self, run: Callable[[Call], Coroutine[Any, Any, RunOutcome]]) -> None:
        """Run the scenario, then make sure the call is over and cleaned up."""
        structlog.contextvars.bind_contextvars(call_id=self.id)
        log.info(
            "call started",
            sip_call_id=self.invite.call_id,
            caller=self.from_user,
            called=self.to_user,
            scenario=self.setup.scenario,
            transport=self.setup.source.transport,
        )
        try:
            # The run is a child task so the caller hanging up can cancel it alone.
            self._run_task = asyncio.get_running_loop().create_task(run(self))
            try:
                self.outcome = await self._run_task
            except asyncio.CancelledError:
                if not self._run_task.cancelled():
                    self._run_task.cancel()  # the server itself is stopping
                    raise
            if not self.ended:
                failed = self.outcome is not None and self.outcome.status == "failed"
                await self.hangup("failed" if failed and not self.answered else "normal_clearing")
        except Exception:
            log.exception("call failed")
            with contextlib.suppress(Exception):
                await self.hangup("failed")
        finally:
            self._end(self.hangup_cause or "normal_clearing", self.hangup_source or "server")
            duration = (self.ended_at or time.time()) - (self.answered_at or self.ended_at or 0)
            log.info(
                "call ended",
                cause=self.hangup_cause,
                source=self.hangup_source,
                status=self.final_status,
                run=self.outcome.status if self.outcome else "hangup",
                duration=round(duration, 3) if self.answered_at else 0,
                media=self.leg.snapshot(),
            )
            self._on_finished(self)


def _user_of(uri: object) -> str | None:
    user = getattr(uri, "user_unescaped", None)
    return user if isinstance(user, str) else None


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
