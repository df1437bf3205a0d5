"""The parts a call is composed of, each through the narrow interface it defines.

``DigitBuffer`` (calls/digits.py), ``RunOwner`` (calls/run_owner.py) and
``Renegotiation`` (calls/renegotiation.py) are driven here with small stand-ins
for the call: no sockets, no RTP leg; the SIP and SDP are real, parsed from text.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from mediaserver.actions.runner import RunOutcome
from mediaserver.calls.digits import MAX_BUFFERED_DIGITS, DigitBuffer
from mediaserver.calls.renegotiation import RenegotiatedCall, Renegotiation
from mediaserver.calls.run_owner import RunOwner
from mediaserver.media.g711 import CODECS
from mediaserver.sip.message import Request, Response, parse_message
from mediaserver.sip.offer_answer import make_offer
from mediaserver.sip.sdp import SessionDescription
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer
from tests.support.rawsip import sdp_offer


def outcome(status: str) -> RunOutcome:
    return RunOutcome(status, None, 1, {})  # type: ignore[arg-type]


# -- DigitBuffer ------------------------------------------------------------------------


async def test_keys_are_buffered_in_order_and_consumed_once() -> None:
    digits = DigitBuffer(asyncio.get_running_loop().create_future(), "c1")
    for key in "12#":
        digits.deliver(key)
    assert bool(digits)
    assert [digits.pop(), digits.pop(), digits.pop(), digits.pop()] == ["1", "2", "#", None]
    assert not digits


async def test_a_stop_key_is_found_in_the_buffer_and_left_there() -> None:
    digits = DigitBuffer(asyncio.get_running_loop().create_future(), "c1")
    digits.deliver("5")
    digits.deliver("#")
    assert digits.buffered_key("*#") == "#"
    assert digits.buffered_key("9") is None
    assert digits.pop() == "5"  # type-ahead: the gather that follows still gets the keys


async def test_the_buffer_keeps_the_latest_keys_only() -> None:
    digits = DigitBuffer(asyncio.get_running_loop().create_future(), "c1")
    for i in range(MAX_BUFFERED_DIGITS + 3):
        digits.deliver(str(i % 10))
    assert digits.pop() == "3"  # the three oldest were dropped
    digits.clear()
    assert digits.pop() is None


async def test_a_key_wakes_a_wait_unless_told_not_to() -> None:
    loop = asyncio.get_running_loop()
    digits = DigitBuffer(loop.create_future(), "c1")
    waiting = loop.create_task(digits.wait_any([], None))
    deaf = loop.create_task(digits.wait_any([], None, wake_on_digit=False))
    await asyncio.sleep(0)
    digits.deliver("7")
    await asyncio.wait_for(waiting, 5)
    assert not deaf.done()
    deaf.cancel()


async def test_the_end_of_the_call_or_a_future_wakes_a_wait() -> None:
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    digits = DigitBuffer(ended, "c1")
    other: asyncio.Future[None] = loop.create_future()
    by_future = loop.create_task(digits.wait_any([other], None, wake_on_digit=False))
    await asyncio.sleep(0)
    other.set_result(None)
    await asyncio.wait_for(by_future, 5)
    by_end = loop.create_task(digits.wait_any([], None, wake_on_digit=False))
    await asyncio.sleep(0)
    ended.set_result(None)
    await asyncio.wait_for(by_end, 5)


# -- RunOwner ---------------------------------------------------------------------------


class StandInCall:
    """What the run owner uses of a call."""

    def __init__(self) -> None:
        self.id = "c1"
        self.direction = "inbound"
        self.sip_call_id = "sip-1"
        self.from_user = "alice"
        self.to_user = "bob"
        self.scenario: str | None = "demo"
        self.peer = Peer("udp", "127.0.0.1", 5070)
        self.leg = StandInLeg()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: str | None = None
        self.hangup_source: str | None = None
        self.final_status: int | None = None
        self.hangups: list[str] = []
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    async def hangup(self, reason: str = "normal_clearing") -> None:
        self.hangups.append(reason)
        self.end(reason, "server")

    def end(self, cause: str, source: str) -> None:
        if not self._ended:
            self._ended = True
            self.hangup_cause, self.hangup_source = cause, source


class StandInLeg:
    def snapshot(self) -> dict[str, Any]:
        return {}


def owner() -> tuple[StandInCall, RunOwner[StandInCall], list[StandInCall]]:
    call = StandInCall()
    released: list[StandInCall] = []
    return call, RunOwner(call, released.append), released


async def test_a_run_that_ends_hangs_the_call_up_and_releases_it_once() -> None:
    call, runs, released = owner()

    async def run(c: StandInCall) -> RunOutcome:
        return outcome("completed")

    await runs.serve(run)
    assert call.hangups == ["normal_clearing"]
    assert runs.outcome is not None and runs.outcome.status == "completed"
    runs.finish()  # a second finish releases nothing more
    assert released == [call]


async def test_a_failed_run_on_an_unanswered_call_hangs_up_as_failed() -> None:
    call, runs, _ = owner()

    async def run(c: StandInCall) -> RunOutcome:
        return outcome("failed")

    await runs.serve(run)
    assert call.hangups == ["failed"]


async def test_an_injected_run_replaces_the_current_one() -> None:
    call, runs, released = owner()
    started = asyncio.Event()
    order: list[str] = []

    async def first(c: StandInCall) -> RunOutcome:
        order.append("first")
        started.set()
        await asyncio.sleep(60)
        return outcome("completed")

    async def second(c: StandInCall) -> RunOutcome:
        order.append("second")
        return outcome("completed")

    serving = asyncio.get_running_loop().create_task(runs.serve(first))
    await started.wait()
    assert runs.inject(second)
    await asyncio.wait_for(serving, 5)
    assert order == ["first", "second"]
    assert released == [call]
    assert not runs.inject(second)  # the call is over: nothing to replace


async def test_cancelling_the_run_ends_the_serving_and_releases_the_call() -> None:
    call, runs, released = owner()
    started = asyncio.Event()

    async def run(c: StandInCall) -> RunOutcome:
        started.set()
        await asyncio.sleep(60)
        return outcome("completed")

    serving = asyncio.get_running_loop().create_task(runs.serve(run))
    await started.wait()
    call.end("normal_clearing", "caller")  # the caller hung up
    runs.cancel()
    await asyncio.wait_for(serving, 5)
    assert call.hangups == []  # already over: no hang-up of our own
    assert released == [call]


async def test_background_work_is_kept_until_done() -> None:
    _, runs, _ = owner()
    done = asyncio.Event()

    async def work() -> None:
        done.set()

    task = runs.schedule(work())
    await asyncio.wait_for(task, 5)
    assert done.is_set()


# -- Renegotiation ----------------------------------------------------------------------


class RecordingEndpoint:
    def __init__(self) -> None:
        self.responses: list[Response] = []

    def respond(self, tx: object, response: Response) -> None:
        self.responses.append(response)


class RecordingLeg:
    def __init__(self) -> None:
        self.codec = CODECS["PCMA"]
        self.local_port = 40000
        self.remotes: list[tuple[tuple[str, int], str, bool]] = []
        self.srtp: Any = None

    def secure(self, channel: Any) -> None:
        self.srtp = channel

    def update_remote(
        self,
        address: tuple[str, int],
        codec: Any,
        pt: int,
        te: int | None,
        *,
        hold: bool,
        event_clock: int = 8000,
    ) -> None:
        self.remotes.append((address, codec.name, hold))


class StandInDialog:
    local_tag = "ours"


class RenegotiatingCall:
    """What in-dialog offer/answer uses of a call; no session core (no glare here)."""

    def __init__(self) -> None:
        self.id = "c1"
        self.endpoint = RecordingEndpoint()
        self.leg = RecordingLeg()
        self.local_host = "127.0.0.1"
        self.user_agent = "mediaserver-test"
        self.codecs = ("PCMU", "PCMA")
        self.srtp = "optional"
        self.dialog_headers = [("Contact", "<sip:ms@127.0.0.1>")]
        self.local_sdp: SessionDescription | None = make_offer(
            codecs=("PCMA",), local_address="127.0.0.1", local_port=40000,
            session_id=7, session_version=1,
        )  # fmt: skip
        self.dialog = StandInDialog()
        self.session_timer = None
        self.session_driver = None
        self.awaiting_ack: dict[int, object] = {}


def reinvite(body: str, cseq: int = 2, method: str = "INVITE") -> Request:
    lines = [
        f"{method} sip:ms@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKre{cseq}",
        "From: <sip:alice@127.0.0.1>;tag=theirs",
        "To: <sip:ms@127.0.0.1>;tag=ours",
        "Call-ID: reneg-1",
        f"CSeq: {cseq} {method}",
        "Content-Type: application/sdp",
        f"Content-Length: {len(body)}",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
    assert isinstance(message, Request)
    return message


TX = cast(ServerTransaction, object())


def test_a_reoffer_is_answered_on_the_same_port_its_version_raised_only_on_change() -> None:
    call = RenegotiatingCall()
    parts = Renegotiation(cast(RenegotiatedCall, call))
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8 0 101")))
    [ok] = call.endpoint.responses
    assert ok.status == 200 and b"m=audio 40000 " in ok.body
    assert call.leg.remotes == [(("127.0.0.1", 5004), "PCMA", False)]
    assert call.local_sdp is not None and call.local_sdp.origin.session_version == 2
    assert call.awaiting_ack == {2: TX}  # the 2xx to a re-INVITE awaits its ACK
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8 0 101"), cseq=3))
    assert call.local_sdp.origin.session_version == 2  # the same answer: same version


def test_hold_and_resume_follow_the_offer() -> None:
    call = RenegotiatingCall()
    parts = Renegotiation(cast(RenegotiatedCall, call))
    held = sdp_offer(port=5004, codecs="8").replace("a=sendrecv", "") + "a=sendonly\r\n"
    parts.on_reinvite(TX, reinvite(held))
    assert parts.on_hold and call.leg.remotes[-1][2] is True
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8"), cseq=3))
    assert not parts.on_hold and call.leg.remotes[-1][2] is False


def test_a_reoffer_keeps_the_srtp_keys_it_repeats_and_takes_new_ones() -> None:
    call = RenegotiatingCall()
    parts = Renegotiation(cast(RenegotiatedCall, call))
    theirs = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "QUJD" * 10 + "\r\n"
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8") + theirs))
    first = call.leg.srtp
    assert first is not None and first.remote == b"ABC" * 10
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8") + theirs, cseq=3))
    assert call.leg.srtp.local == first.local  # RFC 4568 7.1.4: unchanged keys stay
    other = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "WFla" * 10 + "\r\n"
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8") + other, cseq=4))
    assert call.leg.srtp.remote == b"XYZ" * 10 and call.leg.srtp.local != first.local
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="8"), cseq=5))
    assert call.leg.srtp is None  # optional: a plain re-offer goes back to RTP


def test_an_unusable_offer_leaves_the_call_as_it_was() -> None:
    call = RenegotiatingCall()
    parts = Renegotiation(cast(RenegotiatedCall, call))
    before = call.local_sdp
    parts.on_reinvite(TX, reinvite(sdp_offer(port=5004, codecs="18")))
    [refused] = call.endpoint.responses
    assert refused.status == 488  # RFC 3261 14.2: no codec in common
    assert call.local_sdp is before and call.leg.remotes == []


def test_an_update_without_an_offer_is_a_plain_refresh() -> None:
    call = RenegotiatingCall()
    parts = Renegotiation(cast(RenegotiatedCall, call))
    parts.on_reinvite(TX, reinvite("", method="UPDATE"))
    [ok] = call.endpoint.responses
    assert (ok.status, ok.body) == (200, b"")
    assert call.awaiting_ack == {}  # UPDATE has no ACK
