"""Speech with the real espeak-ng: audio that sounds like speech, the disk and
memory caches, shared synthesis, parameter errors and failure handling.

espeak-ng runs through a small wrapper script that logs each launch, so the
tests can count how often speech was really synthesised.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from mediaserver.actions.callapi import SAMPLE_RATE
from mediaserver.media import tts
from mediaserver.media.sources import PcmCache
from mediaserver.media.tts import (
    MAX_TEXT_CHARS,
    SpeechError,
    SpeechSynthesizer,
    parse_voices,
    resolve_voice,
)

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")

PANGRAM = "The quick brown fox jumps over the lazy dog."


class Espeak:
    """A wrapper around espeak-ng that logs the first argument of each launch."""

    def __init__(self, directory: Path, synthesis_body: str | None = None) -> None:
        self.log = directory / "launches.log"
        self.path = directory / "espeak-wrapper"
        body = synthesis_body or f'exec {ESPEAK} "$@"'
        self.path.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$1" >> {self.log}\n'
            f'case "$1" in -v) {body} ;; esac\n'
            f'exec {ESPEAK} "$@"\n'
        )
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)

    @property
    def syntheses(self) -> int:
        """Launches that synthesised speech (``-v`` comes first only then)."""
        if not self.log.exists():
            return 0
        return self.log.read_text().splitlines().count("-v")


@pytest.fixture
def espeak(tmp_path: Path) -> Espeak:
    return Espeak(tmp_path)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "speech-cache"


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.wav"))


def leftovers(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob(".*"))


def active_share(pcm: npt.NDArray[np.int16]) -> float:
    """Share of 20 ms frames louder than -50 dBFS."""
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float64).reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > 32768 * 10 ** (-50 / 20)).mean())


# --- mapping, without espeak-ng ------------------------------------------------

LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  de              --/M      German             gmw/de
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)
 5  cmn             --/M      Chinese_(Mandarin) sit/cmn              (zh-cmn 5)(zh 5)
"""


def test_parse_voices_includes_other_languages() -> None:
    assert parse_voices(LISTING) == {
        "de",
        "en-gb",
        "en",
        "en-us",
        "fr-fr",
        "fr",
        "cmn",
        "zh-cmn",
        "zh",
    }


@pytest.mark.parametrize(
    ("language", "voice"),
    [
        ("en-US", "en-us"),
        ("EN-gb", "en-gb"),
        ("fr-FR", "fr-fr"),
        ("fr-CA", "fr"),
        ("de", "de"),
        ("de-AT", "de"),
        ("en_US", "en-us"),
        ("zh", "zh"),
    ],
)
def test_resolve_voice(language: str, voice: str) -> None:
    assert resolve_voice(language, parse_voices(LISTING)) == voice


@pytest.mark.parametrize("language", ["xx-YY", "", "klingon", "en+m1"])
def test_resolve_voice_unknown_language(language: str) -> None:
    with pytest.raises(SpeechError, match="has no voice") as caught:
        resolve_voice(language, parse_voices(LISTING))
    assert repr(language) in str(caught.value)
    assert "en-us" in str(caught.value)


# --- synthesis with espeak-ng ---------------------------------------------------


@needs_espeak
async def test_speech_sounds_like_speech(cache_dir: Path, espeak: Espeak) -> None:
    pcm = await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize(PANGRAM)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    seconds = len(pcm) / SAMPLE_RATE
    # Nine words at 175 words per minute is about 3 s.
    assert 1.5 < seconds < 6.0
    assert active_share(pcm) > 0.6
    assert int(np.abs(pcm.astype(np.int32)).max()) > 3000
    # Speech, not a tone: energy spread over the voice band.
    power = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    assert power.max() / power.sum() < 0.05


