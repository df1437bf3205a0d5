"""Text to speech with espeak-ng, cached on disk and in memory.

Theory of operation: ``say@v1`` asks for text in a language with a voice
(``female``/``male``) and a rate. :class:`SpeechSynthesizer` maps the
language to an espeak-ng voice name (``en-US`` -> ``en-us``; ``de-AT``
falls back to ``de`` when espeak-ng has no ``de-at``), checked against the
names ``espeak-ng --voices`` lists, which is asked once along with
``espeak-ng --version``. The gender becomes an espeak-ng variant (``+f3``,
``+m3``) and the rate its ``-s`` words per minute.

Synthesis runs espeak-ng as a child process (never through a shell; the
text is an argument after ``--``) with ``asyncio.create_subprocess_exec``,
so the event loop only waits on a pipe. espeak-ng writes a 22050 Hz WAV; it
is resampled to 8 kHz in the default executor and stored in ``cache_dir``
as ``<sha256>.wav``, the hash covering the text, voice, variant, rate and
espeak-ng's version, so an upgraded espeak-ng never serves its predecessor's
speech. The entry is written to a temporary file, synced and renamed
over the final name, so a crash leaves either a whole entry or none (at
worst a hidden ``.*.partial`` file, never read as an entry); a damaged entry
found on disk is synthesised again, and an entry that cannot be written is
logged while the speech is still returned. Decoded entries are also
kept in a small in-memory LRU, and concurrent requests for the same speech
share one synthesis.

When the server offers a wideband codec (``wide_audio.COMPANIONS.enabled``),
espeak-ng's output is also resampled to 16 kHz and stored beside the 8 kHz
entry (``<sha256>.16k.wav``), and that version is kept for G.722 and Opus
legs (:mod:`mediaserver.media.wide_audio`): resampled once per text and
rate, never per call. An 8 kHz entry without its 16 kHz one (made before
wideband was turned on) is synthesised again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr
import structlog

from mediaserver.media.pcm import SAMPLE_RATE, WIDE_RATE, AudioError, Pcm
from mediaserver.media.sources import RESAMPLE_QUALITY, PcmCache, to_pcm
from mediaserver.media.wide_audio import COMPANIONS

log = structlog.get_logger(__name__)

MAX_TEXT_CHARS = 5000
"""Longest text accepted in one request (several minutes of speech)."""

DEFAULT_RATE_WPM = 175
"""espeak-ng's own default speed, in words per minute."""

MIN_RATE_WPM = 80
MAX_RATE_WPM = 450
"""espeak-ng's documented ``-s`` range."""

VOICE_VARIANTS = {"female": "+f3", "male": "+m3"}
"""``say@v1`` voice -> espeak-ng variant appended to the voice name."""

SYNTHESIS_TIMEOUT_S = 60.0
"""espeak-ng is many times faster than real time; a run this long is stuck."""

QUERY_TIMEOUT_S = 10.0
"""Limit for ``--voices`` and ``--version``."""


_OTHER_LANGUAGE = re.compile(r"\(([^()\s]+)\s+\d+\)")
"""An "Other Languages" item, ``(code priority)``; voice names like
``English_(America)`` have parentheses too, but no priority."""


class SpeechError(AudioError):
    """Speech cannot be produced; the message says which parameter or why."""


