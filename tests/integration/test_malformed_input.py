"""Hostile and broken SIP input: answered with 400 where possible, never a crash.

After the barrage the same server must still take a normal call from sipp.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.rawsip import SipProbe, sdp_offer
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("malformed"), routes={"echo": "echo"},
                        scenarios=SCENARIOS)  # fmt: skip
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


@pytest.fixture
def probe(server: ServerProcess) -> Iterator[SipProbe]:
    with SipProbe(server.sip_port) as p:
        yield p


def without(message: str, header: str) -> str:
    return "\r\n".join(
        line for line in message.split("\r\n") if not line.lower().startswith(header.lower() + ":")
    )


def test_garbage_datagrams_are_dropped(probe: SipProbe, server: ServerProcess) -> None:
    for payload in (os.urandom(200), b"\x00" * 64, b"INVITE", b"\r\n\r\n", os.urandom(1400),
                    b"SIP/2.0 200 OK\r\n\r\n", "ÿþ garbage ✓".encode()):  # fmt: skip
        probe.send(payload)
    assert probe.recv(0.5) is None
    assert server.alive()


def test_truncated_message_without_blank_line(probe: SipProbe) -> None:
    message = probe.build("OPTIONS")
    probe.send(message[: message.index("\r\n\r\n")][:-20])
    assert probe.recv(0.5) is None  # nothing complete to answer


def test_missing_call_id(probe: SipProbe) -> None:
    probe.send(without(probe.build("OPTIONS"), "Call-ID"))
    reply = probe.expect_final()
    assert reply.status == 400
    assert reply.reason == "Missing Call-ID header"


def test_absurd_content_length(probe: SipProbe) -> None:
    message = probe.build("INVITE", body=sdp_offer())
    probe.send(message.replace(f"Content-Length: {len(sdp_offer())}", "Content-Length: 999999999"))
    reply = probe.expect_final()
    assert reply.status == 400
    assert "Content-Length" in reply.reason


def test_huge_header(probe: SipProbe) -> None:
    message = probe.build("OPTIONS", headers=["Subject: " + "x" * 64000])
    probe.send(message)
    reply = probe.expect_final()
    assert reply.status == 400
    assert "too long" in reply.reason


@pytest.mark.parametrize(
    ("mangle", "status", "reason"),
    [
        (lambda m: m.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"), 400, "CSeq method"),
        (lambda m: m.replace("CSeq: 1 OPTIONS", "CSeq: abc OPTIONS"), 400, "Bad CSeq"),
        (lambda m: m.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1), 505, "Version"),
        (lambda m: m.replace("OPTIONS sip:", "OPTIONS http:", 1), 416, "Unsupported URI"),
        (lambda m: m.replace("Max-Forwards: 70", "Max-Forwards: many"), 400, "Max-Forwards"),
        (lambda m: without(m, "From"), 400, "Missing From"),
        (lambda m: without(m, "To"), 400, "Missing To"),
        (lambda m: without(m, "CSeq"), 400, "Missing CSeq"),
        (lambda m: m.replace("To: ", "Nonsense line\r\nTo: "), 400, "Malformed header"),
        (lambda m: m.replace("From: <sip:", 'From: "unterminated <sip:'), 400, "From"),
        (lambda m: m.replace("Call-ID: ", "Call-ID: a\r\nCall-ID: "), 400, "Multiple Call-ID"),
    ],
)
def test_malformed_requests_get_a_named_error(probe: SipProbe, mangle, status, reason) -> None:  # type: ignore[no-untyped-def]
    probe.send(mangle(probe.build("OPTIONS")))
    reply = probe.expect_final()
    assert reply.status == status
    assert reason in reply.reason


def test_missing_via_cannot_be_answered(probe: SipProbe) -> None:
    probe.send(without(probe.build("OPTIONS"), "Via"))
    assert probe.recv(0.5) is None


def test_tcp_oversized_headers_close_the_connection(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.sip_port), timeout=5) as sock:
        try:
            sock.sendall(b"OPTIONS sip:x@y SIP/2.0\r\nSubject: " + b"x" * 70000)
            sock.settimeout(5)
            assert sock.recv(100) == b""  # closed by the server
        except ConnectionResetError:
            pass


def test_still_takes_a_normal_call(server: ServerProcess, tmp_path: Path) -> None:
    result = run_sipp(server.target, scenario="uac", service="echo", calls=3, timeout=30,
                      workdir=tmp_path)  # fmt: skip
    result.assert_ok(calls=3)
    assert server.alive()
