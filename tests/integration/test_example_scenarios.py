"""The example scenarios of configs/scenarios, called by real phones over loopback:
forward, voicemail, conference and reminder.

Each test starts a server on the examples as they are shipped, places real
calls with baresip (and sipp for a busy callee), then checks what the phones
heard (tones and speech in their recordings), the digits the scenario took,
the recording it made (the file's audio and its row in the database), and
the outcome it reported (its log lines, the run through the API, the
webhook a local receiver got).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaserver.webhooks.envelope import verify_signature
from tests.integration.conftest import SCENARIOS, ServerProcess, start_server
from tests.integration.webpeer import WebPeer
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.sipp import SippBackground

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"
PEER_HUNG_UP = "Connection reset by peer"
USERS = """\
users:
  - {username: alice, password: wonderland}
"""
SECRET = "reminder-secret"
BEEP_HZ = 1000  # the "record after the tone" beep


def wait_until(check: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met in {timeout} s")


def wait_log(server: ServerProcess, event: str, timeout: float = 20.0, **fields: Any) -> None:
    def found() -> bool:
        return any(
            r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
            for r in server.log_records()
        )

    wait_until(found, timeout, f"log {event!r} {fields}")


def recordings(server: ServerProcess) -> list[sqlite3.Row]:
    db = sqlite3.connect(server.data_dir / "data" / "mediaserver.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM recordings ORDER BY created_at").fetchall()
    finally:
        db.close()


def examples_server(tmp: Path, routes: dict[str, str], extra: str = "") -> ServerProcess:
    """A server on configs/scenarios as shipped; loopback callers are trusted (may dial)."""
    return start_server(tmp, routes=routes, scenarios=SCENARIOS, extra_config=USERS + extra)


def record_voicemail_of_a_tone(server: ServerProcess, caller: Baresip, seconds: float) -> None:
    """Once the message is being recorded, let the caller's tone run, then press #."""
    wait_log(server, "recording started", timeout=40, kind="voicemail")
    time.sleep(seconds)
    caller.send_dtmf("#")


def check_voicemail(server: ServerProcess, hz: float, seconds: float) -> tuple[str, float]:
    """The one voicemail recording: the caller's tone, about ``seconds`` long."""
    wait_until(lambda: any(r["status"] == "ready" for r in recordings(server)), 10, "recording")
    (row,) = recordings(server)
    assert (row["kind"], row["status"], row["format"], row["channels"]) == (
        "voicemail", "ready", "wav", 1,
    )  # fmt: skip
    samples, rate = audio.read_mono(server.data_dir / "data" / "recordings" / row["path"])
    length = len(samples) / rate
    assert seconds - 1.0 <= length <= seconds + 1.5, length
    assert audio.tone_present(samples, rate, hz, seconds - 1.0)
    assert audio.dominant_frequency(samples, rate) == pytest.approx(hz, abs=5)
    return str(row["id"]), length


# -- forward.yaml --------------------------------------------------------------------------


def test_forward_unanswered_then_voicemail(tmp_path: Path) -> None:
    tone = audio.make_tone_wav(tmp_path / "caller.wav", 700, 60.0, amplitude=0.4)
    server = examples_server(tmp_path / "server", {"forward": "forward"})
    try:
        with (
            Baresip(user="alice", registrar=server.target, password="wonderland") as alice,
            Baresip(user="carol", input_wav=tone, max_call_s=60) as caller,
        ):  # fmt: skip
            alice.wait_registered(timeout=10)
            caller.dial(server.uri("forward"))
            alice.wait_incoming(timeout=10)  # alice's phone rings, nobody answers it
            alice.wait_closed(timeout=25)  # cancelled after the 15 s of the dial
            caller.wait_established(timeout=15)  # the voicemail's greeting answers
            record_voicemail_of_a_tone(server, caller, 3.0)
            assert caller.wait_closed(timeout=20) == PEER_HUNG_UP
            heard, rate = caller.recorded_audio()
    finally:
        server.stop()
    rid, length = check_voicemail(server, 700, 3.0)
    logs = server.scenario_logs("forward:")
    assert logs[0] == "forward: no-answer, voicemail"
    assert logs[1].startswith(f"forward: voicemail {rid} ") and logs[1].endswith(" s")
    assert abs(float(logs[1].split()[3]) - length) < 0.05
    # The greeting and "Thank you. Goodbye." were heard, and the beep between them.
    assert audio.speech_seconds(heard, rate) > 3.0
    assert audio.tone_present(heard, rate, BEEP_HZ, 0.2)