@needs_espeak
async def test_cache_entry_written_and_reused(cache_dir: Path, espeak: Espeak) -> None:
    first_synth = SpeechSynthesizer(cache_dir, str(espeak.path))
    first = await first_synth.synthesize("Welcome to the service.")
    assert espeak.syntheses == 1
    [entry] = entries(cache_dir)
    assert len(entry.stem) == 64
    info = sf.info(entry)
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    assert np.array_equal(sf.read(entry, dtype="int16")[0], first)
    assert leftovers(cache_dir) == []

    # Same synthesizer: from memory, the very same array.
    assert await first_synth.synthesize("Welcome to the service.") is first
    # A new synthesizer (a restarted server): from disk, no espeak-ng run.
    again = await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize(
        "  Welcome to the service. "
    )
    assert np.array_equal(again, first)
    assert espeak.syntheses == 1
    with pytest.raises(ValueError):
        again[0] = 0


@needs_espeak
async def test_each_parameter_gets_its_own_entry(cache_dir: Path, espeak: Espeak) -> None:
    synth = SpeechSynthesizer(cache_dir, str(espeak.path))
    female = await synth.synthesize("Hello")
    male = await synth.synthesize("Hello", voice="male")
    french = await synth.synthesize("Hello", language="fr-FR")
    fast = await synth.synthesize("Hello", rate=300)
    await synth.synthesize("Hello", language="en-us")  # same voice as en-US
    assert espeak.syntheses == 4
    assert len(entries(cache_dir)) == 4
    assert not np.array_equal(female, male) and not np.array_equal(female, french)
    assert len(fast) < len(female)


@needs_espeak
async def test_rate_changes_duration(cache_dir: Path) -> None:
    synth = SpeechSynthesizer(cache_dir)
    slow = await synth.synthesize(PANGRAM, rate=100)
    quick = await synth.synthesize(PANGRAM, rate=400.0)
    assert len(slow) > 2 * len(quick)


@needs_espeak
async def test_concurrent_requests_synthesize_once(cache_dir: Path, espeak: Espeak) -> None:
    synth = SpeechSynthesizer(cache_dir, str(espeak.path))
    results = await asyncio.gather(*(synth.synthesize(PANGRAM) for _ in range(8)))
    assert espeak.syntheses == 1
    assert all(r is results[0] for r in results)
    # espeak-ng's voice list and version were asked once too.
    lines = espeak.log.read_text().splitlines()
    assert lines.count("--voices") == 1 and lines.count("--version") == 1


@needs_espeak
async def test_text_is_never_read_as_options(
    tmp_path: Path, cache_dir: Path, espeak: Espeak
) -> None:
    elsewhere = tmp_path / "elsewhere.wav"
    synth = SpeechSynthesizer(cache_dir, str(espeak.path))
    pcm = await synth.synthesize(f"--help -s 80 -w {elsewhere}")
    assert active_share(pcm) > 0.5
    assert not elsewhere.exists()
    assert len(entries(cache_dir)) == 1


@needs_espeak
async def test_voices_lists_installed_languages(cache_dir: Path) -> None:
    voices = await SpeechSynthesizer(cache_dir).voices()
    assert {"en-us", "en", "fr", "de"} <= voices


@needs_espeak
async def test_unknown_language(cache_dir: Path, espeak: Espeak) -> None:
    synth = SpeechSynthesizer(cache_dir, str(espeak.path))
    with pytest.raises(SpeechError, match=r"language 'xx-YY'.*e\.g\. "):
        await synth.synthesize("Hello", language="xx-YY")
    assert espeak.syntheses == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voice": "robot"}, "voice 'robot': must be one of female, male"),
        ({"voice": "Female"}, "must be one of female, male"),
        ({"rate": 79}, "rate 79: must be 80 to 450"),
        ({"rate": 451.0}, "must be 80 to 450"),
        ({"rate": math.nan}, "must be 80 to 450"),
    ],
)
async def test_bad_parameters(
    cache_dir: Path, espeak: Espeak, kwargs: dict[str, object], message: str
) -> None:
    synth = SpeechSynthesizer(cache_dir, str(espeak.path))
    with pytest.raises(SpeechError, match=message):
        await synth.synthesize("Hello", **kwargs)  # type: ignore[arg-type]
    # Checked before anything is started.
    assert not espeak.log.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (" \n\t ", "empty"),
        ("a" * (MAX_TEXT_CHARS + 1), "limit is 5000"),
        ("nul\x00byte", "NUL"),
        # Found by fuzzing: a YAML "\ud800" escape; espeak-ng's argv cannot hold it.
        ("lone \ud800 surrogate", "unpaired surrogate U\\+D800"),
    ],
)
async def test_bad_text(cache_dir: Path, espeak: Espeak, text: str, message: str) -> None:
    with pytest.raises(SpeechError, match=message):
        await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize(text)
    assert not espeak.log.exists()


