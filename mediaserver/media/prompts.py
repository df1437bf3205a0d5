"""Prompt audio for actions: speech, sound files and named tones in one place.

This is the server's implementation of
:class:`~mediaserver.actions.callapi.PromptAudio`. Relative file paths are
resolved against the scenarios folder, so a scenario can say
``url: sounds/greeting.wav`` next to its YAML. ``http://`` and ``https://``
URLs are downloaded once into the cache folder
(:class:`~mediaserver.media.downloads.AudioDownloads`) and then decoded like
files; every error names the URL and the reason. ``audio-file:SID`` names
an audio file uploaded through the API (``/api/audio-files``): its
converted audio is played once it is ``ready``
(:class:`~mediaserver.audio_files.AudioFiles`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mediaserver.media.downloads import AudioDownloads, is_url
from mediaserver.media.pcm import AudioError, Pcm
from mediaserver.media.sources import load_file
from mediaserver.media.tones import named_tone
from mediaserver.media.tts import DEFAULT_RATE_WPM, SpeechSynthesizer

AUDIO_FILE = "audio-file:"
"""The media reference naming an uploaded audio file by sid: ``audio-file:k3d9x0qa``."""


def audio_file_sid(location: str) -> str | None:
    """The sid ``audio-file:SID`` names (in lower case); None for any other location."""
    if location[: len(AUDIO_FILE)].lower() != AUDIO_FILE:
        return None
    return location[len(AUDIO_FILE) :].strip().lower()


class AudioFileSource(Protocol):
    """Where ``audio-file:SID`` references lead (the server's audio files)."""

    async def playable(self, sid: str) -> Path:
        """The converted audio of ``sid``; AudioError naming the sid unless it is ready."""
        ...


class Prompts:
    def __init__(
        self,
        synthesizer: SpeechSynthesizer,
        base_dir: Path,
        downloads: AudioDownloads | None = None,
        audio_files: AudioFileSource | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        self.base_dir = base_dir
        self.audio_files = audio_files
        # By default next to the speech cache: <data>/cache/tts and <data>/cache/http.
        self.downloads = downloads or AudioDownloads(synthesizer.cache_dir.parent / "http")

    async def speech(
        self, text: str, *, language: str, voice: str, rate: float | None = None
    ) -> Pcm:
        # Scenarios give a speed factor (1.0 = normal); espeak-ng wants words per minute.
        wpm = None if rate is None else DEFAULT_RATE_WPM * rate
        return await self.synthesizer.synthesize(text, language=language, voice=voice, rate=wpm)

    async def file(self, location: str) -> Pcm:
        sid = audio_file_sid(location)
        if sid is not None:
            if self.audio_files is None:
                raise AudioError(f"{location}: audio files are not available here")
            return await load_file(await self.audio_files.playable(sid))
        if is_url(location):
            path = await self.downloads.fetch(location)
            try:
                return await load_file(path)
            except AudioError as exc:
                # The cached file's name means nothing to the scenario's author: name the URL.
                reason = str(exc).removeprefix(f"{path}: ")
                raise AudioError(f"{location}: {reason}") from None
        path = Path(location.removeprefix("file://"))
        if not path.is_absolute():
            path = self.base_dir / path
        return await load_file(path)

    def tone(self, name: str) -> Pcm:
        try:
            return named_tone(name)
        except ValueError as exc:
            raise AudioError(str(exc)) from None
