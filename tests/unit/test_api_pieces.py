"""Pieces of the HTTP API that need no server process: keys, ranges, metrics text,
error mapping, and the OpenAPI document against the routes the app is built from."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import APIRoute

from mediaserver.api import metrics
from mediaserver.api.app import create_app
from mediaserver.api.auth import KeyCheck, api_keys, is_loopback, key_file
from mediaserver.api.native import system
from mediaserver.api.routes_audio_files import router as audio_files_router
from mediaserver.api.routes_calls import router as calls_router
from mediaserver.api.routes_numbers import router as numbers_router
from mediaserver.api.routes_recordings import RangeNotSatisfiable, byte_range
from mediaserver.api.routes_recordings import router as recordings_router
from mediaserver.api.routes_scenarios import router as scenarios_router
from mediaserver.api.routes_sms import router as sms_router
from mediaserver.api.routes_tasks import router as tasks_router
from mediaserver.api.routes_webhooks import router as webhooks_router
from mediaserver.api.telnyx import PREFIX as TELNYX_PREFIX
from mediaserver.api.telnyx.routers import ROUTERS as TELNYX_ROUTERS
from mediaserver.config import Config, HttpConfig
from mediaserver.console.routes import router as console_router
from mediaserver.server import Server
from mediaserver.store.recordings import locate_recording

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, keys: tuple[str, ...] = ()) -> Config:
    return Config(
        path=tmp_path / "config.yaml",
        http=HttpConfig("127.0.0.1", 0, keys),
        scenarios_dir=REPO / "tests" / "integration" / "scenarios",
        data_dir=tmp_path,
    )


# --- keys ------------------------------------------------------------------------------


def test_configured_keys_are_used_as_they_are(tmp_path: Path) -> None:
    assert api_keys(config(tmp_path, ("a", "b"))) == ("a", "b")
    assert not key_file(config(tmp_path)).exists()


def test_a_key_is_generated_once_kept_0600_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (key,) = api_keys(config(tmp_path))
    assert len(key) >= 40
    path = tmp_path / "data" / "api-key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    printed = capsys.readouterr().out.splitlines()  # (structlog's default also prints here)
    assert [line for line in printed if line.startswith("api-key")] == [f"api-key {key}"]
    assert api_keys(config(tmp_path)) == (key,)
    assert "api-key" not in capsys.readouterr().out


def test_an_empty_key_file_gets_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "api-key"
    path.parent.mkdir()
    path.write_text("\n")
    path.chmod(0o644)
    (key,) = api_keys(config(tmp_path))
    assert key and stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_key_check_compares_every_key() -> None:
    check = KeyCheck(("first", "second"))
    assert check.accepts("first") and check.accepts("second")
    assert not check.accepts("firs") and not check.accepts("") and not check.accepts(None)
    assert not check.accepts("s\udcffecond")  # not UTF-8 encodable: refused, not an error
    with pytest.raises(ValueError):
        KeyCheck(())


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.0.1")
    assert not is_loopback("10.0.0.1") and not is_loopback("localhost")


# --- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes = 5 - 6", (5, 6)),
        ("bytes=999-999", (999, 999)),
    ],
)
def test_byte_ranges(header: str, expected: tuple[int, int]) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=5-4", "bytes=-0", "bytes=-", "bytes=0-1,3-4", "bits=0-1", "bytes=a-b",
     "bytes=٣-٤", ""],
)  # fmt: skip
def test_unsatisfiable_byte_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 1000)


def test_no_range_of_an_empty_file() -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=0-", 0)


# --- indexed recording paths ----------------------------------------------------------


def test_indexed_paths_resolve_inside_the_recordings_folder(tmp_path: Path) -> None:
    root = tmp_path / "data" / "recordings"
    root.mkdir(parents=True)
    wav = root / "k3d9x0qa.wav"
    wav.write_bytes(b"RIFF")
    (tmp_path / "secret").write_text("x")
    assert locate_recording(root, "k3d9x0qa.wav") == wav  # rows written now: the file name
    assert locate_recording(root, str(wav)) == wav  # older rows under an absolute data dir
    # Older rows under the relative default data dir named it from the server's cwd.
    assert locate_recording(root, "data/recordings/k3d9x0qa.wav") == wav
    assert locate_recording(root, "/elsewhere/k3d9x0qa.wav") == wav  # the data folder moved
    assert locate_recording(root, "../../secret") is None
    assert locate_recording(root, str(tmp_path / "secret")) is None


# --- metrics ---------------------------------------------------------------------------


def test_rtp_counters_take_whole_numbers_only() -> None:
    snapshot = {"packets_in": 5, "packets_out": 7, "lost": True, "bytes_in": 1.5, "jitter_ms": 3}
    snapshot["rtp_refused_source"] = 2
    assert metrics.rtp_counters(snapshot) == {
        "packets_in": 5,
        "packets_out": 7,
        "rtp_refused_source": 2,
    }


def test_call_metrics_bound_their_labels() -> None:
    calls = metrics.CallMetrics()
    leg = SimpleNamespace(snapshot=lambda: {"packets_in": 10, "packets_out": 20, "lost": 2})
    for cause in ("normal_clearing", "Weird Cause!", None):
        call: Any = SimpleNamespace(
            direction="inbound",
            started_at=0.5,
            answered_at=1.0,
            ended_at=3.0,
            hangup_cause=cause,
            hangup_source="caller",
            leg=leg,
        )
        calls.call_ended(call)
    assert calls.calls == {("inbound", "answered"): 3}
    assert set(calls.hangups) == {
        ("inbound", "normal_clearing", "caller"),
        ("inbound", "other", "caller"),
        ("inbound", "none", "caller"),
    }
    assert calls.rtp == {"packets_in": 30, "packets_out": 60, "lost": 6}


def test_sip_stats_become_request_response_and_event_series() -> None:
    stats = {"in.INVITE": 3, "out.200": 2, "in.FROB": 1, "malformed": 4, "out.BYE": 1,
             "flood dropped!": 1}  # fmt: skip
    requests, responses, events = metrics._sip_series(stats)
    assert requests == {("in", "INVITE"): 3, ("in", "other"): 1, ("out", "BYE"): 1}
    assert responses == {("out", "200"): 2}
    assert events == {("", "malformed"): 4, ("", "other"): 1}


# --- the document ----------------------------------------------------------------------


async def test_openapi_document_lists_exactly_the_routes_built(tmp_path: Path) -> None:
    server = Server(config(tmp_path, ("k",)))
    app = create_app(server)
    document = app.openapi()
    built = {
        (method, route.path)
        for router in (
            system,
            scenarios_router,
            calls_router,
            recordings_router,
            webhooks_router,
            tasks_router,
            audio_files_router,
            numbers_router,
            sms_router,
            console_router,
        )
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    built.add(("GET", "/metrics"))
    built |= {
        (method, TELNYX_PREFIX + route.path)
        for router in TELNYX_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == built
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            ok = [code for code in responses if code.startswith("2")]
            assert ok and all(responses[code].get("content") for code in ok), (method, path)
            assert "401" in responses, (method, path)
    assert set(document["components"]["securitySchemes"]) == {
        "HTTPBearer",
        "APIKeyHeader",
        "HTTPBasic",
    }
    assert server.journal.on_call_ended, "the metrics hook is registered"
    assert server.journal.on_call_started, "the metrics hook is registered"
