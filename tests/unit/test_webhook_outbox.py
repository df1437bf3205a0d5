"""Webhook posts kept in the database (mediaserver/webhooks/outbox.py): two nodes
publishing one event post it once; a node that dies with a post in retry leaves it
to another, which posts it after the lease; a restarted node takes its own back
at once. Both engines; a real loopback receiver (tests/unit/test_webhooks.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mediaserver.store import Store
from mediaserver.webhooks.delivery import WebhookDispatcher
from mediaserver.webhooks.outbox import DeliveryClaims
from tests.unit.test_webhooks import Harness, Received, Reply, harness, target

__all__ = ["harness"]  # the fixture, shared with test_webhooks

LEASE = 1.0  # seconds: short, so a takeover happens within the test


class Node:
    """A node's store, dispatcher and claims, as the server wires them."""

    def __init__(self, store: Store, dispatcher: WebhookDispatcher, lease: float = LEASE) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.claims = DeliveryClaims(store, dispatcher, lease)
        dispatcher.outbox = self.claims
        dispatcher.start()
        self.claims.start()

    async def die(self) -> None:
        """Stop as kill -9 would: nothing handed back, no outcome recorded any more."""
        await self.claims.stop()
        self.dispatcher.outbox = None
        await self.dispatcher.stop(drain_timeout=0)


@pytest.fixture
async def opened(
    database_target: str | Path, harness: Harness
) -> AsyncIterator[Callable[[str], Any]]:
    stores: list[Store] = []

    async def open_as(node: str) -> Store:
        store = await Store.open(database_target, node=node)
        stores.append(store)
        return store

    yield open_as
    for d in harness.dispatchers:  # before their stores close
        await d.stop(drain_timeout=0)
    for store in stores:
        await store.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def attempts_recorded(store: Store, attempts: int) -> None:
    """Wait until the one pending row records ``attempts`` attempts."""
    deadline = time.monotonic() + 10
    while [r.attempts for r in await store.outbox.pending()] != [attempts]:
        assert time.monotonic() < deadline, "attempt not recorded"
        await asyncio.sleep(0.02)


def event_ids(received: list[Received]) -> list[str]:
    return [r.json()["id"] for r in received]


async def test_an_event_published_by_two_nodes_is_posted_once(
    harness: Harness, opened: Callable[[str], Any]
) -> None:
    receiver = await harness.receiver()
    hook = target(receiver.url)
    alpha = Node(await opened("alpha"), harness.dispatcher(hook))
    beta = Node(await opened("beta"), harness.dispatcher(hook))
    for node in (alpha, beta):
        node.dispatcher.publish("v2.number.assigned", "", {"n": 1}, event_id="f" * 32)
    alpha.dispatcher.publish("v2.task.updated", "", {"n": 2})  # each node's own: posted
    beta.dispatcher.publish("v2.task.updated", "", {"n": 3})
    for node in (alpha, beta):
        await asyncio.wait_for(node.dispatcher.wait_idle(), 5)
    ids = event_ids(receiver.requests)
    assert len(ids) == 3 and len(set(ids)) == 3 and ids.count("f" * 32) == 1
    elsewhere = alpha.dispatcher.metrics.elsewhere + beta.dispatcher.metrics.elsewhere
    assert elsewhere == 1
    assert await alpha.store.outbox.pending() == []


async def test_a_dead_nodes_post_in_retry_is_delivered_by_another_after_the_lease(
    harness: Harness, opened: Callable[[str], Any]
) -> None:
    answer = {"status": 500}

    def script(_: Received) -> Reply:
        return answer["status"], {}

    receiver = await harness.receiver(script)
    hook = target(receiver.url)
    # The retry is due after the lease: alpha is dead by then.
    alpha = Node(
        await opened("alpha"), harness.dispatcher(hook, base_delay=2 * LEASE, max_delay=2 * LEASE)
    )
    alpha.dispatcher.publish("v2.task.updated", "", {"n": 1})
    await attempts_recorded(alpha.store, 1)
    await alpha.die()
    [row] = await alpha.store.outbox.pending()
    assert (row.claimed_by, row.attempts) == ("alpha", 1)

    answer["status"] = 200
    died = time.monotonic()
    beta = Node(await opened("beta"), harness.dispatcher(hook))
    await asyncio.wait_for(_delivered(receiver), 10)
    # Not before alpha's lease (renewed every LEASE / 3 until it died) ran out.
    assert time.monotonic() - died >= LEASE / 2
    assert beta.claims.taken_over == 1
    posted = receiver.requests[-1].json()
    assert posted["try"] == 1  # Callr's "try": the attempts before this one
    assert event_ids(receiver.requests) == [posted["id"]] * 2  # one event, once delivered
    await wait_until(lambda: len(harness.records) == 2)  # the answer is back at beta
    assert [r.outcome for r in harness.records] == ["retrying", "delivered"]
    await wait_until(lambda: not beta.claims._held)
    assert await beta.store.outbox.pending() == []


async def _delivered(receiver: Any) -> None:
    while len(receiver.requests) < 2:
        await asyncio.sleep(0.02)


async def test_a_restarted_node_takes_its_own_posts_back_at_once(
    harness: Harness, opened: Callable[[str], Any]
) -> None:
    receiver = await harness.receiver(lambda _: (503, {}))
    hook = target(receiver.url)
    # A lease longer than the test: only taking its own rows back at start delivers.
    first = Node(await opened("alpha"), harness.dispatcher(hook, base_delay=0.2), lease=60)
    first.dispatcher.publish("v2.task.updated", "", {"n": 1})
    await attempts_recorded(first.store, 1)
    await first.die()
    await asyncio.sleep(0.01)  # the new process starts after the old one claimed

    receiver.script = lambda _: (200, {})
    again = Node(await opened("alpha"), harness.dispatcher(hook), lease=60)
    await asyncio.wait_for(_delivered(receiver), 10)
    assert again.claims.taken_over == 1


async def test_a_clean_stop_hands_posts_back_for_another_node(
    harness: Harness, opened: Callable[[str], Any]
) -> None:
    receiver = await harness.receiver(lambda _: (503, {}))
    hook = target(receiver.url)
    alpha = Node(await opened("alpha"), harness.dispatcher(hook, base_delay=60, max_delay=60))
    alpha.dispatcher.publish("v2.task.updated", "", {"n": 1})
    await attempts_recorded(alpha.store, 1)
    await alpha.dispatcher.stop(drain_timeout=0)
    await alpha.claims.stop()
    [row] = await alpha.store.outbox.pending()
    assert row.claimed_by == "" and row.attempts == 1


async def test_a_post_sent_on_to_its_failover_url_stays_one_row(
    harness: Harness, opened: Callable[[str], Any]
) -> None:
    refusing = await harness.receiver(lambda _: (400, {}))  # final: straight to the failover
    failover = await harness.receiver()
    alpha = Node(await opened("alpha"), harness.dispatcher())
    event_id = alpha.dispatcher.publish_to(
        refusing.url, "call.hangup", {"call_control_id": "v3:x"}, failover_url=failover.url
    )
    await asyncio.wait_for(alpha.dispatcher.wait_idle(), 5)
    assert [r.json()["data"]["id"] for r in failover.requests] == [event_id]  # Call Control's
    assert await alpha.store.outbox.pending() == []
    rows = await alpha.store.db.fetch_all("SELECT id, url, failover, state FROM webhook_outbox")
    assert [(r["url"], r["failover"], r["state"]) for r in rows] == [(failover.url, 1, "delivered")]
