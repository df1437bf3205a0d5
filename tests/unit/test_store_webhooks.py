"""Webhooks CRUD and the delivery log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mediaserver.store import DeliveryFilter, NewDelivery, Store
from tests.support.hand_clock import T0, HandClock


@pytest.fixture
async def store(database_target: str | Path, clock: HandClock) -> AsyncIterator[Store]:
    opened = await Store.open(database_target, clock=clock)
    yield opened
    await opened.close()


def attempt(
    webhook_id: str,
    *,
    outcome: str = "delivered",
    status: int | None = 200,
    seconds: float = 0,
    event_id: str = "ev1",
    event_type: str = "v2.call.inbound.started",
    number: int = 1,
    subject: str = "",
) -> NewDelivery:
    return NewDelivery(
        webhook_id=webhook_id,
        url="https://example.com/hook",
        event_id=event_id,
        event_type=event_type,
        attempt=number,
        outcome=outcome,  # type: ignore[arg-type]
        status_code=status,
        error=None if outcome == "delivered" else f"HTTP {status}",
        duration_ms=12.5,
        at=T0 + timedelta(seconds=seconds),
        subject_sid=subject,
    )


async def test_webhook_crud(store: Store, clock: HandClock) -> None:
    created = await store.webhooks.create("https://example.com/hook", ["v2.call.*"], secret="s3")
    assert re.fullmatch(r"[a-z0-9]{8}", created.id)
    assert (created.url, created.events, created.secret, created.enabled) == (
        "https://example.com/hook",
        ("v2.call.*",),
        "s3",
        True,
    )
    assert (created.failed, created.last_failed_at, created.created_at) == (0, None, T0)
    assert await store.webhooks.get(created.id) == created
    default = await store.webhooks.create("https://example.com/all")
    assert (default.events, default.secret) == (("*",), None)

    clock.now = T0 + timedelta(minutes=5)
    disabled = await store.webhooks.update(created.id, enabled=False)
    assert disabled is not None
    assert (disabled.enabled, disabled.events, disabled.secret) == (False, ("v2.call.*",), "s3")
    assert disabled.updated_at == T0 + timedelta(minutes=5)
    changed = await store.webhooks.update(
        created.id, url="https://other.example/h", events=["v2.recording.updated"], secret="s4"
    )
    assert changed is not None
    assert (changed.url, changed.events, changed.secret, changed.enabled) == (
        "https://other.example/h",
        ("v2.recording.updated",),
        "s4",
        False,
    )
    unsigned = await store.webhooks.update(created.id, clear_secret=True)
    assert unsigned is not None
    assert unsigned.secret is None
    with pytest.raises(ValueError, match="not both"):
        await store.webhooks.update(created.id, secret="x", clear_secret=True)
    with pytest.raises(TypeError, match="list of event patterns"):
        await store.webhooks.update(created.id, events="v2.call.*")
    assert await store.webhooks.update("nosuchid", enabled=True) is None

    assert await store.webhooks.delete(created.id)
    assert not await store.webhooks.delete(created.id)
    assert await store.webhooks.get(created.id) is None


async def test_webhook_search_and_the_enabled_list(store: Store, clock: HandClock) -> None:
    made = []
    for minute, (events, enabled) in enumerate(
        [(["*"], True), (["v2.call.*", "v2.recording.updated"], True), (["v2.call.*"], False)]
    ):
        clock.now = T0 + timedelta(minutes=minute)
        made.append(await store.webhooks.create(f"https://h/{minute}", events, enabled=enabled))
    everything = await store.webhooks.search()
    assert [w.id for w in everything.hits] == [w.id for w in reversed(made)]
    calls = await store.webhooks.search(event="v2.call.*", order="asc")
    assert [w.id for w in calls.hits] == [made[1].id, made[2].id]
    assert [w.id for w in (await store.webhooks.search(enabled=False)).hits] == [made[2].id]
    assert [w.id for w in (await store.webhooks.search(event="v2.call", limit=5)).hits] == []
    page = await store.webhooks.search(limit=1, offset=1)
    assert ([w.id for w in page.hits], page.total, page.has_more) == ([made[1].id], 3, True)
    assert [w.id for w in await store.webhooks.enabled()] == [made[0].id, made[1].id]


async def test_the_delivery_log_records_attempts_and_failure_counts(store: Store) -> None:
    hook = await store.webhooks.create("https://example.com/hook")
    first = await store.deliveries.append(
        attempt(hook.id, outcome="retrying", status=503), payload='{"id":"ev1","try":0}'
    )
    assert (first.id, first.outcome, first.status_code, first.error) == (
        1,
        "retrying",
        503,
        "HTTP 503",
    )
    assert (first.payload, first.duration_ms, first.at) == ('{"id":"ev1","try":0}', 12.5, T0)
    await store.deliveries.append(attempt(hook.id, outcome="failed", status=None, seconds=2))
    failing = await store.webhooks.get(hook.id)
    assert failing is not None
    assert (failing.failed, failing.last_failed_at) == (2, T0 + timedelta(seconds=2))
    await store.deliveries.append(attempt(hook.id, seconds=4, event_id="ev2"))
    recovered = await store.webhooks.get(hook.id)
    assert recovered is not None
    assert (recovered.failed, recovered.last_failed_at) == (0, T0 + timedelta(seconds=2))


async def test_log_rows_of_unknown_or_deleted_webhooks_are_kept(store: Store) -> None:
    hook = await store.webhooks.create("https://example.com/hook")
    await store.deliveries.append(attempt(hook.id))
    await store.deliveries.append(attempt("cfgsid01", outcome="failed", status=404))
    assert await store.webhooks.delete(hook.id)
    page = await store.deliveries.search()
    assert sorted(d.webhook_id for d in page.hits) == sorted([hook.id, "cfgsid01"])


async def test_delivery_log_search_filters_pages_and_prunes(store: Store) -> None:
    hook = await store.webhooks.create("https://example.com/hook")
    rows = [
        await store.deliveries.append(attempt(hook.id, outcome="retrying", status=500)),
        await store.deliveries.append(attempt(hook.id, seconds=5, number=2)),
        await store.deliveries.append(
            attempt(
                "other001",
                seconds=10,
                event_id="ev2",
                event_type="v2.recording.updated",
                subject="rec00001",
            )
        ),
    ]

    async def ids(**filters: object) -> list[int]:
        page = await store.deliveries.search(DeliveryFilter(**filters), limit=50)  # type: ignore[arg-type]
        return [d.id for d in page.hits]

    assert await ids() == [rows[2].id, rows[1].id, rows[0].id]
    assert await ids(webhook_id=hook.id) == [rows[1].id, rows[0].id]
    assert await ids(event_id="ev1", attempt=2) == [rows[1].id]
    assert await ids(event_type="v2.recording.updated") == [rows[2].id]
    assert await ids(subject_sid="rec00001") == [rows[2].id]
    assert await ids(outcome="retrying") == [rows[0].id]
    assert await ids(status_code=200) == [rows[2].id, rows[1].id]
    assert await ids(url="https://example.com/hook", since=T0 + timedelta(seconds=5)) == [
        rows[2].id,
        rows[1].id,
    ]
    assert await ids(until=T0) == [rows[0].id]
    page = await store.deliveries.search(order="asc", limit=2)
    assert ([d.id for d in page.hits], page.total, page.has_more) == (
        [rows[0].id, rows[1].id],
        3,
        True,
    )

    assert await store.deliveries.prune(T0 + timedelta(seconds=5)) == 1
    assert await ids() == [rows[2].id, rows[1].id]
