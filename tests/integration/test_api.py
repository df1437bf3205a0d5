"""The native HTTP API of a real server process, through a real HTTP client (httpx).

Everything here runs without SIP calls: authentication (each of the three
ways, and their failures), the OpenAPI document against what the server
serves, error bodies naming the field (bad JSON, wrong types, unknown
fields, oversized bodies, bad ids and paths), scenarios (create, search,
page, replace, rename, delete, file scenarios read-only, nothing
half-applied), runs (start, status, cancel), webhooks, recordings (indexed
in the store by the test, downloaded with HTTP Range), conferences, queues,
metrics, and the API key generated on a first start. Calls through the API
are in ``test_api_calls.py``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaserver.config import host_name
from mediaserver.store import NewRecording, Store
from tests.integration.conftest import TEST_API_KEY, ServerProcess, start_server
from tests.support import audio

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"
ROUTES = {"echo": "echo", "bye": "bye", "*": "echo"}

RUN_SCRIPT = """\
variables:
  $who: nobody
branches:
  api-initiated:
    actions:
      - action: set@v1
        params: {$greeting: "'hello ' + $who"}
      - action: log@v1
        params: {message: "api run says ${$greeting}"}
"""
SLOW_SCRIPT = """\
branches:
  api-initiated:
    actions:
      - action: pause@v1
        params: {seconds: 30}
