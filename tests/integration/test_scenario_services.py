"""fetch@v1, webhook@v1, message@v1 (and the inbound-message branch) and detect@v1 with
real peers over loopback.

One server for the module, with its own scenarios pointing at a local HTTP
peer (:class:`~tests.integration.webpeer.WebPeer`) that plays the outside
services: a JSON API, a failing one, the webhook receiver. Calls come from
baresip; the SIP MESSAGE comes from a bare UDP peer that answers the reply
the scenario sends back. What happened is read from what the peers
received and heard, and from the scenario's own log lines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediaserver.webhooks.envelope import verify_signature
from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import WebPeer
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.net import free_port
from tests.support.rawsip import SipProbe

pytestmark = pytest.mark.integration

SECRET = "scenario-hooks-secret"

FETCH = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: fetch@v1
        params:
          url: "{web}/customers?phone=${{encodeURIComponent(call.from)}}"
          headers: {{Authorization: "Bearer crm-token"}}
        result: $customer
      - action: log@v1
        params:
          message: "fetch: customer ${{customer.body.name}} owes ${{customer.body.balance}}"
      - action: say@v1
        params: {{text: "Hello ${{customer.body.name}}. You owe ${{customer.body.balance}} euros."}}
      - action: fetch@v1
        params: {{url: "{web}/broken"}}
        result: $broken
        on-error: [{{action: log@v1, params: {{message: "fetch: on-error ran for a 500"}}}}]
      - action: log@v1
        params: {{message: "fetch: broken ${{broken.status}} ${{broken.body}}"}}
      - action: fetch@v1
        params: {{url: "{dead}/nothing", timeout: 2}}
        on-error:
          - action: log@v1
            params: {{message: "fetch: dead service, on-error"}}
      - action: fetch@v1
        params: {{url: "{web}/slow", timeout: 1}}
        on-error:
          - action: log@v1
            params: {{message: "fetch: slow service, on-error"}}
      - action: fetch@v1
        params:
          url: "{web}/visits"
          method: POST
          body: {{caller: "${{call.from}}", balance: "${{customer.body.balance}}", tags: [vip]}}
        result: $posted
      - action: log@v1
        params: {{message: "fetch: posted ${{posted.status}} id ${{posted.body.id}}"}}
      - action: hangup@v1
"""

WEBHOOK = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: webhook@v1
        params:
          data: {{caller: "${{call.from}}", score: "${{2 + 3}}", note: "score ${{2 + 3}}"}}
      - action: webhook@v1
        params:
          url: "{web}/direct/${{call.id}}"
          event: v2.scenario.direct
          data: "${{$run}}"
      - action: log@v1
        params: {{message: "webhook: queued both"}}
      - action: say@v1
        params: {{text: "Thank you."}}
      - action: hangup@v1
"""

DETECT = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: detect@v1
        params: {timeout: 6}
        result: $who
      - action: log@v1
        params: {message: "detect: ${who}"}
      - action: hangup@v1
"""

DETECT_GREETING_END = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: detect@v1
        params: {timeout: 6, greeting_end: true, greeting_timeout: 15}
        result: $who
      - action: log@v1
        params:
          message: "amd: ${who} ${detection.reason} ${detection.greeting} ${detection.beep_hz}"
      - action: hangup@v1
"""

MAILBOX = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: pause@v1
        params: {seconds: 0.3}
      - action: say@v1
        params:
          text: "Hi, you have reached the voicemail of John Smith. I cannot take your call
            right now. Please leave a message after the tone."
      - action: play@v1
        params: {tone: beep}
      - action: pause@v1
        params: {seconds: 10}
      - action: hangup@v1
"""

OUTBOUND_DETECT = """\
branches:
  api-initiated:
    actions:
      - action: detect@v1
        params: {timeout: 6, greeting_end: true, greeting_timeout: 15}
        result: $who
      - action: log@v1
        params: {message: "outbound amd: ${who} ${detection.greeting} ${detection.beep_hz}"}
      - action: hangup@v1
"""

