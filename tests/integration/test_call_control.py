"""Call Control through the official Telnyx SDK, unchanged, against real peers.

The SDK's ``base_url`` points at the server's ``/telnyx/v2``; a local HTTP
receiver (``WebPeer``) plays the application's webhook URL; baresip is the
caller, and what it heard is analysed. Each test drives one call the way an
application would: wait for an event, send a command, check what follows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import telnyx

from tests.integration.callcontrol_events import event_of, verified, wait_request
from tests.integration.conftest import ServerProcess, add_route, reload, start_server
from tests.integration.webpeer import Request, WebPeer
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.forked import ForkReceiver, decode_pcmu
from tests.support.sipp import SippBackground, assert_digest_is_right

pytestmark = pytest.mark.integration

PEER_HUNG_UP = "Connection reset by peer"
SIPP_DIR = Path(__file__).parent / "sipp"


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
    """The Call Control events posted to the receiver at ``path``, in order. Each one
    waited for has gone through the SDK's ``webhooks.unwrap`` with the server's public
    key: signature, timestamp and the typed event model."""

    def __init__(self, web: WebPeer, server: ServerProcess, path: str = "/hooks") -> None:
        self.web = web
        self.server = server
        self.path = path

    def all(self, call_control_id: str | None = None) -> list[dict[str, Any]]:
        events = [event_of(request) for request in self.web.received(self.path)]
        if call_control_id is None:
            return events
        return [e for e in events if e["payload"].get("call_control_id") == call_control_id]

    def wait(
        self, event_type: str, call_control_id: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        ours = {} if call_control_id is None else {"call_control_id": call_control_id}
        found = wait_request(self.web, event_type, path=self.path, timeout=timeout, **ours)
        return verified(found, self.server)

    def wait_new(self, event_type: str, seen: set[str], timeout: float = 15.0) -> dict[str, Any]:
        """The first ``event_type`` about a call not in ``seen`` (a new call)."""

        def match(request: Request) -> bool:
            if request.path != self.path:
                return False
            data = event_of(request)
            return bool(
                data["event_type"] == event_type and data["payload"]["call_control_id"] not in seen
            )

        return verified(self.web.wait_for(match, timeout=timeout), self.server)


def test_inbound_call_answered_spoken_to_gathered_and_hung_up(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx
) -> None:
    events = Events(hooks, server)
    seen = {e["payload"]["call_control_id"] for e in events.all()}
    with Baresip(max_call_s=40) as phone:
        phone.dial(server.uri("cc"))
        initiated = events.wait_new("call.initiated", seen)
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


USERS = """\
users:
  - username: alice
    password: wonderland