"""
INBOUND_SCRIPT = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: hangup@v1
"""
BAD_SCRIPT = """\
branches:
  inbound-call:
    actions:
      - action: nosuch@v1
      - action: answer@v1
        params: {colour: red}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("api"), routes=ROUTES, scenarios=SCENARIOS)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.api_url, headers={"X-API-Key": server.api_key}, timeout=10
    ) as client:
        yield client


def error_of(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The error of a failed answer, checked for status, shape and field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "field", "details"}
    assert error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


def create_scenario(api: httpx.Client, name: str, script: str) -> dict[str, Any]:
    response = api.post("/api/scenarios", json={"name": name, "script": script})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def file_scenario(api: httpx.Client, name: str) -> dict[str, Any]:
    hits = api.get("/api/scenarios", params={"name": name, "origin": "file"}).json()["hits"]
    return next(h for h in hits if h["name"] == name)


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


# --- authentication ----------------------------------------------------------------------


def test_ping(api: httpx.Client) -> None:
    body = api.get("/api/ping").json()
    assert body["pong"] == "pong"
    assert body["time"].endswith("Z")
    assert body["node"] == host_name()  # node.name's default


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"anyone:{key}".encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TEST_API_KEY}"},
        {"X-API-Key": TEST_API_KEY},
        {"Authorization": basic(TEST_API_KEY)},
    ],
    ids=["bearer", "x-api-key", "basic"],
)
def test_each_way_of_giving_the_key(server: ServerProcess, headers: dict[str, str]) -> None:
    response = httpx.get(f"{server.api_url}/api/scenarios", headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "wrong"},
        {"Authorization": basic("wrong")},
        {"Authorization": "Basic !!not-base64"},
        {"Authorization": f"Digest {TEST_API_KEY}"},
        # A right key does not excuse a wrong one sent alongside.
        {"Authorization": "Bearer wrong", "X-API-Key": TEST_API_KEY},
    ],
    ids=["none", "bearer", "x-api-key", "basic", "basic-garbage", "digest", "mixed"],
)
def test_missing_or_wrong_key_is_401(server: ServerProcess, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/api/scenarios"), ("DELETE", "/api/calls/abcdefgh"),
                         ("GET", "/openapi.json")]:  # fmt: skip
        response = httpx.request(method, f"{server.api_url}{path}", headers=headers)
        error = error_of(response, 401, "authorization")
        assert error["code"] == "unauthorized"
        assert "Bearer" in response.headers["www-authenticate"]


def test_metrics_need_no_key_on_loopback(server: ServerProcess) -> None:
    response = httpx.get(f"{server.api_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE mediaserver_calls_active gauge" in response.text


# --- the OpenAPI document ----------------------------------------------------------------

SPEC_OPERATIONS = {
    ("GET", "/api/ping"),
    ("GET", "/api/scenarios"),
    ("POST", "/api/scenarios"),
    ("GET", "/api/scenarios/{sid}"),
    ("PUT", "/api/scenarios/{sid}"),
    ("PATCH", "/api/scenarios/{sid}"),
    ("DELETE", "/api/scenarios/{sid}"),
    ("POST", "/api/scenarios/{sid}/start"),
    ("GET", "/api/scenarios/{sid}/runs/{runid}"),
    ("DELETE", "/api/scenarios/{sid}/runs/{runid}"),
    ("PUT", "/api/scenarios/{sid}/numbers/{number}"),
    ("DELETE", "/api/scenarios/{sid}/numbers/{number}"),
    ("GET", "/api/calls"),
    ("GET", "/api/calls/{callid}"),
    ("DELETE", "/api/calls/{callid}"),
    ("POST", "/api/calls/{callid}/actions"),
    ("GET", "/api/cdrs"),
    ("GET", "/api/cdrs/export"),
    ("GET", "/api/recordings"),
    ("GET", "/api/recordings/{sid}"),
    ("PATCH", "/api/recordings/{sid}"),
    ("DELETE", "/api/recordings/{sid}"),
    ("GET", "/api/recordings/{sid}/file"),
    ("GET", "/api/conferences"),
    ("GET", "/api/queues"),
    ("GET", "/api/webhooks"),
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks/{sid}"),
    ("PATCH", "/api/webhooks/{sid}"),
    ("DELETE", "/api/webhooks/{sid}"),
    ("GET", "/api/webhooks/logs"),
    ("GET", "/api/audio-files"),
    ("POST", "/api/audio-files"),
    ("GET", "/api/audio-files/{sid}"),
    ("PATCH", "/api/audio-files/{sid}"),
    ("DELETE", "/api/audio-files/{sid}"),
    ("POST", "/api/audio-files/{sid}/file"),
    ("POST", "/api/audio-files/{sid}/phone"),
    ("GET", "/metrics"),
}
# The Callr v2 operations beyond SPEC section 5 (issue 12): tasks, recordings in bulk, MP3.
CALLR_V2_OPERATIONS = {
    ("PATCH", "/api/recordings"),
    ("DELETE", "/api/recordings"),
    ("GET", "/api/recordings/{sid}/file.mp3"),
    ("POST", "/api/calls/export"),
    ("GET", "/api/tasks/{taskid}"),
    ("DELETE", "/api/tasks/{taskid}"),
    ("GET", "/api/tasks/{taskid}/file"),
}
# What the web console needed (docs/console.md; test_console.py).
CONSOLE = {
    ("POST", "/api/scenarios/check"),
    ("PUT", "/api/conferences/{name}/members/{callid}/muted"),
    ("GET", "/api/console/health"),
}
NUMBERS_SMS = {
    ("GET", "/api/numbers"), ("GET", "/api/numbers/{number}"), ("PATCH", "/api/numbers/{number}"),
    ("PUT", "/api/numbers/{number}/scenario/{sid}"), ("DELETE", "/api/numbers/{number}/scenario"),
    ("GET", "/api/sms"), ("POST", "/api/sms"), ("GET", "/api/sms/{sid}"),
}  # fmt: skip
EXAMPLE_PARAMS = {"sid": "abcdefgh", "callid": "abcdefgh", "runid": "api:abcdefgh",
                  "number": "+33199001234", "taskid": "0" * 32, "name": "sales"}  # fmt: skip


def test_openapi_document_is_what_the_server_serves(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if not path.startswith("/telnyx/v2/")  # the Call Control API: its own tests
    }
    # Every endpoint of SPEC section 5 is documented; the extras are a record by id,
    # the Callr v2 ones (phone numbers and SMS: test_numbers_sms.py) and the console's.
    assert (
        documented - SPEC_OPERATIONS
        == {("GET", "/api/cdrs/{callid}")} | CALLR_V2_OPERATIONS | NUMBERS_SMS | CONSOLE
    )
    assert documented >= SPEC_OPERATIONS
    for method, template in sorted(documented):
        operation = document["paths"][template][method.lower()]
        success = next(code for code in operation["responses"] if code.startswith("2"))
        assert operation["responses"][success].get("content"), f"{method} {template}: no model"
        assert "401" in operation["responses"]
        # Served: the router knows it (no "no such endpoint" 404, no 405).
        path = template.format(**EXAMPLE_PARAMS)
        response = api.request(
            method, path, json={} if method in ("POST", "PUT", "PATCH") else None
        )
        assert response.status_code not in (405, 500), f"{method} {path}: {response.text}"
        if response.status_code == 404:
            assert response.json()["error"]["field"], f"{method} {path} is not served"
    # And nothing undocumented is: unknown paths 404, other methods 405 with Allow.
    error_of(api.get("/api/nothing-here"), 404)
    response = api.post("/api/calls/abcdefgh")
    error_of(response, 405)
    assert response.headers["allow"] == "DELETE, GET"


# --- errors ---------------------------------------------------------------------------


def test_malformed_json_is_400(api: httpx.Client) -> None:
    response = api.post(
        "/api/scenarios", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert error_of(response, 400, "body")["code"] == "malformed_json"


def test_wrong_types_and_unknown_fields_name_the_field(api: httpx.Client) -> None:
    error = error_of(api.post("/api/scenarios", json={"name": 5, "script": "x"}), 422, "name")
    assert error["details"][0]["field"] == "name"
    error = error_of(
        api.post("/api/scenarios", json={"name": "ok", "script": "x", "colour": "red"}),
        422,
        "colour",
    )
    assert "unknown field" in error["message"]
    error_of(api.post("/api/scenarios", json={"script": "x"}), 422, "name")
    error_of(api.post("/api/scenarios", json=[1, 2]), 422, "body")
    error_of(api.post("/api/webhooks", json={"endpoint": "ftp://x.example"}), 422, "endpoint")
    error_of(api.post("/api/webhooks", json={"url": "http://x.example"}), 422)
    error_of(api.get("/api/scenarios", params={"limit": 0}), 422, "limit")
    error_of(api.get("/api/scenarios", params={"limit": 101}), 422, "limit")
    error_of(api.get("/api/scenarios", params={"offset": -1}), 422, "offset")
    error_of(api.get("/api/scenarios", params={"sort": "colour"}), 422, "sort")
    error_of(api.get("/api/scenarios", params={"name": "\x00"}), 422, "name")  # matched all
    error_of(api.get("/api/cdrs", params={"startedAfter": "yesterday"}), 422, "startedAfter")


def test_oversized_bodies_are_413(api: httpx.Client) -> None:
    big = {"name": "big", "script": "x" * (2 * 1024 * 1024)}
    error = error_of(api.post("/api/scenarios", json=big), 413, "body")
    assert error["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams in
        yield b'{"name": "big", "script": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = api.post(
        "/api/scenarios", content=chunks(), headers={"Content-Type": "application/json"}
    )
    error_of(response, 413, "body")
    assert api.get("/api/scenarios", params={"name": "big"}).json()["total"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/scenarios/ABCDEFGH",
        "/api/scenarios/abc",
        "/api/recordings/..%2F..%2Fetc%2Fpasswd/file",
        "/api/recordings/%2e%2e/file",
        "/api/calls/abcdefgh%00",
        "/api/scenarios/abcdefgh/runs/../../etc",
        "/api/scenarios/abcdefgh/runs/api:ABC",
    ],
)
def test_bad_ids_in_paths_touch_nothing(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["message"]


def test_unknown_ids_are_404_naming_the_id(api: httpx.Client) -> None:
    error_of(api.get("/api/scenarios/zzzzzzzz"), 404, "sid")
    error_of(api.get("/api/calls/zzzzzzzz"), 404, "callid")
    error_of(api.get("/api/cdrs/zzzzzzzz"), 404, "callid")
    error_of(api.get("/api/recordings/zzzzzzzz/file"), 404, "sid")
    error_of(api.delete("/api/webhooks/zzzzzzzz"), 404, "sid")


# --- scenarios ------------------------------------------------------------------------


def test_scenario_lifecycle(api: httpx.Client) -> None:
    created = create_scenario(api, "lifecycle", INBOUND_SCRIPT)
    sid = created["sid"]
    assert len(sid) == 8 and sid.isalnum() and sid == sid.lower()
    assert created["origin"] == "api" and not created["readonly"]
    assert created["script"] == INBOUND_SCRIPT and created["numbers"] == []
    assert api.get(f"/api/scenarios/{sid}").json() == created

    error = error_of(
        api.post("/api/scenarios", json={"name": "lifecycle", "script": INBOUND_SCRIPT}),
        409,
        "name",
    )
    assert error["code"] == "conflict"

    renamed = api.patch(f"/api/scenarios/{sid}", json={"name": "lifecycle-2"}).json()
    assert renamed["name"] == "lifecycle-2" and renamed["script"] == INBOUND_SCRIPT
    replaced = api.put(
        f"/api/scenarios/{sid}", json={"name": "lifecycle-2", "script": RUN_SCRIPT}
    ).json()
    assert replaced["script"] == RUN_SCRIPT and replaced["updated"] >= created["updated"]
    error_of(api.put(f"/api/scenarios/{sid}", json={"name": "lifecycle-2"}), 422, "script")

    status = api.delete(f"/api/scenarios/{sid}").json()
    assert status["code"] == "ok"
    error_of(api.get(f"/api/scenarios/{sid}"), 404, "sid")
    error_of(api.delete(f"/api/scenarios/{sid}"), 404, "sid")


def test_invalid_script_is_422_with_every_problem_located(api: httpx.Client) -> None:
    response = api.post("/api/scenarios", json={"name": "broken", "script": BAD_SCRIPT})
    error = error_of(response, 422, "script")
    assert error["code"] == "invalid_scenario"
    located = [(d["line"], d["column"]) for d in error["details"]]
    assert len(located) == 2 and located[0][0] == 4 and located[1][0] == 6
    assert all(d["field"] == "script" and d["message"] for d in error["details"])
    # Nothing was stored.
    assert api.get("/api/scenarios", params={"name": "broken"}).json()["total"] == 0


def test_a_refused_update_changes_nothing(api: httpx.Client) -> None:
    sid = create_scenario(api, "keep-me", INBOUND_SCRIPT)["sid"]
    before = api.get(f"/api/scenarios/{sid}").json()
    error_of(api.put(f"/api/scenarios/{sid}", json={"name": "keep-me", "script": BAD_SCRIPT}), 422)
    error_of(api.patch(f"/api/scenarios/{sid}", json={"name": "echo"}), 409, "name")
    error_of(api.patch(f"/api/scenarios/{sid}", json={"name": "../etc"}), 422, "name")
    assert api.get(f"/api/scenarios/{sid}").json() == before


def test_file_scenarios_are_read_only(api: httpx.Client) -> None:
    echo = file_scenario(api, "echo")
    assert echo["origin"] == "file" and echo["readonly"]
    for response in (
        api.put(f"/api/scenarios/{echo['sid']}", json={"name": "echo", "script": INBOUND_SCRIPT}),
        api.patch(f"/api/scenarios/{echo['sid']}", json={"script": INBOUND_SCRIPT}),
        api.delete(f"/api/scenarios/{echo['sid']}"),
    ):
        assert error_of(response, 409, "sid")["code"] == "read_only"


def test_scenario_search_pages_and_sorts(api: httpx.Client) -> None:
    for i in range(5):
        create_scenario(api, f"paging-{i}", INBOUND_SCRIPT)
    first = api.get("/api/scenarios", params={"name": "paging-", "limit": 2, "sort": "name",
                                               "order": "asc"}).json()  # fmt: skip
    assert first["total"] == 5 and first["offset"] == 0 and first["hasMore"]
    assert [h["name"] for h in first["hits"]] == ["paging-0", "paging-1"]
    last = api.get("/api/scenarios", params={"name": "paging-", "limit": 2, "offset": 4,
                                              "sort": "name", "order": "asc"}).json()  # fmt: skip
    assert [h["name"] for h in last["hits"]] == ["paging-4"] and not last["hasMore"]
    beyond = api.get("/api/scenarios", params={"name": "paging-", "offset": 50}).json()
    assert beyond["hits"] == [] and beyond["total"] == 5


# --- runs -----------------------------------------------------------------------------


def test_offline_run_and_its_variables(api: httpx.Client, server: ServerProcess) -> None:
    sid = create_scenario(api, "offline-run", RUN_SCRIPT)["sid"]
    response = api.post(f"/api/scenarios/{sid}/start", json={"variables": {"$who": "world"}})
    assert response.status_code == 201, response.text
    runid = response.json()["runid"]
    assert runid.startswith("api:") and len(runid) == 12

    def finished() -> dict[str, Any] | None:
        response = api.get(f"/api/scenarios/{sid}/runs/{runid}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run if run["status"] != "running" else None

    run = wait_for(finished)
    assert run["status"] == "completed", run
    assert run["variables"]["$greeting"] == "hello world"
    assert run["scenario"] == sid and run["branch"] == "api-initiated" and run["ended"]
    assert "api run says hello world" in server.log_text()
    # Over: it cannot be cancelled; it belongs to its scenario only.
    error_of(api.delete(f"/api/scenarios/{sid}/runs/{runid}"), 409, "runid")
    other = file_scenario(api, "echo")["sid"]
    error_of(api.get(f"/api/scenarios/{other}/runs/{runid}"), 404, "runid")


def test_cancel_a_running_run(api: httpx.Client) -> None:
    sid = create_scenario(api, "slow-run", SLOW_SCRIPT)["sid"]
    runid = api.post(f"/api/scenarios/{sid}/start", json={}).json()["runid"]
    assert api.get(f"/api/scenarios/{sid}/runs/{runid}").json()["status"] == "running"
    assert api.delete(f"/api/scenarios/{sid}/runs/{runid}").json()["code"] == "ok"

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/scenarios/{sid}/runs/{runid}").json()
        return run if run["status"] != "running" else None

    run = wait_for(finished)
    assert run["status"] in ("cancelled", "hangup", "failed"), run


def test_start_refusals_name_the_field(api: httpx.Client) -> None:
    sid = create_scenario(api, "refusals", RUN_SCRIPT)["sid"]
    error_of(api.post(f"/api/scenarios/{sid}/start", json={"variables": {"who": 1}}), 422,
             "variables.who")  # fmt: skip
    error_of(api.post(f"/api/scenarios/{sid}/start", json={"variables": {"$call": 1}}), 422,
             "variables")  # fmt: skip
    error_of(api.post(f"/api/scenarios/{sid}/start", json={"to": "not a uri"}), 422, "to")
    # A name is a registered user's (none here), a number goes out through a trunk (none).
    unknown = error_of(api.post(f"/api/scenarios/{sid}/start", json={"to": "nobody"}), 422, "to")
    assert "'nobody' is no user here, and no trunk" in unknown["message"]
    no_trunk = error_of(api.post(f"/api/scenarios/{sid}/start", json={"to": "+3312"}), 422, "to")
    assert "no trunk is configured" in no_trunk["message"]
    error_of(api.post(f"/api/scenarios/{sid}/start", json={"colour": "red"}), 422, "colour")
    # A scenario without an api-initiated branch cannot be started: a conflict, not bad input.
    echo = file_scenario(api, "echo")["sid"]
    error_of(api.post(f"/api/scenarios/{echo}/start", json={}), 409, "sid")
    error_of(api.post("/api/scenarios/zzzzzzzz/start", json={}), 404, "sid")


def test_numbers_attach_and_detach(api: httpx.Client) -> None:
    sid = create_scenario(api, "numbered", INBOUND_SCRIPT)["sid"]
    assert api.put(f"/api/scenarios/{sid}/numbers/+33199001234").json()["code"] == "ok"
    assert api.put(f"/api/scenarios/{sid}/numbers/alice").status_code == 200
    assert api.get(f"/api/scenarios/{sid}").json()["numbers"] == ["+33199001234", "alice"]
    # A scenario without an inbound-call branch cannot take calls.
    runs_only = create_scenario(api, "runs-only", RUN_SCRIPT)["sid"]
    error_of(api.put(f"/api/scenarios/{runs_only}/numbers/+33199005555"), 409, "sid")
    # Removing the branch calls need is refused while numbers lead there.
    error_of(api.patch(f"/api/scenarios/{sid}", json={"script": RUN_SCRIPT}), 422, "script")
    error_of(api.put(f"/api/scenarios/{sid}/numbers/bad number"), 422, "number")
    assert api.delete(f"/api/scenarios/{sid}/numbers/alice").json()["code"] == "ok"
    error_of(api.delete(f"/api/scenarios/{sid}/numbers/alice"), 404, "number")
    assert api.get(f"/api/scenarios/{sid}").json()["numbers"] == ["+33199001234"]


# --- webhooks -------------------------------------------------------------------------


def test_webhook_lifecycle(api: httpx.Client) -> None:
    response = api.post(
        "/api/webhooks",
        json={"endpoint": "http://127.0.0.1:9/hooks", "events": ["v2.call.*"], "secret": "s3"},
    )
    assert response.status_code == 201, response.text
    hook = response.json()
    sid = hook["sid"]
    assert hook["signed"] and hook["status"] == "enabled" and hook["events"] == ["v2.call.*"]
    assert "secret" not in hook
    assert api.get(f"/api/webhooks/{sid}").json() == hook
    assert sid in [h["sid"] for h in api.get("/api/webhooks").json()["hits"]]

    changed = api.patch(
        f"/api/webhooks/{sid}", json={"status": "disabled", "events": ["*"], "secret": None}
    ).json()
    assert changed["status"] == "disabled" and changed["events"] == ["*"] and not changed["signed"]
    listed = api.get("/api/webhooks", params={"status": "disabled"}).json()["hits"]
    assert sid in [h["sid"] for h in listed]
    # The URL cannot change (create another webhook): an unknown field.
    error_of(api.patch(f"/api/webhooks/{sid}", json={"endpoint": "http://x.example"}), 422,
             "endpoint")  # fmt: skip
    error_of(api.patch(f"/api/webhooks/{sid}", json={"events": []}), 422, "events")
    assert api.delete(f"/api/webhooks/{sid}").json()["code"] == "ok"
    error_of(api.get(f"/api/webhooks/{sid}"), 404, "sid")


def test_webhook_logs_search(api: httpx.Client) -> None:
    page = api.get("/api/webhooks/logs", params={"limit": 5, "outcome": "delivered"}).json()
    assert set(page) == {"offset", "total", "hasMore", "hits"}
    error_of(api.get("/api/webhooks/logs", params={"httpcode": 42}), 422, "httpcode")


# --- recordings -------------------------------------------------------------------------


def index_recording(server: ServerProcess, path: Path, fmt: str = "wav") -> str:
    """Index a file as the recorder would (straight into the server's store)."""

    async def create() -> str:
        store = await Store.open(server.data_dir / "data" / "mediaserver.db")
        try:
            size = path.stat().st_size if path.exists() else 0
            record = await store.recordings.create(
                NewRecording(
                    path=str(path), format=fmt, kind="voicemail", duration_ms=1500, size=size
                )
            )
            return record.id
        finally:
            await store.close()

    return asyncio.run(create())


@pytest.fixture
def recording(server: ServerProcess) -> tuple[str, bytes, Path]:
    folder = server.data_dir / "data" / "recordings"
    path = folder / f"test-{time.monotonic_ns()}.wav"
    audio.make_tone_wav(path, 440, 1.5)
    return index_recording(server, path), path.read_bytes(), path


def test_recording_index_and_read_flag(
    api: httpx.Client, recording: tuple[str, bytes, Path]
) -> None:
    sid, data, _ = recording
    record = api.get(f"/api/recordings/{sid}").json()
    assert record["type"] == "voicemail" and record["status"] == "ready"
    assert record["size"] == len(data) and record["duration"] == 1.5 and not record["read"]
    listed = api.get("/api/recordings", params={"type": "voicemail", "limit": 100}).json()
    assert sid in [r["sid"] for r in listed["hits"]]
    read = api.patch(f"/api/recordings/{sid}", json={"read": True}).json()
    assert read["read"] and read["readAt"]
    unread = api.get("/api/recordings", params={"read": "false", "limit": 100}).json()["hits"]
    assert sid not in [r["sid"] for r in unread]
    error_of(api.patch(f"/api/recordings/{sid}", json={"read": "maybe"}), 422, "read")


def test_recording_download_with_ranges(
    api: httpx.Client, recording: tuple[str, bytes, Path]
) -> None:
    sid, data, _ = recording
    size = len(data)
    whole = api.get(f"/api/recordings/{sid}/file")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    for spec, first, last in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=10-{size + 1000}", 10, size - 1),
    ]:
        part = api.get(f"/api/recordings/{sid}/file", headers={"Range": spec})
        assert part.status_code == 206, spec
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert part.content == data[first : last + 1]
    for bad in [
        f"bytes={size}-",
        "bytes=50-10",
        "bytes=-0",
        "bytes=0-1,5-9",
        "items=0-1",
        "bytes=x",
    ]:
        response = api.get(f"/api/recordings/{sid}/file", headers={"Range": bad})
        error = error_of(response, 416, "range")
        assert error["code"] == "range_not_satisfiable"
        assert response.headers["content-range"] == f"bytes */{size}"


