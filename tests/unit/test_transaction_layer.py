"""The transaction layer: request matching (RFC 3261 17.2.3 and its RFC 2543 fallback),
stray ACKs and responses, overload, counts, timer ordering and next_deadline at scale."""

from __future__ import annotations

import random

import pytest

from mediaserver.sip.message import Headers, Request, Response
from mediaserver.sip.transaction import (
    Absorbed,
    InviteClientState,
    InviteServerState,
    Kind,
    New,
    NonInviteClientState,
    NonInviteServerState,
    Overloaded,
    StrayAck,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
)
from mediaserver.sip.uri import SipSyntaxError
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


def new(layer: TransactionLayer, request: Request, now: float = 0.0) -> New:
    disposition = layer.handle_request(request, UDP_PEER, now, reliable=False)
    assert isinstance(disposition, New), disposition
    return disposition


# ---- RFC 3261 matching: branch, sent-by, method ------------------------------------------


def test_retransmission_matches_on_branch_sent_by_and_method() -> None:
    layer = TransactionLayer()
    tx = new(layer, make_request("INVITE")).transaction
    # The same request, parsed again from the wire, with the host in another case and the
    # default port spelled out or not.
    for variant in (
        make_request("INVITE"),
        make_request("INVITE", via_host="PC33.Example.COM"),
        make_request("INVITE", via_port=None),
    ):
        assert layer.handle_request(variant, UDP_PEER, 0.1, reliable=False) == Absorbed(tx)
    assert len(layer) == 1


@pytest.mark.parametrize(
    "other",
    [
        {"branch": "z9hG4bKdifferent"},
        {"via_host": "elsewhere.example.com"},
        {"via_port": 5070},
    ],
)
def test_a_different_branch_or_sent_by_is_a_new_transaction(other: dict[str, object]) -> None:
    layer = TransactionLayer()
    first = new(layer, make_request("INVITE")).transaction
    second = new(layer, make_request("INVITE", **other)).transaction  # type: ignore[arg-type]
    assert first is not second and len(layer) == 2


def test_same_branch_with_another_method_is_another_transaction() -> None:
    layer = TransactionLayer()
    invite = new(layer, make_request("INVITE")).transaction
    cancel = new(layer, make_cancel(invite.request)).transaction
    assert cancel.kind is Kind.NON_INVITE_SERVER and invite.kind is Kind.INVITE_SERVER
    assert cancel.key != invite.key


def test_stray_ack_creates_nothing() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE")
    ack = make_2xx_ack(invite, respond(invite, 200))
    assert layer.handle_request(ack, UDP_PEER, 0.0, reliable=False) == StrayAck()
    assert len(layer) == 0
    assert layer.poll_transmit() == [] and layer.poll_events() == []


def test_ack_matches_the_invite_transaction_by_branch() -> None:
    layer = TransactionLayer()
    tx = new(layer, make_request("INVITE")).transaction
    busy = respond(tx.request, 486)
    layer.send_response(tx, busy, 0.0)
    other_sender = make_ack(make_request("INVITE", via_host="other.example.com"), busy)
    assert layer.handle_request(other_sender, UDP_PEER, 0.1, reliable=False) == StrayAck()
    assert tx.state is InviteServerState.COMPLETED
    assert layer.handle_request(make_ack(tx.request, busy), UDP_PEER, 0.2, reliable=False) == (
        Absorbed(tx)
    )
    assert tx.state is InviteServerState.CONFIRMED


def test_malformed_request_raises() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS")
    request.headers.remove("Via")
    with pytest.raises(SipSyntaxError):
        layer.handle_request(request, UDP_PEER, 0.0, reliable=False)
    assert len(layer) == 0


# ---- RFC 2543 fallback (no magic cookie) -------------------------------------------------


def old_request(method: str = "INVITE", **kwargs: object) -> Request:
    kwargs.setdefault("branch", None)
    return make_request(method, **kwargs)  # type: ignore[arg-type]


