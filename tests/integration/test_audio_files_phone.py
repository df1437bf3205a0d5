"""Update audio file on the phone (Callr v2) through the real server: the API gives a
code and the recording line's number, baresip calls it, enters the code by RFC 4733
DTMF, plays a tone, keeps the recording, and the audio file becomes that tone (source
``phone-record``, statuses announced by v2.audio-file.updated); wrong and replaced
codes are refused on the phone, and bad requests by the API."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ServerProcess, add_route, reload, start_server
from tests.integration.test_audio_files import _Hooks, client, error_of, hook_statuses, wait_status
from tests.integration.test_example_scenarios import wait_log, wait_until
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

TONE_HZ = 700.0
FRANCE, US = "+33199000000", "+14155550100"
LINES = {FRANCE: "audio-recorder", US: "audio-recorder"}


@pytest.fixture
def hooks() -> Iterator[str]:
    """A local webhook receiver; what it got is in ``_Hooks.bodies``."""
    _Hooks.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/events"
    finally:
        server.shutdown()
        server.server_close()


def serve(folder: Path, hook_url: str, routes: dict[str, str]) -> ServerProcess:
    extra = f'webhooks:\n  - url: "{hook_url}"\n    events: ["v2.audio-file.*"]\n'
    return start_server(folder, routes=routes, extra_config=extra)


def empty_file(api: httpx.Client, name: str) -> str:
    created = api.post("/api/audio-files", json={"name": name})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending-content"
    return str(created.json()["sid"])


def phone(api: httpx.Client, sid: str, country: str) -> dict[str, object]:
    answer = api.post(f"/api/audio-files/{sid}/phone", params={"country": country})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    assert set(body) == {"code", "number"}
    assert isinstance(body["code"], int) and 100000 <= body["code"] <= 999999
    return body


def codes_entered(server: ServerProcess) -> list[bool]:
    return [bool(r["valid"]) for r in server.log_records("recording code entered")]


def test_a_recording_made_over_the_phone_becomes_the_audio_file(tmp_path: Path, hooks: str) -> None:
    tone = audio.make_tone_wav(tmp_path / "tone.wav", TONE_HZ, 60.0, amplitude=0.4)
    server = serve(tmp_path / "server", hooks, LINES)
    try:
        with client(server) as api:
            sid = empty_file(api, "Greeting")
            assert phone(api, sid, "US")["number"] == US
            offer = phone(api, sid, "FR")  # replaces the US code: one live code per file
            assert offer["number"] == FRANCE
            with Baresip(input_wav=tone, max_call_s=60) as caller:
                caller.dial(server.uri(FRANCE))
                caller.wait_established(timeout=10)
                caller.send_dtmf(f"{offer['code']}#")
                wait_log(server, "recording started", timeout=30, kind="voicemail")
                time.sleep(3.0)
                caller.send_dtmf("#")
                wait_log(server, "voicemail recorded", timeout=10)
                caller.send_dtmf("1")
                wait_log(server, "audio file recorded over the phone", timeout=20)
                caller.wait_closed(timeout=20)
            ready = wait_status(api, sid, {"ready", "error"})
            assert codes_entered(server) == [True]
            assert (ready["status"], ready["source"]) == ("ready", "phone-record"), ready
            assert 2.0 <= ready["duration"] <= 4.5, ready
            assert hook_statuses(sid, 4) == [
                "pending-content", "pending-conversion", "processing", "ready"
            ]  # fmt: skip
            # The code is used up: a second call entering it is refused.
            with Baresip(max_call_s=30) as again:
                again.dial(server.uri(FRANCE))
                again.wait_established(timeout=10)
                again.send_dtmf(f"{offer['code']}#")
                wait_until(lambda: len(codes_entered(server)) == 2, 30, "code check")
                again.hangup()
            assert codes_entered(server) == [True, False]
    finally:
        server.stop()
    samples, rate = audio.read_mono(server.data_dir / "data" / "audio-files" / f"{sid}.wav")
    assert rate == 8000
    heard_s = audio.tone_seconds(samples, rate, TONE_HZ)
    assert heard_s >= 0.8 * ready["duration"], f"{heard_s:.2f} s of tone in {ready['duration']} s"


def test_wrong_and_replaced_codes_are_refused_three_times_then_the_line_hangs_up(
    tmp_path: Path, hooks: str
) -> None:
    server = serve(tmp_path / "server", hooks, LINES)
    try:
        with client(server) as api:
            sid = empty_file(api, "Greeting")
            replaced = phone(api, sid, "FR")["code"]
            live = phone(api, sid, "FR")["code"]
            wrong = 100000 if live != 100000 else 100001
            with Baresip(max_call_s=60) as caller:
                caller.dial(server.uri(FRANCE))
                caller.wait_established(timeout=10)
                for count, code in enumerate((f"{replaced}#", "123#", f"{wrong}#"), start=1):
                    caller.send_dtmf(code)
                    wait_until(lambda n=count: len(codes_entered(server)) == n, 30, "code check")
                reason = caller.wait_closed(timeout=30)
            assert codes_entered(server) == [False, False, False]
            assert "reset by peer" in reason, reason  # the server hung up
            assert api.get(f"/api/audio-files/{sid}").json()["status"] == "pending-content"
            assert not server.log_records("recording started")
    finally:
        server.stop()


def test_bad_requests_are_refused_and_a_reload_can_add_the_recording_line(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "server", routes={"*": "audio-recorder"})
    try:
        with client(server) as api:
            sid = empty_file(api, "Greeting")
            none = api.post(f"/api/audio-files/{sid}/phone", params={"country": "FR"})
            assert none.status_code == 409, none.text
            assert "route a number to audio-recorder" in none.json()["error"]["message"]
            for country in ("fr", "FRA", ""):
                bad = api.post(f"/api/audio-files/{sid}/phone", params={"country": country})
                error_of(bad, 422, "country")
            missing = api.post(f"/api/audio-files/{sid}/phone")
            error_of(missing, 422, "country")
            unknown = api.post("/api/audio-files/zzzzzzzz/phone", params={"country": "FR"})
            error_of(unknown, 404, "sid")
            # The routes are read at each request: a reload adding a line is enough.
            add_route(server, f'  "{US}": audio-recorder')
            reload(server, "reloaded")
            assert phone(api, sid, "FR")["number"] == US  # no French line: the only one
    finally:
        server.stop()
