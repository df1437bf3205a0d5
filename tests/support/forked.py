"""Receiving forked RTP in tests: a UDP socket that keeps every datagram, RTP parsing
and G.711 mu-law decoding written out here (the tests do not trust the server's tables)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tests.support.net import HOST


def _ulaw_expand(code: int) -> int:
    """ITU-T G.711 mu-law expansion, written out so the test does not trust the server's."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84 << ((code >> 4) & 7)) - 0x84
    return -magnitude if code & 0x80 else magnitude


_ULAW = np.array([_ulaw_expand(code) for code in range(256)], dtype=np.float64)


@dataclass
class RtpCopy:
    payload_type: int
    sequence: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpCopy:
    """The fixed RTP header (RFC 3550 5.1); the server sends no CSRC or extension."""
    first, second, sequence, _, ssrc = struct.unpack_from("!BBHII", data)
    assert first == 0x80, f"not plain RTP version 2: first byte {first:#x}"
    return RtpCopy(second & 0x7F, sequence, ssrc, data[12:])


def decode_pcmu(copies: list[RtpCopy]) -> np.ndarray:
    """Audio of the PCMU packets in arrival order (loopback keeps the order), in [-1, 1]."""
    frames = [_ULAW[np.frombuffer(c.payload, np.uint8)] for c in copies if c.payload_type == 0]
    return np.concatenate(frames) / 32768.0 if frames else np.zeros(0)


@dataclass
class ForkReceiver:
    """A UDP socket on 127.0.0.1 that keeps every datagram, read by a thread while
    the call runs (the kernel buffer alone would not hold a whole call)."""

    sock: socket.socket = field(init=False)
    datagrams: list[tuple[float, bytes]] = field(default_factory=list)
    senders: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def spec(self) -> str:
        host, port = self.sock.getsockname()
        return f"udp:{host}:{port}"

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams.append((time.monotonic(), data))
            self.senders.add(sender)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def rtp(self) -> list[RtpCopy]:
        return [parse_rtp(data) for _, data in self.datagrams]
