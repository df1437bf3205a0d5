"""Watching the server: the live event stream during a real baresip call, the
Prometheus scrape parsed by prometheus_client, the JSON access log, and the
API docs served from the machine itself.

One server for the module, its access log in a file. The ``welcome_call``
fixture opens three event streams (everything; ``types=call.*``; a call id
that never exists), places one baresip call to the ``welcome`` scenario and
keeps what each stream received, so the tests read one real call.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from mediaserver.api.auth import key_label
from tests.integration.conftest import TEST_API_KEY, ServerProcess, start_server
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

ACCESS_LOG = "logs/access.log"
WELCOME_ACTIONS = ["answer@v1", "set@v1", "log@v1", "say@v1", "pause@v1", "say@v1", "hangup@v1"]
BEARER = {"Authorization": f"Bearer {TEST_API_KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("observed"), http_extra=f"  access_log: {ACCESS_LOG}\n"
    )
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


def stream(server: ServerProcess, query: str = "", **headers: str) -> ClientConnection:
    url = f"ws://127.0.0.1:{server.http_port}/api/events{query}"
    return connect(url, additional_headers=headers or BEARER, open_timeout=10)


def receive_until(ws: ClientConnection, done: Any, timeout: float = 40.0) -> list[dict[str, Any]]:
    """Messages until ``done(message)`` is true (bounded by ``timeout`` seconds)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        got.append(message)
        if done(message):
            return got
    raise AssertionError(f"stream ended without the awaited event: {got}")


@dataclass
class Observed:
    everything: list[dict[str, Any]]
    calls_only: list[dict[str, Any]]
    other_call: list[dict[str, Any]]
    call_id: str


@pytest.fixture(scope="module")
def welcome_call(server: ServerProcess) -> Observed:
    with (
        stream(server) as everything,
        stream(server, "?types=call.*") as calls_only,
        stream(server, "?call_id=zzzzzzzz") as other_call,
    ):
        hellos = [json.loads(ws.recv(timeout=10)) for ws in (everything, calls_only, other_call)]
        assert [h["type"] for h in hellos] == ["stream.subscribed"] * 3
        assert hellos[1]["payload"] == {"types": ["call.*"], "call_id": None}
        with Baresip(max_call_s=30) as phone:
            phone.dial(server.uri("welcome"))
            phone.wait_established(timeout=10)
            phone.wait_closed(timeout=25)
        events = receive_until(everything, lambda m: m["type"] == "call.hangup")
        call_id = events[0]["payload"]["call_id"]
        calls = receive_until(calls_only, lambda m: m["type"] == "call.hangup")
        # Everything was published by now; whatever reached the third stream is waiting.
        stray: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            for _ in range(100):
                stray.append(json.loads(other_call.recv(timeout=1.0)))
    return Observed(events, calls, stray, call_id)


# --- the event stream ----------------------------------------------------------------------------


def test_stream_follows_the_call_from_initiated_through_its_actions_to_hangup(
    welcome_call: Observed,
) -> None:
    events = welcome_call.everything
    call_id = welcome_call.call_id
    assert all(e["payload"]["call_id"] == call_id for e in events), events
    types = [e["type"] for e in events]
    assert types == [
        "call.initiated",
        "run.started",
        "run.action",  # answer@v1 starts...
        "call.answered",  # ...and answers
        *["run.action"] * 6,
        "run.ended",
        "call.hangup",
    ], types
    actions = [e["payload"]["action"] for e in events if e["type"] == "run.action"]
    assert actions == WELCOME_ACTIONS
    initiated, started, ended, hangup = events[0], events[1], events[-2], events[-1]
    assert (
        initiated["payload"]["to"] == "welcome" and initiated["payload"]["direction"] == "inbound"
    )
    assert started["payload"]["scenario"] == "welcome"
    assert started["payload"]["run_id"] == ended["payload"]["run_id"] == f"inbound-call:{call_id}"
    assert ended["payload"]["status"] == "completed" and ended["payload"]["actions"] == 7
    assert hangup["payload"]["hangup_source"] == "server"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", e["occurred_at"]) for e in events)


