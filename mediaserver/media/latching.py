"""Which source a leg's media comes from: symmetric RTP without the "RTP bleed" hijack.

Theory of operation
-------------------
A leg answers to where its peer's packets come from (symmetric RTP), not only
to the SDP's address, because a phone behind NAT puts its private address in
the SDP. Latching onto the first packet from anywhere, though, lets anyone
who sends one packet to the port take the call's audio (Asterisk's
CVE-2017-14099). :class:`SourceLatch` decides, sans-I/O, for every packet
that does not come from the latched source, fed ``(addr, seq, ssrc, pt,
now)``, one of four :class:`Verdict`:

- ``LEARN``: latch onto this source now. A packet from exactly the SDP's
  address and port while nothing is latched; or the last packet of a
  *stream* from a source allowed to learn: :data:`STREAM_PACKETS` packets in
  sequence (RFC 3550 A.1's probation idea), one SSRC, an expected payload
  type, none more than :data:`STREAM_GAP` seconds after the one before.
- ``PROBATION``: part of such a stream, not yet enough; dropped.
- ``REFUSE``: from a source that may not learn, of an unexpected payload
  type, or, once latched, of another SSRC than the latched one (a blind
  intruder cannot know it; a NAT that moves the peer keeps it); dropped and
  counted.
- ``ACCEPT``: from the latched source (the leg checks that itself first: an
  address comparison, the only per-packet cost on the relay's fast path).

Who may learn (:class:`LearnMode`, ``rtp.learn_source``):

- ``strict``: nobody; only the SDP's exact address and port is heard.
- ``stream`` (the default): a source on the SDP's host or on the host the
  signalling came from (a NAT'd phone's public address); any source when the
  SDP's address is unreachable, that is not a global address and not the
  signalling host (a private address behind a NAT whose SIP goes through a
  proxy), because only the stream can tell then. Nothing is sent to an
  unreachable address meanwhile (:attr:`SourceLatch.waits_for_source`): it
  would reach nobody, or a stranger on the server's own network.
- ``first``: the old behaviour, kept for peers that break the rules above: the
  first packet from anywhere latches, and nothing re-latches.

RTCP (on its own port or multiplexed) is taken from the latched source's
host, or before latching from the SDP's or the signalling host
(:meth:`SourceLatch.allows_rtcp`); other RTCP is counted and dropped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from mediaserver.config import LearnMode  # rtp.learn_source

__all__ = [
    "STREAM_GAP",
    "STREAM_PACKETS",
    "LearnMode",
    "SourceLatch",
    "Verdict",
]

STREAM_PACKETS = 4  # in-sequence packets that make a stream (80 ms of 20 ms audio)
STREAM_GAP = 1.0  # seconds: a longer silence between two packets starts a stream again
_CANDIDATES = 8  # sources followed at once while learning; more: the oldest is forgotten

Address = tuple[str, int]


class Verdict(Enum):
    ACCEPT = "accept"
    LEARN = "learn"
    PROBATION = "probation"
    REFUSE = "refuse"


@dataclass(slots=True)
class _Stream:
    """A source's packets in sequence so far."""

    ssrc: int
    sequence: int
    at: float
    count: int


