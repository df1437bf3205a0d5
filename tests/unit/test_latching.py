"""SourceLatch: which RTP source a leg hears (symmetric RTP without "RTP bleed")."""

from __future__ import annotations

import pytest

from mediaserver.media.latching import (
    STREAM_GAP,
    STREAM_PACKETS,
    LearnMode,
    SourceLatch,
    Verdict,
)

PCMU, TE = 0, 101
# Global addresses (the documentation ranges are not global, so they would read as
# unreachable SDP addresses); no traffic goes anywhere, the latch only compares them.
SDP = ("80.1.2.3", 4000)  # a global address: reachable
PRIVATE_SDP = ("192.168.1.20", 4000)  # what a phone behind NAT writes
SIGNALLING = "80.1.2.9"  # where its SIP came from (its NAT's public address)
NAT = (SIGNALLING, 61000)  # where its RTP really comes from
INTRUDER = ("80.6.6.6", 5000)


def latch(
    mode: LearnMode = LearnMode.STREAM, expected: tuple[str, int] | None = SDP
) -> SourceLatch:
    return SourceLatch(
        mode,
        expected=expected,
        signalling_host=SIGNALLING,
        payload_types=frozenset((PCMU, TE)),
    )


def stream(
    source: SourceLatch,
    addr: tuple[str, int],
    count: int,
    *,
    ssrc: int = 0xAAAA,
    first: int = 100,
    pt: int = PCMU,
    start: float = 10.0,
) -> list[Verdict]:
    """``count`` packets in sequence, 20 ms apart."""
    return [
        source.judge(addr, (first + i) & 0xFFFF, ssrc, pt, start + i * 0.02) for i in range(count)
    ]


LEARNT = [Verdict.PROBATION] * (STREAM_PACKETS - 1) + [Verdict.LEARN]


# -- the SDP's own address ------------------------------------------------------------


def test_the_sdp_address_latches_on_its_first_packet() -> None:
    source = latch()
    assert source.judge(SDP, 1, 0xAAAA, PCMU, 0.0) is Verdict.LEARN
    assert source.peer == SDP and source.peer_ssrc == 0xAAAA and source.learned == 1
    assert source.judge(SDP, 2, 0xAAAA, PCMU, 0.02) is Verdict.ACCEPT
    assert source.judge(SDP, 9, 0xBBBB, 8, 0.04) is Verdict.ACCEPT  # the leg judges those


def test_a_four_tuple_address_is_the_same_source() -> None:
    source = latch()
    assert source.judge((*SDP, 0, 0), 1, 0xAAAA, PCMU, 0.0) is Verdict.LEARN  # type: ignore[arg-type]
    assert source.peer == SDP


# -- a third address ("RTP bleed") ----------------------------------------------------


def test_one_packet_from_a_third_address_is_refused() -> None:
    source = latch()
    assert source.judge(INTRUDER, 1, 0xDEAD, PCMU, 0.0) is Verdict.REFUSE
    assert source.peer is None and source.refused == 1


def test_a_stream_from_a_third_address_is_refused_while_the_sdp_is_reachable() -> None:
    source = latch()
    assert stream(source, INTRUDER, 20) == [Verdict.REFUSE] * 20
    assert source.peer is None and source.refused == 20 and source.probation == 0
    assert source.judge(SDP, 1, 0xAAAA, PCMU, 1.0) is Verdict.LEARN  # the real peer still can


def test_after_latching_a_third_address_is_refused_whatever_it_sends() -> None:
    source = latch()
    source.judge(SDP, 1, 0xAAAA, PCMU, 0.0)
    assert stream(source, INTRUDER, 10, ssrc=0xAAAA) == [Verdict.REFUSE] * 10
    assert source.peer == SDP


# -- learning a NAT'd peer ------------------------------------------------------------


