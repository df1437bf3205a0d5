"""Observability without a server process: the Prometheus scrape (parsed by
prometheus_client's own parser), event-loop lag, the event bus and its
filters, run events, the access log's key labels, named keys in the config,
the OpenAPI examples and the Grafana dashboard."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from test_runner_fakes import FakeCall, FakePrompts, scenario_text

from mediaserver import __version__
from mediaserver.actions.runner import Run
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.api.access_log import AccessRecorder
from mediaserver.api.app import create_app
from mediaserver.api.auth import KeyCheck, key_label, presented_keys
from mediaserver.api.examples import EXAMPLES
from mediaserver.api.metrics import CallMetrics, LoopLag, Telemetry
from mediaserver.config import Config, HttpConfig, load_config
from mediaserver.events import EventBus, EventFilter, parse_types
from mediaserver.server import Server
from mediaserver.yamlsource import ProblemsError

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "mediaserver.json"


def config(tmp_path: Path, **http: Any) -> Config:
    return Config(
        path=tmp_path / "config.yaml",
        http=HttpConfig("127.0.0.1", 0, ("the-key",), **http),
        scenarios_dir=REPO / "tests" / "integration" / "scenarios",
        data_dir=tmp_path,
    )


def ended_call(**overrides: Any) -> Any:
    snapshot = {"packets_in": 500, "packets_out": 510, "jitter_ms": 12.0, "fraction_lost": 0.02}
    fields: dict[str, Any] = {
        "direction": "inbound",
        "started_at": 100.0,
        "answered_at": 101.5,
        "ended_at": 111.5,
        "hangup_cause": "normal_clearing",
        "hangup_source": "caller",
        "leg": SimpleNamespace(snapshot=lambda: snapshot),
    }
    return SimpleNamespace(**{**fields, **overrides})


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(family: Any, suffix: str = "", **labels: str) -> float:
    for s in family.samples:
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {family.name}{suffix} {labels}")


async def scrape(server: Server) -> tuple[Telemetry, dict[str, Any]]:
    app = create_app(server)
    telemetry: Telemetry = app.state.telemetry
    telemetry.loop_lag.stop()
    return telemetry, families(telemetry.render().decode())


# --- the scrape -----------------------------------------------------------------------------


async def test_scrape_parses_and_carries_every_kind_of_figure(tmp_path: Path) -> None:
    server = Server(config(tmp_path))
    app = create_app(server)
    telemetry: Telemetry = app.state.telemetry
    telemetry.loop_lag.stop()
    call = ended_call()
    for listener in server.journal.on_call_started:
        listener(call)
    for listener in server.journal.on_call_ended:
        listener(call)
    # Keys another part of the server may add to the endpoint's stats show up unasked.
    server.switch.refusals.counts["no_route"] += 2
    server.endpoint.stats["flood_dropped"] += 3
    telemetry.http.observe("GET", "/api/calls/{callid}", 200, 0.004)

    found = families(telemetry.render().decode())

    setup = found["mediaserver_call_setup_seconds"]
    assert setup.type == "histogram"
    assert sample(setup, "_count", direction="inbound") == 1
    assert sample(setup, "_sum", direction="inbound") == pytest.approx(1.5)
    duration = found["mediaserver_call_duration_seconds"]
    assert sample(duration, "_sum", direction="inbound") == pytest.approx(10.0)
    assert sample(duration, "_bucket", direction="inbound", le="5.0") == 0
    assert sample(duration, "_bucket", direction="inbound", le="10.0") == 1
    jitter = found["mediaserver_call_jitter_seconds"]
    assert sample(jitter, "_sum", direction="inbound") == pytest.approx(0.012)
    loss = found["mediaserver_call_loss_ratio"]
    assert sample(loss, "_sum", direction="inbound") == pytest.approx(0.02)
    assert sample(found["mediaserver_calls_started"], "_total", direction="inbound") == 1
    ended = found["mediaserver_calls"]
    assert sample(ended, "_total", direction="inbound", outcome="answered") == 1
    refused = found["mediaserver_calls_refused"]
    assert sample(refused, "_total", direction="inbound", reason="no_route") == 2
    events = found["mediaserver_sip_events"]
    assert sample(events, "_total", event="flood_dropped") == 3
    http = found["mediaserver_http_requests"]
    assert sample(http, "_total", method="GET", route="/api/calls/{callid}", status="200") == 1
    latency = found["mediaserver_http_request_duration_seconds"]
    assert sample(latency, "_count", method="GET", route="/api/calls/{callid}") == 1
    assert sample(found["mediaserver_build_info"], version=__version__) == 1
    assert "mediaserver_event_loop_lag_seconds" in found
    assert "mediaserver_webhook_attempt_seconds" in found
    if sys.platform == "linux":  # ProcessCollector reads /proc
        assert sample(found["process_resident_memory_bytes"]) > 0
        assert sample(found["process_start_time_seconds"]) > 0
    assert not [name for name in found if name.endswith("_created")]


async def test_each_server_has_its_own_registry(tmp_path: Path) -> None:
    first, second = Server(config(tmp_path / "a")), Server(config(tmp_path / "b"))
    a, _ = await scrape(first)
    for listener in first.journal.on_call_ended:
        listener(ended_call())
    b, found = await scrape(second)
    assert a.registry is not b.registry
    assert not found["mediaserver_call_setup_seconds"].samples or all(
        s.value == 0 for s in found["mediaserver_call_setup_seconds"].samples
    )


def test_an_unanswered_call_without_media_feeds_no_histogram() -> None:
    registry = CollectorRegistry()
    calls = CallMetrics(registry)
    silent = SimpleNamespace(snapshot=lambda: {"packets_in": 0, "jitter_ms": 0.0})
    calls.call_ended(ended_call(answered_at=None, leg=silent))
    for name in ("setup_seconds", "duration_seconds", "jitter_seconds", "loss_ratio"):
        labels = {"direction": "inbound"}
        assert not registry.get_sample_value(f"mediaserver_call_{name}_count", labels), name
    assert calls.calls == {("inbound", "unanswered"): 1}


async def test_loop_lag_sees_a_blocked_loop() -> None:
    registry = CollectorRegistry()
    lag = LoopLag(registry, interval=0.01)
    lag.start()
    time.sleep(0.1)  # the loop is blocked: the callback due after 10 ms runs >= 90 ms late
    await asyncio.sleep(0.03)
    lag.stop()
    count = registry.get_sample_value("mediaserver_event_loop_lag_seconds_count")
    total = registry.get_sample_value("mediaserver_event_loop_lag_seconds_sum")
    assert count is not None and count >= 1
    assert total is not None and total >= 0.09


# --- the event bus -------------------------------------------------------------------------


async def test_bus_filters_by_type_pattern_and_call() -> None:
    bus = EventBus()
    everything = bus.subscribe()
    calls_only = bus.subscribe(EventFilter(parse_types("call.*")))
    one_call = bus.subscribe(EventFilter(("*",), "c1"))
    bus.publish("call.initiated", {"call_id": "c1"})
    bus.publish("run.action", {"call_id": "c2", "action": "say@v1"})
    bus.publish("call.hangup", {"call_id": "c2"})
    bus.close()

    async def types(sub: Any) -> list[str]:
        out = []
        while (event := await sub.next()) is not None:
            out.append(event.type)
        return out

    assert await types(everything) == ["call.initiated", "run.action", "call.hangup"]
    assert await types(calls_only) == ["call.initiated", "call.hangup"]
    assert await types(one_call) == ["call.initiated"]
    assert everything.dropped_reason == "the server is stopping" and everything.lost == 0


async def test_a_slow_subscriber_is_cut_off_and_the_others_go_on() -> None:
    bus = EventBus()
    slow = bus.subscribe(backlog=3)
    fast = bus.subscribe(backlog=3)
    for i in range(5):
        bus.publish("run.action", {"call_id": "c", "i": i})
        event = await fast.next()
        assert event is not None and event.payload["i"] == i
    assert await slow.next() is None, "told at once, not after the backlog"
    assert slow.dropped_reason is not None and "too slow" in slow.dropped_reason
    assert slow.lost == 3
    assert bus.dropped_subscribers == 1 and bus.subscriber_count == 1


def test_event_sequence_numbers_count_every_event() -> None:
    bus = EventBus()
    bus.publish("call.initiated", {"call_id": "a"})  # nobody listens: still numbered
    sub = bus.subscribe()
    bus.publish("call.hangup", {"call_id": "a"})
    event = sub.queue.get_nowait()
    assert event is not None and event.seq == 2
    wire = event.wire()
    assert wire["type"] == "call.hangup" and wire["occurred_at"].endswith("Z")


def test_bad_type_filters_are_refused_with_the_field_named() -> None:
    assert parse_types(None) == ("*",)
    assert parse_types("call.*, run.action") == ("call.*", "run.action")
    with pytest.raises(ValueError, match="types: ''"):
        parse_types("call.*,,run.*")


async def test_a_run_publishes_started_each_action_and_ended() -> None:
    scenario = load_scenario_text(
        scenario_text("- action: answer@v1\n- action: log@v1\n  params: {message: hi}"),
        "t.yaml",
    )
    seen: list[tuple[str, dict[str, Any]]] = []
    prompts = FakePrompts()
    call = FakeCall(prompts)
    run = Run(
        scenario,
        "inbound-call",
        call=call,
        prompts=prompts,
        run_id="r1",
        events=lambda kind, payload: seen.append((kind, payload)),
    )
    outcome = await run.execute()
    assert outcome.status == "completed"
    assert [kind for kind, _ in seen] == ["run.started", "run.action", "run.action", "run.ended"]
    assert [p.get("action") for _, p in seen[1:3]] == ["answer@v1", "log@v1"]
    assert all(p["run_id"] == "r1" and p["call_id"] == call.info["id"] for _, p in seen)
    assert seen[-1][1]["status"] == "completed" and seen[-1][1]["actions"] == 2


# --- keys in the access log ------------------------------------------------------------------


def test_key_labels_name_keys_and_never_show_them() -> None:
    key = "sEcReT-0123456789abcdef"
    label = key_label(key, {})
    assert re.fullmatch(r"key-[0-9a-f]{8}", label) and key not in label
    assert key_label(key, {key: "ops"}) == "ops"
    check = KeyCheck((key, "other"), {"other": "grafana"})
    assert check.label_of(key) == label
    assert check.label_of("other") == "grafana"
    assert check.label_of("wrong") is None
    assert check.verify([key, "other"], False) == label
    assert check.verify([key, "wrong"], False) is None
    assert check.verify([key], True) is None


def test_websocket_handshakes_present_keys_like_requests() -> None:
    assert presented_keys({"authorization": "Bearer k1"}, None) == (["k1"], False)
    assert presented_keys({"authorization": "Basic dTprMg=="}, None) == (["k2"], False)
    assert presented_keys({"x-api-key": "k3"}, "k4") == (["k3", "k4"], False)
    assert presented_keys({"authorization": "Digest x"}, None) == ([], True)
    assert presented_keys({"authorization": "Basic !!!"}, None) == ([], True)
    assert presented_keys({}, None) == ([], False)


def test_access_lines_are_json_with_the_key_label(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "access.log"
    recorder = AccessRecorder(path)
    entry = {"method": "GET", "path": "/api/ping", "route": "/api/ping", "status": 200,
             "ms": 1.2, "client": "127.0.0.1", "key": "ops"}  # fmt: skip
    recorder.record(entry)
    recorder.record({**entry, "status": 401, "key": None})
    recorder.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["status"] for line in lines] == [200, 401]
    assert lines[0]["key"] == "ops" and lines[1]["key"] is None


def test_named_keys_and_the_access_log_in_the_config(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text(
        "http:\n  api_keys: [plain-key, {name: grafana, key: graf-key}]\n"
        "  access_log: logs/access.log\n"
    )
    http = load_config(file).http
    assert http.api_keys == ("plain-key", "graf-key")
    assert dict(http.key_names) == {"graf-key": "grafana"}
    assert http.access_log == Path("logs/access.log")
    file.write_text("http:\n  api_keys: [{name: grafana}]\n")
    with pytest.raises(ProblemsError, match=r"http\.api_keys.*\{name: NAME, key: KEY\}"):
        load_config(file)


# --- the OpenAPI document ----------------------------------------------------------------------


async def test_every_operation_has_a_request_and_an_answer_example(tmp_path: Path) -> None:
    document = create_app(Server(config(tmp_path))).openapi()
    operations = [
        (method.upper(), path, operation)
        for path, ops in document["paths"].items()
        if not path.startswith("/telnyx/")  # the Call Control API: seed 002 documents it
        for method, operation in ops.items()
    ]
    native = [key for key in EXAMPLES if not key[1].startswith("/telnyx/")]
    assert len(operations) == len(native), "an operation without an example, or a stale one"
    for method, path, operation in operations:
        body = operation.get("requestBody")
        if body is not None:
            for media in body["content"].values():
                assert media.get("example") is not None, (method, path, "request")
        answers = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
        assert answers, (method, path)
        for response in answers.values():
            for media in response["content"].values():
                assert media.get("example") is not None, (method, path, "answer")


# --- the Grafana dashboard ----------------------------------------------------------------------


async def test_every_dashboard_query_uses_series_the_server_exports(tmp_path: Path) -> None:
    _, found = await scrape(Server(config(tmp_path)))
    exported: set[str] = set()
    for family in found.values():
        exported.add(family.name)
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "info": ("_info",),
        }.get(family.type, ("",))
        exported.update(family.name + s for s in suffixes)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(exprs) >= 10
    for expr in exprs:
        names = set(re.findall(r"\b((?:mediaserver|process)_[a-z0-9_]+)", expr))
        assert names, f"a query on no series of ours: {expr}"
        unknown = names - exported
        assert not unknown, f"{expr}: {sorted(unknown)} not exported"
