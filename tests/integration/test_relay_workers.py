"""Bridges carried by relay worker processes (media/relay_workers.py), through the real server.

A caller (raw SIP and RTP from this test) is bridged by ``dial@v1`` to a callee
(this test again, as the UAS). Both send a tone 50 times a second with
consecutive sequence numbers; each side records what arrives. The bridge goes
to a worker once it settles (seen in ``/metrics``); a DTMF key the caller
presses is a packet the worker does not relay, so the bridge comes home with it,
the callee gets the telephone-event, and the bridge goes back to a worker.
Then a worker is killed with SIGKILL: the call goes on (the main process takes
the sockets back) and a new worker takes the bridge again. What each side heard
is checked: the other's tone, every packet in order with one header per stream
(sequence numbers that only step by one, except one jump forward when the
worker died), and the call record counts exactly what the caller sent.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from mediaserver.media.g711 import ulaw_decode, ulaw_encode
from tests.integration.conftest import TEST_API_KEY, ServerProcess, start_server
from tests.load.call_rate import children
from tests.support import audio
from tests.support.net import free_port
from tests.support.rawsip import SipProbe, sdp_offer

RATE = 8000
CALLER_TONE, CALLEE_TONE = 700.0, 1100.0


class Stream:
    """One side's RTP: a tone sent 50 times a second, what arrives kept."""

    def __init__(self, frequency: float) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.port = self.sock.getsockname()[1]
        self.frequency = frequency
        self.remote: tuple[str, int] | None = None
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.sent = 0
        self.received: list[bytes] = []
        self.digit: str | None = None  # a telephone-event to send next (RFC 4733)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, remote: tuple[str, int]) -> None:
        self.remote = remote
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _packet(self, payload_type: int, payload: bytes, marker: bool = False) -> bytes:
        second = payload_type | (0x80 if marker else 0)
        header = struct.pack("!BBHII", 0x80, second, self.sequence, self.timestamp, self.ssrc)
        self.sequence = (self.sequence + 1) & 0xFFFF
        return header + payload

    def _run(self) -> None:
        assert self.remote is not None
        n = 0
        began = time.monotonic()
        while not self._stop.is_set():
            digit, self.digit = self.digit, None
            if digit is not None:
                self._send_event(int(digit))
            t = (np.arange(160) + n * 160) / RATE
            tone = (8000 * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
            self.sock.sendto(self._packet(0, ulaw_encode(tone)), self.remote)
            self.timestamp = (self.timestamp + 160) & 0xFFFFFFFF
            self.sent += 1
            n += 1
            self._receive_until(began + n * 0.02)

    def _send_event(self, event: int) -> None:
        """A 100 ms key press: start, updates, three end packets (RFC 4733 2.5)."""
        assert self.remote is not None
        for step in range(1, 6):
            end = step == 5
            duration = step * 160
            payload = struct.pack("!BBH", event, 0x80 | 10 if end else 10, duration)
            for _ in range(3 if end else 1):
                self.sock.sendto(self._packet(101, payload, marker=step == 1), self.remote)
            self._receive_until(time.monotonic() + 0.02)
        self.timestamp = (self.timestamp + 800) & 0xFFFFFFFF

    def _receive_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                return
            self.received.append(data)

    # -- what arrived -------------------------------------------------------------

    def audio(self) -> np.ndarray:
        frames = [p[12:] for p in self.received if p[1] & 0x7F == 0]
        return ulaw_decode(b"".join(frames))

    def events(self) -> list[int]:
        return [p[12] for p in self.received if p[1] & 0x7F == 101]

    def sequence_steps(self) -> list[int]:
        """How each packet's sequence number moved from the one before (mod 2**16)."""
        numbers = [struct.unpack_from("!H", p, 2)[0] for p in self.received]
        return [(b - a) & 0xFFFF for a, b in itertools.pairwise(numbers)]


SCENARIO = """\
name: bridge
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {{targets: ["sip:callee@127.0.0.1:{port}"], timeout: 10, ringback: none}}
      - action: hangup@v1
"""


@pytest.fixture(scope="module")
def callee_sip() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", free_port()))
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, callee_sip: socket.socket
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("relay-workers")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    (scenarios / "bridge.yaml").write_text(SCENARIO.format(port=callee_sip.getsockname()[1]))
    server = start_server(
        tmp / "server",
        routes={"*": "bridge"},
        scenarios=scenarios,
        rtp_extra="  relay_workers: 2\n",
    )
    yield server
    server.stop()


def metric(server: ServerProcess, name: str, label: str = "") -> float:
    text = httpx.get(f"{server.api_url}/metrics", timeout=5).text
    match = re.search(rf"^{name}{re.escape(label)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def answer(callee_sip: socket.socket, stream: Stream) -> int:
    """Answer the server's INVITE to the callee; the server's RTP port for it."""
    while True:
        data, source = callee_sip.recvfrom(65535)
        if data.startswith(b"INVITE"):
            break
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    keep = [
        line
        for line in head.split("\r\n")[1:]
        if line.lower().startswith(("via", "from", "call-id", "cseq"))
    ]
    to = next(line for line in head.split("\r\n") if line.lower().startswith("to:"))
    body = sdp_offer(stream.port, "0 101")
    reply = "\r\n".join(
        ["SIP/2.0 200 OK", *keep, f"{to};tag=callee1",
         f"Contact: <sip:callee@127.0.0.1:{callee_sip.getsockname()[1]}>",
         "Content-Type: application/sdp", f"Content-Length: {len(body)}"]
    ) + "\r\n\r\n" + body  # fmt: skip
    callee_sip.sendto(reply.encode(), source)
    return int(re.search(rb"m=audio (\d+)", data).group(1))  # type: ignore[union-attr]


class Bridged:
    """A call bridged through the server, its media flowing both ways."""

    def __init__(self, server: ServerProcess, callee_sip: socket.socket, sip: SipProbe) -> None:
        self.server, self.sip = server, sip
        self.caller, self.callee = Stream(CALLER_TONE), Stream(CALLEE_TONE)
        self.call_id = f"relay-{secrets.token_hex(4)}"
        offer = sdp_offer(self.caller.port, "0 101")
        sip.send(sip.build("INVITE", "bridge", call_id=self.call_id, body=offer))
        callee_port = answer(callee_sip, self.callee)
        reply = sip.final_for(self.call_id, timeout=10)
        assert reply.status == 200, reply
        self.to_tag = reply.to_tag
        caller_port = int(re.search(rb"m=audio (\d+)", reply.body).group(1))  # type: ignore[union-attr]
        sip.send(sip.build("ACK", "bridge", call_id=self.call_id, to_tag=self.to_tag, cseq=1))
        self.caller.start(("127.0.0.1", caller_port))
        self.callee.start(("127.0.0.1", callee_port))

    def hang_up(self) -> None:
        self.caller.stop()
        self.callee.stop()
        sip = self.sip
        sip.send(sip.build("BYE", "bridge", call_id=self.call_id, to_tag=self.to_tag, cseq=2))
        assert sip.final_for(self.call_id).status == 200

    def check_heard(self, *, jumps: int) -> None:
        """Each side heard the other's tone, one stream in order: sequence numbers
        step by one, but for ``jumps`` jumps forward (a worker died: it may have sent
        up to a second since its last figures, which the main process skips)."""
        for stream, other in ((self.caller, CALLEE_TONE), (self.callee, CALLER_TONE)):
            heard = stream.audio()
            assert len(heard) > RATE * 2
            assert abs(audio.dominant_frequency(heard, RATE) - other) < 20
            leaps = [step for step in stream.sequence_steps() if step != 1]
            assert len(leaps) <= jumps and all(1 < step < 3000 for step in leaps), leaps
            assert len({p[8:12] for p in stream.received}) == 1  # one SSRC throughout

    def record(self) -> dict[str, Any]:
        """The caller's call record, once the call ended."""
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        api = self.server.api_url
        deadline = time.monotonic() + 10
        while True:
            hits = httpx.get(f"{api}/api/cdrs", headers=headers, timeout=5).json()["hits"]
            for hit in hits:
                ended = hit.get("direction") == "inbound" and hit.get("status") == "ended"
                if ended and hit["callid"] not in _seen:
                    _seen.add(hit["callid"])
                    return hit  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, hits
            time.sleep(0.2)


_seen: set[str] = set()
EVENT_PACKETS = 7  # a key press: four packets, then the end three times (RFC 4733 2.5.1.4)


def handoffs(server: ServerProcess, event: str = "handoff") -> float:
    return metric(server, "mediaserver_relay_worker_handoffs_total", f'{{event="{event}"}}')


def test_a_bridge_rides_a_worker_and_comes_home_for_dtmf(
    server: ServerProcess, callee_sip: socket.socket
) -> None:
    with SipProbe(server.sip_port) as sip:
        call = Bridged(server, callee_sip, sip)
        try:
            wait_for(lambda: metric(server, "mediaserver_relay_worker_legs") == 2, "the hand-over")
            handed = handoffs(server)
            call.caller.digit = "5"  # off the fast path: the bridge comes home with it
            wait_for(lambda: 5 in call.callee.events(), "the telephone-event at the callee")
            wait_for(lambda: handoffs(server) > handed, "the bridge going back to a worker")
            assert handoffs(server, "return") >= 1
            time.sleep(1)
        finally:
            call.hang_up()
    call.check_heard(jumps=0)
    # The record counts exactly what the caller sent, through the hand-overs.
    media = call.record()["media"]["a"]
    assert media["packets_in"] == call.caller.sent + EVENT_PACKETS, media
    assert media["lost"] == 0, media


def test_a_worker_that_dies_loses_no_call(server: ServerProcess, callee_sip: socket.socket) -> None:
    with SipProbe(server.sip_port) as sip:
        call = Bridged(server, callee_sip, sip)
        try:
            wait_for(lambda: metric(server, "mediaserver_relay_worker_legs") == 2, "the hand-over")
            workers = children(server.process.pid)
            assert len(workers) == 2, workers
            restarts = metric(server, "mediaserver_relay_worker_restarts_total")
            heard = len(call.callee.received)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            wait_for(
                lambda: metric(server, "mediaserver_relay_worker_restarts_total") == restarts + 2,
                "the deaths counted",
            )
            wait_for(lambda: len(call.callee.received) > heard + 50, "audio after the deaths")
            wait_for(lambda: metric(server, "mediaserver_relay_worker_legs") == 2, "a new worker")
            time.sleep(1)
        finally:
            call.hang_up()
    call.check_heard(jumps=1)
    assert "relay worker died" in server.log_text()
    # What the dead worker counted since its last figures (a second at most) is lost.
    media = call.record()["media"]["a"]
    assert call.caller.sent - 60 <= media["packets_in"] <= call.caller.sent, media
