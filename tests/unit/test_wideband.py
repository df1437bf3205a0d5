"""G.722 and Opus: the coders (a tone keeps its frequency), Opus packet durations,
the resamplers, SDP negotiation by preference (G722/8000, opus/48000/2 with its
fmtp and telephone-event/48000) and a leg's relay of the same codec untouched."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mediaserver.media.codecs import (
    CODECS,
    G722,
    OPUS,
    PCMU,
    Codec,
    canonical,
    coder_for,
    wide_decoder_for,
)
from mediaserver.media.conference import Conference, Member
from mediaserver.media.dtmf import decode_event, tone_event_packets
from mediaserver.media.dtmf_out import event_steps
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.recorder import Recorder
from mediaserver.media.recording import CallRecording, recording_rate
from mediaserver.media.resample import Decimator, Interpolator
from mediaserver.media.rtp import RtpPacket, build_rtp, parse_rtp
from mediaserver.media.wideband import DecodedArrivals, G722Coder, linear_decode, opus_duration
from mediaserver.sip.offer_answer import accept_answer, make_offer, negotiate_answer
from mediaserver.sip.sdp import SessionDescription
from tests.unit.media_fakes import PEER, ManualClock, frames, make_leg, sine


def dominant(audio: Pcm, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64)))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[int(np.argmax(spectrum))])


def steps_of(packets: list[RtpPacket]) -> list[int]:
    """The RTP timestamp step between each packet and the next."""
    return [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(packets)]


def rms(audio: Pcm) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


# -- the coders ----------------------------------------------------------------------


@pytest.mark.parametrize("codec", [G722, OPUS], ids=["G722", "opus"])
@pytest.mark.parametrize("hz", [440.0, 1000.0, 3000.0])
def test_a_tone_through_encode_and_decode_keeps_its_frequency_and_level(
    codec: object, hz: float
) -> None:
    assert codec in (G722, OPUS)
    encoder, decoder = (
        coder_for(G722 if codec is G722 else OPUS),
        coder_for(G722 if codec is G722 else OPUS),
    )
    tone = sine(hz, 1.0)
    decoded = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames(tone)])
    assert len(decoded) == len(tone)  # 160 samples out per 20 ms frame in
    steady = decoded[1600:]  # past the codec's and the filters' delay
    assert dominant(steady) == pytest.approx(hz, abs=10)
    assert rms(steady) == pytest.approx(rms(tone[1600:]), rel=0.2)


def test_each_leg_gets_its_own_stateful_coder_but_g711_shares_its_tables() -> None:
    assert coder_for(PCMU) is PCMU
    assert coder_for(G722) is not coder_for(G722)
    assert type(coder_for(OPUS)).__name__ == "OpusCoder"


def test_a_damaged_packet_decodes_to_silence_of_its_duration() -> None:
    g722, opus = coder_for(G722), coder_for(OPUS)
    assert not g722.decode(b"").any()
    # TOC config 1 (SILK NB 20 ms), one frame, then garbage the decoder refuses
    assert len(opus.decode(bytes([0x08]) + b"\xff" * 3)) == 160


def test_g722_payloads_are_one_byte_per_8khz_tick_like_g711() -> None:
    payload = coder_for(G722).encode(sine(1000.0, 0.02))
    assert len(payload) == 160 == G722.duration(payload) == G722.frame_ticks
    assert G722.rtpmap == "G722/8000" and G722.payload_type == 9


def test_opus_durations_come_from_the_toc_byte() -> None:
    # RFC 6716 3.1: config << 3 | stereo << 2 | frame count code
    assert opus_duration(bytes([1 << 3])) == 960  # SILK NB 20 ms, one frame
    assert opus_duration(bytes([3 << 3])) == 2880  # SILK NB 60 ms
    assert opus_duration(bytes([(15 << 3) | 1])) == 1920  # hybrid FB 20 ms, two frames
    assert opus_duration(bytes([(16 << 3) | 3, 4])) == 480  # CELT 2.5 ms, code 3: 4 frames
    assert opus_duration(b"") == 960
    assert opus_duration(coder_for(OPUS).encode(sine(440.0, 0.02))) == 960
    assert OPUS.rtpmap == "opus/48000/2" and OPUS.frame_ticks == 960


def test_resamplers_keep_the_band_and_cut_what_the_lower_rate_cannot_carry() -> None:
    t = np.arange(16000) / 16000
    low = np.round(np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16)
    high = np.round(np.sin(2 * np.pi * 6000 * t) * 8000).astype(np.int16)
    down = Decimator(2)
    kept = np.concatenate([down(c) for c in np.split(low, 50)])
    cutter = Decimator(2)
    cut = np.concatenate([cutter(c) for c in np.split(high, 50)])
    assert len(kept) == 8000 and dominant(kept[800:]) == pytest.approx(1000, abs=5)
    assert rms(kept[800:]) == pytest.approx(rms(low), rel=0.02)
    assert rms(cut[800:]) < rms(high) / 100  # 6 kHz is above 4 kHz: gone, not aliased
    up = Interpolator(2)
    back = np.concatenate([up(c) for c in np.split(kept, 50)])
    assert len(back) == 16000 and dominant(back[1600:], 16000) == pytest.approx(1000, abs=5)


def test_decoded_opus_arrivals_map_48khz_timestamps_across_the_wrap() -> None:
    encoder = coder_for(OPUS)
    arrivals = DecodedArrivals(wide_decoder_for(OPUS))
    ts = 0xFFFFFFFF - 960 * 2 + 1
    out = []
    for i, frame in enumerate(frames(sine(1000.0, 0.1))):
        wire = build_rtp(111, i, (ts + i * 960) & 0xFFFFFFFF, 7, encoder.encode(frame))
        out.append(arrivals.convert(parse_rtp(wire)))
    steps = steps_of(out)
    assert steps == [160] * 4
    assert all(len(linear_decode(p.payload)) == 320 for p in out)  # 20 ms at 16 kHz


# -- negotiation -----------------------------------------------------------------------


def sdp(text: str) -> SessionDescription:
    return SessionDescription.parse(text.replace("\n", "\r\n"))


BARESIP_WIDEBAND = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30000 RTP/AVP 111 9 0 101 102
a=rtpmap:111 opus/48000/2
a=fmtp:111 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/48000
a=rtpmap:102 telephone-event/8000
"""