def parse_voices(listing: str) -> frozenset[str]:
    """The voice names ``espeak-ng --voices`` accepts, lower-case: each line's
    language column and the language codes in its "Other Languages" column
    (``(en 2)`` on the ``en-gb`` line is why ``-v en`` works)."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 2:
            continue
        names.add(fields[1].lower())
        names.update(code.lower() for code in _OTHER_LANGUAGE.findall(line))
    return frozenset(names)


def resolve_voice(language: str, available: Collection[str]) -> str:
    """The espeak-ng voice for a language tag such as ``en-US``, ``fr-FR`` or
    ``de``: the tag itself in lower case, else its base language; a
    :class:`SpeechError` listing some available names when neither exists."""
    tag = language.strip().lower().replace("_", "-")
    base = tag.split("-", 1)[0]
    for candidate in (tag, base):
        if candidate and candidate in available:
            return candidate
    examples = ", ".join(sorted(available)[:12])
    raise SpeechError(
        f"language {language!r}: espeak-ng has no voice for it or for {base!r}; "
        f"{len(available)} are installed, e.g. {examples}"
    )


class SpeechSynthesizer:
    """Speech from espeak-ng as ``Pcm``, cached under ``cache_dir``."""

    def __init__(
        self,
        cache_dir: Path,
        executable: str = "espeak-ng",
        *,
        memory_cache: PcmCache | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.executable = executable
        # Not `or`: an empty PcmCache is falsy, having a length of 0.
        self._memory = (
            memory_cache
            if memory_cache is not None
            else PcmCache(max_entries=32, max_bytes=16 * 1024 * 1024)
        )
        self._about: tuple[frozenset[str], str] | None = None
        self._about_task: asyncio.Task[tuple[frozenset[str], str]] | None = None

    async def synthesize(
        self,
        text: str,
        *,
        language: str = "en-US",
        voice: str = "female",
        rate: float | None = None,
    ) -> Pcm:
        """``text`` spoken in ``language`` by a ``female`` or ``male`` voice at
        ``rate`` words per minute (80..450, espeak-ng's 175 by default). The
        result is read-only and may be shared. Raises :class:`SpeechError`."""
        spoken = _checked_text(text)
        variant = _checked_variant(voice)
        wpm = _checked_rate(rate)
        voices, version = await self._espeak_about()
        espeak_voice = resolve_voice(language, voices)
        key = hashlib.sha256(
            json.dumps([spoken, espeak_voice, variant, wpm, version]).encode()
        ).hexdigest()

        async def load() -> Pcm:
            return await self._load_or_synthesize(key, spoken, espeak_voice + variant, wpm)

        return await self._memory.get_or_load(key, load)

    def cache_path(self, key: str, rate: int = SAMPLE_RATE) -> Path:
        """Where the entry with hash ``key`` lives (its 16 kHz version: ``rate``)."""
        return self.cache_dir / (f"{key}.wav" if rate == SAMPLE_RATE else f"{key}.16k.wav")

    async def voices(self) -> frozenset[str]:
        """The voice names the installed espeak-ng accepts."""
        return (await self._espeak_about())[0]

    async def _espeak_about(self) -> tuple[frozenset[str], str]:
        if self._about is not None:
            return self._about
        loop = asyncio.get_running_loop()
        task = self._about_task
        # A finished task here failed (or its waiter was cancelled): ask again.
        if task is None or task.get_loop() is not loop or task.done():
            task = self._about_task = loop.create_task(self._query_espeak())
            task.add_done_callback(_retrieve_outcome)
        self._about = await asyncio.shield(task)
        return self._about

    async def _query_espeak(self) -> tuple[frozenset[str], str]:
        listing = await self._run(["--voices"], QUERY_TIMEOUT_S)
        version = await self._run(["--version"], QUERY_TIMEOUT_S)
        voices = parse_voices(listing.decode(errors="replace"))
        if not voices:
            raise SpeechError(f"{self.executable} --voices listed no voices")
        return voices, version.decode(errors="replace").strip()

    async def _load_or_synthesize(self, key: str, text: str, voice: str, wpm: int) -> Pcm:
        loop = asyncio.get_running_loop()
        final = self.cache_path(key)
        wide_final = self.cache_path(key, WIDE_RATE) if COMPANIONS.enabled else None
        cached = await loop.run_in_executor(None, _read_entry, final)
        if cached is not None and wide_final is None:
            return cached
        if cached is not None and wide_final is not None:
            wide = await loop.run_in_executor(None, _read_entry, wide_final, WIDE_RATE)
            if wide is not None:
                COMPANIONS.attach(cached, wide)
                return cached
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
        except OSError as exc:
            raise SpeechError(f"speech cache {self.cache_dir}: cannot be created ({exc})") from None
        raw = self.cache_dir / f".{key}.{secrets.token_hex(4)}.espeak.wav"
        try:
            args = ["-v", voice, "-s", str(wpm), "-w", str(raw), "--", text]
            await self._run(args, SYNTHESIS_TIMEOUT_S)
            pcm, wide = await loop.run_in_executor(None, _convert_and_store, raw, final, wide_final)
        finally:
            raw.unlink(missing_ok=True)
        if wide is not None:
            COMPANIONS.attach(pcm, wide)
        log.debug("speech synthesised", voice=voice, rate=wpm, chars=len(text), entry=final.name)
        return pcm

    async def _run(self, args: list[str], timeout: float) -> bytes:
        """Run espeak-ng with ``args``; its stdout, or SpeechError with its stderr."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.executable,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise SpeechError(
                f"{self.executable}: not found; install espeak-ng or configure its path"
            ) from None
        except PermissionError:
            raise SpeechError(f"{self.executable}: not executable") from None
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except BaseException as exc:
            # Cancelled or stuck: never leave an orphan espeak-ng behind.
            if process.returncode is None:
                process.kill()
                await process.wait()
            if isinstance(exc, TimeoutError):
                raise SpeechError(f"{self.executable}: no result after {timeout:g} s") from None
            raise
        if process.returncode != 0:
            detail = (stderr or stdout).decode(errors="replace").strip() or "no message"
            raise SpeechError(f"{self.executable} failed (exit {process.returncode}): {detail}")
        return stdout


