"""The Voxology Call Flow Loop (``callflow:URL`` routes, ``callflow@v1``) with real calls.

A local HTTP application (:class:`FlowApp`) answers the server's callback
requests from Python functions, so each answer can depend on the request
(``init_call``, ``live_call``, ``end_call``); every request is kept. Calls
come from baresip, whose recording of what it heard is analysed: the SAY
actions must be heard, and the keys it sends must come back in the
``key_presses`` of the next request.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import Request
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

PEER_HUNG_UP = "Connection reset by peer"
Responder = Callable[[Request], tuple[int, Any]]


class FlowApp:
    """A loopback HTTP application: a responder per path, every request kept."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responders: dict[str, Responder] = {}
        self._lock = threading.Lock()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(self.command, self.path, headers, body)
                with app._lock:
                    app.requests.append(request)
                    responder = app.responders.get(self.path.split("?")[0])
                status, answer = responder(request) if responder else (404, None)
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def calls(self, path: str) -> list[tuple[Request, dict[str, Any]]]:
        """Requests to ``path`` with their fields (the JSON body, or the query)."""
        with self._lock:
            found = [r for r in self.requests if r.path.split("?")[0] == path]
        return [(r, fields(r)) for r in found]

    def wait_for(self, path: str, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, body in self.calls(path):
                if body.get("type") == kind:
                    return body
            time.sleep(0.05)
        raise AssertionError(f"no {kind} at {path}; got {[r.path for r in self.requests]}")

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def fields(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        return dict(parse_qsl(urlsplit(request.path).query, keep_blank_values=True))
    return dict(request.json())


def by_type(**answers: Any) -> Responder:
    """Answer each request type (init_call, live_call...) with its JSON, a (status,
    JSON) pair, or a function of the request's fields giving either; others get {}."""

    def respond(request: Request) -> tuple[int, Any]:
        body = fields(request)
        answer = answers.get(str(body.get("type")), {})
        if callable(answer):
            answer = answer(body)
        return answer if isinstance(answer, tuple) else (200, answer)

    return respond


GET_FLOW = """\
branches:
  inbound-call:
    actions:
      - action: set@v1
        params: {{$sessionData: "({{plan: 'gold', tags: ['a', 'b']}})"}}
      - action: callflow@v1
        params:
          url: "{url}?app=demo"
          method: GET
          headers: {{X-App-Key: "key-${{call.to}}"}}
"""


@pytest.fixture(scope="module")
def app() -> Iterator[FlowApp]:
    flow_app = FlowApp()
    yield flow_app
    flow_app.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app: FlowApp) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("callflow")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    (scenarios / "getflow.yaml").write_text(GET_FLOW.format(url=app.url("/static/flow.json")))
    routes = {
        "flow": f'"callflow:{app.url("/flow")}"',
        "broken": f'"callflow:{app.url("/broken")}"',
        "refused": f'"callflow:{app.url("/refused")}"',
        "dialer": f'"callflow:{app.url("/dialer")}"',
        "getflow": "getflow",
    }
    proc = start_server(tmp / "server", routes=routes, scenarios=scenarios)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


def test_say_collect_redirect_and_end_call(server: ServerProcess, app: FlowApp) -> None:
    app.responders["/flow"] = by_type(
        init_call={
            "actions": [
                {"type": "SAY", "params": {"text": "Welcome to the call flow test."}},
                {
                    "name": "code",
                    "type": "COLLECT",
                    "params": {"num_digits": 2, "timeout": 8000, "finish_on_key": "pound"},
                    "actions": [{"type": "SAY", "params": {"text": "Enter two digits."}}],
                },
                {"type": "REDIRECT", "params": {"url": "flow/step2"}},
            ]
        }
    )
    app.responders["/flow/step2"] = by_type(
        live_call=[
            {"type": "SAY", "params": {"text": "You entered ${...keyPresses}. Good bye."}},
            {"type": "HANGUP"},
        ]
    )
    with Baresip(user="alice", max_call_s=40) as phone:
        phone.dial(server.uri("flow"))
        phone.wait_established(timeout=10)
        init = app.wait_for("/flow", "init_call")
        time.sleep(3.0)  # the welcome, then into the COLLECT's prompt
        phone.send_dtmf("42")
        assert phone.wait_closed(timeout=25) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()

    assert init["service"] == "programmable_voice" and init["direction"] == "inbound"
    assert init["caller_no"] == "alice" and init["api_no"] == "flow"
    assert init["status"] == "live-ringing" and init["sip_forwarded_for"] == "127.0.0.1"
    assert len(init["call_id"]) == 8 and init["start_time"].endswith("Z")

    live = app.wait_for("/flow/step2", "live_call")  # REDIRECT: the new URL, at once
    assert live["key_presses"] == [{"name": "code", "digits": "42", "history": ["42"]}]
    assert live["status"] == "live-in-progress" and live["call_id"] == init["call_id"]

    end = app.wait_for("/flow/step2", "end_call")
    assert end["status"] == "completed" and end["error_code"] is None
    assert end["key_presses"] == live["key_presses"]
    assert end["duration"] >= 4000 and end["connect_time_sec"] >= 3
    assert [b["type"] for _, b in app.calls("/flow")] == ["init_call"]

    # Welcome, the COLLECT prompt, "You entered 4 2. Good bye.": seconds of speech.
    assert audio.speech_seconds(heard, rate) > 3.0
    spans = audio.active_intervals(heard, rate, -40)
    assert spans and spans[0][0] < 2.0, spans


def test_a_non_2xx_live_call_is_heard_and_reported(server: ServerProcess, app: FlowApp) -> None:
    app.responders["/broken"] = by_type(
        init_call=[{"type": "SAY", "params": {"text": "Hello."}}],
        live_call=(500, {"oops": True}),
    )
    with Baresip(user="bob", max_call_s=40) as phone:
        phone.dial(server.uri("broken"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=25) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    end = app.wait_for("/broken", "end_call")
    assert end["error_code"] == 400901
    assert "answered 500" in end["error"] and end["status"] == "completed"
    # "Hello." then "We're sorry, something went wrong. Error code 4 0 0 9 0 1. Good bye."
    assert audio.speech_seconds(heard, rate) > 4.0


def test_a_non_2xx_init_call_refuses_the_call(server: ServerProcess, app: FlowApp) -> None:
    app.responders["/refused"] = by_type(init_call=(503, None))
    with Baresip(user="carol", max_call_s=20) as phone:
        phone.dial(server.uri("refused"))
        reason = phone.wait_closed(timeout=15)
    assert reason.startswith("480"), reason  # pre-connect: nothing to hear (seed: n/a)
    end = app.wait_for("/refused", "end_call")
    assert end["error_code"] == 400900 and end["status"] == "failed"
    assert end["connect_time_sec"] == 0


def test_callflow_action_with_get_headers_and_session_data(
    server: ServerProcess, app: FlowApp
) -> None:
    app.responders["/static/flow.json"] = by_type(init_call=[{"type": "HANGUP"}])
    with Baresip(user="dave", max_call_s=20) as phone:
        phone.dial(server.uri("getflow"))
        phone.wait_closed(timeout=15)
    end = app.wait_for("/static/flow.json", "end_call")
    (first, init), _ = app.calls("/static/flow.json")
    assert first.method == "GET" and first.headers["x-app-key"] == "key-getflow"
    assert first.path.startswith("/static/flow.json?app=demo&service=programmable_voice")
    assert init["type"] == "init_call" and init["is_webhook"] == "false"
    assert init["session_data.plan"] == "gold" and init["session_data.tags.1"] == "b"
    assert end["caller_no"] == "dave" and "key_presses" not in end


def test_dial_places_an_independent_call_running_the_flow(
    server: ServerProcess, app: FlowApp
) -> None:
    with Baresip(user="erin", auto_answer=True, max_call_s=30) as callee:
        dial = {
            "type": "DIAL",
            "params": {"no": callee.sip_uri, "caller_id_no": "+33199001234", "timeout": 20},
            "session_data": {"customer": "frank", "ticket": 17},
        }
        app.responders["/dialer"] = by_type(
            init_call=lambda body: (
                [dial, {"type": "PAUSE", "params": {"seconds": 4}}, {"type": "HANGUP"}]
                if body["direction"] == "inbound"
                else [
                    {"type": "SAY", "params": {"text": "Ticket ${sessionData.ticket}."}},
                    {"type": "HANGUP"},
                ]
            ),
        )
        with Baresip(user="frank", max_call_s=30) as caller:
            caller.dial(server.uri("dialer"))
            caller.wait_established(timeout=10)
            callee.wait_established(timeout=10)
            assert callee.wait_closed(timeout=15) == PEER_HUNG_UP
            heard, rate = callee.recorded_audio()
            assert caller.wait_closed(timeout=15) == PEER_HUNG_UP
    inits = [body for _, body in app.calls("/dialer") if body["type"] == "init_call"]
    parent, child = sorted(inits, key=lambda body: body["direction"])
    assert (parent["direction"], child["direction"]) == ("inbound", "outbound")
    assert child["api_no"] == "+33199001234" and child["caller_no"] == "erin"
    assert child["session_data"] == {"customer": "frank", "ticket": 17}
    ends = [body for _, body in app.calls("/dialer") if body["type"] == "end_call"]
    assert {body["call_id"] for body in ends} == {parent["call_id"], child["call_id"]}
    (child_end,) = [body for body in ends if body["call_id"] == child["call_id"]]
    assert child_end["parent_call_id"] == parent["call_id"]
    assert audio.speech_seconds(heard, rate) > 0.5  # "Ticket 17."
