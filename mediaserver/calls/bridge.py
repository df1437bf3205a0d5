"""``dial@v1``: ring one or several targets, bridge the caller to the first to answer.

Theory of operation: every target becomes an :class:`OutboundCall` placed at
once (parallel ringing). While they ring, the caller hears ringback as asked:
``tone`` (180 Ringing to an unanswered caller, whose phone plays its own
ringback; a ringback tone played by us once the caller is answered),
``early-media`` (the first target's early media is relayed to the caller, who
gets 183 with SDP) or ``none``. The first target to answer wins; the others
are cancelled (or, if their answer crossed, hung up). The caller is answered
if needed, and the two RTP legs are joined: what one receives goes out of the
other, without decoding when both use the same codec and through a byte
table otherwise (see :meth:`RtpLeg.relay_to`). The bridge lasts until either
side hangs up or ``max_duration`` runs out; the caller's run then continues.
With ``record``, the bridged call is recorded in two channels (the caller on
the left, the callee on the right): the recording listens to both legs, so
they are decoded while the packets themselves still go across untouched.

Only admitted calls run scenarios at all (an authenticated user, a trunk, a
trusted network: see :mod:`mediaserver.sip.access`), so an unauthenticated
caller never makes the server dial out (SPEC section 2).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.actions.callapi import (
    CallEnded,
    DialError,
    DialOptions,
    DialResult,
    MediaError,
    RecordOptions,
)
from mediaserver.actions.vms_detect import VmsVerdict, detect_voicemail
from mediaserver.calls.base import Call, log
from mediaserver.calls.outbound import OutboundCall
from mediaserver.media.leg import Playback
from mediaserver.media.tones import named_tone
from mediaserver.sip.message import Response
from mediaserver.sip.uac import TargetError

if TYPE_CHECKING:
    from mediaserver.calls.inbound import InboundCall
    from mediaserver.calls.media import ActiveRecording

RINGBACK_CHOICES = ("tone", "early-media", "none")
# When several targets fail, the one status that describes the dial best.
STATUS_PRIORITY = ("busy", "no-answer", "failed", "canceled")


class Dialer(Protocol):
    """What places outbound calls (``calls/dialer.py``'s ``Dialer``)."""

    async def originate(
        self,
        target: str,
        *,
        caller_id: str,
        headers: Mapping[str, str],
        parent: Call | None = None,
    ) -> OutboundCall: ...


async def dial(
    call: InboundCall,
    targets: list[str],
    options: DialOptions,
    *,
    placed: list[OutboundCall] | None = None,
) -> DialResult:
    """Ring ``targets``, bridge the first to answer until the bridge ends; every
    call placed is also added to ``placed`` (so that a holder can hang them up)."""
    call.check()
    dialer = call.setup.dialer
    if dialer is None:
        raise DialError("dialling out is not available on this server")
    if options.record and call.services is None:
        raise DialError("record: this server has no recordings folder")
    legs: list[OutboundCall] = []
    statuses: list[str] = []
    for target in targets:
        try:
            leg = await dialer.originate(
                target,
                caller_id=options.caller_id or call.from_user,
                headers=options.headers,
                parent=call,
            )
        except TargetError as exc:
            log.info("cannot dial target", target=target, reason=str(exc))
            statuses.append("failed")
            continue
        legs.append(leg)
        if placed is not None:
            placed.append(leg)
    if not legs:
        return DialResult("failed", 0.0, targets[-1] if targets else None)

    ringback = _Ringback(call, options.ringback)
    for leg in legs:
        leg.on_progress = ringback.on_progress
    await ringback.start()
    try:
        winner = await _first_answer(call, legs, options.timeout, statuses)
    finally:
        ringback.stop()
        for leg in legs:
            leg.on_progress = None
    losers = [leg for leg in legs if leg is not winner]
    await asyncio.gather(*(_drop(leg) for leg in losers), return_exceptions=True)
    if winner is None:
        call.check()
        status = next((s for s in STATUS_PRIORITY if s in statuses), "failed")
        last = legs[-1]
        return DialResult(status, 0.0, last.target, last.final_status)
    if options.vms_detect is None:
        return await _bridge(call, winner, options)
    verdict = await _detect_voicemail(call, winner, options)
    if verdict is None:  # the callee hung up while being asked
        await _drop(winner)
        return DialResult("no-answer", 0.0, winner.target, winner.final_status)
    if verdict.result == "voicemail":
        log.info("voicemail detected, hanging up", callee=winner.target, reason=verdict.reason)
        await _drop(winner)
        return DialResult("voicemail", 0.0, winner.target, winner.final_status, detection=verdict)
    return dataclasses.replace(await _bridge(call, winner, options), detection=verdict)


async def _detect_voicemail(
    call: InboundCall, leg: OutboundCall, options: DialOptions
) -> VmsVerdict | None:
    """Callr's voicemail detection on the callee before the bridge; None when the callee
    hung up meanwhile. The caller hanging up stops it (CallEnded)."""
    assert options.vms_detect is not None
    loop = asyncio.get_running_loop()
    asking = loop.create_task(detect_voicemail(leg, options.vms_detect, options.vms_media))
    try:
        waiters: set[asyncio.Future[Any]] = {asking, call.ended_future}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not asking.done():
            asking.cancel()
            await asyncio.gather(asking, return_exceptions=True)
    if call.ended:
        await _drop(leg)
        raise CallEnded(call.hangup_cause or "caller hung up")
    try:
        return asking.result()
    except CallEnded:
        return None


async def _first_answer(
    call: InboundCall, legs: list[OutboundCall], timeout: float, statuses: list[str]
) -> OutboundCall | None:
    """Place every leg; the first to answer, or None when none did."""
    loop = asyncio.get_running_loop()
    placing = {loop.create_task(leg.place(timeout)): leg for leg in legs}
    try:
        while placing:
            waiters: set[asyncio.Future[Any]] = {*placing, call.ended_future}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if call.ended:
                raise CallEnded(call.hangup_cause or "caller hung up")
            for task in [t for t in placing if t.done()]:
                leg = placing.pop(task)
                status = task.result()
                if status == "answered":
                    return leg
                statuses.append(status)
        return None
    finally:
        for task in placing:
            task.cancel()


async def _drop(leg: OutboundCall) -> None:
    """End a leg that lost the race (or failed), and release it."""
    try:
        if not leg.ended:
            await leg.hangup("normal_clearing")
    finally:
        await leg.leg.home()  # a relay worker's final figures, for the record
        leg.finish()


async def _bridge(call: InboundCall, leg: OutboundCall, options: DialOptions) -> DialResult:
    try:
        if not call.answered:
            await call.answer()
        call.check()
        leg.check()
    except CallEnded:
        await _drop(leg)
        raise
    bridge = Bridge(call, leg)
    bridge.connect()
    started = time.monotonic()
    log.info(
        "bridged", callee=leg.target, callee_call_id=leg.id, transcoding=_transcoding(call, leg)
    )
    recording = _record(call) if options.record else None
    try:
        await bridge.run(options.max_duration)
    finally:
        duration = time.monotonic() - started
        saving = recording.stop() if recording is not None else None
        bridge.close()
        await _drop(bridge.callee)
        call.flush_digits()  # keys pressed during the bridge were for the callee
    leg = bridge.callee
    log.info("bridge ended", duration=round(duration, 3), by=leg.hangup_source)
    saved = await asyncio.shield(saving) if saving is not None else None
    call.check()
    return DialResult("answered", duration, leg.target, leg.final_status, saved)


TRANSFER_RING_TIMEOUT = 30.0  # seconds a transfer target may ring


class Bridge:
    """A caller joined to a callee, until the callee hangs up. The callee may hand
    the caller to someone else (a blind transfer asked for with REFER, see
    transfer.py): the bridge calls them and, once they answer, puts them in the
    callee's place."""

    def __init__(self, caller: InboundCall, callee: OutboundCall) -> None:
        self.caller = caller
        self.callee = callee
        self.transfer: asyncio.Task[None] | None = None  # the callee's transfer under way
        loop = asyncio.get_running_loop()
        self._replaced: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()

    def connect(self) -> None:
        self.caller.leg.relay_to(self.callee.leg)
        self.callee.leg.relay_to(self.caller.leg)
        self.callee.bridge = self

    def disconnect(self) -> None:
        self.caller.leg.relay_to(None)
        self.callee.leg.relay_to(None)
        self.callee.bridge = None

    async def run(self, max_duration: float | None) -> None:
        """Until the callee hangs up or ``max_duration`` seconds have passed. A callee
        may hang up as soon as it has asked for a transfer (RFC 5589 6): the bridge
        then waits for the transfer to succeed or fail."""
        deadline = None if max_duration is None else time.monotonic() + max_duration

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        while True:
            await self.caller.wait_any(
                [self.callee.ended_future, self._replaced], left(), wake_on_digit=False
            )
            transfer = self.transfer
            if not self._replaced.done() and self.callee.ended and transfer is not None:
                await self.caller.wait_any([transfer, self._replaced], left(), wake_on_digit=False)
            if not self._replaced.done():
                return
            self._replaced = asyncio.get_running_loop().create_future()

    def close(self) -> None:
        """The bridge is over: unjoin, and let a transfer under way know."""
        self.disconnect()
        if not self._closed.done():
            self._closed.set_result(None)

    async def replace_callee(self, target: str) -> int:
        """Call ``target`` and, once it answers, put it in the callee's place; the
        SIP status of the attempt (200 when the new callee is in), for the NOTIFY."""
        dialer = self.caller.setup.dialer
        if dialer is None or self._closed.done():
            return 503
        try:
            new = await dialer.originate(
                target, caller_id=self.caller.from_user, headers={}, parent=self.caller
            )
        except TargetError as exc:
            log.info("transfer target refused", target=target, reason=str(exc))
            return 404
        placing = asyncio.ensure_future(new.place(TRANSFER_RING_TIMEOUT))
        waiters: set[asyncio.Future[Any]] = {placing, self._closed}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not placing.done():
            placing.cancel()
        if self._closed.done() or placing.cancelled() or placing.result() != "answered":
            await _drop(new)
            return 487 if self._closed.done() else (new.final_status or 480)
        self.disconnect()
        self.callee = new
        self.connect()
        if not self._replaced.done():
            self._replaced.set_result(None)
        log.info("bridge transferred", callee=target, callee_call_id=new.id)
        return 200


def _record(call: InboundCall) -> ActiveRecording | None:
    """Record both sides from the moment they are joined (caller left, callee right).
    A recording that cannot start does not stop the bridge: it is logged."""
    try:
        return call.media.open_recording(RecordOptions("dual", "wav"))
    except MediaError as exc:
        log.error("cannot record the bridged call", reason=str(exc))
        return None


def _transcoding(call: InboundCall, leg: OutboundCall) -> bool:
    return call.leg.codec.name != leg.leg.codec.name


class _Ringback:
    """What the caller hears while the targets ring."""

    def __init__(self, call: InboundCall, mode: str) -> None:
        self.call = call
        self.mode = mode
        self._tone: Playback | None = None
        self._early_from: OutboundCall | None = None

    async def start(self) -> None:
        if self.mode == "tone":
            if self.call.answered:
                self._tone = self.call.leg.play(named_tone("ringback"), loop=True)
            else:
                await self.call.ring()  # the caller's phone plays its own ringback

    def on_progress(self, leg: OutboundCall, response: Response) -> None:
        if self.mode != "early-media" or self._early_from is not None:
            return
        if leg.early_media:
            # Relay the first target's early media to the caller, who gets 183 with SDP.
            self._early_from = leg
            self.call.schedule(self.call.progress())
            leg.leg.relay_to(self.call.leg)
        elif not self.call.answered:
            self.call.schedule(self.call.ring())  # ringing without media yet

    def stop(self) -> None:
        if self._tone is not None and self.call.leg.playing is self._tone:
            self.call.leg.stop_playback()
        if self._early_from is not None:
            self._early_from.leg.relay_to(None)
