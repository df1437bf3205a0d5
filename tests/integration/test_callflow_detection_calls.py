"""Voxology Call Flow actions that listen to or shape a real call.

DIAL ``detection`` and DETECT run the shared answering-machine detector on a
callee that is baresip playing a recorded greeting (speech, then a beep) or a
short "Hello?"; what the callee heard is analysed against where the beep was.
RECORDMESSAGE ``discard``, ``callback_failover``, ``answer_on_ring`` and the
location fields run with a caller placing a call to a number.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.test_callflow_calls import PEER_HUNG_UP, FlowApp, by_type
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

LEAD_S = 0.4
"""Silence before the greeting in the callee's audio."""

FAILOVER_FLOW = """\
branches:
  inbound-call:
    actions:
      - action: callflow@v1
        params:
          url: "{url}"
          failover_url: "{failover}"
          failover_method: GET
          answer_on_ring: 2
"""


@pytest.fixture(scope="module")
def greetings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, float]]:
    """Callee audio: a machine (greeting, silence, a beep) and a person ("Hello?"),
    each with the second at which its greeting ends (the beep's end for the machine)."""
    folder = tmp_path_factory.mktemp("greetings")
    hello = audio.make_speech_wav(folder / "hello-raw.wav", "Hello?")
    greeting = audio.make_speech_wav(
        folder / "greeting-raw.wav",
        "Hi, you have reached the voicemail of John Smith. I cannot take your call "
        "right now. Please leave a message after the tone.",
    )
    samples, rate = audio.read_mono(hello)
    person = audio.write_wav(folder / "hello.wav", [*audio.silence(LEAD_S), *samples], rate)
    spoken, rate = audio.read_mono(greeting)
    beep = audio.tone(1400, 0.5, rate=rate, amplitude=0.3)
    machine = audio.write_wav(
        folder / "machine.wav", [*audio.silence(LEAD_S), *spoken, *audio.silence(0.6), *beep], rate
    )
    beep_end = LEAD_S + len(spoken) / rate + 0.6 + 0.5
    return {"machine": (machine, beep_end), "person": (person, LEAD_S + len(samples) / rate)}


@pytest.fixture(scope="module")
def app() -> Iterator[FlowApp]:
    flow_app = FlowApp()
    yield flow_app
    flow_app.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app: FlowApp) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("callflow-detection")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    (scenarios / "failover.yaml").write_text(
        FAILOVER_FLOW.format(url=app.url("/down"), failover=app.url("/failover.json"))
    )
    routes = {
        "dialer": f'"callflow:{app.url("/dialer")}"',
        "detect": f'"callflow:{app.url("/detect")}"',
        "+14155552671": f'"callflow:{app.url("/messages")}"',
        "+33142685300": f'"callflow:{app.url("/other-line")}"',
        "failover": "failover",
    }
    proc = start_server(tmp / "server", routes=routes, scenarios=scenarios)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


def speech_onset(heard: audio.Samples, rate: int) -> float:
    """When the callee first heard speech (seconds into its recording)."""
    spans = audio.active_intervals(heard, rate, -40)
    assert spans, "the callee heard nothing"
    return float(spans[0][0])


