"""Session timers and re-INVITE glare through a running server (RFC 4028 10, RFC 3261 14).

A :class:`~mediaserver.server.Server` runs in this process so the session timer's
intervals can be shortened (RFC 4028 allows no Session-Expires under 90 s on the
wire; here the refresh comes after 0.3 s and the expiry after 0.5 s). A raw UDP
caller then plays both roles of the session core's rules:

- refreshee: the caller refreshes, then stops; the server ends the call with a BYE
  whose Reason says why;
- refresher: the server sends a refresh re-INVITE; the caller's own re-INVITE crossing
  it gets 491, the caller's 491 to the server's makes it retry after the random wait
  of RFC 3261 14.1, and the retry is answered and acknowledged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from mediaserver.config import load_config, with_overrides
from mediaserver.server import Server
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.timers import TimerConfig
from tests.support.net import free_port_block
from tests.support.rawsip import Reply, SipProbe, sdp_offer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMERS = TimerConfig(t1=0.05, t2=0.4, t4=0.25)

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
  "*": echo
"""


@pytest_asyncio.fixture
async def sip_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    monkeypatch.setattr(SessionTimer, "refresh_after", property(lambda _: 0.3))
    monkeypatch.setattr(SessionTimer, "expire_after", property(lambda _: 0.5))
    low = free_port_block(10, "udp", even=True)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        CONFIG.format(low=low, high=low + 9, scenarios=REPO / "configs" / "scenarios")
    )
    server = Server(with_overrides(load_config(config_path), data_dir=tmp_path / "data"),
                    timers=TIMERS)  # fmt: skip
    await server.start()
    try:
        yield server.endpoint.bound[0].port
    finally:
        await server.shutdown(0.0)


def establish(probe: SipProbe, session_expires: str) -> Reply:
    headers = [f"Session-Expires: {session_expires}", "Supported: timer"]
    probe.send(probe.build("INVITE", body=sdp_offer(), headers=headers))
    ok = probe.expect_final()
    assert ok.status == 200, ok.reason
    probe.send(probe.build("ACK", call_id=ok.header("call-id"), to_tag=ok.to_tag))
    return ok


def header(raw: bytes, name: str) -> str:
    m = re.search(rf"(?im)^{name}\s*:\s*(.*?)\r$", raw.decode(errors="replace"))
    assert m is not None, f"no {name} in {raw!r}"
    return m.group(1)


def respond(probe: SipProbe, raw: bytes, status: int, reason: str) -> None:
    """Answer a request the server sent, echoing what RFC 3261 8.2.6.2 says."""
    copied = [f"{name}: {header(raw, name)}" for name in ("Via", "From", "To", "Call-ID", "CSeq")]
    lines = [f"SIP/2.0 {status} {reason}", *copied,
             f"Contact: <sip:probe@127.0.0.1:{probe.port}>", "Content-Length: 0"]  # fmt: skip
    probe.send("\r\n".join(lines) + "\r\n\r\n")


def next_request(probe: SipProbe, method: str, timeout: float) -> bytes:
    """The next request the server sends, skipping the ACKs of its failed INVITEs."""
    while (raw := probe.recv_request(timeout)) is not None and method != "ACK":
        if not raw.startswith(b"ACK "):
            break
    assert raw is not None, f"no {method} from the server"
    assert raw.startswith(method.encode()), raw[:60]
    return raw


def refreshee(port: int) -> bytes:
    with SipProbe(port) as probe:
        ok = establish(probe, "1800;refresher=uac")
        call_id, tag = ok.header("call-id"), ok.to_tag
        probe.send(probe.build("UPDATE", call_id=call_id, to_tag=tag, cseq=2))
        assert probe.expect_final().status == 200  # refreshed; then no more refreshes
        bye = next_request(probe, "BYE", 3.0)
        respond(probe, bye, 200, "OK")
        return bye


async def test_the_server_hangs_up_a_session_nobody_refreshes(sip_port: int) -> None:
    bye = await asyncio.to_thread(refreshee, sip_port)
    assert 'text="session_expired"' in header(bye, "Reason")


def refresher(port: int) -> list[int]:
    with SipProbe(port) as probe:
        ok = establish(probe, "1800;refresher=uas")
        call_id, tag = ok.header("call-id"), ok.to_tag
        first = next_request(probe, "INVITE", 3.0)  # the server's refresh
        # Ours crosses it: RFC 3261 14.2, the server answers 491.
        ours = probe.build("INVITE", call_id=call_id, to_tag=tag, cseq=2, body=sdp_offer())
        probe.send(ours)
        glare = probe.expect_final()
        probe.ack(ours, glare)
        respond(probe, first, 491, "Request Pending")  # and we refuse theirs
        retry = next_request(probe, "INVITE", 4.0)  # RFC 3261 14.1: 0-2 s later
        respond(probe, retry, 200, "OK")
        ack = next_request(probe, "ACK", 3.0)
        probe.send(probe.build("BYE", call_id=call_id, to_tag=tag, cseq=3))
        assert probe.expect_final().status == 200
        cseqs = [int(header(raw, "CSeq").split()[0]) for raw in (first, retry, ack)]
        return [glare.status, *cseqs]


async def test_refresh_glare_gets_491_both_ways_and_the_refresh_is_retried(sip_port: int) -> None:
    glare, first, retry, ack = await asyncio.to_thread(refresher, sip_port)
    assert glare == 491
    assert retry > first and ack == retry
