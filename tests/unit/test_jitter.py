"""JitterBuffer: reordering, duplicates, late packets, loss, wrap-around, resyncs, adaptive depth.

The tests drive the buffer as the media engine does: packets pushed at their arrival
times, one pop per 20 ms tick. Payloads carry their own identity: every 10 ms unit is
80 bytes of one "unit id" derived from its RTP timestamp, and the test decoder turns
byte b into the sample 100 * b, so each played frame says which audio it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pytest

from mediaserver.media import g711
from mediaserver.media.jitter import JitterBuffer
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.rtp import RtpPacket

TICK = 0.020
T0 = 1_000_000  # first RTP timestamp of the default stream
UNIT = 80


def unit_id(ts: int) -> int:
    """The identity of the 10 ms unit at RTP timestamp ``ts`` (1-250)."""
    return (ts % 2**32 // UNIT) % 250 + 1


def payload_at(ts: int, samples: int) -> bytes:
    return b"".join(bytes([unit_id(ts + offset)]) * UNIT for offset in range(0, samples, UNIT))


def decode(data: bytes) -> Pcm:
    return np.frombuffer(data, dtype=np.uint8).astype(np.int16) * 100


@dataclass
class Sent:
    arrival: float
    packet: RtpPacket


def stream(
    count: int,
    *,
    ptime_ms: int = 20,
    first: int = 0,
    ts0: int = T0,
    seq0: int = 1000,
    ssrc: int = 0x1234,
    t0: float = 0.0,
    extra: Callable[[int], float] = lambda index: 0.0,
    marker_first: bool = False,
) -> list[Sent]:
    """Packets ``first`` .. ``first + count - 1`` of a steady stream, with arrival jitter."""
    samples = ptime_ms * 8
    out = []
    for index in range(first, first + count):
        ts = ts0 + index * samples
        packet = RtpPacket(
            0,
            marker_first and index == first,
            (seq0 + index) & 0xFFFF,
            ts & 0xFFFFFFFF,
            ssrc,
            payload_at(ts, samples),
        )
        out.append(Sent(t0 + index * ptime_ms / 1000 + extra(index), packet))
    return out


@dataclass
class Output:
    kind: str  # played, concealed or silence
    frame: Pcm

    @property
    def ident(self) -> int:
        """The unit id of the frame's first half (0 for silence)."""
        return int(self.frame[0]) // 100


def run(
    jb: JitterBuffer,
    sent: Iterable[Sent],
    ticks: int,
    *,
    phase: float = 0.010,
    start_tick: int = 0,
) -> list[Output]:
    """Push ``sent`` at their arrival times and pop at ``k * 20 ms + phase``; pushes at the
    same instant as a pop go first."""
    events: list[tuple[float, int, Sent | None]] = [(s.arrival, 0, s) for s in sent]
    events += [((start_tick + k) * TICK + phase, 1, None) for k in range(ticks)]
    events.sort(key=lambda event: (event[0], event[1]))
    out = []
    for when, _, item in events:
        if item is not None:
            jb.push(item.packet, when)
            continue
        before = dict(jb.stats)
        frame = jb.pop(when)
        assert frame.shape == (FRAME_SAMPLES,) and frame.dtype == np.int16
        changed = [k for k in ("played", "concealed", "silence") if jb.stats[k] != before.get(k, 0)]
        assert len(changed) == 1, changed
        out.append(Output(changed[0], frame))
    return out


def played_ids(outputs: list[Output]) -> list[int]:
    return [o.ident for o in outputs if o.kind == "played"]


def expected_ids(first: int, count: int, ts0: int = T0) -> list[int]:
    return [unit_id(ts0 + FRAME_SAMPLES * index) for index in range(first, first + count)]


def consecutive(ids: list[int]) -> bool:
    """Whether ``ids`` are the unit ids of consecutive 20 ms frames (two units apart)."""
    return all(b == (a + 1) % 250 + 1 for a, b in itertools.pairwise(ids))