def answer(offer: str, codecs: tuple[str, ...]) -> tuple[str, int, int | None, str]:
    result = negotiate_answer(
        sdp(offer),
        codecs=codecs,
        local_address="192.0.2.50",
        local_port=20000,
        session_id=1,
        session_version=1,
    )
    return result.codec, result.payload_type, result.telephone_event_pt, result.sdp.serialize()


def test_opus_is_taken_from_the_offer_with_its_48khz_telephone_event() -> None:
    codec, pt, te, text = answer(BARESIP_WIDEBAND, ("opus", "G722", "PCMU"))
    assert (codec, pt, te) == ("opus", 111, 101)
    assert "a=rtpmap:111 opus/48000/2\r\n" in text
    assert "a=fmtp:111 useinbandfec=1\r\n" in text  # RFC 7587 7: our receive preferences
    assert "a=rtpmap:101 telephone-event/48000\r\n" in text


def test_opus_takes_telephone_event_at_8000_when_none_is_at_48000_as_baresip_offers() -> None:
    offer = BARESIP_WIDEBAND.replace(" 101 102\n", " 102\n").replace(
        "a=rtpmap:101 telephone-event/48000\n", ""
    )
    codec, _, te, text = answer(offer, ("opus",))
    assert (codec, te) == ("opus", 102)
    assert "a=rtpmap:102 telephone-event/8000\r\n" in text


