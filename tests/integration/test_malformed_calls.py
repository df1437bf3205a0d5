"""Malformed headers in calls and registrations: 400 naming the header, or ignored;
never a 500, never an RTP port kept.

The server has a tiny RTP range (five calls) and a route to a scenario that
refuses the call at once, so a call that gets through set-up ends at once
and must give its ports back. After 200 malformed INVITEs every port of the
range must be free again (the test binds each one itself) and a normal call
must still work.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediaserver.calls import Call
from mediaserver.config import load_config, with_overrides
from mediaserver.server import Server
from tests.integration.conftest import ServerProcess, start_server
from tests.support.net import free_port_block, is_free
from tests.support.rawsip import SipProbe, sdp_offer
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

TEST_SCENARIOS = Path(__file__).parent / "scenarios"  # reject.yaml, echo.yaml

RTP_PORTS = 10  # five calls: RTP on even ports, RTCP on the odd one above
USERS = """\
users:
  - {username: alice, password: wonderland}
"""


@pytest.fixture(scope="module")
def rtp_low() -> int:
    return free_port_block(RTP_PORTS, "udp", even=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, rtp_low: int) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("malformed-calls"),
        routes={"reject": "reject", "echo": "echo"},
        scenarios=TEST_SCENARIOS,
        rtp_range=(rtp_low, rtp_low + RTP_PORTS - 1),
        extra_config=USERS,
    )
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


@pytest.fixture
def probe(server: ServerProcess) -> Iterator[SipProbe]:
    with SipProbe(server.sip_port) as p:
        yield p


def invite(probe: SipProbe, *, contact: str | None = None, headers: list[str] | None = None,
           body: str | None = None, user: str = "reject") -> tuple[str, str]:  # fmt: skip
    """An INVITE (its text and Call-ID), its Contact replaced when given."""
    message = probe.build("INVITE", user=user, headers=headers, body=body or sdp_offer())
    if contact is not None:
        message = re.sub(r"(?m)^Contact: .*$", lambda _: f"Contact: {contact}", message, count=1)
    call_id = re.search(r"(?m)^Call-ID: (\S+)", message)
    assert call_id
    return message, call_id.group(1)


SESSION_PTIME_ZERO = sdp_offer().replace("t=0 0\r\n", "t=0 0\r\na=ptime:0\r\n")

# (what, INVITE keywords, the 400's reason must contain)
BAD_INVITES = [
    ("contact-star", {"contact": "*"}, "Bad Contact header"),
    ("contact-garbage", {"contact": "garbage"}, "Bad Contact header"),
    ("contact-port-0", {"contact": "<sip:x@127.0.0.1:0>"}, "Bad Contact header"),
    ("require-unterminated", {"headers": ['Require: "foo']}, "Bad Require header"),
    ("session-ptime-0", {"body": SESSION_PTIME_ZERO}, "a=ptime:0"),
]


@pytest.mark.parametrize(("what", "change", "named"), BAD_INVITES, ids=[c[0] for c in BAD_INVITES])
def test_a_malformed_header_the_call_needs_gets_400_naming_it(
    probe: SipProbe, what: str, change: dict[str, object], named: str
) -> None:
    message, call_id = invite(probe, **change)  # type: ignore[arg-type]
    probe.send(message)
    reply = probe.final_for(call_id)
    probe.ack(message, reply)
    assert reply.status == 400, (what, reply.status, reply.reason)
    assert named in reply.reason


def test_require_unterminated_on_any_request_is_400(probe: SipProbe) -> None:
    probe.send(probe.build("OPTIONS", headers=['Require: "foo']))
    reply = probe.expect_final()
    assert (reply.status, reply.reason[:18]) == (400, "Bad Require header")


def test_a_malformed_header_the_call_can_do_without_is_ignored(probe: SipProbe) -> None:
    """Allow (which methods the caller takes) and Accept are not needed: the call
    goes on to its scenario, which refuses it as busy."""
    for header in ('Allow: "INVITE, ACK', 'Supported: "timer', 'Accept: "application/sdp'):
        message, call_id = invite(probe, headers=[header])
        probe.send(message)
        reply = probe.final_for(call_id)
        probe.ack(message, reply)
        assert reply.status == 486, (header, reply.status, reply.reason)


def test_register_with_an_unterminated_contact_is_400(probe: SipProbe) -> None:
    """A REGISTER's Contact is what it is for: malformed, the request gets a 400 naming
    it before any challenge (it used to get 401, then a 500 once authenticated)."""
    bad_contact = ['Contact: "unterminated <sip:alice@127.0.0.1:5555>']
    first = probe.build("REGISTER", user="alice", headers=bad_contact, call_id="reg-bad", cseq=1)
    first = re.sub(r"(?m)^Contact: <sip:probe.*\r\n", "", first)
    probe.send(first)
    reply = probe.expect_final()
    assert (reply.status, reply.reason[:18]) == (400, "Bad Contact header")


def test_malformed_invites_leave_every_rtp_port_free(
    probe: SipProbe, server: ServerProcess, rtp_low: int, tmp_path: Path
) -> None:
    """200 INVITEs from a trusted source, each with a malformed header: some
    refused with 400 before set-up, the others (a malformed Allow) set up and
    refused by the scenario. No 500, and afterwards every RTP port is free."""
    variants = [{"headers": ['Allow: "INVITE, ACK']}, *(change for _, change, _ in BAD_INVITES)]
    statuses = set()
    for n in range(200):
        message, call_id = invite(probe, **variants[n % len(variants)])  # type: ignore[arg-type]
        probe.send(message)
        reply = probe.final_for(call_id)
        probe.ack(message, reply)
        statuses.add(reply.status)
    assert statuses == {400, 486}
    ports = range(rtp_low, rtp_low + RTP_PORTS)
    deadline = time.monotonic() + 5.0  # the last call ends just after its final response
    while (held := [port for port in ports if not is_free(port)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held == []
    result = run_sipp(server.target, scenario="uac", service="echo", calls=2, timeout=30,
                      workdir=tmp_path)  # fmt: skip
    result.assert_ok(calls=2)


def test_no_internal_error_was_logged(server: ServerProcess) -> None:
    """Runs after the cases above on the same server."""
    assert "Traceback" not in server.log_text()
    metrics = httpx.get(f"{server.api_url}/metrics").text
    assert 'event="internal_errors"' not in metrics


@pytest.mark.asyncio
async def test_a_bug_after_the_ports_were_taken_gives_them_back(tmp_path: Path) -> None:
    """Whatever fails once a call holds its RTP leg (here the scenario runner itself
    raises), the leg's ports come back, the caller gets 500 and the error is counted."""
    low = free_port_block(RTP_PORTS, "udp", even=True)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        'sip: {listen: ["udp:127.0.0.1:0"], trusted_networks: ["127.0.0.0/8"]}\n'
        f"rtp: {{ports: {low}-{low + RTP_PORTS - 1}}}\n"
        "http: {listen: 127.0.0.1:0}\n"
        f"scenarios_dir: {Path(__file__).parent / 'scenarios'}\n"
        "routes: {echo: echo}\n"
    )
    server = Server(with_overrides(load_config(config_path), data_dir=tmp_path / "data"))
    await server.start()

    async def broken(call: Call) -> None:
        raise RuntimeError("a bug in the runner")

    server.switch.serve_call = broken
    try:
        with SipProbe(server.endpoint.bound[0].port) as probe:
            for _ in range(12):  # more calls than the range holds
                message, call_id = invite(probe, user="echo")
                probe.send(message)
                reply = await asyncio.to_thread(probe.final_for, call_id)
                probe.ack(message, reply)
                assert reply.status == 500
        assert server.ports.in_use == 0
        assert server.endpoint.stats["internal_errors"] == 12
        assert server.switch.calls == {}
    finally:
        await server.shutdown(0.0)