@pytest.mark.parametrize(
    "addr", [NAT, (SDP[0], 4010)], ids=["signalling host", "sdp host, another port"]
)
def test_a_stream_from_a_consistent_source_is_learnt(addr: tuple[str, int]) -> None:
    source = latch()
    assert stream(source, addr, STREAM_PACKETS) == LEARNT
    assert source.peer == addr and source.peer_ssrc == 0xAAAA
    assert source.probation == STREAM_PACKETS - 1 and source.refused == 0


def test_a_private_sdp_address_latches_at_once_when_packets_come_from_it() -> None:
    source = latch(expected=PRIVATE_SDP)
    assert source.judge(PRIVATE_SDP, 1, 0xAAAA, PCMU, 0.0) is Verdict.LEARN


def test_an_unreachable_sdp_address_lets_any_source_learn_by_stream() -> None:
    # SIP through a proxy, SDP private: only the stream tells where the phone is.
    source = latch(expected=PRIVATE_SDP)
    assert stream(source, INTRUDER, STREAM_PACKETS) == LEARNT
    assert source.peer == INTRUDER


@pytest.mark.parametrize("host", ["10.0.0.1", "100.64.0.1", "127.0.0.1", "192.0.2.10", "fe80::1"])
def test_non_global_sdp_addresses_are_unreachable(host: str) -> None:
    source = latch(expected=(host, 4000))
    assert stream(source, INTRUDER, STREAM_PACKETS) == LEARNT


def test_a_host_name_in_the_sdp_is_unreachable() -> None:
    source = latch(expected=("phone.example.com", 4000))
    assert stream(source, INTRUDER, STREAM_PACKETS) == LEARNT


def test_a_private_sdp_on_the_signalling_host_is_reachable() -> None:
    source = SourceLatch(
        expected=("10.0.0.5", 4000), signalling_host="10.0.0.5", payload_types=frozenset({PCMU})
    )
    assert stream(source, ("10.0.0.99", 4000), 10) == [Verdict.REFUSE] * 10


def test_without_sdp_only_the_signalling_host_learns() -> None:
    source = latch(expected=None)
    assert stream(source, INTRUDER, 10) == [Verdict.REFUSE] * 10
    assert stream(source, NAT, STREAM_PACKETS) == LEARNT


def test_media_waits_for_the_stream_only_while_the_sdp_is_unreachable() -> None:
    source = latch(expected=PRIVATE_SDP)
    assert source.unreachable and source.waits_for_source
    stream(source, NAT, STREAM_PACKETS)
    assert source.unreachable and not source.waits_for_source  # latched: media goes there
    assert not latch().waits_for_source  # a global SDP address
    assert not latch(LearnMode.STRICT, expected=PRIVATE_SDP).waits_for_source
    assert not latch(LearnMode.FIRST, expected=PRIVATE_SDP).waits_for_source


def test_an_unknown_signalling_host_leaves_the_sdp_reachable() -> None:
    source = SourceLatch(expected=("10.0.0.5", 4000), payload_types=frozenset({PCMU}))
    assert not source.unreachable and not source.waits_for_source
    assert stream(source, ("10.0.0.99", 4000), 10) == [Verdict.REFUSE] * 10
    assert stream(source, ("10.0.0.5", 4002), STREAM_PACKETS) == LEARNT


# -- what makes a stream ----------------------------------------------------------------


def test_a_gap_in_sequence_starts_the_stream_again() -> None:
    source = latch()
    assert stream(source, NAT, STREAM_PACKETS - 1) == LEARNT[:-1]
    assert source.judge(NAT, 100 + STREAM_PACKETS, 0xAAAA, PCMU, 11.0) is Verdict.PROBATION
    assert source.peer is None
    assert (
        stream(source, NAT, STREAM_PACKETS - 1, first=101 + STREAM_PACKETS, start=11.02)[-1]
        is Verdict.LEARN
    )


def test_a_sequence_going_back_is_no_stream() -> None:
    source = latch()
    verdicts = [source.judge(NAT, seq, 0xAAAA, PCMU, 0.0) for seq in (5, 4, 3, 2, 1, 0)]
    assert verdicts == [Verdict.PROBATION] * 6


