"""What every call has, whichever side placed it: a dialog, an RTP leg, DTMF.

:class:`Call` implements the media half of
:class:`~mediaserver.actions.callapi.CallApi` (play, echo, digits), hanging
up with BYE, the reaction to the peer's BYE, and :meth:`Call.serve`, which
runs a scenario and always ends the call cleanly. The direction-specific
parts (answering an INVITE, placing one) live in ``inbound.py`` and
``outbound.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import string
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import structlog

from mediaserver.actions.callapi import CallEnded, DialOptions, DialResult, Pcm
from mediaserver.log import get_logger
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.sdp import SessionDescription
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.uri import SipUri

if TYPE_CHECKING:
    from mediaserver.actions.runner import RunOutcome
    from mediaserver.journal import CallJournal

log = get_logger("call")

# RFC 3326 Reason header: the Q.850 cause of each hangup reason.
Q850_CAUSES = {"normal_clearing": 16, "busy": 17, "no_answer": 19, "declined": 21, "failed": 41}
MAX_BUFFERED_DIGITS = 64
BYE_WAIT = 5.0

_ID_ALPHABET = string.ascii_lowercase + string.digits

RunFactory = Callable[["Call"], Coroutine[Any, Any, "RunOutcome"]]
"""Starts a run on a call: the coroutine of its execution."""


def new_call_id() -> str:
    """A call id as the API shows it: 8 characters of [a-z0-9]."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