"""


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {
        f: audio.make_tone_wav(folder / f"{f}.wav", f, 20.0, amplitude=0.4) for f in (700, 1100)
    }


@pytest.fixture(scope="module")
def user_server(
    tmp_path_factory: pytest.TempPathFactory, hooks: WebPeer
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("callcontrol-users")
    routes = {"cc": f'"call-control:{hooks.url("/users")}"'}
    proc = start_server(tmp, routes=routes, extra_config=USERS)
    yield proc
    proc.stop()


def _alice(server: ServerProcess, tone: Path) -> Baresip:
    return Baresip(
        user="alice",
        registrar=server.target,
        password="wonderland",
        auto_answer=True,
        input_wav=tone,
        max_call_s=30,
    )


def test_dialled_call_bridged_with_a_parked_one_both_hear(
    user_server: ServerProcess, hooks: WebPeer, tones: dict[int, Path]
) -> None:
    """The app answers an incoming call, dials a registered phone, bridges the two:
    each hears the other's tone, not its own; hanging one up hangs up the other."""
    events = Events(hooks, user_server, "/users")
    client = telnyx.Telnyx(api_key=user_server.api_key, base_url=f"{user_server.api_url}/telnyx/v2")
    with _alice(user_server, tones[1100]) as alice:
        alice.wait_registered(timeout=10)
        with Baresip(input_wav=tones[700], max_call_s=30) as caller:
            seen = {e["payload"]["call_control_id"] for e in events.all()}
            caller.dial(user_server.uri("cc"))
            a = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
            client.calls.actions.answer(a)
            caller.wait_established(timeout=10)
            dialled = client.calls.dial(
                connection_id="app",
                to="alice",
                from_="+33100000001",
                webhook_url=hooks.url("/users"),
                client_state="Yi1sZWc=",
                timeout_secs=10,
            )
            assert dialled.data is not None and dialled.data.is_alive is False
            b = dialled.data.call_control_id
            alice.wait_established(timeout=10)
            answered = events.wait("call.answered", b)
            assert answered["payload"]["client_state"] == "Yi1sZWc="
            initiated = events.wait("call.initiated", b)["payload"]
            assert initiated["direction"] == "outgoing" and initiated["to"] == "alice"
            client.calls.actions.bridge(a, call_control_id_to_bridge_with=b)
            events.wait("call.bridged", a)
            events.wait("call.bridged", b)
            time.sleep(3)
            heard_caller, rate_caller = caller.recorded_audio()
            heard_alice, rate_alice = alice.recorded_audio()
            client.calls.actions.hangup(a)
            assert caller.wait_closed(timeout=10) == PEER_HUNG_UP
            assert alice.wait_closed(timeout=10) == PEER_HUNG_UP
    assert audio.tone_present(heard_caller, rate_caller, 1100, 1.5), "the caller did not hear alice"
    assert audio.tone_present(heard_alice, rate_alice, 700, 1.5), "alice did not hear the caller"
    assert not audio.tone_present(heard_caller, rate_caller, 700, 0.5), "the caller heard itself"
    hangup_b = events.wait("call.hangup", b)["payload"]
    assert hangup_b["hangup_source"] == "caller"  # we hung up our outgoing call
    assert (
        hangup_b["call_session_id"] != events.wait("call.hangup", a)["payload"]["call_session_id"]
    )


def test_transfer_of_a_parked_call_connects_it_to_the_target(
    user_server: ServerProcess, hooks: WebPeer, tones: dict[int, Path]
) -> None:
    events = Events(hooks, user_server, "/users")
    client = telnyx.Telnyx(api_key=user_server.api_key, base_url=f"{user_server.api_url}/telnyx/v2")
    with _alice(user_server, tones[1100]) as alice:
        alice.wait_registered(timeout=10)
        with Baresip(input_wav=tones[700], max_call_s=30) as caller:
            seen = {e["payload"]["call_control_id"] for e in events.all()}
            caller.dial(user_server.uri("cc"))
            a = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
            client.calls.actions.transfer(a, to="alice", target_leg_client_state="eA==")
            caller.wait_established(timeout=10)  # answered when alice answered
            alice.wait_established(timeout=10)
            session = events.wait("call.bridged", a)["payload"]["call_session_id"]
            (leg,) = [
                e["payload"]
                for e in events.all()
                if e["event_type"] == "call.initiated" and e["payload"]["direction"] == "outgoing"
                and e["payload"]["call_session_id"] == session
            ]  # fmt: skip
            assert leg["to"] == "alice" and leg["client_state"] == "eA=="
            events.wait("call.bridged", leg["call_control_id"])
            time.sleep(3)
            heard_caller, rate = caller.recorded_audio()
            alice.hangup()
            assert caller.wait_closed(timeout=10) == PEER_HUNG_UP
    assert audio.tone_present(heard_caller, rate, 1100, 1.5), "the caller did not hear alice"
    hangup_a = events.wait("call.hangup", a)["payload"]
    assert hangup_a["hangup_cause"] == "normal_clearing"


