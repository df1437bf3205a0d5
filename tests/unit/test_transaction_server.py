"""Server transactions (RFC 3261 17.2, RFC 6026 7.1): 100 Trying, retransmissions, the ACK,
the Accepted state with its 2xx retransmissions, CANCEL, and Timers G, H, I, J and L."""

from __future__ import annotations

import pytest

from mediaserver.sip.message import Request
from mediaserver.sip.transaction import (
    Absorbed,
    InviteServerState,
    New,
    NonInviteServerState,
    ServerTransaction,
    StrayAck,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransitionError,
    TransportFailed,
)
from tests.unit.test_transaction_helpers import (
    TCP_PEER,
    UDP_PEER,
    advance,
    drain,
    make_2xx_ack,
    make_ack,
    make_cancel,
    make_request,
    respond,
)

# RFC 3261 17.2.1 with T1 = 0.5 s, T2 = 4 s: G doubles up to T2; H = 64*T1.
G_SCHEDULE = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


def receive(
    method: str = "INVITE",
    *,
    reliable: bool = False,
    now: float = 0.0,
    layer: TransactionLayer | None = None,
    **kwargs: object,
) -> tuple[TransactionLayer, ServerTransaction]:
    layer = layer if layer is not None else TransactionLayer()
    request = make_request(method, **kwargs)  # type: ignore[arg-type]
    peer = TCP_PEER if reliable else UDP_PEER
    disposition = layer.handle_request(request, peer, now, reliable=reliable)
    assert isinstance(disposition, New)
    tx = disposition.transaction
    assert tx.request is request and tx.peer == peer and tx.reliable is reliable
    return layer, tx


def sent_lines(layer: TransactionLayer) -> list[str]:
    return [t.message.start_line() for t in layer.poll_transmit()]


# ---- INVITE server: Proceeding and 100 Trying --------------------------------------------


def test_new_invite_gets_100_trying_at_once() -> None:
    layer, tx = receive("INVITE")
    assert tx.state is InviteServerState.PROCEEDING
    (sent,) = layer.poll_transmit()
    trying = sent.message
    assert trying.start_line() == "SIP/2.0 100 Trying"
    assert sent.peer == UDP_PEER and sent.transaction is tx
    assert trying.headers.get_all("Via") == tx.request.headers.get_all("Via")
    assert trying.to.tag is None  # RFC 3261 8.2.6.2: no tag on 100 Trying
    assert tx.last_response is trying
    assert not tx.finalised and not tx.cancelled
    assert layer.next_deadline() is None  # no timer while the TU decides
    assert layer.poll_events() == []


def test_retransmitted_invite_gets_the_last_provisional_again() -> None:
    layer, tx = receive("INVITE")
    layer.poll_transmit()
    assert layer.handle_request(tx.request, UDP_PEER, 0.5, reliable=False) == Absorbed(tx)
    assert sent_lines(layer) == ["SIP/2.0 100 Trying"]
    ringing = respond(tx.request, 180)
    layer.send_response(tx, ringing, 1.0)
    assert [t.message for t in layer.poll_transmit()] == [ringing]
    assert tx.state is InviteServerState.PROCEEDING
    assert layer.handle_request(tx.request, UDP_PEER, 1.5, reliable=False) == Absorbed(tx)
    assert [t.message for t in layer.poll_transmit()] == [ringing]
    assert layer.poll_events() == []


def test_without_send_trying_nothing_is_sent_until_the_tu_answers() -> None:
    layer = TransactionLayer(send_trying=False)
    layer, tx = receive("INVITE", layer=layer)
    assert layer.poll_transmit() == []
    assert layer.handle_request(tx.request, UDP_PEER, 0.5, reliable=False) == Absorbed(tx)
    assert layer.poll_transmit() == []
    assert tx.last_response is None


def test_ack_in_proceeding_is_absorbed() -> None:
    layer, tx = receive("INVITE")
    layer.poll_transmit()
    ack = make_ack(tx.request, respond(tx.request, 486))
    assert layer.handle_request(ack, UDP_PEER, 0.1, reliable=False) == Absorbed(tx)
    assert tx.state is InviteServerState.PROCEEDING
    assert layer.poll_transmit() == [] and layer.poll_events() == []


# ---- INVITE server: non-2xx final, Completed, Timers G and H -----------------------------


