"""Per-leg RTP statistics: RFC 3550 A.1 validation, A.3 loss, A.8 jitter, LSR/DLSR and RTT."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from mediaserver.media.rtcp import (
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    build_compound,
    ntp_from_unix,
    parse_compound,
)
from mediaserver.media.rtp import RtpPacket
from mediaserver.media.stats import (
    MAX_DROPOUT,
    MAX_MISORDER,
    MIN_SEQUENTIAL,
    LegStats,
    ReceiverStats,
    SenderStats,
    rtt_from,
)

FRAME = 160  # 20 ms of 8 kHz audio
PTIME = 0.02
NTP_UNIX_OFFSET = 2_208_988_800


def feed(stats: ReceiverStats, sequences: Iterable[int], *, start: float = 100.0) -> list[bool]:
    """Packets sent every 20 ms and arriving without delay; sequence n carries timestamp 160 n."""
    return [
        stats.update(seq & 0xFFFF, (seq * FRAME) & 0xFFFFFFFF, start + seq * PTIME)
        for seq in sequences
    ]


def counting() -> ReceiverStats:
    """Stats that count from the very first packet (no probation)."""
    return ReceiverStats(min_sequential=1)


# -- RFC 3550 A.1: probation and sequence validation ------------------------------


def test_in_order_stream() -> None:
    stats = counting()
    assert all(feed(stats, range(1000, 1100)))
    assert stats.validated
    assert (stats.expected, stats.received, stats.cumulative_lost) == (100, 100, 0)
    assert stats.extended_highest_sequence == 1099
    assert (stats.duplicates, stats.reordered, stats.restarts) == (0, 0, 0)
    assert stats.packets == 100


def test_probation_holds_back_the_first_packet() -> None:
    stats = ReceiverStats()  # MIN_SEQUENTIAL = 2
    assert feed(stats, [500]) == [False]
    assert not stats.validated
    assert stats.expected == 0
    assert feed(stats, [501, 502]) == [True, True]
    # RFC 3550 A.1: counting starts with the packet that ends probation.
    assert (stats.expected, stats.received, stats.extended_highest_sequence) == (2, 2, 502)
    assert stats.packets == 3


def test_probation_starts_again_when_out_of_sequence() -> None:
    stats = ReceiverStats(min_sequential=3)
    assert feed(stats, [10, 11, 20, 21, 22, 23]) == [False, False, False, False, True, True]
    assert stats.expected == 2
    assert stats.report_block(1, 0.0).highest_sequence == 23


def test_probation_across_the_wrap() -> None:
    stats = ReceiverStats()
    assert feed(stats, [65535, 65536, 65537]) == [False, True, True]
    assert stats.extended_highest_sequence == 1  # counting started at 0, not in cycle 1
    assert stats.expected == 2


def test_min_sequential_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_sequential"):
        ReceiverStats(min_sequential=0)
    with pytest.raises(ValueError, match="clock rate"):
        ReceiverStats(clock_rate=0)


def test_single_loss() -> None:
    stats = counting()
    feed(stats, [n for n in range(1, 101) if n != 50])
    assert (stats.expected, stats.received, stats.cumulative_lost) == (100, 99, 1)
    assert stats.total_lost == 1


def test_burst_loss() -> None:
    stats = counting()
    feed(stats, [*range(0, 40), *range(60, 100)])
    assert stats.cumulative_lost == 20
    block = stats.report_block(7, 200.0)
    assert block.cumulative_lost == 20
    assert block.fraction_lost == (20 << 8) // 100  # 51: 20% as an 8-bit fraction


def test_rfc_3550_a1_constants() -> None:
    assert (MIN_SEQUENTIAL, MAX_DROPOUT, MAX_MISORDER) == (2, 3000, 100)


def test_gap_just_under_max_dropout_is_loss_not_a_jump() -> None:
    stats = counting()
    feed(stats, [10])
    assert stats.update(10 + 2999, 0, 101.0)
    assert stats.cumulative_lost == 2998


def test_gap_of_max_dropout_is_a_jump() -> None:
    stats = counting()
    feed(stats, [10])
    assert not stats.update(10 + 3000, 0, 101.0)
    assert stats.cumulative_lost == 0


def test_reordering() -> None:
    stats = counting()
    assert all(feed(stats, [1, 2, 4, 3, 5, 8, 6, 7, 9]))
    assert stats.reordered == 3
    assert stats.duplicates == 0
    assert stats.cumulative_lost == 0
    assert stats.extended_highest_sequence == 9


def test_duplicate_of_the_highest_packet() -> None:
    stats = counting()
    feed(stats, [1, 2, 3, 3, 4])
    assert stats.duplicates == 1
    assert stats.reordered == 0
    # RFC 3550 6.4.1: received counts duplicates, so the cumulative loss can go negative.
    assert stats.cumulative_lost == -1
    assert stats.report_block(1, 0.0).cumulative_lost == -1
    assert stats.total_lost == 0


def test_duplicate_of_a_late_packet() -> None:
    stats = counting()
    feed(stats, [1, 2, 4, 3, 3, 2, 5])
    assert (stats.reordered, stats.duplicates) == (1, 2)
    assert stats.cumulative_lost == -2
    assert stats.total_lost == 0


def test_misorder_limit() -> None:
    stats = counting()
    feed(stats, range(0, 201))
    # RFC 3550 A.1: 100 (MAX_MISORDER) behind is already a large jump, 99 behind is late.
    assert not stats.update(100, 0, 105.0)
    assert stats.update(101, 0, 105.0)
    assert stats.duplicates == 1  # 101 had arrived


def test_wrap_around_65535() -> None:
    stats = counting()
    assert all(feed(stats, range(65530, 65536 + 6)))
    assert stats.extended_highest_sequence == 65536 + 5
    assert stats.expected == 12
    assert stats.report_block(1, 0.0).highest_sequence == 0x00010005


def test_late_packet_across_the_wrap_counts_no_cycle() -> None:
    stats = counting()
    feed(stats, [65534, 65535, 65537, 65536, 65538])
    assert stats.reordered == 1
    assert stats.extended_highest_sequence == 65536 + 2
    assert stats.cumulative_lost == 0


def test_many_wraps() -> None:
    stats = counting()
    sequence = 0
    for step in range(5 * 65536 // 1000):
        sequence = step * 1000
        stats.update(sequence & 0xFFFF, 0, 0.0)
    assert stats.extended_highest_sequence == sequence
    assert stats.cumulative_lost == sequence + 1 - (5 * 65536 // 1000)


def test_one_large_jump_is_dropped() -> None:
    stats = counting()
    feed(stats, range(1, 11))
    assert not stats.update(5000, 0, 101.0)
    assert stats.update(11, 0, 101.02)
    assert stats.restarts == 0
    assert stats.expected == 11
    assert stats.packets == 12


def test_two_large_jumps_in_sequence_restart_the_stream() -> None:
    stats = counting()
    feed(stats, [*range(1, 6), *range(7, 11)])  # one lost
    assert feed(stats, [5000, 5001, 5002]) == [False, True, True]
    assert stats.restarts == 1
    # RFC 3550 A.1: the statistics start again from the second packet after the jump.
    assert stats.expected == 2
    assert stats.cumulative_lost == 0
    assert stats.extended_highest_sequence == 5002
    # The call record keeps the earlier stream's figures.
    assert stats.total_expected == 12
    assert stats.total_lost == 1


def test_restart_backwards() -> None:
    stats = counting()
    feed(stats, range(40000, 40010))
    assert feed(stats, [100, 101]) == [False, True]
    assert stats.restarts == 1
    assert stats.extended_highest_sequence == 101


def test_ssrc_change_starts_a_new_source() -> None:
    stats = ReceiverStats()
    for n in range(10):
        stats.update(n, n * FRAME, n * PTIME, ssrc=0xAAAA)
    stats.on_sender_report(SenderReport(0xAAAA, ntp_from_unix(1.0), 0, 0, 0), 1.0)
    assert stats.update(300, 0, 1.0, ssrc=0xBBBB) is False  # probation again
    assert stats.update(301, FRAME, 1.02, ssrc=0xBBBB) is True
    assert stats.ssrc == 0xBBBB
    assert stats.ssrc_changes == 1
    assert stats.total_expected == 9 + 1
    block = stats.report_block(0xBBBB, 2.0)
    assert (block.highest_sequence, block.lsr, block.dlsr) == (301, 0, 0)


# -- RFC 3550 A.8: interarrival jitter -----------------------------------------------


def test_constant_interarrival_has_no_jitter() -> None:
    stats = counting()
    feed(stats, range(500))
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)
    assert stats.report_block(1, 200.0).jitter == 0


def test_constant_delay_has_no_jitter() -> None:
    stats = counting()
    for n in range(100):
        stats.update(n, 12345 + n * FRAME, 50.0 + n * PTIME + 0.150)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_alternating_delay_jitter_follows_rfc_3550_a8() -> None:
    stats = counting()
    updates = 60
    for n in range(updates + 1):
        delay = 0.010 if n % 2 else 0.0  # 10 ms = 80 timestamp units, every other packet
        stats.update(n, n * FRAME, 10.0 + n * PTIME + delay)
    # |D| = 80 for every packet after the first: J_n = 80 (1 - (15/16)^n).
    expected = 80 * (1 - (15 / 16) ** updates)
    assert stats.jitter == pytest.approx(expected, rel=1e-6)
    assert stats.report_block(1, 20.0).jitter == int(expected) == 78


def test_jitter_of_first_steps() -> None:
    stats = counting()
    stats.update(0, 0, 0.0)
    stats.update(1, 160, 0.030)  # 10 ms late: D = 80
    assert stats.jitter == pytest.approx(5.0)  # 80 / 16
    stats.update(2, 320, 0.040)  # back on time: D = -80
    assert stats.jitter == pytest.approx(5.0 + (80 - 5.0) / 16)


def test_jitter_across_timestamp_wrap() -> None:
    stats = counting()
    base = 2**32 - 5 * FRAME
    for n in range(20):
        stats.update(n, (base + n * FRAME) & 0xFFFFFFFF, 7.0 + n * PTIME)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_in_timestamp_units_of_the_clock() -> None:
    stats = ReceiverStats(48000, min_sequential=1)
    stats.update(0, 0, 0.0)
    stats.update(1, 960, 0.021)  # 1 ms late at 48 kHz: D = 48
    assert stats.jitter == pytest.approx(3.0)


def test_restart_does_not_jump_the_jitter() -> None:
    stats = counting()
    feed(stats, range(10))
    stats.update(30000, 999_999, 101.0)
    stats.update(30001, 999_999 + FRAME, 101.02)  # restart: a new timestamp base
    assert stats.restarts == 1
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


# -- RFC 3550 A.3: loss per report -----------------------------------------------------


def test_fraction_lost_between_reports() -> None:
    stats = counting()
    feed(stats, [n for n in range(100) if n % 10 != 5])  # 10 lost of 100
    first = stats.report_block(1, 102.0)
    assert (first.fraction_lost, first.cumulative_lost) == (25, 10)  # 10/100 * 256
    feed(stats, range(100, 200))  # none lost
    second = stats.report_block(1, 104.0)
    assert (second.fraction_lost, second.cumulative_lost) == (0, 10)
    feed(stats, range(200, 225))  # then 225-249 lost
    feed(stats, range(251, 300, 2))  # and every other one of the last 50
    third = stats.report_block(1, 106.0)
    assert third.fraction_lost == 128  # 50 of 100
    assert third.cumulative_lost == 10 + 25 + 25


def test_fraction_lost_is_zero_when_duplicates_outnumber_losses() -> None:
    stats = counting()
    feed(stats, [0, 1, 2, 2, 2, 4])
    block = stats.report_block(1, 0.0)
    assert block.fraction_lost == 0
    assert block.cumulative_lost == -1


def test_fraction_lost_with_nothing_new() -> None:
    stats = counting()
    feed(stats, range(10))
    stats.report_block(1, 0.0)
    assert stats.report_block(1, 0.0).fraction_lost == 0


def test_cumulative_lost_clamps_to_24_bits() -> None:
    stats = counting()
    step = 2999  # the largest gap that still counts as loss (MAX_DROPOUT - 1)
    for n in range(3000):
        stats.update((n * step) & 0xFFFF, 0, 0.0)
    assert stats.cumulative_lost == 2999 * (step - 1)
    assert stats.cumulative_lost > 0x7FFFFF
    block = stats.report_block(1, 0.0)
    assert block.cumulative_lost == 0x7FFFFF
    assert block.fraction_lost == 255  # (step - 1) / step of each interval
    assert block.highest_sequence == 2999 * step


def test_report_block_before_any_packet() -> None:
    stats = ReceiverStats()
    assert stats.report_block(9, 0.0) == ReportBlock(9, 0, 0, 0, 0, 0, 0)
    stats.update(7, 0, 0.0)  # on probation
    assert stats.report_block(9, 0.0) == ReportBlock(9, 0, 0, 0, 0, 0, 0)


# -- LSR, DLSR and round-trip time (RFC 3550 6.4.1) -----------------------------------


def test_lsr_and_dlsr_from_the_last_sender_report() -> None:
    stats = counting()
    feed(stats, range(10))
    sr = SenderReport(1, 0x83AA7E80_80000000, 0, 0, 0)  # an NTP time ending in .5 s
    stats.on_sender_report(sr, arrival=100.0)
    block = stats.report_block(1, now=102.5)
    assert block.lsr == 0x7E808000  # middle 32 bits
    assert block.dlsr == 163840  # 2.5 s in 1/65536 s
    stats.on_sender_report(SenderReport(1, 0x0001_0002_0003_0004, 0, 0, 0), arrival=103.0)
    block = stats.report_block(1, now=103.25)
    assert (block.lsr, block.dlsr) == (0x00020003, 16384)


def test_no_sender_report_means_zero_lsr_and_dlsr() -> None:
    stats = counting()
    feed(stats, range(10))
    block = stats.report_block(1, 1000.0)
    assert (block.lsr, block.dlsr) == (0, 0)


def ntp_time(seconds: int, fraction: float) -> float:
    """The Unix time of NTP second ``seconds`` plus ``fraction``."""
    return seconds - NTP_UNIX_OFFSET + fraction


def test_rtt_from_the_rfc_3550_example() -> None:
    # RFC 3550 6.4.1: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000 give 6.125 s.
    arrival = ntp_time(0xE8F0_B710, 0.5)
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xB7052000, dlsr=0x00054000)
    assert rtt_from(block, arrival) == 6.125


def test_rtt_across_the_wrap_of_the_middle_bits() -> None:
    arrival = ntp_time(0xE8F1_0001, 0.0)  # middle bits 0x0001:0000
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xFFFF8000, dlsr=0x00004000)  # 0.5 s before, 0.25
    assert rtt_from(block, arrival) == 1.25


def test_rtt_unknown_or_inconsistent() -> None:
    arrival = ntp_time(0xE8F0_B710, 0.5)
    assert rtt_from(ReportBlock(1, 0, 0, 0, 0, lsr=0, dlsr=0), arrival) is None
    # The peer claims to have held our SR longer than it has existed.
    late = ReportBlock(1, 0, 0, 0, 0, lsr=0xB7100000, dlsr=0x00010000)
    assert rtt_from(late, arrival) is None
    # A few 1/65536 s below zero is truncation, an RTT of zero.
    rounding = ReportBlock(1, 0, 0, 0, 0, lsr=0xB7100000, dlsr=0x00008002)
    assert rtt_from(rounding, arrival) == 0.0


# -- sending ---------------------------------------------------------------------------


def test_sender_counts_and_report() -> None:
    sender = SenderStats()
    for n in range(50):
        sender.on_sent(1000 + n * FRAME, 160, 10.0 + n * PTIME)
    report = sender.sender_report(0x1234, now=11.0, reports=[ReportBlock(9, 0, 0, 0, 0, 0, 0)])
    assert (report.packet_count, report.octet_count) == (50, 8000)
    assert report.ntp_timestamp == ntp_from_unix(11.0)
    # RFC 3550 6.4.1: the RTP time of the report instant, 20 ms after the last packet.
    assert report.rtp_timestamp == 1000 + 49 * FRAME + FRAME
    assert report.reports == (ReportBlock(9, 0, 0, 0, 0, 0, 0),)


def test_sender_report_rtp_timestamp_wraps() -> None:
    sender = SenderStats(48000)
    sender.on_sent(2**32 - 100, 10, 5.0)
    assert sender.sender_report(1, now=5.01).rtp_timestamp == 380


def test_sender_report_before_sending() -> None:
    report = SenderStats().sender_report(1, now=1.0)
    assert (report.rtp_timestamp, report.packet_count, report.octet_count) == (0, 0, 0)


def test_sender_keeps_the_rtt_and_the_peer_report() -> None:
    sender = SenderStats()
    arrival = ntp_time(0xE8F0_B710, 0.5)
    block = ReportBlock(1, 64, 3, 100, 40, lsr=0xB7052000, dlsr=0x00054000)
    sender.on_report_block(block, arrival)
    assert sender.rtt == 6.125
    sender.on_report_block(ReportBlock(1, 0, 3, 200, 8, 0, 0), arrival + 5)  # no LSR: keep RTT
    assert sender.rtt == 6.125
    assert sender.remote_report is not None
    assert sender.remote_report.highest_sequence == 200


# -- a leg, end to end ------------------------------------------------------------------


def exchange(packets: Sequence[RtcpPacket]) -> list[RtcpPacket]:
    """Through the wire format and back, as the peer would receive it."""
    return parse_compound(build_compound(packets))


def test_two_legs_report_to_each_other() -> None:
    alice, bob = LegStats(0xA11CE), LegStats(0xB0B)
    one_way = 0.040
    t = 1_750_000_000.0
    for n in range(250):  # five seconds of audio each way, with packet 100 lost towards bob
        sent = t + n * PTIME
        alice.on_rtp_sent(n * FRAME, 160, sent)
        bob.on_rtp_sent(n * FRAME, 160, sent)
        if n != 100:
            bob.on_rtp_received(
                RtpPacket(0, False, n, n * FRAME, 0xA11CE, b"x" * 160), sent + one_way
            )
        alice.on_rtp_received(RtpPacket(0, False, n, n * FRAME, 0xB0B, b"y" * 160), sent + one_way)
    t += 5.0
    alice_report = alice.report(t, "alice@host")
    assert isinstance(alice_report[0], SenderReport)
    assert alice_report[1] == SourceDescription((SdesChunk.with_cname(0xA11CE, "alice@host"),))
    bob.on_rtcp(exchange(alice_report), t + one_way)
    # Bob answers 1.5 s later; Alice measures the round trip without his holding time.
    bob_report = bob.report(t + one_way + 1.5, "bob@host")
    first = bob_report[0]
    assert isinstance(first, SenderReport)
    (about_alice,) = first.reports
    assert about_alice.ssrc == 0xA11CE
    assert about_alice.cumulative_lost == 1
    assert about_alice.fraction_lost == (1 << 8) // 249  # 1 of 249: probation took packet 0
    assert about_alice.dlsr == 1.5 * 65536
    alice.on_rtcp(exchange(bob_report), t + one_way + 1.5 + one_way)
    assert alice.sender.rtt == pytest.approx(2 * one_way, abs=3 / 65536)

    snapshot = alice.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["packets_in"] == 250
    assert snapshot["packets_out"] == 250
    assert snapshot["bytes_in"] == 250 * 160
    assert snapshot["bytes_out"] == 250 * 160
    assert snapshot["lost"] == 0
    assert snapshot["rtt_ms"] == pytest.approx(80.0, abs=0.05)
    assert snapshot["remote_lost"] == 1
    assert snapshot["remote_fraction_lost"] == round(1 / 256, 4)
    assert snapshot["rtcp_in"] == 1
    assert snapshot["rtcp_out"] == 1
    bob_snapshot = bob.snapshot()
    assert bob_snapshot["lost"] == 1
    assert bob_snapshot["fraction_lost"] == round(1 / 249, 4)
    assert bob_snapshot["rtt_ms"] is None  # Alice has not reported on Bob with an LSR yet


def test_snapshot_of_a_quiet_leg() -> None:
    assert LegStats(1).snapshot() == {
        "packets_in": 0,
        "packets_out": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "lost": 0,
        "fraction_lost": 0.0,
        "jitter_ms": 0.0,
        "rtt_ms": None,
        "duplicates": 0,
        "reordered": 0,
        "restarts": 0,
        "ssrc_changes": 0,
        "remote_lost": None,
        "remote_fraction_lost": None,
        "remote_jitter_ms": None,
        "rtcp_in": 0,
        "rtcp_out": 0,
    }


def test_snapshot_reports_jitter_in_milliseconds() -> None:
    leg = LegStats(1, min_sequential=1)
    for n in range(400):
        delay = 0.010 if n % 2 else 0.0
        leg.on_rtp_received(RtpPacket(0, False, n, n * FRAME, 2, b""), n * PTIME + delay)
    assert leg.snapshot()["jitter_ms"] == pytest.approx(10.0, abs=0.01)


def test_receiver_only_leg_sends_receiver_reports() -> None:
    leg = LegStats(1)
    assert isinstance(leg.report(0.0, "x")[0], ReceiverReport)
    leg.on_rtp_sent(0, 160, 0.0)
    assert isinstance(leg.report(5.0, "x")[0], SenderReport)
    # RFC 3550 6.4: still an SR for the report after, then RR once nothing was sent.
    assert isinstance(leg.report(10.0, "x")[0], SenderReport)
    assert isinstance(leg.report(15.0, "x")[0], ReceiverReport)


def test_report_has_no_block_until_the_peer_is_validated() -> None:
    leg = LegStats(1)
    assert leg.report(0.0, "x")[0] == ReceiverReport(1, ())
    leg.on_rtp_received(RtpPacket(0, False, 5, 0, 2, b""), 0.0)
    assert leg.report(1.0, "x")[0] == ReceiverReport(1, ())
    leg.on_rtp_received(RtpPacket(0, False, 6, 160, 2, b""), 0.02)
    report = leg.report(2.0, "x")[0]
    assert isinstance(report, ReceiverReport)
    (block,) = report.reports
    assert block.ssrc == 2


def test_reports_about_other_sources_are_ignored() -> None:
    leg = LegStats(1)
    leg.on_rtp_received(RtpPacket(0, False, 5, 0, 2, b""), 0.0)
    other = ReportBlock(99, 255, 1000, 0, 0, 0, 0)
    leg.on_rtcp([ReceiverReport(2, (other,))], 1.0)
    assert leg.sender.remote_report is None
    leg.on_rtcp([SenderReport(3, ntp_from_unix(1.0), 0, 0, 0)], 1.0)  # not the peer's SSRC
    assert leg.receiver.report_block(2, 2.0).lsr == 0


def test_goodbye() -> None:
    alice, bob = LegStats(0xA), LegStats(0xB)
    bob.on_rtp_received(RtpPacket(0, False, 5, 0, 0xA, b""), 0.0)
    packets = alice.goodbye_report(1.0, "alice", "hangup")
    assert packets[-1] == Goodbye((0xA,), "hangup")
    bob.on_rtcp(exchange(packets), 1.0)
    assert bob.goodbye == Goodbye((0xA,), "hangup")
    carol = LegStats(0xC)
    carol.on_rtp_received(RtpPacket(0, False, 5, 0, 0xD, b""), 0.0)
    carol.on_rtcp([ReceiverReport(0xA), Goodbye((0xA,))], 1.0)
    assert carol.goodbye is None  # a BYE from a source we do not hear


def test_leg_counts_ssrc_changes() -> None:
    leg = LegStats(1, min_sequential=1)
    for n in range(10):
        leg.on_rtp_received(RtpPacket(0, False, n, n * FRAME, 2, b""), n * PTIME)
    for n in range(100, 110):
        if n != 105:
            leg.on_rtp_received(RtpPacket(0, False, n, n * FRAME, 3, b""), n * PTIME)
    snapshot = leg.snapshot()
    assert snapshot["ssrc_changes"] == 1
    assert snapshot["lost"] == 1
    assert snapshot["fraction_lost"] == 0.05  # 1 of the 20 expected over both sources
    assert leg.receiver.ssrc == 3


# -- properties --------------------------------------------------------------------------


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A stream from a random start: some packets lost, some duplicated, some a little late."""
    start = draw(st.integers(0, 0xFFFF))
    count = draw(st.integers(2, 300))
    kept = [0] + [n for n in range(1, count) if draw(st.booleans()) or n == count - 1]
    order: list[tuple[float, int]] = [(-1.0, 0)]
    for n in kept[1:]:
        # Late by up to 40 packets: within MAX_MISORDER of the highest number at any time.
        order.append((n + draw(st.floats(0, 40)), n))
        if draw(st.integers(0, 9)) == 0:
            order.append((n + draw(st.floats(0, 40)), n))  # a duplicate
    order.sort()
    return start, [n for _, n in order]