def assert_whole_frames(outputs: list[Output]) -> None:
    """Every played frame is one unbroken 20 ms frame: two consecutive units."""
    for out in outputs:
        if out.kind == "played":
            first, second = int(out.frame[0]) // 100, int(out.frame[UNIT]) // 100
            assert second == first % 250 + 1
            assert np.all(out.frame[:UNIT] == out.frame[0])
            assert np.all(out.frame[UNIT:] == out.frame[UNIT])


# --- basic playout -------------------------------------------------------------------------


def test_pop_before_any_packet_is_silence() -> None:
    jb = JitterBuffer(decode)
    frame = jb.pop(0.0)
    assert frame.shape == (160,) and frame.dtype == np.int16 and not frame.any()
    assert jb.stats["silence"] == 1


def test_in_order_stream_plays_every_frame_once_with_minimum_delay() -> None:
    jb = JitterBuffer(decode)
    outputs = run(jb, stream(50), 50)
    assert [o.kind for o in outputs] == ["played"] * 50
    assert played_ids(outputs) == expected_ids(0, 50)
    assert_whole_frames(outputs)
    # One frame, plus the 10 ms each packet waits for its tick.
    assert jb.stats["current_delay_ms"] == 30
    assert jb.target_delay_ms == 20
    assert jb.stats["pushed"] == 50 and jb.stats["played"] == 50
    for counter in ("concealed", "duplicates", "late", "resyncs", "dropped_overflow", "shrinks"):
        assert jb.stats[counter] == 0


def test_real_g711_audio_comes_out_decoded() -> None:
    jb = JitterBuffer(g711.ulaw_decode)
    pcm = (np.sin(np.arange(1600) * 0.3) * 8000).astype(np.int16)
    sent = [
        Sent(i * TICK, RtpPacket(0, False, i, 160 * i, 5, g711.ulaw_encode(pcm[160 * i :][:160])))
        for i in range(10)
    ]
    outputs = run(jb, sent, 10)
    got = np.concatenate([o.frame for o in outputs])
    assert np.array_equal(got, g711.ulaw_decode(g711.ulaw_encode(pcm)))


def test_returned_frame_belongs_to_the_caller() -> None:
    jb = JitterBuffer(decode)
    outputs = run(jb, stream(2), 2)
    outputs[1].frame[:] = 0  # a mixer scaling in place must not change the concealment
    after = run(jb, [], 1, start_tick=2)
    assert after[0].kind == "concealed"
    assert after[0].frame.any()


@pytest.mark.parametrize("max_delay_ms", [0, 10, 19])
def test_max_delay_below_one_frame_is_refused(max_delay_ms: int) -> None:
    with pytest.raises(ValueError, match="at least 20"):
        JitterBuffer(decode, max_delay_ms)


@pytest.mark.parametrize("size", [0, 1, 79, 81, 159, 161])
def test_payloads_not_whole_10ms_are_dropped_and_counted(size: int) -> None:
    jb = JitterBuffer(decode)
    jb.push(RtpPacket(0, False, 1, 0, 1, bytes(size)), 0.0)
    assert jb.stats["bad_payload"] == 1 and jb.stats["pushed"] == 0
    assert jb.pop(0.0).shape == (160,)


# --- reordering, duplicates, late packets -----------------------------------------------


def test_reordered_within_the_tick_plays_in_order() -> None:
    sent = stream(20)
    # Packets 8, 9, 10 arrive as 10, 8, 9 (10 early), all before the tick that plays 8.
    sent[10].arrival, sent[8].arrival, sent[9].arrival = 0.1605, 0.1606, 0.1607
    jb = JitterBuffer(decode)
    outputs = run(jb, sent, 20)
    assert played_ids(outputs) == expected_ids(0, 20)
    assert jb.stats["concealed"] == 0 and jb.stats["late"] == 0