SMS_REPLY = """\
branches:
  inbound-message:
    actions:
      - action: log@v1
        params: {{message: "sms: from ${{message.from}} to ${{message.to}}: ${{message.text}}"}}
      - action: message@v1
        params:
          to: "sip:${{message.from}}@127.0.0.1:{port}"
          from: "${{message.to}}"
          text: "You said: ${{message.text.toUpperCase()}}"
        result: $reply
      - action: log@v1
        params: {{message: "sms: reply ${{reply.status}} ${{reply.delivered}}"}}
  inbound-call:
    actions:
      - action: hangup@v1
"""


def wait_logs(server: ServerProcess, prefix: str, count: int = 1, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.scenario_logs(prefix)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {prefix!r} lines: {server.scenario_logs(prefix)}")


@pytest.fixture(scope="module")
def web() -> Iterator[WebPeer]:
    with WebPeer() as peer:
        yield peer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, web: WebPeer) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("services")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    dead = f"http://127.0.0.1:{free_port('tcp')}"
    (scenarios / "fetch.yaml").write_text(FETCH.format(web=web.url("").rstrip("/"), dead=dead))
    (scenarios / "hook.yaml").write_text(WEBHOOK.format(web=web.url("").rstrip("/")))
    (scenarios / "amd.yaml").write_text(DETECT)
    (scenarios / "amd-greeting.yaml").write_text(DETECT_GREETING_END)
    (scenarios / "mailbox.yaml").write_text(MAILBOX)
    (scenarios / "amd-outbound.yaml").write_text(OUTBOUND_DETECT)
    hooks = f"""\
webhooks:
  - url: {web.url("/events")}
    events: ["v2.scenario.*"]
    secret: {SECRET}
"""
    proc = start_server(
        tmp / "server",
        routes={
            "fetch": "fetch",
            "hook": "hook",
            "amd": "amd",
            "greeting": "amd-greeting",
            "mailbox": "mailbox",
        },
        scenarios=scenarios,
        extra_config=hooks,
    )
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as client:
        yield client


# -- fetch@v1 ------------------------------------------------------------------------------


