"""Call Control through the official Telnyx SDK, unchanged, against real peers.

The SDK's ``base_url`` points at the server's ``/telnyx/v2``; a local HTTP
receiver (``WebPeer``) plays the application's webhook URL; baresip is the
caller, and what it heard is analysed. Each test drives one call the way an
application would: wait for an event, send a command, check what follows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import telnyx

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import Request, WebPeer
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

PEER_HUNG_UP = "Connection reset by peer"


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebPeer]:
    with WebPeer() as web:
        yield web


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hooks: WebPeer) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("callcontrol")
    routes = {"cc": f'"call-control:{hooks.url("/hooks")}"', "echo": "echo"}
    proc = start_server(tmp, routes=routes)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=server.api_key, base_url=f"{server.api_url}/telnyx/v2")


class Events:
    """The Call Control events one call posted to the receiver, in order."""

    def __init__(self, web: WebPeer, path: str = "/hooks") -> None:
        self.web = web
        self.path = path

    def all(self, call_control_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for request in self.web.received(self.path):
            data = json.loads(request.body)["data"]
            if call_control_id is None or data["payload"].get("call_control_id") == call_control_id:
                out.append(data)
        return out

    def wait(
        self, event_type: str, call_control_id: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        def match(request: Request) -> bool:
            if request.path != self.path:
                return False
            data = json.loads(request.body)["data"]
            ours = call_control_id is None or (
                data["payload"].get("call_control_id") == call_control_id
            )
            return bool(data["event_type"] == event_type and ours)

        found = self.web.wait_for(match, timeout=timeout)
        data: dict[str, Any] = json.loads(found.body)["data"]
        return data


def test_inbound_call_answered_spoken_to_gathered_and_hung_up(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx
) -> None:
    events = Events(hooks)
    with Baresip(max_call_s=40) as phone:
        phone.dial(server.uri("cc"))
        initiated = events.wait("call.initiated")
        payload = initiated["payload"]
        assert payload["direction"] == "incoming"
        assert payload["state"] == "parked"
        assert payload["to"] == "cc"
        ccid = payload["call_control_id"]
        status = client.calls.retrieve_status(ccid)
        assert status.data is not None and status.data.is_alive

        client.calls.actions.answer(ccid, client_state="c3RhdGUtMQ==")
        phone.wait_established(timeout=10)
        answered = events.wait("call.answered", ccid)
        assert answered["payload"]["client_state"] == "c3RhdGUtMQ=="

        client.calls.actions.speak(
            ccid, payload="Hello from call control. Please enter your code.", voice="female"
        )
        events.wait("call.speak.started", ccid)
        ended = events.wait("call.speak.ended", ccid, timeout=20)
        assert ended["payload"]["status"] == "completed"

        client.calls.actions.gather_using_audio(
            ccid, minimum_digits=2, maximum_digits=4, timeout_millis=10000
        )
        time.sleep(0.5)
        phone.send_dtmf("42#")
        gathered = events.wait("call.gather.ended", ccid)
        assert gathered["payload"]["digits"] == "42"
        assert gathered["payload"]["status"] == "valid"
        keys = [
            e["payload"]["digit"]
            for e in events.all(ccid)
            if e["event_type"] == "call.dtmf.received"
        ]
        assert keys[:3] == ["4", "2", "#"]

        client.calls.actions.hangup(ccid)
        assert phone.wait_closed(timeout=10) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    hangup = events.wait("call.hangup", ccid)
    assert hangup["payload"]["hangup_cause"] == "normal_clearing"
    assert hangup["payload"]["hangup_source"] == "callee"
    assert hangup["payload"]["client_state"] == "c3RhdGUtMQ=="
    assert audio.speech_seconds(heard, rate) > 1.5
    # The call is over: a command gets the seed's "call has already ended".
    with pytest.raises(telnyx.UnprocessableEntityError) as refused:
        client.calls.actions.speak(ccid, payload="too late", voice="female")
    assert refused.value.body["errors"][0]["code"] == "90018"  # type: ignore[index]
    status = client.calls.retrieve_status(ccid)
    assert status.data is not None and not status.data.is_alive


def test_unknown_call_is_404_in_the_seed_shape(client: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.NotFoundError) as missing:
        client.calls.actions.answer("nosuchid")
    error = missing.value.body["errors"][0]  # type: ignore[index]
    assert error["code"] == "10005" and "nosuchid" in error["detail"]


def test_bad_field_is_422_naming_it(server: ServerProcess, client: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError) as bad:
        client.calls.dial(connection_id="x", from_="alice", to="sip:x@127.0.0.1", timeout_secs=1)
    error = bad.value.body["errors"][0]  # type: ignore[index]
    assert error["source"]["pointer"] == "/timeout_secs"
