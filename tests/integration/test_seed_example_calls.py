"""The seeds' own examples, pasted as they are, run on the real server.

A user coming from Callr tries the seed's sample first: the scenario of the
Callr v2 "Create scenario" request sample (``seeds/001``), with its
``inbound-call``, ``inbound-sms`` and ``api-initiated`` branches, created
through the API, a number attached, then called (baresip), messaged (a bare
SIP MESSAGE) and started. Each branch's ``log@v1`` line is read from the
server's log, and its run from the API. Ids are given in the seed's formats.

A user coming from Voxology answers with the seed's CONFERENCE example
(``seeds/003``): a local application (``FlowApp``) gives it to two baresip
callers, each sending its own tone; what each hears is analysed while one
mutes (``1``), unmutes (``3``), presses ``#`` alone, then leaves on ``#0``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.test_callflow_calls import FlowApp, fields
from tests.integration.webpeer import Request
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.rawsip import SipProbe
from tests.unit.seed_examples import CALLR_SCRIPT

pytestmark = pytest.mark.integration


# seeds/001, "Attach number to scenario": one of the path parameter's examples.
SEED_NUMBER = "+33199001234"


@pytest.fixture(scope="module")
def app() -> Iterator[FlowApp]:
    flow_app = FlowApp()
    yield flow_app
    flow_app.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app: FlowApp) -> Iterator[ServerProcess]:
    routes = {"echo": "echo", "voxconf": f'"callflow:{app.url("/conference")}"'}
    proc = start_server(tmp_path_factory.mktemp("seeds"), routes=routes)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as client:
        yield client


def wait_log(server: ServerProcess, message: str, timeout: float = 15) -> dict[str, Any]:
    """The log record ``log@v1`` wrote with ``message`` (it carries the run id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in server.log_records(message):
            if record.get("scenario_log"):
                return record
        time.sleep(0.1)
    raise AssertionError(f"no {message!r} line in the server log")


def test_the_callr_sample_scenario_runs_each_branch(
    server: ServerProcess, api: httpx.Client
) -> None:
    # The seed's request body as it is: name, script and format.
    body = {"name": "Call Forwarding", "script": CALLR_SCRIPT, "format": "yaml"}
    created = api.post("/api/scenarios", json=body)
    assert created.status_code == 201, created.text
    sid = created.json()["sid"]
    attached = api.put(f"/api/scenarios/{sid}/numbers/{SEED_NUMBER}")
    assert attached.status_code == 200, attached.text

    # A call to the number runs inbound-call; the branch never answers, so the
    # call ends unanswered once the branch is over.
    with Baresip(user="alice", max_call_s=20) as phone:
        phone.dial(server.uri(SEED_NUMBER))
        wait_log(server, "Hello inbound call")
        phone.wait_closed(timeout=15)
    call_run = wait_log(server, "Hello inbound call")["run_id"]
    assert call_run.startswith("inbound-call:")

    # A SIP MESSAGE to the number runs inbound-sms (RFC 3428: 200 once accepted).
    with SipProbe(server.sip_port) as probe:
        headers = ["Content-Type: text/plain;charset=utf-8"]
        probe.send(probe.build("MESSAGE", user=SEED_NUMBER, headers=headers, body="hi"))
        assert probe.expect_final().status == 200
    sms_run = wait_log(server, "Hello inbound sms")["run_id"]
    assert sms_run.startswith("inbound-sms:")

    # Start scenario: the api-initiated branch, offline.
    started = api.post(f"/api/scenarios/{sid}/start", json={"variables": {}})
    assert started.status_code == 201, started.text
    api_run = started.json()["runid"]
    assert wait_log(server, "Hello from API")["run_id"] == api_run

    for runid, branch in ((call_run, "inbound-call"), (sms_run, "inbound-sms")):
        run = wait_run_over(api, sid, runid)
        assert run["branch"] == branch and run["status"] == "completed", run
    assert wait_run_over(api, sid, api_run)["status"] == "completed"


def wait_run_over(api: httpx.Client, sid: str, runid: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = api.get(f"/api/scenarios/{sid}/runs/{runid}")
        assert got.status_code == 200, got.text
        run: dict[str, Any] = got.json()
        if run["status"] != "running" or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def test_a_scenario_naming_the_branch_inbound_message_still_runs_it(
    server: ServerProcess, api: httpx.Client
) -> None:
    script = CALLR_SCRIPT.replace("inbound-sms:", "inbound-message:").replace(
        "Hello inbound sms", "Hello old name"
    )
    created = api.post("/api/scenarios", json={"name": "old-name", "script": script})
    assert created.status_code == 201, created.text
    number = "+33199005678"
    attached = api.put(f"/api/scenarios/{created.json()['sid']}/numbers/{number}")
    assert attached.status_code == 200, attached.text
    with SipProbe(server.sip_port) as probe:
        probe.send(
            probe.build("MESSAGE", user=number, headers=["Content-Type: text/plain"], body="hi")
        )
        assert probe.expect_final().status == 200
    assert wait_log(server, "Hello old name")["run_id"].startswith("inbound-sms:")

    both = script + "  inbound-sms:\n    actions: []\n"
    refused = api.post("/api/scenarios", json={"name": "both-names", "script": both})
    assert refused.status_code == 422, refused.text
    problem = refused.json()["error"]["details"][0]
    assert problem["message"] == (
        "inbound-message and inbound-sms are two names of one branch; keep one of them"
    )
    assert problem["line"] == 22, problem


# -- ids in the seed's formats -------------------------------------------------------------

IDS_SCRIPT = """\
branches:
  inbound-call:
    actions:
      - action: log@v1
        params: {message: "ids: call"}
      - action: hangup@v1
  api-initiated:
    actions:
      - action: pause@v1
        params: {seconds: 30}
"""


def status_of(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    if field is not None:
        assert response.json()["error"]["field"] == field, response.text


def test_ids_are_taken_in_the_seeds_formats_and_any_case(
    server: ServerProcess, api: httpx.Client
) -> None:
    created = api.post("/api/scenarios", json={"name": "ids", "script": IDS_SCRIPT})
    assert created.status_code == 201, created.text
    sid = created.json()["sid"]
    assert api.get(f"/api/scenarios/{sid.upper()}").json()["sid"] == sid
    status_of(api.put(f"/api/scenarios/{sid.upper()}/numbers/+33639984242"), 200)

    # The seed writes run ids in capitals (api:9MNAB2H6): ours are generated lower-case
    # and found in any case.
    runid = api.post(f"/api/scenarios/{sid}/start", json={}).json()["runid"]
    assert runid.startswith("api:") and runid == runid.lower()
    assert api.get(f"/api/scenarios/{sid}/runs/{runid.upper()}").json()["runid"] == runid
    cancelled = api.delete(f"/api/scenarios/{sid.upper()}/runs/{runid.upper()}")
    assert cancelled.json() == {"code": "ok", "message": f"run {runid} cancelled"}

    # The seed's own examples are well-formed ids, unknown here: 404 naming the field.
    for seed_runid in ("api:9MNAB2H6", "inbound-call:240419830042", "inbound-sms:240419830042"):
        status_of(api.get(f"/api/scenarios/{sid}/runs/{seed_runid}"), 404, "runid")
        status_of(api.delete(f"/api/scenarios/{sid}/runs/{seed_runid}"), 404, "runid")
    for seed_callid in ("240711945874", "210548952067"):
        status_of(api.get(f"/api/calls/{seed_callid}"), 404, "callid")
        status_of(api.delete(f"/api/calls/{seed_callid}"), 404, "callid")
        status_of(api.get(f"/api/cdrs/{seed_callid}"), 404, "callid")
        found = api.get("/api/recordings", params={"callid": seed_callid})
        assert found.status_code == 200 and found.json()["total"] == 0, found.text

    # A call's id and its run's, in capitals.
    with Baresip(user="bob", max_call_s=20) as phone:
        phone.dial(server.uri("+33639984242"))
        call_run = wait_log(server, "ids: call")["run_id"]
        phone.wait_closed(timeout=15)
    prefix, _, callid = call_run.partition(":")
    assert prefix == "inbound-call" and callid == callid.lower()
    shouted = call_run.upper()
    assert wait_run_over(api, sid, shouted)["runid"] == call_run
    assert api.get(f"/api/cdrs/{callid.upper()}").json()["callid"] == callid
    by_run = api.get("/api/cdrs", params={"runid": shouted}).json()
    assert [hit["callid"] for hit in by_run["hits"]] == [callid]
    assert api.get("/api/cdrs", params={"scenario": sid.upper()}).json()["total"] == 1

    # What is not an id at all is still refused before any lookup.
    for bad in ("api:", "api", ":9MNAB2H6", "api:9MNAB2H6.", "a" * 40 + ":" + "b" * 30):
        status_of(api.get(f"/api/scenarios/{sid}/runs/{bad}"), 422, "runid")
    for bad in ("0", "0123", "abc", "12345678901234567890"):
        status_of(api.get(f"/api/calls/{bad}"), 422, "callid")


# -- the Voxology CONFERENCE example ----------------------------------------------------------

# seeds/003, CONFERENCE, "Example Response", as written.
VOXOLOGY_CONFERENCE = {
    "actions": [
        {
            "type": "CONFERENCE",
            "params": {
                "name": "my-conference",
                "max_participants": 10,
                "mute_on_key": "1",
                "unmute_on_key": "3",
                "exit_on_key": "#0",
            },
            "events": {
                "on_enter": [
                    {"type": "SAY", "params": {"text": "You are now joining the conference."}},
                    {"type": "WEBHOOK", "params": {"event_name": "onEnterConference"}},
                ],
                "on_enter_error_max_participants": [
                    {"type": "SAY", "params": {"text": "I'm sorry. The conference is full."}}
                ],
            },
        }
    ]
}
# seeds/003, "Call Flow Loop": after the CONFERENCE, "SAY a question ... SAY goodbye, HANGUP".
AFTER_CONFERENCE = [
    {"type": "SAY", "params": {"text": "You have left the conference. Good bye."}},
    {"type": "HANGUP"},
]
TONES = {"alice": 500.0, "bob": 900.0}


def conference_app(request: Request) -> tuple[int, Any]:
    body = fields(request)
    if body.get("type") == "init_call":
        return 200, VOXOLOGY_CONFERENCE
    if body.get("type") == "live_call" and not body.get("is_webhook"):
        return 200, AFTER_CONFERENCE  # the CONFERENCE is over: the flow asks what next
    return 200, {}


def hears(phone: Baresip, who: str, seconds: float = 1.5) -> float:
    """Power of ``who``'s tone in the last ``seconds`` ``phone`` heard."""
    samples, rate = phone.recorded_audio()
    return audio.goertzel_power(samples[-int(seconds * rate) :], rate, TONES[who])


def wait_records(server: ServerProcess, event: str, count: int, timeout: float = 15) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.log_records(event)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {event!r} records: {server.log_records(event)}")


def test_the_voxology_conference_example_mutes_unmutes_and_leaves_on_pound_zero(
    server: ServerProcess, app: FlowApp, tmp_path: Path
) -> None:
    app.responders["/conference"] = conference_app
    phones: dict[str, Baresip] = {}
    try:
        for count, (name, hz) in enumerate(TONES.items(), start=1):
            wav = audio.make_tone_wav(tmp_path / f"{name}.wav", hz, 90.0, amplitude=0.3)
            phone = Baresip(user=name, input_wav=wav, max_call_s=90, workdir=tmp_path / name)
            phones[name] = phone.start()
            phone.dial(server.uri("voxconf"))
            phone.wait_established(timeout=10)
            wait_records(server, "conference joined", count)
        alice, bob = phones["alice"], phones["bob"]
        time.sleep(2.5)
        together = hears(bob, "alice")
        assert together > 1e-3 and hears(alice, "bob") > 1e-3

        alice.send_dtmf("1")  # mute_on_key
        assert wait_records(server, "conference mute", 1)[-1]["muted"] is True
        time.sleep(2.5)
        muted = hears(bob, "alice")
        assert muted < 0.01 * together, (muted, together)
        assert hears(alice, "bob") > 1e-3  # a muted caller still hears the room

        alice.send_dtmf("3")  # unmute_on_key
        assert wait_records(server, "conference mute", 2)[-1]["muted"] is False
        time.sleep(2.5)
        assert hears(bob, "alice") > 0.1 * together

        # "#" alone is half of "#0": alice stays in the room.
        alice.send_dtmf("#")
        time.sleep(4.0)
        assert server.log_records("conference left") == []
        assert hears(bob, "alice") > 0.1 * together

        alice.send_dtmf("#0")  # exit_on_key: she leaves, and her flow goes on
        (left,) = wait_records(server, "conference left", 1)
        assert left["outcome"] == "key"
        assert alice.wait_closed(timeout=20) == "Connection reset by peer"
        heard_by_alice, rate = alice.recorded_audio()
        time.sleep(2.5)
        alone = hears(bob, "alice")
        assert alone < 0.01 * together, (alone, together)  # bob hears her gone
        bob.hangup()
        bob.wait_closed(timeout=10)
    finally:
        for phone in phones.values():
            phone.close()

    outcomes = [r["outcome"] for r in wait_records(server, "conference left", 2)]
    assert outcomes == ["key", "hangup"]
    requests = [body for _, body in app.calls("/conference")]
    hooks = [b for b in requests if b.get("is_webhook")]
    assert sorted(b["caller_no"] for b in hooks) == ["alice", "bob"]
    assert {b.get("event_name") for b in hooks} == {"onEnterConference"}
    after = [b for b in requests if b["type"] == "live_call" and not b.get("is_webhook")]
    assert [b["caller_no"] for b in after] == ["alice"]  # bob hung up in the room
    ends = {b["caller_no"]: b for b in requests if b["type"] == "end_call"}
    assert ends["alice"]["status"] == "completed" and ends["alice"]["error_code"] is None
    # "You have left the conference. Good bye." after she left.
    assert audio.speech_seconds(heard_by_alice[-4 * rate :], rate) > 1.0
    assert audio.goertzel_power(heard_by_alice[-1 * rate :], rate, TONES["bob"]) < 1e-5