def test_g722_keeps_its_8000_sdp_clock_and_the_8khz_telephone_event() -> None:
    codec, pt, te, text = answer(BARESIP_WIDEBAND, ("G722", "PCMU"))
    assert (codec, pt, te) == ("G722", 9, 102)
    assert "m=audio 20000 RTP/AVP 9 102\r\n" in text
    assert "a=rtpmap:9 G722/8000\r\n" in text


def test_a_g711_only_config_answers_g711_as_before() -> None:
    codec, pt, te, text = answer(BARESIP_WIDEBAND, ("PCMU", "PCMA"))
    assert (codec, pt, te) == ("PCMU", 0, 102)
    assert "opus" not in text and "G722" not in text


def test_g722_at_another_clock_rate_or_unknown_is_not_taken() -> None:
    offer = BARESIP_WIDEBAND.replace("G722/8000", "G722/16000")
    assert answer(offer, ("G722", "PCMU"))[0] == "PCMU"


def test_codec_names_are_case_insensitive_and_spelt_as_in_sdp() -> None:
    assert answer(BARESIP_WIDEBAND, ("OPUS",))[0] == "opus"
    assert answer(BARESIP_WIDEBAND, ("g722",))[0] == "G722"
    assert canonical("OPUS") == "opus" and canonical("G729") is None
    assert set(CODECS) == {"PCMU", "PCMA", "G722", "opus"}


def test_our_offer_lists_codecs_by_preference_with_a_telephone_event_per_clock() -> None:
    offer = make_offer(
        codecs=("G722", "opus", "PCMU"),
        local_address="192.0.2.50",
        local_port=20000,
        session_id=1,
        session_version=1,
    )
    text = offer.serialize()
    assert "m=audio 20000 RTP/AVP 9 111 0 101 102\r\n" in text
    assert "a=rtpmap:111 opus/48000/2\r\n" in text and "a=fmtp:111 useinbandfec=1\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text
    assert "a=rtpmap:102 telephone-event/48000\r\n" in text
    reply = sdp(
        "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
        "m=audio 30000 RTP/AVP 111 102\na=rtpmap:111 opus/48000/2\n"
        "a=rtpmap:102 telephone-event/48000\n"
    )
    agreed = accept_answer(offer, reply)
    assert (agreed.codec, agreed.payload_type, agreed.telephone_event_pt) == ("opus", 111, 102)


# -- the leg ---------------------------------------------------------------------------


async def test_two_g722_legs_relay_untouched_on_the_fast_path() -> None:
    clock = ManualClock()
    caller, _, _ = make_leg(clock, G722)
    callee, sent, _ = make_leg(clock, G722)
    caller.relay_to(callee)
    assert caller._fast_target is callee and caller._relay_coder is None
    payloads = [bytes([i]) * 160 for i in range(3)]
    for i, payload in enumerate(payloads):
        caller.datagram_received(build_rtp(9, i, 1000 + 160 * i, 5, payload), PEER)
    out = sent.take()
    assert [p.payload for p in out] == payloads
    assert [p.payload_type for p in out] == [9, 9, 9]
    assert steps_of(out) == [160, 160]


async def test_opus_echo_sends_each_packet_back_untouched_at_48khz_steps() -> None:
    clock = ManualClock()
    leg, sent, _ = make_leg(clock, OPUS)
    leg.set_echo(True)
    encoder = coder_for(OPUS)
    payloads = [encoder.encode(f) for f in frames(sine(5000.0, 0.06))]
    for i, payload in enumerate(payloads):
        leg.datagram_received(build_rtp(111, i, 960 * i, 5, payload), PEER)
    out = sent.take()
    assert [p.payload for p in out] == payloads and leg.transcoded == 0
    assert steps_of(out) == [960, 960]