def test_reordered_within_the_depth_plays_in_order() -> None:
    # 40 ms delay spikes on every fourth packet make the jitter estimate grow the buffer
    # (the first spikes cost a few frames); later a packet is overtaken by the next one
    # and arrives 35 ms late, which the grown buffer absorbs.
    jb = JitterBuffer(decode)
    sent = stream(60, extra=lambda i: 0.04 if i % 4 == 1 and i < 40 else 0.0)
    sent[50].arrival += 0.035
    sent[51].arrival += 0.012
    assert sent[51].arrival < sent[50].arrival
    outputs = run(jb, sent, 60)
    assert jb.target_delay_ms > 40
    assert [o.kind for o in outputs[20:]] == ["played"] * 40
    assert consecutive(played_ids(outputs)[-40:])
    assert jb.stats["late"] <= 3  # only spikes before the buffer had grown


def test_duplicates_are_dropped_and_counted() -> None:
    sent = stream(20)
    again = sent[5].packet
    # The same packet twice; the same audio under a new sequence number; and a duplicate
    # of a packet played long ago.
    sent.append(Sent(0.105, again))
    sent.append(Sent(0.106, RtpPacket(0, False, 4000, again.timestamp, again.ssrc, again.payload)))
    sent.append(Sent(0.300, sent[2].packet))
    jb = JitterBuffer(decode)
    outputs = run(jb, sent, 20)
    assert played_ids(outputs) == expected_ids(0, 20)
    assert jb.stats["duplicates"] == 3
    assert jb.stats["late"] == 0 and jb.stats["concealed"] == 0


def test_packet_arriving_after_its_time_is_late_dropped_and_counted() -> None:
    sent = stream(30)
    sent[10].arrival += 0.2  # 200 ms late: far beyond the depth
    jb = JitterBuffer(decode)
    outputs = run(jb, sent, 30)
    ids = played_ids(outputs)
    assert ids == [i for i in expected_ids(0, 30) if i != unit_id(T0 + 1600)][: len(ids)]
    assert len(ids) >= 28
    assert jb.stats["late"] == 1
    assert jb.stats["concealed"] >= 1


def test_slightly_late_packet_still_plays_by_growing_the_delay() -> None:
    sent = stream(30)
    sent[10].arrival += 0.025  # misses its tick by 15 ms
    jb = JitterBuffer(decode)
    outputs = run(jb, sent, 31)
    assert played_ids(outputs) == expected_ids(0, 30)
    assert jb.stats["late"] == 0
    assert jb.stats["stretches"] == 1 and jb.stats["concealed"] == 1
    assert jb.stats["current_delay_ms"] == 50  # one frame more than before


# --- loss ----------------------------------------------------------------------------------


def lost(sent: list[Sent], *indices: int) -> list[Sent]:
    return [s for i, s in enumerate(sent) if i not in indices]


def test_single_loss_is_one_attenuated_repeat() -> None:
    jb = JitterBuffer(decode)
    # Ticks 25 ms after each packet: the next packet is already in when one is missing.
    outputs = run(jb, lost(stream(30), 10), 29, phase=0.025)
    kinds = [o.kind for o in outputs]
    assert kinds.count("concealed") == 1 and jb.stats["concealed"] == 1
    gap = kinds.index("concealed")
    before, repeat, after = outputs[gap - 1], outputs[gap], outputs[gap + 1]
    assert np.array_equal(repeat.frame, before.frame >> 1)  # -6 dB
    assert after.ident == unit_id(T0 + 160 * 11)
    assert played_ids(outputs) == [i for i in expected_ids(0, 29) if i != unit_id(T0 + 1600)]


def test_burst_loss_fades_to_silence_then_resumes() -> None:
    jb = JitterBuffer(decode)
    outputs = run(jb, lost(stream(40), *range(10, 16)), 40, phase=0.025)
    kinds = [o.kind for o in outputs]
    first = kinds.index("concealed")
    length = kinds[first:].index("played")
    assert 6 <= length <= 7  # six lost frames, and perhaps one tick of waiting for them
    assert jb.stats["concealed"] == length
    last = outputs[first - 1].frame
    frames = [o.frame for o in outputs[first : first + length]]
    for repeat in range(3):
        assert np.array_equal(frames[repeat], last >> (repeat + 1))  # -6, -12, -18 dB
    for frame in frames[3:]:
        assert not frame.any()  # then silence
    assert outputs[first + length].ident == unit_id(T0 + 160 * 16)
    # In order, without the lost frames; the delay the wait added is shed later by dropping
    # one frame (two frames over target: it does not wait for a pause).
    ids = played_ids(outputs)
    assert ids == sorted(ids) and not set(ids) & set(expected_ids(10, 6))
    assert len(set(expected_ids(0, 30)) - set(ids)) == 6 + jb.stats["shrinks"]