def test_forward_answered_bridges_the_two(tmp_path: Path) -> None:
    tone_caller = audio.make_tone_wav(tmp_path / "caller.wav", 700, 20.0, amplitude=0.4)
    tone_alice = audio.make_tone_wav(tmp_path / "alice.wav", 1100, 20.0, amplitude=0.4)
    server = examples_server(tmp_path / "server", {"forward": "forward"})
    try:
        with (
            Baresip(user="alice", registrar=server.target, password="wonderland",
                    auto_answer=True, input_wav=tone_alice, max_call_s=30) as alice,
            Baresip(user="carol", input_wav=tone_caller, max_call_s=30) as caller,
        ):  # fmt: skip
            alice.wait_registered(timeout=10)
            caller.dial(server.uri("forward"))
            caller.wait_established(timeout=10)
            alice.wait_established(timeout=10)
            time.sleep(3)
            heard_caller, rate_caller = caller.recorded_audio()
            heard_alice, rate_alice = alice.recorded_audio()
            alice.hangup()  # the callee ends the bridge; the scenario then hangs up
            assert caller.wait_closed(timeout=15) == PEER_HUNG_UP
    finally:
        server.stop()
    assert audio.tone_present(heard_caller, rate_caller, 1100, 1.5), "the caller did not hear alice"
    assert audio.tone_present(heard_alice, rate_alice, 700, 1.5), "alice did not hear the caller"
    (logged,) = server.scenario_logs("forward:")
    assert logged.startswith("forward: answered ")
    assert recordings(server) == []


# -- voicemail.yaml ------------------------------------------------------------------------


def test_voicemail_records_the_message(tmp_path: Path) -> None:
    tone = audio.make_tone_wav(tmp_path / "caller.wav", 800, 40.0, amplitude=0.4)
    server = examples_server(tmp_path / "server", {"voicemail": "voicemail"})
    try:
        with Baresip(user="dave", input_wav=tone, max_call_s=40) as caller:
            caller.dial(server.uri("voicemail"))
            caller.wait_established(timeout=10)
            record_voicemail_of_a_tone(server, caller, 4.0)
            assert caller.wait_closed(timeout=20) == PEER_HUNG_UP
            heard, rate = caller.recorded_audio()
    finally:
        server.stop()
    rid, length = check_voicemail(server, 800, 4.0)
    (logged,) = server.scenario_logs("voicemail:")
    assert logged.startswith(f"voicemail: message {rid} from dave, ")
    assert abs(float(logged.split()[-2]) - length) < 0.05
    # The greeting, the beep, the message (4 s of quiet), then "Thank you for your message."
    spoken = audio.active_intervals(heard, rate, -40)
    beep_start, beep_end = next(
        (start, end)
        for start, end in spoken
        if 0.15 < end - start < 0.4
        and audio.dominant_frequency(heard[int(start * rate) : int(end * rate)], rate)
        == pytest.approx(BEEP_HZ, abs=10)
    )
    before = sum(end - start for start, end in spoken if end <= beep_start)
    after = [(start, end) for start, end in spoken if start >= beep_end + 3.0]
    assert before > 3.0, spoken
    assert sum(end - start for start, end in after) > 1.0, spoken


# -- conference.yaml -----------------------------------------------------------------------


