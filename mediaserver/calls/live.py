"""The live calls by dialog, and the RTP legs they hold.

Inbound calls (the call switch) and outbound ones (the dialer) share one
:class:`LiveCalls`: the user agent finds a call's dialog in it by Call-ID and
local tag, and a call that is over gives its RTP ports back through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from mediaserver.calls.base import Call
from mediaserver.calls.services import CallServices
from mediaserver.calls.srtp_policy import SrtpPolicy
from mediaserver.log import get_logger
from mediaserver.media.clock import MediaClock
from mediaserver.media.codecs import CODECS
from mediaserver.media.leg import RelayPool, RtpLeg
from mediaserver.media.ports import PortAllocator

log = get_logger("ua")


@dataclass(frozen=True)
class MediaSettings:
    codecs: tuple[str, ...]
    rtp_host: str  # where RTP sockets bind
    public_address: str | None  # written in SDP and Contact; None: work it out per peer
    trusted_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    srtp: SrtpPolicy = field(default_factory=SrtpPolicy)  # SRTP of the calls in and out


class RtpLegs:
    """Opens RTP legs on free port pairs and gives the ports back."""

    def __init__(
        self,
        media: MediaSettings,
        ports: PortAllocator,
        clock: MediaClock,
        services: CallServices | None = None,
        relay_pool: RelayPool | None = None,
    ) -> None:
        self.media = media
        self.ports = ports
        self.clock = clock
        self.services = services
        self.relay_pool = relay_pool  # relay workers that may carry pure bridges

    async def open(self) -> RtpLeg:
        """An RTP leg on the next free port pair (RTP, then RTCP on port + 1);
        NoFreePort when there is none."""
        codec = CODECS[self.media.codecs[0]]
        leg = RtpLeg(
            self.clock,
            codec,
            payload_type=codec.payload_type,
            telephone_event_pt=101,
            remote=None,
            on_digit=lambda key: None,
        )
        if self.services is not None:
            leg.jitter_buffer_ms = self.services.jitter_buffer_ms  # rtp.jitter_buffer_ms
        leg.relay_pool = self.relay_pool
        _, _, port = await self.ports.bind(self.media.rtp_host, lambda: leg)
        leg.local_port = port
        try:
            if not await leg.open_rtcp(self.media.rtp_host, port + 1):
                log.info("RTCP port taken; the leg goes without RTCP", port=port + 1)
        except BaseException:
            self.release(leg)
            raise
        return leg

    @contextlib.asynccontextmanager
    async def leased(self) -> AsyncIterator[RtpLeg]:
        """A new RTP leg for the time of the ``async with``: however the block ends,
        the leg is closed and its ports given back (NoFreePort when there are none)."""
        leg = await self.open()
        try:
            yield leg
        finally:
            self.release(leg)

    def release(self, leg: RtpLeg) -> None:
        """Close a leg and give its port back; harmless when done already."""
        leg.close()
        if leg.local_port:
            self.ports.release(leg.local_port, leg)


class LiveCalls:
    """The calls with a dialog, by (Call-ID, our tag)."""

    def __init__(self, legs: RtpLegs) -> None:
        self.legs = legs
        self.calls: dict[tuple[str, str], Call] = {}

    def add(self, call: Call, local_tag: str) -> None:
        self.calls[call.sip_call_id, local_tag] = call

    def find(self, call_id: str, local_tag: str) -> Call | None:
        return self.calls.get((call_id, local_tag))

    def finished(self, call: Call) -> None:
        """A call is over: forget its dialog, give its RTP port back."""
        for key, known in list(self.calls.items()):
            if known is call:
                del self.calls[key]
        self.legs.release(call.leg)

    @property
    def active(self) -> list[Call]:
        return [call for call in self.calls.values() if not call.ended]

    async def hangup_all(self, reason: str = "normal_clearing") -> None:
        calls = self.active
        await asyncio.gather(*(call.hangup(reason) for call in calls), return_exceptions=True)
