"""16 kHz versions of prompts for wideband legs: the bounded store (hits, misses,
eviction by entries and bytes), made once per file and per speech when the server
offers a wideband codec and never otherwise, and sent by a G.722 leg (its band
above 4 kHz kept) while a PCMU leg plays the 8 kHz audio as before."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from mediaserver.media import sources
from mediaserver.media.codecs import G722, OPUS, PCMU, wide_decoder_for
from mediaserver.media.sources import PcmCache, load_file
from mediaserver.media.tts import SpeechSynthesizer
from mediaserver.media.wide_audio import COMPANIONS, WideCompanions
from tests.unit.media_fakes import ManualClock, make_leg
from tests.unit.test_tts import Espeak

ESPEAK = shutil.which("espeak-ng")


def pcm(samples: int, value: int = 1) -> npt.NDArray[np.int16]:
    return np.full(samples, value, np.int16)


def tone(hz: float, seconds: float, rate: int) -> npt.NDArray[np.float64]:
    return 0.4 * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)


def high_share(audio: npt.NDArray[np.int16], rate: int, above_hz: float = 4000) -> float:
    """The share of the energy above ``above_hz``."""
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    return float(spectrum[freqs > above_hz].sum() / max(spectrum.sum(), 1.0))


@pytest.fixture
def wideband(monkeypatch: pytest.MonkeyPatch) -> Iterator[WideCompanions]:
    """The process-wide store, turned on as a server offering G.722 turns it on,
    with a file cache of the test's own."""
    monkeypatch.setattr(sources, "FILE_CACHE", PcmCache())
    monkeypatch.setattr(COMPANIONS, "enabled", True)
    COMPANIONS.clear()
    yield COMPANIONS
    COMPANIONS.clear()


def test_the_store_finds_a_companion_by_the_very_array_and_counts_hits() -> None:
    store = WideCompanions()
    narrow = pcm(160)
    store.attach(narrow, pcm(320, 2))
    found = store.wide_of(narrow)
    assert found is not None and len(found) == 320 and not found.flags.writeable
    assert store.wide_of(pcm(160)) is None  # equal content, another array: not its companion
    assert (store.hits, store.misses) == (1, 1)
    store.attach(narrow, pcm(331, 3))  # soxr's length is near, not exact: fitted to 2x
    again = store.wide_of(narrow)
    assert again is not None and len(again) == 320 and again[0] == 3
    assert len(store) == 1 and store.nbytes == 640


def test_the_store_is_bounded_by_entries_and_bytes_least_recently_used_first() -> None:
    store = WideCompanions(max_entries=2, max_bytes=10_000)
    a, b, c = pcm(160), pcm(160), pcm(160)
    store.attach(a, pcm(320))
    store.attach(b, pcm(320))
    assert store.wide_of(a) is not None  # a is now the most recent
    store.attach(c, pcm(320))
    assert store.wide_of(b) is None and store.wide_of(a) is not None and len(store) == 2
    big = pcm(2400)
    store.attach(big, pcm(4800))  # 9600 bytes: the others go to make room
    assert len(store) == 1 and store.nbytes == 9600
    huge = pcm(5000)
    store.attach(huge, pcm(10_000))  # more than the whole budget: not kept
    assert store.wide_of(huge) is None and store.wide_of(big) is not None
    with pytest.raises(ValueError, match="at least one entry"):
        WideCompanions(max_entries=0)


async def test_a_file_above_8khz_is_resampled_to_16khz_once(
    tmp_path: Path, wideband: WideCompanions
) -> None:
    path = tmp_path / "wide.wav"
    sf.write(path, tone(6000, 1.0, 44100), 44100, subtype="PCM_16")
    first = await load_file(path)
    wide = wideband.wide_of(first)
    assert wide is not None and len(wide) == 2 * len(first) == 16000
    assert high_share(wide, 16000) > 0.95  # the 6 kHz tone is kept
    assert np.abs(first[800:-800]).max() < 300  # the 8 kHz version cannot hold 6 kHz
    second = await load_file(path)
    assert second is first and wideband.wide_of(second) is wide  # no second resampling
    narrow_file = tmp_path / "narrow.wav"
    sf.write(narrow_file, tone(1000, 0.5, 8000), 8000, subtype="PCM_16")
    assert wideband.wide_of(await load_file(narrow_file)) is None  # nothing to add