def test_playback_heard_and_recording_saved(
    server: ServerProcess,
    hooks: WebPeer,
    client: telnyx.Telnyx,
    tones: dict[int, Path],
    tmp_path: Path,
) -> None:
    """The app records the call, plays a file from a URL the caller hears, stops the
    recording: ``call.recording.saved`` names a file holding both the caller and the file."""
    hooks.answer("/beep.wav", 200, tones[1100].read_bytes(), content_type="audio/wav")
    events = Events(hooks, server)
    seen = {e["payload"]["call_control_id"] for e in events.all()}
    with Baresip(input_wav=tones[700], max_call_s=30) as caller:
        caller.dial(server.uri("cc"))
        ccid = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
        client.calls.actions.answer(ccid)
        caller.wait_established(timeout=10)
        client.calls.actions.start_recording(ccid, format="wav", channels="single")
        client.calls.actions.start_playback(ccid, audio_url=hooks.url("/beep.wav"), loop=1)
        started = events.wait("call.playback.started", ccid)["payload"]
        assert started["media_url"] == hooks.url("/beep.wav")
        time.sleep(3)
        client.calls.actions.stop_playback(ccid)
        stopped = events.wait("call.playback.ended", ccid)["payload"]
        assert stopped["status"] in ("cancelled", "valid")
        client.calls.actions.stop_recording(ccid)
        saved = events.wait("call.recording.saved", ccid)["payload"]
        heard, rate = caller.recorded_audio()
        client.calls.actions.hangup(ccid)
        caller.wait_closed(timeout=10)
    assert audio.tone_present(heard, rate, 1100, 1.5), "the caller did not hear the playback"
    url = saved["recording_urls"]["wav"]
    response = httpx.get(url, headers={"X-API-Key": server.api_key}, timeout=10)
    assert response.status_code == 200
    wav = tmp_path / "saved.wav"
    wav.write_bytes(response.content)
    recorded, rec_rate = audio.read_mono(wav)
    # One channel, both sides mixed: the caller's 700 Hz and the file's 1100 Hz together.
    assert audio.tone_present(recorded, rec_rate, [700, 1100], 1.5), "the mix is not recorded"
    total = float(np.mean(np.asarray(recorded) ** 2))
    for freq in (700, 1100):
        share = audio.goertzel_power(recorded, rec_rate, freq) / total
        assert share > 0.15, f"{freq} Hz is {share:.0%} of the recording"


def test_dial_through_a_trunk_that_challenges_with_407(tmp_path: Path, hooks: WebPeer) -> None:
    """A number goes out through the trunk, which wants proxy authentication: the
    trunk's credentials answer the 407; the callee answers, then hangs up."""
    with SippBackground(
        scenario=SIPP_DIR / "uas_trunk_auth.xml",
        variables={"hold_ms": 2000},
        workdir=tmp_path / "carrier",
    ) as carrier:
        trunks = f"""\
trunks:
  - name: carrier
    uri: sip:127.0.0.1:{carrier.local_port}
    username: "1001"
    password: secret
    keepalive: 0
"""
        server = start_server(tmp_path / "server", extra_config=trunks)
        events = Events(hooks, server, "/trunk")
        try:
            client = telnyx.Telnyx(api_key=server.api_key, base_url=f"{server.api_url}/telnyx/v2")
            dialled = client.calls.dial(
                connection_id="app",
                to="+33199001234",
                from_="+33100000000",
                webhook_url=hooks.url("/trunk"),
            )
            assert dialled.data is not None
            ccid = dialled.data.call_control_id
            events.wait("call.answered", ccid)
            carrier.wait(timeout=20).assert_ok(calls=1)  # 407, then INVITE with credentials
            hangup = events.wait("call.hangup", ccid)["payload"]
        finally:
            server.stop()
    assert hangup["hangup_source"] == "callee" and hangup["hangup_cause"] == "normal_clearing"
    assert_digest_is_right((tmp_path / "carrier" / "messages.log").read_text(), "secret")