def test_non_2xx_final_over_udp_is_retransmitted_with_timer_g_until_timer_h() -> None:
    layer, tx = receive("INVITE")
    layer.poll_transmit()
    busy = respond(tx.request, 486)
    layer.send_response(tx, busy, 0.0)
    assert [t.message for t in layer.poll_transmit()] == [busy]
    assert tx.state is InviteServerState.COMPLETED and tx.finalised
    assert tx.timers == {"G": 0.5, "H": 32.0}
    timeline = advance(layer, 100.0)
    assert timeline.send_times("SIP/2.0 486") == G_SCHEDULE
    assert all(t.message is busy for _, t in timeline.sent)
    assert timeline.events == [
        (32.0, TransactionTimedOut(tx, "H")),
        (32.0, TransactionTerminated(tx)),
    ]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_non_2xx_final_over_reliable_transport_is_not_retransmitted() -> None:
    layer, tx = receive("INVITE", reliable=True)
    layer.send_response(tx, respond(tx.request, 603), 1.0)
    assert sent_lines(layer) == ["SIP/2.0 100 Trying", "SIP/2.0 603 Decline"]
    assert tx.timers == {"H": 33.0}  # Timer H runs on every transport
    timeline = advance(layer, 100.0)
    assert timeline.sent == []
    assert timeline.events == [
        (33.0, TransactionTimedOut(tx, "H")),
        (33.0, TransactionTerminated(tx)),
    ]


def test_retransmitted_invite_in_completed_gets_the_final_again() -> None:
    layer, tx = receive("INVITE")
    layer.send_response(tx, respond(tx.request, 404), 0.0)
    layer.poll_transmit()
    assert layer.handle_request(tx.request, UDP_PEER, 0.2, reliable=False) == Absorbed(tx)
    assert sent_lines(layer) == ["SIP/2.0 404 Not Found"]
    # A CANCEL that crosses the final response cannot cancel any more.
    cancel = make_cancel(tx.request)
    assert isinstance(layer.handle_request(cancel, UDP_PEER, 0.3, reliable=False), New)
    assert not tx.cancelled and tx.state is InviteServerState.COMPLETED


def test_ack_confirms_stops_timer_g_and_timer_i_terminates() -> None:
    layer, tx = receive("INVITE")
    busy = respond(tx.request, 486)
    layer.send_response(tx, busy, 0.0)
    advance(layer, 2.0)  # retransmitted at 0.5 and 1.5
    ack = make_ack(tx.request, busy)
    assert layer.handle_request(ack, UDP_PEER, 2.0, reliable=False) == Absorbed(tx)
    assert tx.state is InviteServerState.CONFIRMED
    assert tx.timers == {"I": 7.0}  # RFC 3261 17.2.1: T4 over UDP
    # Confirmed absorbs ACK and INVITE retransmissions, sending nothing.
    assert layer.handle_request(ack, UDP_PEER, 3.0, reliable=False) == Absorbed(tx)
    assert layer.handle_request(tx.request, UDP_PEER, 3.0, reliable=False) == Absorbed(tx)
    assert isinstance(layer.handle_request(make_cancel(tx.request), UDP_PEER, 3.0,
                                           reliable=False), New)  # fmt: skip
    layer.handle_transport_error(tx, 3.5)  # nothing left to send
    assert tx.state is InviteServerState.CONFIRMED
    timeline = advance(layer, 6.9)
    assert timeline.sent == [] and timeline.events == []
    timeline = advance(layer, 100.0)
    assert (7.0, TransactionTerminated(tx)) in timeline.events
    assert not any(e.transaction is tx for _, e in timeline.events if not
                   isinstance(e, TransactionTerminated))  # fmt: skip


def test_ack_over_reliable_transport_terminates_at_once() -> None:
    layer, tx = receive("INVITE", reliable=True)
    busy = respond(tx.request, 486)
    layer.send_response(tx, busy, 0.0)
    drain(layer, 0.0)
    layer.handle_request(make_ack(tx.request, busy), TCP_PEER, 1.0, reliable=True)
    assert tx.state is InviteServerState.TERMINATED  # Timer I = 0
    assert layer.poll_events() == [TransactionTerminated(tx)]
    assert len(layer) == 0 and layer.next_deadline() is None


