"""Registrar bindings shared between nodes (both engines), and how a node reaches a
user through a binding another node holds (UDP: directly; a connection: refused,
naming the node)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mediaserver.calls.dialer import reach_elsewhere
from mediaserver.sip.transport import Peer
from mediaserver.sip.uac import TargetError
from mediaserver.store import Store, StoredBinding
from tests.support.hand_clock import T0, HandClock


def binding(
    contact: str = "sip:alice@192.0.2.7:5062",
    *,
    transport: str = "udp",
    q: float = 1.0,
    seconds: float = 60,
    refreshed: float = 0,
    node: str = "",
) -> StoredBinding:
    return StoredBinding(
        node=node,
        user="alice",
        contact=contact,
        transport=transport,
        source_host="192.0.2.7",
        source_port=5062,
        q=q,
        expires_at=T0 + timedelta(seconds=seconds),
        refreshed_at=T0 + timedelta(seconds=refreshed),
    )


async def test_a_binding_written_by_one_node_is_found_by_the_other_only(
    nodes: tuple[Store, Store], clock: HandClock
) -> None:
    alpha, beta = nodes
    await alpha.bindings.replace(
        "alice",
        [
            binding("sip:alice@192.0.2.7:5062", q=0.5, refreshed=2),
            binding("sip:alice@192.0.2.8:5062", q=1.0),
            binding("sip:alice@192.0.2.9:5062", q=0.5, refreshed=1),
        ],
    )
    found = await beta.bindings.elsewhere("alice")
    assert [b.contact for b in found] == [  # best first: q, then the latest refresh
        "sip:alice@192.0.2.8:5062",
        "sip:alice@192.0.2.7:5062",
        "sip:alice@192.0.2.9:5062",
    ]
    assert {b.node for b in found} == {"alpha"}
    assert await alpha.bindings.elsewhere("alice") == []  # its own are in its memory
    assert await beta.bindings.elsewhere("bob") == []

    clock.now = T0 + timedelta(seconds=61)  # expired: not offered
    assert await beta.bindings.elsewhere("alice") == []


async def test_a_new_register_replaces_and_unregistering_removes(
    nodes: tuple[Store, Store],
) -> None:
    alpha, beta = nodes
    await alpha.bindings.replace("alice", [binding("sip:alice@192.0.2.7:5062")])
    await alpha.bindings.replace("alice", [binding("sip:alice@192.0.2.8:5062")])
    assert [b.contact for b in await beta.bindings.elsewhere("alice")] == [
        "sip:alice@192.0.2.8:5062"
    ]
    await beta.bindings.replace("alice", [binding("sip:alice@192.0.2.9:5062")])
    await alpha.bindings.replace("alice", [])  # Expires: 0 on alpha: beta's stays
    assert await beta.bindings.elsewhere("alice") == []
    assert [b.node for b in await alpha.bindings.elsewhere("alice")] == ["beta"]
    assert await beta.bindings.forget_node() == 1  # beta restarts: its registrar is empty
    assert await alpha.bindings.elsewhere("alice") == []


def test_a_udp_binding_is_reached_where_its_register_came_from() -> None:
    uri, peer = reach_elsewhere("alice", binding(node="alpha"))
    assert str(uri) == "sip:alice@192.0.2.7:5062"
    assert peer == Peer("udp", "192.0.2.7", 5062)


@pytest.mark.parametrize("transport", ["tcp", "tls", "ws", "wss"])
def test_a_connection_binding_on_another_node_is_refused_naming_it(transport: str) -> None:
    with pytest.raises(TargetError) as refused:
        reach_elsewhere("alice", binding(transport=transport, node="alpha"))
    message = str(refused.value)
    assert "registered on node 'alpha'" in message and transport.upper() in message
    assert "only that node holds the connection" in message
