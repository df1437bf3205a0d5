"""Relay workers (media/relay_workers.py, relay_worker.py) with real worker processes.

Two legs are bridged in this process as the server bridges them, loopback
peers send RTP, and the pool's sweep is called by hand: the bridge goes to a
worker process, comes home when its bridge ends or a telephone-event arrives,
and the legs' figures and headers carry on exactly as if the bridge had
stayed. The pool gives up starting workers that die as they start.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator

import pytest

from mediaserver.media.clock import MediaClock
from mediaserver.media.leg import RtpLeg
from mediaserver.media.relay_workers import GIVE_UP_AFTER, SETTLE_PACKETS, RelayWorkers
from mediaserver.media.rtp import build_rtp
from tests.unit.test_leg import PEER_SSRC, TE_PT, Legs, Peer, until

SILENCE = b"\xff" * 160


@pytest.fixture
async def pool() -> AsyncIterator[RelayWorkers]:
    made = RelayWorkers(1)
    yield made
    await made.close()


@pytest.fixture
async def legs() -> AsyncIterator[Legs]:
    clock = MediaClock()
    made = Legs(clock)
    yield made
    for leg in made.opened:
        leg.close()
    clock.stop()


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    made = Peer()
    yield made
    made.sock.close()


other = peer  # a second peer


async def bridged(legs: Legs, pool: RelayWorkers, a: Peer, b: Peer) -> tuple[RtpLeg, RtpLeg]:
    caller, callee = await legs.open(remote=a.addr), await legs.open(remote=b.addr)
    for leg in (caller, callee):
        leg.relay_pool = pool
        leg.start()
    caller.relay_to(callee)
    callee.relay_to(caller)
    return caller, callee


async def talk(a: Peer, caller: RtpLeg, b: Peer, callee: RtpLeg, packets: int) -> None:
    for _ in range(packets):
        a.send_audio(caller, SILENCE)
        b.send_audio(callee, SILENCE)
        await asyncio.sleep(0.002)


async def hand_over(pool: RelayWorkers, a: Peer, caller: RtpLeg, b: Peer, callee: RtpLeg) -> None:
    """Relay at home long enough for two sweeps (and a worker to start), then sweep."""
    for _ in range(3):
        await talk(a, caller, b, callee, SETTLE_PACKETS)
        await until(lambda: pool.running == 1, timeout=10)
        pool.sweep()
    assert caller.away is not None and callee.away is not None
    assert pool.carried_legs == 2


async def test_a_bridge_goes_to_a_worker_and_back_with_its_figures(
    legs: Legs, pool: RelayWorkers, peer: Peer, other: Peer
) -> None:
    caller, callee = await bridged(legs, pool, peer, other)
    await hand_over(pool, peer, caller, other, callee)
    await talk(peer, caller, other, callee, 30)  # relayed by the worker
    callee.relay_to(None)  # the bridge ends one way: both legs come home
    await talk(peer, caller, other, callee, 10)  # while they are on their way
    await caller.home()
    await callee.home()
    assert caller.away is None and callee.away is None and pool.returns == 1
    assert caller.transport is not None  # reading its socket again
    await talk(peer, caller, other, callee, 10)  # relayed at home again
    # Nothing lost on the way there and back, and all of it one stream in order.
    sent = peer.seq - 1000  # the peer numbers its packets from 1000
    got: list[bytes] = []
    await until(lambda: got.extend(received(other)) or len(got) >= sent)
    numbers = [int.from_bytes(p[2:4], "big") for p in got]
    assert len(got) == sent
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(numbers)), numbers
    # Every packet was counted, as the fast path counts.
    assert caller.packets_in == sent
    assert caller.rtp_stats.receiver.received == sent - 1  # RFC 3550 A.1 probation
    assert callee.packets_out == sent


def received(peer: Peer) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(peer.sock.recv(2048))
        except BlockingIOError:
            return got


async def test_a_telephone_event_brings_the_bridge_home_and_is_relayed(
    legs: Legs, pool: RelayWorkers, peer: Peer, other: Peer
) -> None:
    caller, callee = await bridged(legs, pool, peer, other)
    await hand_over(pool, peer, caller, other, callee)
    await asyncio.sleep(0.05)
    before = received(other)
    event = bytes([5, 10, 0, 160])
    peer.send(caller, build_rtp(TE_PT, peer.seq, peer.ts, PEER_SSRC, event, True))
    peer.seq += 1
    await caller.home()  # the worker gave the bridge back with the packet
    await asyncio.sleep(0.05)
    after = received(other)
    events = [p for p in after if p[1] & 0x7F == TE_PT]
    assert len(events) == 1 and events[0][12] == 5
    # One stream at the callee, in order: the worker's packets, the event sent from
    # home, numbered on from where the worker left off.
    numbers = [int.from_bytes(p[2:4], "big") for p in before + after]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(numbers)), numbers
    assert caller.away is None and pool.returns == 1


async def test_workers_that_die_as_they_start_are_given_up() -> None:
    pool = RelayWorkers(1)
    pool.command = [sys.executable, "-c", "raise SystemExit(3)"]
    try:
        for _ in range(GIVE_UP_AFTER):
            pool._worker()
            await until(lambda: not pool._workers, timeout=10)
        assert pool.count == 0 and pool.restarts == GIVE_UP_AFTER
        assert pool._worker() is None and not pool._workers  # no more starts
    finally:
        await pool.close()


async def test_a_new_bridge_goes_before_its_media_and_the_worker_latches_the_peer(
    legs: Legs, pool: RelayWorkers, peer: Peer, other: Peer
) -> None:
    """Bridged, no packet yet: the group goes at once (media starting on many calls
    together would saturate the main loop); the SDP's address is latched on sight
    by the worker, as the main process would, and the leg knows it back home."""
    caller, callee = await bridged(legs, pool, peer, other)
    await until(lambda: pool.running == 1, timeout=10)
    pool.sweep()  # marks the legs: nothing received yet
    assert caller.away is not None and callee.away is not None and caller.packets_in == 0
    await talk(peer, caller, other, callee, 20)
    got: list[bytes] = []
    await until(lambda: got.extend(received(other)) or len(got) >= 20)
    callee.relay_to(None)
    await caller.home()
    await callee.home()
    assert caller.latch.peer == peer.addr and caller.remote == peer.addr
    assert callee.latch.peer == other.addr
    assert caller.packets_in == 20 and caller.rtp_stats.receiver.ssrc == PEER_SSRC
    numbers = [int.from_bytes(p[2:4], "big") for p in got]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(numbers)), numbers