def test_the_stream_wraps_around_the_sequence_space() -> None:
    source = latch()
    assert stream(source, NAT, STREAM_PACKETS, first=0xFFFF - 1) == LEARNT


def test_another_ssrc_starts_the_stream_again() -> None:
    source = latch()
    ssrcs = [1, 2] * STREAM_PACKETS
    verdicts = [source.judge(NAT, 100 + i, s, PCMU, i * 0.02) for i, s in enumerate(ssrcs)]
    assert verdicts == [Verdict.PROBATION] * len(ssrcs)


def test_a_slow_trickle_is_no_stream() -> None:
    source = latch()
    times = [i * (STREAM_GAP + 0.1) for i in range(STREAM_PACKETS * 2)]
    verdicts = [source.judge(NAT, 100 + i, 0xAAAA, PCMU, t) for i, t in enumerate(times)]
    assert verdicts == [Verdict.PROBATION] * len(times)


def test_a_clock_going_back_is_no_stream() -> None:
    source = latch()
    times = [10.0 - i for i in range(STREAM_PACKETS)]
    verdicts = [source.judge(NAT, 100 + i, 0xAAAA, PCMU, t) for i, t in enumerate(times)]
    assert Verdict.LEARN not in verdicts


@pytest.mark.parametrize("pt", [8, 13, 96])
def test_unexpected_payload_types_are_refused(pt: int) -> None:
    source = latch()
    assert stream(source, NAT, 10, pt=pt) == [Verdict.REFUSE] * 10
    assert source.peer is None


def test_telephone_events_make_a_stream_too() -> None:
    source = latch()
    assert stream(source, NAT, STREAM_PACKETS, pt=TE) == LEARNT


def test_two_sources_are_followed_apart() -> None:
    source = latch()
    for i in range(STREAM_PACKETS - 1):  # interleaved: neither resets the other
        assert source.judge(NAT, 100 + i, 1, PCMU, i * 0.02) is Verdict.PROBATION
        assert source.judge((SDP[0], 4010), 500 + i, 2, PCMU, i * 0.02) is Verdict.PROBATION
    assert source.judge((SDP[0], 4010), 500 + STREAM_PACKETS - 1, 2, PCMU, 0.1) is Verdict.LEARN
    assert source.peer == (SDP[0], 4010)


def test_many_candidates_forget_the_oldest() -> None:
    source = latch(expected=PRIVATE_SDP)  # any source may learn
    stream(source, NAT, STREAM_PACKETS - 1)
    for port in range(9):  # more candidates than are followed
        source.judge(("80.9.9.9", 7000 + port), 1, 9, PCMU, 10.1)
    # The NAT'd stream was forgotten: it starts again, and still gets learnt.
    assert stream(source, NAT, STREAM_PACKETS, first=100 + STREAM_PACKETS - 1, start=10.2) == LEARNT


def test_stream_packets_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stream_packets"):
        SourceLatch(stream_packets=0)


def test_a_one_packet_stream_learns_at_once() -> None:
    source = SourceLatch(expected=SDP, signalling_host=SIGNALLING, payload_types=frozenset({0}))
    source.stream_packets = 1
    assert source.judge(NAT, 1, 1, PCMU, 0.0) is Verdict.LEARN


# -- mid-call ---------------------------------------------------------------------------


def test_mid_call_a_new_source_needs_the_latched_ssrc() -> None:
    source = latch()
    assert stream(source, NAT, STREAM_PACKETS) == LEARNT
    moved = (SIGNALLING, 61002)  # the NAT gave the phone a new port
    assert stream(source, moved, 10, ssrc=0xBEEF, first=200, start=11.0) == [Verdict.REFUSE] * 10
    assert source.peer == NAT
    assert stream(source, moved, STREAM_PACKETS, first=300, start=12.0) == LEARNT
    assert source.peer == moved and source.learned == 2