@pytest.mark.parametrize("voice", ["machine", "person"])
def test_dial_detection_full_waits_for_the_beep_before_init_call(
    server: ServerProcess,
    app: FlowApp,
    greetings: dict[str, tuple[Path, float]],
    voice: str,
) -> None:
    app.requests.clear()  # the other parameter's requests went to the same paths
    wav, greeting_end = greetings[voice]
    with Baresip(user=f"callee-{voice}", auto_answer=True, input_wav=wav, max_call_s=40) as callee:
        dial = {
            "type": "DIAL",
            "params": {
                "no": callee.sip_uri,
                "caller_id_no": "+33199001234",
                "detection": "full",
                # The dialled call's flow is that of +33142685300's route.
                "override_callback_config": "+33142685300",
            },
        }
        app.responders["/dialer"] = by_type(
            init_call=[dial, {"type": "PAUSE", "params": {"seconds": 2}}, {"type": "HANGUP"}]
        )
        app.responders["/other-line"] = by_type(
            init_call=[
                {"type": "SAY", "params": {"text": "This is a message from your pharmacy."}},
                {"type": "HANGUP"},
            ]
        )
        with Baresip(user="caller", max_call_s=30) as caller:
            caller.dial(server.uri("dialer"))
            caller.wait_established(timeout=10)
            callee.wait_established(timeout=10)
            assert callee.wait_closed(timeout=40) == PEER_HUNG_UP
            heard, rate = callee.recorded_audio()
    init = app.wait_for("/other-line", "init_call")
    assert init["direction"] == "outbound" and init["api_no"] == "+33199001234"
    assert init["detection"] == ("voicemail" if voice == "machine" else "live_person")
    onset = speech_onset(heard, rate)
    if voice == "machine":
        # "full": the flow started once the greeting's beep was over, so the message
        # lands on the recording rather than on the greeting.
        assert onset > greeting_end, (onset, greeting_end)
    else:
        assert onset < greetings["machine"][1], onset  # a person is not made to wait


def test_detect_runs_the_early_handler_then_on_voicemail_after_the_beep(
    server: ServerProcess, app: FlowApp, greetings: dict[str, tuple[Path, float]]
) -> None:
    wav, beep_end = greetings["machine"]
    arrivals: dict[str, float] = {}

    def detect_flow(body: dict[str, Any]) -> Any:
        if body["direction"] == "inbound":
            dial = {"type": "DIAL", "params": {"no": callee.sip_uri}}
            return [dial, {"type": "PAUSE", "params": {"seconds": 2}}, {"type": "HANGUP"}]
        return {
            "type": "DETECT",
            "params": {"trigger_live_in_ms": 8000},
            "events": {
                "on_live_person": [{"type": "HANGUP"}],
                "on_voicemail_early": [
                    {"type": "WEBHOOK", "params": {"event_name": "early", "await_response": True}}
                ],
                "on_voicemail": [
                    {"type": "WEBHOOK", "params": {"event_name": "beep", "await_response": True}},
                    {"type": "SAY", "params": {"text": "Your prescription is ready."}},
                    {"type": "HANGUP"},
                ],
            },
        }

    def respond(request: Any) -> tuple[int, Any]:
        body = request.json()
        if body.get("is_webhook"):
            arrivals[body["event_name"]] = time.monotonic()
            return 200, {}
        return by_type(init_call=detect_flow)(request)

    with Baresip(user="callee-vm", auto_answer=True, input_wav=wav, max_call_s=40) as callee:
        app.responders["/detect"] = respond
        with Baresip(user="caller2", max_call_s=30) as caller:
            caller.dial(server.uri("detect"))
            callee.wait_established(timeout=10)
            answered = time.monotonic()
            assert callee.wait_closed(timeout=40) == PEER_HUNG_UP
            heard, rate = callee.recorded_audio()
    assert set(arrivals) == {"early", "beep"}, arrivals
    # The early handler ran on the verdict, during the greeting; on_voicemail after the beep.
    assert arrivals["early"] - answered < beep_end < arrivals["beep"] - answered + 1.0
    assert arrivals["early"] < arrivals["beep"]
    assert speech_onset(heard, rate) > beep_end
    end = [b for _, b in app.calls("/detect") if b["type"] == "end_call"]
    assert any(b["detection"] == "voicemail" for b in end), end


