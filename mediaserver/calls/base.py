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
import secrets
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import structlog

from mediaserver.actions.callapi import (
    CallEnded,
    ConferenceOptions,
    ConferenceResult,
    DialError,
    DialOptions,
    DialResult,
    Pcm,
    RecordingResult,
    RecordOptions,
    VoicemailOptions,
)
from mediaserver.calls.causes import q850_cause
from mediaserver.calls.channel import DialogChannel
from mediaserver.calls.fork import start_fork, stop_fork
from mediaserver.calls.media import CallMedia
from mediaserver.calls.queues import CallQueues, bridge_next, enqueue
from mediaserver.calls.session_driver import SessionDriver
from mediaserver.calls.transfer import refer
from mediaserver.log import get_logger
from mediaserver.media.g711 import CODECS
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.invite_session import (
    AckTimedOut,
    Event,
    InviteSession,
    ProvisionalAcknowledged,
    ProvisionalTimedOut,
    RefreshDue,
    RetryDue,
    SessionExpired,
)
from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.offer_answer import AudioAnswer, NoAcceptableMedia, negotiate_answer
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.store.cdrs import rfc3339
from mediaserver.store.db import from_ms

if TYPE_CHECKING:
    from mediaserver.actions.runner import RunOutcome
    from mediaserver.calls.bridge import Bridge
    from mediaserver.calls.services import CallServices
    from mediaserver.journal import CallJournal