@given(arrivals())
def test_counts_match_a_model_of_the_stream(stream: tuple[int, list[int]]) -> None:
    start, offsets = stream
    stats = counting()
    for offset in offsets:
        assert stats.update((start + offset) & 0xFFFF, 0, 0.0)
    unique = set(offsets)
    highest = max(offsets)
    reordered = 0
    seen: set[int] = set()
    top = -1
    for offset in offsets:
        if offset < top and offset not in seen:
            reordered += 1
        seen.add(offset)
        top = max(top, offset)
    assert stats.expected == highest + 1
    assert stats.received == len(offsets)
    assert stats.duplicates == len(offsets) - len(unique)
    assert stats.reordered == reordered
    assert stats.total_lost == highest + 1 - len(unique)
    assert stats.cumulative_lost == highest + 1 - len(offsets)
    assert stats.extended_highest_sequence == start + highest


@given(
    st.integers(0, 2**32 - 1),
    st.floats(0, 1e9),
    st.floats(0, 2.0),
    st.lists(st.integers(1, 3), min_size=1, max_size=100),
)
def test_jitter_is_zero_for_any_constant_transit(
    first_ts: int, start: float, delay: float, steps: list[int]
) -> None:
    stats = counting()
    frame = 0
    for n, step in enumerate(steps):
        frame += step
        timestamp = (first_ts + frame * FRAME) & 0xFFFFFFFF
        stats.update(n, timestamp, start + frame * PTIME + delay)
    assert stats.jitter < 0.01


