"""The store's Call Control applications and call event log (migration 2)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediaserver.store import ApplicationSettings, CallEventFilter, NewCallEvent, Store
from mediaserver.store.call_control import (
    InboundSettings,
    OutboundSettings,
    new_application_id,
    settings_from_json,
    settings_json,
)

T0 = datetime(2025, 8, 15, 13, 52, 20, 333_000, tzinfo=UTC)


@pytest.fixture
async def store(database_target: str | Path) -> AsyncIterator[Store]:
    opened = await Store.open(database_target)
    yield opened
    await opened.close()


def test_ids_are_19_digit_int64s() -> None:
    for _ in range(2000):
        app_id = new_application_id()
        assert len(app_id) == 19 and app_id.isdigit() and int(app_id) < 2**63


def test_settings_read_back_over_the_defaults() -> None:
    settings = ApplicationSettings(
        application_name="r", webhook_event_url="http://x", tags=("a",),
        inbound=InboundSettings(channel_limit=3), outbound=OutboundSettings(channel_limit=4),
    )  # fmt: skip
    assert settings_from_json("r", settings_json(settings)) == settings
    # A row written by another version: an unknown key is ignored, a missing one defaults.
    older = {"webhook_event_url": "http://x", "colour": "red", "inbound": {"size": 1}}
    read = settings_from_json("r", json.dumps(older))
    assert read == ApplicationSettings(application_name="r", webhook_event_url="http://x")


async def test_applications_are_created_updated_and_deleted(store: Store) -> None:
    settings = ApplicationSettings(application_name="one", webhook_event_url="http://x")
    app = await store.applications.create(settings)
    assert app.settings == settings and app.created_at == app.updated_at
    changed = await store.applications.update(app.id, settings.__class__(
        application_name="two", webhook_event_url="http://y", webhook_timeout_secs=3))  # fmt: skip
    assert changed is not None and changed.application_name == "two"
    assert changed.webhook_timeout_secs == 3 and changed.created_at == app.created_at
    assert [a.id for a in await store.applications.all()] == [app.id]
    assert await store.applications.update("1", settings) is None
    deleted = await store.applications.delete(app.id)
    assert deleted == changed
    assert await store.applications.delete(app.id) is None
    assert await store.applications.all() == []


async def test_the_event_log_filters(store: Store) -> None:
    def line(name: str, seconds: int, **more: str) -> NewCallEvent:
        fields = {"call_leg_id": "leg", "application_name": "100%_app", **more}
        return NewCallEvent(
            type="webhook", name=name, status="delivered", at=T0 + timedelta(seconds=seconds),
            **fields,  # type: ignore[arg-type]
        )  # fmt: skip

    for n in range(4):
        await store.call_events.append(line(f"call.e{n}", n))
    await store.call_events.append(line("call.other", 9, call_leg_id="leg-2", application_name="x"))

    async def names(**filters: object) -> list[str]:
        page = await store.call_events.search(CallEventFilter(**filters))  # type: ignore[arg-type]
        return [e.name for e in page.hits]

    t1 = T0 + timedelta(seconds=1)
    assert await names(after=t1) == ["call.e2", "call.e3", "call.other"]
    assert await names(since=t1, call_leg_id="leg") == ["call.e1", "call.e2", "call.e3"]
    assert await names(before=t1) == ["call.e0"]
    assert await names(until=t1) == ["call.e0", "call.e1"]
    assert await names(at=t1) == ["call.e1"]
    assert await names(window_start=T0 + timedelta(seconds=5)) == ["call.other"]
    assert len(await names(application_name_contains="0%_A")) == 4  # % and _ are literal
    assert await names(application_name_contains="0_") == []
    assert await names(status="failed") == []
    page = await store.call_events.search(limit=2, offset=4)
    assert (page.total, [e.name for e in page.hits]) == (5, ["call.other"])
    assert await store.call_events.prune(T0 + timedelta(seconds=2)) == 2