def test_dial_with_its_own_credentials_and_unanswered_cause(tmp_path: Path, hooks: WebPeer) -> None:
    """``sip_auth_username``/``password`` answer a SIP URI's challenge; a busy callee
    ends in ``call.hangup`` with ``user_busy`` and its SIP status."""
    server = start_server(tmp_path / "server")
    events = Events(hooks, server, "/own")
    try:
        client = telnyx.Telnyx(api_key=server.api_key, base_url=f"{server.api_url}/telnyx/v2")
        with SippBackground(
            scenario=SIPP_DIR / "uas_trunk_auth.xml",
            variables={"hold_ms": 1000},
            workdir=tmp_path / "uas",
        ) as uas:
            dialled = client.calls.dial(
                connection_id="app",
                to=uas.uri,
                from_="alice",
                webhook_url=hooks.url("/own"),
                sip_auth_username="1001",
                sip_auth_password="secret",
                from_display_name='Alice "A" Example',
            )
            assert dialled.data is not None
            events.wait("call.answered", dialled.data.call_control_id)
            uas.wait(timeout=20).assert_ok(calls=1)
        messages = (tmp_path / "uas" / "messages.log").read_text()
        assert_digest_is_right(messages, "secret")
        assert 'From: "Alice \\"A\\" Example" <sip:alice@' in messages
        with SippBackground(scenario=SIPP_DIR / "uas_busy.xml", workdir=tmp_path / "busy") as busy:
            dialled = client.calls.dial(
                connection_id="app", to=busy.uri, from_="alice", webhook_url=hooks.url("/own")
            )
            assert dialled.data is not None
            hangup = events.wait("call.hangup", dialled.data.call_control_id)["payload"]
        assert hangup["hangup_cause"] == "user_busy"
        assert hangup["sip_hangup_cause"] == "486"
        assert not [
            e
            for e in events.all(dialled.data.call_control_id)
            if e["event_type"] == "call.answered"
        ]
    finally:
        server.stop()


