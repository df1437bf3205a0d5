"""A call, whichever side placed it: what it is, and the CallApi it offers its runs.

:class:`Call` implements :class:`~mediaserver.actions.callapi.CallApi` and
reacts to what the user agent passes up; the work is in its parts, one concept
each: ``channel.py`` (the dialog and every request in it), ``digits.py`` (DTMF
type-ahead and waiting), ``playback.py`` (prompts, echo), ``media.py``
(decoded media), ``renegotiation.py`` (the peer's re-INVITEs and UPDATEs,
hold), ``session_link.py`` (the INVITE session core: refresh, expiry, the ACK
of our 2xx) and ``run_owner.py`` (the runs, background tasks, the release).
Answering an INVITE and placing one are in ``inbound.py`` and ``outbound.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from mediaserver.actions.callapi import (
    CallEnded,
    ConferenceEntry,
    ConferenceOptions,
    ConferenceResult,
    DialOptions,
    DialResult,
    Pcm,
    RecordingResult,
    RecordOptions,
    VoicemailOptions,
)
from mediaserver.calls.channel import DialogChannel
from mediaserver.calls.digits import DigitBuffer
from mediaserver.calls.fork import start_fork, stop_fork
from mediaserver.calls.media import CallMedia
from mediaserver.calls.playback import echo, play
from mediaserver.calls.queues import (
    CallQueues,
    bridge_next,
    enqueue,
    leave,
    offer,
    release_next,
)
from mediaserver.calls.renegotiation import Renegotiation
from mediaserver.calls.run_owner import RunOwner
from mediaserver.calls.session_driver import SessionDriver
from mediaserver.calls.session_link import SessionLink
from mediaserver.calls.transfer import transfer
from mediaserver.log import get_logger
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.invite_session import (
    Event,
    InviteSession,
    ProvisionalAcknowledged,
    ProvisionalTimedOut,
)
from mediaserver.sip.message import Request, Response
from mediaserver.sip.sdp import SessionDescription
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
        self.srtp = "optional"  # what a re-offer may use (rtp.srtp; sip/offer_answer.py)
        self.early_media_sent = False  # progress@v1 sent our SDP in a 183: media before answer
        self.session_timer: SessionTimer | None = None
        self.peer_allow: list[str] = []  # the methods the peer said it allows
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
        self.dial_status: str | None = None  # for a call placed by dial@v1: how it went
        self.from_name: str | None = None  # the From display name
        self.cli_pres: str | None = None  # Callr's cli_pres (sip/presentation.py)
        # The run's customer_field variable (Callr's CDR field), kept by the run.
        self.customer_field: str | None = None
        self.cdr_parent: Call | None = None  # the call that dialled this one, for its field
        self.journal: CallJournal | None = None
        self._services: CallServices | None = None
        self.bridge: Bridge | None = None  # the dial@v1 bridge this call is the callee of
        self.refer_updates: asyncio.Queue[int] | None = None  # our REFER's NOTIFY statuses
        # Told of what happens to the call's media (call.fork.started...): type, fields.
        self.media_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.digits = DigitBuffer(self._ended, self.id)
        leg.on_digit = self.digits.deliver
        # Told of every key as it arrives (Call Control's call.dtmf.received).
        self.digit_listeners = self.digits.listeners
        self.session_link = SessionLink(self)  # the session core, once there is a dialog
        self.renegotiation = Renegotiation(self)
        self._on_finished = on_finished
        self.run_owner: RunOwner[Call] = RunOwner(self, self._released)

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

    @property
    def session_driver(self) -> SessionDriver | None:
        """The dialog's session rules (sip/invite_session.py), once there is a dialog."""
        return self.session_link.driver

    @property
    def awaiting_ack(self) -> dict[int, ServerTransaction]:
        """Our 2xx to INVITEs not acknowledged yet, by CSeq number."""
        return self.session_link.awaiting_ack

    @property
    def on_hold(self) -> bool:
        """The peer put us on hold (it stopped receiving)."""
        return self.renegotiation.on_hold

    @property
    def outcome(self) -> RunOutcome | None:
        """How the call's last run ended."""
        return self.run_owner.outcome

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

    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        """Call ``targets`` and bridge the first to answer (see bridge.py)."""
        raise CallEnded("this call cannot dial")

    async def stop_dial(self) -> bool:
        return False  # only an inbound call dials (InboundCall)

    # -- CallApi: media and digits ---------------------------------------------

    async def play(self, audio: Pcm, stop_keys: str = "") -> str | None:
        return await play(self, audio, stop_keys)

    async def echo(self, seconds: float | None) -> None:
        await echo(self, seconds)

    async def next_digit(self, timeout: float | None) -> str | None:
        self.check()
        if not self.digits:
            await self.wait_any([], timeout)
            self.check()
        return self.digits.pop()

    def flush_digits(self) -> None:
        self.digits.clear()

    async def wait_any(
        self,
        futures: list[asyncio.Future[Any]],
        timeout: float | None,
        *,
        wake_on_digit: bool = True,
    ) -> None:
        """Wait until one of ``futures`` is done, a digit arrives (unless told
        not to), the call ends, or ``timeout`` seconds pass."""
        await self.digits.wait_any(futures, timeout, wake_on_digit=wake_on_digit)

    def deliver_digit(self, key: str) -> None:
        """A key pressed, however it arrived (RFC 4733, SIP INFO, in-band)."""
        self.digits.deliver(key)

    async def _ensure_media(self, *, early: bool = True) -> None:
        """Media actions answer the call first when needed; after progress@v1 they
        are early media instead, heard before the answer, unless ``early`` is False
        (a voicemail or a conference always answers)."""
        self.check()
        if not self.answered and not (early and self.early_media_sent):
            await self.answer()

    # -- CallApi: transfer and queues ------------------------------------------

    async def transfer(self, target: str, mode: str | None) -> str:
        return await transfer(self, target, mode)

    async def enqueue(
        self,
        queue: str,
        *,
        hold_audio: Pcm,
        max_wait: float | None,
        announce: Callable[[int], Awaitable[Pcm]] | None,
        max_calls: int | None = None,
        wait: bool = True,
    ) -> str:
        if not wait:
            if not self.answered:
                await self.answer()
            return offer(self, self._queues, queue, max_calls=max_calls)
        return await enqueue(
            self,
            self._queues,
            queue,
            hold_audio=hold_audio,
            max_wait=max_wait,
            announce=announce,
            max_calls=max_calls,
        )

    async def bridge_next(
        self, queue: str, on_taken: Callable[[dict[str, Any]], None] | None = None
    ) -> str:
        def taken(caller: Call) -> None:
            if on_taken is not None:
                on_taken(caller.info)

        return await bridge_next(self, self._queues, queue, taken)

    def release_next(self, queue: str) -> str:
        return release_next(self._queues, queue)

    def queue_size(self, queue: str) -> int:
        found = self._queues.get(queue)
        return 0 if found is None else found.size()

    def leave_queue(self, queue: str) -> str:
        return leave(self, self._queues, queue)

    @property
    def _queues(self) -> CallQueues:
        # A call without services (a unit test's) has a queue of its own.
        return self.services.queues if self.services is not None else CallQueues()

    # -- CallApi: decoded media (mediaserver.calls.media, made on first use) --------

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

    async def discard_recording(self, recording_id: str) -> bool:
        return await self.media.discard_recording(recording_id)

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        return await self.media.conference(options)

    def conference_entry(
        self, name: str, *, moderator: bool, wait_for_moderator: bool
    ) -> ConferenceEntry:
        return self.media.conference_entry(
            name, moderator=moderator, wait_for_moderator=wait_for_moderator
        )

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
        await self.channel.bye(reason)

    # -- events from the user agent and the session core ----------------------------

    def on_remote_bye(self) -> None:
        source = "caller" if self.direction == "inbound" else "callee"
        self.end("normal_clearing", source)
        self.cancel_run()

    def on_ack(self, ack: Request) -> None:
        """An ACK for one of our 2xx to an INVITE (session_link.py)."""
        self.session_link.on_ack(ack)

    def on_reinvite(self, tx: ServerTransaction, request: Request) -> None:
        """A re-INVITE or UPDATE in the dialog (renegotiation.py)."""
        self.renegotiation.on_reinvite(tx, request)

    def session_timer_headers(self, request: Request) -> list[tuple[str, str]]:
        """The session-timer headers of our 2xx to a refresh (RFC 4028 9)."""
        return self.renegotiation.session_timer_headers()

    def attach_session(
        self, invite: Request, *, transaction: ServerTransaction | None, owns_call_id: bool
    ) -> InviteSession:
        """Give the dialog its session core (session_link.py)."""
        return self.session_link.attach(invite, transaction=transaction, owns_call_id=owns_call_id)

    def on_session_event(self, event: Event) -> None:
        """What the session core asks of the call (session_link.py)."""
        self.session_link.on_event(event)

    def on_provisional_event(self, event: ProvisionalAcknowledged | ProvisionalTimedOut) -> None:
        """A reliable provisional was PRACKed or timed out (inbound calls)."""

    def on_ack_timeout(self) -> None:
        """No ACK for our 2xx: RFC 3261 13.3.1.4 says to end the dialog with BYE."""
        self.session_link.ack_timed_out()

    def on_stray_response(self, response: Response) -> None:
        """A response no transaction claimed (outbound calls re-ACK a 2xx)."""

    # -- the call's life (run_owner.py) ----------------------------------------------

    def cancel_run(self) -> None:
        self.run_owner.cancel()

    def schedule(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a coroutine in the background, tied to this call."""
        return self.run_owner.schedule(coro)

    async def serve(self, run: RunFactory) -> None:
        """Run the scenario, then make sure the call is over and cleaned up; a run
        injected meanwhile (:meth:`inject`) replaces the current one."""
        await self.run_owner.serve(run)

    def inject(self, run: RunFactory) -> bool:
        """Stop the current run and go on with ``run`` (the API's injected actions);
        False when the call has no run to replace."""
        return self.run_owner.inject(run)

    def finish(self) -> None:
        """The call is over for good: log its summary and release it (once)."""
        self.run_owner.finish()

    def set_customer_field(self, value: str | None) -> None:
        self.customer_field = value

    @property
    def cdr_customer_field(self) -> str | None:
        """The field this call's record gets: its own run's, else its dialler's."""
        if self.customer_field is not None or self.cdr_parent is None:
            return self.customer_field
        return self.cdr_parent.customer_field

    def _released(self, call: Call) -> None:
        if self.journal is not None:
            self.journal.call_ended(self, dial_status=self.dial_status)
        self._on_finished(self)


def user_of(uri: object) -> str | None:
    user = getattr(uri, "user_unescaped", None)
    return user if isinstance(user, str) else None