async def test_no_companion_is_made_when_no_wideband_codec_is_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "FILE_CACHE", PcmCache())
    monkeypatch.setattr(COMPANIONS, "enabled", False)  # as a G.711-only server leaves it
    path = tmp_path / "wide.wav"
    sf.write(path, tone(6000, 0.5, 44100), 44100, subtype="PCM_16")
    assert COMPANIONS.wide_of(await load_file(path)) is None


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
async def test_speech_gets_a_16khz_version_stored_beside_its_8khz_entry(
    tmp_path: Path, wideband: WideCompanions
) -> None:
    cache = tmp_path / "tts"
    espeak = Espeak(tmp_path)
    text = "Sixty six sisters sing softly."
    speech = await SpeechSynthesizer(cache, str(espeak.path)).synthesize(text)
    wide = wideband.wide_of(speech)
    assert wide is not None and len(wide) == 2 * len(speech)
    assert high_share(wide, 16000) > 0.02  # espeak-ng's sibilants, above 4 kHz
    names = sorted(p.name.split(".", 1)[1] for p in cache.glob("*.wav"))
    assert names == ["16k.wav", "wav"]
    # Another synthesizer (an empty memory cache) reads both entries from disk.
    wideband.clear()
    again = await SpeechSynthesizer(cache, str(espeak.path)).synthesize(text)
    assert espeak.syntheses == 1 and np.array_equal(again, speech)
    reread = wideband.wide_of(again)
    assert reread is not None and np.array_equal(reread, wide)


async def test_a_g722_leg_sends_the_16khz_version_and_a_pcmu_leg_the_8khz_one() -> None:
    clock = ManualClock()
    narrow = np.zeros(1600, np.int16)  # 0.2 s: the 8 kHz version cannot hold 6 kHz
    wide = np.round(tone(6000, 0.2, 16000) * 32767).astype(np.int16)
    store = COMPANIONS
    store.attach(narrow, wide)
    try:
        g722, to_g722, _ = make_leg(clock, G722)
        pcmu, to_pcmu, _ = make_leg(clock, PCMU)
        g722.play(narrow)
        pcmu.play(narrow)
        sent_wide = []
        for _ in range(10):
            clock.step()
            frame = g722.sent_wide_frame()
            assert frame is not None and len(frame) == 320
            sent_wide.append(frame)
            assert pcmu.sent_wide_frame() is None
        decoder = wide_decoder_for(G722)
        heard = np.concatenate([decoder.decode_wide(p.payload) for p in to_g722.take()])
        assert len(heard) == 3200 and high_share(heard[640:], 16000) > 0.95
        assert np.abs(heard[640:]).max() > 4000
        assert np.array_equal(np.concatenate(sent_wide), wide)
        heard_pcmu = np.concatenate([PCMU.decode(p.payload) for p in to_pcmu.take()])
        assert np.abs(heard_pcmu).max() < 10  # the 8 kHz version: silence here
    finally:
        store.clear()


async def test_an_opus_leg_sends_a_16khz_prompt_and_its_8khz_silence_after_it() -> None:
    clock = ManualClock()
    narrow = np.zeros(800, np.int16)
    wide = np.round(tone(6000, 0.1, 16000) * 32767).astype(np.int16)
    COMPANIONS.attach(narrow, wide)
    try:
        leg, sent, _ = make_leg(clock, OPUS)
        leg.play(narrow)
        for _ in range(10):  # five frames of the prompt, five of silence after it
            clock.step()
        decoder = wide_decoder_for(OPUS)
        heard = [decoder.decode_wide(p.payload) for p in sent.take()]
        assert len(heard) == 10 and all(len(frame) == 320 for frame in heard)
        prompt, after = np.concatenate(heard[1:5]), np.concatenate(heard[7:])
        assert high_share(prompt, 16000) > 0.9 and np.abs(prompt).max() > 3000
        assert np.abs(after).max() < 500  # the silence after it, from the same encoder
    finally:
        COMPANIONS.clear()
