"""Phone numbers and SMS (Callr v2) through a real server, over loopback.

The numbers listed are the config's route numbers and those attached through
the API; attaching and detaching post ``v2.number.assigned`` /
``unassigned`` to a local receiver (:class:`~tests.integration.webpeer.WebPeer`).
An SMS sent through the API reaches a phone registered as a user (a bare UDP
peer answering the registrar's digest challenge) as a SIP MESSAGE: the test
reads what the peer received and answers 200 or a refusal, and the SMS's
status follows (``delivered``, ``failed``), each step posted as
``v2.sms.outbound.updated``. A MESSAGE the peer sends in is listed by
``GET /api/sms``, posted as ``v2.sms.inbound.received``, and its scenario's
``inbound-sms`` branch sees its sid.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import TEST_API_KEY, ServerProcess, reload, start_server
from tests.integration.webpeer import Request, WebPeer
from tests.support.rawsip import SipProbe, digest_authorization
from tests.support.sipp import SippBackground

pytestmark = pytest.mark.integration

ROUTED = "+33199001234"  # a French geographic number, routed by the config
PHONE = "+15551230000"  # a user: the registered phone's name
PASSWORD = "phone-secret-42"
MOBILE = "+33612345678"  # a French mobile number, attached through the API
HOOKS = "/hooks"

# sipp's out-of-call scenario (-oocsf): answer a MESSAGE (RFC 3428)
# (sipp reads the status code when it loads the file, so it is written per test).
OOC_REFUSE = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer a MESSAGE">
  <recv request="MESSAGE" />
  <send>
    <![CDATA[

      SIP/2.0 {answer} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""

SMS_SCENARIO = """\
branches:
  inbound-call:
    actions:
      - action: hangup@v1
  inbound-sms:
    actions:
      - action: log@v1
        params: {message: "sms-in: ${message.sid} ${message.text}"}
"""


@pytest.fixture(scope="module")
def web() -> Iterator[WebPeer]:
    with WebPeer() as peer:
        yield peer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, web: WebPeer) -> Iterator[ServerProcess]:
    extra = f"""\
users:
  - username: "{PHONE}"
    password: {PASSWORD}
  - username: "+15551230200"
    password: {PASSWORD}
  - username: "+15551230404"
    password: {PASSWORD}
  - username: "+15551230488"
    password: {PASSWORD}
webhooks:
  - url: {web.url(HOOKS)}
    events: ["v2.number.*", "v2.sms.*"]
"""
    routes = {ROUTED: "welcome", "echo": "echo", "*": "welcome"}
    proc = start_server(tmp_path_factory.mktemp("numbers"), routes=routes, extra_config=extra)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.fixture()
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=10) as client:
        yield client


def hook(web: WebPeer, kind: str, match: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    """The first webhook of type ``kind`` whose payload has every item of ``match``."""

    def wanted(request: Request) -> bool:
        if request.path != HOOKS:
            return False
        body = request.json()
        payload = body.get("payload", {})
        return bool(body["type"] == kind and all(payload.get(k) == v for k, v in match.items()))

    body: dict[str, Any] = web.wait_for(wanted, timeout).json()
    return body


def hooks(web: WebPeer, kind: str, sid: str) -> list[dict[str, Any]]:
    found = []
    for request in web.received(HOOKS):
        body = request.json()
        if body["type"] == kind and body["payload"].get("sid") == sid:
            found.append(body["payload"])
    return found


def register(probe: SipProbe, user: str, password: str) -> None:
    """REGISTER ``user`` from the probe's socket, answering the digest challenge."""
    call_id = f"reg-{probe.port}"
    probe.send(probe.build("REGISTER", user=user, call_id=call_id))
    challenge = probe.expect_final()
    assert challenge.status == 401, challenge.status
    uri = f"sip:{user}@127.0.0.1:{probe.server[1]}"
    credentials = digest_authorization(
        challenge.header("www-authenticate") or "", user, password, "REGISTER", uri
    )
    probe.send(
        probe.build(
            "REGISTER", user=user, call_id=call_id, cseq=2,
            headers=[f"Authorization: {credentials}", "Expires: 300"],
        )
    )  # fmt: skip
    assert probe.expect_final().status == 200


