"""Fuzzing a started server's SIP endpoint over UDP: hostile messages never cause an error.

The parser targets (:mod:`tests.fuzz.targets`) check the sans-I/O cores; this
one sends the same messages to ``mediaserver run`` on 127.0.0.1, so the
transaction layer, the user agent's header handling (Require, Session-Expires,
Accept, Authorization, routing, SDP negotiation) and call set-up see them too.
After each message the server's log is read: any ``error`` record (an
exception in the endpoint or a call task) fails the input. Calls that get
answered run a scenario that hangs up at once.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from pathlib import Path

from tests.fuzz.targets import Target, sip_messages
from tests.integration.conftest import ServerProcess, start_server

HANG_UP = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: hangup@v1
"""
REPLY_WAIT = 0.15  # seconds to wait for an answer before the next message


def start_sip_server(folder: Path) -> ServerProcess:
    scenarios = folder / "scenarios"
    scenarios.mkdir(parents=True, exist_ok=True)
    (scenarios / "bye.yaml").write_text(HANG_UP)
    return start_server(folder / "server", routes={"*": "bye"}, scenarios=scenarios,
                        log_level="info")  # fmt: skip


class _LogTail:
    """The error records the server logged since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def errors(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        found = []
        for line in data[:complete].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                found.append(line.decode(errors="replace"))  # a traceback outside the JSON log
                continue
            if record.get("level") in ("error", "critical"):
                found.append(line.decode(errors="replace"))
        return found


def sip_server_target(server: ServerProcess) -> Target:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    tail = _LogTail(server.log_path)

    sent = itertools.count()

    def check(data: bytes) -> None:
        if len(data) > 60_000:
            data = data[:60_000]  # one UDP datagram
        # A fresh branch and Call-ID each time: a retransmission would be absorbed, and a
        # failure hypothesis replays would not fail again.
        n = next(sent)
        data = data.replace(b"z9hG4bK", b"z9hG4bK%d-" % n).replace(b"@127.0.0.1\r", b"-%d@h\r" % n)
        sock.sendto(data, ("127.0.0.1", server.sip_port))
        sock.settimeout(REPLY_WAIT)
        deadline = time.monotonic() + REPLY_WAIT
        while time.monotonic() < deadline:
            try:
                sock.recv(65536)
            except TimeoutError:
                break
        errors = tail.errors()
        assert not errors, "\n".join(errors)[:4000]
        assert server.alive(), "the server died"

    return Target("sip-server", sip_messages, check)