def _retrieve_outcome(task: asyncio.Task[tuple[frozenset[str], str]]) -> None:
    # The waiters may all have been cancelled; the next request asks again anyway.
    if not task.cancelled():
        task.exception()


def _checked_text(text: str) -> str:
    spoken = text.strip()
    if not spoken:
        raise SpeechError("text to say is empty")
    if len(spoken) > MAX_TEXT_CHARS:
        raise SpeechError(
            f"text to say is {len(spoken)} characters; the limit is {MAX_TEXT_CHARS}, "
            "split it into several say actions"
        )
    if "\x00" in spoken:
        raise SpeechError("text to say contains a NUL character")
    try:
        spoken.encode("utf-8")  # espeak-ng takes the text as a UTF-8 argument
    except UnicodeEncodeError as exc:
        code = ord(spoken[exc.start])
        raise SpeechError(
            f"text to say contains an unpaired surrogate U+{code:04X}; write the whole character"
        ) from None
    return spoken


def _checked_variant(voice: str) -> str:
    variant = VOICE_VARIANTS.get(voice)
    if variant is None:
        allowed = ", ".join(VOICE_VARIANTS)
        raise SpeechError(f"voice {voice!r}: must be one of {allowed}")
    return variant


def _checked_rate(rate: float | None) -> int:
    if rate is None:
        return DEFAULT_RATE_WPM
    if not (isinstance(rate, int | float) and math.isfinite(rate)) or not (
        MIN_RATE_WPM <= rate <= MAX_RATE_WPM
    ):
        raise SpeechError(
            f"rate {rate!r}: must be {MIN_RATE_WPM} to {MAX_RATE_WPM} words per minute"
        )
    return round(rate)


def _read_entry(path: Path, rate: int = SAMPLE_RATE) -> Pcm | None:
    """A cache entry, or None when it is missing or damaged (then it is redone)."""
    try:
        with open(path, "rb") as raw, sf.SoundFile(raw) as audio:
            if audio.samplerate != rate or audio.channels != 1:
                raise ValueError(f"{audio.channels} channel(s) at {audio.samplerate} Hz")
            pcm: Pcm = audio.read(dtype="int16")
            return pcm
    except FileNotFoundError:
        return None
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("speech cache entry damaged, redoing it", entry=str(path), error=str(exc))
        return None


def _convert_and_store(raw: Path, final: Path, wide_final: Path | None) -> tuple[Pcm, Pcm | None]:
    """espeak-ng's WAV to 8 kHz ``Pcm``, stored atomically at ``final``; with
    ``wide_final``, at 16 kHz too, stored there."""
    try:
        samples, rate = sf.read(raw, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise SpeechError(f"espeak-ng wrote no readable audio ({exc})") from None
    mono = np.ascontiguousarray(samples.mean(axis=1, dtype=np.float32))
    pcm = _stored(mono, rate, SAMPLE_RATE, final)
    if wide_final is None:
        return pcm, None
    return pcm, _stored(mono, rate, WIDE_RATE, wide_final)


def _stored(mono: npt.NDArray[np.float32], rate: int, target: int, final: Path) -> Pcm:
    """``mono`` at ``target`` Hz, stored atomically at ``final``."""
    if rate != target and len(mono):
        mono = soxr.resample(mono, rate, target, quality=RESAMPLE_QUALITY)
    pcm = to_pcm(mono)
    try:
        _store_atomically(pcm, final, target)
    except (OSError, RuntimeError) as exc:
        # The caller can still hear the speech; only the next request pays again.
        log.warning("speech cache entry not written", entry=str(final), error=str(exc))
    return pcm


def _store_atomically(pcm: Pcm, final: Path, rate: int = SAMPLE_RATE) -> None:
    # Write aside, sync, then rename: rename is atomic (POSIX), so readers and
    # crashes see the old state or the whole new entry, never a partial one.
    partial = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.partial")
    try:
        with open(partial, "wb") as out:
            _write_wav(pcm, out, rate)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)


def _write_wav(pcm: Pcm, out: BinaryIO, rate: int = SAMPLE_RATE) -> None:
    sf.write(out, pcm, rate, format="WAV", subtype="PCM_16")