async def test_a_g722_caller_bridged_to_pcmu_is_decoded_and_reencoded() -> None:
    clock = ManualClock()
    caller, to_caller, _ = make_leg(clock, G722)
    callee, to_callee, _ = make_leg(clock, PCMU)
    caller.relay_to(callee)
    callee.relay_to(caller)
    assert caller._fast_target is None and callee._fast_target is None
    encoder = coder_for(G722)
    for i, frame in enumerate(frames(sine(1000.0, 0.5))):
        caller.datagram_received(build_rtp(9, i, 160 * i, 5, encoder.encode(frame)), PEER)
        callee.datagram_received(build_rtp(0, i, 160 * i, 6, PCMU.encode(frame)), PEER)
    heard_by_callee = np.concatenate([PCMU.decode(p.payload) for p in to_callee.take()])
    decoder = coder_for(G722)
    heard_by_caller = np.concatenate([decoder.decode(p.payload) for p in to_caller.take()])
    for heard in (heard_by_callee, heard_by_caller):
        assert len(heard) == 4000
        assert dominant(heard[800:]) == pytest.approx(1000, abs=10)
        assert rms(heard[800:]) > 4000
    assert callee.transcoded == 25 and caller.transcoded == 25


@pytest.mark.parametrize("codec", [G722, OPUS], ids=["G722", "opus"])
async def test_a_listened_wideband_leg_decodes_through_its_jitter_buffer(codec: Codec) -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock, codec)
    leg.listen("test")
    encoder = coder_for(codec)
    heard = []
    for i, frame in enumerate(frames(sine(700.0, 0.6))):
        wire = build_rtp(codec.payload_type, i, codec.frame_ticks * i, 5, encoder.encode(frame))
        leg.datagram_received(wire, PEER)
        clock.ticks += 1
        heard.append(leg.received_frame().copy())
    audio = np.concatenate(heard)
    assert len(audio) == 30 * FRAME_SAMPLES
    assert dominant(audio[-1600:]) == pytest.approx(700, abs=10)
    assert rms(audio[-1600:]) > 4000