class SourceLatch:
    """The media source a leg listens to (module docstring)."""

    def __init__(
        self,
        mode: LearnMode = LearnMode.STREAM,
        *,
        expected: Address | None = None,
        signalling_host: str | None = None,
        payload_types: frozenset[int] = frozenset(),
        stream_packets: int = STREAM_PACKETS,
    ) -> None:
        if stream_packets < 1:
            raise ValueError(f"stream_packets must be at least 1, got {stream_packets}")
        self.mode = mode
        self.expected = expected  # the SDP's address (c= and m= port)
        self.signalling_host = signalling_host  # where the dialog's SIP came from or went to
        self.payload_types = payload_types  # what the peer negotiated (audio, telephone-event)
        self.stream_packets = stream_packets
        self.peer: Address | None = None  # the latched source
        self.peer_ssrc: int | None = None
        self.refused = 0  # RTP packets refused for their source
        self.probation = 0  # RTP packets dropped while their source was being learnt
        self.refused_rtcp = 0
        self.learned = 0  # times a source was latched
        self._streams: dict[Address, _Stream] = {}

    def expect(self, address: Address) -> bool:
        """The SDP gave ``address``; True when it changed, which forgets the latched
        source (RFC 3264 8: the new description says where media goes now)."""
        if address == self.expected:
            return False
        self.expected = address
        self.peer = None
        self.peer_ssrc = None
        return True

    def confirm(self, address: Address) -> None:
        """An authenticated ICE check came from ``address`` (media/ice.py): it is
        the peer's media source and destination, with no probation."""
        if address != self.peer:
            self.expected = self.peer = address
            self.peer_ssrc = None
            self.learned += 1

    @property
    def latches_on_sight(self) -> bool:
        """Whether the first packet from the SDP's address will be the peer at once
        (what :meth:`judge` does, every mode but ``first``), so that someone else (a
        relay worker) may latch it for us (:meth:`latch_to`)."""
        return (
            self.peer is None
            and self.mode is not LearnMode.FIRST
            and self.expected is not None
            and not self.waits_for_source
        )

    def latch_to(self, source: Address, ssrc: int) -> None:
        """The SDP's address was latched elsewhere (a relay worker, on sight)."""
        if source == self.expected and self.peer is None:
            self._latch(source, ssrc)

    def judge(self, addr: Address, sequence: int, ssrc: int, pt: int, now: float) -> Verdict:
        """What to do with an RTP packet from ``addr`` (seconds ``now``, any clock)."""
        source = (addr[0], addr[1])
        if source == self.peer:
            return Verdict.ACCEPT
        if self.mode is LearnMode.FIRST:
            return self._latch(source, ssrc) if self.peer is None else self._refuse()
        if self.peer is None and source == self.expected:
            return self._latch(source, ssrc)
        if not self._may_learn(source[0]) or pt not in self.payload_types:
            return self._refuse()
        if self.peer is not None and ssrc != self.peer_ssrc:
            return self._refuse()  # mid-call, only the latched stream may move
        stream = self._streams.get(source)
        if (
            stream is not None
            and stream.ssrc == ssrc
            and sequence == (stream.sequence + 1) & 0xFFFF
            and 0 <= now - stream.at <= STREAM_GAP
        ):
            stream.count += 1
            stream.sequence, stream.at = sequence, now
        else:
            stream = _Stream(ssrc, sequence, now, 1)
            self._streams.pop(source, None)
            if len(self._streams) >= _CANDIDATES:
                del self._streams[next(iter(self._streams))]
            self._streams[source] = stream
        if stream.count >= self.stream_packets:
            return self._latch(source, ssrc)
        self.probation += 1
        return Verdict.PROBATION

    @property
    def unreachable(self) -> bool:
        """Whether the SDP's address cannot be the peer's as seen from here: not a
        global address nor the signalling host (a NAT's private side). Unknown
        while the signalling host is."""
        expected, signalling = self.expected, self.signalling_host
        if expected is None or signalling is None or expected[0] == signalling:
            return False
        return _not_global(expected[0])

    @property
    def waits_for_source(self) -> bool:
        """Whether media waits for the peer's stream before going anywhere: nothing is
        latched and the SDP's address is unreachable (``stream`` mode only)."""
        return self.peer is None and self.mode is LearnMode.STREAM and self.unreachable

    def allows_rtcp(self, addr: Address) -> bool:
        """Whether RTCP from ``addr`` is the peer's (counted in ``refused_rtcp`` if not)."""
        host = addr[0]
        if self.mode is LearnMode.FIRST:
            return True
        if self.peer is not None:
            allowed = host == self.peer[0]
        elif self.expected is not None and host == self.expected[0]:
            allowed = True
        else:
            allowed = self.mode is LearnMode.STREAM and host == self.signalling_host
        if not allowed:
            self.refused_rtcp += 1
        return allowed

    def _may_learn(self, host: str) -> bool:
        if self.mode is LearnMode.STRICT:
            return False
        expected = self.expected[0] if self.expected is not None else None
        return host in (expected, self.signalling_host) or self.unreachable

    def _latch(self, source: Address, ssrc: int) -> Verdict:
        self.peer = source
        self.peer_ssrc = ssrc
        self.learned += 1
        self._streams.clear()
        return Verdict.LEARN

    def _refuse(self) -> Verdict:
        self.refused += 1
        return Verdict.REFUSE


def _not_global(host: str) -> bool:
    """Whether an address is private in the wide sense (RFC 1918, RFC 6598, loopback,
    link-local, documentation...) or not an IP address at all."""
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a host name: the packets' source can never equal it
