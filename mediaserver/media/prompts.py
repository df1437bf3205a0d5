"""Prompt audio for actions: speech, sound files and named tones in one place.

This is the server's implementation of
:class:`~mediaserver.actions.callapi.PromptAudio`. Relative file paths are
resolved against the scenarios folder, so a scenario can say
``url: sounds/greeting.wav`` next to its YAML.
"""

from __future__ import annotations

from pathlib import Path

from mediaserver.media.pcm import AudioError, Pcm
from mediaserver.media.sources import load_file
from mediaserver.media.tones import named_tone
from mediaserver.media.tts import DEFAULT_RATE_WPM, SpeechSynthesizer


class Prompts:
    def __init__(self, synthesizer: SpeechSynthesizer, base_dir: Path) -> None:
        self.synthesizer = synthesizer
        self.base_dir = base_dir

    async def speech(
        self, text: str, *, language: str, voice: str, rate: float | None = None
    ) -> Pcm:
        # Scenarios give a speed factor (1.0 = normal); espeak-ng wants words per minute.
        wpm = None if rate is None else DEFAULT_RATE_WPM * rate
        return await self.synthesizer.synthesize(text, language=language, voice=voice, rate=wpm)

    async def file(self, location: str) -> Pcm:
        if location.startswith(("http://", "https://")):
            raise AudioError(f"{location}: playing audio from URLs is not available yet")
        path = Path(location.removeprefix("file://"))
        if not path.is_absolute():
            path = self.base_dir / path
        return await load_file(path)

    def tone(self, name: str) -> Pcm:
        try:
            return named_tone(name)
        except ValueError as exc:
            raise AudioError(str(exc)) from None
