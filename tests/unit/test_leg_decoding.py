"""Decoding in the leg: on demand, one frame per tick whoever asks first; in-band DTMF
detection only for peers without telephone-event; RFC 4733 keys sent on the clock."""

from __future__ import annotations

import numpy as np
import pytest
from media_fakes import TE_PT, ManualClock, RtpSource, frames, make_leg, sine
from structlog.testing import capture_logs

from mediaserver.media.dtmf import decode_event
from mediaserver.media.dtmf_out import event_steps
from mediaserver.media.g711 import PCMA, PCMU
from mediaserver.media.leg import SILENT_FRAME
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.scanner import scanner_for
from mediaserver.media.tones import tone


class Consumer:
    """A clock member that reads the leg's frame each tick, like a recording."""

    def __init__(self, leg: object) -> None:
        self.leg = leg
        self.got: list[Pcm] = []

    def on_tick(self, now: float) -> None:
        self.got.append(self.leg.received_frame())  # type: ignore[attr-defined]


async def test_a_leg_nobody_listens_to_is_not_decoded() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    source = RtpSource()
    for frame in frames(sine(440, 0.2)):
        source.send(leg, frame)
    assert not leg.decoding
    clock.step()
    assert leg.received_frame() is SILENT_FRAME
    assert not any(name.startswith("jb_") for name in leg.snapshot())


@pytest.mark.parametrize("reverse", [False, True], ids=["consumers-first", "leg-first"])
async def test_one_frame_per_tick_whoever_asks_first(reverse: bool) -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    first, second = Consumer(leg), Consumer(leg)
    clock.add(first)
    leg.listen(first)
    leg.start()
    clock.add(second)
    leg.listen(second)
    source = RtpSource()
    audio = sine(440, 0.4)
    for index, frame in enumerate(frames(audio)):
        source.send(leg, frame)
        clock.step(now=index * 0.02, reverse=reverse)
    assert len(first.got) == len(second.got) == 20
    assert all(a is b for a, b in zip(first.got, second.got, strict=True))
    heard = np.concatenate(first.got)
    # The buffer's lead-in, then the audio itself, decoded (G.711: within 2 % here).
    start = int(np.flatnonzero(heard)[0]) // FRAME_SAMPLES * FRAME_SAMPLES
    expected = audio[: len(heard) - start].astype(np.int32)
    assert np.max(np.abs(heard[start:].astype(np.int32) - expected)) < 300
    assert leg.snapshot()["jb_played"] == 20 - start // FRAME_SAMPLES


async def test_decoding_stops_with_the_last_listener_and_keeps_its_counts() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    leg.listen("a")
    leg.listen("b")
    source = RtpSource()
    for frame in frames(sine(440, 0.1)):
        source.send(leg, frame)
    leg.unlisten("a")
    assert leg.decoding
    leg.unlisten("b")
    assert not leg.decoding
    assert leg.stats["jb_pushed"] == 5


async def test_a_codec_change_decodes_with_the_new_codec() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock)
    leg.listen("recording")
    leg.update_remote(("127.0.0.1", 40000), PCMA, 8, TE_PT)
    source = RtpSource(PCMA)
    audio = sine(1000, 0.2)
    got = []
    for index, frame in enumerate(frames(audio)):
        source.send(leg, frame)
        clock.step(now=index * 0.02)
        got.append(leg.received_frame())
    heard = np.concatenate(got)
    assert np.max(np.abs(heard)) > 7000


async def test_what_the_leg_sends_is_known_once_per_tick() -> None:
    clock = ManualClock()
    leg, transport, _ = make_leg(clock)
    audio = sine(600, 0.1)
    playback = leg.play(audio)
    sent: list[Pcm] = []
    for _ in range(5):
        clock.ticks += 1
        sent.append(leg.sent_frame().copy())
        assert leg.sent_frame() is leg.sent_frame()  # asking again does not advance it
        leg.on_tick(0.0)
    assert np.array_equal(np.concatenate(sent), audio)
    packets = transport.take()
    assert [p.payload for p in packets] == [PCMU.encode(frame) for frame in sent]
    clock.step()
    assert playback.done.done() and playback.completed
    assert leg.sent_frame() is SILENT_FRAME


async def test_a_fed_leg_sends_what_its_feeder_received() -> None:
    clock = ManualClock()
    caller, _, _ = make_leg(clock)
    callee, _, _ = make_leg(clock)
    callee.relay_to(caller)
    callee.listen("recording")
    source = RtpSource()
    for index, frame in enumerate(frames(sine(900, 0.2))):
        source.send(callee, frame)
        clock.step(now=index * 0.02)
        assert caller.sent_frame() is callee.received_frame()
    assert caller.sent_frame().any()


# -- in-band DTMF ------------------------------------------------------------------------


def dtmf_audio(keys: str) -> Pcm:
    from mediaserver.media.dtmf_out import inband_audio

    return np.concatenate([np.zeros(800, np.int16), inband_audio(keys, 0.08)])