def test_a_g711_only_server_never_loads_libavcodec() -> None:
    code = (
        "import sys, asyncio\n"
        "import mediaserver.server\n"
        "from mediaserver.media.codecs import PCMU, coder_for\n"
        "coder_for(PCMU)\n"
        "print('av' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_a_conference_encodes_each_wideband_member_with_its_own_coder() -> None:
    clock = ManualClock()
    room = Conference("wide", clock)
    legs = {codec.name: make_leg(clock, codec) for codec in (PCMU, G722, OPUS)}
    for name, (leg, _, _) in legs.items():
        room.join(Member(leg, name, beep_on_enter=False, beep_on_exit=False))
    sources = {"PCMU": coder_for(PCMU), "G722": coder_for(G722), "opus": coder_for(OPUS)}
    for i, frame in enumerate(frames(sine(600.0, 0.6))):  # only the PCMU member speaks
        for name, (leg, _, _) in legs.items():
            codec = leg.codec
            payload = sources[name].encode(frame if name == "PCMU" else np.zeros(160, np.int16))
            wire = build_rtp(codec.payload_type, i, codec.frame_ticks * i, 9, payload)
            leg.datagram_received(wire, PEER)
        clock.step(i * 0.02)
    for name in ("G722", "opus"):
        leg, sent, _ = legs[name]
        decoder = coder_for(leg.codec)
        heard = np.concatenate([decoder.decode(p.payload) for p in sent.take()])
        assert len(heard) == 30 * FRAME_SAMPLES, name
        assert dominant(heard[-1600:]) == pytest.approx(600, abs=10), name


async def test_a_30ms_pcmu_carrier_bridged_to_opus_goes_out_in_20ms_opus_packets() -> None:
    clock = ManualClock()
    carrier, _, _ = make_leg(clock, PCMU)
    phone, to_phone, _ = make_leg(clock, OPUS)
    carrier.relay_to(phone)
    tone = sine(1000.0, 0.6)
    for i in range(20):  # 20 packets of 30 ms (ptime 30, as carriers offer)
        payload = PCMU.encode(tone[i * 240 : (i + 1) * 240])
        carrier.datagram_received(build_rtp(0, i, 240 * i, 5, payload), PEER)
    out = to_phone.take()
    assert len(out) == 30 and all(opus_duration(p.payload) == 960 for p in out)
    assert steps_of(out) == [960] * 29
    decoder = coder_for(OPUS)
    heard = np.concatenate([decoder.decode(p.payload) for p in out])
    assert dominant(heard[800:]) == pytest.approx(1000, abs=10)


# -- telephone-events beside Opus ------------------------------------------------------


def test_the_answer_says_at_which_clock_telephone_events_run() -> None:
    offer = sdp(BARESIP_WIDEBAND)
    settings = {"local_address": "192.0.2.50", "local_port": 20000, "session_id": 1}
    opus = negotiate_answer(offer, codecs=("opus",), session_version=1, **settings)  # type: ignore[arg-type]
    g722 = negotiate_answer(offer, codecs=("G722",), session_version=1, **settings)  # type: ignore[arg-type]
    assert (opus.telephone_event_pt, opus.telephone_event_clock) == (101, 48000)
    assert (g722.telephone_event_pt, g722.telephone_event_clock) == (102, 8000)


def test_event_steps_count_durations_at_the_legs_event_clock() -> None:
    def durations(clock_rate: int, seconds: float = 0.1) -> list[int]:
        steps = [s for s in event_steps("5", seconds, clock_rate) if s is not None]
        return [decode_event(payload).duration for payload, _ in steps]

    assert durations(8000)[-1] == 800 and durations(48000)[-1] == 4800
    assert durations(48000)[0] == 960  # one update per 20 ms at 48 kHz
    assert durations(48000, 3.0)[-1] <= 0xFFFF  # the 16-bit field: cut at 1.36 s


async def test_a_key_from_an_opus_leg_crosses_to_a_pcmu_leg_with_its_duration_rescaled() -> None:
    clock = ManualClock()
    phone, _, _ = make_leg(clock, OPUS, te_pt=101)
    carrier, to_carrier, _ = make_leg(clock, PCMU, te_pt=101)
    phone.update_remote(PEER, OPUS, 111, 101, event_clock=48000)
    phone.relay_to(carrier)
    for i, (payload, first) in enumerate(tone_event_packets("7", 100, 48000)):
        phone.datagram_received(build_rtp(101, i, 48000, 5, payload, first), PEER)
    events = [decode_event(p.payload) for p in to_carrier.take() if p.payload_type == 101]
    assert events and events[-1].end and events[-1].duration == 800  # 100 ms at 8000
    assert {e.event for e in events} == {7}


@pytest.mark.parametrize("codec", [G722, OPUS], ids=["G722", "opus"])
async def test_random_payloads_never_raise_out_of_a_decoding_transcoding_leg(codec: Codec) -> None:
    rng = np.random.default_rng(7)
    clock = ManualClock()
    leg, _, _ = make_leg(clock, codec)
    other, to_other, _ = make_leg(clock, PCMU)
    leg.relay_to(other)  # decoded for the bridge
    leg.listen("test")  # and for the jitter buffer
    for i in range(300):
        size = int(rng.integers(0, 400))
        payload = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        leg.datagram_received(
            build_rtp(codec.payload_type, i, i * codec.frame_ticks, 3, payload), PEER
        )
        clock.ticks += 1
        assert len(leg.received_frame()) == FRAME_SAMPLES
    assert all(len(p.payload) == 160 for p in to_other.take())


# -- recordings keep the band ------------------------------------------------------------


def wide_sine(hz: float, seconds: float, peak: float = 8000.0) -> Pcm:
    """A tone sampled at 16 kHz."""
    t = np.arange(round(seconds * 16000)) / 16000
    return np.round(np.sin(2 * np.pi * hz * t) * peak).astype(np.int16)


def g722_packets(hz: float, seconds: float, ssrc: int) -> list[bytes]:
    """G.722 RTP packets of a 16 kHz tone (20 ms each)."""
    encoder = G722Coder()
    audio = wide_sine(hz, seconds)
    return [
        build_rtp(9, i, 160 * i, ssrc, encoder.encode_wide(audio[start : start + 320]))
        for i, start in enumerate(range(0, len(audio), 320))
    ]


def band_share(audio: Pcm, rate: int, low_hz: float) -> float:
    """The share of the energy above ``low_hz``."""
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    return float(spectrum[freqs > low_hz].sum() / max(spectrum.sum(), 1.0))


async def test_a_listened_g722_leg_keeps_its_16khz_frame_beside_the_8khz_one() -> None:
    clock = ManualClock()
    leg, _, _ = make_leg(clock, G722)
    assert leg.wideband and leg.received_wide_frame() is None  # not decoding yet
    leg.listen("recording")
    wide, narrow = [], []
    for packet in g722_packets(6000, 0.6, 5):
        leg.datagram_received(packet, PEER)
        clock.ticks += 1
        frame = leg.received_wide_frame()
        assert frame is not None and len(frame) == 320
        wide.append(frame.copy())
        narrow.append(leg.received_frame().copy())
    wide_audio, narrow_audio = np.concatenate(wide)[-3200:], np.concatenate(narrow)[-1600:]
    assert dominant(wide_audio, 16000) == pytest.approx(6000, abs=10)
    assert rms(wide_audio) > 4000
    assert rms(narrow_audio) < rms(wide_audio) / 30  # 6 kHz cannot be in 8 kHz audio
    pcmu, _, _ = make_leg(clock, PCMU)
    pcmu.listen("recording")
    assert not pcmu.wideband and pcmu.received_wide_frame() is None


@pytest.mark.parametrize(("callee_codec", "rate"), [(G722, 16000), (PCMU, 8000)])
async def test_a_bridge_is_recorded_at_16khz_only_when_both_legs_are_wideband(
    tmp_path: Path, callee_codec: Codec, rate: int
) -> None:
    clock = ManualClock()
    caller, _, _ = make_leg(clock, G722)
    callee, _, _ = make_leg(clock, callee_codec)
    caller.relay_to(callee)
    callee.relay_to(caller)
    assert recording_rate(caller) == rate
    assert recording_rate(caller, other_side=False) == 16000  # a voicemail: the caller only
    recorder = Recorder(tmp_path / "call.wav", channels="dual", sample_rate=rate)
    recording = CallRecording(clock, caller, recorder)
    if callee_codec is G722:
        theirs = g722_packets(5000, 1.0, 6)
    else:
        theirs = [
            build_rtp(0, i, 160 * i, 6, PCMU.encode(frame))
            for i, frame in enumerate(frames(sine(1000.0, 1.0)))
        ]
    for ours, their in zip(g722_packets(6000, 1.0, 5), theirs, strict=True):
        caller.datagram_received(ours, PEER)
        callee.datagram_received(their, PEER)
        clock.step()
    await recording.stop()
    data, written_rate = sf.read(tmp_path / "call.wav", dtype="int16", always_2d=True)
    assert written_rate == rate and len(data) == 50 * 20 * rate // 1000
    left, right = data[rate // 5 :, 0], data[rate // 5 :, 1]
    if rate == 16000:
        assert dominant(left, rate) == pytest.approx(6000, abs=10)
        assert dominant(right, rate) == pytest.approx(5000, abs=10)
        assert band_share(left, rate, 4000) > 0.9 and band_share(right, rate, 4000) > 0.9
    else:
        assert rms(left) < 300  # the caller's 6 kHz is out of an 8 kHz recording's band
        assert dominant(right, rate) == pytest.approx(1000, abs=10)
