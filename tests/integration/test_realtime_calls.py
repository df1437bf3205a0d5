"""REALTIME10 (Callr v1) with real calls: ``realtime:URL`` routes.

A local HTTP application answers each RT.Request with an RT.Response chosen
from what the request says (the last command, its result, the variables it
sent back); calls come from baresip, whose recording is analysed and whose
keys must come back in ``command_result``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.test_callflow_calls import FlowApp
from tests.integration.webpeer import Request
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

PEER_HUNG_UP = "Connection reset by peer"


def bodies(app: FlowApp, path: str) -> list[dict[str, Any]]:
    return [body for _, body in app.calls(path)]


def wait_hangup(app: FlowApp, path: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for body in bodies(app, path):
            if body["call_status"] == "HANGUP":
                return body
        time.sleep(0.05)
    raise AssertionError(f"no HANGUP request at {path}: {bodies(app, path)}")


@pytest.fixture(scope="module")
def app() -> Iterator[FlowApp]:
    rt_app = FlowApp()
    yield rt_app
    rt_app.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app: FlowApp) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("realtime")
    secured = app.url("/secured").replace("http://", "http://rt-user:s3cret@")
    routes = {
        "rt": f'"realtime:{app.url("/rt")}"',
        "slow": f'"realtime:{app.url("/slow")}"',
        "wrong": f'"realtime:{app.url("/wrong")}"',
        "secured": f'"realtime:{secured}"',
        "dialer": f'"realtime:{app.url("/dialer")}"',
        "recorder": f'"realtime:{app.url("/recorder")}"',
        "wrong-media": f'"realtime:{app.url("/wrong-media")}"',
    }
    proc = start_server(tmp / "server", routes=routes)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


def test_commands_run_and_their_results_come_back(server: ServerProcess, app: FlowApp) -> None:
    def respond(request: Request) -> tuple[int, Any]:
        body = request.json()
        step = body["variables"].get("step", 0)
        if body["call_status"] == "HANGUP":
            return 200, {}
        script: list[dict[str, Any]] = [
            {"command": "say", "params": {"text": "Welcome to the real time test."}},
            {
                "command": "read",
                "params": {
                    "media_id": "TTS|TTS_EN-GB_SERENA|Enter two digits.",
                    "max_digits": 2,
                    "timeout_ms": 8000,
                },
            },
            {"command": "send_dtmf", "params": {"digits": "7"}},
            {"command": "wait", "params": {"duration_ms": 500}},
            {"command": "hangup", "params": {}},
        ]
        answer = dict(script[step])
        answer["command_id"] = 100 + step
        answer["variables"] = {"step": step + 1, "caller": body["cli_number"]}
        return 200, answer

    app.responders["/rt"] = respond
    with Baresip(user="alice", max_call_s=40) as phone:
        phone.dial(server.uri("rt"))
        phone.wait_established(timeout=10)
        time.sleep(4.0)  # the welcome, then into the read's prompt
        phone.send_dtmf("42")
        phone.wait_dtmf("7", timeout=15)
        assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()

    hangup = wait_hangup(app, "/rt")
    sent = bodies(app, "/rt")
    first = sent[0]
    assert first["call_status"] == "UP" and first["command"] == "" and first["command_id"] is None
    assert first["cli_number"] == "alice" and first["number"] == "rt"
    assert first["variables"] == {} and len(first["app"]) == 8
    assert len(first["date_started"]) == 19 and first["date_started"][10] == " "
    commands = [(b["command"], b["command_id"], b["command_result"], b["command_error"])
                for b in sent[1:]]  # fmt: skip
    assert commands == [
        ("say", 100, "", ""),
        ("read", 101, "42", ""),
        ("send_dtmf", 102, "", ""),
        ("wait", 103, "", ""),
        ("hangup", 104, "", ""),  # the HANGUP request reports the hangup command
    ], commands
    # variables come back untouched, the last response's in each request
    assert sent[2]["variables"] == {"step": 2, "caller": "alice"}
    assert hangup["variables"] == {"step": 5, "caller": "alice"}
    assert {b["callid"] for b in sent} == {first["callid"]}
    # "Welcome to the real time test." and "Enter two digits.": seconds of speech.
    assert audio.speech_seconds(heard, rate) > 2.0


def test_no_answer_within_5_s_hangs_up(server: ServerProcess, app: FlowApp) -> None:
    def respond(request: Request) -> tuple[int, Any]:
        if request.json()["call_status"] == "UP":
            time.sleep(6.5)
        return 200, {"command": "say", "params": {"text": "Too late."}}

    app.responders["/slow"] = respond
    with Baresip(user="bob", max_call_s=30) as phone:
        phone.dial(server.uri("slow"))
        phone.wait_established(timeout=10)
        started = time.monotonic()
        assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
        waited = time.monotonic() - started
        heard, rate = phone.recorded_audio()
    hangup = wait_hangup(app, "/slow")
    assert hangup["command"] == "" and hangup["command_error"] == ""
    assert waited > 3.0  # hung up once the 5 s passed, not at once
    assert audio.speech_seconds(heard, rate) < 0.5  # "Too late." never ran
    assert "no RT.Response within 5 s" in server.log_text()


def test_an_invalid_command_is_reported_and_the_app_answers_again(
    server: ServerProcess, app: FlowApp
) -> None:
    def respond(request: Request) -> tuple[int, Any]:
        body = request.json()
        if body["command_error"]:
            return 200, {"command": "hangup", "command_id": "bye"}
        return 200, {"command": "dance", "command_id": "d1", "params": {}}

    app.responders["/wrong"] = respond
    with Baresip(user="carol", max_call_s=20) as phone:
        phone.dial(server.uri("wrong"))
        assert phone.wait_closed(timeout=15) == PEER_HUNG_UP
    wait_hangup(app, "/wrong")
    second = bodies(app, "/wrong")[1]
    assert second["command"] == "dance" and second["command_id"] == "d1"
    assert "'dance' is not a command" in second["command_error"]
    assert "hangup" in second["command_error"]  # the list of commands, as the fix


def test_a_command_that_fails_is_reported_and_the_dialogue_goes_on(
    server: ServerProcess, app: FlowApp
) -> None:
    missing = app.url("/no-such.wav")

    def respond(request: Request) -> tuple[int, Any]:
        body = request.json()
        if body["command"] == "":
            return 200, {"command": "play", "command_id": 1, "params": {"media_id": missing}}
        if body["command"] == "play":
            return 200, {
                "command": "say",
                "command_id": 2,
                "params": {"text": "Sorry, that sound could not be played."},
            }
        return 200, {"command": "hangup", "command_id": 3}

    app.responders["/wrong-media"] = respond
    with Baresip(user="fred", max_call_s=20) as phone:
        phone.dial(server.uri("wrong-media"))
        assert phone.wait_closed(timeout=15) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    wait_hangup(app, "/wrong-media")
    played, said = bodies(app, "/wrong-media")[1:3]
    assert played["command"] == "play" and played["command_result"] == ""
    assert "404" in played["command_error"], played
    assert (said["command"], said["command_error"]) == ("say", "")
    assert audio.speech_seconds(heard, rate) > 1.0  # "Sorry, that sound could not..."


def test_login_and_password_in_the_route_url_are_sent_as_basic_auth(
    server: ServerProcess, app: FlowApp
) -> None:
    app.responders["/secured"] = lambda request: (200, {"command": "hangup"})
    with Baresip(user="dave", display_name="Dave Bowman", max_call_s=20) as phone:
        phone.dial(server.uri("secured"))
        assert phone.wait_closed(timeout=15) == PEER_HUNG_UP
    wait_hangup(app, "/secured")
    (request, body), *_ = app.calls("/secured")
    expected = base64.b64encode(b"rt-user:s3cret").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert body["cli_name"] == "Dave Bowman" and body["cli_number"] == "dave"


def test_record_gives_the_recording_s_id(server: ServerProcess, app: FlowApp) -> None:
    def respond(request: Request) -> tuple[int, Any]:
        body = request.json()
        if body["command"] == "":
            params = {"max_duration": 10, "silence": 1}
            return 200, {"command": "record", "command_id": "r", "params": params}
        return 200, {"command": "hangup"}

    app.responders["/recorder"] = respond
    with Baresip(user="erin", max_call_s=20) as phone:
        phone.dial(server.uri("recorder"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    wait_hangup(app, "/recorder")
    second = bodies(app, "/recorder")[1]
    assert (second["command"], second["command_error"]) == ("record", "")
    rid = second["command_result"]
    assert len(rid) == 8, second
    headers = {"Authorization": f"Bearer {server.api_key}"}
    found = httpx.get(f"{server.api_url}/api/recordings/{rid}", headers=headers, timeout=10)
    assert found.status_code == 200, found.text
    assert audio.tone_present(heard, rate, 1000, 0.15), "no beep before recording"


def test_dialout_bridges_and_reports_the_dial_status(server: ServerProcess, app: FlowApp) -> None:
    with Baresip(user="erin", auto_answer=True, max_call_s=30) as callee:

        def respond(request: Request) -> tuple[int, Any]:
            body = request.json()
            if body["command"] == "":
                target = {"number": callee.sip_uri, "timeout": 20}
                params = {"targets": [target], "cli": "+33199001234", "timeout": 20}
                return 200, {"command": "dialout", "command_id": "d", "params": params}
            return 200, {"command": "hangup"}

        app.responders["/dialer"] = respond
        with Baresip(user="frank", max_call_s=30) as caller:
            caller.dial(server.uri("dialer"))
            caller.wait_established(timeout=10)
            callee.wait_established(timeout=10)
            time.sleep(1.0)
            callee.hangup()
            assert caller.wait_closed(timeout=15) == PEER_HUNG_UP
    wait_hangup(app, "/dialer")
    second = bodies(app, "/dialer")[1]
    assert (second["command"], second["command_result"], second["command_error"]) == (
        "dialout",
        "ANSWER",
        "",
    )