def test_stream_filters_by_type_and_by_call(welcome_call: Observed) -> None:
    calls = [e for e in welcome_call.calls_only if e["payload"]["call_id"] == welcome_call.call_id]
    assert [e["type"] for e in calls] == ["call.initiated", "call.answered", "call.hangup"]
    assert welcome_call.other_call == []


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {"X-Client": "no key"}),
        ("", {"Authorization": "Bearer wrong"}),
        ("", {"Authorization": "Digest username=x"}),
        ("?key=wrong", {"X-Client": "no key"}),
        ("?key=wrong", BEARER),  # a wrong key next to a right one: refused
    ],
    ids=["none", "wrong-bearer", "digest", "wrong-query-key", "mixed"],
)
def test_stream_refuses_a_missing_or_wrong_key_with_401(
    server: ServerProcess, query: str, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        stream(server, query, **headers)
    response = refused.value.response
    assert response.status_code == 401
    assert "Basic" in (response.headers.get("WWW-Authenticate") or "")
    assert json.loads(bytes(response.body or b""))["error"]["field"] == "authorization"


def test_stream_takes_the_key_in_the_query_or_any_header(server: ServerProcess) -> None:
    basic = base64.b64encode(f"me:{TEST_API_KEY}".encode()).decode()
    for query, headers in [
        (f"?key={quote(TEST_API_KEY)}", {"X-Client": "browser"}),
        ("", {"X-API-Key": TEST_API_KEY}),
        ("", {"Authorization": f"Basic {basic}"}),
    ]:
        with stream(server, query, **headers) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "stream.subscribed"


def test_stream_refuses_pages_of_other_sites(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        stream(server, **BEARER, Origin="http://evil.example")
    assert refused.value.response.status_code == 403
    assert json.loads(bytes(refused.value.response.body or b""))["error"]["field"] == "origin"
    own = f"http://127.0.0.1:{server.http_port}"  # the docs page of this server
    with stream(server, **BEARER, Origin=own) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "stream.subscribed"


def test_a_bad_type_filter_is_refused_naming_it(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        stream(server, "?types=call.*,,run.*")
    assert refused.value.response.status_code == 422
    assert json.loads(bytes(refused.value.response.body or b""))["error"]["field"] == "types"


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_after_the_call_parse_with_prometheus_client(
    server: ServerProcess, welcome_call: Observed
) -> None:
    httpx.get(f"{server.api_url}/api/calls/abcdefgh", headers=BEARER, timeout=10)  # a 404
    response = httpx.get(f"{server.api_url}/metrics", timeout=10)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    def value(name: str, **labels: str) -> float:
        family_name = re.sub(r"_(total|count|sum|bucket)$", "", name)
        family = families.get(family_name) or families[name]
        hits = [
            s.value
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert hits, f"no {name} {labels}"
        return float(sum(hits))

    assert value("mediaserver_calls_started_total", direction="inbound") >= 1
    assert value("mediaserver_calls_total", direction="inbound", outcome="answered") >= 1
    for histogram in ("setup_seconds", "duration_seconds", "jitter_seconds", "loss_ratio"):
        assert value(f"mediaserver_call_{histogram}_count", direction="inbound") >= 1, histogram
    # The welcome call speaks for seconds: its duration is more than one second.
    assert value("mediaserver_call_duration_seconds_sum", direction="inbound") > 1
    assert value("mediaserver_event_loop_lag_seconds_count") >= 1
    assert value("mediaserver_sip_requests_total", direction="in", method="INVITE") >= 1
    assert value("process_resident_memory_bytes") > 0
    assert value("mediaserver_build_info") == 1
    http = families["mediaserver_http_requests"]
    routes = {s.labels["route"] for s in http.samples}
    assert value("mediaserver_http_requests_total", route="/api/calls/{callid}", status="404") >= 1
    # Route templates, never raw paths with ids (the series would grow without bound).
    assert not [r for r in routes if re.search(r"/[a-z0-9]{8}(/|$)", r)], routes


# --- the access log ----------------------------------------------------------------------------


def test_access_log_names_the_key_and_never_writes_it(server: ServerProcess) -> None:
    path = server.data_dir / ACCESS_LOG

    def lines() -> list[dict[str, Any]]:
        text = path.read_text() if path.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    api = server.api_url
    before = len(lines())  # the module's other tests made requests too
    httpx.get(f"{api}/api/ping", headers=BEARER, timeout=10)
    httpx.get(f"{api}/api/scenarios", headers={"X-API-Key": TEST_API_KEY}, timeout=10)
    httpx.get(f"{api}/api/ping", headers={"Authorization": "Bearer not-the-key"}, timeout=10)
    httpx.get(f"{api}/api/calls/abcdefgh?key={TEST_API_KEY}", headers=BEARER, timeout=10)
    deadline = time.monotonic() + 10
    while len(lines()) < before + 4 and time.monotonic() < deadline:
        time.sleep(0.1)  # a line is written once its answer is sent: maybe just after
    entries = lines()
    label = key_label(TEST_API_KEY, {})
    assert len(entries) == before + 4
    assert {"at", "method", "path", "route", "status", "ms", "client", "key"} <= set(entries[-1])
    ping, scenarios, refused, call = sorted(entries[before:], key=lambda e: str(e["at"]))
    assert (ping["path"], ping["status"], ping["key"]) == ("/api/ping", 200, label)
    assert (scenarios["status"], scenarios["key"]) == (200, label)
    assert (refused["status"], refused["key"]) == (401, None)
    assert call["path"] == "/api/calls/abcdefgh" and call["route"] == "/api/calls/{callid}"
    assert call["status"] == 404 and call["key"] == label and call["client"] == "127.0.0.1"
    assert all(isinstance(e["ms"], int | float) and e["ms"] >= 0 for e in entries)
    assert TEST_API_KEY not in path.read_text(), "the raw key is in the access log"
    assert "not-the-key" not in path.read_text()
    assert TEST_API_KEY not in server.log_text(), "the raw key is in the server log"


# --- the interactive docs ------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_and_their_assets_are_served_from_here(server: ServerProcess, page: str) -> None:
    refused = httpx.get(f"{server.api_url}{page}", timeout=10)
    assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
    html = httpx.get(f"{server.api_url}{page}", auth=("me", TEST_API_KEY), timeout=10)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html.text), html.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    assert len(assets) >= 2, html.text
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        fetched = httpx.get(f"{server.api_url}{asset}", timeout=10)
        assert fetched.status_code == 200 and len(fetched.content) > 1000, asset
    document = httpx.get(f"{server.api_url}/openapi.json", auth=("me", TEST_API_KEY), timeout=10)
    assert "'/openapi.json'" in html.text or '"/openapi.json"' in html.text
    assert document.status_code == 200


# --- conference and queue events -------------------------------------------------------------

ROOM = """\
branches:
  inbound-call:
    actions:
      - action: conference@v1
        params: {name: standup}
"""
WAIT_IN_LINE = """\
branches:
  inbound-call:
    actions:
      - action: queue@v1
        params: {name: support, hold_audio: dial, max_wait: 1}
      - action: hangup@v1
"""


def test_stream_tells_conference_and_queue_comings_and_goings(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "room.yaml").write_text(ROOM)
    (scenarios / "line.yaml").write_text(WAIT_IN_LINE)
    proc = start_server(tmp_path / "server", scenarios=scenarios,
                        routes={"room": "room", "line": "line"})  # fmt: skip
    try:
        query = "?types=conference.*,call.enqueued,call.left.queue"
        with stream(proc, query) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "stream.subscribed"
            with Baresip(max_call_s=30) as phone:
                phone.dial(proc.uri("room"))
                phone.wait_established(timeout=10)
                joined = receive_until(ws, lambda m: True, timeout=10)[-1]
                phone.hangup()
                phone.wait_closed(timeout=10)
            left = receive_until(ws, lambda m: True, timeout=10)[-1]
            with Baresip(max_call_s=30) as phone:
                phone.dial(proc.uri("line"))
                phone.wait_established(timeout=10)
                phone.wait_closed(timeout=20)  # max_wait 1 s, then the scenario hangs up
            queued = receive_until(ws, lambda m: m["type"] == "call.left.queue", timeout=20)
    finally:
        assert proc.stop() == 0, proc.log_text()[-3000:]
    assert joined["type"] == "conference.participant.joined"
    assert joined["payload"]["conference"] == "standup" and joined["payload"]["participants"] == 1
    assert left["type"] == "conference.participant.left"
    assert left["payload"]["call_id"] == joined["payload"]["call_id"]
    assert left["payload"]["outcome"] == "hangup" and left["payload"]["participants"] == 0
    assert [m["type"] for m in queued] == ["call.enqueued", "call.left.queue"]
    assert queued[0]["payload"]["queue"] == "support" and queued[0]["payload"]["position"] == 1
    assert queued[1]["payload"]["reason"] == "timeout"
