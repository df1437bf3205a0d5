"""Calls refused before a scenario runs: an info line, a count by reason, a record.

The server trusts 127.0.0.2 and knows one user. From the trusted address,
INVITEs with no route (404), no common codec (488) or a bad Contact (400)
are refused: each is logged, counted in ``mediaserver_calls_refused_total``
and leaves a call record. From 127.0.0.1 (untrusted), wrong credentials get
403: logged and counted, but no record (anyone could write those). A 407
challenge answered with the right credentials is one normal call: one
record, the scenario's, and nothing counted as refused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.rawsip import Reply, SipProbe, digest_authorization, sdp_offer

pytestmark = pytest.mark.integration

TEST_SCENARIOS = Path(__file__).parent / "scenarios"  # reject.yaml

USERS = """\
users:
  - {username: alice, password: wonderland}
limits:
  per_user: {rate: 0.01, burst: 3}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("refused"), routes={"reject": "reject"},
                        scenarios=TEST_SCENARIOS, trusted=["127.0.0.2/32"],
                        extra_config=USERS)  # fmt: skip
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


def call(probe: SipProbe, call_id: str, *, user: str = "reject", body: str | None = None,
         headers: list[str] | None = None, cseq: int = 1) -> Reply:  # fmt: skip
    message = probe.build("INVITE", user=user, body=body or sdp_offer(), call_id=call_id,
                          headers=headers, cseq=cseq)  # fmt: skip
    probe.send(message)
    reply = probe.final_for(call_id)
    probe.ack(message, reply)
    return reply


def records(server: ServerProcess, call_id: str) -> list[sqlite3.Row]:
    with sqlite3.connect(server.data_dir / "data" / "mediaserver.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM calls WHERE sip_call_id = ?", (call_id,)).fetchall()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Records are written off the call path: poll for them."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def refused_count(server: ServerProcess, reason: str) -> float:
    series = f'mediaserver_calls_refused_total{{direction="inbound",reason="{reason}"}} '
    for line in httpx.get(f"{server.api_url}/metrics").text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return 0


def refusal_logged(server: ServerProcess, call_id: str) -> dict[str, object]:
    def lines() -> list[dict[str, object]]:
        return [r for r in server.log_records("call refused") if r.get("sip_call_id") == call_id]

    wait_for(lambda: bool(lines()))  # written just after the response went out
    found = lines()
    assert len(found) == 1, found
    assert found[0]["level"] == "info"
    return found[0]


@pytest.mark.parametrize(
    ("call_id", "change", "status", "why", "cause_code"),
    [
        ("no-route-1", {"user": "nobody"}, 404, "no_route", 1),
        ("no-codec-1", {"body": sdp_offer(codecs="18")}, 488, "no_codec", 127),
        ("bad-contact-1", {"headers": ["Contact: *"]}, 400, "bad_request", 41),
    ],
)
def test_a_refused_call_is_logged_counted_and_recorded(
    server: ServerProcess, call_id: str, change: dict[str, object], status: int, why: str,
    cause_code: int,
) -> None:  # fmt: skip
    before = refused_count(server, why)
    with SipProbe(server.sip_port, bind="127.0.0.2") as probe:
        if "headers" in change:  # a second Contact: the INVITE's own is replaced below
            message = probe.build("INVITE", user="reject", body=sdp_offer(), call_id=call_id)
            probe.send(message.replace(f"Contact: <sip:probe@127.0.0.1:{probe.port}>",
                                       "Contact: *"))  # fmt: skip
            reply = probe.final_for(call_id)
            probe.ack(message, reply)
        else:
            reply = call(probe, call_id, **change)  # type: ignore[arg-type]
    assert reply.status == status
    line = refusal_logged(server, call_id)
    assert (line["why"], line["status"], line["peer"]) == (why, status, "127.0.0.2")
    assert refused_count(server, why) == before + 1
    wait_for(lambda: bool(records(server, call_id)))
    [record] = records(server, call_id)
    assert (record["direction"], record["status"], record["answered_at"]) == ("inbound", "ended",
                                                                              None)  # fmt: skip
    assert (record["sip_status"], record["hangup_cause"], record["hangup_source"]) == (
        status, why, "server")  # fmt: skip
    assert record["hangup_cause_code"] == cause_code
    assert record["from_number"] == "probe"


def test_a_stranger_is_counted_but_not_recorded_and_a_challenge_is_no_refusal(
    server: ServerProcess,
) -> None:
    forbidden, challenged = (
        refused_count(server, "forbidden"),
        len(server.log_records("call refused")),
    )
    with SipProbe(server.sip_port) as probe:  # 127.0.0.1: not trusted here
        challenge = call(probe, "auth-1")
        assert challenge.status == 407
        assert len(server.log_records("call refused")) == challenged  # a challenge is no refusal
        uri = f"sip:reject@127.0.0.1:{server.sip_port}"
        header = challenge.header("proxy-authenticate") or ""
        wrong = digest_authorization(header, "alice", "guess", "INVITE", uri)
        assert (
            call(probe, "auth-1", cseq=2, headers=[f"Proxy-Authorization: {wrong}"]).status == 403
        )
        right = digest_authorization(header, "alice", "wonderland", "INVITE", uri)
        reply = call(probe, "auth-1", cseq=3, headers=[f"Proxy-Authorization: {right}"])
        assert reply.status == 486  # admitted, routed, refused by its scenario
    assert refused_count(server, "forbidden") == forbidden + 1
    assert refusal_logged(server, "auth-1")["why"] == "forbidden"
    wait_for(lambda: bool(records(server, "auth-1")))
    time.sleep(0.5)  # a record of the 403 or the 407 would be written by now too
    [record] = records(server, "auth-1")  # the scenario's call, nothing for 407 or 403
    assert (record["scenario_name"], record["sip_status"]) == ("reject", 486)


def test_a_user_over_their_rate_gets_503_without_a_record(server: ServerProcess) -> None:
    """limits.per_user is 3 calls at once here (then one per 100 s), whatever the address."""
    before = refused_count(server, "rate_limited")
    uri = f"sip:reject@127.0.0.1:{server.sip_port}"
    statuses = []
    for n in range(4):
        with SipProbe(server.sip_port, bind=f"127.0.1.{n + 1}") as probe:
            call_id = f"user-rate-{n}"
            challenge = call(probe, call_id)
            header = challenge.header("proxy-authenticate") or ""
            right = digest_authorization(header, "alice", "wonderland", "INVITE", uri)
            reply = call(probe, call_id, cseq=2, headers=[f"Proxy-Authorization: {right}"])
            statuses.append(reply.status)
    assert statuses[0] == 486 and statuses[-1] == 503, statuses  # through, then over the rate
    assert refused_count(server, "rate_limited") >= before + 1
    assert refusal_logged(server, "user-rate-3")["why"] == "rate_limited"
    time.sleep(0.5)
    assert records(server, "user-rate-3") == []
