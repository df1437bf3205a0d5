"""Conference mixing: N-1 arithmetic, the limiter, flags, slots, injections and hold audio."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mediaserver.media.g711 import PCMA, PCMU
from mediaserver.media.mixer import (
    MAX_PARTICIPANTS,
    RELEASE_DB_PER_S,
    ConferenceFull,
    Mixer,
    enter_beep,
    exit_beep,
)
from mediaserver.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from tests.support.audio import goertzel_power

TONES = (400.0, 700.0, 1000.0, 1300.0, 1600.0)
TICKS = 25  # 0.5 s: Goertzel bins 2 Hz wide, far narrower than the 300 Hz tone spacing


def sine(frequency: float, tick: int, amplitude: float = 3000.0) -> Pcm:
    """Tick ``tick`` of a continuous sine (phase carries across ticks)."""
    n = np.arange(tick * FRAME_SAMPLES, (tick + 1) * FRAME_SAMPLES)
    return np.round(amplitude * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)).astype(np.int16)


def const(value: int) -> Pcm:
    return np.full(FRAME_SAMPLES, value, np.int16)


def run(
    mixer: Mixer[str],
    ticks: int,
    frames: Callable[[int], dict[str, Pcm]],
) -> tuple[dict[str, Pcm], Pcm]:
    """Mix ``ticks`` ticks; what each participant heard, and the full mix, end to end."""
    heard: dict[str, list[Pcm]] = {key: [] for key in mixer}
    full: list[Pcm] = []
    for tick in range(ticks):
        result = mixer.mix(frames(tick))
        for key in heard:
            heard[key].append(result[key])
        full.append(result.full_mix)
    return {k: np.concatenate(v) for k, v in heard.items()}, np.concatenate(full)


def power(samples: Pcm, frequency: float) -> float:
    return goertzel_power(samples.astype(np.float64), SAMPLE_RATE, frequency)


def expected_power(amplitude: float = 3000.0) -> float:
    return amplitude**2 / 2


def reference_n_minus_1(frames: npt.NDArray[np.int16]) -> npt.NDArray[np.int64]:
    """The exact N-1 sums, in int64, one participant per row."""
    wide = frames.astype(np.int64)
    others: npt.NDArray[np.int64] = wide.sum(axis=0) - wide
    return others


# ---------------------------------------------------------------- N-1 with tones


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_each_participant_hears_every_other_tone_and_not_its_own(count: int) -> None:
    mixer: Mixer[str] = Mixer()
    keys = [f"p{i}" for i in range(count)]
    for key in keys:
        mixer.add(key)
    heard, full = run(mixer, TICKS, lambda t: {k: sine(TONES[i], t) for i, k in enumerate(keys)})
    for i, key in enumerate(keys):
        for j, frequency in enumerate(TONES[:count]):
            level = power(heard[key], frequency)
            if i == j:
                assert level < 1e-6 * expected_power(), (key, frequency)
            else:
                assert level == pytest.approx(expected_power(), rel=0.01), (key, frequency)
    for frequency in TONES[:count]:
        assert power(full, frequency) == pytest.approx(expected_power(), rel=0.01)
    if count == 1:
        assert not heard["p0"].any()


def test_n_minus_1_is_exact_for_small_known_inputs() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abcd":
        mixer.add(key)
    result = mixer.mix({"a": const(1), "b": const(10), "c": const(100), "d": const(-1000)})
    assert {k: result[k].tolist() for k in "abcd"} == {
        "a": [-890] * FRAME_SAMPLES,
        "b": [-899] * FRAME_SAMPLES,
        "c": [-989] * FRAME_SAMPLES,
        "d": [111] * FRAME_SAMPLES,
    }
    assert result.full_mix.tolist() == [-889] * FRAME_SAMPLES
    assert result["a"].dtype == np.int16


def frame_blocks(max_rows: int, low: int, high: int) -> st.SearchStrategy[npt.NDArray[np.int16]]:
    """(participants, 160) int16 blocks with samples in [low, high]."""
    shape = st.tuples(st.integers(min_value=1, max_value=max_rows), st.just(FRAME_SAMPLES))
    return arrays(np.int16, shape, elements=st.integers(low, high))


@settings(max_examples=100, deadline=None)
@given(frame_blocks(8, -4096, 4095))
def test_n_minus_1_matches_the_reference_when_nothing_exceeds_full_scale(
    frames: npt.NDArray[np.int16],
) -> None:
    count = len(frames)
    mixer: Mixer[int] = Mixer()
    for key in range(count):
        mixer.add(key)
    result = mixer.mix({key: frames[key] for key in range(count)})
    reference = reference_n_minus_1(frames)
    for key in range(count):
        assert np.array_equal(result[key], reference[key])
    assert np.array_equal(result.full_mix, frames.astype(np.int64).sum(axis=0))


@settings(max_examples=100, deadline=None)
@given(frame_blocks(12, -32768, 32767))
def test_any_input_stays_in_range_keeps_its_sign_and_is_exact_when_it_fits(
    frames: npt.NDArray[np.int16],
) -> None:
    count = len(frames)
    mixer: Mixer[int] = Mixer()
    for key in range(count):
        mixer.add(key)
    result = mixer.mix({key: frames[key] for key in range(count)})
    reference = reference_n_minus_1(frames)
    for key in range(count):
        check_limited(result[key], reference[key])
    check_limited(result.full_mix, frames.astype(np.int64).sum(axis=0))


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.int16,
        st.tuples(st.integers(1, 6), st.integers(2, 6), st.just(FRAME_SAMPLES)),
        elements=st.integers(-32768, 32767),
    )
)
def test_over_many_ticks_the_limiter_never_wraps_nor_amplifies(
    ticks: npt.NDArray[np.int16],
) -> None:
    count = ticks.shape[1]
    mixer: Mixer[int] = Mixer()
    for key in range(count):
        mixer.add(key)
    for frames in ticks:
        result = mixer.mix({key: frames[key] for key in range(count)})
        reference = reference_n_minus_1(frames)
        for key in range(count):
            out = result[key].astype(np.int64)
            assert np.all(np.abs(out) <= np.abs(reference[key]))
            assert np.all(np.sign(out) * np.sign(reference[key]) >= 0)


def check_limited(out: Pcm, exact: npt.NDArray[np.int64]) -> None:
    """``out`` is ``exact`` when it fits in int16, else ``exact`` scaled down
    by one positive gain with its peak at full scale: no wrap, no clip."""
    assert out.dtype == np.int16
    if exact.max() <= 32767 and exact.min() >= -32768:
        assert np.array_equal(out, exact)
        return
    assert np.all(np.sign(out[np.abs(exact) > 1]) == np.sign(exact[np.abs(exact) > 1]))
    peak = int(np.abs(out.astype(np.int64)).max())
    assert peak >= 32766
    gain = peak / float(np.abs(exact).max())
    assert np.all(np.abs(out - exact * gain) <= 1.0)


# ---------------------------------------------------------------- the limiter


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(lambda i, t: const(32767), id="all-at-plus-full-scale"),
        pytest.param(lambda i, t: const(-32768), id="all-at-minus-full-scale"),
        pytest.param(lambda i, t: sine(1000.0, t, 32767.0), id="in-phase-full-scale-sines"),
        pytest.param(
            lambda i, t: const(32767 if (t // 5) % 2 else -32768), id="square-wave-flipping"
        ),
        pytest.param(lambda i, t: const(32767 if i % 2 else -32768), id="half-plus-half-minus"),
    ],
)
def test_a_hundred_loud_participants_never_wrap(
    signal: Callable[[int, int], Pcm],
) -> None:
    mixer: Mixer[int] = Mixer(max_participants=100)
    for key in range(100):
        mixer.add(key)
    for tick in range(30):
        frames = {key: signal(key, tick) for key in range(100)}
        result = mixer.mix(frames)
        stacked = np.stack([frames[key] for key in range(100)])
        reference = reference_n_minus_1(stacked)
        outputs = np.stack([result[key] for key in range(100)]).astype(np.int64)
        assert outputs.min() >= -32768 and outputs.max() <= 32767
        # A sign flip is the mark of integer wrap-around.
        loud = np.abs(reference) > 100
        assert np.all(np.sign(outputs[loud]) == np.sign(reference[loud]))
        full = stacked.astype(np.int64).sum(axis=0)
        loud_full = np.abs(full) > 100
        assert np.all(np.sign(result.full_mix[loud_full]) == np.sign(full[loud_full]))


def test_a_limited_mix_is_scaled_to_full_scale_not_clipped() -> None:
    mixer: Mixer[int] = Mixer()
    for key in range(10):
        mixer.add(key)
    result = mixer.mix({key: sine(1000.0, 0, 10000.0) for key in range(10)})
    heard = result[0].astype(np.float64)
    # Nine sines in phase: the same sine at full scale, not a flattened square.
    assert np.abs(heard).max() == pytest.approx(32767, abs=1)
    ideal = np.round(32767 * np.sin(2 * np.pi * 1000 * np.arange(160) / SAMPLE_RATE))
    assert np.abs(heard - ideal).max() <= 2


def test_the_gain_recovers_at_the_release_rate_without_steps() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    mixer.add("b")
    mixer.add("c")
    # b and c at full scale: a hears twice full scale, so its gain drops to 0.5.
    mixer.mix({"b": const(32767), "c": const(32767)})
    gains: list[float] = []
    previous = 0.5
    for _ in range(60):
        heard = mixer.mix({"b": const(10000)})["a"].astype(np.float64)
        gains.append(heard[-1] / 10000)
        # The ramp within a frame continues from where the last frame ended.
        assert abs(heard[0] / 10000 - previous) < 0.001
        assert np.all(np.diff(heard) >= 0)
        previous = gains[-1]
    per_tick_db = RELEASE_DB_PER_S * 0.02
    assert gains[0] == pytest.approx(0.5 * 10 ** (per_tick_db / 20), rel=0.01)
    assert gains[-1] == 1.0
    # Once recovered, arithmetic is exact again.
    assert np.array_equal(mixer.mix({"b": const(123)})["a"], const(123))


def test_each_listener_has_its_own_gain() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abc":
        mixer.add(key)
    result = mixer.mix({"a": const(30000), "b": const(30000), "c": const(1)})
    # c hears 60000 and is limited; a and b hear 30001 and are exact.
    assert result["c"].max() == 32767
    assert np.array_equal(result["a"], const(30001))
    assert np.array_equal(result["b"], const(30001))


# ---------------------------------------------------------------- flags


def test_a_muted_participant_is_not_heard_but_still_hears() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abc":
        mixer.add(key)
    mixer.set_muted("b", True)
    assert mixer.participant("b").muted
    result = mixer.mix({"a": const(1), "b": const(10), "c": const(100)})
    assert result["a"][0] == 100
    assert result["b"][0] == 101
    assert result["c"][0] == 1
    assert result.full_mix[0] == 101
    mixer.set_muted("b", False)
    assert mixer.mix({"a": const(1), "b": const(10), "c": const(100)})["a"][0] == 110


def test_a_deaf_participant_is_heard_but_hears_nothing() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abc":
        mixer.add(key)
    mixer.set_deaf("c", True)
    result = mixer.mix({"a": const(1), "b": const(10), "c": const(100)})
    assert not result["c"].any()
    assert result["a"][0] == 110
    assert result.full_mix[0] == 111


def test_missing_inputs_are_silence() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abc":
        mixer.add(key)
    mixer.mix({"a": const(5), "b": const(7), "c": const(9)})
    result = mixer.mix({"a": const(5)})
    assert result["b"][0] == 5 and result["c"][0] == 5 and result["a"][0] == 0
    assert not mixer.mix({})["a"].any()


def test_short_frames_are_padded_and_long_ones_cut() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    mixer.add("b")
    result = mixer.mix({"a": np.full(100, 3, np.int16), "b": np.full(400, 4, np.int16)})
    assert result["b"].tolist() == [3] * 100 + [0] * 60
    assert result["a"].tolist() == [4] * FRAME_SAMPLES


def test_frames_of_unknown_participants_are_ignored_and_counted() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    result = mixer.mix({"a": const(1), "gone": const(1000)})
    assert mixer.ignored_frames == 1
    assert result.full_mix[0] == 1


# ---------------------------------------------------------------- slots


def test_slots_are_reused_lowest_first() -> None:
    mixer: Mixer[str] = Mixer()
    assert [mixer.add(k) for k in "abcd"] == [0, 1, 2, 3]
    mixer.remove("b")
    mixer.remove("a")
    assert "a" not in mixer and len(mixer) == 2
    assert mixer.add("e") == 0
    assert mixer.add("f") == 1
    assert mixer.add("g") == 4
    assert mixer.slot("g") == 4


def test_removing_the_highest_slots_shrinks_the_mixed_rows() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abcd":
        mixer.add(key)
    mixer.remove("c")
    mixer.remove("d")
    result = mixer.mix({"a": const(1), "b": const(2)})
    assert result.outputs.shape == (2, FRAME_SAMPLES)
    assert mixer.add("e") == 2


def test_add_and_remove_errors() -> None:
    mixer: Mixer[str] = Mixer(max_participants=2)
    mixer.add("a")
    with pytest.raises(ValueError, match="already in the conference"):
        mixer.add("a")
    mixer.add("b")
    with pytest.raises(ConferenceFull, match="2 participants"):
        mixer.add("c")
    mixer.remove("nobody")
    mixer.remove("a")
    mixer.add("c")
    with pytest.raises(KeyError):
        mixer.set_muted("nobody", True)
    for bad in (0, MAX_PARTICIPANTS + 1):
        with pytest.raises(ValueError, match="max_participants"):
            Mixer(max_participants=bad)


def test_the_conference_grows_past_its_initial_rows_and_stays_exact() -> None:
    mixer: Mixer[int] = Mixer(max_participants=300)
    for key in range(300):
        mixer.add(key)
    frames = {key: const(key % 7 - 3) for key in range(300)}
    result = mixer.mix(frames)
    total = sum(key % 7 - 3 for key in range(300))
    for key in (0, 17, 299):
        assert result[key][0] == total - (key % 7 - 3)
    assert result.outputs.shape == (300, FRAME_SAMPLES)


def test_a_result_keeps_the_participants_it_was_mixed_for() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    mixer.add("b")
    result = mixer.mix({"a": const(1), "b": const(2)})
    mixer.remove("a")
    mixer.add("c")
    assert set(result) == {"a", "b"} and result["a"][0] == 2
    assert np.array_equal(result.outputs[mixer.slot("b")], result["b"])
    later = mixer.mix({"c": const(4)})
    assert set(later) == {"b", "c"} and later["b"][0] == 4
    assert result["a"][0] == 2  # new arrays every tick: nothing was overwritten


def test_a_reused_slot_starts_with_full_gain_and_silence() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abc":
        mixer.add(key)
    mixer.mix({"b": const(32767), "c": const(32767)})  # a's gain drops
    mixer.remove("a")
    mixer.add("d")
    assert mixer.slot("d") == 0
    assert mixer.mix({"b": const(3)})["d"][0] == 3


# ---------------------------------------------------------------- injections and hold


def test_a_broadcast_is_heard_by_everyone_and_recorded() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "abc":
        mixer.add(key)
    mixer.set_deaf("c", True)
    beep = np.arange(1, 321, dtype=np.int16)
    injection = mixer.inject(None, beep)
    first = mixer.mix({"a": const(1000)})
    assert first["a"].tolist() == beep[:160].tolist()
    assert first["b"].tolist() == (beep[:160] + 1000).tolist()
    assert not first["c"].any()
    assert first.full_mix.tolist() == (beep[:160] + 1000).tolist()
    assert not injection.finished
    second = mixer.mix({})
    assert second["b"].tolist() == beep[160:].tolist()
    assert injection.finished
    assert not mixer.mix({})["b"].any()


def test_a_personal_injection_is_heard_only_by_its_participant() -> None:
    mixer: Mixer[str] = Mixer()
    for key in "ab":
        mixer.add(key)
    mixer.set_deaf("b", True)
    prompt = np.full(200, 77, np.int16)
    mixer.inject("b", prompt)
    first = mixer.mix({"a": const(5)})
    assert first["b"].tolist() == [77] * 160
    assert not first["a"].any()
    assert first.full_mix[0] == 5
    second = mixer.mix({})
    assert second["b"].tolist() == [77] * 40 + [0] * 120


def test_injections_play_together_loop_and_cancel() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    looped = mixer.inject("a", np.array([1, 2, 3], np.int16), loop=True)
    mixer.inject("a", const(100))
    first = mixer.mix({})["a"]
    assert first[:6].tolist() == [101, 102, 103, 101, 102, 103]
    assert mixer.mix({})["a"][:3].tolist() == [2, 3, 1]  # 160 = 3 * 53 + 1: the loop goes on
    looped.cancel()
    assert not mixer.mix({})["a"].any()
    with pytest.raises(KeyError):
        mixer.inject("nobody", const(1))


def test_removing_a_participant_cancels_its_injections() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    injection = mixer.inject("a", np.ones(8000, np.int16))
    mixer.remove("a")
    assert injection.finished
    mixer.add("b")  # takes slot 0 again
    assert not mixer.mix({})["b"].any()


def music(seconds: float = 0.05) -> Pcm:
    return np.arange(1, round(seconds * SAMPLE_RATE) + 1, dtype=np.int16)


def test_a_lone_participant_hears_the_hold_audio_from_its_start() -> None:
    hold = music()  # 400 samples: 2.5 frames, so it loops within the third tick
    mixer: Mixer[str] = Mixer(hold_audio=hold)
    mixer.add("a")
    assert mixer.alone
    heard = np.concatenate([mixer.mix({})["a"] for _ in range(3)])
    assert heard.tolist() == np.concatenate([hold, hold[:80]]).tolist()
    mixer.add("b")
    assert not mixer.alone
    result = mixer.mix({"b": const(9)})
    assert result["a"].tolist() == [9] * 160
    assert result.full_mix.tolist() == [9] * 160  # hold audio is not recorded
    mixer.remove("b")
    assert mixer.mix({})["a"].tolist() == hold[:160].tolist()


def test_held_participants_hear_the_hold_audio_and_are_out_of_the_mix() -> None:
    mixer: Mixer[str] = Mixer(hold_audio=music())
    for key in "abc":
        mixer.add(key)
    mixer.set_held("c", True)
    assert mixer.participant("c").held and not mixer.alone
    result = mixer.mix({"a": const(1), "b": const(10), "c": const(1000)})
    assert result["c"].tolist() == music()[:160].tolist()
    assert result["a"][0] == 10 and result["b"][0] == 1
    assert result.full_mix[0] == 11
    mixer.set_held("b", True)
    assert mixer.alone  # a has nobody left to hear
    result = mixer.mix({"a": const(1), "b": const(10)})
    assert result["a"].tolist() == (music()[160:320]).tolist()
    mixer.hold_audio = None
    assert not mixer.mix({"a": const(1)})["b"].any()


def test_without_hold_audio_a_lone_participant_hears_silence() -> None:
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    assert mixer.alone and mixer.hold_audio is None
    assert not mixer.mix({"a": const(500)})["a"].any()


# ---------------------------------------------------------------- codecs and beeps


def test_participants_on_different_codecs_hear_each_other() -> None:
    """The legs decode to PCM and encode what they hear: PCMU and PCMA mix."""
    codecs = {"ulaw": PCMU, "alaw": PCMA, "ulaw2": PCMU}
    tones = dict(zip(codecs, TONES, strict=False))
    mixer: Mixer[str] = Mixer()
    for key in codecs:
        mixer.add(key)
    received: dict[str, list[Pcm]] = {key: [] for key in codecs}
    for tick in range(TICKS):
        wire = {key: codec.encode(sine(tones[key], tick)) for key, codec in codecs.items()}
        result = mixer.mix({key: codecs[key].decode(payload) for key, payload in wire.items()})
        for key, codec in codecs.items():
            received[key].append(codec.decode(codec.encode(result[key])))
    for key in codecs:
        heard = np.concatenate(received[key])
        for other, frequency in tones.items():
            level = power(heard, frequency)
            if other == key:
                assert level < 1e-3 * expected_power()
            else:
                assert level == pytest.approx(expected_power(), rel=0.05)


def dominant(samples: Sequence[int] | Pcm) -> float:
    arr = np.asarray(samples, np.float64)
    spectrum = np.abs(np.fft.rfft(arr * np.hanning(len(arr)), n=8 * len(arr)))
    return float(np.fft.rfftfreq(8 * len(arr), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def test_enter_and_exit_beeps_rise_and_fall() -> None:
    enter, leave = enter_beep(), exit_beep()
    assert not enter.flags.writeable and enter is enter_beep()
    assert len(enter) == len(leave) == round(0.23 * SAMPLE_RATE)
    half = round(0.1 * SAMPLE_RATE)
    assert dominant(enter[:half]) == pytest.approx(660, abs=5)
    assert dominant(enter[-half:]) == pytest.approx(880, abs=5)
    assert dominant(leave[:half]) == pytest.approx(880, abs=5)
    assert dominant(leave[-half:]) == pytest.approx(660, abs=5)
    mixer: Mixer[str] = Mixer()
    mixer.add("a")
    mixer.inject(None, enter)
    heard = np.concatenate([mixer.mix({})["a"] for _ in range(12)])
    assert np.array_equal(heard[: len(enter)], enter)
