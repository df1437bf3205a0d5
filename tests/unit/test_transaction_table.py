"""The transition tables: complete for what the network can do, and every entry exercised
through the public API (a tour that reaches each state and applies each trigger)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mediaserver.sip.transaction import (
    CARRIED_TIMERS,
    ENTRY_TIMERS,
    INITIAL_STATE,
    NETWORK_INPUTS,
    TERMINATED,
    TRANSITIONS,
    Action,
    Input,
    InviteClientState,
    InviteServerState,
    Kind,
    New,
    NonInviteClientState,
    NonInviteServerState,
    ServerTransaction,
    State,
    Timer,
    Transaction,
    TransactionLayer,
    TransitionError,
    Trigger,
)
from tests.unit.test_transaction_helpers import (
    UDP_PEER,
    make_ack,
    make_cancel,
    make_request,
    respond,
)

STATE_ENUMS: dict[Kind, type[State]] = {
    Kind.INVITE_CLIENT: InviteClientState,
    Kind.NON_INVITE_CLIENT: NonInviteClientState,
    Kind.INVITE_SERVER: InviteServerState,
    Kind.NON_INVITE_SERVER: NonInviteServerState,
}


def timers_that_can_run(kind: Kind, state: State) -> set[Timer]:
    return set(ENTRY_TIMERS[kind].get(state, ())) | set(CARRIED_TIMERS.get((kind, state), ()))


# ---- the shape of the tables -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_every_state_has_a_row_and_targets_stay_in_the_machine(kind: Kind) -> None:
    states = set(STATE_ENUMS[kind])
    assert set(TRANSITIONS[kind]) == states
    assert INITIAL_STATE[kind] in states
    for row in TRANSITIONS[kind].values():
        for new_state, action in row.values():
            assert new_state in states
            assert isinstance(action, Action)


@pytest.mark.parametrize("kind", list(Kind))
def test_everything_the_network_can_deliver_is_handled_in_every_live_state(kind: Kind) -> None:
    for state, row in TRANSITIONS[kind].items():
        if state in TERMINATED:
            continue  # a terminated transaction is no longer matched
        missing = NETWORK_INPUTS[kind] - set(row)
        assert not missing, f"{kind.value} {state.value} does not handle {missing}"


@pytest.mark.parametrize("kind", list(Kind))
def test_timer_entries_are_exactly_the_timers_running_in_each_state(kind: Kind) -> None:
    for state, row in TRANSITIONS[kind].items():
        in_table = {trigger for trigger in row if isinstance(trigger, Timer)}
        assert in_table == timers_that_can_run(kind, state), f"{kind.value} {state.value}"


def test_terminated_rows_only_hold_tu_commands_and_transport_errors() -> None:
    allowed = {Input.SEND_1XX, Input.SEND_2XX, Input.SEND_3XX_6XX, Input.TU_ACK,
               Input.TRANSPORT_ERROR}  # fmt: skip
    for kind in Kind:
        for state in TERMINATED & set(TRANSITIONS[kind]):
            row = TRANSITIONS[kind][state]
            assert set(row) <= allowed
            assert all(entry == (state, Action.NONE) for entry in row.values())


def test_a_missing_entry_raises_naming_machine_state_and_trigger() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(make_request("INVITE"), UDP_PEER, 0.0, reliable=False)
    layer.handle_response(respond(tx.request, 180), 0.1)
    with pytest.raises(TransitionError) as info:
        layer._apply(tx, Timer.A, 0.2)  # Timer A is stopped in Proceeding: a bug if it fired
    assert str(info.value) == (
        "INVITE client transaction in state Proceeding has no transition for Timer A"
    )
    assert (info.value.kind, info.value.state, info.value.trigger) == (
        Kind.INVITE_CLIENT,
        InviteClientState.PROCEEDING,
        Timer.A,
    )


# ---- the tour: every entry, through the public API ---------------------------------------

Step = Callable[[TransactionLayer, Transaction], None]


def _recv(status: int) -> Step:
    def step(layer: TransactionLayer, tx: Transaction) -> None:
        assert layer.handle_response(respond(tx.request, status), 1.0)

    return step


def _send(status: int) -> Step:
    def step(layer: TransactionLayer, tx: Transaction) -> None:
        assert isinstance(tx, ServerTransaction)
        layer.send_response(tx, respond(tx.request, status), 1.0)

    return step


def _ack(layer: TransactionLayer, tx: Transaction) -> None:
    final = tx.last_response if tx.last_response is not None else respond(tx.request, 486)
    layer.handle_request(make_ack(tx.request, final), UDP_PEER, 1.0, reliable=False)


def _transport_error(layer: TransactionLayer, tx: Transaction) -> None:
    layer.handle_transport_error(tx, 1.0)


# How to bring a fresh transaction of each kind (over UDP, so every timer runs) to a state.
PATHS: dict[Kind, dict[State, list[Step]]] = {
    Kind.INVITE_CLIENT: {
        InviteClientState.CALLING: [],
        InviteClientState.PROCEEDING: [_recv(180)],
        InviteClientState.COMPLETED: [_recv(486)],
        InviteClientState.ACCEPTED: [_recv(200)],
        InviteClientState.TERMINATED: [_transport_error],
    },
    Kind.NON_INVITE_CLIENT: {
        NonInviteClientState.TRYING: [],
        NonInviteClientState.PROCEEDING: [_recv(100)],
        NonInviteClientState.COMPLETED: [_recv(200)],
        NonInviteClientState.TERMINATED: [_transport_error],
    },
    Kind.INVITE_SERVER: {
        InviteServerState.PROCEEDING: [],
        InviteServerState.COMPLETED: [_send(486)],
        InviteServerState.CONFIRMED: [_send(486), _ack],
        InviteServerState.ACCEPTED: [_send(200)],
        InviteServerState.TERMINATED: [_transport_error],
    },
    Kind.NON_INVITE_SERVER: {
        NonInviteServerState.TRYING: [],
        NonInviteServerState.PROCEEDING: [_send(100)],
        NonInviteServerState.COMPLETED: [_send(200)],
        NonInviteServerState.TERMINATED: [_transport_error],
    },
}


def start(kind: Kind) -> tuple[TransactionLayer, Transaction]:
    layer = TransactionLayer()
    method = "INVITE" if kind in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER) else "OPTIONS"
    request = make_request(method)
    if kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT):
        return layer, layer.send_request(request, UDP_PEER, 0.0, reliable=False)
    disposition = layer.handle_request(request, UDP_PEER, 0.0, reliable=False)
    assert isinstance(disposition, New)
    return layer, disposition.transaction


def fire(trigger: Trigger, layer: TransactionLayer, tx: Transaction) -> None:
    """Make ``trigger`` happen to ``tx`` through the public API."""
    if isinstance(trigger, Timer):
        layer.handle_timeouts(tx.timers[trigger.value])
        return
    response_status = {Input.RECV_1XX: 183, Input.RECV_2XX: 200, Input.RECV_3XX_6XX: 404}
    send_status = {Input.SEND_1XX: 180, Input.SEND_2XX: 200, Input.SEND_3XX_6XX: 500}
    if trigger in response_status:
        layer.handle_response(respond(tx.request, response_status[trigger]), 1.5)
    elif trigger in send_status:
        assert isinstance(tx, ServerTransaction)
        layer.send_response(tx, respond(tx.request, send_status[trigger]), 1.5)
    elif trigger is Input.RECV_REQUEST:
        layer.handle_request(tx.request, UDP_PEER, 1.5, reliable=False)
    elif trigger is Input.RECV_ACK:
        _ack(layer, tx)
    elif trigger is Input.RECV_CANCEL:
        layer.handle_request(make_cancel(tx.request), UDP_PEER, 1.5, reliable=False)
    elif trigger is Input.TU_ACK:
        assert isinstance(tx, ServerTransaction)
        layer.ack_received(tx, 1.5)
    elif trigger is Input.TRANSPORT_ERROR:
        layer.handle_transport_error(tx, 1.5)
    else:  # pragma: no cover
        raise AssertionError(trigger)


ENTRIES = [
    pytest.param(kind, state, trigger, new_state, id=f"{kind.name}-{state.name}-{trigger}")
    for kind, rows in TRANSITIONS.items()
    for state, row in rows.items()
    for trigger, (new_state, _) in row.items()
]


@pytest.mark.parametrize(("kind", "state", "trigger", "new_state"), ENTRIES)
def test_every_transition(kind: Kind, state: State, trigger: Trigger, new_state: State) -> None:
    layer, tx = start(kind)
    for step in PATHS[kind][state]:
        step(layer, tx)
    assert tx.state is state
    applied: list[tuple[Kind, State, Trigger, State]] = []
    apply = layer._apply

    def spy(tx: Transaction, trigger: Trigger, now: float, response: object = None) -> Action:
        before = tx.state
        action = apply(tx, trigger, now, response)  # type: ignore[arg-type]
        applied.append((tx.kind, before, trigger, tx.state))
        return action

    layer._apply = spy  # type: ignore[method-assign]
    fire(trigger, layer, tx)
    assert (kind, state, trigger, new_state) in applied
    if new_state in TERMINATED:
        assert tx not in [*layer.server_transactions, *layer.client_transactions]
