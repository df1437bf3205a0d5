"""The INVITE session core (sip/invite_session.py): every rule with a fake clock, no sockets.

Glare both ways (RFC 3261 14.1/14.2, RFC 3311 5.2), reliable provisionals (RFC 3262 3),
the 2xx awaiting its ACK (RFC 3261 13.3.1.4) and session timers as refresher and
refreshee (RFC 4028 10). Time is a plain number; the random source is fixed.
"""

from __future__ import annotations

import pytest

from mediaserver.sip.invite_session import (
    ENTRY_TIMERS,
    TRANSITIONS,
    AckTimedOut,
    InviteSession,
    Machine,
    Offer,
    Phase,
    ProvisionalAcknowledged,
    ProvisionalTimedOut,
    RefreshDue,
    Reliable,
    RetryDue,
    SessionError,
    SessionExpired,
    Transmit,
)
from mediaserver.sip.message import Request, Response, make_response, parse_message
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.timers import TimerConfig

TIMERS = TimerConfig(t1=0.5, t2=4.0, t4=5.0)
TAG = "uas-tag"


def request(method: str, cseq: int, *, body: str = "", headers: tuple[str, ...] = ()) -> Request:
    lines = [
        f"{method} sip:bob@192.0.2.4 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-" + f"{method}{cseq}",
        "Max-Forwards: 70",
        "To: <sip:bob@192.0.2.4>" + (f";tag={TAG}" if method != "INVITE" or cseq > 1 else ""),
        "From: <sip:alice@192.0.2.1>;tag=uac-tag",
        "Call-ID: call-1@192.0.2.1",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@192.0.2.1>",
        *headers,
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines += [f"Content-Length: {len(body)}", "", body]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


INVITE = request("INVITE", 1, body="v=0\r\n")


def session(
    *,
    timer: SessionTimer | None = None,
    owns_call_id: bool = False,
    rng: float = 0.5,
    transaction_awaits_ack: bool = False,
) -> InviteSession:
    return InviteSession(
        request("INVITE", 1, body="v=0\r\n"),
        timers=TIMERS,
        session_timer=timer,
        owns_call_id=owns_call_id,
        transaction_awaits_ack=transaction_awaits_ack,
        rng=lambda: rng,
    )


def answered(s: InviteSession, now: float = 0.0) -> Response:
    ok = make_response(s.invite, 200, to_tag=TAG)
    s.send_final(ok, now)
    s.handle_ack(request("ACK", 1), now)
    return ok


def statuses(transmits: list[Transmit]) -> list[int]:
    return [t.response.status for t in transmits]


# -- the dialog ------------------------------------------------------------------------


def test_a_2xx_confirms_and_terminate_silences_everything() -> None:
    s = session(timer=SessionTimer(90, we_refresh=True))
    assert s.state(Machine.DIALOG) is Phase.EARLY
    answered(s)
    assert s.state(Machine.DIALOG) is Phase.CONFIRMED
    assert s.next_deadline() == 45.0
    s.terminate(1.0)
    assert s.terminated and s.next_deadline() is None
    s.handle_timeout(1000.0)
    assert s.poll_events() == [] and s.poll_transmit() == []
    assert s.send_offer("INVITE", 1000.0) is False


# -- glare (RFC 3261 14.1, 14.2; RFC 3311 5.2) -----------------------------------------


def test_their_offer_while_ours_is_pending_gets_491() -> None:
    s = session()
    answered(s)
    assert s.send_offer("INVITE", 1.0)
    theirs = request("INVITE", 2, body="v=0\r\n")
    assert s.handle_request(theirs, 1.1) is False
    [sent] = s.poll_transmit()
    assert sent.response.status == 491 and sent.answers is theirs
    assert s.state(Machine.OFFER) is Offer.LOCAL  # ours is still pending
    update = request("UPDATE", 3, body="v=0\r\n")
    assert s.handle_request(update, 1.2) is False
    assert statuses(s.poll_transmit()) == [491]
    s.handle_response(200, 1.3)
    assert s.state(Machine.OFFER) is Offer.IDLE


def test_an_update_without_offer_is_no_glare() -> None:
    s = session()
    answered(s)
    s.send_offer("INVITE", 1.0)
    assert s.handle_request(request("UPDATE", 2), 1.1) is True
    assert s.poll_transmit() == []


def test_a_second_offer_while_theirs_is_unanswered_gets_500_with_retry_after() -> None:
    s = session(rng=0.5)
    answered(s)
    first = request("INVITE", 2, body="v=0\r\n")
    assert s.handle_request(first, 1.0) is True
    assert s.send_offer("UPDATE", 1.0) is False  # ours waits for our answer to theirs
    assert s.handle_request(request("INVITE", 3, body="v=0\r\n"), 1.1) is False
    [sent] = s.poll_transmit()
    assert sent.response.status == 500
    assert sent.response.headers.get("Retry-After") == "5"
    s.answer_offer(first, make_response(first, 200, to_tag=TAG), 1.2)
    assert s.state(Machine.OFFER) is Offer.IDLE
    assert s.send_offer("UPDATE", 1.3)


@pytest.mark.parametrize(
    ("owns_call_id", "rng", "wait"),
    [(True, 0.0, 2.1), (True, 0.999, 3.998), (False, 0.0, 0.0), (False, 0.5, 1.0)],
)
def test_our_offer_refused_with_491_is_retried_after_the_random_wait(
    owns_call_id: bool, rng: float, wait: float
) -> None:
    """RFC 3261 14.1: 2.1-4 s when we own the Call-ID, 0-2 s otherwise, in 10 ms units."""
    s = session(owns_call_id=owns_call_id, rng=rng)
    answered(s)
    assert s.send_offer("UPDATE", 10.0)
    s.handle_response(491, 10.0)
    assert s.state(Machine.OFFER) is Offer.RETRY_WAIT
    deadline = s.next_deadline()
    assert deadline == pytest.approx(10.0 + round(wait, 2))
    if wait:
        assert s.send_offer("UPDATE", 10.0) is False  # not before the wait is over
        s.handle_timeout(deadline - 0.001)
        assert s.poll_events() == []
    s.handle_timeout(deadline)
    assert s.poll_events() == [RetryDue("UPDATE")]
    assert s.send_offer("UPDATE", deadline)


def test_their_offer_during_our_retry_wait_is_taken() -> None:
    s = session(rng=0.5)
    answered(s)
    s.send_offer("INVITE", 0.0)
    s.handle_response(491, 0.0)
    theirs = request("INVITE", 2, body="v=0\r\n")
    assert s.handle_request(theirs, 0.5) is True
    assert s.state(Machine.OFFER) is Offer.REMOTE
    s.handle_timeout(100.0)
    assert s.poll_events() == []


# -- reliable provisional responses (RFC 3262) -----------------------------------------


def ringing(s: InviteSession, now: float = 0.0) -> Response:
    return s.send_reliable(make_response(s.invite, 180, to_tag=TAG), now)


def prack(s: InviteSession, rseq: int, cseq: int = 2) -> Request:
    return request("PRACK", cseq, headers=(f"RAck: {rseq} 1 INVITE",))


def test_reliable_1xx_carries_rseq_and_is_resent_doubling_until_prack() -> None:
    s = session(rng=0.0)
    sent = ringing(s)
    assert sent.headers.get("Require") == "100rel" and sent.headers.get("RSeq") == "1"
    assert [t.response for t in s.poll_transmit()] == [sent]
    resent = []
    for now in (0.5, 1.5, 3.5, 7.5):  # T1, then 2*T1, 4*T1, 8*T1 apart
        assert s.next_deadline() == now
        s.handle_timeout(now)
        resent += [t.response for t in s.poll_transmit()]
    assert resent == [sent] * 4
    assert s.handle_request(prack(s, 1), 8.0) is False
    assert statuses(s.poll_transmit()) == [200]
    assert s.poll_events() == [ProvisionalAcknowledged(1)]
    assert s.state(Machine.RELIABLE) is Reliable.IDLE and s.next_deadline() is None


def test_a_prack_naming_another_rseq_gets_481_and_retransmission_goes_on() -> None:
    s = session(rng=0.0)
    ringing(s)
    s.poll_transmit()
    s.handle_request(prack(s, 7), 0.1)
    assert statuses(s.poll_transmit()) == [481]
    assert s.state(Machine.RELIABLE) is Reliable.UNACKED
    s.handle_request(prack(s, 1, cseq=3), 0.2)
    s.handle_request(prack(s, 1, cseq=4), 0.3)  # a second PRACK finds nothing to ack
    assert statuses(s.poll_transmit()) == [200, 481]


def test_no_prack_within_64_t1_refuses_the_invite() -> None:
    s = session()
    ringing(s)
    s.handle_timeout(64 * TIMERS.t1 - 0.01)
    assert s.poll_events() == []
    assert len(s.poll_transmit()) == 1 + 6  # sent at 0, resent at 0.5, 1.5, ... 31.5
    s.handle_timeout(64 * TIMERS.t1)
    assert s.poll_events() == [ProvisionalTimedOut()]
    assert s.unacknowledged is None and s.next_deadline() is None


def test_the_configured_t1_paces_prack_retransmission() -> None:
    short = TimerConfig(t1=0.02, t2=0.16, t4=0.1)
    s = InviteSession(INVITE, timers=short, rng=lambda: 0.0)
    ringing(s)
    assert s.next_deadline() == pytest.approx(0.02)
    s.handle_timeout(64 * 0.02)
    assert s.poll_events() == [ProvisionalTimedOut()]


def test_the_final_response_stops_1xx_retransmission_and_a_second_needs_the_prack() -> None:
    s = session(rng=0.0)
    ringing(s)
    with pytest.raises(SessionError, match="awaiting PRACK"):
        ringing(s, 0.1)
    s.send_final(make_response(s.invite, 486, to_tag=TAG), 0.2)
    s.poll_transmit()
    s.handle_timeout(100.0)
    assert s.poll_transmit() == [] and s.poll_events() == []


# -- the 2xx awaiting its ACK (RFC 3261 13.3.1.4) --------------------------------------


def test_the_2xx_is_resent_until_the_ack() -> None:
    s = session()
    ok = make_response(s.invite, 200, to_tag=TAG)
    s.send_final(ok, 0.0)
    times = []
    while (deadline := s.next_deadline()) is not None and deadline < 10:
        s.handle_timeout(deadline)
        times += [deadline for t in s.poll_transmit() if t.response is ok]
    assert times == [0.5, 1.5, 3.5, 7.5]  # T1 doubling, then capped at T2
    s.handle_ack(request("ACK", 1), 10.0)
    assert s.next_deadline() is None


def test_no_ack_within_64_t1_asks_for_bye() -> None:
    s = session()
    s.send_final(make_response(s.invite, 200, to_tag=TAG), 0.0)
    s.handle_ack(request("ACK", 7), 1.0)  # another INVITE's ACK stops nothing
    s.handle_timeout(32.0)
    assert s.poll_events() == [AckTimedOut()]


def test_the_transaction_may_own_2xx_retransmission() -> None:
    s = session(transaction_awaits_ack=True)
    s.send_final(make_response(s.invite, 200, to_tag=TAG), 0.0)
    assert s.next_deadline() is None
    s.handle_ack(request("ACK", 1), 1.0)


def test_a_reinvite_2xx_awaits_its_own_ack() -> None:
    s = session()
    answered(s)
    theirs = request("INVITE", 2, body="v=0\r\n")
    s.handle_request(theirs, 1.0)
    s.answer_offer(theirs, make_response(theirs, 200, to_tag=TAG), 1.0)
    s.handle_ack(request("ACK", 1), 1.1)  # a late ACK of the first INVITE
    s.handle_timeout(1.5)
    assert [t.answers for t in s.poll_transmit()] == [theirs]
    s.handle_ack(request("ACK", 2), 1.6)
    assert s.next_deadline() is None


# -- session timers (RFC 4028 10) ------------------------------------------------------


def test_as_refresher_we_refresh_at_half_the_interval() -> None:
    s = session(timer=SessionTimer(1800, we_refresh=True))
    answered(s, 100.0)
    assert s.next_deadline() == 1000.0
    s.handle_timeout(999.0)
    assert s.poll_events() == []
    s.handle_timeout(1000.0)
    assert s.poll_events() == [RefreshDue()]
    assert s.send_offer("UPDATE", 1000.0)
    s.handle_response(200, 1001.0)
    assert s.next_deadline() == 1901.0  # counted again from the 2xx


def test_as_refresher_a_failed_refresh_ends_the_session() -> None:
    s = session(timer=SessionTimer(90, we_refresh=True))
    answered(s)
    s.handle_timeout(45.0)
    assert s.poll_events() == [RefreshDue()]
    s.send_offer("INVITE", 45.0)
    s.handle_response(481, 45.5)
    assert s.poll_events() == [SessionExpired()]


def test_as_refresher_a_timed_out_refresh_ends_the_session() -> None:
    s = session(timer=SessionTimer(90, we_refresh=True))
    answered(s)
    s.handle_timeout(45.0)
    s.send_offer("INVITE", 45.0)
    s.poll_events()
    s.handle_response(None, 77.0)
    assert s.poll_events() == [SessionExpired()]


def test_as_refresher_another_error_keeps_the_session_and_refreshes_later() -> None:
    s = session(timer=SessionTimer(90, we_refresh=True))
    answered(s)
    s.handle_timeout(45.0)
    s.poll_events()
    s.send_offer("INVITE", 45.0)
    s.handle_response(488, 45.5)
    assert s.poll_events() == [] and s.next_deadline() == 90.0


def test_as_refresher_a_491_refresh_is_retried() -> None:
    s = session(timer=SessionTimer(90, we_refresh=True), rng=0.0)
    answered(s)
    s.handle_timeout(45.0)
    s.poll_events()
    s.send_offer("INVITE", 45.0)
    s.handle_response(491, 45.1)
    s.handle_timeout(45.1)
    assert s.poll_events() == [RetryDue("INVITE")]


def test_as_refreshee_no_refresh_expires_the_session() -> None:
    s = session(timer=SessionTimer(90, we_refresh=False))
    answered(s)
    assert s.next_deadline() == 60.0  # 90 - min(32, 90/3)
    s.handle_timeout(59.9)
    assert s.poll_events() == []
    s.handle_timeout(60.0)
    assert s.poll_events() == [SessionExpired()]


def test_as_refreshee_their_refresh_restarts_the_expiry() -> None:
    s = session(timer=SessionTimer(1800, we_refresh=False))
    answered(s)
    assert s.next_deadline() == 1768.0  # 1800 - 32
    update = request("UPDATE", 2)
    assert s.handle_request(update, 900.0) is True
    s.answer_offer(update, make_response(update, 200, to_tag=TAG), 900.0)
    assert s.next_deadline() == 2668.0
    reinvite = request("INVITE", 3, body="v=0\r\n")
    s.handle_request(reinvite, 1000.0)
    s.answer_offer(reinvite, make_response(reinvite, 488), 1000.0)  # refused: no refresh
    assert s.next_deadline() == 2668.0
    s.handle_timeout(2668.0)
    assert s.poll_events() == [SessionExpired()]


def test_no_session_timer_no_deadline() -> None:
    s = session()
    answered(s)
    assert s.next_deadline() is None


def test_ending_an_early_dialog_stops_the_1xx_retransmission() -> None:
    """A CANCEL or hang-up before the answer: nothing more is sent or reported."""
    s = session()
    ringing(s)
    s.poll_transmit()
    s.terminate(0.1)
    s.handle_timeout(100.0)
    assert s.poll_transmit() == [] and s.poll_events() == []
    assert s.handle_request(prack(s, s.rseq), 100.0) is True  # the call says 481


def test_every_timer_a_state_arms_has_a_transition_there() -> None:
    """The table is closed: a timer never fires into a state without an entry for it."""
    for machine, states in TRANSITIONS.items():
        for state, transitions in states.items():
            for timer in ENTRY_TIMERS.get(state, ()):
                assert timer in transitions, f"{machine.value} {state.value}: {timer}"
