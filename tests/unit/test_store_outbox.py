"""The webhook outbox: a post is claimed by one node, taken over when its lease runs
out, and the same event inserted by two nodes is one post (both engines)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from mediaserver.store import OutboxPost, Store
from mediaserver.store.outbox import event_key
from tests.support.hand_clock import T0, HandClock

LEASE = 10.0


def post(event_id: str = "ev1", url: str = "http://127.0.0.1:9/hook") -> OutboxPost:
    return OutboxPost(
        event_key=event_key(event_id, "wh1", url),
        webhook_id="wh1",
        url=url,
        secret="s3cret",
        hmac_algo="SHA256",
        event_type="v2.number.assigned",
        event_id=event_id,
        subject_sid="+33612345678",
        payload={"e164": "+33612345678", "nested": {"a": [1, 2]}},
        event_at=T0,
        failover_url="http://127.0.0.1:9/failover",
        timeout=2.5,
    )


async def test_an_inserted_post_is_claimed_by_its_node_and_kept_whole(
    nodes: tuple[Store, Store],
) -> None:
    alpha, _ = nodes
    row_id = await alpha.outbox.insert(post(), LEASE)
    assert row_id is not None
    row = await alpha.outbox.get(row_id)
    assert row is not None
    assert (row.claimed_by, row.state, row.attempts) == ("alpha", "pending", 0)
    assert row.lease_until == T0 + timedelta(seconds=LEASE)
    assert row.payload == post().payload and row.event_at == T0
    assert (row.secret, row.timeout, row.failover_url) == ("s3cret", 2.5, post().failover_url)


async def test_the_same_event_inserted_by_two_nodes_is_one_post(
    nodes: tuple[Store, Store],
) -> None:
    alpha, beta = nodes
    first = await alpha.outbox.insert(post("same"), LEASE)
    second = await beta.outbox.insert(post("same"), LEASE)
    assert first is not None and second is None
    assert [r.claimed_by for r in await beta.outbox.pending()] == ["alpha"]
    # Another URL of the same event is another post.
    assert await beta.outbox.insert(post("same", url="http://127.0.0.1:9/other"), LEASE)


async def test_a_held_claim_is_not_taken_and_an_expired_one_is(
    nodes: tuple[Store, Store], clock: HandClock
) -> None:
    alpha, beta = nodes
    started = T0 - timedelta(seconds=1)
    row_id = await alpha.outbox.insert(post(), LEASE)
    assert row_id is not None
    await alpha.outbox.attempted(row_id, 2, "pending", retry_in=4.0)
    clock.advance(LEASE / 2)
    assert await beta.outbox.claim(LEASE, started) == []
    assert await alpha.outbox.renew([row_id], LEASE) == 1  # alpha alive: its lease goes on
    clock.advance(LEASE - 1)
    assert await beta.outbox.claim(LEASE, started) == []

    clock.advance(2)  # alpha stopped renewing (it died): its lease ran out
    [taken] = await beta.outbox.claim(LEASE, started)
    assert (taken.id, taken.claimed_by, taken.attempts) == (row_id, "beta", 2)
    assert taken.due_at == T0 + timedelta(seconds=4)
    assert await alpha.outbox.claim(LEASE, started) == []  # beta holds it now
    # The dead node's renewal (it was only slow) no longer holds a row it lost.
    assert await alpha.outbox.renew([row_id], LEASE) == 0

    await beta.outbox.attempted(row_id, 3, "delivered")
    clock.advance(LEASE * 2)
    assert await alpha.outbox.claim(LEASE, started) == []  # finished rows stay finished
    assert await alpha.outbox.pending() == []


async def test_a_restarted_node_takes_back_its_own_rows_at_once(
    nodes: tuple[Store, Store], clock: HandClock, engine: str
) -> None:
    alpha, beta = nodes
    row_id = await alpha.outbox.insert(post(), LEASE)
    clock.advance(1)
    restarted = clock.now  # alpha's process died and a new one starts, lease still running
    if engine == "postgresql":
        assert await beta.outbox.claim(LEASE, restarted) == []  # beta: alpha's lease holds
    [taken] = await alpha.outbox.claim(LEASE, restarted)
    assert taken.id == row_id and taken.claimed_by == "alpha"
    assert await alpha.outbox.claim(LEASE, restarted) == []  # claimed after the start now
    if engine == "sqlite":
        # One server owns an SQLite file: whatever was claimed before this start is its own.
        other = await beta.outbox.insert(post("ev2"), LEASE)
        clock.advance(1)
        assert [r.id for r in await alpha.outbox.claim(LEASE, clock.now)] == [row_id, other]


async def test_two_nodes_claiming_at_once_never_share_a_row(
    nodes: tuple[Store, Store], clock: HandClock
) -> None:
    alpha, beta = nodes
    for n in range(40):
        await alpha.outbox.insert(post(f"ev{n}"), LEASE)
    clock.advance(LEASE + 1)  # alpha died
    started = T0 - timedelta(seconds=1)
    grabs = await asyncio.gather(
        *(store.outbox.claim(LEASE, started, limit=5) for store in (alpha, beta) * 6)
    )
    ids = [row.id for rows in grabs for row in rows]
    assert len(ids) == len(set(ids)) == 40


async def test_release_and_failover_and_prune(nodes: tuple[Store, Store], clock: HandClock) -> None:
    alpha, beta = nodes
    started = T0 - timedelta(seconds=1)
    row_id = await alpha.outbox.insert(post(), LEASE)
    assert row_id is not None
    await alpha.outbox.moved(row_id, "http://127.0.0.1:9/failover")
    await alpha.outbox.release([row_id])  # alpha stops cleanly: beta need not wait
    [taken] = await beta.outbox.claim(LEASE, started)
    assert (taken.url, taken.failover, taken.failover_url, taken.attempts) == (
        "http://127.0.0.1:9/failover", True, None, 0,
    )  # fmt: skip
    await beta.outbox.attempted(row_id, 1, "failed")
    clock.advance(3600)
    assert await alpha.outbox.prune(clock.now) == 1
    assert await alpha.outbox.get(row_id) is None
