"""Per-leg RTP statistics (RFC 3550 6.4, A.1, A.3, A.8) and the RTCP reports made from them.

Theory of operation
-------------------
Three pieces, all sans-I/O: they are told what arrived or left and when
(float seconds), and never read a clock or touch a socket.

:class:`ReceiverStats` follows one remote source. Every received RTP
packet goes through :meth:`ReceiverStats.update`, which is RFC 3550 A.1:
a new source is on probation until ``MIN_SEQUENTIAL`` packets arrive in
sequence; afterwards a packet up to ``MAX_DROPOUT`` ahead advances the
highest sequence number (counting a cycle when it wraps past 65535), one up
to ``MAX_MISORDER`` behind is late (a duplicate, or reordered), and anything
further away is dropped unless the next packet follows it, which means the
sender restarted its sequence: the statistics then start again. A bitmap of
the last 128 sequence numbers tells duplicates from reordered packets. The
same call updates the interarrival jitter (A.8): the arrival time is turned
into RTP clock units so that the transit time can be compared with the
previous packet's, and the estimate moves 1/16 of the way towards each new
difference. :meth:`ReceiverStats.report_block` is A.3: expected and lost
packets for the whole stream, and the fraction lost since the previous
block, which is why it must be called once per report sent. LSR and DLSR
come from the last SR heard (:meth:`ReceiverStats.on_sender_report`).

:class:`SenderStats` counts what we send, maps RTP time to wall-clock time
for the sender info of an SR, and keeps what the peer reports about our
stream, round-trip time included (``rtt_from``, RFC 3550 6.4.1).

:class:`LegStats` joins both for one call leg: it routes parsed RTCP
packets, builds the compound report to send (SR when we sent since the
report before last, else RR; then SDES CNAME), and gives ``snapshot()``,
the JSON-friendly figures the call record keeps.

Times that end up as NTP timestamps (the SR's sender info, and the arrival
time given to ``rtt_from``) must be wall-clock Unix times; a ``LegStats``
is simplest fed ``time.time()`` throughout. Jitter and DLSR use only
differences, so any one clock serves them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from mediaserver.media.rtcp import (
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_from_unix,
    ntp_middle_32,
)
from mediaserver.media.rtp import RtpPacket

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "LegStats",
    "ReceiverStats",
    "SenderStats",
    "rtt_from",
]

# RFC 3550 A.1: the suggested validation constants.
MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100

_SEQ_MOD = 1 << 16
_HISTORY = 128  # sequence numbers remembered behind the highest, more than MAX_MISORDER
_HISTORY_MASK = (1 << _HISTORY) - 1
_MAX_LOST = 0x7FFFFF
_MIN_LOST = -0x800000
_U32 = 0xFFFFFFFF
# Truncating three 1/65536 s quantities can put an RTT of zero a few units below zero.
_RTT_ROUNDING = 4

# What the packets themselves move forward in a ReceiverStats: a relay worker
# (media/relay_worker.py) counts a relayed stream with these and gives them back,
# while what RTCP drives (the last SR heard, the priors of the report blocks sent)
# stays with the leg in the main process.
_RECEPTION = (
    "ssrc",
    "packets",
    "duplicates",
    "reordered",
    "restarts",
    "ssrc_changes",
    "jitter",
    "_started",
    "_probation",
    "_max_seq",
    "_base_seq",
    "_bad_seq",
    "_cycles",
    "_received",
    "_seen",
    "_stream_duplicates",
    "_earlier_expected",
    "_earlier_lost",
    "_transit",
)


class ReceiverStats:
    """Reception statistics of one remote RTP source."""

    def __init__(self, clock_rate: int = 8000, *, min_sequential: int = MIN_SEQUENTIAL) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        if min_sequential < 1:
            raise ValueError(f"min_sequential must be at least 1, got {min_sequential}")
        self.clock_rate = clock_rate
        self.min_sequential = min_sequential
        self.ssrc: int | None = None
        self.packets = 0  # every packet given to update, valid or not
        self.duplicates = 0
        self.reordered = 0
        self.restarts = 0  # sequence restarts of the same source (A.1 large jump twice)
        self.ssrc_changes = 0
        self.jitter = 0.0  # RFC 3550 A.8, in RTP timestamp units
        self._started = False
        self._probation = 0
        self._max_seq = 0
        self._base_seq = 0
        self._bad_seq = _SEQ_MOD + 1  # never equal to a 16-bit sequence number
        self._cycles = 0  # wraps of the sequence number, times 2**16
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._seen = 0  # bit i: highest - i was received
        self._stream_duplicates = 0
        self._earlier_expected = 0  # from streams before a restart or SSRC change
        self._earlier_lost = 0
        self._transit: float | None = None
        self._lsr = 0
        self._sr_arrival: float | None = None

    # -- getters ---------------------------------------------------------------

    @property
    def validated(self) -> bool:
        """Whether the source passed probation (RFC 3550 A.1) and is being counted."""
        return self._started and self._probation == 0

    @property
    def extended_highest_sequence(self) -> int:
        return self._cycles + self._max_seq if self.validated else 0

    @property
    def expected(self) -> int:
        """Packets expected since the current stream started (RFC 3550 A.3)."""
        if not self.validated:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def received(self) -> int:
        """Valid packets received in the current stream, late and duplicate ones included."""
        return self._received if self.validated else 0

    @property
    def cumulative_lost(self) -> int:
        """RFC 3550 A.3: expected minus received; duplicates can make it negative."""
        return self.expected - self.received

    @property
    def total_expected(self) -> int:
        """Packets expected over every stream this source sent (restarts, SSRC changes)."""
        return self._earlier_expected + self.expected

    @property
    def total_lost(self) -> int:
        """Packets never received over every stream, duplicates not counted as received."""
        return self._earlier_lost + self._stream_lost()

    def _stream_lost(self) -> int:
        return max(0, self.expected - (self.received - self._stream_duplicates))

    # -- input -------------------------------------------------------------------

    def update(
        self, sequence: int, timestamp: int, arrival: float, ssrc: int | None = None
    ) -> bool:
        """Account for one received RTP packet; return whether it is valid (RFC 3550 A.1).

        Packets of a source on probation, and a first packet after a large jump,
        are not valid. ``ssrc``, when given, detects a change of source.
        """
        if (
            ssrc == self.ssrc
            and sequence == (self._max_seq + 1) & 0xFFFF
            and self._started
            and not self._probation
        ):
            # The common case, inline (it runs for every packet a bridge relays): the
            # next packet of a validated source, what A.1's in-order branch does.
            self.packets += 1
            if sequence == 0:
                self._cycles += _SEQ_MOD
            self._max_seq = sequence
            self._seen = (self._seen << 1 | 1) & _HISTORY_MASK
            self._received += 1
            transit = arrival * self.clock_rate - timestamp
            previous = self._transit
            self._transit = transit
            if previous is not None:
                d = (transit - previous + 2**31) % 2**32 - 2**31
                self.jitter += (abs(d) - self.jitter) / 16  # RFC 3550 A.8
            return True
        self.packets += 1
        if ssrc is not None:
            if self.ssrc is not None and ssrc != self.ssrc:
                self.ssrc_changes += 1
                self._retire_stream()
                self._started = False
                self._lsr = 0
                self._sr_arrival = None
            self.ssrc = ssrc
        if not self._started:
            # RFC 3550 A.1: a new source starts on probation, as if the previous packet was seq-1.
            self._init_sequence(sequence)
            self._max_seq = (sequence - 1) & 0xFFFF
            self._probation = self.min_sequential
            self._started = True
        if not self._sequence_valid(sequence):
            return False
        self._update_jitter(timestamp, arrival)
        return True

    def reception(self) -> tuple[object, ...]:
        """The packet-driven part of the statistics, for :meth:`adopt_reception`
        in another process (a relay worker counting the stream for a while)."""
        return tuple(getattr(self, name) for name in _RECEPTION)

    def adopt_reception(self, state: tuple[object, ...]) -> None:
        """Take the figures :meth:`reception` gave elsewhere; what RTCP drives is
        kept, except that a stream restarted meanwhile starts its report priors
        again (as :meth:`_init_sequence` would have here)."""
        restarted = (self.restarts, self.ssrc_changes, self._base_seq) != (
            state[4],
            state[5],
            state[10],
        )
        for name, value in zip(_RECEPTION, state, strict=True):
            setattr(self, name, value)
        if restarted:
            self._received_prior = self._expected_prior = 0

    def update_run(
        self,
        sequences: NDArray[np.uint16],
        timestamps: NDArray[np.uint32],
        arrivals: NDArray[np.float64],
        ssrc: int | None,
    ) -> None:
        """:meth:`update` for packets of ``ssrc`` in the order they arrived (what a
        relay worker kept of them since its last figures). The usual run, the
        next packets of a validated source with no gap, is counted at once;
        anything else goes packet by packet through :meth:`update`."""
        count = len(sequences)
        if count == 0:
            return
        following = (self._max_seq + 1 + np.arange(count)) & 0xFFFF
        if not (
            ssrc == self.ssrc
            and self._started
            and not self._probation
            and np.array_equal(sequences, following)
        ):
            for sequence, timestamp, arrival in zip(
                sequences.tolist(), timestamps.tolist(), arrivals.tolist(), strict=True
            ):
                self.update(sequence, timestamp, arrival, ssrc)
            return
        # The in-order branch of update, for the whole run (RFC 3550 A.1).
        self.packets += count
        self._received += count
        self._cycles += _SEQ_MOD * int(np.count_nonzero(sequences == 0))
        self._max_seq = int(sequences[-1])
        self._seen = (self._seen << count | (1 << count) - 1) & _HISTORY_MASK
        # RFC 3550 A.8 unrolled: J_m = a^m J_0 + sum over k of a^(m-k) |D_k| / 16,
        # with a = 15/16 and D_k the transit difference of packet k (wrapped at 2**32).
        transit = arrivals * self.clock_rate - timestamps.astype(np.float64)
        previous = self._transit
        self._transit = float(transit[-1])
        if previous is not None:
            transit = np.concatenate(([previous], transit))
        d = np.abs((np.diff(transit) + 2**31) % 2**32 - 2**31)
        if len(d):
            decay = (15 / 16) ** np.arange(len(d) - 1, -1, -1)
            self.jitter = (15 / 16) ** len(d) * self.jitter + float(decay @ d) / 16

    def on_sender_report(self, report: SenderReport, arrival: float) -> None:
        """Remember the source's latest SR for the LSR and DLSR of our next report."""
        # RFC 3550 6.4.1: LSR is the middle 32 bits of the NTP timestamp of the last SR.
        self._lsr = ntp_middle_32(report.ntp_timestamp)
        self._sr_arrival = arrival

    # -- output ------------------------------------------------------------------

    def report_block(self, ssrc: int, now: float) -> ReportBlock:
        """The report block about this source for a report sent at ``now``.

        Call it once per report sent: the fraction lost covers the packets since
        the previous call (RFC 3550 A.3).
        """
        dlsr = 0
        if self._sr_arrival is not None:
            # RFC 3550 6.4.1: DLSR is in units of 1/65536 seconds.
            dlsr = min(max(int((now - self._sr_arrival) * 65536), 0), _U32)
        if not self.validated:
            return ReportBlock(ssrc, 0, 0, 0, 0, self._lsr, dlsr)
        expected = self.expected
        # RFC 3550 A.3: the cumulative number lost is clamped to a signed 24-bit field.
        lost = min(max(expected - self._received, _MIN_LOST), _MAX_LOST)
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            # RFC 3550 A.3: an 8-bit fixed-point fraction, the binary point at the left edge.
            fraction = (lost_interval << 8) // expected_interval
        return ReportBlock(
            ssrc,
            fraction,
            lost,
            self.extended_highest_sequence & _U32,
            int(self.jitter),
            self._lsr,
            dlsr,
        )

    # -- RFC 3550 A.1 --------------------------------------------------------------

    def _init_sequence(self, sequence: int) -> None:
        self._base_seq = sequence
        self._max_seq = sequence
        self._bad_seq = _SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._seen = 1
        self._stream_duplicates = 0
        self._transit = None  # a restarted stream has a new timestamp base

    def _retire_stream(self) -> None:
        self._earlier_expected += self.expected
        self._earlier_lost += self._stream_lost()

    def _sequence_valid(self, sequence: int) -> bool:
        udelta = (sequence - self._max_seq) & 0xFFFF
        if self._probation:
            if sequence == (self._max_seq + 1) & 0xFFFF:
                self._probation -= 1
                self._max_seq = sequence
                if self._probation == 0:
                    self._init_sequence(sequence)
                    self._received += 1
                    return True
            else:
                # RFC 3550 A.1: out of sequence during probation, start counting again.
                self._probation = self.min_sequential - 1
                self._max_seq = sequence
            return False
        if udelta < MAX_DROPOUT:
            # RFC 3550 A.1: in order, with a permissible gap.
            if udelta == 0:
                self._count_duplicate()
            else:
                if sequence < self._max_seq:
                    self._cycles += _SEQ_MOD
                self._max_seq = sequence
                self._seen = (self._seen << udelta | 1) & _HISTORY_MASK
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            # RFC 3550 A.1: a very large jump; two in a row mean the sender restarted.
            if sequence != self._bad_seq:
                self._bad_seq = (sequence + 1) & 0xFFFF
                return False
            self._retire_stream()
            self.restarts += 1
            self._init_sequence(sequence)
        else:
            # RFC 3550 A.1: a late packet, duplicate or reordered.
            behind = _SEQ_MOD - udelta
            if self._seen >> behind & 1:
                self._count_duplicate()
            else:
                self.reordered += 1
                self._seen |= 1 << behind
        self._received += 1
        return True

    def _count_duplicate(self) -> None:
        self.duplicates += 1
        self._stream_duplicates += 1

    # -- RFC 3550 A.8 ----------------------------------------------------------------

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        # RFC 3550 6.4.1: transit time in timestamp units; its offset cancels out in D.
        transit = arrival * self.clock_rate - timestamp
        previous = self._transit
        self._transit = transit
        if previous is None:
            return
        # RTP timestamps wrap at 2**32: take the shortest distance.
        d = (transit - previous + 2**31) % 2**32 - 2**31
        # RFC 3550 A.8: J += (|D| - J) / 16, a gain that reduces noise yet converges.
        self.jitter += (abs(d) - self.jitter) / 16


