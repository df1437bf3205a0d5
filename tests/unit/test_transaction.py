"""Client transactions (RFC 3261 17.1, RFC 6026 7.2): timers, responses, the ACK.

Server transactions are in test_transaction_server.py, matching and the layer in
test_transaction_layer.py, the table tour and the property test in
test_transaction_table.py and test_transaction_properties.py.
"""

from __future__ import annotations

import pytest

from mediaserver.sip.transaction import (
    ClientTransaction,
    InviteClientState,
    NonInviteClientState,
    ResponseReceived,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from tests.unit.test_transaction_helpers import (
    TCP_PEER,
    TO_TAG,
    UDP_PEER,
    advance,
    drain,
    make_request,
    respond,
)

# RFC 3261 17.1.1.2 with T1 = 0.5 s: A doubles without cap, B = 64*T1.
INVITE_RETRANSMISSIONS = [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
# RFC 3261 17.1.2.2: E doubles up to T2 = 4 s, F = 64*T1.
NON_INVITE_RETRANSMISSIONS = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


def start(
    method: str = "INVITE", *, reliable: bool = False, now: float = 0.0, **kwargs: object
) -> tuple[TransactionLayer, ClientTransaction]:
    layer = TransactionLayer()
    request = make_request(method, **kwargs)  # type: ignore[arg-type]
    tx = layer.send_request(request, TCP_PEER if reliable else UDP_PEER, now, reliable=reliable)
    sent = layer.poll_transmit()
    assert [t.message for t in sent] == [request]
    assert sent[0].peer == (TCP_PEER if reliable else UDP_PEER)
    assert sent[0].transaction is tx
    return layer, tx


# ---- INVITE client: Calling, Timers A and B ----------------------------------------------


def test_invite_over_udp_retransmits_with_timer_a_and_times_out_with_timer_b() -> None:
    layer, tx = start("INVITE")
    assert tx.state is InviteClientState.CALLING
    assert tx.timers == {"A": 0.5, "B": 32.0}
    timeline = advance(layer, 100.0)
    assert timeline.send_times("INVITE") == INVITE_RETRANSMISSIONS
    assert all(t.message is tx.request for _, t in timeline.sent)
    assert [(t, type(e)) for t, e in timeline.events] == [
        (32.0, TransactionTimedOut),
        (32.0, TransactionTerminated),
    ]
    timed_out = timeline.events[0][1]
    assert isinstance(timed_out, TransactionTimedOut) and timed_out.timer == "B"
    assert timed_out.transaction is tx
    assert tx.state is InviteClientState.TERMINATED
    assert len(layer) == 0 and layer.next_deadline() is None


def test_invite_over_reliable_transport_never_retransmits() -> None:
    layer, tx = start("INVITE", reliable=True)
    assert tx.timers == {"B": 32.0}
    assert layer.next_deadline() == 32.0
    timeline = advance(layer, 31.999)
    assert timeline.sent == [] and timeline.events == []
    timeline = advance(layer, 32.0)
    assert timeline.event_names() == ["TransactionTimedOut", "TransactionTerminated"]
    assert len(layer) == 0


def test_late_handle_timeouts_keeps_the_exact_schedule() -> None:
    layer, _ = start("INVITE")
    layer.handle_timeouts(40.0)  # one call long after everything was due
    assert len(layer.poll_transmit()) == len(INVITE_RETRANSMISSIONS)
    assert [type(e) for e in layer.poll_events()] == [TransactionTimedOut, TransactionTerminated]


def test_timer_a_and_b_fire_at_their_deadline_not_before() -> None:
    layer, _ = start("INVITE", now=10.0)
    layer.handle_timeouts(10.4999)
    assert layer.poll_transmit() == []
    layer.handle_timeouts(10.5)
    assert len(layer.poll_transmit()) == 1
    assert layer.next_deadline() == 11.5
    layer.handle_timeouts(41.9999)
    assert layer.poll_events() == []
    layer.handle_timeouts(42.0)
    assert [type(e) for e in layer.poll_events()] == [TransactionTimedOut, TransactionTerminated]


# ---- INVITE client: Proceeding -----------------------------------------------------------


def test_provisional_stops_retransmissions_and_timer_b() -> None:
    layer, tx = start("INVITE")
    advance(layer, 1.0)  # one retransmission at 0.5
    ringing = respond(tx.request, 180)
    assert layer.handle_response(ringing, 1.0)
    assert layer.poll_events() == [ResponseReceived(tx, ringing)]
    assert tx.state is InviteClientState.PROCEEDING
    assert tx.timers == {} and layer.next_deadline() is None
    timeline = advance(layer, 1000.0)  # RFC 3261 17.1.1.2: no timeout while ringing
    assert timeline.sent == [] and timeline.events == []
    assert tx.last_response is ringing


def test_every_provisional_is_passed_up() -> None:
    layer, tx = start("INVITE")
    responses = [respond(tx.request, 100, None), respond(tx.request, 180), respond(tx.request, 183)]
    for response in responses:
        assert layer.handle_response(response, 0.1)
    assert layer.poll_events() == [ResponseReceived(tx, r) for r in responses]
    assert tx.state is InviteClientState.PROCEEDING


# ---- INVITE client: non-2xx final, the ACK, Completed and Timer D ------------------------


def test_non_2xx_final_is_acknowledged_by_the_transaction() -> None:
    routes = ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    layer, tx = start("INVITE", routes=routes, cseq=314159)
    advance(layer, 2.0)
    busy = respond(tx.request, 486)
    assert layer.handle_response(busy, 2.0)
    assert layer.poll_events() == [ResponseReceived(tx, busy)]
    (sent,) = layer.poll_transmit()
    ack = sent.message
    assert sent.peer == UDP_PEER and sent.transaction is tx and ack is tx.ack
    # RFC 3261 17.1.1.3
    assert ack.start_line() == "ACK sip:bob@192.0.2.4 SIP/2.0"
    assert ack.headers.get_list("Via") == [tx.request.headers.get_list("Via")[0]]
    assert ack.headers.get_all("Route") == routes
    assert ack.headers.get("Call-ID") == tx.request.headers.get("Call-ID")
    assert ack.headers.get("From") == tx.request.headers.get("From")
    assert ack.headers.get("To") == busy.headers.get("To")
    assert ack.to.tag == TO_TAG
    assert ack.headers.get("CSeq") == "314159 ACK"
    assert ack.headers.get("Max-Forwards") == "70"
    assert ack.body == b""
    assert tx.state is InviteClientState.COMPLETED
    assert tx.timers == {"D": 34.0}


def test_multi_via_invite_acks_with_the_top_via_only() -> None:
    layer = TransactionLayer()
    request = make_request("INVITE")
    request.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKother")
    tx = layer.send_request(request, UDP_PEER, 0.0, reliable=False)
    layer.handle_response(respond(request, 404), 0.1)
    assert tx.ack is not None
    assert tx.ack.headers.get_list("Via") == [request.headers.get_list("Via")[0]]


def test_retransmitted_final_is_absorbed_and_the_ack_resent_until_timer_d() -> None:
    layer, tx = start("INVITE")
    busy = respond(tx.request, 486)
    layer.handle_response(busy, 1.0)
    drain(layer, 1.0)
    for now in (2.0, 10.0, 32.9):
        assert layer.handle_response(respond(tx.request, 486), now)
        assert [t.message for t in layer.poll_transmit()] == [tx.ack]
        assert layer.poll_events() == []
    timeline = advance(layer, 100.0)
    assert timeline.events == [(33.0, TransactionTerminated(tx))]
    assert timeline.sent == []
    # After Timer D the final matches nothing.
    assert not layer.handle_response(respond(tx.request, 486), 101.0)


def test_provisional_after_the_final_is_ignored() -> None:
    layer, tx = start("INVITE")
    layer.handle_response(respond(tx.request, 603), 1.0)
    drain(layer, 1.0)
    assert layer.handle_response(respond(tx.request, 180), 1.1)
    assert layer.poll_events() == [] and layer.poll_transmit() == []
    assert tx.state is InviteClientState.COMPLETED


def test_2xx_after_a_non_2xx_final_is_passed_up() -> None:
    layer, tx = start("INVITE")
    layer.handle_response(respond(tx.request, 480), 1.0)
    drain(layer, 1.0)
    ok = respond(tx.request, 200, "other-fork")
    assert layer.handle_response(ok, 1.5)
    assert layer.poll_events() == [ResponseReceived(tx, ok)]
    assert layer.poll_transmit() == []  # the TU ACKs a 2xx, not the transaction
    assert tx.state is InviteClientState.COMPLETED


def test_non_2xx_final_over_reliable_transport_terminates_at_once() -> None:
    layer, tx = start("INVITE", reliable=True)
    busy = respond(tx.request, 486)
    assert layer.handle_response(busy, 1.0)
    assert [t.message.start_line() for t in layer.poll_transmit()] == [
        "ACK sip:bob@192.0.2.4 SIP/2.0"
    ]
    assert layer.poll_events() == [ResponseReceived(tx, busy), TransactionTerminated(tx)]
    assert tx.state is InviteClientState.TERMINATED  # Timer D = 0
    assert len(layer) == 0 and layer.next_deadline() is None


def test_non_2xx_final_in_proceeding_also_completes() -> None:
    layer, tx = start("INVITE")
    layer.handle_response(respond(tx.request, 180), 0.2)
    layer.handle_response(respond(tx.request, 487), 5.0)
    assert tx.state is InviteClientState.COMPLETED
    assert tx.timers == {"D": 37.0}
    assert [t.message.method for t in layer.poll_transmit()] == ["ACK"]  # type: ignore[union-attr]


# ---- INVITE client: 2xx, Accepted and Timer M (RFC 6026) ---------------------------------


def test_2xx_moves_to_accepted_and_every_2xx_is_passed_up_until_timer_m() -> None:
    layer, tx = start("INVITE")
    advance(layer, 1.0)
    ok = respond(tx.request, 200)
    assert layer.handle_response(ok, 1.0)
    assert tx.state is InviteClientState.ACCEPTED
    assert tx.timers == {"M": 33.0}
    assert layer.poll_transmit() == []  # no ACK from the transaction for a 2xx
    # RFC 6026 8.4: retransmissions and other forks' 2xx go up so the TU can ACK them.
    again, fork = respond(tx.request, 200), respond(tx.request, 200, "fork2")
    assert layer.handle_response(again, 2.0)
    assert layer.handle_response(fork, 3.0)
    # ... while provisional and non-2xx responses are ignored.
    assert layer.handle_response(respond(tx.request, 180), 3.5)
    assert layer.handle_response(respond(tx.request, 500), 3.6)
    assert layer.poll_events() == [
        ResponseReceived(tx, ok),
        ResponseReceived(tx, again),
        ResponseReceived(tx, fork),
    ]
    assert tx.last_response is fork
    timeline = advance(layer, 100.0)
    assert timeline.events == [(33.0, TransactionTerminated(tx))]
    assert timeline.sent == []
    # Once the transaction is gone, a 2xx retransmission is for the caller to pass up.
    assert not layer.handle_response(respond(tx.request, 200), 101.0)


def test_2xx_in_proceeding_moves_to_accepted() -> None:
    layer, tx = start("INVITE")
    layer.handle_response(respond(tx.request, 183), 0.1)
    layer.handle_response(respond(tx.request, 200), 4.0)
    assert tx.state is InviteClientState.ACCEPTED
    assert tx.timers == {"M": 36.0}


def test_timer_m_runs_over_reliable_transports_too() -> None:
    layer, tx = start("INVITE", reliable=True)
    layer.handle_response(respond(tx.request, 200), 1.0)
    drain(layer, 1.0)
    assert tx.timers == {"M": 33.0}
    timeline = advance(layer, 40.0)
    assert timeline.events == [(33.0, TransactionTerminated(tx))]


# ---- INVITE client: transport errors -----------------------------------------------------


@pytest.mark.parametrize("status", [None, 180, 486])
def test_transport_error_terminates_calling_proceeding_and_completed(status: int | None) -> None:
    layer, tx = start("INVITE")
    if status is not None:
        layer.handle_response(respond(tx.request, status), 0.1)
    drain(layer, 0.1)
    layer.handle_transport_error(tx, 0.2)
    assert layer.poll_events() == [TransportFailed(tx), TransactionTerminated(tx)]
    assert tx.state is InviteClientState.TERMINATED
    assert len(layer) == 0 and layer.next_deadline() is None


def test_transport_error_in_accepted_is_ignored() -> None:
    layer, tx = start("INVITE")
    layer.handle_response(respond(tx.request, 200), 0.1)
    drain(layer, 0.1)
    layer.handle_transport_error(tx, 0.2)
    assert layer.poll_events() == []
    assert tx.state is InviteClientState.ACCEPTED


def test_transport_error_on_a_terminated_transaction_is_ignored() -> None:
    layer, tx = start("INVITE", reliable=True)
    layer.handle_response(respond(tx.request, 500), 0.1)
    drain(layer, 0.1)
    assert tx.state is InviteClientState.TERMINATED
    layer.handle_transport_error(tx, 0.2)
    assert layer.poll_events() == [] and layer.poll_transmit() == []


# ---- non-INVITE client: Trying, Proceeding, Timers E and F -------------------------------


def test_non_invite_over_udp_retransmits_with_timer_e_capped_at_t2() -> None:
    layer, tx = start("OPTIONS")
    assert tx.state is NonInviteClientState.TRYING
    assert tx.timers == {"E": 0.5, "F": 32.0}
    timeline = advance(layer, 100.0)
    assert timeline.send_times("OPTIONS") == NON_INVITE_RETRANSMISSIONS
    assert timeline.events[0] == (32.0, TransactionTimedOut(tx, "F"))
    assert timeline.events[1] == (32.0, TransactionTerminated(tx))
    assert len(layer) == 0


def test_timer_e_is_t2_once_proceeding() -> None:
    layer, tx = start("BYE")
    advance(layer, 1.0)  # retransmitted at 0.5; Timer E next at 1.5
    assert layer.handle_response(respond(tx.request, 100, None), 1.0)
    drain(layer, 1.0)
    assert tx.state is NonInviteClientState.PROCEEDING
    assert tx.timers == {"E": 1.5, "F": 32.0}  # RFC 3261 17.1.2.2: E keeps its schedule
    timeline = advance(layer, 100.0)
    # Then every T2 (not min(2*previous, T2) = 2 s at 1.5) until Timer F.
    assert timeline.send_times("BYE") == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert [e for _, e in timeline.events] == [
        TransactionTimedOut(tx, "F"),
        TransactionTerminated(tx),
    ]
    assert timeline.events[0][0] == 32.0


def test_timer_e_in_proceeding_before_the_first_retransmission() -> None:
    layer, tx = start("REGISTER")
    layer.handle_response(respond(tx.request, 100, None), 0.1)
    timeline = advance(layer, 20.0)
    assert timeline.send_times("REGISTER") == [0.5, 4.5, 8.5, 12.5, 16.5]


def test_non_invite_over_reliable_transport_never_retransmits() -> None:
    layer, tx = start("OPTIONS", reliable=True)
    assert tx.timers == {"F": 32.0}
    timeline = advance(layer, 100.0)
    assert timeline.sent == []
    assert timeline.events == [
        (32.0, TransactionTimedOut(tx, "F")),
        (32.0, TransactionTerminated(tx)),
    ]


def test_timer_f_fires_in_proceeding() -> None:
    layer, tx = start("OPTIONS", reliable=True)
    layer.handle_response(respond(tx.request, 100, None), 3.0)
    drain(layer, 3.0)
    assert tx.timers == {"F": 32.0}  # Timer F carries into Proceeding
    timeline = advance(layer, 40.0)
    assert timeline.events[0] == (32.0, TransactionTimedOut(tx, "F"))


def test_provisionals_are_passed_up_in_trying_and_proceeding() -> None:
    layer, tx = start("SUBSCRIBE")
    first, second = respond(tx.request, 100, None), respond(tx.request, 182)
    layer.handle_response(first, 0.1)
    layer.handle_response(second, 0.2)
    assert layer.poll_events() == [ResponseReceived(tx, first), ResponseReceived(tx, second)]


# ---- non-INVITE client: Completed and Timer K --------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 302, 404, 503, 603])
def test_final_completes_and_retransmissions_are_absorbed_until_timer_k(status: int) -> None:
    layer, tx = start("OPTIONS")
    advance(layer, 2.0)
    final = respond(tx.request, status)
    assert layer.handle_response(final, 2.0)
    assert layer.poll_events() == [ResponseReceived(tx, final)]
    assert tx.state is NonInviteClientState.COMPLETED
    assert tx.timers == {"K": 7.0}  # RFC 3261 17.1.2.2: T4 over UDP
    for response in (respond(tx.request, status), respond(tx.request, 180)):
        assert layer.handle_response(response, 3.0)
    layer.handle_transport_error(tx, 3.0)  # nothing left to send in Completed
    assert layer.poll_events() == [] and layer.poll_transmit() == []
    timeline = advance(layer, 100.0)
    assert timeline.events == [(7.0, TransactionTerminated(tx))]
    assert timeline.sent == []  # no more retransmissions of the request


def test_final_in_proceeding_completes() -> None:
    layer, tx = start("OPTIONS")
    layer.handle_response(respond(tx.request, 100, None), 0.1)
    layer.handle_response(respond(tx.request, 200), 1.0)
    assert tx.state is NonInviteClientState.COMPLETED
    assert tx.timers == {"K": 6.0}


def test_final_over_reliable_transport_terminates_at_once() -> None:
    layer, tx = start("OPTIONS", reliable=True)
    ok = respond(tx.request, 200)
    layer.handle_response(ok, 1.0)
    assert layer.poll_events() == [ResponseReceived(tx, ok), TransactionTerminated(tx)]
    assert len(layer) == 0


@pytest.mark.parametrize("provisional", [False, True])
def test_non_invite_transport_error_terminates(provisional: bool) -> None:
    layer, tx = start("MESSAGE")
    if provisional:
        layer.handle_response(respond(tx.request, 100, None), 0.1)
    drain(layer, 0.1)
    layer.handle_transport_error(tx, 0.2)
    assert layer.poll_events() == [TransportFailed(tx), TransactionTerminated(tx)]
    assert len(layer) == 0 and layer.next_deadline() is None


# ---- send_request preconditions ----------------------------------------------------------


def test_ack_is_never_a_transaction() -> None:
    layer = TransactionLayer()
    with pytest.raises(ValueError, match="ACK"):
        layer.send_request(make_request("ACK"), UDP_PEER, 0.0, reliable=False)
    assert len(layer) == 0


def test_request_needs_a_branch() -> None:
    layer = TransactionLayer()
    with pytest.raises(ValueError, match="branch"):
        layer.send_request(make_request("INVITE", branch=None), UDP_PEER, 0.0, reliable=False)


def test_branch_and_method_must_be_unique() -> None:
    layer = TransactionLayer()
    layer.send_request(make_request("INVITE"), UDP_PEER, 0.0, reliable=False)
    with pytest.raises(ValueError, match="exists"):
        layer.send_request(make_request("INVITE"), UDP_PEER, 0.0, reliable=False)
    # CANCEL shares the INVITE's branch but is its own transaction (RFC 3261 9.1).
    cancel = layer.send_request(make_request("CANCEL"), UDP_PEER, 0.1, reliable=False)
    assert cancel.state is NonInviteClientState.TRYING
    assert len(layer) == 2


def test_responses_match_by_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    invite = layer.send_request(make_request("INVITE"), UDP_PEER, 0.0, reliable=False)
    cancel = layer.send_request(make_request("CANCEL"), UDP_PEER, 1.0, reliable=False)
    layer.poll_transmit()
    assert layer.handle_response(respond(cancel.request, 200), 1.1)
    assert cancel.state is NonInviteClientState.COMPLETED
    assert invite.state is InviteClientState.CALLING
    assert layer.handle_response(respond(invite.request, 487), 1.2)
    assert invite.state is InviteClientState.COMPLETED
    # RFC 3261 17.1.3: a different branch, or the right branch with another method, is stray.
    assert not layer.handle_response(respond(make_request("INVITE", branch="z9hG4bKx"), 200), 1.3)
    assert not layer.handle_response(respond(make_request("BYE"), 200), 1.3)
