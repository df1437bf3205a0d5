"""Answering-machine detection (mediaserver.media.amd): every rule, on synthesised frames
and on espeak-ng speech.

Words are bursts of white noise (loud enough to be voice, with 5 ms ramps), silence is
digital silence or quiet line noise, beeps are sines from :func:`tones.tone`. Audio is
fed in 20 ms frames as the media clock does; each result carries the seconds of audio
fed when it was reached, so the timing of every rule is checked exactly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mediaserver.media import amd, tones
from mediaserver.media.amd import (
    BEEP_FRAMES,
    AmdConfig,
    AmdEvent,
    AnsweringMachineDetector,
    BeepTracker,
    Detection,
    GreetingEnd,
    frame_tone,
    is_silent,
)
from mediaserver.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from tests.support import audio

RNG = np.random.default_rng(7)


def silence(seconds: float) -> Pcm:
    return np.zeros(round(seconds * SAMPLE_RATE), np.int16)


def line_noise(seconds: float, mean_abs: float = 60.0) -> Pcm:
    """Background hiss, well under the 256 threshold."""
    count = round(seconds * SAMPLE_RATE)
    return (RNG.standard_normal(count) * mean_abs * 1.25).astype(np.int16)


def word(seconds: float, mean_abs: float = 2500.0) -> Pcm:
    """A burst of noise shaped like a word: loud, flat, with 5 ms ramps."""
    count = round(seconds * SAMPLE_RATE)
    burst = RNG.standard_normal(count) * mean_abs * 1.25
    ramp = min(40, count // 2)
    envelope = np.ones(count)
    envelope[:ramp] = np.linspace(0, 1, ramp)
    envelope[count - ramp :] = np.linspace(1, 0, ramp)
    return np.clip(burst * envelope, -32768, 32767).astype(np.int16)


def beep(hz: float, seconds: float, level_dbfs: float = -13.0) -> Pcm:
    return tones.tone([hz], seconds, level_dbfs)


def words(count: int, length: float = 0.3, gap: float = 0.2) -> Pcm:
    parts: list[Pcm] = []
    for index in range(count):
        parts += [word(length)] + ([silence(gap)] if index < count - 1 else [])
    return np.concatenate(parts)


def run(
    *parts: Pcm, config: AmdConfig | None = None, follow: bool = True, tail: float = 12.0
) -> list[AmdEvent]:
    """Feed ``parts`` then ``tail`` seconds of silence, frame by frame, until finished."""
    detector = AnsweringMachineDetector(config, follow_greeting=follow)
    pcm = np.concatenate([*parts, silence(tail)])
    events: list[AmdEvent] = []
    for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += detector.feed(pcm[start : start + FRAME_SAMPLES])
        if detector.finished:
            break
    return events


def detection(events: list[AmdEvent]) -> Detection:
    assert events and isinstance(events[0], Detection), events
    return events[0]


def greeting(events: list[AmdEvent]) -> GreetingEnd:
    assert len(events) == 2 and isinstance(events[1], GreetingEnd), events
    return events[1]


# -- speech and silence -----------------------------------------------------------------


def test_the_config_takes_the_seeds_object_as_it_is() -> None:
    seed_example = {  # CallRequest's example answering_machine_detection_config
        "after_greeting_silence_millis": 1000,
        "between_words_silence_millis": 1000,
        "greeting_duration_millis": 1000,
        "greeting_silence_duration_millis": 2000,
        "greeting_total_analysis_time_millis": 50000,
        "initial_silence_millis": 1000,
        "maximum_number_of_words": 1000,
        "maximum_word_length_millis": 2000,
        "silence_threshold": 512,
        "total_analysis_time_millis": 5000,
    }
    assert dataclasses.asdict(AmdConfig(**seed_example)) == seed_example


@pytest.mark.parametrize("value", [-1, 1.5, "800", True, None])
def test_a_bad_threshold_is_named(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        AmdConfig(after_greeting_silence_millis=value)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"after_greeting_silence_millis: expected a whole number, 0 or more, got {value!r}"
    )


def test_a_requests_config_is_checked_field_by_field() -> None:
    assert amd.config_from({}) == AmdConfig()
    assert amd.config_from({"silence_threshold": 512}).silence_threshold == 512
    with pytest.raises(ValueError) as caught:
        amd.config_from({"greeting_duration_ms": 900})
    assert str(caught.value).startswith(
        "answering_machine_detection_config: unknown field 'greeting_duration_ms'; "
        "known: after_greeting_silence_millis, "
    )
    with pytest.raises(ValueError) as caught:
        amd.config_from({"maximum_number_of_words": -2}, where="body.config")
    assert str(caught.value) == (
        "body.config.maximum_number_of_words: expected a whole number, 0 or more, got -2"
    )


def test_the_silence_threshold_is_an_average_amplitude() -> None:
    square = np.array([1, -1] * 80, np.int16)
    assert is_silent(square * 255, 256)
    assert not is_silent(square * 256, 256)
    assert is_silent(square * 500, 512)
    assert is_silent(np.zeros(0, np.int16), 256)
    assert not is_silent(np.full(160, -32768, np.int16), 256)  # no int16 overflow


def test_a_short_hello_then_silence_is_a_person() -> None:
    events = run(silence(0.4), word(0.5))
    assert detection(events) == Detection("human", "after_greeting_silence", 1.7, 1, 0.5)
    assert len(events) == 1  # no greeting to follow for a person


def test_two_words_with_a_pause_are_a_person() -> None:
    events = run(silence(0.3), word(0.4), silence(0.6), word(0.5))
    found = detection(events)
    assert (found.result, found.words, found.at) == ("human", 2, pytest.approx(0.3 + 1.5 + 0.8))


def test_the_after_greeting_silence_is_configurable() -> None:
    events = run(word(0.4), config=AmdConfig(after_greeting_silence_millis=1200))
    assert detection(events).at == pytest.approx(0.4 + 1.2)


def test_quiet_line_noise_is_silence() -> None:
    events = run(line_noise(0.5), word(0.4), line_noise(2.0))
    assert detection(events).result == "human"


def test_more_words_than_the_maximum_is_a_machine() -> None:
    events = run(silence(0.2), words(7, length=0.2, gap=0.1), follow=False)
    found = detection(events)
    assert (found.result, found.reason, found.words) == ("machine", "maximum_number_of_words", 6)
    # The sixth word counts once it has lasted 100 ms.
    assert found.at == pytest.approx(0.2 + 5 * 0.3 + 0.1)


def test_exactly_the_maximum_number_of_words_is_not_yet_a_machine() -> None:
    events = run(words(5, length=0.2, gap=0.1))
    assert detection(events).result == "human"
    assert detection(events).words == 5


def test_the_maximum_number_of_words_is_configurable() -> None:
    events = run(words(3, length=0.2, gap=0.1), config=AmdConfig(maximum_number_of_words=2))
    assert detection(events).reason == "maximum_number_of_words"


def test_a_word_longer_than_the_maximum_is_a_machine() -> None:
    config = AmdConfig(maximum_word_length_millis=2000, total_analysis_time_millis=5000)
    events = run(word(3.0), config=config, follow=False)
    found = detection(events)
    assert (found.result, found.reason, found.at) == ("machine", "maximum_word_length", 2.02)


def test_a_greeting_longer_than_the_greeting_duration_is_a_machine() -> None:
    # Five words of 0.76 s: 3.8 s of voice, under six words and no word too long.
    config = AmdConfig(total_analysis_time_millis=6000)
    events = run(words(5, length=0.76, gap=0.3), config=config, follow=False)
    found = detection(events)
    assert (found.result, found.reason) == ("machine", "greeting_duration")
    assert found.greeting_seconds == pytest.approx(3.52)
    assert found.at == pytest.approx(4 * 1.06 + 0.48)  # 176 frames of voice


def test_the_greeting_counts_voice_only_not_pauses() -> None:
    # 2 s of voice spread over 3.4 s is under greeting_duration 2500 ms: a person.
    config = AmdConfig(greeting_duration_millis=2500, total_analysis_time_millis=8000)
    events = run(words(4, length=0.5, gap=0.45), config=config)
    assert detection(events).result == "human"


def test_a_silent_line_is_a_machine_after_the_initial_silence() -> None:
    events = run(silence(5), follow=False)
    assert detection(events) == Detection("machine", "initial_silence", 3.5, 0, 0.0)


def test_the_initial_silence_rule_can_be_turned_off() -> None:
    events = run(silence(5), config=AmdConfig(initial_silence_millis=None))
    assert detection(events) == Detection("not_sure", "total_analysis_time", 3.5, 0, 0.0)


def test_a_late_first_word_beats_the_initial_silence() -> None:
    events = run(silence(2.0), word(0.4), config=AmdConfig(total_analysis_time_millis=5000))
    assert detection(events).result == "human"


def test_clicks_are_not_words() -> None:
    click = np.concatenate([word(0.04), silence(0.26)])
    events = run(*[click] * 10, config=AmdConfig(initial_silence_millis=None))
    found = detection(events)
    assert (found.result, found.words) == ("not_sure", 0)


def test_undecided_speech_is_not_sure_at_the_total_analysis_time() -> None:
    # Short words with long pauses: under every machine rule, never 800 ms of silence.
    events = run(words(6, length=0.2, gap=0.7), config=AmdConfig(maximum_number_of_words=10))
    found = detection(events)
    assert (found.result, found.reason, found.at) == ("not_sure", "total_analysis_time", 3.5)


@pytest.mark.parametrize(("gap", "count"), [(0.04, 1), (0.06, 2)])
def test_words_are_split_by_the_between_words_silence(gap: float, count: int) -> None:
    events = run(word(0.3), silence(gap), word(0.3))
    assert detection(events).words == count


def test_a_decided_detector_takes_no_more_frames() -> None:
    detector = AnsweringMachineDetector(follow_greeting=False)
    for _ in range(round(3.5 / 0.02)):
        detector.feed(silence(0.02))
    assert detector.finished and detector.detection is not None
    assert detector.feed(word(0.02)) == []


# -- the greeting's end -------------------------------------------------------------------

GREETING = (silence(0.3), words(8, length=0.3, gap=0.2))  # a machine by its sixth word


@pytest.mark.parametrize("hz", [400, 440, 850, 1000, 1400, 1500, 1633, 2000])
def test_a_beep_after_the_greeting_ends_it(hz: float) -> None:
    events = run(*GREETING, silence(0.5), beep(hz, 0.5))
    assert detection(events).result == "machine"
    end = greeting(events)
    assert end.result == "beep_detected"
    assert end.beep_hz == pytest.approx(hz, abs=12.5)
    # Reported when the beep ends, so what follows lands on the message.
    assert end.at == pytest.approx(0.3 + 8 * 0.3 + 7 * 0.2 + 0.5 + 0.5 + 0.02, abs=0.021)


@pytest.mark.parametrize("offset", [0, 37, 80, 123])
def test_a_150_ms_beep_is_heard_wherever_it_falls_in_the_frames(offset: int) -> None:
    lead = np.zeros(offset, np.int16)
    events = run(*GREETING, silence(0.5), lead, beep(1400, 0.15, level_dbfs=-30))
    assert greeting(events).result == "beep_detected"


@pytest.mark.parametrize("offset", [0, 37, 80, 123])
def test_a_tone_of_125_ms_is_no_beep(offset: int) -> None:
    lead = np.zeros(offset, np.int16)
    events = run(*GREETING, silence(0.5), lead, beep(1400, 0.125))
    assert greeting(events).result == "ended"


@pytest.mark.parametrize("hz", [300, 2500, 3000])
def test_tones_outside_the_band_are_no_beep(hz: float) -> None:
    events = run(*GREETING, silence(0.5), beep(hz, 0.5))
    assert greeting(events).result == "ended"


def test_a_beep_in_line_noise_is_heard() -> None:
    tone = beep(1000, 0.4, level_dbfs=-20).astype(np.int32)
    noisy = np.clip(tone + line_noise(0.4, mean_abs=230).astype(np.int32), -32768, 32767)
    events = run(*GREETING, line_noise(0.5), noisy.astype(np.int16))
    assert greeting(events).result == "beep_detected"


@pytest.mark.parametrize("frequencies", [(440, 480), (350, 440), (697, 1209)])
def test_two_tones_at_once_are_no_beep(frequencies: tuple[float, float]) -> None:
    pair = tones.tone(list(frequencies), 0.6, -16)
    events = run(*GREETING, silence(0.5), pair)
    assert greeting(events).result == "ended"


def test_a_gliding_tone_is_no_beep() -> None:
    t = np.arange(round(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    glide = 800 * t + 500 * t * t  # 800 Hz rising to 1400 Hz over 0.6 s
    chirp = (np.sin(2 * np.pi * glide) * 8000).astype(np.int16)
    events = run(*GREETING, silence(0.5), chirp)
    assert greeting(events).result == "ended"


def test_silence_after_the_greeting_ends_it() -> None:
    events = run(*GREETING)
    found = detection(events)
    end = greeting(events)
    assert end.result == "ended" and end.beep_hz is None
    # From the last word: 1.5 s of silence (the words after the detection reset it).
    assert end.at == pytest.approx(0.3 + 8 * 0.3 + 7 * 0.2 + 1.5)
    assert end.at > found.at


def test_the_greeting_silence_is_counted_from_the_detection() -> None:
    # A silent line is a machine at 3.5 s; its greeting ends 1.5 s of silence later.
    events = run(silence(8))
    assert detection(events).reason == "initial_silence"
    assert greeting(events) == GreetingEnd("ended", 5.0)


def test_a_greeting_that_goes_on_is_not_sure_at_the_greeting_analysis_time() -> None:
    config = AmdConfig(greeting_total_analysis_time_millis=3000)
    events = run(silence(0.3), words(40, length=0.3, gap=0.2), config=config)
    found = detection(events)
    assert greeting(events) == GreetingEnd("not_sure", pytest.approx(found.at + 3.0))


def test_a_tone_still_sounding_at_the_greeting_analysis_time_is_a_beep() -> None:
    config = AmdConfig(greeting_total_analysis_time_millis=2000)
    events = run(*GREETING, beep(1000, 6.0), config=config)
    end = greeting(events)
    assert (end.result, end.beep_hz) == ("beep_detected", 1000.0)
    assert end.at == pytest.approx(detection(events).at + 2.0)


def test_a_beep_before_any_verdict_is_a_machine() -> None:
    # "Leave a message" and the beep, all within the first second.
    events = run(silence(0.3), word(0.4), silence(0.2), beep(1400, 0.4))
    found = detection(events)
    assert (found.result, found.reason) == ("machine", "beep")
    assert found.at == pytest.approx(0.3 + 0.6 + BEEP_FRAMES * 0.02)
    assert greeting(events) == GreetingEnd("beep_detected", pytest.approx(1.32), 1400.0)


def test_a_long_tone_alone_is_a_machine() -> None:
    events = run(silence(0.4), beep(800, 5.0), follow=False)
    assert detection(events).result == "machine"


def test_without_following_the_greeting_a_machine_is_the_end() -> None:
    events = run(*GREETING, silence(0.5), beep(1000, 0.5), follow=False)
    assert [type(event) for event in events] == [Detection]


def test_expire_reports_what_is_pending() -> None:
    detector = AnsweringMachineDetector()
    detector.feed(word(0.02))
    assert detector.expire() == [Detection("not_sure", "total_analysis_time", 0.02, 0, 0.0)]
    assert detector.finished and detector.expire() == []
    machine = AnsweringMachineDetector()
    pcm = words(7, length=0.2, gap=0.1)
    for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        machine.feed(pcm[start : start + FRAME_SAMPLES])
    assert machine.detection is not None and machine.detection.result == "machine"
    assert machine.expire() == [GreetingEnd("not_sure", 2.0)]
    assert machine.finished


# -- the beep bank --------------------------------------------------------------------------


@pytest.mark.parametrize("hz", [400.0, 412.5, 1000.0, 1387.5, 1400.0, 1999.0])
def test_a_pure_tone_dominates_its_frame_anywhere_in_the_band(hz: float) -> None:
    found = frame_tone(beep(hz, 0.02, level_dbfs=-20)[:FRAME_SAMPLES])
    assert found is not None
    index, share = found
    assert amd.bank_hz(index) == pytest.approx(hz, abs=12.5)
    assert share >= 0.85


def test_frames_of_other_sizes_and_digital_silence_hold_no_tone() -> None:
    assert frame_tone(beep(1000, 0.01)) is None
    assert frame_tone(np.zeros(FRAME_SAMPLES, np.int16)) is None


def test_the_tracker_needs_the_same_tone_frame_after_frame() -> None:
    tracker = BeepTracker()
    for _ in range(BEEP_FRAMES - 1):
        assert tracker.feed((24, 0.95)) is None
    assert not tracker.sounding
    assert tracker.feed((25, 0.95)) is None  # one step away: the same tone
    assert tracker.sounding and tracker.hz == amd.bank_hz(24)
    assert tracker.feed((24, 0.5)) == amd.bank_hz(24)  # no longer dominant: it ended
    assert not tracker.sounding and tracker.hz is None
    for _ in range(BEEP_FRAMES - 1):
        tracker.feed((10, 0.95))
    assert tracker.feed((13, 0.95)) is None  # jumped: a new run, not a beep
    assert tracker.frames == 1


# -- espeak-ng speech -------------------------------------------------------------------------

VOICES = ("en-us", "en-us+f3", "en-gb+m3", "en+f4")
GREETING_TEXT = (
    "Hi, you have reached the voicemail of John Smith. I cannot take your call right now. "
    "Please leave a message after the tone."
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Pcm]:
    folder: Path = tmp_path_factory.mktemp("amd-speech")
    out = {}
    for voice in VOICES:
        for name, text in (("hello", "Hello?"), ("greeting", GREETING_TEXT)):
            path = audio.make_speech_wav(folder / f"{name}-{voice}.wav", text, voice=voice)
            samples, rate = audio.read_mono(path)
            assert rate == SAMPLE_RATE
            out[name, voice] = (samples * 32767).astype(np.int16)
    return out


@pytest.mark.parametrize("voice", VOICES)
def test_a_spoken_hello_is_a_person(speech: dict[tuple[str, str], Pcm], voice: str) -> None:
    events = run(silence(0.4), speech["hello", voice])
    assert detection(events).result == "human"


@pytest.mark.parametrize("voice", VOICES)
def test_a_spoken_greeting_and_its_beep(speech: dict[tuple[str, str], Pcm], voice: str) -> None:
    config = AmdConfig(total_analysis_time_millis=6000, greeting_total_analysis_time_millis=10000)
    greeting_pcm = speech["greeting", voice]
    events = run(silence(0.4), greeting_pcm, silence(0.6), beep(1400, 0.5), config=config)
    assert detection(events).result == "machine"
    end = greeting(events)
    assert (end.result, end.beep_hz) == ("beep_detected", 1400.0)
    assert end.at == pytest.approx((0.4 * 8000 + len(greeting_pcm)) / 8000 + 1.1, abs=0.05)


@pytest.mark.parametrize("voice", VOICES)
def test_speech_holds_no_beep(speech: dict[tuple[str, str], Pcm], voice: str) -> None:
    for gain in (0.25, 1.0, 2.0):
        pcm = np.clip(speech["greeting", voice] * gain, -32768, 32767).astype(np.int16)
        tracker = BeepTracker()
        longest = 0
        for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            frame = pcm[start : start + FRAME_SAMPLES]
            tracker.feed(None if is_silent(frame, 256) else frame_tone(frame))
            longest = max(longest, tracker.frames)
        assert longest < BEEP_FRAMES // 2, (voice, gain, longest)
