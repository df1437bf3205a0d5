"""The SIP timers a server is built with pace its calls, not just its transactions.

A :class:`~mediaserver.server.Server` runs in this process with T1 shortened to 20 ms
(the only way timers are configured today), and a raw UDP caller requires 100rel
and never sends PRACK. RFC 3262 3: the reliable 180 is resent from T1 on, doubling,
and after 64*T1 (1.28 s here) the INVITE is refused with a 5xx. Before the session
core took the configured timers, inbound calls read T1 from a default TimerConfig:
the 180 came back after 500 ms and the 5xx after 32 s, so the scenario (ringing for
4 s, then answering) answered first.
"""

from __future__ import annotations

import asyncio
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
  "*": slow-ring
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
    config_path.write_text(CONFIG.format(low=low, high=low + 9, scenarios=scenarios))
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