def test_half_frame_lost_from_10ms_packets_conceals_only_that_half() -> None:
    jb = JitterBuffer(decode)
    outputs = run(jb, lost(stream(40, ptime_ms=10), 21), 19)
    played = [o for o in outputs if o.kind == "played"]
    half = [o for o in played if int(o.frame[UNIT]) // 100 != o.ident % 250 + 1]
    assert len(half) == 1 and jb.stats["half_concealed"] == 1
    before = played[next(i for i, o in enumerate(played) if o is half[0]) - 1]
    # The received first half plays; the missing second half repeats the last one, -6 dB.
    assert half[0].ident == unit_id(T0 + 80 * 20)
    assert np.array_equal(half[0].frame[UNIT:], before.frame[UNIT:] >> 1)
    assert jb.stats["concealed"] == 0 and len(played) == 18


def test_stream_that_stops_fades_out_then_counts_silence() -> None:
    jb = JitterBuffer(decode)
    outputs = run(jb, stream(10), 40)
    last = outputs[9].frame
    tail = outputs[10:]
    for repeat in range(3):
        assert np.array_equal(tail[repeat].frame, last >> (repeat + 1))
    assert not any(o.frame.any() for o in tail[3:])
    # Concealment while a packet might still come; after 200 ms without one, silence.
    kinds = [o.kind for o in tail]
    concealed = kinds.count("concealed")
    assert kinds == ["concealed"] * concealed + ["silence"] * (len(kinds) - concealed)
    assert 8 <= concealed <= 10


# --- wrap-around ---------------------------------------------------------------------------


def test_sequence_wraps_from_65535_to_0() -> None:
    jb = JitterBuffer(decode)
    sent = stream(30, seq0=65520)
    assert sent[15].packet.sequence == 65535 and sent[16].packet.sequence == 0
    sent.append(Sent(sent[17].arrival + 0.001, sent[14].packet))  # a duplicate across the wrap
    outputs = run(jb, sent, 30)
    assert played_ids(outputs) == expected_ids(0, 30)
    assert jb.stats["duplicates"] == 1 and jb.stats["late"] == 0
    assert jb.stats["resyncs"] == 0


def test_timestamp_wraps_at_2_to_the_32() -> None:
    ts0 = 2**32 - 160 * 12
    jb = JitterBuffer(decode)
    sent = stream(30, ts0=ts0)
    assert sent[11].packet.timestamp == 2**32 - 160 and sent[12].packet.timestamp == 0
    sent[11].arrival += 0.025  # and it is overtaken by the packet after the wrap
    assert sent[11].arrival > sent[12].arrival
    outputs = run(jb, sent, 31)
    assert played_ids(outputs) == expected_ids(0, 30, ts0)
    assert jb.stats["stretches"] == 1 and jb.stats["concealed"] == 1
    for counter in ("late", "resyncs", "duplicates", "dropped_overflow"):
        assert jb.stats[counter] == 0


def test_both_wrap_together_with_a_loss() -> None:
    ts0 = 2**32 - 160 * 5
    jb = JitterBuffer(decode)
    outputs = run(jb, lost(stream(20, ts0=ts0, seq0=65531), 5), 20, phase=0.025)
    assert jb.stats["concealed"] == 1 and jb.stats["resyncs"] == 0
    assert played_ids(outputs) == [i for i in expected_ids(0, 20, ts0) if i != unit_id(0)]


# --- resynchronisation ---------------------------------------------------------------------


def test_ssrc_change_resynchronises() -> None:
    first = stream(10)
    second = stream(10, first=10, ts0=77_777_777, seq0=5, ssrc=0xBEEF)
    # A packet of the old source arrives after the switch (it would be its packet 10).
    straggler = Sent(
        0.215, RtpPacket(0, False, 1010, T0 + 1600, 0x1234, payload_at(T0 + 1600, 160))
    )
    jb = JitterBuffer(decode)
    outputs = run(jb, [*first, *second, straggler], 20)
    assert jb.stats["resyncs"] == 1
    assert jb.stats["stale_ssrc"] == 1
    assert played_ids(outputs) == expected_ids(0, 10) + expected_ids(10, 10, 77_777_777)


def test_marker_after_silence_resynchronises_to_the_new_talkspurt() -> None:
    jb = JitterBuffer(decode)
    talk = stream(10)
    # 300 ms of silence suppression: the next talkspurt starts with the marker bit.
    later = stream(10, first=25, ts0=T0 + 4000, marker_first=True)
    outputs = run(jb, [*talk, *later], 35)
    assert jb.stats["resyncs"] == 1
    assert played_ids(outputs) == expected_ids(0, 10) + expected_ids(25, 10, T0 + 4000)
    # It plays from the first tick after its first packet, at the minimum delay again,
    # whatever the buffer did during the pause.
    assert [o.kind for o in outputs[25:35]] == ["played"] * 10
    assert outputs[25].ident == unit_id(T0 + 4000 + 25 * 160)
    assert jb.stats["current_delay_ms"] == 30


def test_marker_inside_a_talkspurt_is_not_a_resync() -> None:
    sent = stream(20)
    packet = sent[8].packet
    sent[8].packet = RtpPacket(
        0, True, packet.sequence, packet.timestamp, packet.ssrc, packet.payload
    )
    jb = JitterBuffer(decode)
    outputs = run(jb, sent, 20)
    assert jb.stats["resyncs"] == 0
    assert played_ids(outputs) == expected_ids(0, 20)


def test_timestamp_jump_beyond_a_second_resynchronises() -> None:
    jb = JitterBuffer(decode)
    sent = stream(10) + stream(10, first=10, ts0=T0 + 5 * 8000)
    outputs = run(jb, sent, 20)
    assert jb.stats["resyncs"] == 1
    assert played_ids(outputs) == expected_ids(0, 10) + expected_ids(10, 10, T0 + 5 * 8000)


def test_timestamp_jump_backwards_resynchronises() -> None:
    jb = JitterBuffer(decode)
    sent = stream(10) + stream(10, first=10, ts0=T0 - 3 * 8000)
    outputs = run(jb, sent, 20)
    assert jb.stats["resyncs"] == 1 and jb.stats["late"] == 0
    assert played_ids(outputs) == expected_ids(0, 10) + expected_ids(10, 10, T0 - 3 * 8000)


# --- packet sizes --------------------------------------------------------------------------


def trim(outputs: list[Output]) -> list[Output]:
    """The outputs up to the last frame played (what follows is the stream's end)."""
    last = max(i for i, o in enumerate(outputs) if o.kind == "played")
    return outputs[: last + 1]


@pytest.mark.parametrize(("ptime_ms", "lead_in"), [(10, 1), (20, 0), (30, 1), (40, 0), (60, 0)])
def test_payloads_of_any_multiple_of_10ms_play_as_20ms_frames(ptime_ms: int, lead_in: int) -> None:
    count = 1200 // ptime_ms  # 1.2 s of audio
    jb = JitterBuffer(decode, max_delay_ms=60)
    outputs = trim(run(jb, stream(count, ptime_ms=ptime_ms), 62))
    # A frame can play once the whole packet holding it is in: 30 ms packets need 40 ms.
    assert jb.target_delay_ms == -(-ptime_ms // 20) * 20
    assert [o.kind for o in outputs] == ["silence"] * lead_in + ["played"] * 60
    assert played_ids(outputs) == expected_ids(0, 60)
    assert_whole_frames(outputs)


def test_packet_size_changing_midstream() -> None:
    sent = stream(10)
    for k in range(6):  # then 30 ms packets, continuing the same timeline
        ts = T0 + 1600 + 240 * k
        packet = RtpPacket(0, False, 1010 + k, ts, 0x1234, payload_at(ts, 240))
        sent.append(Sent(0.2 + 0.03 * (k + 1) - 0.02, packet))
    jb = JitterBuffer(decode)
    outputs = trim(run(jb, sent, 24))
    assert played_ids(outputs) == expected_ids(0, 19)
    assert_whole_frames(outputs)
    assert jb.stats["late"] == 0 and jb.stats["resyncs"] == 0


def test_timestamps_off_the_10ms_grid_are_realigned() -> None:
    sent = stream(20)
    for s in sent[10:]:  # from packet 10 on, the sender's timestamps are 3 samples off
        p = s.packet
        s.packet = RtpPacket(0, False, p.sequence, p.timestamp + 3, p.ssrc, p.payload)
    jb = JitterBuffer(decode)
    outputs = run(jb, sent, 20)
    assert played_ids(outputs) == expected_ids(0, 20)
    assert jb.stats["realigned"] == 10


# --- adaptive depth ------------------------------------------------------------------------


def jittery(count: int, seed: int, spread: float, jitter_range: range) -> list[Sent]:
    """A stream whose packets in ``jitter_range`` are delayed by 0-``spread`` s at random."""
    delays = np.random.default_rng(seed).uniform(0.0, spread, count)
    return stream(count, extra=lambda i: float(delays[i]) if i in jitter_range else 0.0)


def watch(jb: JitterBuffer, sent: list[Sent], ticks: int, phase: float) -> list[tuple[int, float]]:
    """Run, checking the depth bound at every step; (delay, target) after each pop."""
    events: list[tuple[float, int, Sent | None]] = [(s.arrival, 0, s) for s in sent]
    events += [(k * TICK + phase, 1, None) for k in range(ticks)]
    seen = []
    limit = (jb.max_delay_ms + 20) // 10  # stored 10 ms units: the maximum plus one frame
    for when, _, item in sorted(events, key=lambda event: (event[0], event[1])):
        if item is not None:
            jb.push(item.packet, when)
        else:
            jb.pop(when)
            seen.append((jb.stats["current_delay_ms"], jb.target_delay_ms))
            assert jb.stats["current_delay_ms"] <= jb.max_delay_ms + 10  # rounded to the tick
        assert jb.depth <= limit
    return seen


def test_depth_grows_under_jitter_and_shrinks_after() -> None:
    jb = JitterBuffer(decode, max_delay_ms=60)
    seen = watch(jb, jittery(600, seed=1, spread=0.040, jitter_range=range(100, 300)), 600, 0.01)
    delays = [delay for delay, _ in seen]
    targets = [target for _, target in seen]
    assert delays[99] == 30 and targets[99] == 20  # before: one frame (+ the tick's wait)
    assert max(targets[100:300]) == 60  # J of uniform 0-40 ms delays calls for the maximum
    assert delays[110] == 70  # and the buffer grew to it within 0.2 s ...
    missed = jb.stats["concealed"] + jb.stats["late"]
    assert missed <= 5  # ... so few of the 200 jittery packets missed their turn
    assert targets[-1] == 20
    assert delays[-1] <= 50  # it shrank again once the jitter stopped
    assert jb.stats["shrinks"] >= 1


def test_target_follows_rfc3550_jitter() -> None:
    jb = JitterBuffer(decode, max_delay_ms=200)
    run(jb, jittery(400, seed=2, spread=0.030, jitter_range=range(0, 400)), 400)
    # Uniform 0-30 ms delays: E|D| = 10 ms, so J is near 10 ms and the target near 20 + 3 J.
    assert 7.0 <= jb.jitter_ms <= 13.0
    assert jb.target_delay_ms == pytest.approx(20 + 3 * jb.jitter_ms, abs=0.2)


def test_target_is_bounded_by_max_delay() -> None:
    jb = JitterBuffer(decode, max_delay_ms=40)
    seen = watch(jb, jittery(200, seed=3, spread=0.1, jitter_range=range(0, 200)), 200, 0.01)
    assert jb.jitter_ms > 20
    assert max(target for _, target in seen) == 40


def queue_drain(quiet: bool) -> list[Sent]:
    """A 40 ms delay spike that drains over four packets, then the base delay again.

    After the spike the audio is quiet (samples of 200: a pause in speech) or loud
    (samples of 20000).
    """
    spike = {20: 0.04, 21: 0.03, 22: 0.02, 23: 0.01}
    sent = stream(200, extra=lambda i: spike.get(i, 0.0))
    level = b"\x02" if quiet else b"\xc8"
    for s in sent[30:]:
        p = s.packet
        s.packet = RtpPacket(0, False, p.sequence, p.timestamp, p.ssrc, level * 160)
    return sent


def test_delay_spike_grows_then_sheds_down_to_one_frame_in_a_pause() -> None:
    jb = JitterBuffer(decode, max_delay_ms=60)
    seen = watch(jb, queue_drain(quiet=True), 200, 0.01)
    assert seen[19][0] == 30 and max(delay for delay, _ in seen[20:30]) == 70
    assert jb.stats["concealed"] + jb.stats["late"] <= 2
    assert seen[-1] == (30, 20)  # back to one frame
    assert jb.stats["shrinks"] == 2


def test_delay_spike_sheds_only_down_to_one_frame_over_while_audio_is_loud() -> None:
    jb = JitterBuffer(decode, max_delay_ms=60)
    seen = watch(jb, queue_drain(quiet=False), 200, 0.01)
    assert max(delay for delay, _ in seen[20:30]) == 70
    # Two frames over target: one frame goes at once; one frame over waits for a pause.
    assert seen[-1] == (50, 20)
    assert jb.stats["shrinks"] == 1


def test_network_stall_drops_the_stale_audio() -> None:
    jb = JitterBuffer(decode, max_delay_ms=60)
    # The network holds packets 10-29 for up to 400 ms, then delivers them at once.
    sent = stream(60, extra=lambda i: 0.6 - i * TICK if 10 <= i < 30 else 0.0)
    outputs = run(jb, sent, 60)
    ids = played_ids(outputs)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert consecutive(ids[-20:]) and ids[-1] in expected_ids(55, 5)
    assert jb.stats["late"] >= 15  # their time had passed: playout follows the clock
    assert jb.stats["current_delay_ms"] <= 70


def test_sender_burst_ahead_of_time_is_bounded() -> None:
    jb = JitterBuffer(decode, max_delay_ms=60)
    # A sender pushes 200 ms of future audio at once (a file played faster than real time).
    sent = stream(40, extra=lambda i: 0.2 - i * TICK if 10 <= i < 20 else 0.0)
    watch(jb, sent, 40, 0.01)
    assert jb.stats["dropped_overflow"] >= 1


def test_stats_counters() -> None:
    jb = JitterBuffer(decode)
    run(jb, stream(5), 5)
    assert jb.stats["pushed"] == 5 and jb.stats["played"] == 5
    assert jb.stats["current_delay_ms"] == 30
    for key in ("concealed", "duplicates", "late", "dropped_overflow", "resyncs"):
        assert jb.stats[key] == 0


def test_timestamps_going_back_less_than_a_second_resynchronise_after_half_a_second() -> None:
    jb = JitterBuffer(decode)
    # After packet 20 the sender's timestamps restart 400 ms back, without a marker.
    sent = stream(20) + stream(60, first=20, ts0=T0 - 3200)
    outputs = run(jb, sent, 80)
    assert jb.stats["late"] == 25 and jb.stats["resyncs"] == 1
    ids = played_ids(outputs)
    assert ids[:20] == expected_ids(0, 20)
    # Then the new timeline plays through (a frame or two behind, as its jump raised J).
    assert consecutive(ids[-30:]) and ids[-1] in expected_ids(75, 5, T0 - 3200)
