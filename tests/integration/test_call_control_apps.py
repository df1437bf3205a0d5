"""Call Control applications, the call event log and the signing key, through a real server.

The CRUD of ``/telnyx/v2/call_control_applications`` goes through the official
Telnyx SDK unchanged (``base_url`` pointed at the server); bad input through
raw httpx, to read the seed's error body. ``GET /call_events`` lists lines the
test writes into the server's store (no call-control call exists yet to make
them; the dispatcher's own logging is tested in
``tests/unit/test_call_control_delivery.py``). ``mediaserver keys`` runs as a
real command.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import telnyx

from mediaserver.store import NewCallEvent, Store
from tests.integration.conftest import REPO, TEST_API_KEY, ServerProcess, start_server

pytestmark = pytest.mark.integration

APPS = "/telnyx/v2/call_control_applications"
FULL = {
    "application_name": "call-router",
    "webhook_event_url": "https://example.com/hooks",
    "webhook_event_failover_url": "https://failover.example.com/hooks",
    "webhook_api_version": "2",
    "webhook_timeout_secs": 25,
    "first_command_timeout": True,
    "first_command_timeout_secs": 10,
    "active": False,
    "anchorsite_override": "Latency",
    "dtmf_type": "Inband",
    "inbound": {
        "channel_limit": 10,
        "sip_subdomain": "example",
        "sip_subdomain_receive_settings": "only_my_connections",
    },
    "outbound": {"channel_limit": 5, "outbound_voice_profile_id": "1293384261075731499"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("cc"))
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> telnyx.Telnyx:
    return telnyx.Telnyx(
        api_key=TEST_API_KEY, base_url=f"{server.api_url}/telnyx/v2", max_retries=0
    )


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=10) as http:
        yield http


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The one error of a seed error body, after checking the status."""
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert set(error) <= {"code", "title", "detail", "source"}
    return error  # type: ignore[no-any-return]


def mediaserver(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediaserver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ),
    )


# --- CRUD through the SDK -------------------------------------------------------------------


def test_crud_through_the_official_sdk(client: telnyx.Telnyx) -> None:
    created = client.call_control_applications.create(**FULL).data  # type: ignore[arg-type]
    assert created.id is not None and created.id.isdigit() and len(created.id) == 19
    assert int(created.id) < 2**63  # the seed's int64 ids
    assert created.record_type == "call_control_application"
    assert created.application_name == "call-router" and created.active is False
    assert created.webhook_event_failover_url == "https://failover.example.com/hooks"
    assert (created.webhook_api_version, created.webhook_timeout_secs) == ("2", 25)
    assert created.inbound is not None and created.inbound.channel_limit == 10
    assert created.inbound.sip_subdomain_receive_settings == "only_my_connections"
    assert created.outbound is not None
    assert created.outbound.outbound_voice_profile_id == "1293384261075731499"
    assert created.created_at == created.updated_at and created.created_at.endswith("Z")

    got = client.call_control_applications.retrieve(created.id).data
    assert got == created

    updated = client.call_control_applications.update(
        created.id,
        application_name="call-router-2",
        webhook_event_url="http://127.0.0.1:9/hooks",
        webhook_timeout_secs=5,
        inbound={"channel_limit": 3},
    ).data
    assert (updated.application_name, updated.webhook_timeout_secs) == ("call-router-2", 5)
    assert updated.webhook_event_url == "http://127.0.0.1:9/hooks"
    assert updated.dtmf_type == "Inband" and updated.active is False  # kept
    assert updated.inbound is not None and updated.inbound.channel_limit == 3
    assert updated.inbound.sip_subdomain == "example"  # kept inside inbound too
    assert updated.created_at == created.created_at

    listed = client.call_control_applications.list(
        filter={"application_name": {"contains": "ROUTER-2"}}  # not case-sensitive
    )
    assert [a.id for a in listed.data] == [created.id]

    deleted = client.call_control_applications.delete(created.id).data
    assert deleted.id == created.id
    with pytest.raises(telnyx.NotFoundError):
        client.call_control_applications.retrieve(created.id)
    with pytest.raises(telnyx.NotFoundError):
        client.call_control_applications.delete(created.id)


