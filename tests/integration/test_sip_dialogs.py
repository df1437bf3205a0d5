"""Requests inside a dialog, from a bare SIP peer with its own RTP socket:
re-INVITE hold and resume (the RTP it receives stops and comes back), UPDATE
session refresh, INFO key presses driving the IVR, session-timer headers."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.rawsip import Reply, SipProbe, sdp_offer

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parents[2] / "configs" / "scenarios"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("dialogs"),
        routes={"echo": "welcome", "ivr": "ivr", "welcome": "welcome"},
        scenarios=SCENARIOS,
    )
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


class Media:
    """The peer's RTP socket: counts what the server sends it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]

    def count(self, seconds: float) -> int:
        received = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.sock.recv(2048)
                received += 1
            except TimeoutError:
                pass
        return received


def offer(port: int, direction: str = "sendrecv", version: int = 1) -> str:
    return sdp_offer(port).replace("o=probe 1 1", f"o=probe 1 {version}") + f"a={direction}\r\n"


def establish(probe: SipProbe, user: str, port: int, headers: list[str] | None = None) -> Reply:
    probe.send(probe.build("INVITE", user=user, body=offer(port), headers=headers))
    ok = probe.expect_final()
    assert ok.status == 200, ok.reason
    probe.send(probe.build("ACK", user=user, call_id=ok.header("call-id"), to_tag=ok.to_tag))
    return ok


def version_of(body: bytes) -> int:
    m = re.search(rb"^o=\S+ \d+ (\d+) ", body, re.M)
    assert m is not None
    return int(m.group(1))


def test_hold_and_resume(server: ServerProcess) -> None:
    media = Media()
    with SipProbe(server.sip_port) as probe:
        ok = establish(probe, "welcome", media.port)
        call_id, tag = ok.header("call-id"), ok.to_tag
        assert media.count(1.0) > 30  # about 50 packets a second while talking

        probe.send(probe.build("INVITE", call_id=call_id, to_tag=tag, cseq=2,
                               body=offer(media.port, "sendonly", 2)))  # fmt: skip
        held = probe.expect_final()
        assert held.status == 200 and b"a=recvonly" in held.body
        assert version_of(held.body) == version_of(ok.body) + 1  # RFC 3264 8: it changed
        probe.send(probe.build("ACK", call_id=call_id, to_tag=tag, cseq=2))
        media.count(0.2)  # let packets in flight arrive
        assert media.count(1.0) == 0, "the server kept sending while on hold"

        probe.send(probe.build("INVITE", call_id=call_id, to_tag=tag, cseq=3,
                               body=offer(media.port, "sendrecv", 3)))  # fmt: skip
        resumed = probe.expect_final()
        assert resumed.status == 200 and b"a=sendrecv" in resumed.body
        probe.send(probe.build("ACK", call_id=call_id, to_tag=tag, cseq=3))
        assert media.count(1.0) > 30, "media did not come back after resuming"

        # A refresh with the same offer keeps the version (nothing changed).
        probe.send(probe.build("INVITE", call_id=call_id, to_tag=tag, cseq=4,
                               body=offer(media.port, "sendrecv", 3)))  # fmt: skip
        again = probe.expect_final()
        assert version_of(again.body) == version_of(resumed.body)
        probe.send(probe.build("ACK", call_id=call_id, to_tag=tag, cseq=4))
        probe.send(probe.build("BYE", call_id=call_id, to_tag=tag, cseq=5))
        assert probe.expect_final().status == 200


def test_update_refreshes_and_unknown_dialogs_get_481(server: ServerProcess) -> None:
    media = Media()
    with SipProbe(server.sip_port) as probe:
        ok = establish(probe, "welcome", media.port)
        call_id, tag = ok.header("call-id"), ok.to_tag
        probe.send(probe.build("UPDATE", call_id=call_id, to_tag=tag, cseq=2))
        assert probe.expect_final().status == 200
        probe.send(probe.build("UPDATE", call_id=call_id, to_tag="nosuchtag", cseq=3))
        assert probe.expect_final().status == 481
        probe.send(probe.build("BYE", call_id=call_id, to_tag=tag, cseq=4))
        assert probe.expect_final().status == 200


