"""Decoded media with real peers: voicemail, call recordings, DTMF out and in, prompts from URLs.

Every test places real calls over loopback (baresip, or the plain phone of
``tests/support/plainphone.py`` for a peer without telephone-event) at a
server started with its own scenarios, then checks what was recorded or
heard by analysing the audio, and what was indexed by reading the SQLite
database.
"""

from __future__ import annotations

import functools
import http.server
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.plainphone import PlainPhone

pytestmark = pytest.mark.integration


def scenario_logs(server: ServerProcess, prefix: str) -> list[dict[str, object]]:
    """The lines log@v1 wrote that start with ``prefix``."""
    return [
        r
        for r in server.log_records()
        if r.get("scenario_log") and str(r.get("event", "")).startswith(prefix)
    ]


def wait_log(server: ServerProcess, event: str, timeout: float = 15.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.log_records(event)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {event!r} in the server log")


def recordings_rows(server: ServerProcess) -> list[sqlite3.Row]:
    db = sqlite3.connect(server.data_dir / "data" / "mediaserver.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM recordings ORDER BY created_at").fetchall()
    finally:
        db.close()


def serve(tmp_path: Path, scenarios: dict[str, str], **kwargs: object) -> ServerProcess:
    folder = tmp_path / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scenarios.items():
        (folder / f"{name}.yaml").write_text(text)
    routes = {name: name for name in scenarios}
    return start_server(tmp_path / "server", routes=routes, scenarios=folder, **kwargs)  # type: ignore[arg-type]


VOICEMAIL = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: voicemail@v1
        params: {silence_timeout: 2, max_length: 30}
        result: $message
      - action: log@v1
        params: {message: "voicemail ${$recording.id} ${$recording.duration} ${$recording.path}"}
      - action: say@v1
        params: {text: "Thank you."}
      - action: hangup@v1
"""


def test_voicemail_of_a_tone(tmp_path: Path) -> None:
    """The caller sends 3 s of 800 Hz after the beep, then silence: the message is
    those 3 s (the 2 s of silence that ended it are not kept)."""
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 800, 3.0, amplitude=0.4, lead_s=1.0)
    server = serve(tmp_path, {"vm": VOICEMAIL})
    try:
        with Baresip(input_wav=tone, max_call_s=30) as phone:
            phone.dial(server.uri("vm"))
            phone.wait_established(timeout=10)
            assert phone.wait_closed(timeout=20) == "Connection reset by peer"
    finally:
        server.stop()
    (logged,) = scenario_logs(server, "voicemail ")
    _, rid, duration, path = str(logged["event"]).split(" ")
    wav = Path(path)
    assert wav.name == f"{rid}.wav" and wav.parent == server.data_dir / "data" / "recordings"
    samples, rate = audio.read_mono(wav)
    assert rate == 8000
    # The beep (0.25 s) plays first; the phone's 1 s lead-in of silence is kept, the tail is not.
    assert 3.5 <= len(samples) / rate <= 4.6, len(samples) / rate
    assert abs(float(duration) - len(samples) / rate) < 0.05
    assert audio.tone_present(samples, rate, 800, 2.5)
    assert audio.dominant_frequency(samples, rate) == pytest.approx(800, abs=5)
    (row,) = recordings_rows(server)
    assert (row["id"], row["kind"], row["status"]) == (rid, "voicemail", "ready")
    assert row["format"] == "wav" and row["channels"] == 1
    assert row["path"] == wav.name and abs(row["duration_ms"] / 1000 - float(duration)) < 0.01
    assert row["size"] == wav.stat().st_size


PIN = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: gather@v1
        params: {max_digits: 6, timeout: 8, inter_digit_timeout: 3}
        result: $pin
      - action: log@v1
        params: {message: "pin ${$pin}"}
      - action: hangup@v1
"""


def test_inband_dtmf_drives_the_ivr(tmp_path: Path) -> None:
    """A phone without telephone-event dials keys as tones: each is read once."""
    keys = audio.dtmf_samples("1590#", amplitude=0.4, lead_s=1.0, tone_s=0.08, gap_s=0.12)
    server = serve(tmp_path, {"pin": PIN})
    try:
        with PlainPhone(server.sip_port, send=keys) as phone:
            phone.call("pin")
            assert phone.wait_bye(15), "the scenario did not hang up"
    finally:
        server.stop()
    assert [r["event"] for r in scenario_logs(server, "pin ")] == ["pin 1590"]
    received = [r["key"] for r in server.log_records("dtmf received")]
    assert received == ["1", "5", "9", "0", "#"]


SEND_KEYS = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: pause@v1
        params: {seconds: 1}
      - action: send-dtmf@v1
        params: {digits: "{digits}"}
      - action: log@v1
        params: {message: "keys sent"}
      - action: pause@v1
        params: {seconds: 1}
      - action: hangup@v1
"""


def test_send_dtmf_as_rfc4733_events(tmp_path: Path) -> None:
    server = serve(tmp_path, {"keys": SEND_KEYS.replace("{digits}", "12w#9")})
    try:
        with Baresip(max_call_s=30) as phone:
            phone.dial(server.uri("keys"))
            phone.wait_established(timeout=10)
            phone.wait_dtmf("12#9", timeout=10)
            assert phone.wait_closed(timeout=15) == "Connection reset by peer"
            heard, rate = phone.recorded_audio()
    finally:
        server.stop()
    assert phone.received_dtmf() == "12#9"
    assert audio.detect_dtmf(heard, rate) == "", "RFC 4733 keys must not be in the audio too"
    assert scenario_logs(server, "keys sent")


def test_send_dtmf_in_band_to_a_peer_without_telephone_event(tmp_path: Path) -> None:
    server = serve(tmp_path, {"keys": SEND_KEYS.replace("{digits}", "12w#9")})
    try:
        with PlainPhone(server.sip_port) as phone:
            phone.call("keys")
            assert phone.wait_bye(15)
            heard, rate = phone.heard()
    finally:
        server.stop()
    assert audio.detect_dtmf(heard, rate) == "12#9"
    assert phone.received_types == {0}, "only PCMU audio: no telephone-event packets"


RECORD_DUAL = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: record@v1
        params: {command: start, channels: dual}
        result: $rid
      - action: play@v1
        params: {tone: dial}
      - action: record@v1
        params: {command: stop}
      - action: log@v1
        params: {message: "recorded ${$rid} ${$recording.duration} ${$recording.path}"}
      - action: hangup@v1
"""


def two_channels(path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    assert data.shape[1] == 2
    return data[:, 0], data[:, 1], int(rate)


def test_dual_channel_call_recording(tmp_path: Path) -> None:
    """The caller's 700 Hz on the left, the dial tone played to it (350+440 Hz) on the right."""
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 700, 10.0, amplitude=0.4)
    server = serve(tmp_path, {"rec": RECORD_DUAL})
    try:
        with Baresip(input_wav=tone, max_call_s=30) as phone:
            phone.dial(server.uri("rec"))
            phone.wait_established(timeout=10)
            assert phone.wait_closed(timeout=15) == "Connection reset by peer"
    finally:
        server.stop()
    (logged,) = scenario_logs(server, "recorded ")
    _, rid, duration, path = str(logged["event"]).split(" ")
    left, right, rate = two_channels(Path(path))
    assert rate == 8000  # a G.711 call: recorded at 8 kHz, as always
    assert 2.9 <= len(left) / rate <= 3.3 and float(duration) == pytest.approx(len(left) / rate)
    assert audio.tone_present(left, rate, 700, 2.0)
    assert audio.tone_present(right, rate, [350, 440], 2.5)
    assert not audio.tone_present(left, rate, [350, 440], 0.3), "the prompt leaked left"
    assert not audio.tone_present(right, rate, 700, 0.3), "the caller leaked right"
    (row,) = recordings_rows(server)
    assert (row["id"], row["kind"], row["channels"], row["status"]) == (rid, "call", 2, "ready")


HTTP_PLAY = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: play@v1
        params: {url: "{base}/tone.wav"}
      - action: log@v1
        params: {message: "played once"}
      - action: play@v1
        params: {url: "{base}/tone.wav"}
      - action: play@v1
        params: {url: "{base}/missing.wav"}
      - action: log@v1
        params: {message: "never here"}
"""


class _Files(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        type(self).requests.append(self.path)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server for ``tmp_path / "www"``: its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Files, directory=str(root))
    _Files.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_play_from_an_http_url(tmp_path: Path, web: str) -> None:
    audio.make_tone_wav(tmp_path / "www" / "tone.wav", 600, 1.5, rate=16000, amplitude=0.4)
    server = serve(tmp_path, {"web": HTTP_PLAY.replace("{base}", web)})
    try:
        with Baresip(max_call_s=30) as phone:
            phone.dial(server.uri("web"))
            phone.wait_established(timeout=10)
            phone.wait_closed(timeout=20)
            heard, rate = phone.recorded_audio()
    finally:
        server.stop()
    assert audio.tone_present(heard, rate, 600, 1.3)
    assert audio.active_seconds(heard, rate, -40) >= 2.8, "the tone played twice from the URL"
    assert scenario_logs(server, "played once") and not scenario_logs(server, "never here")
    (failed,) = server.log_records("run failed")
    assert f"{web}/missing.wav: HTTP 404 File not found" in str(failed["error"])
    # Downloaded once: the second play came from the cache.
    assert _Files.requests.count("/tone.wav") == 1
    assert list((server.data_dir / "data" / "cache" / "http").glob("*.audio"))


DIAL_RECORD = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {targets: ["{target}"], timeout: 10, record: true}
      - action: log@v1
        params:
          message: "bridge recorded ${$recording.id} ${$recording.duration} ${$recording.path}"
      - action: hangup@v1
"""


@pytest.mark.parametrize("callee_codec", ["PCMU", "PCMA"])
def test_dial_records_the_bridged_call(tmp_path: Path, callee_codec: str) -> None:
    """Caller (700 Hz) left, callee (1100 Hz) right, whichever codec the callee uses;
    the bridge still relays (and the phones still hear each other)."""
    tone_a = audio.make_tone_wav(tmp_path / "a.wav", 700, 10.0, amplitude=0.4)
    tone_b = audio.make_tone_wav(tmp_path / "b.wav", 1100, 10.0, amplitude=0.4)
    with Baresip(input_wav=tone_b, auto_answer=True, codecs=(callee_codec,), max_call_s=30) as b:
        server = serve(tmp_path, {"bridge": DIAL_RECORD.replace("{target}", b.sip_uri)})
        try:
            with Baresip(input_wav=tone_a, codecs=("PCMU",), max_call_s=30) as a:
                a.dial(server.uri("bridge"))
                a.wait_established(timeout=10)
                b.wait_established(timeout=10)
                time.sleep(3)
                b.hangup()
                assert a.wait_closed(timeout=15) == "Connection reset by peer"
                heard_a, rate = a.recorded_audio()
        finally:
            server.stop()
    assert audio.tone_present(heard_a, rate, 1100, 2.0), "A did not hear B"
    (logged,) = scenario_logs(server, "bridge recorded ")
    _, _, rid, duration, path = str(logged["event"]).split(" ")
    left, right, rate = two_channels(Path(path))
    assert 2.5 <= float(duration) <= 4.5
    assert audio.tone_present(left, rate, 700, 2.0)
    assert audio.tone_present(right, rate, 1100, 2.0)
    assert not audio.tone_present(left, rate, 1100, 0.3)
    assert not audio.tone_present(right, rate, 700, 0.3)
    (row,) = recordings_rows(server)
    assert (row["id"], row["kind"], row["channels"]) == (rid, "call", 2)
    bridged = server.log_records("bridged")
    assert bridged and bridged[0]["transcoding"] is (callee_codec != "PCMU")


RECORD_UNTIL_HANGUP = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: record@v1
        params: {format: flac}
      - action: pause@v1
        params: {seconds: 60}
"""


class _Hooks(http.server.BaseHTTPRequestHandler):
    bodies: list[dict[str, object]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_recording_ends_with_the_call_and_is_announced(tmp_path: Path) -> None:
    """The caller hangs up while record@v1 runs: the FLAC is finished, indexed
    ready, and v2.recording.updated is posted to the configured webhook."""
    _Hooks.bodies = []
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/events"
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 700, 10.0, amplitude=0.4)
    extra = f'webhooks:\n  - url: "{hook_url}"\n    events: ["v2.recording.*"]\n'
    server = serve(tmp_path, {"rec": RECORD_UNTIL_HANGUP}, extra_config=extra)
    try:
        with Baresip(input_wav=tone, max_call_s=30) as phone:
            phone.dial(server.uri("rec"))
            phone.wait_established(timeout=10)
            time.sleep(2.5)
            phone.hangup()
            phone.wait_closed(timeout=10)
        deadline = time.monotonic() + 10
        while not _Hooks.bodies and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
        hooks.shutdown()
        hooks.server_close()
    (row,) = recordings_rows(server)
    assert (row["kind"], row["status"], row["format"]) == ("call", "ready", "flac")
    path = server.data_dir / "data" / "recordings" / row["path"]  # indexed by file name
    assert path.suffix == ".flac" and path.exists()
    assert not list(path.parent.glob("*.part")), "the WAV journal is gone once encoded"
    samples, rate = audio.read_mono(path)
    assert 2.0 <= len(samples) / rate <= 3.0
    assert audio.tone_present(samples, rate, 700, 1.5)
    (body,) = _Hooks.bodies
    assert body["type"] == "v2.recording.updated"
    payload = body["payload"]
    assert isinstance(payload, dict)
    assert payload["sid"] == row["id"] and payload["status"] == "ready"
    assert payload["type"] == "call" and payload["format"] == "flac"


# -- early media (progress@v1) -------------------------------------------------------------

EARLY = """\
branches:
  inbound-call:
    actions:
      - action: progress@v1
      - action: play@v1
        params: {tone: dial}
      - action: answer@v1
      - action: pause@v1
        params: {seconds: 1}
"""
DIAL_TONE = (350.0, 440.0)  # 3 s continuous


def test_a_prompt_after_progress_is_heard_before_the_answer(tmp_path: Path) -> None:
    """progress@v1 then play@v1: the 183 with SDP, then the prompt as early media, and
    only then (answer@v1) the 200 OK, not a 200 a few milliseconds after the 183."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "early.yaml").write_text(EARLY)
    server = start_server(tmp_path / "server", routes={"early": "early"}, scenarios=scenarios)
    try:
        with PlainPhone(server.sip_port) as phone:
            phone.invite("early")
            phone.early_media()
            phone.answered(timeout=15)
            early, rate = phone.heard_before_answer
            assert phone.wait_bye(10)
    finally:
        server.stop()
    # Nearly all of the 3 s tone arrives between the 183 and the 200.
    assert audio.tone_seconds(early, rate, DIAL_TONE) > 2.0