# -- carried by a relay worker (media/relay_worker.py): the packet-driven figures -----


def test_reception_carried_elsewhere_and_back_equals_counting_here() -> None:
    """A stream counted partly by another ReceiverStats (a relay worker's), its
    figures adopted back, reports exactly as one counted throughout; what RTCP
    drove here (the last SR, the report priors) is kept."""
    here, throughout = ReceiverStats(), ReceiverStats()
    sequences = [*range(0, 50), *range(52, 90), 60, *range(90, 130)]  # a loss, a late one
    feed(here, sequences[:40])
    feed(throughout, sequences[:40])
    sr = SenderReport(
        ssrc=7, ntp_timestamp=ntp_from_unix(100.5), rtp_timestamp=0, packet_count=1, octet_count=1
    )
    for stats in (here, throughout):
        stats.on_sender_report(sr, 100.6)
        stats.report_block(1, 100.8)
    away = ReceiverStats()
    away.adopt_reception(here.reception())
    feed(away, sequences[40:])
    feed(throughout, sequences[40:])
    here.adopt_reception(away.reception())
    assert here.reception() == throughout.reception()
    assert here.report_block(1, 103.0) == throughout.report_block(1, 103.0)


def test_a_stream_restarted_elsewhere_starts_its_report_priors_again() -> None:
    here = counting()
    feed(here, range(100))
    here.report_block(1, 103.0)
    away = counting()
    away.adopt_reception(here.reception())
    away.update(40000, 0, 104.0, None)
    away.update(40001, 160, 104.02, None)  # the jump repeated: the sender restarted (A.1)
    here.adopt_reception(away.reception())
    block = here.report_block(1, 105.0)
    assert here.restarts == 1 and block.fraction_lost == 0 and block.cumulative_lost == 0