# ---- INVITE server: 2xx, Accepted, the 2xx retransmissions and Timer L -------------------


def test_2xx_is_retransmitted_until_the_tu_reports_the_ack_then_timer_l_ends_it() -> None:
    layer, tx = receive("INVITE")
    layer.poll_transmit()
    ok = respond(tx.request, 200)
    layer.send_response(tx, ok, 0.0)
    assert [t.message for t in layer.poll_transmit()] == [ok]
    assert tx.state is InviteServerState.ACCEPTED and tx.finalised
    assert tx.timers == {"2xx": 0.5, "H": 32.0, "L": 32.0}
    timeline = advance(layer, 5.0)
    # RFC 3261 13.3.1.4: T1, 2*T1, ... capped at T2.
    assert timeline.send_times("SIP/2.0 200") == [0.5, 1.5, 3.5]
    assert all(t.message is ok for _, t in timeline.sent)
    # The ACK for a 2xx has its own branch: the TU matches it by dialog.
    ack = make_2xx_ack(tx.request, ok)
    assert layer.handle_request(ack, UDP_PEER, 5.0, reliable=False) == StrayAck()
    layer.ack_received(tx, 5.0)
    assert tx.timers == {"L": 32.0}
    # Accepted absorbs INVITE retransmissions without answering (RFC 6026 7.1).
    assert layer.handle_request(tx.request, UDP_PEER, 6.0, reliable=False) == Absorbed(tx)
    layer.ack_received(tx, 6.5)  # a retransmitted ACK, matched again by the TU
    timeline = advance(layer, 100.0)
    assert timeline.sent == []
    assert timeline.events == [(32.0, TransactionTerminated(tx))]  # no timeout: it was ACKed


def test_2xx_without_ack_times_out_with_timer_h_then_timer_l() -> None:
    layer, tx = receive("INVITE")
    layer.poll_transmit()
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    layer.poll_transmit()
    timeline = advance(layer, 100.0)
    assert timeline.send_times("SIP/2.0 200") == G_SCHEDULE
    assert timeline.events == [
        (32.0, TransactionTimedOut(tx, "H")),  # RFC 3261 13.3.1.4: the TU should send BYE
        (32.0, TransactionTerminated(tx)),
    ]


def test_2xx_is_retransmitted_over_reliable_transports_too() -> None:
    # RFC 3261 13.3.1.4: "even if the transport at the UAS is reliable".
    layer, tx = receive("INVITE", reliable=True)
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    drain(layer, 0.0)
    timeline = advance(layer, 8.0)
    assert timeline.send_times("SIP/2.0 200") == [0.5, 1.5, 3.5, 7.5]
    assert all(t.peer == TCP_PEER for _, t in timeline.sent)


def test_ack_matching_the_accepted_transaction_goes_to_the_tu_and_stops_retransmission() -> None:
    layer, tx = receive("INVITE")
    ok = respond(tx.request, 200)
    layer.send_response(tx, ok, 0.0)
    drain(layer, 0.0)
    ack = make_ack(tx.request, ok)  # a peer that reuses the INVITE's branch
    assert layer.handle_request(ack, UDP_PEER, 0.2, reliable=False) == StrayAck(tx)
    assert tx.timers == {"L": 32.0}
    assert advance(layer, 10.0).sent == []


def test_tu_may_send_the_2xx_again_in_accepted() -> None:
    layer, tx = receive("INVITE")
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    drain(layer, 0.0)
    again = respond(tx.request, 200)
    again.body = b"v=0\r\n"
    layer.send_response(tx, again, 0.2)
    assert [t.message for t in layer.poll_transmit()] == [again]
    assert tx.last_response is again
    assert [t.message for _, t in advance(layer, 0.5).sent] == [again]


def test_transport_error_in_accepted_informs_the_tu_and_stops_retransmitting() -> None:
    layer, tx = receive("INVITE")
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    drain(layer, 0.0)
    layer.handle_transport_error(tx, 0.1)
    assert layer.poll_events() == [TransportFailed(tx)]
    assert tx.state is InviteServerState.ACCEPTED
    assert tx.timers == {"L": 32.0}
    timeline = advance(layer, 100.0)
    assert timeline.sent == []
    assert timeline.events == [(32.0, TransactionTerminated(tx))]