def test_conference_with_a_pin(tmp_path: Path) -> None:
    tones = {
        name: audio.make_tone_wav(tmp_path / f"{name}.wav", hz, 40.0, amplitude=0.4)
        for name, hz in (("ann", 700), ("bob", 1100), ("eve", 500))
    }
    server = examples_server(tmp_path / "server", {"conference": "conference"})
    try:
        with (
            Baresip(user="ann", input_wav=tones["ann"], max_call_s=40) as ann,
            Baresip(user="bob", input_wav=tones["bob"], max_call_s=40) as bob,
            Baresip(user="eve", input_wav=tones["eve"], max_call_s=40) as eve,
        ):
            for phone in (ann, bob):
                phone.dial(server.uri("conference"))
                phone.wait_established(timeout=10)
            time.sleep(1.0)
            ann.send_dtmf("1234#")
            bob.send_dtmf("1234#")
            wait_until(lambda: len(server.scenario_logs("conference: ann joins")) == 1)
            wait_until(lambda: len(server.scenario_logs("conference: bob joins")) == 1)
            wait_log(server, "conference joined", participants=2)

            eve.dial(server.uri("conference"))  # a wrong PIN: refused, asked again
            eve.wait_established(timeout=10)
            time.sleep(1.0)
            eve.send_dtmf("9999#")
            wait_until(lambda: server.scenario_logs("conference: wrong PIN from eve"))
            time.sleep(3.0)
            heard = {name: p.recorded_audio() for name, p in (("ann", ann), ("bob", bob))}
            heard_eve, rate_eve = eve.recorded_audio()
            eve.hangup()

            ann.send_dtmf("*")  # leaves the room: "You have left the conference. Goodbye."
            assert ann.wait_closed(timeout=15) == PEER_HUNG_UP
            bob.hangup()
    finally:
        server.stop()
    ann_heard, rate = heard["ann"]
    assert audio.tone_present(ann_heard, rate, 1100, 1.5), "ann did not hear bob"
    bob_heard, rate = heard["bob"]
    assert audio.tone_present(bob_heard, rate, 700, 1.5), "bob did not hear ann"
    for samples, rate in (heard["ann"], heard["bob"]):
        assert not audio.tone_present(samples, rate, 500, 0.5), "eve got into the room"
    assert not audio.tone_present(heard_eve, rate_eve, 700, 0.5), "eve heard the room"
    assert not audio.tone_present(heard_eve, rate_eve, 1100, 0.5), "eve heard the room"
    assert audio.speech_seconds(heard_eve, rate_eve) > 2.0  # the question and the "sorry"
    logs = server.scenario_logs("conference:")
    assert sorted(logs[:2]) == ["conference: ann joins team", "conference: bob joins team"]
    assert logs[2:4] == [
        "conference: wrong PIN from eve (attempt 1)",
        "conference: ann left team (key)",
    ]


# -- reminder.yaml (api-initiated) -----------------------------------------------------------


@pytest.fixture
def web() -> Iterator[WebPeer]:
    with WebPeer() as peer:
        yield peer


def reminder_server(tmp: Path, web: WebPeer) -> ServerProcess:
    hooks = f"""\
webhooks:
  - url: {web.url("/events")}
    events: ["v2.scenario.*"]
    secret: {SECRET}
"""
    return examples_server(tmp, {"welcome": "welcome"}, hooks)


def start_reminder(server: ServerProcess, to: str, variables: dict[str, str]) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as api:
        hits = api.get("/api/scenarios", params={"name": "reminder", "origin": "file"}).json()
        sid = next(h["sid"] for h in hits["hits"] if h["name"] == "reminder")
        started = api.post(f"/api/scenarios/{sid}/start", json={"to": to, "variables": variables})
        assert started.status_code == 201, started.text
        return sid, started.json()["runid"]