def test_sending_carried_elsewhere() -> None:
    sender, away = SenderStats(), SenderStats()
    sender.on_sent(160, 160, 100.0)
    away.adopt_sending(sender.sending())
    away.on_sent(320, 160, 100.02)
    sender.adopt_sending(away.sending())
    assert (sender.packets, sender.octets, sender.last_rtp_timestamp) == (2, 320, 320)


def _run(
    sequences: Sequence[int], start: float, jitter_ms: Sequence[float]
) -> tuple[NDArray[np.uint16], NDArray[np.uint32], NDArray[np.float64]]:
    """A run of packets: their sequence numbers, timestamps and arrivals (with delays)."""
    seqs = np.array([s & 0xFFFF for s in sequences], np.uint16)
    stamps = np.array([(s * FRAME) & 0xFFFFFFFF for s in sequences], np.uint32)
    arrivals = np.array(
        [start + s * PTIME + delay / 1000 for s, delay in zip(sequences, jitter_ms, strict=True)]
    )
    return seqs, stamps, arrivals


@given(
    first=st.integers(0, 0xFFFF),
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=4),
    delays=st.lists(st.floats(0, 40), min_size=1200, max_size=1200),
)
def test_update_run_is_update_packet_by_packet(
    first: int, lengths: list[int], delays: list[float]
) -> None:
    """Runs counted at once (a relay worker's figures) end exactly where packet by
    packet ends (jitter to rounding): across the wrap, on probation, at any length."""
    at_once, one_by_one = ReceiverStats(), ReceiverStats()
    sequence = first
    for length in lengths:
        run = range(sequence, sequence + length)
        seqs, stamps, arrivals = _run(run, 100.0, delays[: len(run)])
        at_once.update_run(seqs, stamps, arrivals, 7)
        for s, t, a in zip(seqs.tolist(), stamps.tolist(), arrivals.tolist(), strict=True):
            one_by_one.update(s, t, a, 7)
        sequence += length
    mine, theirs = at_once.reception(), one_by_one.reception()
    jitter = 6
    assert mine[:jitter] + mine[jitter + 1 :] == theirs[:jitter] + theirs[jitter + 1 :]
    assert mine[jitter] == pytest.approx(theirs[jitter], rel=1e-9, abs=1e-9)


def test_update_run_with_a_gap_or_a_late_packet_goes_packet_by_packet() -> None:
    at_once, one_by_one = ReceiverStats(), ReceiverStats()
    for stats in (at_once, one_by_one):
        feed(stats, range(10))
    sequences = [10, 11, 14, 12, 15, 15]  # a loss, a late one, a duplicate
    seqs, stamps, arrivals = _run(sequences, 100.0, [0.0] * len(sequences))
    at_once.update_run(seqs, stamps, arrivals, None)
    for s, t, a in zip(seqs.tolist(), stamps.tolist(), arrivals.tolist(), strict=True):
        one_by_one.update(s, t, a, None)
    assert at_once.reception() == one_by_one.reception()
    assert at_once.duplicates == 1 and at_once.reordered == 1