@pytest.mark.parametrize("final", [None, 486])
def test_transport_error_terminates_proceeding_and_completed(final: int | None) -> None:
    layer, tx = receive("INVITE")
    if final is not None:
        layer.send_response(tx, respond(tx.request, final), 0.0)
    drain(layer, 0.0)
    layer.handle_transport_error(tx, 0.1)
    assert layer.poll_events() == [TransportFailed(tx), TransactionTerminated(tx)]
    assert len(layer) == 0 and layer.next_deadline() is None


# ---- INVITE server: what the TU may not do -----------------------------------------------


def test_tu_errors_name_the_machine_state_and_trigger() -> None:
    layer, tx = receive("INVITE")
    layer.send_response(tx, respond(tx.request, 486), 0.0)
    with pytest.raises(TransitionError, match="INVITE server transaction in state Completed "
                       "has no transition for 1xx from TU") as info:  # fmt: skip
        layer.send_response(tx, respond(tx.request, 180), 0.1)
    assert info.value.state is InviteServerState.COMPLETED
    with pytest.raises(TransitionError, match="2xx from TU"):
        layer.send_response(tx, respond(tx.request, 200), 0.1)
    with pytest.raises(TransitionError, match="ACK for the 2xx reported by TU"):
        layer.ack_received(tx, 0.1)


def test_tu_may_not_send_a_non_2xx_after_a_2xx() -> None:
    layer, tx = receive("INVITE")
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    with pytest.raises(TransitionError, match="Accepted has no transition for 300-699 from TU"):
        layer.send_response(tx, respond(tx.request, 500), 0.1)
    with pytest.raises(TransitionError, match="Accepted has no transition for 1xx from TU"):
        layer.send_response(tx, respond(tx.request, 180), 0.1)


def test_ack_received_before_any_2xx_is_a_tu_error() -> None:
    layer, tx = receive("INVITE")
    with pytest.raises(TransitionError, match="Proceeding"):
        layer.ack_received(tx, 0.1)


def test_tu_commands_on_a_terminated_transaction_are_ignored() -> None:
    layer, tx = receive("INVITE")
    layer.handle_transport_error(tx, 0.1)
    drain(layer, 0.1)
    layer.send_response(tx, respond(tx.request, 200), 0.2)
    layer.ack_received(tx, 0.3)
    layer.handle_transport_error(tx, 0.4)
    assert layer.poll_transmit() == [] and layer.poll_events() == []
    assert tx.state is InviteServerState.TERMINATED


def test_send_response_checks_its_arguments() -> None:
    layer, tx = receive("INVITE")
    client = layer.send_request(make_request("OPTIONS", branch="z9hG4bKc1"), UDP_PEER, 0.0,
                                reliable=False)  # fmt: skip
    with pytest.raises(TypeError):
        layer.send_response(client, respond(client.request, 200), 0.1)  # type: ignore[arg-type]
    bad = respond(tx.request, 200)
    bad.status = 99
    with pytest.raises(ValueError, match="status"):
        layer.send_response(tx, bad, 0.1)


# ---- CANCEL (RFC 3261 9.2) ---------------------------------------------------------------


def test_cancel_is_its_own_transaction_and_finds_the_invite() -> None:
    layer, invite_tx = receive("INVITE")
    layer.send_response(invite_tx, respond(invite_tx.request, 180), 0.5)
    layer.poll_transmit()
    cancel = make_cancel(invite_tx.request)
    disposition = layer.handle_request(cancel, UDP_PEER, 1.0, reliable=False)
    assert isinstance(disposition, New)
    cancel_tx = disposition.transaction
    assert cancel_tx is not invite_tx and cancel_tx.method == "CANCEL"
    assert cancel_tx.state is NonInviteServerState.TRYING
    assert layer.poll_transmit() == []  # no 100 Trying for non-INVITE
    assert layer.find_invite_for_cancel(cancel) is invite_tx
    assert invite_tx.cancelled and not invite_tx.finalised
    # The TU answers both (RFC 3261 9.2).
    layer.send_response(cancel_tx, respond(cancel, 200), 1.0)
    layer.send_response(invite_tx, respond(invite_tx.request, 487), 1.0)
    assert sent_lines(layer) == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    # A CANCEL retransmission gets the 200 again, and does not reach the INVITE.
    assert layer.handle_request(cancel, UDP_PEER, 1.2, reliable=False) == Absorbed(cancel_tx)
    assert sent_lines(layer) == ["SIP/2.0 200 OK"]