def test_mid_call_one_packet_never_relatches() -> None:
    source = latch()
    source.judge(SDP, 1, 0xAAAA, PCMU, 0.0)
    assert source.judge((SDP[0], 4010), 2, 0xAAAA, PCMU, 0.02) is Verdict.PROBATION
    assert source.peer == SDP


def test_an_ssrc_change_of_the_peer_is_followed() -> None:
    source = latch()
    source.judge(SDP, 1, 0xAAAA, PCMU, 0.0)
    source.peer_ssrc = 0xCCCC  # the leg tells the latch (the peer restarted its stream)
    assert stream(source, NAT, STREAM_PACKETS, ssrc=0xCCCC) == LEARNT


# -- a new SDP ------------------------------------------------------------------------


def test_a_new_sdp_address_forgets_the_latched_source() -> None:
    source = latch()
    source.judge(SDP, 1, 0xAAAA, PCMU, 0.0)
    assert source.expect(SDP) is False and source.peer == SDP  # a refresh: unchanged
    moved = ("80.1.2.4", 5000)
    assert source.expect(moved) is True
    assert source.peer is None and source.peer_ssrc is None
    assert source.judge(SDP, 2, 0xAAAA, PCMU, 0.02) is Verdict.REFUSE
    assert source.judge(moved, 1, 0x1111, PCMU, 0.04) is Verdict.LEARN


# -- modes ------------------------------------------------------------------------------


def test_strict_hears_only_the_sdp_address() -> None:
    source = latch(LearnMode.STRICT)
    assert stream(source, NAT, 10) == [Verdict.REFUSE] * 10
    assert source.judge(SDP, 1, 0xAAAA, PCMU, 1.0) is Verdict.LEARN
    assert stream(source, (SDP[0], 4010), 10, start=2.0) == [Verdict.REFUSE] * 10
    assert source.refused == 20


def test_strict_with_an_unreachable_sdp_learns_nothing() -> None:
    source = latch(LearnMode.STRICT, expected=PRIVATE_SDP)
    assert stream(source, INTRUDER, 10) == [Verdict.REFUSE] * 10


def test_first_latches_the_first_packet_from_anywhere_and_never_moves() -> None:
    source = latch(LearnMode.FIRST)
    assert source.judge(INTRUDER, 1, 0xDEAD, 96, 0.0) is Verdict.LEARN
    assert source.judge(SDP, 1, 0xAAAA, PCMU, 0.0) is Verdict.REFUSE
    assert stream(source, NAT, 10, ssrc=0xDEAD) == [Verdict.REFUSE] * 10
    assert source.peer == INTRUDER


def test_modes_are_named_as_in_the_configuration() -> None:
    assert [m.value for m in LearnMode] == ["strict", "stream", "first"]
    assert LearnMode("stream") is LearnMode.STREAM


# -- RTCP -------------------------------------------------------------------------------


def test_rtcp_before_latching_comes_from_the_sdp_or_signalling_host() -> None:
    source = latch()
    assert source.allows_rtcp((SDP[0], 4001))
    assert source.allows_rtcp((SIGNALLING, 61001))
    assert not source.allows_rtcp((INTRUDER[0], 4001))
    assert source.refused_rtcp == 1


def test_rtcp_after_latching_comes_from_the_peer_host() -> None:
    source = latch()
    stream(source, NAT, STREAM_PACKETS)
    assert source.allows_rtcp((SIGNALLING, 61001))
    assert not source.allows_rtcp((SDP[0], 4001))  # the SDP host is not the peer's any more
    assert not source.allows_rtcp(INTRUDER)
    assert source.refused_rtcp == 2


def test_rtcp_in_strict_mode_ignores_the_signalling_host() -> None:
    source = latch(LearnMode.STRICT)
    assert source.allows_rtcp((SDP[0], 4001))
    assert not source.allows_rtcp((SIGNALLING, 61001))


def test_rtcp_in_first_mode_is_taken_from_anywhere() -> None:
    source = latch(LearnMode.FIRST)
    assert source.allows_rtcp(INTRUDER) and source.refused_rtcp == 0
