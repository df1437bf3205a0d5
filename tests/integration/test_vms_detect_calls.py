"""Callr's outbound voicemail detection (App.Param.VmsDetect) on real calls.

baresip A calls a scenario that dials baresip B with ``vms_detect``:

- DTMF: B presses a key (RFC 4733) after answering: a person, bridged; B
  presses nothing: a voicemail, hung up, ``$dial.status`` ``voicemail``.
- SILENCE: B sends silence after answering (a person who said hello and
  waits): bridged; B sends a steady sound (a greeting that goes on): voicemail.
- ``detect@v1`` with ``method: DTMF`` on an API-started call (``POST
  /api/scenarios/{sid}/start`` with ``options.vms_detect``) the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

BRIDGE = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params:
          targets: ["{target}"]
          timeout: 15
          vms_detect: {vms}
      - action: log@v1
        params: {{message: "dial result ${{$dial.status}}"}}
      - action: hangup@v1
"""


def wait_record(server: ServerProcess, event: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = server.log_records(event)
        if records:
            return records[0]
        time.sleep(0.1)
    raise AssertionError(f"no {event!r} in the server log")


def dial_through(
    tmp_path: Path, b: Baresip, vms: dict[str, Any], *, press: str | None = None
) -> tuple[ServerProcess, dict[str, Any]]:
    """A calls the bridge to B; B presses ``press`` once answered; the dial's outcome."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir(exist_ok=True)
    (scenarios / "bridge.yaml").write_text(BRIDGE.format(target=b.sip_uri, vms=json.dumps(vms)))
    server = start_server(tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios)
    try:
        with Baresip(max_call_s=40) as a:
            a.dial(server.uri("bridge"))
            b.wait_established(timeout=10)
            if press is not None:
                time.sleep(0.5)
                b.send_dtmf(press)
                wait_record(server, "bridged")
                b.hangup()  # the bridge ends: the dial's outcome is logged
            ended = wait_record(server, "dial ended")
            b.wait_closed(timeout=10)
            a.wait_closed(timeout=20)
    finally:
        server.stop()
    return server, ended


def test_dtmf_a_key_pressed_is_a_person(tmp_path: Path) -> None:
    with Baresip(auto_answer=True, max_call_s=40) as b:
        server, ended = dial_through(
            tmp_path, b, {"method": "DTMF", "dtmf_timeout": 6, "dtmf_iterations": 1}, press="5"
        )
    assert ended["status"] == "answered"
    assert ended["detection"] == {
        "result": "human", "method": "DTMF", "reason": "dtmf", "attempts": 1, "key": "5"
    }  # fmt: skip
    assert server.log_records("dial result answered")


def test_dtmf_no_key_is_a_voicemail(tmp_path: Path) -> None:
    with Baresip(auto_answer=True, max_call_s=40) as b:
        server, ended = dial_through(
            tmp_path, b, {"method": "DTMF", "dtmf_timeout": 1, "dtmf_iterations": 2}
        )
    assert ended["status"] == "voicemail"
    assert ended["detection"]["reason"] == "no_dtmf" and ended["detection"]["attempts"] == 2
    assert not server.log_records("bridged")
    assert server.log_records("dial result voicemail")


def test_silence_after_answer_is_a_person(tmp_path: Path) -> None:
    quiet = audio.make_silence_wav(tmp_path / "quiet.wav", 20.0)
    with Baresip(auto_answer=True, input_wav=quiet, max_call_s=40) as b:
        scenarios = tmp_path / "scenarios"
        scenarios.mkdir()
        vms = {"method": "SILENCE", "silence_ms": 800, "silence_timeout": 2}
        (scenarios / "bridge.yaml").write_text(BRIDGE.format(target=b.sip_uri, vms=json.dumps(vms)))
        server = start_server(tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios)
        try:
            with Baresip(max_call_s=40) as a:
                a.dial(server.uri("bridge"))
                b.wait_established(timeout=10)
                wait_record(server, "bridged")
                b.hangup()
                ended = wait_record(server, "dial ended")
                a.wait_closed(timeout=20)
        finally:
            server.stop()
    assert ended["status"] == "answered"
    assert ended["detection"]["result"] == "human" and ended["detection"]["reason"] == "silence"


def test_a_greeting_that_goes_on_is_a_voicemail(tmp_path: Path) -> None:
    greeting = audio.make_tone_wav(tmp_path / "greeting.wav", 440, 20.0, amplitude=0.3)
    with Baresip(auto_answer=True, input_wav=greeting, max_call_s=40) as b:
        _, ended = dial_through(
            tmp_path,
            b,
            {"method": "SILENCE", "silence_ms": 800, "silence_timeout": 1, "silence_iterations": 2},
        )
    assert ended["status"] == "voicemail"
    assert ended["detection"] == {
        "result": "voicemail", "method": "SILENCE", "reason": "no_silence", "attempts": 2,
        "key": None,
    }  # fmt: skip


API_SCENARIO = """\
branches:
  api-initiated:
    actions:
      - action: log@v1
        params: {message: "api call ${$dial.status} ${$dial.detection.result}"}
"""


def test_api_started_call_with_vms_detect(tmp_path: Path) -> None:
    """POST /api/scenarios/{sid}/start with options.vms_detect: B presses nothing, so the
    call is hung up as a voicemail and the branch runs without it."""
    server = start_server(tmp_path / "server", routes={})
    try:
        headers = {"X-API-Key": server.api_key}
        with (
            Baresip(auto_answer=True, max_call_s=40) as b,
            httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as api,
        ):
            sid = api.post("/api/scenarios", json={"name": "api", "script": API_SCENARIO}).json()
            bad = api.post(
                f"/api/scenarios/{sid['sid']}/start",
                json={"to": b.sip_uri, "options": {"vms_detect": {"method": "DTMF",
                                                                  "dtmf_timeout": 0}}},
            )  # fmt: skip
            assert bad.status_code == 422, bad.text
            assert bad.json()["error"]["field"] == "options.vms_detect.dtmf_timeout"
            started = api.post(
                f"/api/scenarios/{sid['sid']}/start",
                json={"to": b.sip_uri, "variables": {"$customer_field": "CAMPAIGN7"},
                      "options": {"vms_detect": {"method": "DTMF", "dtmf_timeout": 1}}},
            )  # fmt: skip
            assert started.status_code == 201, started.text
            b.wait_established(timeout=10)
            assert b.wait_closed(timeout=15) == "Connection reset by peer"
            wait_record(server, "api call voicemail voicemail")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                (record,) = api.get("/api/cdrs").json()["hits"]
                if record["status"] == "ended":
                    break
                time.sleep(0.1)
            # The call's record has the run's customer field, though the run never had the call.
            assert (record["status"], record["customerField"]) == ("ended", "CAMPAIGN7")
    finally:
        server.stop()