def rtt_from(block: ReportBlock, arrival: float) -> float | None:
    """The round-trip time in seconds from a report block about our stream (RFC 3550 6.4.1).

    ``arrival`` is the wall-clock Unix time the report arrived. None when the
    peer has had no SR from us yet (LSR 0) or the figures are inconsistent.
    """
    if block.lsr == 0:
        return None
    # RFC 3550 6.4.1: RTT = A - LSR - DLSR, all in 1/65536 s, modulo 2**32.
    now = ntp_middle_32(ntp_from_unix(arrival))
    units = (now - block.lsr - block.dlsr) & _U32
    if units >= 0x80000000:
        return 0.0 if _U32 + 1 - units <= _RTT_ROUNDING else None
    return units / 65536


class SenderStats:
    """What we send on a leg, and what the peer reports about it."""

    def __init__(self, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.clock_rate = clock_rate
        self.packets = 0
        self.octets = 0  # RFC 3550 6.4.1: payload octets, headers and padding excluded
        self.last_rtp_timestamp: int | None = None
        self.last_sent_at: float | None = None
        self.rtt: float | None = None  # seconds, from the latest report that allowed it
        self.remote_report: ReportBlock | None = None  # the peer's latest block about us

    def on_sent(self, rtp_timestamp: int, payload_size: int, now: float) -> None:
        self.packets += 1
        self.octets += payload_size
        self.last_rtp_timestamp = rtp_timestamp
        self.last_sent_at = now

    def sending(self) -> tuple[int, int, int | None, float | None]:
        """What sending moves forward (packets, octets, last timestamp and time),
        for :meth:`adopt_sending` in another process; the peer's reports stay."""
        return self.packets, self.octets, self.last_rtp_timestamp, self.last_sent_at

    def adopt_sending(self, state: tuple[int, int, int | None, float | None]) -> None:
        self.packets, self.octets, self.last_rtp_timestamp, self.last_sent_at = state

    def sender_report(
        self, ssrc: int, now: float, reports: Sequence[ReportBlock] = ()
    ) -> SenderReport:
        """An SR for ``now`` (wall-clock Unix time), carrying ``reports``."""
        rtp_timestamp = 0
        if self.last_rtp_timestamp is not None and self.last_sent_at is not None:
            # RFC 3550 6.4.1: the RTP time of the same instant as the NTP time, not a packet's.
            elapsed = round((now - self.last_sent_at) * self.clock_rate)
            rtp_timestamp = (self.last_rtp_timestamp + elapsed) & _U32
        return SenderReport(
            ssrc,
            ntp_from_unix(now),
            rtp_timestamp,
            # RFC 3550 6.4.1: both counts wrap around at 2**32.
            self.packets & _U32,
            self.octets & _U32,
            tuple(reports),
        )

    def on_report_block(self, block: ReportBlock, arrival: float) -> None:
        """Take in a report block the peer sent about our stream."""
        self.remote_report = block
        rtt = rtt_from(block, arrival)
        if rtt is not None:
            self.rtt = rtt


class LegStats:
    """RTP and RTCP statistics of one call leg: our source ``ssrc`` and the peer's."""

    def __init__(
        self, ssrc: int, clock_rate: int = 8000, *, min_sequential: int = MIN_SEQUENTIAL
    ) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.receiver = ReceiverStats(clock_rate, min_sequential=min_sequential)
        self.sender = SenderStats(clock_rate)
        self.bytes_in = 0
        self.rtcp_in = 0
        self.rtcp_out = 0
        self.goodbye: Goodbye | None = None  # the peer's RTCP BYE, if it sent one
        # RFC 3550 6.4: packets sent as of the last report and the one before it.
        self._sent_at_reports = (0, 0)

    def on_rtp_received(self, packet: RtpPacket, arrival: float) -> bool:
        """Account for a received RTP packet; return whether it is valid (RFC 3550 A.1)."""
        self.bytes_in += len(packet.payload)
        return self.receiver.update(packet.sequence, packet.timestamp, arrival, packet.ssrc)

    def on_rtp_fields(
        self, sequence: int, timestamp: int, size: int, arrival: float, ssrc: int
    ) -> bool:
        """:meth:`on_rtp_received` from header fields (the relay's fast path)."""
        self.bytes_in += size
        return self.receiver.update(sequence, timestamp, arrival, ssrc)

    def on_rtp_sent(self, rtp_timestamp: int, payload_size: int, now: float) -> None:
        self.sender.on_sent(rtp_timestamp, payload_size, now)

    def on_rtcp(self, packets: Sequence[RtcpPacket], arrival: float) -> None:
        """Take in a parsed compound packet from the peer."""
        self.rtcp_in += 1
        peer = self.receiver.ssrc
        for packet in packets:
            if isinstance(packet, SenderReport | ReceiverReport):
                if isinstance(packet, SenderReport) and peer in (None, packet.ssrc):
                    self.receiver.on_sender_report(packet, arrival)
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.sender.on_report_block(block, arrival)
            elif isinstance(packet, Goodbye) and (peer is None or peer in packet.sources):
                self.goodbye = packet

    def report(self, now: float, cname: str) -> list[RtcpPacket]:
        """The compound report to send at ``now``: SR or RR, then SDES CNAME (RFC 3550 6.1)."""
        self.rtcp_out += 1
        peer = self.receiver.ssrc
        blocks: tuple[ReportBlock, ...] = ()
        if peer is not None and self.receiver.validated:
            blocks = (self.receiver.report_block(peer, now),)
        before_last, last = self._sent_at_reports
        self._sent_at_reports = (last, self.sender.packets)
        # RFC 3550 6.4: an SR if we sent data since the report before last, else an RR.
        first: RtcpPacket
        if self.sender.packets > before_last:
            first = self.sender.sender_report(self.ssrc, now, blocks)
        else:
            first = ReceiverReport(self.ssrc, blocks)
        return [first, SourceDescription((SdesChunk.with_cname(self.ssrc, cname),))]

    def goodbye_report(self, now: float, cname: str, reason: str | None = None) -> list[RtcpPacket]:
        """The last compound packet of the leg: a report, SDES CNAME and BYE (RFC 3550 6.6)."""
        return [*self.report(now, cname), Goodbye((self.ssrc,), reason)]

    def snapshot(self) -> dict[str, int | float | None]:
        """The leg's figures for the call record (JSON-friendly: numbers and None)."""
        receiver = self.receiver
        expected = receiver.total_expected
        lost = receiver.total_lost
        remote = self.sender.remote_report
        rtt = self.sender.rtt
        return {
            "packets_in": receiver.packets,
            "packets_out": self.sender.packets,
            "bytes_in": self.bytes_in,
            "bytes_out": self.sender.octets,
            "lost": lost,
            "fraction_lost": round(lost / expected, 4) if expected else 0.0,
            "jitter_ms": self._ms(receiver.jitter),
            "rtt_ms": None if rtt is None else round(rtt * 1000, 2),
            "duplicates": receiver.duplicates,
            "reordered": receiver.reordered,
            "restarts": receiver.restarts,
            "ssrc_changes": receiver.ssrc_changes,
            "remote_lost": None if remote is None else remote.cumulative_lost,
            "remote_fraction_lost": None
            if remote is None
            else round(remote.fraction_lost / 256, 4),
            "remote_jitter_ms": None if remote is None else self._ms(remote.jitter),
            "rtcp_in": self.rtcp_in,
            "rtcp_out": self.rtcp_out,
        }

    def _ms(self, timestamp_units: float) -> float:
        return round(timestamp_units * 1000 / self.clock_rate, 2)
