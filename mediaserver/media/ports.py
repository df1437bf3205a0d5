"""RTP port allocation from the configured range.

RTP takes even ports and leaves the odd one above for RTCP (RFC 3550 11).
Ports are handed out round-robin so a port just released is not reused at
once (late packets of the old call would land in the new one), and a port
another program holds is skipped by trying the next.

Each port taken remembers its holder (the protocol bound on it), and
``release`` with a holder frees the port only if that holder still has it:
releasing twice, or late (after the port went to another call), is harmless,
so a caller can release in a ``finally`` without knowing whether someone else
released already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=asyncio.BaseProtocol)


class NoFreePort(Exception):
    """Every port of the range is in use."""


class PortAllocator:
    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        first = low + (low % 2)  # RTP on even ports (RFC 3550 11)
        self._ports = list(range(first, high, 2))
        self._next = 0
        self._used: dict[int, object] = {}  # port -> its holder

    @property
    def in_use(self) -> int:
        return len(self._used)

    @property
    def capacity(self) -> int:
        return len(self._ports)

    async def bind(
        self, host: str, factory: Callable[[], T]
    ) -> tuple[asyncio.DatagramTransport, T, int]:
        """Bind a UDP endpoint on the next free even port; raise NoFreePort when none."""
        loop = asyncio.get_running_loop()
        for _ in range(len(self._ports)):
            port = self._ports[self._next]
            self._next = (self._next + 1) % len(self._ports)
            if port in self._used:
                continue
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    factory, local_addr=(host, port)
                )
            except OSError:
                continue  # held by another program: try the next one
            self._used[port] = protocol
            return transport, protocol, port
        # A range without one even port (and the odd one above it) is simply always full.
        raise NoFreePort(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int, holder: object | None = None) -> None:
        """Give ``port`` back; with ``holder``, only while ``holder`` still has it."""
        if holder is None or self._used.get(port) is holder:
            self._used.pop(port, None)
