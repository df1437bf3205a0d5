"""A flood of INVITEs from one untrusted address (Kamailio pike style flood control).

The server trusts no network and knows one user. One socket on 127.0.0.1
sends 2,000 INVITEs as fast as it can; each one is refused (a 407 challenge
within the source's burst, then one stateless 503, then nothing once the
source is blocked). The server's own count of responses sent shows that a
refused INVITE costs at most one response on average, retransmissions
included; another caller on 127.0.0.3, authenticated, still gets through to
its scenario (which refuses it as busy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.rawsip import Reply, SipProbe, digest_authorization, sdp_offer

pytestmark = pytest.mark.integration

TEST_SCENARIOS = Path(__file__).parent / "scenarios"  # reject.yaml

FLOOD = 2000
CONFIG = """\
users:
  - {username: alice, password: wonderland}
limits:
  per_source: {rate: 20, burst: 60}
  block_after: 20
  block_seconds: 30
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("flood"), routes={"reject": "reject"},
                        scenarios=TEST_SCENARIOS, trusted=[], extra_config=CONFIG,
                        log_level="info")  # fmt: skip
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


def metrics(server: ServerProcess) -> dict[str, float]:
    """Every sample of the scrape, by series name with its labels."""
    out = {}
    for line in httpx.get(f"{server.api_url}/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def final_with_retransmissions(probe: SipProbe, message: str, call_id: str) -> Reply:
    """Send like a real UA over UDP (RFC 3261 17.1.1.2, Timer A from 0.5 s): the
    first copy may be lost while the server's socket is full of the flood."""
    interval = 0.5
    for _ in range(6):
        probe.send(message)
        deadline = time.monotonic() + interval
        while (reply := probe.recv(max(0.0, deadline - time.monotonic()))) is not None:
            if reply.status >= 200 and reply.header("call-id") == call_id:
                return reply
        interval *= 2
    raise AssertionError(f"no final response for {call_id}")


def responses_sent(sample: dict[str, float]) -> float:
    prefix = 'mediaserver_sip_responses_total{direction="out"'
    return sum(v for k, v in sample.items() if k.startswith(prefix))


def test_a_flood_costs_at_most_one_response_per_invite_and_others_get_through(
    server: ServerProcess,
) -> None:
    before = metrics(server)
    with SipProbe(server.sip_port) as flooder:
        for n in range(FLOOD):
            flooder.send(flooder.build("INVITE", user="reject", body=sdp_offer()))
            if n % 50 == 49:
                time.sleep(0.01)  # about 5,000 a second: faster than the reported 3,000
        with SipProbe(server.sip_port, bind="127.0.0.3") as caller:
            message = caller.build("INVITE", user="reject", body=sdp_offer(), call_id="legit-1")
            challenge = final_with_retransmissions(caller, message, "legit-1")
            caller.ack(message, challenge)
            assert challenge.status == 407
            uri = f"sip:reject@127.0.0.1:{server.sip_port}"
            credentials = digest_authorization(challenge.header("proxy-authenticate") or "",
                                               "alice", "wonderland", "INVITE", uri)  # fmt: skip
            answer = [f"Proxy-Authorization: {credentials}"]
            message = caller.build("INVITE", user="reject", body=sdp_offer(), call_id="legit-1",
                                   cseq=2, headers=answer)  # fmt: skip
            final = final_with_retransmissions(caller, message, "legit-1")
            caller.ack(message, final)
            assert final.status == 486  # through admission and routing, refused by its scenario
        time.sleep(3.0)  # the first retransmissions of the 407s the flood got (T1 0.5 s)
    after = metrics(server)
    invites = 'mediaserver_sip_requests_total{direction="in",method="INVITE"}'
    received = after[invites] - before.get(invites, 0) - 2  # the other caller's two
    legit = 4  # 100 and 407, 100 and 486 for the other caller
    assert responses_sent(after) - responses_sent(before) - legit <= received
    assert received > FLOOD / 4  # much of the flood reached the server, not the kernel's bin
    events = {name: after[name] - before.get(name, 0) for name in after if "sip_events" in name}
    # block_after refusals in a row (more when a token came back in between)
    assert events['mediaserver_sip_events_total{event="refused_rate_source"}'] >= 20
    assert events['mediaserver_sip_events_total{event="sources_blocked"}'] == 1
    dropped = events['mediaserver_sip_events_total{event="dropped_blocked_source"}']
    assert dropped > received / 2  # past the burst and block_after refusals: silence
    assert server.log_records("blocking a flooding source")[0]["peer"] == "127.0.0.1"
