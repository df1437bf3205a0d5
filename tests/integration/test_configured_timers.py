"""The SIP timers a server is built with pace its calls, not just its transactions.

A :class:`~mediaserver.server.Server` runs in this process with T1 shortened to 20 ms
(the only way timers are configured today), and a raw UDP caller requires 100rel
and never sends PRACK. RFC 3262 3: the reliable 180 is resent from T1 on, doubling,
and after 64*T1 (1.28 s here) the INVITE is refused with a 5xx. Before the session
core took the configured timers, inbound calls read T1 from a default TimerConfig:
the 180 came back after 500 ms and the 5xx after 32 s, so the scenario (ringing for
4 s, then answering) answered first.

The same clock paces our 2xx to an INVITE until its ACK (RFC 3261 13.3.1.4):
resent from T1 on, doubling up to T2, and with no ACK within 64*T1 the call
is ended with BYE; a re-INVITE's 2xx is resent the same way.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from mediaserver.config import load_config, with_overrides
from mediaserver.server import Server
from mediaserver.sip.timers import TimerConfig
from tests.support.net import free_port_block
from tests.support.rawsip import Reply, SipProbe, sdp_offer

pytestmark = pytest.mark.integration

TIMERS = TimerConfig(t1=0.02, t2=0.16, t4=0.1)

CONFIG = """\
sip:
  listen: ["udp:127.0.0.1:0"]
  trusted_networks: ["127.0.0.0/8"]
rtp:
  ports: {low}-{high}
http:
  listen: 127.0.0.1:0
scenarios_dir: {scenarios}
routes:
  "*": {route}
"""

SLOW_RING = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
        params: {ring: 4}
      - action: echo@v1
"""


def unpracked_call(port: int) -> list[Reply]:
    """INVITE requiring 100rel, no PRACK: every response until the final one."""
    with SipProbe(port) as probe:
        probe.send(probe.build("INVITE", user="anyone", body=sdp_offer(),
                               headers=["Require: 100rel", "Supported: 100rel"]))  # fmt: skip
        replies: list[Reply] = []
        while (reply := probe.recv(6.0)) is not None:
            replies.append(reply)
            if reply.status >= 200:
                if reply.status < 300:  # the bug: answered; end the call cleanly
                    to_tag = reply.to_tag
                    call_id = reply.header("call-id")
                    probe.send(probe.build("ACK", user="anyone", call_id=call_id, to_tag=to_tag))
                    probe.send(probe.build("BYE", user="anyone", call_id=call_id, to_tag=to_tag,
                                           cseq=2))  # fmt: skip
                break
        return replies


async def test_unpracked_reliable_180_follows_the_configured_t1(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "slow-ring.yaml").write_text(SLOW_RING)
    low = free_port_block(10, "udp", even=True)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        CONFIG.format(low=low, high=low + 9, scenarios=scenarios, route="slow-ring")
    )
    config = with_overrides(load_config(config_path), data_dir=tmp_path / "data")
    server = Server(config, timers=TIMERS)
    await server.start()
    try:
        replies = await asyncio.to_thread(unpracked_call, server.endpoint.bound[0].port)
    finally:
        await server.shutdown(0.0)
    ringing = [r for r in replies if r.status == 180]
    assert replies and replies[-1].status == 504, [r.status for r in replies]
    # Sent at 0, then resent at T1, 3*T1, 7*T1 ... 63*T1 before 64*T1: six times.
    assert len(ringing) >= 5
    assert {r.header("rseq") for r in ringing} == {ringing[0].header("rseq")}


ANSWER = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: echo@v1
"""


async def answering_server(tmp_path: Path) -> Server:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "answer.yaml").write_text(ANSWER)
    low = free_port_block(10, "udp", even=True)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        CONFIG.format(low=low, high=low + 9, scenarios=scenarios, route="answer")
    )
    config = with_overrides(load_config(config_path), data_dir=tmp_path / "data")
    server = Server(config, timers=TIMERS)
    await server.start()
    return server


def oks_until_bye(probe: SipProbe, call_id: str, cseq: int, wait: float) -> tuple[int, bool]:
    """How many 200s to CSeq ``cseq`` of ``call_id`` came, and whether a BYE came,
    within ``wait`` seconds (stopping at the BYE)."""
    oks = 0
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if any(request.startswith(b"BYE ") for request in probe.requests):
            return oks, True
        reply = probe.recv(min(0.2, max(0.01, deadline - time.monotonic())))
        if (
            reply is not None
            and reply.status == 200
            and reply.header("call-id") == call_id
            and (reply.header("cseq") or "").split()[0] == str(cseq)
        ):
            oks += 1
    return oks, any(request.startswith(b"BYE ") for request in probe.requests)


def unacknowledged_answer(port: int) -> tuple[int, bool]:
    """INVITE, then never ACK the 200: the 200s seen, and whether a BYE came."""
    with SipProbe(port) as probe:
        invite = probe.build("INVITE", user="anyone", body=sdp_offer())
        call_id = re.search(r"Call-ID: (\S+)", invite)
        assert call_id is not None
        probe.send(invite)
        return oks_until_bye(probe, call_id.group(1), 1, 10.0)


async def test_an_unacknowledged_200_is_resent_then_the_call_is_hung_up(tmp_path: Path) -> None:
    server = await answering_server(tmp_path)
    try:
        oks, bye = await asyncio.to_thread(unacknowledged_answer, server.endpoint.bound[0].port)
    finally:
        await server.shutdown(0.0)
    # Sent at 0, resent at T1, 3*T1, 7*T1, then every T2 until 64*T1 (1.28 s here).
    assert oks >= 4, oks
    assert bye, "no BYE after 64*T1 without an ACK (RFC 3261 13.3.1.4)"


def unacknowledged_reinvite(port: int) -> int:
    """A call ACKed, then a re-INVITE whose 200 is never ACKed: its 200s seen in 1 s."""
    with SipProbe(port) as probe:
        invite = probe.build("INVITE", user="anyone", body=sdp_offer())
        found = re.search(r"Call-ID: (\S+)", invite)
        assert found is not None
        call_id = found.group(1)
        probe.send(invite)
        ok = probe.final_for(call_id)
        assert ok.status == 200, ok.status
        probe.send(probe.build("ACK", user="anyone", call_id=call_id, to_tag=ok.to_tag))
        reinvite = probe.build(
            "INVITE", user="anyone", body=sdp_offer(), call_id=call_id, to_tag=ok.to_tag, cseq=2
        )
        probe.send(reinvite)
        oks, _ = oks_until_bye(probe, call_id, 2, 1.0)
        probe.send(probe.build("ACK", user="anyone", call_id=call_id, to_tag=ok.to_tag, cseq=2))
        probe.send(probe.build("BYE", user="anyone", call_id=call_id, to_tag=ok.to_tag, cseq=3))
        return oks


async def test_a_reinvite_200_is_resent_until_acknowledged(tmp_path: Path) -> None:
    server = await answering_server(tmp_path)
    try:
        oks = await asyncio.to_thread(unacknowledged_reinvite, server.endpoint.bound[0].port)
    finally:
        await server.shutdown(0.0)
    # Sent at 0, resent at T1, 3*T1, 7*T1 and then every T2 (0.16 s) within 1 s.
    assert oks >= 4, oks