def test_rfc2543_retransmission_matches_on_uri_tags_call_id_cseq_and_via() -> None:
    layer = TransactionLayer()
    tx = new(layer, old_request("INVITE")).transaction
    assert tx.key[0] == "rfc2543"
    layer.poll_transmit()
    assert layer.handle_request(old_request("INVITE"), UDP_PEER, 0.1, reliable=False) == (
        Absorbed(tx)
    )
    assert [t.message.start_line() for t in layer.poll_transmit()] == ["SIP/2.0 100 Trying"]
    # A branch without the cookie is RFC 2543 too.
    assert new(layer, old_request("INVITE", branch="1234abcd")).transaction is not tx


@pytest.mark.parametrize(
    "other",
    [
        {"uri": "sip:carol@192.0.2.4"},
        {"from_tag": "other"},
        {"to_tag": "sometag"},
        {"call_id": "different@pc33.example.com"},
        {"cseq": 2},
        {"via_host": "other.example.com"},
    ],
)
def test_rfc2543_requests_differing_in_one_field_are_new(other: dict[str, object]) -> None:
    layer = TransactionLayer()
    first = new(layer, old_request("INVITE")).transaction
    second = new(layer, old_request("INVITE", **other)).transaction
    assert first is not second


def test_rfc2543_ack_matches_with_the_to_tag_of_our_response() -> None:
    layer = TransactionLayer()
    tx = new(layer, old_request("INVITE")).transaction
    busy = respond(tx.request, 486, to_tag="ours")
    layer.send_response(tx, busy, 0.0)
    wrong = make_ack(tx.request, respond(tx.request, 486, to_tag="not-ours"))
    assert layer.handle_request(wrong, UDP_PEER, 0.1, reliable=False) == StrayAck()
    assert tx.state is InviteServerState.COMPLETED
    right = make_ack(tx.request, busy)
    assert layer.handle_request(right, UDP_PEER, 0.2, reliable=False) == Absorbed(tx)
    assert tx.state is InviteServerState.CONFIRMED


def test_rfc2543_ack_for_a_reinvite_with_a_to_tag() -> None:
    layer = TransactionLayer()
    tx = new(layer, old_request("INVITE", to_tag="dialog", cseq=2)).transaction
    busy = respond(tx.request, 491)
    layer.send_response(tx, busy, 0.0)
    assert busy.to.tag == "dialog"
    ack = make_ack(tx.request, busy)
    assert layer.handle_request(ack, UDP_PEER, 0.1, reliable=False) == Absorbed(tx)


def test_rfc2543_ack_for_our_2xx_reaches_the_tu_with_the_transaction() -> None:
    layer = TransactionLayer()
    tx = new(layer, old_request("INVITE")).transaction
    ok = respond(tx.request, 200)
    layer.send_response(tx, ok, 0.0)
    ack = make_ack(tx.request, ok)
    assert layer.handle_request(ack, UDP_PEER, 0.1, reliable=False) == StrayAck(tx)
    assert tx.timers == {"L": 32.0}  # the 2xx retransmissions stopped


def test_rfc2543_cancel_finds_the_invite() -> None:
    layer = TransactionLayer()
    invite = new(layer, old_request("INVITE")).transaction
    cancel = make_cancel(invite.request)
    cancel_tx = new(layer, cancel, 0.5).transaction
    assert cancel_tx is not invite
    assert layer.find_invite_for_cancel(cancel) is invite
    assert invite.cancelled
    assert layer.handle_request(cancel, UDP_PEER, 0.6, reliable=False) == Absorbed(cancel_tx)


def test_rfc2543_non_invite_retransmission() -> None:
    layer = TransactionLayer()
    tx = new(layer, old_request("BYE", to_tag="dialog", cseq=3)).transaction
    layer.send_response(tx, respond(tx.request, 200), 0.0)
    layer.poll_transmit()
    again = old_request("BYE", to_tag="dialog", cseq=3)
    assert layer.handle_request(again, UDP_PEER, 0.3, reliable=False) == Absorbed(tx)
    assert [t.message.start_line() for t in layer.poll_transmit()] == ["SIP/2.0 200 OK"]


# ---- stray responses ---------------------------------------------------------------------


