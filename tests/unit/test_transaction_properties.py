"""Random sequences of network input, TU commands and time against the transaction layer.

Invariants checked after every step: no exception, ``next_deadline`` is the earliest
timer of the live transactions and never in the past after ``handle_timeouts``, the
layer holds no terminated transaction, and counts add up. At the end every
transaction must terminate (exactly once) and the layer must be empty.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from mediaserver.sip.message import Request
from mediaserver.sip.transaction import (
    Absorbed,
    ClientTransaction,
    InviteClientState,
    InviteServerState,
    Kind,
    New,
    Overloaded,
    ResponseReceived,
    StrayAck,
    Transaction,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from tests.unit.test_transaction_helpers import (
    TCP_PEER,
    UDP_PEER,
    make_2xx_ack,
    make_ack,
    make_cancel,
    make_request,
    respond,
)

METHODS = st.sampled_from(["INVITE", "INVITE", "OPTIONS", "BYE", "REGISTER"])
STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 487, 500, 603])


class TransactionLayerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.layer = TransactionLayer(max_transactions=40)
        self.now = 0.0
        self.serial = 0
        self.created: list[Transaction] = []
        self.received: list[Request] = []  # requests from the network, to retransmit
        self.terminated: list[Transaction] = []

    def _branch(self, rfc2543: bool = False) -> str:
        self.serial += 1
        return f"old{self.serial}" if rfc2543 else f"z9hG4bKp{self.serial}"

    def _collect(self) -> None:
        for transmit in self.layer.poll_transmit():
            tx = transmit.transaction
            assert tx is not None and transmit.peer == tx.peer
        for event in self.layer.poll_events():
            if isinstance(event, ResponseReceived):
                assert isinstance(event.transaction, ClientTransaction)
            elif isinstance(event, TransactionTimedOut):
                assert event.timer in ("B", "F", "H")
            elif isinstance(event, TransactionTerminated):
                assert event.transaction.terminated
                self.terminated.append(event.transaction)
            else:
                assert isinstance(event, TransportFailed)

    # ---- the network and the TU ----------------------------------------------------------

    @rule(method=METHODS, reliable=st.booleans())
    def send_request(self, method: str, reliable: bool) -> None:
        request = make_request(method, branch=self._branch(), call_id=f"c{self.serial}")
        peer = TCP_PEER if reliable else UDP_PEER
        self.created.append(self.layer.send_request(request, peer, self.now, reliable=reliable))
        self._collect()

    @rule(data=st.data(), status=STATUSES)
    def response_arrives(self, data: st.DataObject, status: int) -> None:
        clients = [tx for tx in self.created if isinstance(tx, ClientTransaction)]
        if not clients:
            return
        tx = data.draw(st.sampled_from(clients))  # live or already terminated
        tag = data.draw(st.sampled_from(["t1", "t2"]))
        live = not tx.terminated
        matched = self.layer.handle_response(respond(tx.request, status, tag), self.now)
        assert matched is live
        self._collect()

    @rule(method=METHODS, reliable=st.booleans(), rfc2543=st.booleans())
    def request_arrives(self, method: str, reliable: bool, rfc2543: bool) -> None:
        request = make_request(
            method, branch=self._branch(rfc2543), call_id=f"s{self.serial}", cseq=self.serial
        )
        disposition = self.layer.handle_request(
            request, TCP_PEER if reliable else UDP_PEER, self.now, reliable=reliable
        )
        if isinstance(disposition, New):
            self.created.append(disposition.transaction)
            self.received.append(request)
        else:
            assert isinstance(disposition, Overloaded)
            assert len(self.layer) >= self.layer.max_transactions
        self._collect()

    @precondition(lambda self: self.received)
    @rule(data=st.data())
    def request_retransmitted(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(self.received))
        disposition = self.layer.handle_request(request, UDP_PEER, self.now, reliable=False)
        if isinstance(disposition, New):  # the first one terminated: a new transaction
            self.created.append(disposition.transaction)
        else:
            assert isinstance(disposition, Absorbed | Overloaded)
        self._collect()

    @precondition(lambda self: self.received)
    @rule(data=st.data(), kind=st.sampled_from(["hop", "2xx", "cancel"]))
    def ack_or_cancel_arrives(self, data: st.DataObject, kind: str) -> None:
        invites = [r for r in self.received if r.method == "INVITE"]
        if not invites:
            return
        invite = data.draw(st.sampled_from(invites))
        response = respond(invite, data.draw(st.sampled_from([200, 486])))
        if kind == "hop":
            request = make_ack(invite, response)
        elif kind == "2xx":
            request = make_2xx_ack(invite, response, branch=self._branch())
        else:
            request = make_cancel(invite)
        disposition = self.layer.handle_request(request, UDP_PEER, self.now, reliable=False)
        if request.method == "ACK":
            assert isinstance(disposition, Absorbed | StrayAck)
        elif isinstance(disposition, New):
            self.created.append(disposition.transaction)
        self._collect()

    @rule(data=st.data(), status=STATUSES)
    def tu_responds(self, data: st.DataObject, status: int) -> None:
        servers = self.layer.server_transactions
        if not servers:
            return
        tx = data.draw(st.sampled_from(servers))
        accepted_2xx = tx.state is InviteServerState.ACCEPTED and 200 <= status < 300
        if tx.finalised and not accepted_2xx:
            return  # the TU may not answer twice; TransitionError is tested elsewhere
        self.layer.send_response(tx, respond(tx.request, status), self.now)
        self._collect()

    @rule(data=st.data())
    def tu_matches_ack(self, data: st.DataObject) -> None:
        accepted = [
            tx for tx in self.layer.server_transactions if tx.state is InviteServerState.ACCEPTED
        ]
        if accepted:
            self.layer.ack_received(data.draw(st.sampled_from(accepted)), self.now)
            self._collect()

    @rule(data=st.data())
    def transport_fails(self, data: st.DataObject) -> None:
        if self.created:
            self.layer.handle_transport_error(data.draw(st.sampled_from(self.created)), self.now)
            self._collect()

    @rule(dt=st.floats(min_value=0.0, max_value=40.0, allow_nan=False))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.layer.handle_timeouts(self.now)
        deadline = self.layer.next_deadline()
        assert deadline is None or deadline > self.now
        self._collect()

    # ---- invariants ----------------------------------------------------------------------

    @invariant()
    def deadline_is_the_earliest_live_timer(self) -> None:
        live: list[Transaction] = [
            *self.layer.server_transactions,
            *self.layer.client_transactions,
        ]
        earliest = min((d for tx in live for d in tx.timers.values()), default=None)
        assert self.layer.next_deadline() == earliest

    @invariant()
    def layer_holds_live_transactions_only(self) -> None:
        live: list[Transaction] = [
            *self.layer.server_transactions,
            *self.layer.client_transactions,
        ]
        assert not any(tx.terminated for tx in live)
        assert len(self.layer) == len(live) == sum(self.layer.counts().values())
        assert len(self.layer.server_transactions) <= self.layer.max_transactions

    def teardown(self) -> None:
        # What a TU and the network eventually do: answer every request, answer every
        # INVITE left ringing, then let time run out.
        end = self.now + 200.0
        for _ in range(3):
            for server in self.layer.server_transactions:
                if not server.finalised:
                    self.layer.send_response(server, respond(server.request, 500), self.now)
            for client in self.layer.client_transactions:
                if client.state is InviteClientState.PROCEEDING:
                    self.layer.handle_response(respond(client.request, 487), self.now)
            self._collect()
            while (deadline := self.layer.next_deadline()) is not None:
                # Every transaction ends within 64*T1 plus Timer D of its last input.
                assert deadline <= end, f"a timer still runs at {deadline}"
                assert deadline >= self.now
                self.now = deadline
                self.layer.handle_timeouts(deadline)
                self._collect()
        assert len(self.layer) == 0
        assert self.layer.counts() == {}
        assert self.layer.next_deadline() is None
        # Every transaction terminated exactly once.
        assert sorted(map(id, self.terminated)) == sorted(map(id, self.created))
        assert all(tx.kind in Kind for tx in self.created)


TransactionLayerMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_transaction_layer_state_machine = TransactionLayerMachine.TestCase