def parse_request(raw: bytes) -> dict[str, str]:
    head, _, body = raw.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {"request-line": lines[0], "body": body}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return headers


def answer(probe: SipProbe, got: dict[str, str], status: int, reason: str) -> None:
    probe.send(
        "\r\n".join([
            f"SIP/2.0 {status} {reason}", f"Via: {got['via']}", f"From: {got['from']}",
            f"To: {got['to']};tag=phone", f"Call-ID: {got['call-id']}", f"CSeq: {got['cseq']}",
            "Content-Length: 0",
        ]) + "\r\n\r\n"
    )  # fmt: skip


def wait_status(api: httpx.Client, sid: str, wanted: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    sms: dict[str, Any] = {}
    while time.monotonic() < deadline:
        sms = api.get(f"/api/sms/{sid}").json()
        if sms.get("status") == wanted:
            return sms
        time.sleep(0.1)
    raise AssertionError(f"SMS {sid} never became {wanted}: {sms}")


# -- numbers -------------------------------------------------------------------------------------


def test_numbers_are_the_routes_and_the_attachments(
    server: ServerProcess, api: httpx.Client, web: WebPeer
) -> None:
    page = api.get("/api/numbers").json()
    assert [n["e164"] for n in page["hits"]] == [ROUTED]  # echo and * are routes, not numbers
    routed = page["hits"][0]
    assert routed["origin"] == "config" and routed["route"] == "welcome"
    assert routed["scenario"]["name"] == "welcome" and len(routed["scenario"]["sid"]) == 8
    assert (routed["type"], routed["country"], routed["class"]) == ("geographic", "FR", "classic")
    assert routed["enduser"] is None and routed["pricing"] is None

    created = api.post("/api/scenarios", json={"name": "sms-in", "script": SMS_SCENARIO})
    assert created.status_code == 201, created.text
    sid = created.json()["sid"]
    attached = api.put(f"/api/numbers/{MOBILE}/scenario/{sid}")
    assert attached.status_code == 200, attached.text
    assigned = hook(web, "v2.number.assigned", {"e164": MOBILE})
    assert assigned["payload"]["scenario"] == {"sid": sid, "name": "sms-in"}
    assert assigned["payload"]["type"] == "mobile"

    number = api.get(f"/api/numbers/{MOBILE}").json()
    assert number["origin"] == "api" and number["scenario"]["sid"] == sid
    assert number["sid"] == assigned["payload"]["sid"]
    # The seed's filters and sorting.
    mobiles = api.get("/api/numbers", params={"type": "mobile"}).json()
    assert [n["e164"] for n in mobiles["hits"]] == [MOBILE]
    by_sid = api.get("/api/numbers", params={"sid": number["sid"]}).json()
    assert [n["e164"] for n in by_sid["hits"]] == [MOBILE]
    assert api.get("/api/numbers", params={"contains": "2345"}).json()["total"] == 1
    ordered = api.get("/api/numbers", params={"sort": "e164", "order": "asc"}).json()
    assert [n["e164"] for n in ordered["hits"]] == [ROUTED, MOBILE]
    assert api.get("/api/numbers", params={"class": "gold"}).json()["total"] == 0
    assert api.get("/api/numbers", params={"detached": "true"}).json()["total"] == 0

    # Detached: no longer answered, and told.
    detached = api.delete(f"/api/numbers/{MOBILE}/scenario")
    assert detached.status_code == 200, detached.text
    gone = hook(web, "v2.number.unassigned", {"e164": MOBILE})
    assert gone["payload"]["scenario"]["sid"] == sid
    missing = api.get(f"/api/numbers/{MOBILE}")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "number"

    # The seed's update attaches too; a route's number is changed in the config, not here.
    patched = api.patch(f"/api/numbers/{MOBILE}", json={"scenario": sid})
    assert patched.status_code == 200, patched.text
    assert api.get(f"/api/numbers/{MOBILE}").json()["scenario"]["sid"] == sid
    refused = api.delete(f"/api/numbers/{ROUTED}/scenario")
    assert refused.status_code == 409 and "routes" in refused.json()["error"]["message"]


def test_a_reload_assigns_and_unassigns_route_numbers(server: ServerProcess, web: WebPeer) -> None:
    added = "+33145678901"
    config = server.data_dir / "config.yaml"
    before = config.read_text()
    config.write_text(before.replace("routes:\n", f'routes:\n  "{added}": echo\n', 1))
    try:
        reload(server, "reloaded")
        assigned = hook(web, "v2.number.assigned", {"e164": added})
        assert assigned["payload"]["origin"] == "config"
        assert assigned["payload"]["scenario"]["name"] == "echo"
    finally:
        config.write_text(before)
        reload(server, "reloaded")
    gone = hook(web, "v2.number.unassigned", {"e164": added})
    assert gone["payload"]["route"] == "echo"


def test_what_a_carrier_account_does_is_not_applicable(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/numbers/store/countries"),
        ("GET", "/api/numbers/store/types?country=FR"),
        ("GET", "/api/numbers/store/prefixes"),
        ("POST", "/api/numbers/store?country=FR&type=mobile"),
        ("POST", "/api/numbers/store/" + "t" * 40),
        ("GET", "/api/numbers/store/" + "t" * 40),
        ("DELETE", "/api/numbers/store/" + "t" * 40),
        ("DELETE", f"/api/numbers/{ROUTED}"),
        ("PUT", f"/api/numbers/{ROUTED}/enduser/abcd1234"),
    ]:
        answer = api.request(method, path)
        assert answer.status_code == 501, (method, path, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "not_applicable", (method, path)
        assert "self-hosted" in error["message"]
    enduser = api.patch(f"/api/numbers/{ROUTED}", json={"enduser": "abcd1234"})
    assert enduser.status_code == 501
    bad = api.get("/api/numbers/0033199001234")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "number"


# -- SMS -----------------------------------------------------------------------------------------


def test_an_sms_reaches_a_registered_phone_and_is_delivered(
    server: ServerProcess, api: httpx.Client, web: WebPeer
) -> None:
    text = "Hello world! Café at 5 €"
    with SipProbe(server.sip_port) as phone:
        register(phone, PHONE, PASSWORD)
        # The seed's way: to, from in the query, the text in the body.
        sent = api.post("/api/sms", params={"to": PHONE, "from": "MyCompany"}, json={"text": text})
        assert sent.status_code == 201, sent.text
        sms = sent.json()
        assert (sms["status"], sms["direction"], sms["to"], sms["from"]) == (
            "created", "outbound", PHONE, "MyCompany",
        )  # fmt: skip
        assert (sms["encoding"], sms["parts"], sms["trafficType"]) == ("gsm", 1, "marketing")
        raw = phone.recv_request(timeout=10)
        assert raw is not None, "no MESSAGE reached the phone"
        got = parse_request(raw)
        assert got["request-line"].startswith(f"MESSAGE sip:probe@127.0.0.1:{phone.port}")
        assert got["from"].startswith("<sip:MyCompany@")
        assert got["content-type"].startswith("text/plain")
        assert got["body"] == text
        answer(phone, got, 200, "OK")
    done = wait_status(api, sms["sid"], "delivered")
    assert [h["status"] for h in done["statusHistory"]] == [
        "created", "pending", "sent", "delivered",
    ]  # fmt: skip
    assert done["sipStatus"] == 200 and done["error"] is None
    assert done["sent"] is not None and done["delivered"] is not None
    assert done["body"] == {"text": text}
    hook(web, "v2.sms.outbound.updated", {"sid": sms["sid"], "status": "delivered"})
    told = [p["status"] for p in hooks(web, "v2.sms.outbound.updated", sms["sid"])]
    assert told == ["created", "pending", "sent", "delivered"]  # each change, in order

    found = api.get("/api/sms", params={"direction": "outbound", "contains": "Café"}).json()
    assert [s["sid"] for s in found["hits"]] == [sms["sid"]]


def test_an_sms_the_phone_refuses_fails(
    server: ServerProcess, api: httpx.Client, web: WebPeer
) -> None:
    with SipProbe(server.sip_port) as phone:
        register(phone, PHONE, PASSWORD)
        sent = api.post("/api/sms", json={"to": PHONE, "text": "Ünïcode ✓ refused"})
        assert sent.status_code == 201, sent.text
        sms = sent.json()
        assert (sms["encoding"], sms["from"]) == ("unicode", "SMS")
        raw = phone.recv_request(timeout=10)
        assert raw is not None, "no MESSAGE reached the phone"
        answer(phone, parse_request(raw), 488, "Not Acceptable Here")
    failed = wait_status(api, sms["sid"], "failed")
    assert failed["sipStatus"] == 488 and "488" in failed["error"]
    assert failed["delivered"] is None
    hook(web, "v2.sms.outbound.updated", {"sid": sms["sid"], "status": "failed"})
    assert api.get("/api/sms", params={"status": "failed"}).json()["total"] >= 1


def wait_registered(server: ServerProcess, user: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(
            r.get("user") == user and r.get("status") == 200 for r in server.log_records("register")
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"{user} never registered")


@pytest.mark.parametrize(
    ("answer", "reason", "status"),
    [
        (200, "OK", "delivered"),
        (404, "Not Found", "failed"),
        (488, "Not Acceptable Here", "failed"),
    ],
)
def test_an_sms_to_a_sipp_phone_takes_the_status_of_its_answer(
    server: ServerProcess,
    api: httpx.Client,
    web: WebPeer,
    answer: int,
    reason: str,
    status: str,
    tmp_path: Path,
) -> None:
    user = f"+1555123{answer:04d}"  # a user of its own: no other registration mixes in
    answering = tmp_path / "answer.xml"
    answering.write_text(OOC_REFUSE.format(answer=answer, reason=reason))
    with SippBackground(
        server.target,
        scenario="uac_register_then_wait",
        service=user,
        calls=1,
        duration_ms=8000,
        extra=["-ap", PASSWORD, "-oocsf", str(answering)],
        timeout=30,
    ) as phone:
        wait_registered(server, user)
        text = f"Answer me {answer}"
        sent = api.post("/api/sms", json={"to": user, "from": "+33199001234", "text": text})
        assert sent.status_code == 201, sent.text
        sid = sent.json()["sid"]
        final = wait_status(api, sid, status)
        result = phone.wait(timeout=30)
    assert final["sipStatus"] == answer
    assert final["error"] is None if answer == 200 else str(answer) in final["error"]
    # What the phone received: the MESSAGE, from the sender, with the text.
    assert f"MESSAGE sip:{user}@127.0.0.1:{phone.local_port}" in result.messages, result.describe()
    assert "From: <sip:+33199001234@" in result.messages
    assert text in result.messages
    hook(web, "v2.sms.outbound.updated", {"sid": sid, "status": status})


def test_an_sms_nobody_can_take_is_an_error(api: httpx.Client) -> None:
    # Not a user here, and no trunk to reach a number through.
    sent = api.post("/api/sms", json={"to": "+4915112345678", "text": "anyone?"})
    assert sent.status_code == 201, sent.text
    sms = wait_status(api, sent.json()["sid"], "error")
    assert "trunk" in sms["error"] and sms["sipStatus"] is None


def test_an_inbound_message_is_an_sms(
    server: ServerProcess, api: httpx.Client, web: WebPeer
) -> None:
    sid = api.get("/api/scenarios", params={"name": "sms-in"}).json()["hits"][0]["sid"]
    assert api.put(f"/api/numbers/{MOBILE}/scenario/{sid}").status_code == 200
    with SipProbe(server.sip_port) as probe:
        headers = ["Content-Type: text/plain;charset=utf-8"]
        probe.send(probe.build("MESSAGE", user=MOBILE, headers=headers, body="ping from sipland"))
        assert probe.expect_final().status == 200
    received = hook(web, "v2.sms.inbound.received", {"to": MOBILE})
    payload = received["payload"]
    assert (payload["from"], payload["body"], payload["direction"], payload["status"]) == (
        "probe", {"text": "ping from sipland"}, "inbound", "delivered",
    )  # fmt: skip
    listed = api.get("/api/sms", params={"direction": "inbound", "to": MOBILE}).json()
    assert [s["sid"] for s in listed["hits"]] == [payload["sid"]]
    assert api.get(f"/api/sms/{payload['sid']}").json()["body"]["text"] == "ping from sipland"
    # The scenario's inbound-sms branch ran with the SMS's sid.
    deadline = time.monotonic() + 10
    while not server.scenario_logs("sms-in:") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.scenario_logs("sms-in:") == [f"sms-in: {payload['sid']} ping from sipland"]


@pytest.mark.parametrize(
    ("query", "body", "field"),
    [
        ({"to": "0639984242"}, {"text": "hi"}, "to"),
        ({}, {"text": "hi"}, "to"),
        ({"to": MOBILE}, {"text": ""}, "text"),
        ({"to": MOBILE}, {}, "text"),
        ({"to": MOBILE}, {"text": "x" * 3201}, "text"),
        ({"to": MOBILE, "from": "TwelveLetter"}, {"text": "hi"}, "from"),
        ({"to": MOBILE, "encoding": "gsm"}, {"text": "snow ☃"}, "encoding"),
        ({"to": MOBILE}, {"text": "hi", "to": PHONE}, "to"),
        ({"to": MOBILE}, {"text": "hi", "colour": "red"}, "colour"),
    ],
)
def test_bad_sms_input_names_the_field(
    api: httpx.Client, query: dict[str, str], body: dict[str, str], field: str
) -> None:
    answer = api.post("/api/sms", params=query, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field, answer.text


def test_unknown_sms_is_404(api: httpx.Client) -> None:
    answer = api.get("/api/sms/zzzz9999")
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "sid"
    assert api.get("/api/sms/not-a-sid").status_code == 422


def test_sms_survive_a_restart(tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    users = f'users:\n  - username: "{PHONE}"\n    password: {PASSWORD}\n'
    first = start_server(tmp_path, routes={"echo": "echo"}, extra_config=users)
    try:
        with httpx.Client(base_url=first.api_url, headers=headers, timeout=10) as api:
            sid = api.post("/api/sms", json={"to": MOBILE, "text": "kept"}).json()["sid"]
            wait_status(api, sid, "error")
            # A MESSAGE the phone never answers is still on its way when the server stops.
            with SipProbe(first.sip_port) as phone:
                register(phone, PHONE, PASSWORD)
                waiting = api.post("/api/sms", json={"to": PHONE, "text": "unanswered"})
                assert phone.recv_request(timeout=10) is not None
                wait_status(api, waiting.json()["sid"], "sent")
                assert first.stop() == 0
    finally:
        first.stop()
    second = start_server(tmp_path, routes={"echo": "echo"}, extra_config=users)
    try:
        with httpx.Client(base_url=second.api_url, headers=headers, timeout=10) as api:
            sms = api.get(f"/api/sms/{sid}").json()
            assert (sms["status"], sms["body"]["text"]) == ("error", "kept")
            stopped = api.get(f"/api/sms/{waiting.json()['sid']}").json()
            assert stopped["status"] == "expired", stopped
            assert "stopped" in stopped["error"]
            assert [h["status"] for h in stopped["statusHistory"]][-2:] == ["sent", "expired"]
    finally:
        assert second.stop() == 0
