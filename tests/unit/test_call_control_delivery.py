"""The server's Call Control delivery as composed in ``server.py``: its dispatcher signs with the
server's key, falls back to the application's failover URL, and logs every attempt where
``GET /call_events`` reads it (the store's call event log), under the application's name.

A real :class:`~mediaserver.server.Server` (not started: no SIP or HTTP
listeners) with a real store, a real dispatcher and real loopback receivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import telnyx

from mediaserver.callcontrol.keys import public_key_b64, signing_key
from mediaserver.config import Config, HttpConfig
from mediaserver.server import Server
from mediaserver.store import ApplicationSettings, CallEventFilter, Store
from tests.support.net import free_port
from tests.unit.test_webhooks import Receiver

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = {
    "call_control_id": "v3:abc",
    "call_leg_id": "leg-7",
    "call_session_id": "session-7",
    "from": "+15550001",
    "to": "+15550002",
    "direction": "incoming",
    "state": "parked",
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = Config(
        path=tmp_path / "config.yaml",
        http=HttpConfig("127.0.0.1", 0, ("k",)),
        scenarios_dir=REPO / "tests" / "integration" / "scenarios",
        data_dir=tmp_path,
    )
    server = Server(config)
    server.webhooks.signing_key = signing_key(config)  # as start() does
    server.webhooks.max_attempts = 2
    server.webhooks.base_delay = 0.01
    server.store = await Store.open(tmp_path / "store.db")
    await server.call_control_apps.load()
    server.webhooks.start()
    yield server
    await server.webhooks.stop(drain_timeout=0)
    await server.store.close()


async def test_a_dead_primary_fails_over_and_every_attempt_is_logged(server: Server) -> None:
    failover = Receiver()
    await failover.start()
    try:
        primary = f"http://127.0.0.1:{free_port('tcp')}/hooks"  # nothing listens
        app = await server.call_control_apps.create(
            ApplicationSettings(
                application_name="router",
                webhook_event_url=primary,
                webhook_event_failover_url=failover.url,
                webhook_timeout_secs=2,
            )
        )
        assert server.call_control_apps.get(app.id) == app
        server.webhooks.publish_to(
            app.webhook_event_url, "call.initiated", PAYLOAD, webhook_id=app.id,
            failover_url=app.webhook_event_failover_url, timeout=app.webhook_timeout_secs,
        )  # fmt: skip
        await asyncio.wait_for(server.webhooks.wait_idle(), 10)
    finally:
        await failover.close()

    [request] = failover.requests
    sdk = telnyx.Telnyx(api_key="unused", base_url="http://127.0.0.1:9")
    assert server.webhooks.signing_key is not None
    key = public_key_b64(server.webhooks.signing_key)
    event = sdk.webhooks.unwrap(request.body.decode(), headers=request.headers, key=key)
    assert event.data.event_type == "call.initiated"  # type: ignore[union-attr]

    assert server.store is not None
    page = await server.store.call_events.search(CallEventFilter(call_leg_id="leg-7"))
    lines = [(e.status, e.metadata["delivery"]["url"], e.metadata["delivery"]["failover"])
             for e in page.hits]  # fmt: skip
    assert lines == [
        ("failed", primary, False),
        ("failed", primary, False),
        ("delivered", failover.url, True),
    ]
    for line in page.hits:
        assert (line.type, line.name, line.call_session_id) == (
            "webhook",
            "call.initiated",
            "session-7",
        )
        assert (line.application_id, line.application_name) == (app.id, "router")
        assert line.metadata["event"]["data"]["payload"] == PAYLOAD
    # The native webhook log keeps every attempt too, as before.
    assert (await server.store.deliveries.search()).total == 3


async def test_native_events_stay_out_of_the_call_event_log(server: Server) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        server.webhooks.publish_to(receiver.url, "v2.scenario.event", {"call_leg_id": "x"})
        await asyncio.wait_for(server.webhooks.wait_idle(), 10)
    finally:
        await receiver.close()
    assert server.store is not None
    assert (await server.store.call_events.search(CallEventFilter())).total == 0
    assert (await server.store.deliveries.search()).total == 1


async def test_application_changes_reach_memory_only_when_stored(server: Server) -> None:
    apps = server.call_control_apps
    app = await apps.create(ApplicationSettings(application_name="a", webhook_event_url="http://x"))

    def refuse(_: ApplicationSettings) -> ApplicationSettings:
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await apps.update(app.id, refuse)
    assert apps.get(app.id) == app
    assert server.store is not None
    await server.store.close()  # the store now refuses every write
    with pytest.raises(Exception):  # noqa: B017 - whatever the closed store raises
        await apps.delete(app.id)
    assert apps.get(app.id) == app  # still there: the store did not change
    server.store = await Store.open(server.store.db.path)
    await apps.load()
    assert [a.id for a in apps.all()] == [app.id]