def test_stray_and_malformed_responses_match_nothing() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(make_request("INVITE"), UDP_PEER, 0.0, reliable=False)
    assert not layer.handle_response(respond(make_request("INVITE", branch="z9hG4bKo"), 200), 0.1)
    no_via = respond(tx.request, 200)
    no_via.headers.remove("Via")
    assert not layer.handle_response(no_via, 0.1)
    bad_cseq = respond(tx.request, 200)
    bad_cseq.headers.set("CSeq", "one INVITE")
    assert not layer.handle_response(bad_cseq, 0.1)
    assert not layer.handle_response(Response(status=200, headers=Headers()), 0.1)
    assert tx.state is InviteClientState.CALLING


# ---- overload, counts, the outputs -------------------------------------------------------


def test_overloaded_when_max_transactions_is_reached() -> None:
    layer = TransactionLayer(max_transactions=2)
    first = new(layer, make_request("INVITE", branch="z9hG4bK1")).transaction
    layer.send_request(make_request("OPTIONS", branch="z9hG4bKc"), TCP_PEER, 0.0, reliable=True)
    third = make_request("INVITE", branch="z9hG4bK3")
    assert layer.handle_request(third, UDP_PEER, 0.1, reliable=False) == Overloaded()
    assert len(layer) == 2
    # Retransmissions and ACKs still reach their transactions.
    assert layer.handle_request(first.request, UDP_PEER, 0.2, reliable=False) == Absorbed(first)
    busy = respond(first.request, 486)
    layer.send_response(first, busy, 0.3)
    ack = make_ack(first.request, busy)
    assert layer.handle_request(ack, UDP_PEER, 0.4, reliable=False) == Absorbed(first)
    # Room again once a transaction ends.
    advance(layer, 10.0)
    assert len(layer) == 1
    assert isinstance(layer.handle_request(third, UDP_PEER, 10.0, reliable=False), New)


def test_counts_per_kind_and_state_return_to_zero() -> None:
    layer = TransactionLayer()
    server = new(layer, make_request("INVITE", branch="z9hG4bKs1")).transaction
    new(layer, make_request("OPTIONS", branch="z9hG4bKs2"))
    client = layer.send_request(make_request("INVITE", branch="z9hG4bKc1"), UDP_PEER, 0.0,
                                reliable=False)  # fmt: skip
    layer.send_request(make_request("BYE", branch="z9hG4bKc2"), UDP_PEER, 0.0, reliable=False)
    assert layer.counts() == {
        (Kind.INVITE_SERVER, InviteServerState.PROCEEDING): 1,
        (Kind.NON_INVITE_SERVER, NonInviteServerState.TRYING): 1,
        (Kind.INVITE_CLIENT, InviteClientState.CALLING): 1,
        (Kind.NON_INVITE_CLIENT, NonInviteClientState.TRYING): 1,
    }
    assert len(layer) == 4
    assert {tx.method for tx in layer.server_transactions} == {"INVITE", "OPTIONS"}
    assert {tx.method for tx in layer.client_transactions} == {"INVITE", "BYE"}
    layer.send_response(server, respond(server.request, 200), 1.0)
    layer.handle_response(respond(client.request, 180), 1.0)
    counts = layer.counts()
    assert counts[(Kind.INVITE_SERVER, InviteServerState.ACCEPTED)] == 1
    assert counts[(Kind.INVITE_CLIENT, InviteClientState.PROCEEDING)] == 1
    layer.handle_response(respond(client.request, 404), 2.0)
    for tx in layer.server_transactions:
        if not tx.finalised:
            layer.send_response(tx, respond(tx.request, 200), 2.0)
    advance(layer, 200.0)
    assert len(layer) == 0 and layer.counts() == {} and layer.next_deadline() is None
    assert layer.server_transactions == [] and layer.client_transactions == []


def test_poll_functions_drain() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(make_request("OPTIONS"), UDP_PEER, 0.0, reliable=False)
    assert len(layer.poll_transmit()) == 1
    assert layer.poll_transmit() == []
    layer.handle_transport_error(tx, 0.1)
    assert len(layer.poll_events()) == 2
    assert layer.poll_events() == []


def test_timers_due_before_an_input_fire_first() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(make_request("OPTIONS"), TCP_PEER, 0.0, reliable=True)
    # The 200 arrives after Timer F was due; F fires first and the 200 matches nothing.
    assert not layer.handle_response(respond(tx.request, 200), 33.0)
    assert layer.poll_events() == [TransactionTimedOut(tx, "F"), TransactionTerminated(tx)]


