"""Transport rules with real sockets: one source's INVITE flood is rate-limited
(then blocked) without hurting another caller, and a request too large for UDP goes over TCP
(RFC 3261 18.1.1)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import start_server
from tests.support.rawsip import SipProbe, sdp_offer

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parents[2] / "configs" / "scenarios"
USERS = "users:\n  - {username: alice, password: wonderland}\n"


def test_a_flooding_source_is_limited_and_others_are_not(tmp_path: Path) -> None:
    server = start_server(tmp_path, routes={"echo": "echo"}, scenarios=SCENARIOS,
                          trusted=[], extra_config=USERS)  # fmt: skip
    try:
        with SipProbe(server.sip_port, bind="127.0.0.2") as flood:
            for i in range(150):
                flood.send(flood.build("INVITE", body=sdp_offer(), call_id=f"flood-{i}"))
            answers: dict[str, int] = {}  # Call-ID -> status (407 retransmissions repeat)
            while (reply := flood.recv(1.0)) is not None:
                answers[reply.header("call-id") or ""] = reply.status
        statuses = list(answers.values())
        assert statuses.count(407) >= 50, "the first requests should be served (challenged)"
        # limits.block_after (20) stateless refusals in a row, then the source is blocked:
        # silence. (How many 503s that takes depends on the tokens the bucket regains
        # while the flood is sent, so the order is checked, not an exact count.)
        assert statuses.count(503) >= 20, "the flood should be refused"
        assert 150 - len(answers) >= 50, "a blocked source's requests go unanswered"
        first_dropped = next(i for i in range(150) if f"flood-{i}" not in answers)
        answered_late = [i for i in range(first_dropped, 150) if f"flood-{i}" in answers]
        assert answered_late == [], "once blocked, nothing more is answered"
        refused = [i for i in range(first_dropped) if answers[f"flood-{i}"] == 503]
        assert refused[-20:] == list(range(first_dropped - 20, first_dropped)), (
            "the block follows block_after refusals in a row"
        )
        with SipProbe(server.sip_port, bind="127.0.0.1") as caller:
            caller.send(caller.build("INVITE", body=sdp_offer()))
            assert caller.expect_final().status == 407  # served as usual, not limited
        assert server.alive()
    finally:
        server.stop()


DIAL_BIG = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params:
          targets: ["sip:big@127.0.0.1:{port}"]
          timeout: 5
          headers: {{X-Padding: "{padding}"}}
"""


def test_a_large_request_goes_over_tcp(tmp_path: Path) -> None:
    # A peer listening on both UDP and TCP on one port; it answers 486 on TCP.
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    tcp.listen(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    udp.settimeout(0.2)
    received: list[bytes] = []

    def serve() -> None:
        tcp.settimeout(15)
        conn, _ = tcp.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65535)
        received.append(data)
        head = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
        copied = []
        for line in head[1:]:
            name = line.split(":")[0].lower()
            if name in ("via", "from", "call-id", "cseq"):
                copied.append(line)
            elif name == "to":
                copied.append(line + ";tag=busy")  # a final response adds our tag
        reply = "SIP/2.0 486 Busy Here\r\n" + "\r\n".join(copied)
        conn.sendall((reply + "\r\nContent-Length: 0\r\n\r\n").encode())
        conn.settimeout(3)
        with contextlib.suppress(TimeoutError):
            received.append(conn.recv(65535))  # the ACK for the 486
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "big.yaml").write_text(DIAL_BIG.format(port=port, padding="x" * 1500))
    server = start_server(tmp_path / "server", routes={"big": "big"}, scenarios=scenarios)
    try:
        with SipProbe(server.sip_port) as caller:
            caller.send(caller.build("INVITE", user="big", body=sdp_offer()))
            thread.join(20)
        assert received and received[0].startswith(b"INVITE sip:big@")
        assert b"Via: SIP/2.0/TCP" in received[0]
        with pytest.raises(TimeoutError):
            udp.recv(65535)  # nothing came over UDP
    finally:
        server.stop()
        tcp.close()
        udp.close()
