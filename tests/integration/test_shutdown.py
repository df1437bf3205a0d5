"""Graceful shutdown (SPEC section 1): SIGTERM stops new calls, lets live ones
run for up to --drain seconds, then hangs them up with BYE and exits 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import start_server
from tests.support.rawsip import SipProbe, sdp_offer

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"


def answer_bye(probe: SipProbe, bye: bytes) -> None:
    head = bye.decode().split("\r\n\r\n")[0].split("\r\n")
    keep = [
        h for h in head[1:] if h.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")
    ]
    probe.send("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")


def test_sigterm_drains_live_calls_then_hangs_up(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, routes={"echo": "echo"}, scenarios=SCENARIOS, extra_args=["--drain", "3"]
    )
    try:
        with SipProbe(server.sip_port) as caller, SipProbe(server.sip_port) as late:
            caller.send(caller.build("INVITE", body=sdp_offer()))
            ok = caller.expect_final()
            assert ok.status == 200
            caller.send(caller.build("ACK", call_id=ok.header("call-id"), to_tag=ok.to_tag))

            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            time.sleep(0.3)
            # New calls are refused while draining.
            late.send(late.build("INVITE", body=sdp_offer()))
            refused = late.expect_final()
            assert refused.status == 503
            assert refused.header("retry-after")

            # The live call goes on until the drain time is up, then gets a BYE.
            bye = caller.recv_request(timeout=10)
            waited = time.monotonic() - signalled
            assert bye is not None and bye.startswith(b"BYE ")
            assert 2.5 <= waited <= 6.0, f"BYE came {waited:.1f} s after SIGTERM"
            answer_bye(caller, bye)
        assert server.process.wait(15) == 0
        assert '"stopped"' in server.log_text()
    finally:
        server.stop()


def test_sigterm_without_calls_stops_without_draining(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, routes={"echo": "echo"}, scenarios=SCENARIOS, extra_args=["--drain", "60"]
    )
    server.process.send_signal(signal.SIGTERM)
    # With no live call there is nothing to drain: well before the 60 s drain time.
    assert server.process.wait(30) == 0
    log = server.log_text()
    assert '"stopped"' in log and '"draining"' not in log


def test_bad_config_is_refused_with_its_place(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "bad.yaml"
    config.write_text(
        'sip:\n  listen: ["udp:127.0.0.1:5060"]\n  colour: red\nroutes:\n  x: nowhere\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "mediaserver", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{config}:3:3: unknown key sip.colour" in result.stderr
    assert f"{config}:5:6: routes.x: no scenario 'nowhere'" in result.stderr