def test_defaults_are_the_seeds(client: telnyx.Telnyx) -> None:
    app = client.call_control_applications.create(
        application_name="plain", webhook_event_url="https://example.com"
    ).data
    assert app.active is True and app.dtmf_type == "RFC 2833"
    assert app.anchorsite_override == "Latency" and app.webhook_api_version == "1"
    assert app.first_command_timeout is False and app.first_command_timeout_secs == 30
    assert app.webhook_event_failover_url == "" and app.webhook_timeout_secs is None
    assert app.inbound is not None and app.inbound.sip_subdomain_receive_settings == "from_anyone"
    assert app.id is not None
    client.call_control_applications.delete(app.id)


def test_the_sdk_pages_through_every_application(client: telnyx.Telnyx) -> None:
    ids = [
        client.call_control_applications.create(
            application_name=f"paged-{n}", webhook_event_url="https://example.com"
        ).data.id
        for n in range(5)
    ]
    first = client.call_control_applications.list(
        page_size=2, filter={"application_name": {"contains": "paged-"}}
    )
    assert first.meta is not None
    assert (first.meta.total_results, first.meta.total_pages, len(first.data)) == (5, 3, 2)
    assert [a.id for a in first.data] == ids[::-1][:2]  # newest first by default
    every = [a.id for a in first]  # the SDK follows page[number] to the end
    assert every == ids[::-1]
    by_name = client.call_control_applications.list(
        sort="connection_name", filter={"application_name": {"contains": "paged-"}}
    )
    assert [a.application_name for a in by_name.data] == [f"paged-{n}" for n in range(5)]
    for app_id in ids:
        assert app_id is not None
        client.call_control_applications.delete(app_id)


# --- bad input ------------------------------------------------------------------------------