async def test_in_band_keys_of_a_peer_without_telephone_event_arrive_once() -> None:
    clock = ManualClock()
    leg, _, digits = make_leg(clock, te_pt=None)
    leg.start()
    scanner = scanner_for(clock)
    assert leg in scanner and leg.decoding
    source = RtpSource()
    for index, frame in enumerate(frames(dtmf_audio("159#"))):
        source.send(leg, frame)
        clock.step(now=index * 0.02)
    for index in range(10):
        clock.step(now=1 + index * 0.02)
    assert digits == ["1", "5", "9", "#"]
    leg.close()
    assert leg not in scanner and not leg.decoding


async def test_no_in_band_detection_with_telephone_event_or_while_relaying() -> None:
    clock = ManualClock()
    with_te, _, digits = make_leg(clock)
    with_te.start()
    scanner = scanner_for(clock)
    assert with_te not in scanner and not with_te.decoding
    source = RtpSource()
    for index, frame in enumerate(frames(dtmf_audio("5"))):
        source.send(with_te, frame)
        clock.step(now=index * 0.02)
    assert digits == []  # keys come as RFC 4733 events from this peer, never both

    plain, _, _ = make_leg(clock, te_pt=None)
    other, _, _ = make_leg(clock)
    plain.start()
    assert plain in scanner
    plain.relay_to(other)  # bridged: the keys travel in the audio to the other side
    assert plain not in scanner and not plain.decoding
    plain.relay_to(None)
    assert plain in scanner
    plain.update_remote(("127.0.0.1", 40000), PCMU, 0, TE_PT)  # a re-INVITE added it
    assert plain not in scanner
    plain.close()
    other.close()
    with_te.close()


# -- RFC 4733 out --------------------------------------------------------------------------


async def test_keys_go_out_as_events_one_packet_per_tick() -> None:
    clock = ManualClock()
    leg, transport, _ = make_leg(clock)
    leg.start()
    clock.step()
    (audio_before,) = transport.take()
    done = leg.send_dtmf(event_steps("1#", 0.1))
    for _ in range(20):
        clock.step()
    assert done.done()
    packets = transport.take()
    kinds = ["event" if p.payload_type == TE_PT else "audio" for p in packets]
    # Per key: 4 updates + the end packet 3 times (7 ticks, no audio), then 3 ticks of audio.
    assert kinds == (["event"] * 7 + ["audio"] * 3) * 2
    first_key = packets[:7]
    start = audio_before.timestamp + FRAME_SAMPLES
    assert {p.timestamp for p in first_key} == {start}  # RFC 4733 2.5.1.2: the event's start
    assert [p.marker for p in first_key] == [True] + [False] * 6
    events = [decode_event(p.payload) for p in first_key]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert decode_event(packets[10].payload).event == 11  # '#'
    # Audio resumes at the time it is sent: 7 ticks after the event started.
    assert packets[7].timestamp == start + 7 * FRAME_SAMPLES
    sequences = [p.sequence for p in [audio_before, *packets]]
    assert sequences == [(sequences[0] + i) & 0xFFFF for i in range(len(sequences))]


async def test_sending_keys_needs_telephone_event_and_can_be_stopped() -> None:
    clock = ManualClock()
    plain, _, _ = make_leg(clock, te_pt=None)
    with pytest.raises(ValueError, match="telephone-event"):
        plain.send_dtmf(event_steps("1", 0.1))
    leg, transport, _ = make_leg(clock)
    done = leg.send_dtmf(event_steps("123", 0.1))
    clock.step()
    leg.stop_dtmf()
    assert done.done()
    clock.step()
    assert [p.payload_type for p in transport.take()] == [TE_PT, 0]


async def test_in_band_key_audio_is_what_the_detector_reads() -> None:
    from mediaserver.media.inband import DtmfDetector

    detector = DtmfDetector()
    keys = [key for frame in frames(dtmf_audio("0123456789*#ABCD")) for key in detector.feed(frame)]
    keys += detector.flush()
    assert "".join(keys) == "0123456789*#ABCD"
    assert tone([697.0], 0.01).dtype == np.int16


async def test_the_scanner_batches_legs_and_survives_a_bad_listener() -> None:
    clock = ManualClock()
    good, _, digits = make_leg(clock, te_pt=None)
    bad, _, _ = make_leg(clock, te_pt=None)

    def broken(key: str) -> None:
        raise RuntimeError("listener bug")

    bad.on_digit = broken
    for leg in (good, bad):
        leg.start()
    scanner = scanner_for(clock)
    assert len(scanner) == 2 and scanner in clock.members()
    sources = (RtpSource(), RtpSource(ssrc=7))
    audio = dtmf_audio("42")
    # Logs captured, not rendered: a slow traceback rendering would stall the
    # packets' arrival (real loop time) and the jitter buffer would take it as jitter.
    with capture_logs() as logs:
        for index, frame in enumerate(frames(np.concatenate([audio, np.zeros(1600, np.int16)]))):
            for leg, source in zip((good, bad), sources, strict=True):
                source.send(leg, frame)
            clock.step(now=index * 0.02)
    assert digits == ["4", "2"]
    assert scanner.keys_found == 4
    assert [(e["event"], e["key"]) for e in logs if e["log_level"] == "error"] == [
        ("in-band key delivery failed", "4"),
        ("in-band key delivery failed", "2"),
    ]
    good.close()
    bad.close()
    assert len(scanner) == 0 and scanner not in clock.members()
