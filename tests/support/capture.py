"""A packet capture on the loopback interface: what really went over the wire.

An ``AF_PACKET`` raw socket (Linux, root or CAP_NET_RAW, as the tests run)
sees every frame on ``lo``; :class:`UdpCapture` keeps the UDP payloads sent to
a range of ports while it runs, in a thread. Tests use it to prove media was
encrypted: RTP payloads sent in clear decode to the tone that was played,
SRTP ones to noise.
"""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType

ETH_P_ALL = 0x0003
_ETHERNET_HEADER = 14
_IPV4 = 0x0800
_UDP = 17


class UdpCapture:
    """The UDP payloads sent to ports ``low``..``high`` on ``lo`` while open."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.payloads: list[bytes] = []
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self._socket.bind(("lo", 0))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UdpCapture:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == socket.PACKET_OUTGOING:
                continue  # on lo each packet is seen twice: keep the incoming copy
            payload = self._udp_payload(frame)
            if payload is not None:
                self.payloads.append(payload)

    def _udp_payload(self, frame: bytes) -> bytes | None:
        if len(frame) < _ETHERNET_HEADER + 28:
            return None
        (ethertype,) = struct.unpack_from("!H", frame, 12)
        if ethertype != _IPV4:
            return None
        ip = frame[_ETHERNET_HEADER:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != _UDP:
            return None
        _, destination, length, _ = struct.unpack_from("!HHHH", ip, header)
        if not self.low <= destination <= self.high:
            return None
        return ip[header + 8 : header + length]
