"""Every Call Control path and method of seed 002 is served under ``/telnyx/v2``.

Each one is in ``/openapi.json`` (parameter names aside) and answers
something other than "no such endpoint" (404 from the router) or 405: an
unknown call, conference or queue is a 404 in the seed's error shape with
code 10005, which is an answer from the route itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server

pytestmark = pytest.mark.integration

SEED_OPERATIONS = (
    ("GET", "/call_control_applications"),
    ("POST", "/call_control_applications"),
    ("DELETE", "/call_control_applications/{id}"),
    ("GET", "/call_control_applications/{id}"),
    ("PATCH", "/call_control_applications/{id}"),
    ("GET", "/call_events"),
    ("POST", "/calls"),
    ("GET", "/calls/{call_control_id}"),
    ("POST", "/calls/{call_control_id}/actions/answer"),
    ("POST", "/calls/{call_control_id}/actions/bridge"),
    ("POST", "/calls/{call_control_id}/actions/enqueue"),
    ("POST", "/calls/{call_control_id}/actions/fork_start"),
    ("POST", "/calls/{call_control_id}/actions/fork_stop"),
    ("POST", "/calls/{call_control_id}/actions/gather_stop"),
    ("POST", "/calls/{call_control_id}/actions/gather_using_audio"),
    ("POST", "/calls/{call_control_id}/actions/gather_using_speak"),
    ("POST", "/calls/{call_control_id}/actions/hangup"),
    ("POST", "/calls/{call_control_id}/actions/leave_queue"),
    ("POST", "/calls/{call_control_id}/actions/playback_start"),
    ("POST", "/calls/{call_control_id}/actions/playback_stop"),
    ("POST", "/calls/{call_control_id}/actions/record_pause"),
    ("POST", "/calls/{call_control_id}/actions/record_resume"),
    ("POST", "/calls/{call_control_id}/actions/record_start"),
    ("POST", "/calls/{call_control_id}/actions/record_stop"),
    ("POST", "/calls/{call_control_id}/actions/refer"),
    ("POST", "/calls/{call_control_id}/actions/reject"),
    ("POST", "/calls/{call_control_id}/actions/send_dtmf"),
    ("POST", "/calls/{call_control_id}/actions/speak"),
    ("POST", "/calls/{call_control_id}/actions/transcription_start"),
    ("POST", "/calls/{call_control_id}/actions/transcription_stop"),
    ("POST", "/calls/{call_control_id}/actions/transfer"),
    ("GET", "/conferences"),
    ("POST", "/conferences"),
    ("GET", "/conferences/{conference_id}/participants"),
    ("GET", "/conferences/{id}"),
    ("POST", "/conferences/{id}/actions/dial_participant"),
    ("POST", "/conferences/{id}/actions/hold"),
    ("POST", "/conferences/{id}/actions/join"),
    ("POST", "/conferences/{id}/actions/leave"),
    ("POST", "/conferences/{id}/actions/mute"),
    ("POST", "/conferences/{id}/actions/play"),
    ("POST", "/conferences/{id}/actions/record_start"),
    ("POST", "/conferences/{id}/actions/record_stop"),
    ("POST", "/conferences/{id}/actions/speak"),
    ("POST", "/conferences/{id}/actions/stop"),
    ("POST", "/conferences/{id}/actions/unhold"),
    ("POST", "/conferences/{id}/actions/unmute"),
    ("POST", "/conferences/{id}/actions/update"),
    ("GET", "/queues/{queue_name}"),
    ("GET", "/queues/{queue_name}/calls"),
    ("GET", "/queues/{queue_name}/calls/{call_control_id}"),
    ("GET", "/recordings"),
    ("GET", "/recordings/{id}"),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("surface"))
    yield proc
    proc.stop()


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_seed_operation_is_in_the_openapi_document(server: ServerProcess) -> None:
    document = httpx.get(
        f"{server.api_url}/openapi.json", headers={"X-API-Key": server.api_key}, timeout=10
    ).json()
    served = {
        (method.upper(), _shape(path.removeprefix("/telnyx/v2")))
        for path, operations in document["paths"].items()
        if path.startswith("/telnyx/v2/")
        for method in operations
    }
    missing = [(m, p) for m, p in SEED_OPERATIONS if (m, _shape(p)) not in served]
    assert not missing


@pytest.mark.parametrize(("method", "path"), SEED_OPERATIONS)
def test_every_seed_operation_answers(server: ServerProcess, method: str, path: str) -> None:
    concrete = re.sub(r"\{[^}]+\}", "nosuchthing", path)
    response = httpx.request(
        method,
        f"{server.api_url}/telnyx/v2{concrete}",
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={} if method in ("POST", "PATCH") else None,
        timeout=10,
    )
    assert response.status_code != 405
    body = response.json()
    if response.status_code == 404:
        (error,) = body["errors"]
        assert error["code"] == "10005"
        assert not error["detail"].startswith("No such endpoint"), error
    elif response.status_code >= 400:
        assert body["errors"][0]["code"] and body["errors"][0]["title"]