log = get_logger("call")

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
        # A NAT'd phone's media comes from its signalling's host (media/latching.py).
        leg.signalling_from(peer.host)
        self.local_host = local_host
        self.user_agent = user_agent
        self.sip_call_id = sip_call_id
        self.from_user = from_user
        self.to_user = to_user
        self.dialog_headers = dialog_headers  # Contact, Allow, Server on our dialog messages
        self.codecs: tuple[str, ...] = ("PCMU", "PCMA")  # what we accept, preferred first
        self.on_hold = False  # the peer put us on hold (it stopped receiving)
        self.early_media_sent = False  # progress@v1 sent our SDP in a 183: media before answer
        self.session_timer: SessionTimer | None = None
        self.peer_allow: list[str] = []  # the methods the peer said it allows
        # Our 2xx to INVITEs not acknowledged yet, by CSeq number.
        self.awaiting_ack: dict[int, ServerTransaction] = {}
        # The dialog's session rules (sip/invite_session.py), once there is a dialog.
        self.session_driver: SessionDriver | None = None
        # The dialog and every request sent in it (calls/channel.py).
        self.channel = DialogChannel(
            endpoint,
            peer,
            local_host=local_host,
            user_agent=user_agent,
            contact=dict(dialog_headers).get("Contact"),
        )
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
        self._services: CallServices | None = None
        self.bridge: Bridge | None = None  # the dial@v1 bridge this call is the callee of
        self.refer_updates: asyncio.Queue[int] | None = None  # our REFER's NOTIFY statuses
        self._on_finished = on_finished
        self._digits: deque[str] = deque(maxlen=MAX_BUFFERED_DIGITS)
        # Told of every key as it arrives (Call Control's call.dtmf.received).
        self.digit_listeners: list[Callable[[str], None]] = []
        # Told of what happens to the call's media (call.fork.started...): type, fields.
        self.media_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._wakers: list[asyncio.Future[None]] = []
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._run_task: asyncio.Task[RunOutcome] | None = None
        self._injected: RunFactory | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._finished = False
        leg.on_digit = self._on_digit

    @property
    def dialog(self) -> Dialog | None:
        """The call's dialog, once it exists (kept by its channel)."""
        return self.channel.dialog

    @dialog.setter
    def dialog(self, dialog: Dialog | None) -> None:
        self.channel.dialog = dialog

    @property
    def services(self) -> CallServices | None:
        """What the server lends the call (set by the user agent)."""
        return self._services

    @services.setter
    def services(self, services: CallServices | None) -> None:
        self._services = services
        if services is not None:
            self.leg.learn_sources(services.learn_source)  # rtp.learn_source

    # -- CallApi: state --------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        # Milliseconds rounded as the call record stores them, so $call.started is the
        # record's "started" to the millisecond.
        started = round(self.started_at * 1000)
        answered = round(self.answered_at * 1000) if self.answered_at else None
        return {
            "id": self.id,
            "from": self.from_user,
            "to": self.to_user,
            "direction": self.direction,
            "sip_call_id": self.sip_call_id,
            "started_at": started,
            "answered_at": answered,
            # The same moments as the API and call records write them (RFC 3339, UTC).
            "started": rfc3339(from_ms(started)),
            "answered": rfc3339(from_ms(answered)) if answered is not None else None,
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

    # -- transfer and queues --------------------------------------------------------

    async def transfer(self, target: str, mode: str | None) -> str:
        self.check()
        is_uri = target.lower().startswith(("sip:", "sips:"))
        allows_refer = "REFER" in {m.strip().upper() for m in self.peer_allow}
        if mode is None:
            mode = "refer" if is_uri and allows_refer and self.answered else "bridge"
        if mode == "refer":
            if not is_uri:
                raise DialError("transfer by REFER needs a SIP URI target")
            if not self.answered:
                await self.answer()
            return await refer(self, target)
        result = await self.dial([target], DialOptions())
        if result.status != "answered":
            return "failed"
        await self.hangup("normal_clearing")
        return "transferred"

    async def enqueue(
        self,
        queue: str,
        *,
        hold_audio: Pcm,
        max_wait: float | None,
        announce: Callable[[int], Awaitable[Pcm]] | None,
    ) -> str:
        queues = self.services.queues if self.services is not None else CallQueues()
        return await enqueue(
            self, queues, queue, hold_audio=hold_audio, max_wait=max_wait, announce=announce
        )

    async def bridge_next(self, queue: str) -> str:
        queues = self.services.queues if self.services is not None else CallQueues()
        return await bridge_next(self, queues, queue)

    async def _ensure_media(self, *, early: bool = True) -> None:
        """Media actions answer the call first when needed; after progress@v1 they
        are early media instead, heard before the answer, unless ``early`` is False
        (a voicemail or a conference always answers)."""
        self.check()
        if not self.answered and not (early and self.early_media_sent):
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

    def deliver_digit(self, key: str) -> None:
        """A key pressed, however it arrived (RFC 4733, SIP INFO, in-band)."""
        self._on_digit(key)

    def _on_digit(self, key: str) -> None:
        # Runs in datagram_received, outside the call's task: name the call explicitly.
        log.info("dtmf received", key=key, call_id=self.id)
        self._digits.append(key)
        for waker in self._wakers:
            if not waker.done():
                waker.set_result(None)
        for listener in self.digit_listeners:
            listener(key)

    # == CallApi: decoded media =====================================================
    # Keys out, recordings, voicemail, conferences and background audio; the work is
    # in mediaserver.calls.media (CallMedia), made on first use.

    _media: CallMedia | None = None

    @property
    def media(self) -> CallMedia:
        if self._media is None:
            self._media = CallMedia(self)
        return self._media

    async def send_dtmf(self, keys: str, duration: float) -> None:
        await self.media.send_dtmf(keys, duration)

    async def start_recording(self, options: RecordOptions) -> RecordingResult:
        return await self.media.start_recording(options)

    async def stop_recording(self) -> RecordingResult:
        return await self.media.stop_recording()

    async def pause_recording(self, paused: bool) -> RecordingResult:
        return await self.media.pause_recording(paused)

    async def voicemail(self, options: VoicemailOptions) -> RecordingResult:
        return await self.media.voicemail(options)

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        return await self.media.conference(options)

    async def play_background(self, audio: Pcm, repeat: int) -> None:
        await self.media.play_background(audio, repeat)

    def stop_audio(self) -> bool:
        return self._media.stop_audio() if self._media is not None else False

    async def listen_levels(self, seconds: float, listener: Callable[[float], bool]) -> None:
        await self.media.listen_levels(seconds, listener)

    async def listen_frames(self, seconds: float, listener: Callable[[Pcm], bool]) -> None:
        await self.media.listen_frames(seconds, listener)

    def fork_start(
        self, *, rx: str | None = None, tx: str | None = None, target: str | None = None,
        stream_type: str = "raw", call_leg_id: str | None = None,
    ) -> bool:  # fmt: skip
        return start_fork(self, rx=rx, tx=tx, target=target, stream_type=stream_type,
                          call_leg_id=call_leg_id)  # fmt: skip

    def fork_stop(self) -> None:
        stop_fork(self)  # calls/fork.py

    # == end of decoded media =======================================================

    # -- ending --------------------------------------------------------------------

    def end(self, cause: str, source: str) -> None:
        """Mark the call over (idempotent): media stops, waiters wake up."""
        if self.ended:
            return
        self.hangup_cause = cause
        self.hangup_source = source
        self.ended_at = time.time()
        if self.session_driver is not None:
            self.session_driver.close()
        if self.dialog is not None:
            self.dialog.terminate()
        self._ended.set_result(None)
        self.leg.close()

    async def _send_bye(self, reason: str) -> None:
        if self.dialog is None:
            return
        reason_header = ("Reason", f'Q.850;cause={q850_cause(reason)};text="{reason}"')  # RFC 3326
        with contextlib.suppress(asyncio.TimeoutError):
            bye = self.channel.request("BYE", [reason_header])
            response = await asyncio.wait_for(bye, BYE_WAIT)
            log.debug("bye answered", status=response.status if response else None)

    # -- events from the user agent ----------------------------------------------

    def on_remote_bye(self) -> None:
        source = "caller" if self.direction == "inbound" else "callee"
        self.end("normal_clearing", source)
        self.cancel_run()

    def on_ack(self, ack: Request) -> None:
        """An ACK for one of our 2xx to an INVITE: it stops that 2xx's retransmission.
        The ACK carries the CSeq number of the INVITE it acknowledges (RFC 3261
        13.2.2.4), which tells a re-INVITE's from the first INVITE's."""
        tx = self.awaiting_ack.pop(ack.cseq[0], None)
        if tx is not None:
            self.endpoint.layer.ack_received(tx, asyncio.get_running_loop().time())
        if self.session_driver is not None:
            session = self.session_driver.session
            self.session_driver.apply(lambda now: session.handle_ack(ack, now))

    def on_reinvite(self, tx: ServerTransaction, request: Request) -> None:
        """A re-INVITE or UPDATE in the dialog (RFC 3261 14.2, RFC 3311): a new offer
        is negotiated on the same port, and the leg follows it (hold when the peer
        stops receiving, resume when it comes back); no offer (a session refresh)
        gets our current description. When the offer is unusable the call goes on
        as it was (488, RFC 3261 14.2). The session core answers glare first (491 or
        500, RFC 3261 14.2, RFC 3311 5.2)."""
        driver = self.session_driver
        if driver is not None and not driver.handle_request(tx, request):
            return
        if self.local_sdp is None or self.dialog is None:
            self._answer_offer(tx, request, make_response(request, 488))
            return
        if request.method == "UPDATE" and not request.body:
            # RFC 3311 / RFC 4028: an UPDATE without an offer just refreshes the session.
            extra = [*self.dialog_headers, *self.session_timer_headers(request)]
            ok = make_response(request, 200, to_tag=self.dialog.local_tag, extra=extra)
            self._answer_offer(tx, request, ok)
            return
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer = negotiate_answer(
                    offer,
                    codecs=self._codec_preference(),
                    local_address=self.local_host,
                    local_port=self.leg.local_port,
                    session_id=self.local_sdp.origin.session_id,
                    session_version=self.local_sdp.origin.session_version,
                    user_agent=self.user_agent,
                )
            except SdpError as exc:
                status = 488 if isinstance(exc, NoAcceptableMedia) else 400
                response = make_response(request, status, f"Bad SDP offer: {exc}"[:100])
                self._answer_offer(tx, request, response)
                return
            self._apply_answer(answer)
        extra = [*self.dialog_headers, ("Content-Type", "application/sdp")]
        extra += self.session_timer_headers(request)
        body = self.local_sdp.serialize().encode()
        ok = make_response(request, 200, to_tag=self.dialog.local_tag, extra=extra, body=body)
        if request.method == "INVITE":
            self.awaiting_ack[request.cseq[0]] = tx
        self._answer_offer(tx, request, ok)

    def _answer_offer(self, tx: ServerTransaction, request: Request, response: Response) -> None:
        """Send our final response to a re-INVITE or UPDATE and tell the session (its 2xx
        refreshes the session timer, RFC 4028 10)."""
        self.endpoint.respond(tx, response)
        if self.session_driver is not None:
            session = self.session_driver.session
            self.session_driver.apply(lambda now: session.answer_offer(request, response, now))

    def _codec_preference(self) -> tuple[str, ...]:
        """The codec in use first, so a re-offer does not switch codecs needlessly."""
        current = self.leg.codec.name
        return (current, *(c for c in self.codecs if c != current))

    def _apply_answer(self, answer: AudioAnswer) -> None:
        """Point the leg at a renegotiated description and keep our new answer, its
        version raised only when it differs from the last one (RFC 3264 8)."""
        previous = self.local_sdp
        sdp = answer.sdp
        if previous is not None and _without_version(sdp) != _without_version(previous):
            sdp.origin.session_version = previous.origin.session_version + 1
        self.local_sdp = sdp
        was_held = self.on_hold
        self.on_hold = answer.on_hold
        self.leg.update_remote(
            (answer.remote_address, answer.remote_port),
            CODECS[answer.codec],
            answer.payload_type,
            answer.telephone_event_pt,
            hold=answer.on_hold,
        )
        if answer.on_hold != was_held:
            log.info("call held" if answer.on_hold else "call resumed", call_id=self.id)

    def session_timer_headers(self, request: Request) -> list[tuple[str, str]]:
        """The session-timer headers of our 2xx to a refresh (RFC 4028 9)."""
        return [] if self.session_timer is None else self.session_timer.headers()

    # -- the session core (sip/invite_session.py) --------------------------------

    def attach_session(
        self, invite: Request, *, transaction: ServerTransaction | None, owns_call_id: bool
    ) -> InviteSession:
        """Give the dialog its session core, paced by the server's configured timers;
        the INVITE transaction resends our 2xx and times its ACK out (RFC 6026 7.1)."""
        session = InviteSession(
            invite,
            timers=self.endpoint.layer.timers,
            session_timer=self.session_timer,
            owns_call_id=owns_call_id,
            transaction_awaits_ack=True,
        )
        self.session_driver = SessionDriver(
            session, self.endpoint, invite_transaction=transaction, on_event=self.on_session_event
        )
        return session

    def on_session_event(self, event: Event) -> None:
        """What the session core asks of the call."""
        if isinstance(event, RefreshDue | RetryDue):
            self.schedule(self._refresh_session())
        elif isinstance(event, SessionExpired) and not self.ended:
            log.info("session expired; hanging up", call_id=self.id)
            self.schedule(self.hangup("session_expired"))
        elif isinstance(event, AckTimedOut):
            self.on_ack_timeout()
        elif isinstance(event, ProvisionalAcknowledged | ProvisionalTimedOut):
            self.on_provisional_event(event)

    def on_provisional_event(self, event: ProvisionalAcknowledged | ProvisionalTimedOut) -> None:
        """A reliable provisional was PRACKed or timed out (inbound calls)."""

    def on_ack_timeout(self) -> None:
        """No ACK for our 2xx: RFC 3261 13.3.1.4 says to end the dialog with BYE."""
        if not self.ended:
            log.info("no ACK for 200 OK; hanging up", call_id=self.id)
            self.schedule(self.hangup("failed"))

    async def _refresh_session(self) -> None:
        """One refresh (RFC 4028 9): UPDATE without SDP when the peer allows it, else a
        re-INVITE with our current description, acknowledged on 2xx; the session core
        says when, and what its response means."""
        driver = self.session_driver
        if self.ended or self.dialog is None or driver is None or self.session_timer is None:
            return
        session = driver.session
        allow = {m.strip().upper() for m in self.peer_allow}
        method = "UPDATE" if "UPDATE" in allow else "INVITE"
        if not driver.apply(lambda now: session.send_offer(method, now)):
            return  # an offer is pending: its answer refreshes the session
        headers = [
            ("Session-Expires", f"{self.session_timer.interval};refresher=uas"),
            ("Supported", "timer"),
        ]
        body = b""
        if method == "INVITE" and self.local_sdp is not None:
            body = self.local_sdp.serialize().encode()
        response = await self.channel.request(method, headers, body, content_type="application/sdp")
        if method == "INVITE" and response is not None and 200 <= response.status < 300:
            self.channel.ack()
        status = response.status if response is not None else None
        if status is None or status in (408, 481):
            log.info("session refresh failed; hanging up", call_id=self.id, status=status)
        driver.apply(lambda now: session.handle_response(status, now))

    def on_stray_response(self, response: Response) -> None:
        """A response no transaction claimed (outbound calls re-ACK a 2xx)."""

    def cancel_run(self) -> None:
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()

    def schedule(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a coroutine in the background, tied to this call."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

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


def _without_version(sdp: SessionDescription) -> str:
    """An SDP's text with the origin's session version blanked out."""
    lines = sdp.serialize().split("\r\n")
    return "\r\n".join(line for line in lines if not line.startswith("o="))


def user_of(uri: object) -> str | None:
    user = getattr(uri, "user_unescaped", None)
    return user if isinstance(user, str) else None