def test_fetch_results_failures_and_posts(server: ServerProcess, web: WebPeer) -> None:
    web.answer("/customers", 200, {"name": "Alice", "balance": 42})
    web.answer("/broken", 500, "oops")
    web.answer("/slow", 200, {"late": True}, delay=3.0)
    web.answer("/visits", 201, {"id": 77})
    with Baresip(user="alice", max_call_s=40) as phone:
        phone.dial(server.uri("fetch"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=30) == "Connection reset by peer"
        heard, rate = phone.recorded_audio()
    assert server.scenario_logs("fetch:") == [
        "fetch: customer Alice owes 42",
        "fetch: broken 500 oops",  # a 500 is a result: no on-error
        "fetch: dead service, on-error",
        "fetch: slow service, on-error",
        "fetch: posted 201 id 77",
    ]
    (lookup,) = web.received("/customers")
    assert lookup.method == "GET" and lookup.path == "/customers?phone=alice"
    assert lookup.headers["authorization"] == "Bearer crm-token"
    (post,) = web.received("/visits")
    assert post.method == "POST" and post.headers["content-type"] == "application/json"
    assert post.json() == {"caller": "alice", "balance": 42, "tags": ["vip"]}
    # The JSON result was spoken: "Hello Alice. You owe 42 euros."
    assert audio.speech_seconds(heard, rate) > 1.5
    failed = [
        r for r in server.log_records() if r.get("event") == "action failed, running its on-error"
    ]
    reasons = [str(r["error"]) for r in failed]
    assert any("fetch@v1 at" in r and "/nothing" in r for r in reasons), reasons
    assert any("/slow: no response within 1 s" in r for r in reasons), reasons


# -- webhook@v1 ----------------------------------------------------------------------------


def test_webhook_events_reach_the_receiver_signed(server: ServerProcess, web: WebPeer) -> None:
    with Baresip(user="bob", max_call_s=30) as phone:
        phone.dial(server.uri("hook"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=20) == "Connection reset by peer"
    assert server.scenario_logs("webhook:") == ["webhook: queued both"]
    signed = web.wait_for(lambda r: r.path == "/events")
    body = signed.json()
    assert body["type"] == "v2.scenario.event" and body["try"] == 0
    assert signed.headers["x-mediaserver-event"] == "v2.scenario.event"
    assert verify_signature(signed.body, SECRET, signed.headers.get("x-mediaserver-signature"))
    payload = body["payload"]
    assert payload["data"] == {"caller": "bob", "score": 5, "note": "score 5"}
    assert payload["scenario"] == "hook" and payload["branch"] == "inbound-call"
    assert payload["from"] == "bob" and payload["to"] == "hook"
    callid = payload["callid"]
    direct = web.wait_for(lambda r: r.path == f"/direct/{callid}")
    assert "x-mediaserver-signature" not in direct.headers  # a URL of its own: no secret
    assert direct.json()["type"] == "v2.scenario.direct"
    assert direct.json()["payload"]["data"] == {
        "id": f"inbound-call:{callid}",
        "scenario": "hook",
        "branch": "inbound-call",
    }


# -- message@v1 and the inbound-message branch -----------------------------------------------


def answer_request(probe: SipProbe, raw: bytes, status: int, reason: str) -> dict[str, str]:
    """Answer a request the server sent the probe; its headers (lower-case names)."""
    head, _, body = raw.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    headers["request-line"] = lines[0]
    headers["body"] = body
    reply = [
        f"SIP/2.0 {status} {reason}",
        f"Via: {headers['via']}",
        f"From: {headers['from']}",
        f"To: {headers['to']};tag=probe-reply",
        f"Call-ID: {headers['call-id']}",
        f"CSeq: {headers['cseq']}",
        "Content-Length: 0",
    ]
    probe.send("\r\n".join(reply) + "\r\n\r\n")
    return headers


def test_a_sip_message_is_answered_with_message(server: ServerProcess, api: httpx.Client) -> None:
    with SipProbe(server.sip_port) as probe:
        script = SMS_REPLY.format(port=probe.port)
        created = api.post("/api/scenarios", json={"name": "sms-reply", "script": script})
        assert created.status_code == 201, created.text
        number = "+33199007777"
        attached = api.put(f"/api/scenarios/{created.json()['sid']}/numbers/{number}")
        assert attached.status_code == 200, attached.text

        headers = ["Content-Type: text/plain;charset=utf-8"]
        probe.send(probe.build("MESSAGE", user=number, headers=headers, body="hello there"))
        assert probe.expect_final().status == 200
        raw = probe.recv_request(timeout=10)
        assert raw is not None, "no MESSAGE came back"
        got = answer_request(probe, raw, 200, "OK")
        assert got["request-line"].startswith(f"MESSAGE sip:probe@127.0.0.1:{probe.port}")
        assert got["from"].startswith(f"<sip:{number}@")
        assert got["content-type"].startswith("text/plain")
        assert got["body"] == "You said: HELLO THERE"
        wait_logs(server, "sms: reply")

        # A refusal is the action's result, not a failure.
        probe.send(probe.build("MESSAGE", user=number, headers=headers, body="again"))
        assert probe.expect_final().status == 200
        raw = probe.recv_request(timeout=10)
        assert raw is not None
        answer_request(probe, raw, 486, "Busy Here")
        replies = wait_logs(server, "sms: reply", count=2)
    assert server.scenario_logs("sms: from") == [
        f"sms: from probe to {number}: hello there",
        f"sms: from probe to {number}: again",
    ]
    assert replies == ["sms: reply 200 true", "sms: reply 486 false"]


# -- detect@v1 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("voices")
    hello = audio.make_speech_wav(folder / "hello-raw.wav", "Hello?")
    greeting = audio.make_speech_wav(
        folder / "greeting-raw.wav",
        "Hi, you have reached the voicemail of John Smith. I cannot take your call "
        "right now. Please leave a message after the tone.",
    )
    lead = audio.silence(0.4)
    out = {}
    for name, path in (("hello", hello), ("greeting", greeting)):
        samples, rate = audio.read_mono(path)
        out[name] = audio.write_wav(folder / f"{name}.wav", [*lead, *samples], rate)
    out["tone"] = audio.make_tone_wav(folder / "tone.wav", 800, 5.0, lead_s=0.4, amplitude=0.4)
    # The greeting, a pause, then the voicemail's "record after the tone" beep.
    samples, rate = audio.read_mono(out["greeting"])
    beep = audio.tone(1400, 0.5, rate=rate, amplitude=0.3)
    out["greeting-beep"] = audio.write_wav(
        folder / "greeting-beep.wav", [*samples, *audio.silence(0.6, rate), *beep], rate
    )
    out["silence"] = audio.make_silence_wav(folder / "silence.wav", 1.0)
    return out


@pytest.mark.parametrize(
    ("voice", "verdict"),
    [("hello", "human"), ("greeting", "machine"), ("tone", "machine"), ("silence", "unknown")],
)
def test_detect_tells_a_person_from_a_machine(
    server: ServerProcess, voices: dict[str, Path], voice: str, verdict: str
) -> None:
    speech_seconds = audio.speech_seconds(*audio.read_mono(voices[voice]))
    if voice == "hello":
        assert speech_seconds < 1.5, speech_seconds
    if voice == "greeting":
        assert speech_seconds > 4, speech_seconds
    before = len(server.scenario_logs("detect:"))
    with Baresip(user=f"amd-{voice}", input_wav=voices[voice], max_call_s=20) as phone:
        phone.dial(server.uri("amd"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=15) == "Connection reset by peer"
    found = wait_logs(server, "detect:", count=before + 1)
    assert found[before] == f"detect: {verdict}"
    detections = [
        r for r in server.log_records() if r.get("event") == "answering machine detection"
    ]
    listened = float(detections[-1]["listened"])
    if verdict == "unknown":
        assert listened == pytest.approx(6, abs=0.3)  # the whole timeout
    else:
        assert listened < 5.5, detections[-1]  # decided before the timeout


@pytest.mark.parametrize(
    ("voice", "logged"),
    [
        ("greeting-beep", "amd: machine greeting_duration beep_detected 1400"),
        ("greeting", "amd: machine greeting_duration ended null"),
        ("hello", "amd: human after_greeting_silence null null"),
    ],
)
def test_detect_waits_for_the_end_of_a_machines_greeting(
    server: ServerProcess, voices: dict[str, Path], voice: str, logged: str
) -> None:
    before = len(server.scenario_logs("amd:"))
    with Baresip(user=f"greeting-{voice}", input_wav=voices[voice], max_call_s=30) as phone:
        phone.dial(server.uri("greeting"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=25) == "Connection reset by peer"
    found = wait_logs(server, "amd:", count=before + 1)
    assert found[before] == logged
    if voice == "hello":
        return
    (ended,) = [
        r
        for r in server.log_records()
        if r.get("event") == "answering machine greeting ended"
        and r.get("scenario") == "amd-greeting"
    ][-1:]
    listened = float(ended["listened"])
    samples, rate = audio.read_mono(voices["greeting"])
    file_seconds = len(samples) / rate  # the greeting, then espeak-ng's trailing silence
    last_voice = audio.active_intervals(samples, rate)[-1][1]
    # Counted in audio heard since the listening began, about when the peer's file began.
    if voice == "greeting-beep":  # heard at the beep's end, not before
        assert listened == pytest.approx(file_seconds + 0.6 + 0.5, abs=0.3), ended
    else:  # 1.5 s of silence after the greeting's last word
        assert listened == pytest.approx(last_voice + 1.5, abs=0.3), ended


def test_an_outbound_call_waits_for_the_servers_own_beep(
    server: ServerProcess, api: httpx.Client
) -> None:
    """The server calls itself: one run speaks a voicemail greeting then plays the
    ``beep`` tone (1000 Hz, 0.25 s); the outbound run hears both through RTP."""
    before = len(server.scenario_logs("outbound amd:"))
    hits = api.get("/api/scenarios", params={"name": "amd-outbound", "origin": "file"}).json()
    sid = next(h["sid"] for h in hits["hits"] if h["name"] == "amd-outbound")
    started = api.post(f"/api/scenarios/{sid}/start", json={"to": server.uri("mailbox")})
    assert started.status_code == 201, started.text
    found = wait_logs(server, "outbound amd:", count=before + 1, timeout=30)
    assert found[before] == "outbound amd: machine beep_detected 1000"