def test_refer_reports_the_notified_outcome(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    events = Events(hooks, server)
    seen = {e["payload"]["call_control_id"] for e in events.all()}
    with SippBackground(
        server.target,
        scenario=SIPP_DIR / "uac_refer.xml",
        service="cc",
        variables={"final": "200 OK"},
        workdir=tmp_path / "sipp",
    ) as sipp:
        ccid = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
        client.calls.actions.answer(ccid)
        client.calls.actions.refer(ccid, sip_address="sip:carol@example.invalid")
        started = events.wait("call.refer.started", ccid)["payload"]
        assert started["sip_notify_response"] == 100
        completed = events.wait("call.refer.completed", ccid)["payload"]
        assert completed["sip_notify_response"] == 200
        sipp.wait(timeout=20).assert_ok(calls=1)
    refer = next(m for m in sipp_messages(tmp_path / "sipp") if m.lstrip().startswith("REFER "))
    assert "Refer-To: <sip:carol@example.invalid>" in refer
    events.wait("call.hangup", ccid)


def sipp_messages(workdir: Path) -> list[str]:
    return (workdir / "messages.log").read_text().split("\n\n")


def test_call_handed_to_scenario_actions_and_back(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx
) -> None:
    """The native API sees a call-control call and can hand it a scenario's actions
    (``POST /api/calls/{id}/actions``); when they end the application has it again."""
    events = Events(hooks, server)
    seen = {e["payload"]["call_control_id"] for e in events.all()}
    api = httpx.Client(base_url=server.api_url, headers={"X-API-Key": server.api_key})
    with Baresip(max_call_s=40) as phone:
        phone.dial(server.uri("cc"))
        ccid = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
        client.calls.actions.answer(ccid)
        phone.wait_established(timeout=10)
        live = api.get("/api/calls").json()
        assert ccid in [c["id"] for c in live["hits"]]
        actions = [{"action": "play@v1", "params": {"tone": "beep"}}]
        assert api.post(f"/api/calls/{ccid}/actions", json={"actions": actions}).status_code < 300
        time.sleep(2.0)
        status = client.calls.retrieve_status(ccid)
        assert status.data is not None and status.data.is_alive  # back with the application
        client.calls.actions.speak(ccid, payload="Welcome back to the application.", voice="male")
        events.wait("call.speak.ended", ccid, timeout=20)
        client.calls.actions.hangup(ccid)
        assert phone.wait_closed(timeout=10) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    assert audio.tone_present(heard, rate, 1000, 0.15), "the scenario's beep was not heard"
    assert audio.speech_seconds(heard, rate) > 1.0, "the application's speech was not heard"
    record = api.get(f"/api/cdrs/{ccid}")
    assert record.status_code == 200, record.text


@pytest.fixture(scope="module")
def greetings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("greetings")
    hello = audio.make_speech_wav(folder / "hello-raw.wav", "Hello?")
    greeting = audio.make_speech_wav(
        folder / "greeting-raw.wav",
        "Hi, you have reached the voicemail of John Smith. I cannot take your call "
        "right now. Please leave a message after the tone.",
    )
    out = {}
    samples, rate = audio.read_mono(hello)
    out["hello"] = audio.write_wav(folder / "hello.wav", [*audio.silence(0.4), *samples], rate)
    samples, rate = audio.read_mono(greeting)
    beep = audio.tone(1400, 0.5, rate=rate, amplitude=0.3)
    out["machine"] = audio.write_wav(
        folder / "machine.wav", [*audio.silence(0.4), *samples, *audio.silence(0.6), *beep], rate
    )
    return out


@pytest.mark.parametrize(
    ("voice", "detected", "greeting"),
    [("machine", "machine", "beep_detected"), ("hello", "human", None)],
)
def test_dial_with_answering_machine_detection(
    user_server: ServerProcess,
    hooks: WebPeer,
    greetings: dict[str, Path],
    voice: str,
    detected: str,
    greeting: str | None,
) -> None:
    events = Events(hooks, user_server, "/users")
    client = telnyx.Telnyx(api_key=user_server.api_key, base_url=f"{user_server.api_url}/telnyx/v2")
    with _alice(user_server, greetings[voice]) as alice:
        alice.wait_registered(timeout=10)
        dialled = client.calls.dial(
            connection_id="app",
            to="alice",
            from_="+33100000001",
            webhook_url=hooks.url("/users"),
            answering_machine_detection="detect_beep",
            answering_machine_detection_config={"total_analysis_time_millis": 8000},
        )
        assert dialled.data is not None
        ccid = dialled.data.call_control_id
        ended = events.wait("call.machine.detection.ended", ccid, timeout=20)["payload"]
        assert ended["result"] == detected
        if greeting is not None:
            beep = events.wait("call.machine.greeting.ended", ccid, timeout=20)["payload"]
            assert beep["result"] == greeting
        client.calls.actions.hangup(ccid)
        alice.wait_closed(timeout=10)


def test_dial_refuses_a_bad_detection_config(client: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError) as bad:
        client.calls.dial(
            connection_id="app",
            to="sip:nobody@127.0.0.1",
            from_="alice",
            webhook_url="http://127.0.0.1:9/hooks",
            answering_machine_detection="detect",
            answering_machine_detection_config={"total_analysis_time_millis": -5},
        )
    error = bad.value.body["errors"][0]  # type: ignore[index]
    assert (
        error["source"]["pointer"]
        == "/answering_machine_detection_config/total_analysis_time_millis"
    )


def test_fork_sends_each_direction_to_its_receiver(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tones: dict[int, Path]
) -> None:
    """fork_start copies the caller's RTP to ``rx`` and what it hears to ``tx``; the test
    decodes both: the caller's 700 Hz in rx, the spoken prompt in tx; fork_stop ends it."""
    events = Events(hooks, server)
    seen = {e["payload"]["call_control_id"] for e in events.all()}
    rx, tx = ForkReceiver(), ForkReceiver()
    try:
        with Baresip(input_wav=tones[700], max_call_s=30, codecs=("PCMU",)) as caller:
            caller.dial(server.uri("cc"))
            ccid = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
            client.calls.actions.answer(ccid)
            caller.wait_established(timeout=10)
            client.calls.actions.start_forking(ccid, rx=rx.spec, tx=tx.spec)
            events.wait("call.fork.started", ccid)
            client.calls.actions.speak(ccid, payload="This call is forked.", voice="female")
            events.wait("call.speak.ended", ccid, timeout=20)
            client.calls.actions.stop_forking(ccid)
            events.wait("call.fork.stopped", ccid)
            with pytest.raises(telnyx.UnprocessableEntityError):
                client.calls.actions.stop_forking(ccid)  # nothing forks any more
            client.calls.actions.hangup(ccid)
            caller.wait_closed(timeout=10)
    finally:
        rx.close()
        tx.close()
    heard_rx = decode_pcmu(rx.rtp())
    heard_tx = decode_pcmu(tx.rtp())
    assert audio.tone_present(heard_rx, 8000, 700, 1.0), "rx does not carry the caller"
    assert audio.speech_seconds(heard_tx, 8000) > 0.5, "tx does not carry the speech"
    assert not audio.tone_present(heard_tx, 8000, 700, 0.3), "tx carries the caller"


def test_application_route_times_out_without_a_first_command(
    tmp_path: Path, hooks: WebPeer
) -> None:
    """A number routed to ``call-control:APPLICATION_ID``: events go to the application's
    URL; with ``first_command_timeout`` on and no command, the call is refused after
    ``first_command_timeout_secs`` (480) and ``call.hangup`` says ``timeout``."""
    server = start_server(tmp_path / "server", routes={"echo": "echo"})
    try:
        client = telnyx.Telnyx(api_key=server.api_key, base_url=f"{server.api_url}/telnyx/v2")
        app = client.call_control_applications.create(
            application_name="patient",
            webhook_event_url=hooks.url("/app"),
            first_command_timeout=True,
            first_command_timeout_secs=2,
        )
        assert app.data is not None
        add_route(server, f'  "app": "call-control:{app.data.id}"')
        reload(server, "reloaded")
        events = Events(hooks, server, "/app")
        with Baresip(max_call_s=20) as phone:
            phone.dial(server.uri("app"))
            initiated = events.wait("call.initiated")["payload"]
            assert initiated["connection_id"] == app.data.id
            closed = phone.wait_closed(timeout=10)
        hangup = events.wait("call.hangup", initiated["call_control_id"])["payload"]
        assert hangup["hangup_cause"] == "timeout"
        assert "480" in closed, closed
        deadline = time.monotonic() + 5
        kinds: set[str | None] = set()
        while time.monotonic() < deadline and "call.hangup" not in kinds:
            logged = client.call_events.list(filter={"call_leg_id": initiated["call_leg_id"]})
            kinds = {e.name for e in logged.data or []}
            time.sleep(0.1)
        assert {"call.initiated", "call.hangup"} <= kinds, kinds
    finally:
        server.stop()


def test_a_refused_command_changes_nothing(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx
) -> None:
    """Speaking to a parked call is refused (90015); its client_state is not taken and
    its command_id stays free; a repeated command_id is then a no-op."""
    events = Events(hooks, server)
    seen = {e["payload"]["call_control_id"] for e in events.all()}
    with Baresip(max_call_s=30) as phone:
        phone.dial(server.uri("cc"))
        ccid = events.wait_new("call.initiated", seen)["payload"]["call_control_id"]
        with pytest.raises(telnyx.UnprocessableEntityError) as refused:
            client.calls.actions.speak(
                ccid, payload="too early", voice="female", client_state="YmFk", command_id="s1"
            )
        assert refused.value.body["errors"][0]["code"] == "90015"  # type: ignore[index]
        client.calls.actions.answer(ccid)
        phone.wait_established(timeout=10)
        assert events.wait("call.answered", ccid)["payload"]["client_state"] is None
        client.calls.actions.speak(ccid, payload="Now it is fine.", voice="female", command_id="s1")
        events.wait("call.speak.ended", ccid, timeout=20)
        client.calls.actions.speak(ccid, payload="Now it is fine.", voice="female", command_id="s1")
        time.sleep(1.0)
        started = [e for e in events.all(ccid) if e["event_type"] == "call.speak.started"]
        assert len(started) == 1  # the repeat was a no-op
        client.calls.actions.hangup(ccid)
        phone.wait_closed(timeout=10)