def test_simultaneous_timers_fire_in_arming_order() -> None:
    layer = TransactionLayer()
    server = new(layer, make_request("INVITE", branch="z9hG4bKa")).transaction
    client = layer.send_request(make_request("MESSAGE", branch="z9hG4bKb"), TCP_PEER, 0.0,
                                reliable=True)  # fmt: skip
    layer.send_response(server, respond(server.request, 200), 0.0)
    drain(layer, 0.0)
    # Client F, then server H then L, all at 32 s.
    events = [e for _, e in advance(layer, 32.0).events]
    assert events == [
        TransactionTimedOut(client, "F"),
        TransactionTerminated(client),
        TransactionTimedOut(server, "H"),
        TransactionTerminated(server),
    ]


# ---- next_deadline with many transactions ------------------------------------------------


def brute_force_deadline(layer: TransactionLayer) -> float | None:
    deadlines = [
        deadline
        for tx in [*layer.server_transactions, *layer.client_transactions]
        for deadline in tx.timers.values()
    ]
    return min(deadlines, default=None)


def test_next_deadline_with_thousands_of_transactions() -> None:
    rng = random.Random(3261)
    layer = TransactionLayer(max_transactions=100_000)
    now = 0.0
    clients = []
    for n in range(3000):
        now += rng.uniform(0.0, 0.02)
        method = rng.choice(["INVITE", "OPTIONS", "BYE"])
        reliable = rng.random() < 0.3
        peer = TCP_PEER if reliable else UDP_PEER
        request = make_request(method, branch=f"z9hG4bKmany{n}", call_id=f"{n}@x")
        clients.append(layer.send_request(request, peer, now, reliable=reliable))
        if rng.random() < 0.5:  # an answer cancels Timers A/B or E
            status = rng.choice([100, 180, 200, 486])
            layer.handle_response(respond(request, status), now)
        if n % 97 == 0:
            assert layer.next_deadline() == brute_force_deadline(layer)
    # Cancelled timers do not pile up in the heap.
    assert len(layer._heap) <= max(1024, 4 * layer._pending_timers) + 1
    steps = 0
    while (deadline := layer.next_deadline()) is not None:
        steps += 1
        if steps % 101 == 0:
            assert deadline == brute_force_deadline(layer)
        layer.handle_timeouts(deadline)
        after = layer.next_deadline()
        assert after is None or after > deadline
        layer.poll_transmit()
        layer.poll_events()
    # Only INVITEs left ringing in Proceeding remain: no timer bounds them.
    assert all(tx.state is InviteClientState.PROCEEDING for tx in layer.client_transactions)
    for tx in layer.client_transactions:
        layer.handle_response(respond(tx.request, 487), now + 1000)
    advance(layer, now + 2000)
    assert len(layer) == 0 and layer.next_deadline() is None and layer._heap == []


def test_cancelled_timers_are_compacted_out_of_the_heap() -> None:
    layer = TransactionLayer(max_transactions=100_000)
    for n in range(5000):
        request = make_request("INVITE", branch=f"z9hG4bKring{n}", call_id=f"{n}@x")
        layer.send_request(request, UDP_PEER, 0.0, reliable=False)
        # Ringing stops Timers A and B: both heap entries go stale.
        layer.handle_response(respond(request, 180), 0.0)
    assert layer._pending_timers == 0
    assert len(layer._heap) <= 1025  # 10,000 entries were pushed
    assert layer.next_deadline() is None and layer._heap == []


def test_rfc2543_matching_ignores_received_and_rport_added_on_arrival() -> None:
    layer = TransactionLayer()
    first = old_request("INVITE")
    first.headers.set("Via", "SIP/2.0/UDP pc33.example.com:5060;received=192.0.2.10;rport=5060")
    tx = new(layer, first).transaction
    again = old_request("INVITE")  # as it arrives, before the transport stamps it
    assert layer.handle_request(again, UDP_PEER, 0.1, reliable=False) == Absorbed(tx)
    moved = old_request("INVITE", via_port=5080)
    assert isinstance(layer.handle_request(moved, UDP_PEER, 0.2, reliable=False), New)