def valid(**changes: Any) -> dict[str, Any]:
    """A valid create body with ``changes``; a change to ``...`` drops that field."""
    body = {"application_name": "bad", "webhook_event_url": "https://example.com", **changes}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "pointer", "words"),
    [
        (valid(webhook_event_url=...), "/webhook_event_url", "required"),
        (valid(application_name=...), "/application_name", "required"),
        (valid(application_name=""), "/application_name", "at least 1"),
        (valid(webhook_event_url="ftp://e.com/x"), "/webhook_event_url", "http or https"),
        (valid(webhook_event_url="example.com"), "/webhook_event_url", "http or https"),
        (valid(webhook_event_failover_url="mailto:a@b"), "/webhook_event_failover_url", "http"),
        (valid(webhook_timeout_secs=31), "/webhook_timeout_secs", "30"),
        (valid(webhook_api_version="3"), "/webhook_api_version", "'1' or '2'"),
        (valid(active="yes"), "/active", "boolean"),
        (valid(dtmf_type="whistle"), "/dtmf_type", "RFC 2833"),
        (valid(anchorsite_override="Mars"), "/anchorsite_override", "Latency"),
        (valid(inbound={"channel_limit": 0}), "/inbound/channel_limit", "greater than"),
        (valid(inbound={"colour": "red"}), "/inbound/colour", "xtra"),
        (valid(outbound={"outbound_voice_profile_id": "abc"}),
         "/outbound/outbound_voice_profile_id", "pattern"),
        (valid(colour="red"), "/colour", "xtra"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field(
    api: httpx.Client, body: dict[str, Any], pointer: str, words: str
) -> None:
    before = api.get(APPS).json()["meta"]["total_results"]
    error = error_of(api.post(APPS, json=body), 422)
    assert error["source"] == {"pointer": pointer}
    assert words in error["detail"], error
    assert api.get(APPS).json()["meta"]["total_results"] == before  # nothing stored


def test_seed_quoted_anchorsites_are_taken(api: httpx.Client) -> None:
    body = {"application_name": "q", "webhook_event_url": "https://e.com"}
    created = api.post(APPS, json={**body, "anchorsite_override": '"Chicago, IL"'})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["anchorsite_override"] == "Chicago, IL"
    assert api.delete(f"{APPS}/{data['id']}").status_code == 200


def test_a_refused_update_changes_nothing(api: httpx.Client) -> None:
    body = {"application_name": "keep", "webhook_event_url": "https://e.com", "active": True}
    app = api.post(APPS, json=body).json()["data"]
    refused = api.patch(
        f"{APPS}/{app['id']}",
        json={"application_name": "changed", "webhook_event_failover_url": "nope"},
    )
    assert error_of(refused, 422)["source"] == {"pointer": "/webhook_event_failover_url"}
    null = api.patch(f"{APPS}/{app['id']}", json={"webhook_event_url": None})
    assert "cannot be null" in error_of(null, 422)["detail"]
    assert api.get(f"{APPS}/{app['id']}").json()["data"] == app
    api.delete(f"{APPS}/{app['id']}")


def test_unknown_ids_and_bad_queries(api: httpx.Client) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        missing = api.request(method, f"{APPS}/1293384261075731499", json={})
        error = error_of(missing, 404)
        assert error["code"] == "10005" and "1293384261075731499" in error["detail"]
    short = api.get(APPS, params={"filter[application_name][contains]": "ab"})
    assert error_of(short, 422)["source"] == {"parameter": "filter[application_name][contains]"}
    assert error_of(api.get(APPS, params={"sort": "colour"}), 422)["source"] == {
        "parameter": "sort"
    }
    assert error_of(api.get(APPS, params={"page[size]": 251}), 422)["source"] == {
        "parameter": "page[size]"
    }
    assert error_of(api.post(APPS, content=b"{", headers={"Content-Type": "application/json"}), 400)


# --- the call event log ---------------------------------------------------------------------


async def log_events(server: ServerProcess, events: list[NewCallEvent]) -> None:
    store = await Store.open(server.data_dir / "data" / "mediaserver.db")
    try:
        for event in events:
            await store.call_events.append(event)
    finally:
        await store.close()


async def test_call_events_are_listed_and_filtered(
    server: ServerProcess, client: telnyx.Telnyx, api: httpx.Client
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=2)

    def event(name: str, leg: str, at: datetime, status: str = "delivered") -> NewCallEvent:
        return NewCallEvent(
            type="webhook", name=name, status=status, at=at,  # type: ignore[arg-type]
            call_leg_id=leg, call_session_id="session-1", application_id="1",
            application_name="call-router", metadata={"event": {"data": {"event_type": name}}},
        )  # fmt: skip

    await log_events(
        server,
        [
            event("call.initiated", "leg-1", now - timedelta(seconds=3)),
            event("call.answered", "leg-1", now - timedelta(seconds=2), "failed"),
            event("call.answered", "leg-1", now - timedelta(seconds=1)),
            event("call.hangup", "leg-2", old),
        ],
    )
    page = client.call_events.list()  # last 24 hours only, oldest first
    names = [e.name for e in page.data]
    assert names == ["call.initiated", "call.answered", "call.answered"]
    first = page.data[0]
    assert (first.record_type, first.type, first.call_leg_id) == ("call_event", "webhook", "leg-1")
    assert first.call_session_id == "session-1" and first.event_timestamp.endswith("Z")
    assert first.metadata == {"event": {"data": {"event_type": "call.initiated"}}}

    raw = api.get("/telnyx/v2/call_events", params={"filter[call_leg_id]": "leg-2"}).json()
    assert [e["name"] for e in raw["data"]] == ["call.hangup"]  # older, found by its leg
    failed = api.get("/telnyx/v2/call_events", params={"filter[status]": "failed"}).json()
    assert [e["name"] for e in failed["data"]] == ["call.answered"]
    stamp = (now - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    later = api.get("/telnyx/v2/call_events", params={"filter[event_timestamp][gt]": stamp})
    assert [e["name"] for e in later.json()["data"]] == ["call.answered"]
    sdk_leg = client.call_events.list(filter={"leg_id": "leg-1"}, page_size=2)
    assert sdk_leg.meta is not None and sdk_leg.meta.total_results == 3
    assert len([e for e in sdk_leg]) == 3  # paged by the SDK
    by_app = api.get(
        "/telnyx/v2/call_events", params={"filter[application_name][contains]": "ROUTER"}
    ).json()
    assert by_app["meta"]["total_results"] == 3


def test_call_event_filters_are_checked(api: httpx.Client) -> None:
    url = "/telnyx/v2/call_events"
    two = api.get(
        url,
        params={
            "filter[event_timestamp][gt]": "2025-08-15T13:52:20Z",
            "filter[event_timestamp][lt]": "2025-08-16T13:52:20Z",
        },
    )
    assert "Only one filter[event_timestamp]" in error_of(two, 422)["detail"]
    bad = api.get(url, params={"filter[event_timestamp][eq]": "yesterday"})
    assert error_of(bad, 422)["source"] == {"parameter": "filter[event_timestamp][eq]"}
    kind = api.get(url, params={"filter[type]": "sms"})
    assert error_of(kind, 422)["source"] == {"parameter": "filter[type]"}


# --- keys -----------------------------------------------------------------------------------


def test_the_first_start_prints_the_public_key_and_mediaserver_keys_prints_it_again(
    tmp_path: Path,
) -> None:
    before = mediaserver("keys", "--data-dir", str(tmp_path))
    assert before.returncode == 1 and before.stdout == ""
    assert "no API key" in before.stderr and "no Call Control key pair" in before.stderr
    assert "mediaserver run" in before.stderr  # how to make them

    first = start_server(tmp_path, api_key=None)  # a generated API key too
    try:
        assert first.api_key and first.public_key
        assert len(base64.b64decode(first.public_key)) == 32
        mode = (tmp_path / "data" / "callcontrol-key.pem").stat().st_mode & 0o777
        assert mode == 0o600
    finally:
        assert first.stop() == 0
    keys = mediaserver("keys", "--data-dir", str(tmp_path))
    assert keys.returncode == 0, keys.stderr
    assert keys.stdout.splitlines() == [
        f"api-key {first.api_key}",
        f"callcontrol-public-key {first.public_key}",
    ]
    configured = mediaserver(
        "keys", "--config", str(tmp_path / "config.yaml"), "--data-dir", str(tmp_path)
    )
    assert configured.returncode == 0, configured.stderr
    assert f"callcontrol-public-key {first.public_key}" in configured.stdout

    again = start_server(tmp_path, api_key=None)  # the kept pair: nothing printed
    try:
        assert again.public_key == "" and again.api_key == ""
    finally:
        assert again.stop() == 0
    assert mediaserver("keys", "--data-dir", str(tmp_path)).stdout == keys.stdout


def test_mediaserver_keys_prints_the_configured_keys(server: ServerProcess) -> None:
    keys = mediaserver(
        "keys", "--config", str(server.data_dir / "config.yaml"),
        "--data-dir", str(server.data_dir),
    )  # fmt: skip
    assert keys.returncode == 0, keys.stderr
    assert keys.stdout.splitlines() == [
        f"api-key {TEST_API_KEY}",
        f"callcontrol-public-key {server.public_key}",
    ]
    assert server.public_key  # the module's server printed it on its first start


def test_applications_survive_a_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    client = telnyx.Telnyx(api_key=TEST_API_KEY, base_url=f"{first.api_url}/telnyx/v2")
    try:
        app = client.call_control_applications.create(**FULL).data  # type: ignore[arg-type]
    finally:
        assert first.stop() == 0
    second = start_server(tmp_path)
    client = telnyx.Telnyx(api_key=TEST_API_KEY, base_url=f"{second.api_url}/telnyx/v2")
    try:
        assert app.id is not None
        assert client.call_control_applications.retrieve(app.id).data == app
    finally:
        assert second.stop() == 0


def test_a_damaged_key_file_stops_the_start_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(parents=True)
    (tmp_path / "data" / "callcontrol-key.pem").write_text("not a key\n")
    with pytest.raises(RuntimeError, match=r"callcontrol-key\.pem.*delete the file"):
        start_server(tmp_path)


def test_the_operations_are_documented_with_their_answers(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    operations = {
        ("GET", APPS): "200",
        ("POST", APPS): "201",
        ("GET", APPS + "/{id}"): "200",
        ("PATCH", APPS + "/{id}"): "200",
        ("DELETE", APPS + "/{id}"): "200",
        ("GET", "/telnyx/v2/call_events"): "200",
    }
    for (method, path), success in operations.items():
        operation = document["paths"][path][method.lower()]
        assert operation["responses"][success].get("content"), f"{method} {path}: no model"
        for status in ("401", "422"):
            error = operation["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Errors"}


def test_mediaserver_keys_names_a_damaged_key_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "api-key").write_text("kept-key\n")
    (tmp_path / "data" / "callcontrol-key.pem").write_text("not a key\n")
    keys = mediaserver("keys", "--data-dir", str(tmp_path))
    assert keys.returncode == 1
    assert keys.stdout == "api-key kept-key\n"
    assert "callcontrol-key.pem" in keys.stderr and "delete the file" in keys.stderr