def test_cancel_for_an_unknown_invite() -> None:
    layer = TransactionLayer()
    cancel = make_cancel(make_request("INVITE"))
    disposition = layer.handle_request(cancel, UDP_PEER, 0.0, reliable=False)
    assert isinstance(disposition, New)
    assert layer.find_invite_for_cancel(cancel) is None  # the TU answers 481


def test_cancel_does_not_find_a_non_invite_transaction() -> None:
    layer, _ = receive("OPTIONS")
    assert layer.find_invite_for_cancel(make_cancel(make_request("OPTIONS"))) is None


# ---- non-INVITE server: Trying, Proceeding, Completed, Timer J ---------------------------


def test_non_invite_request_retransmission_in_trying_is_discarded() -> None:
    layer, tx = receive("OPTIONS")
    assert tx.state is NonInviteServerState.TRYING
    assert layer.poll_transmit() == []
    assert layer.handle_request(tx.request, UDP_PEER, 0.5, reliable=False) == Absorbed(tx)
    assert layer.poll_transmit() == [] and layer.poll_events() == []


def test_non_invite_server_resends_its_last_response_until_timer_j() -> None:
    layer, tx = receive("REGISTER")
    trying = respond(tx.request, 100, None)
    layer.send_response(tx, trying, 0.1)
    assert tx.state is NonInviteServerState.PROCEEDING
    layer.send_response(tx, respond(tx.request, 183), 0.15)
    layer.poll_transmit()
    layer.handle_request(tx.request, UDP_PEER, 0.2, reliable=False)
    assert sent_lines(layer) == ["SIP/2.0 183 Session Progress"]
    ok = respond(tx.request, 200)
    layer.send_response(tx, ok, 1.0)
    assert tx.state is NonInviteServerState.COMPLETED and tx.finalised
    assert tx.timers == {"J": 33.0}  # RFC 3261 17.2.2: 64*T1 over UDP
    layer.poll_transmit()
    assert layer.handle_request(tx.request, UDP_PEER, 20.0, reliable=False) == Absorbed(tx)
    assert [t.message for t in layer.poll_transmit()] == [ok]
    timeline = advance(layer, 32.9)
    assert timeline.sent == [] and timeline.events == []  # the server never retransmits alone
    timeline = advance(layer, 100.0)
    assert timeline.events == [(33.0, TransactionTerminated(tx))]
    # After Timer J the same request is new again.
    assert isinstance(layer.handle_request(tx.request, UDP_PEER, 101.0, reliable=False), New)


@pytest.mark.parametrize("status", [200, 404])
def test_non_invite_final_from_trying_over_reliable_transport_terminates_at_once(
    status: int,
) -> None:
    layer, tx = receive("BYE", reliable=True)
    layer.send_response(tx, respond(tx.request, status), 0.0)
    assert tx.state is NonInviteServerState.TERMINATED  # Timer J = 0
    assert layer.poll_events() == [TransactionTerminated(tx)]
    assert len(layer) == 0


@pytest.mark.parametrize("responses", [(), (100,), (200,)])
def test_non_invite_server_transport_error_terminates(responses: tuple[int, ...]) -> None:
    layer, tx = receive("INFO")
    for status in responses:
        layer.send_response(tx, respond(tx.request, status), 0.0)
    drain(layer, 0.0)
    layer.handle_transport_error(tx, 0.1)
    assert layer.poll_events() == [TransportFailed(tx), TransactionTerminated(tx)]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_non_invite_final_twice_is_a_tu_error() -> None:
    layer, tx = receive("OPTIONS")
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    with pytest.raises(TransitionError, match="non-INVITE server transaction in state Completed"):
        layer.send_response(tx, respond(tx.request, 500), 0.1)
    with pytest.raises(TransitionError, match="ACK for the 2xx"):
        layer.ack_received(tx, 0.1)


def _ack_for(request: Request) -> Request:
    return make_ack(request, respond(request, 486))


def test_ack_never_matches_a_non_invite_transaction() -> None:
    layer, tx = receive("OPTIONS")
    assert layer.handle_request(_ack_for(tx.request), UDP_PEER, 0.1, reliable=False) == StrayAck()
