"""The SMS table: created, moved through statuses with a history, searched, and
what a stop left on its way expired at the next start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mediaserver.store import NewSms, SmsFilter, Store
from mediaserver.store.sms import Direction
from tests.support.hand_clock import T0, HandClock


@pytest.fixture
async def store(database_target: str | Path, clock: HandClock) -> AsyncIterator[Store]:
    opened = await Store.open(database_target, clock=clock)
    yield opened
    await opened.close()


def new(
    sid: str, direction: Direction = "outbound", text: str = "hello", status: str = "created"
) -> NewSms:
    return NewSms(
        id=sid, direction=direction, sender="MyCompany", recipient="+33612345678", text=text,
        encoding="gsm", parts=1, traffic_type="marketing", status=status,
    )  # fmt: skip


async def test_statuses_are_kept_in_order_with_their_times(store: Store, clock: HandClock) -> None:
    created = await store.sms.create(new("aaaa0001"))
    assert created.status == "created" and created.sent_at is None
    for status in ("pending", "sent"):
        clock.now += timedelta(seconds=1)
        await store.sms.set_status("aaaa0001", status)
    clock.now += timedelta(seconds=1)
    done = await store.sms.set_status("aaaa0001", "delivered", sip_status=200)
    assert done is not None
    assert [s for s, _ in done.history] == ["created", "pending", "sent", "delivered"]
    assert done.sent_at == T0 + timedelta(seconds=2)
    assert done.delivered_at == done.updated_at == T0 + timedelta(seconds=3)
    shown = done.as_sms()
    assert shown["statusHistory"][0] == {"status": "created", "at": "2024-04-24T17:42:28.000Z"}
    assert (shown["sipStatus"], shown["body"], shown["cost"]) == (200, {"text": "hello"}, None)
    assert await store.sms.set_status("zzzz0000", "sent") is None


async def test_search_filters_as_the_seed_does(store: Store, clock: HandClock) -> None:
    await store.sms.create(new("aaaa0001", text="50% off today"))
    clock.now += timedelta(minutes=1)
    await store.sms.create(new("aaaa0002", direction="inbound", text="hi", status="delivered"))
    page = await store.sms.search()
    assert [s.id for s in page.hits] == ["aaaa0002", "aaaa0001"]  # newest first
    assert (await store.sms.search(SmsFilter(contains="50%"))).total == 1
    assert (await store.sms.search(SmsFilter(contains="%"))).total == 1  # literal, not a wildcard
    assert (await store.sms.search(SmsFilter(direction="inbound"))).hits[0].id == "aaaa0002"
    assert (await store.sms.search(SmsFilter(status="created"))).hits[0].id == "aaaa0001"
    after = SmsFilter(created_after=T0 + timedelta(seconds=30))
    assert [s.id for s in (await store.sms.search(after)).hits] == ["aaaa0002"]
    oldest = await store.sms.search(order="asc", limit=1)
    assert [s.id for s in oldest.hits] == ["aaaa0001"] and oldest.has_more


async def test_sms_on_their_way_at_a_stop_expire_at_the_next_start(store: Store) -> None:
    await store.sms.create(new("aaaa0001"))
    await store.sms.create(new("aaaa0002"))
    await store.sms.set_status("aaaa0002", "delivered")
    await store.sms.create(new("aaaa0003", direction="inbound", status="delivered"))
    assert await store.sms.expire_unfinished("stopped") == ["aaaa0001"]
    expired = await store.sms.get("aaaa0001")
    assert expired is not None and (expired.status, expired.error) == ("expired", "stopped")