@needs_espeak
async def test_espeak_failure_reports_stderr(tmp_path: Path, cache_dir: Path) -> None:
    failing = Espeak(tmp_path, synthesis_body="echo 'no audio device here' >&2; exit 3")
    with pytest.raises(SpeechError, match=r"failed \(exit 3\): no audio device here"):
        await SpeechSynthesizer(cache_dir, str(failing.path)).synthesize("Hello")
    assert entries(cache_dir) == [] and leftovers(cache_dir) == []


@needs_espeak
async def test_stuck_espeak_is_killed(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    stuck = Espeak(tmp_path, synthesis_body=f"echo $$ > {pid_file}; exec sleep 30")
    monkeypatch.setattr(tts, "SYNTHESIS_TIMEOUT_S", 0.5)
    with pytest.raises(SpeechError, match=r"no result after 0\.5 s"):
        await SpeechSynthesizer(cache_dir, str(stuck.path)).synthesize("Hello")
    pid = int(pid_file.read_text())
    # Killed and reaped: no such process any more, not even a zombie.
    assert not Path(f"/proc/{pid}").exists()


async def test_missing_executable(cache_dir: Path, tmp_path: Path) -> None:
    synth = SpeechSynthesizer(cache_dir, str(tmp_path / "no-such-espeak"))
    with pytest.raises(SpeechError, match="no-such-espeak: not found"):
        await synth.synthesize("Hello")


@needs_espeak
async def test_failed_cache_write_leaves_no_entry(
    cache_dir: Path, espeak: Espeak, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash_midway(pcm: npt.NDArray[np.int16], out: object, rate: int = 8000) -> None:
        out.write(b"RIFF\x00\x10\x00\x00WAVEfmt ")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tts, "_write_wav", crash_midway)
    pcm = await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize(PANGRAM)
    # The caller still gets the speech; the disk holds no entry, whole or partial.
    assert active_share(pcm) > 0.6
    assert entries(cache_dir) == [] and leftovers(cache_dir) == []

    monkeypatch.undo()
    again = await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize(PANGRAM)
    assert espeak.syntheses == 2
    assert np.array_equal(again, pcm)
    assert len(entries(cache_dir)) == 1


@needs_espeak
async def test_entry_appears_only_by_rename(
    cache_dir: Path, espeak: Espeak, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[tuple[Path, Path, bool]] = []
    real_replace = os.replace

    def recording_replace(src: Path, dst: Path) -> None:
        renames.append((Path(src), Path(dst), Path(dst).exists()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize("Atomic")
    [(src, dst, existed)] = renames
    assert dst == entries(cache_dir)[0] and not existed
    assert src.parent == dst.parent and src.name.startswith(".")


@needs_espeak
async def test_damaged_entry_is_synthesised_again(cache_dir: Path, espeak: Espeak) -> None:
    first = await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize("Repair me")
    [entry] = entries(cache_dir)
    entry.write_bytes(b"garbage, not a wav")
    again = await SpeechSynthesizer(cache_dir, str(espeak.path)).synthesize("Repair me")
    assert espeak.syntheses == 2
    assert np.array_equal(again, first)
    assert sf.info(entry).samplerate == SAMPLE_RATE


@needs_espeak
async def test_given_memory_cache_is_used(cache_dir: Path) -> None:
    memory = PcmCache(max_entries=4)
    await SpeechSynthesizer(cache_dir, memory_cache=memory).synthesize("Hello")
    assert len(memory) == 1