def test_failover_answer_on_ring_and_the_number_s_location(
    server: ServerProcess, app: FlowApp
) -> None:
    app.responders["/down"] = by_type(init_call=(503, None), end_call=(503, None))
    app.responders["/failover.json"] = by_type(
        init_call=[
            {"type": "SAY", "params": {"text": "Served by the failover."}},
            {"type": "HANGUP"},
        ]
    )
    with Baresip(user="+14155552671", max_call_s=40) as phone:
        dialled = time.monotonic()
        phone.dial(server.uri("failover"))
        phone.wait_established(timeout=20)
        rang = time.monotonic() - dialled
        assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    assert rang > 5.0, rang  # answer_on_ring 2: a first ring of 6 s before the answer
    (first, init), *_ = app.calls("/down")
    assert first.method == "POST" and init["type"] == "init_call"
    app.wait_for("/failover.json", "end_call")  # the end_call failed over too
    (again, sent), *rest = app.calls("/failover.json")
    assert again.method == "GET" and sent["type"] == "init_call"
    assert sent["caller_no_country"] == "US"
    assert "caller_no_city" not in sent  # the place is not looked up (numbering.py)
    assert sent["caller_no_timezone"] == "America/Los_Angeles"
    assert "api_no_country" not in sent  # a user name tells nothing (GET: nulls left out)
    assert [body["type"] for _, body in rest] == ["end_call"]
    assert audio.speech_seconds(heard, rate) > 0.5


def test_recordmessage_beeps_then_discard_deletes_the_message(
    server: ServerProcess, app: FlowApp
) -> None:
    app.responders["/messages"] = by_type(
        init_call=[
            {"type": "RECORDMESSAGE", "name": "vm", "params": {"timeout": 2}},
            {"type": "RECORDMESSAGE", "params": {"action": "discard"}},
            {"type": "WEBHOOK", "params": {"event_name": "after", "await_response": True}},
            {"type": "HANGUP"},
        ]
    )
    with Baresip(user="dora", max_call_s=30) as phone:
        phone.dial(server.uri("+14155552671"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    assert audio.tone_present(heard, rate, 1000, 0.15), "no beep before the message"
    end = app.wait_for("/messages", "end_call")
    assert end["recordings"] == []
    assert (end["api_no_country"], end["api_no_timezone"]) == ("US", "America/Los_Angeles")
    webhook = next(b for _, b in app.calls("/messages") if b.get("event_name") == "after")
    assert webhook["recordings"] == []
    headers = {"Authorization": f"Bearer {server.api_key}"}
    deadline = time.monotonic() + 5  # the index row goes through the journal's queue
    while True:
        found = httpx.get(f"{server.api_url}/api/recordings", headers=headers, timeout=10).json()
        if found["total"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found["hits"] == [], found
    assert not list((server.data_dir / "recordings").glob("*.wav"))
    assert "voicemail discarded" in server.log_text()


def test_dial_max_call_time_hangs_up_the_dialled_call(server: ServerProcess, app: FlowApp) -> None:
    """Seed, DIAL ``max_call_time`` (60 at least): the dialled call's flow pauses for
    two minutes, the call ends at one (the seed's range makes this test last a minute)."""
    app.requests.clear()
    with Baresip(user="callee-long", auto_answer=True, max_call_s=150) as callee:
        dial = {"type": "DIAL", "params": {"no": callee.sip_uri, "max_call_time": 60}}

        def flow(body: dict[str, Any]) -> Any:
            if body["direction"] == "inbound":
                return [dial, {"type": "HANGUP"}]
            return [{"type": "PAUSE", "params": {"seconds": 120}}, {"type": "HANGUP"}]

        app.responders["/dialer"] = by_type(init_call=flow)
        with Baresip(user="caller-long", max_call_s=30) as caller:
            caller.dial(server.uri("dialer"))
            callee.wait_established(timeout=10)
            caller.wait_closed(timeout=15)  # the parent ends; the dialled call goes on alone
        assert callee.wait_closed(timeout=90) == PEER_HUNG_UP
    ends = [b for _, b in app.calls("/dialer") if b["type"] == "end_call"]
    (child,) = [b for b in ends if b["direction"] == "outbound"]
    assert child["status"] == "completed" and child["error_code"] is None
    assert 59 <= child["connect_time_sec"] < 110, child  # ended by the limit, not the PAUSE
    assert "max_call_time reached" in server.log_text()