class Call:
    """The parts of a call that do not depend on who placed it."""

    direction = "inbound"

    def __init__(
        self,
        *,
        endpoint: SipEndpoint,
        leg: RtpLeg,
        peer: Peer,
        local_host: str,
        user_agent: str,
        sip_call_id: str,
        from_user: str,
        to_user: str,
        dialog_headers: list[tuple[str, str]],
        on_finished: Callable[[Call], None],
    ) -> None:
        self.id = new_call_id()
        self.endpoint = endpoint
        self.leg = leg
        self.peer = peer  # where the dialog's first request came from or went to
        self.local_host = local_host
        self.user_agent = user_agent
        self.sip_call_id = sip_call_id
        self.from_user = from_user
        self.to_user = to_user
        self.dialog_headers = dialog_headers  # Contact, Allow, Server on our dialog messages
        self.dialog: Dialog | None = None
        self.local_sdp: SessionDescription | None = None  # what we last told the peer
        self.scenario: str | None = None
        self.started_at = time.time()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: str | None = None
        self.hangup_source: str | None = None
        self.final_status: int | None = None
        self.outcome: RunOutcome | None = None
        self.dial_status: str | None = None  # for a call placed by dial@v1: how it went
        self.journal: CallJournal | None = None
        self._on_finished = on_finished
        self._digits: deque[str] = deque(maxlen=MAX_BUFFERED_DIGITS)
        self._wakers: list[asyncio.Future[None]] = []
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._run_task: asyncio.Task[RunOutcome] | None = None
        self._injected: RunFactory | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._finished = False
        leg.on_digit = self._on_digit

    # -- CallApi: state --------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.from_user,
            "to": self.to_user,
            "direction": self.direction,
            "sip_call_id": self.sip_call_id,
            "started_at": int(self.started_at * 1000),
            "answered_at": int(self.answered_at * 1000) if self.answered_at else None,
            "headers": self.headers(),
        }

    def headers(self) -> dict[str, str]:
        """The SIP headers of the request that set the call up (first value of each)."""
        return {}

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def ended(self) -> bool:
        return self._ended.done()

    @property
    def ended_future(self) -> asyncio.Future[None]:
        return self._ended

    def mark_answered(self) -> None:
        """The call is answered now (the first time only)."""
        if self.answered_at is None:
            self.answered_at = time.time()
            if self.journal is not None:
                self.journal.call_answered(self)

    def check(self) -> None:
        """Raise CallEnded when the call is gone."""
        if self.ended:
            raise CallEnded(self.hangup_cause or "call ended")

    # -- CallApi: direction-specific, overridden -------------------------------

    async def ring(self) -> None:
        self.check()

    async def progress(self) -> None:
        self.check()

    async def answer(self) -> None:
        self.check()

    async def reject(self, reason: str) -> None:
        self.check()
        raise ValueError("reject@v1: only an inbound call that is not answered can be rejected")

    async def hangup(self, reason: str = "normal_clearing") -> None:
        if self.ended:
            return
        self.end(reason, "server")
        if self.answered:
            await self._send_bye(reason)
        else:
            await self._abandon(reason)

    async def _abandon(self, reason: str) -> None:
        """End a call that was never answered (a final response, or CANCEL)."""

    # -- CallApi: media and digits ---------------------------------------------

    async def play(self, audio: Pcm, stop_keys: str = "") -> str | None:
        await self._ensure_media()
        key = self._buffered_key(stop_keys)
        if key is not None:
            return key  # type-ahead: a key pressed before the prompt skips it
        playback = self.leg.play(audio)
        try:
            while True:
                await self.wait_any([playback.done], None)
                self.check()
                key = self._buffered_key(stop_keys)
                if key is not None:
                    return key
                if playback.done.done():
                    return None
        finally:
            if not playback.done.done():
                self.leg.stop_playback()

    async def echo(self, seconds: float | None) -> None:
        await self._ensure_media()
        self.leg.set_echo(True)
        try:
            await self.wait_any([], seconds, wake_on_digit=False)
            self.check()
        finally:
            self.leg.set_echo(False)

    async def next_digit(self, timeout: float | None) -> str | None:
        self.check()
        if not self._digits:
            await self.wait_any([], timeout)
            self.check()
        return self._digits.popleft() if self._digits else None

    def flush_digits(self) -> None:
        self._digits.clear()

    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        """Call ``targets`` and bridge the first to answer (see bridge.py)."""
        raise CallEnded("this call cannot dial")

    async def _ensure_media(self) -> None:
        """Media actions answer the call first when needed."""
        self.check()
        if not self.answered:
            await self.answer()

    def _buffered_key(self, stop_keys: str) -> str | None:
        for key in self._digits:
            if key in stop_keys:
                return key
        return None

    async def wait_any(
        self,
        futures: list[asyncio.Future[Any]],
        timeout: float | None,
        *,
        wake_on_digit: bool = True,
    ) -> None:
        """Wait until one of ``futures`` is done, a digit arrives (unless told
        not to), the call ends, or ``timeout`` seconds pass."""
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

    # -- ending --------------------------------------------------------------------

    def end(self, cause: str, source: str) -> None:
        """Mark the call over (idempotent): media stops, waiters wake up."""
        if self.ended:
            return
        self.hangup_cause = cause
        self.hangup_source = source
        self.ended_at = time.time()
        if self.dialog is not None:
            self.dialog.terminate()
        self._ended.set_result(None)
        self.leg.close()

    async def _send_bye(self, reason: str) -> None:
        if self.dialog is None:
            return
        via = self.endpoint.new_via(self.peer.transport, self.local_host)
        bye = self.dialog.create_request("BYE", via)
        bye.headers.add("Reason", f'Q.850;cause={Q850_CAUSES.get(reason, 16)};text="{reason}"')
        bye.headers.add("User-Agent", self.user_agent)
        with contextlib.suppress(asyncio.TimeoutError):
            response = await asyncio.wait_for(
                self.endpoint.request(bye, self.in_dialog_peer()), BYE_WAIT
            )
            log.debug("bye answered", status=response.status if response else None)

    def in_dialog_peer(self) -> Peer:
        """Where in-dialog requests go. Over TCP, the connection the dialog was set
        up on; over UDP, the next hop's address (RFC 3261 12.2.1.1), falling back to
        the original peer when the target is not a literal address."""
        if self.peer.reliable or self.dialog is None:
            return self.peer
        hop = self.dialog.next_hop()
        if isinstance(hop, SipUri) and _is_ip(hop.host):
            return Peer("udp", hop.host.strip("[]"), hop.port or 5060)
        return self.peer

    # -- events from the user agent ----------------------------------------------

    def on_remote_bye(self) -> None:
        source = "caller" if self.direction == "inbound" else "callee"
        self.end("normal_clearing", source)
        self.cancel_run()

    def on_ack(self, ack: Request) -> None:
        """An ACK for our 2xx (inbound calls only)."""

    def on_reinvite(self, tx: ServerTransaction, request: Request) -> None:
        """A session refresh or media change in the dialog: answer with our current
        description, unchanged version (RFC 3264 8); hold and codec changes come
        with the SIP issue."""
        if self.local_sdp is None or self.dialog is None:
            self.endpoint.respond(tx, make_response(request, 488))
            return
        extra = [*self.dialog_headers, ("Content-Type", "application/sdp")]
        body = self.local_sdp.serialize().encode()
        ok = make_response(request, 200, to_tag=self.dialog.local_tag, extra=extra, body=body)
        self.endpoint.respond(tx, ok)

    def on_stray_response(self, response: Response) -> None:
        """A response no transaction claimed (outbound calls re-ACK a 2xx)."""

    def cancel_run(self) -> None:
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

    def schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine in the background, tied to this call."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the call's life -------------------------------------------------------------

    async def serve(self, run: RunFactory) -> None:
        """Run the scenario, then make sure the call is over and cleaned up.

        A run injected meanwhile (:meth:`inject`) replaces the current one; the
        call ends when the last run does."""
        structlog.contextvars.bind_contextvars(call_id=self.id)
        log.info(
            "call started",
            direction=self.direction,
            sip_call_id=self.sip_call_id,
            caller=self.from_user,
            called=self.to_user,
            scenario=self.scenario,
            transport=self.peer.transport,
        )
        try:
            next_run: RunFactory | None = run
            while next_run is not None and not self.ended:
                # The run is a child task so a hang-up or an injection can cancel it alone.
                self._run_task = asyncio.get_running_loop().create_task(next_run(self))
                self._injected = None
                try:
                    self.outcome = await self._run_task
                except asyncio.CancelledError:
                    if not self._run_task.cancelled():
                        self._run_task.cancel()  # the server itself is stopping
                        raise
                next_run = self._injected
            if not self.ended:
                failed = self.outcome is not None and self.outcome.status == "failed"
                await self.hangup("failed" if failed and not self.answered else "normal_clearing")
        except Exception:
            log.exception("call failed")
            with contextlib.suppress(Exception):
                await self.hangup("failed")
        finally:
            self.finish()

    def inject(self, run: RunFactory) -> bool:
        """Stop the current run and go on with ``run`` (the API's injected actions);
        False when the call has no run to replace."""
        if self.ended or self._run_task is None or self._run_task.done():
            return False
        self._injected = run
        self._run_task.cancel()
        return True

    def finish(self) -> None:
        """The call is over for good: log its summary and release it (once)."""
        self.end(self.hangup_cause or "normal_clearing", self.hangup_source or "server")
        if self._finished:
            return
        self._finished = True
        duration = (self.ended_at or time.time()) - (self.answered_at or 0)
        log.info(
            "call ended",
            call_id=self.id,
            direction=self.direction,
            cause=self.hangup_cause,
            source=self.hangup_source,
            status=self.final_status,
            run=self.outcome.status if self.outcome else ("hangup" if self._run_task else None),
            duration=round(duration, 3) if self.answered_at else 0,
            media=self.leg.snapshot(),
        )
        if self.journal is not None:
            self.journal.call_ended(self, dial_status=self.dial_status)
        self._on_finished(self)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def user_of(uri: object) -> str | None:
    user = getattr(uri, "user_unescaped", None)
    return user if isinstance(user, str) else None