def finished_run(server: ServerProcess, sid: str, runid: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as api:

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = api.get(f"/api/scenarios/{sid}/runs/{runid}").json()
            return run if run["status"] != "running" else None

        result: dict[str, Any] = wait_until(finished, 20, "the run's end")
        return result


def check_reminder_hook(web: WebPeer, runid: str) -> dict[str, Any]:
    hook = web.wait_for(lambda r: r.path == "/events" and runid in r.body.decode())
    assert verify_signature(hook.body, SECRET, hook.headers.get("x-mediaserver-signature"))
    body = hook.json()
    assert body["type"] == "v2.scenario.reminder"
    payload: dict[str, Any] = body["payload"]
    assert payload["scenario"] == "reminder" and payload["runid"] == runid
    return payload


def test_reminder_call_is_confirmed_with_1(tmp_path: Path, web: WebPeer) -> None:
    server = reminder_server(tmp_path / "server", web)
    try:
        with Baresip(user="alice", auto_answer=True, max_call_s=40) as phone:
            sid, runid = start_reminder(server, phone.sip_uri, {"$name": "Alice", "$time": "3 PM"})
            phone.wait_established(timeout=10)
            wait_until(
                lambda: audio.speech_seconds(*phone.recorded_audio()) > 1.5, 10, "the reminder"
            )
            phone.send_dtmf("1")
            assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
            heard, rate = phone.recorded_audio()
        run = finished_run(server, sid, runid)
    finally:
        server.stop()
    assert run["status"] == "completed", run
    assert run["variables"]["$answer"] == "confirmed" and run["variables"]["$key"] == "1"
    assert run["variables"]["$dial"]["status"] == "answered"
    assert server.scenario_logs("reminder:") == ["reminder: Alice confirmed"]
    payload = check_reminder_hook(web, runid)
    assert payload["data"] == {"name": "Alice", "time": "3 PM", "answer": "confirmed"}
    assert payload["callid"] and payload["to"]
    # The reminder, then "Thank you. ... is confirmed. Goodbye." after the key.
    assert audio.speech_seconds(heard, rate) > 3.0


def test_api_started_call_record_names_its_scenario_and_run(tmp_path: Path, web: WebPeer) -> None:
    hooks = f'webhooks:\n  - url: {web.url("/calls")}\n    events: ["v2.call.*"]\n'
    server = examples_server(tmp_path / "server", {"welcome": "welcome"}, hooks)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    try:
        with Baresip(user="alice", auto_answer=True, max_call_s=40) as phone:
            sid, runid = start_reminder(server, phone.sip_uri, {"$name": "Alice"})
            phone.wait_established(timeout=10)
            phone.send_dtmf("2")
            assert phone.wait_closed(timeout=30) == PEER_HUNG_UP
        run = finished_run(server, sid, runid)
        with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as api:

            def ended() -> list[dict[str, Any]]:
                page = api.get("/api/cdrs", params={"direction": "outbound"}).json()
                return [c for c in page["hits"] if c["status"] == "ended"]

            (record,) = wait_until(ended, 10, "the call record closed")
            by_run = api.get("/api/cdrs", params={"runid": runid}).json()
    finally:
        server.stop()
    assert run["status"] == "completed", run
    assert record["scenario"] == {"sid": sid, "name": "reminder"}
    assert record["runid"] == runid
    assert record["to"] == "alice" and record["from"] == "mediaserver"
    assert [c["callid"] for c in by_run["hits"]] == [record["callid"]]
    # The call webhooks name the scenario too, and the ended one carries the record.
    started = web.wait_for(lambda r: b"v2.call.outbound.started" in r.body).json()["payload"]
    assert started["scenario_name"] == "reminder"  # the seed's CDR.Out, as .ended
    assert started["number"] == "alice" and started["hangup"] is None
    # The record names its run and scenario from the start, in call.started already.
    assert started["record"]["scenario"] == {"sid": sid, "name": "reminder"}
    assert started["record"]["runid"] == runid
    ended = web.wait_for(lambda r: b"v2.call.outbound.ended" in r.body).json()["payload"]
    assert ended["record"] == record
    assert ended["scenario_name"] == "reminder"  # the Callr CDR.Out's own field


def test_reminder_to_a_busy_phone_logs_it(tmp_path: Path, web: WebPeer) -> None:
    server = reminder_server(tmp_path / "server", web)
    try:
        with SippBackground(scenario=SIPP_DIR / "uas_busy.xml", workdir=tmp_path / "uas") as uas:
            sid, runid = start_reminder(server, uas.uri, {"$name": "Bob"})
            run = finished_run(server, sid, runid)
            uas.wait(timeout=15).assert_ok(calls=1)
    finally:
        server.stop()
    assert run["status"] == "completed", run
    assert run["variables"]["$answer"] == "not reached"
    assert server.scenario_logs("reminder:") == ["reminder: Bob not reached (busy)"]
    payload = check_reminder_hook(web, runid)
    assert payload["data"] == {"name": "Bob", "time": "the usual time", "answer": "not reached"}
    assert payload["callid"] is None
