"""RTCP for one leg: the reports we send and the ones we receive (RFC 3550 6).

A :class:`ReportChannel` owns the leg's RTCP socket (the RTP port + 1, RFC
3550 11) and a timer: about every five seconds, randomised (6.3), it sends a
compound packet built from the leg's :class:`~mediaserver.media.stats.LegStats`
(an SR when we sent media since the last report, else an RR, then SDES
CNAME), and a BYE when the leg closes. Reports from the peer, on that socket
or multiplexed on the RTP port (RFC 5761), feed the same statistics, which
gives the round-trip time and the loss the peer sees.

Packets go to the port after the peer's RTP port until the peer's own RTCP
arrives, then to where it came from (symmetric, like RTP). Only RTCP that
the leg's source latch accepts (from the RTP peer's host) is read or
latched, so a stray sender can neither feed the statistics nor take the
reports. Malformed RTCP is counted and dropped; baresip starts its hang-up
compound with BYE, so the parser runs in RFC 5506 reduced-size mode.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import cast

from mediaserver.media.rtcp import RtcpError, build_compound, parse_compound
from mediaserver.media.rtp import is_stun
from mediaserver.media.srtp import SecureTransport, SilentTransport, SrtpChannel
from mediaserver.media.stats import LegStats

REPORT_INTERVAL = 5.0  # RFC 3550 6.2: the minimum interval, the usual one for a call


class ReportChannel(asyncio.DatagramProtocol):
    def __init__(
        self,
        stats: LegStats,
        cname: str,
        peer: Callable[[], tuple[str, int] | None],
        accepts: Callable[[tuple[str, int]], bool] = lambda addr: True,
    ) -> None:
        self.stats = stats
        self.cname = cname
        self._rtp_peer = peer  # where the leg sends RTP (None: nowhere yet)
        self._accepts = accepts  # whether RTCP from an address is the peer's
        self._latched: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.malformed = 0
        self.stun = 0  # STUN keep-alives on the RTCP port, ignored
        self._srtp: SrtpChannel | None = None  # SRTCP (RFC 3711 3.4) when the leg is secure
        self._socket: asyncio.DatagramTransport | None = None
        # RFC 5761 4: with rtcp-mux agreed, reports go out on the RTP port (the leg's).
        self.muxed: Callable[[bytes], None] | None = None

    # -- socket -------------------------------------------------------------------

    async def open(self, host: str, port: int) -> bool:
        """Bind the RTCP socket; False when the port is taken (the leg goes on
        without RTCP of its own, still reading RTCP multiplexed on RTP)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        except OSError:
            return False
        return True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check.
        self.transport = self._socket = cast(asyncio.DatagramTransport, transport)

    def silence(self) -> None:
        """Send nothing until :meth:`secure` gives keys (a DTLS handshake is under way)."""
        if self._socket is not None and self.transport is not None:
            self.transport = SilentTransport(self._socket)

    def secure(self, channel: SrtpChannel | None) -> None:
        """Send and receive SRTCP with the leg's keys (None: plain RTCP)."""
        self._srtp = channel
        if self._socket is not None and self.transport is not None:
            self.transport = (
                self._socket if channel is None else SecureTransport(self._socket, channel)
            )

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._srtp is not None and not is_stun(data):
            plain = self._srtp.unprotect(data)
            if plain is None:
                self.malformed += 1
                return
            data = plain
        source = (addr[0], addr[1])
        if source != self._latched:
            if not self._accepts(source):
                return
            self._latched = source  # the peer's RTCP source, also after its NAT moved it
        self.receive(data)

    def receive(self, data: bytes) -> None:
        """A compound RTCP packet from the peer (on our RTCP port or muxed)."""
        try:
            packets = parse_compound(data, reduced_size=True)
        except RtcpError:
            if is_stun(data):  # a keep-alive on the RTCP port (RFC 7983 7), not a bad report
                self.stun += 1
            else:
                self.malformed += 1
            return
        self.stats.on_rtcp(packets, time.time())

    # -- sending ------------------------------------------------------------------

    def start(self) -> None:
        """Begin reporting (the leg started sending)."""
        if self._timer is None and (self.transport is not None or self.muxed is not None):
            # RFC 3550 6.2: the first report comes after half the minimum interval.
            self._schedule(REPORT_INTERVAL / 2)

    def _schedule(self, interval: float = REPORT_INTERVAL) -> None:
        # RFC 3550 6.3.1: randomise the interval between 0.5 and 1.5 times its value.
        delay = interval * random.uniform(0.5, 1.5)
        self._timer = asyncio.get_running_loop().call_later(delay, self._report)

    def _destination(self) -> tuple[str, int] | None:
        if self._latched is not None:
            return self._latched
        rtp = self._rtp_peer()
        return (rtp[0], rtp[1] + 1) if rtp is not None else None

    def _report(self) -> None:
        self._send(build_compound(self.stats.report(time.time(), self.cname)))
        self._schedule()

    def _send(self, data: bytes) -> None:
        if self.muxed is not None:
            self.muxed(data)
            return
        destination = self._destination()
        if self.transport is not None and destination is not None:
            self.transport.sendto(data, destination)

    def close(self, reason: str | None = None) -> None:
        """Say goodbye (RFC 3550 6.6) and stop."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._send(build_compound(self.stats.goodbye_report(time.time(), self.cname, reason)))
        if self.transport is not None:
            self.transport.close()
            self.transport = self._socket = None