def test_info_dtmf_drives_the_ivr(server: ServerProcess) -> None:
    media = Media()
    with SipProbe(server.sip_port) as probe:
        ok = establish(probe, "ivr", media.port)
        call_id, tag = ok.header("call-id"), ok.to_tag
        time.sleep(1.0)
        probe.send(probe.build("INFO", call_id=call_id, to_tag=tag, cseq=2,
                               headers=["Content-Type: application/dtmf-relay"],
                               body="Signal=3\r\nDuration=160\r\n"))  # fmt: skip
        assert probe.expect_final().status == 200
        deadline = time.monotonic() + 10
        chosen = False
        while time.monotonic() < deadline and not chosen:
            chosen = '"ivr: option 3 tone"' in server.log_text()
            time.sleep(0.2)
        assert chosen, "the INFO key did not reach the IVR"
        probe.send(probe.build("BYE", call_id=call_id, to_tag=tag, cseq=3))
        probe.expect_final()
    keys = [json.loads(line)["key"] for line in server.log_text().splitlines()
            if '"dtmf received"' in line]  # fmt: skip
    assert "3" in keys


def test_session_timer_negotiation(server: ServerProcess) -> None:
    media = Media()
    with SipProbe(server.sip_port) as probe:
        probe.send(probe.build("INVITE", user="welcome", body=offer(media.port),
                               headers=["Session-Expires: 60", "Supported: timer"]))  # fmt: skip
        too_small = probe.expect_final()
        assert too_small.status == 422 and too_small.header("min-se") == "90"

        timer = ["Session-Expires: 1800;refresher=uac", "Supported: timer"]
        ok = establish(probe, "welcome", media.port, headers=timer)
        assert ok.header("session-expires") == "1800;refresher=uac"
        assert "timer" in (ok.header("require") or "")
        probe.send(probe.build("BYE", call_id=ok.header("call-id"), to_tag=ok.to_tag, cseq=2))
        assert probe.expect_final().status == 200

        # A caller without timer support cannot refresh: the server does (refresher=uas).
        ok = establish(probe, "welcome", media.port, headers=["Session-Expires: 1800"])
        assert ok.header("session-expires") == "1800;refresher=uas"
        probe.send(probe.build("BYE", call_id=ok.header("call-id"), to_tag=ok.to_tag, cseq=2))
        assert probe.expect_final().status == 200


def test_refer_and_notify_outside_a_transfer_are_refused(server: ServerProcess) -> None:
    """A REFER is accepted only from the callee of a dial@v1 bridge (see
    test_transfer_calls.py); a NOTIFY only for the refer event package."""
    media = Media()
    with SipProbe(server.sip_port) as probe:
        ok = establish(probe, "welcome", media.port)
        call_id, tag = ok.header("call-id"), ok.to_tag

        def answer(method: str, cseq: int, headers: list[str], body: str = "") -> Reply:
            probe.send(probe.build(method, call_id=call_id, to_tag=tag, cseq=cseq,
                                   headers=headers, body=body))  # fmt: skip
            return probe.expect_final()

        refer = ["Refer-To: <sip:someone@127.0.0.1>"]
        assert answer("REFER", 2, refer).status == 603  # this call is in no bridge
        sipfrag = ["Event: refer", "Content-Type: message/sipfrag;version=2.0"]
        assert answer("NOTIFY", 3, sipfrag, "SIP/2.0 200 OK\r\n").status == 200
        assert answer("NOTIFY", 4, ["Event: presence"]).status == 489  # RFC 6665 8.2.3
        probe.send(probe.build("REFER", call_id=call_id, to_tag="nosuchtag", cseq=5,
                               headers=refer))  # fmt: skip
        assert probe.expect_final().status == 481
        probe.send(probe.build("BYE", call_id=call_id, to_tag=tag, cseq=6))
        assert probe.expect_final().status == 200