def test_recording_delete_removes_the_file(
    api: httpx.Client, recording: tuple[str, bytes, Path]
) -> None:
    sid, _, path = recording
    assert path.exists()
    assert api.delete(f"/api/recordings/{sid}").json()["code"] == "ok"
    assert not path.exists()
    error_of(api.get(f"/api/recordings/{sid}"), 404, "sid")
    error_of(api.delete(f"/api/recordings/{sid}"), 404, "sid")


def test_files_outside_the_recordings_folder_are_never_served(
    api: httpx.Client, server: ServerProcess, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF not yours")
    sid = index_recording(server, outside)
    error_of(api.get(f"/api/recordings/{sid}/file"), 404, "sid")
    # A path that climbs out of the folder is refused the same way.
    climbing = server.data_dir / "data" / "recordings" / ".." / ".." / "config.yaml"
    error_of(api.get(f"/api/recordings/{index_recording(server, climbing)}/file"), 404, "sid")
    assert api.delete(f"/api/recordings/{sid}").status_code == 200
    assert outside.exists(), "a file outside the recordings folder was deleted"


# --- the rest -------------------------------------------------------------------------


def test_conferences_and_queues_are_empty_pages(api: httpx.Client) -> None:
    empty = {"offset": 0, "total": 0, "hasMore": False, "hits": []}
    assert api.get("/api/conferences").json() == empty
    assert api.get("/api/queues").json() == empty


def test_live_calls_and_records_when_idle(api: httpx.Client) -> None:
    assert api.get("/api/calls").json()["hits"] == []
    export = api.get("/api/cdrs/export", params={"direction": "outbound"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("id,direction,status,from")


def test_generated_api_key(tmp_path: Path) -> None:
    """No keys configured: one is generated, kept 0600, printed once, and works."""
    data = tmp_path / "server"
    first = start_server(data, routes=ROUTES, scenarios=SCENARIOS, api_key=None)
    try:
        key_file = data / "data" / "api-key"
        assert first.api_key and key_file.read_text().strip() == first.api_key
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        ok = httpx.get(f"{first.api_url}/api/ping", headers={"X-API-Key": first.api_key})
        assert ok.status_code == 200
        error_of(httpx.get(f"{first.api_url}/api/ping", headers={"X-API-Key": TEST_API_KEY}), 401)
    finally:
        assert first.stop() == 0
    again = start_server(data, routes=ROUTES, scenarios=SCENARIOS, api_key=None)
    try:
        assert again.api_key == "", "the key was printed a second time"
        key = key_file.read_text().strip()
        assert key == first.api_key
        response = httpx.get(
            f"{again.api_url}/api/ping", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
    finally:
        assert again.stop() == 0
