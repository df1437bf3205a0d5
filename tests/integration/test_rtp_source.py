"""Whose RTP the server hears ("RTP bleed", Asterisk CVE-2017-14099): packets from a
third address while a call rings (sprayed at every port of the server's RTP range,
as the attack does, since the call's port is not known yet) take nothing from the
caller; a caller behind NAT (SDP private, RTP from elsewhere) is still heard and
answered once it sends a stream. The intruder sends from 127.0.0.2, another host
as far as the server can tell; every packet goes to 127.0.0.1."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediaserver.media.latching import STREAM_PACKETS
from mediaserver.media.rtp import build_rtp
from tests.integration.conftest import ServerProcess, _rtp_range, start_server
from tests.support import audio
from tests.support.plainphone import PlainPhone

pytestmark = pytest.mark.integration

DIAL_TONE = [350, 440]  # what ring_tone.yaml plays once answered
TEST_SCENARIOS = Path(__file__).parent / "scenarios"
BURST = 10
RTP_PORTS = 20  # a small RTP range, so that the intruder can try every port


@pytest.fixture(scope="module")
def rtp_ports() -> range:
    """The server's RTP ports (even, RFC 3550 11), from a small range of its own."""
    low, _ = _rtp_range()
    return range(low, low + RTP_PORTS, 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, rtp_ports: range) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("rtpsource"),
        routes={"ring": "ring_tone"},
        scenarios=TEST_SCENARIOS,
        rtp_range=(rtp_ports.start, rtp_ports.stop - 1),
    )
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


class Intruder:
    """A third party on another address that sends RTP to the server's media ports
    and keeps count of whatever comes back."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.2", 0))
        self.sock.setblocking(False)
        self.seq = secrets.randbits(16)
        self.ts = secrets.randbits(32)

    def send(self, count: int, ssrc: int) -> None:
        """``count`` PCMU packets in sequence, 20 ms apart (a stream, the way a phone
        sends), to every port."""
        for i in range(count):
            packet = build_rtp(0, self.seq, self.ts, ssrc, b"\xff" * 160, i == 0)
            for port in self.ports:
                self.sock.sendto(packet, ("127.0.0.1", port))
            self.seq, self.ts = (self.seq + 1) & 0xFFFF, self.ts + 160
            time.sleep(0.02)

    def received(self) -> int:
        count = 0
        while True:
            try:
                self.sock.recv(2048)
            except BlockingIOError:
                return count
            except ConnectionRefusedError:
                continue  # an ICMP error from a port nobody holds
            count += 1

    def close(self) -> None:
        self.sock.close()


def call_record(server: ServerProcess, earlier: int) -> dict[str, Any]:
    """The media figures of the one call that ended after ``earlier`` calls had."""
    deadline = time.monotonic() + 10
    while len(ended := server.log_records("call ended")) == earlier:
        assert time.monotonic() < deadline, "the call was not recorded"
        time.sleep(0.1)
    (record,) = ended[earlier:]
    media: dict[str, Any] = record["media"]
    return media


def test_rtp_from_a_third_address_while_ringing_changes_nothing_the_caller_hears(
    server: ServerProcess, rtp_ports: range
) -> None:
    earlier = len(server.log_records("call ended"))
    intruder = Intruder(rtp_ports)
    try:
        with PlainPhone(server.sip_port) as phone:
            phone.invite("ring")
            time.sleep(0.3)  # the call rings (180) for 2 s
            intruder.send(1, ssrc=0x0BAD)  # one packet, the classic
            time.sleep(0.2)
            intruder.send(BURST, ssrc=0x0BAD0002)  # then a short stream
            phone.answered(timeout=10)
            assert phone.wait_bye(timeout=10), "the scenario did not hang up"
            heard, rate = phone.heard()
        assert intruder.received() == 0, "the intruder got the call's audio"
    finally:
        intruder.close()
    assert audio.tone_seconds(heard, rate, DIAL_TONE) > 2.5  # the whole 3 s tone
    media = call_record(server, earlier)
    assert media["rtp_refused_source"] == 1 + BURST, media
    assert media["packets_in"] > 50  # the caller's own stream was heard


def test_a_caller_behind_nat_is_heard_after_its_stream_and_intruders_are_counted(
    server: ServerProcess, rtp_ports: range
) -> None:
    """The SDP says 192.0.2.10 (a string only: nothing is sent there), the RTP comes
    from 127.0.0.1: the server waits for the caller's stream, then answers it; a
    stream of another SSRC from elsewhere is refused and counted."""
    earlier = len(server.log_records("call ended"))
    intruder = Intruder(rtp_ports)
    try:
        with PlainPhone(server.sip_port, sdp_host="192.0.2.10") as phone:
            phone.call("ring")  # answered after 2 s; then the caller sends
            time.sleep(0.5)
            intruder.send(BURST, ssrc=0x0BAD0003)  # the latched stream is not its
            assert phone.wait_bye(timeout=10), "the scenario did not hang up"
            heard, rate = phone.heard()
        assert intruder.received() == 0, "the intruder got the call's audio"
    finally:
        intruder.close()
    assert audio.tone_seconds(heard, rate, DIAL_TONE) > 2.5
    media = call_record(server, earlier)
    assert media["rtp_refused_source"] == BURST, media
    assert media["rtp_learning"] == STREAM_PACKETS - 1, media  # learnt, not taken at once
    assert media["packets_in"] > 50
