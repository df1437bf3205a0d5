"""Prompts: speech, sound files, tones and silences played to the caller.

Theory of operation: ``say@v1`` and ``play@v1`` play one piece of audio;
``gather@v1`` (and later voicemail, conference...) play a *prompt*, a list
of items written ``say: TEXT`` (or ``say: {text, language, voice, rate}``),
``play: URL`` (or ``play: {url}`` / ``play: {tone}``) and ``pause: SECONDS``.
This module parses those items at load time and renders and plays them at
run time, so every action speaks and plays the same way.

Playback goes through ``CallApi.play(audio, stop_keys)``: when one of
``stop_keys`` is pressed playback stops and the key stays buffered in the
call, so the next ``gather@v1`` reads it as its first digit (type-ahead).
A pause is played as silence for the same reason: it can be interrupted
like any other item, and a hang-up during it is noticed at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mediaserver.actions.callapi import SAMPLE_RATE, AudioError, Pcm
from mediaserver.actions.definition import ActionContext, ActionFailed
from mediaserver.actions.expressions import Template
from mediaserver.actions.params import (
    LANGUAGE,
    RATE,
    TONES,
    VOICE,
    Param,
    ParamError,
    ParamType,
    Report,
    check_mapping,
    convert,
    describe,
)
from mediaserver.yamlsource import LocatedDict, LocatedList, Mark

TEXT = Param(
    "text",
    ParamType.STRING,
    "what to say; ${...} is interpolated",
    required=True,
    interpolated=True,
)
URL = Param(
    "url",
    ParamType.STRING,
    "sound file to play (path, http(s) URL, or audio-file:SID for an uploaded audio file); "
    "${...} is interpolated",
    interpolated=True,
)
TONE = Param("tone", ParamType.STRING, "named tone to play", choices=TONES)
PAUSE_SECONDS = Param("pause", ParamType.SECONDS, "seconds of silence", minimum=0, maximum=3600)

SAY_FIELDS = (TEXT, LANGUAGE, VOICE, RATE)
PLAY_FIELDS = (URL, TONE)

_SILENCE_CHUNK = np.zeros(SAMPLE_RATE, dtype=np.int16)
"""One second of silence; long pauses are played as repeats of it, not one huge array."""


@dataclass(frozen=True)
class PromptItem:
    """One ``say:``, ``play:`` or ``pause:`` of a prompt."""

    kind: Literal["say", "play", "pause"]
    mark: Mark
    text: Template | None = None
    language: str | None = None
    voice: str | None = None
    rate: float | None = None
    url: Template | None = None
    tone: str | None = None
    seconds: float = 0.0


# -- Load time ------------------------------------------------------------------------------


def parse_prompt(value: Any, mark: Mark, owner: str, report: Report) -> tuple[PromptItem, ...]:
    """Check a prompt list, reporting every mistake; return the items that were valid."""
    if not isinstance(value, list):
        report.add(mark, f"{owner}: expected {ParamType.PROMPT.value}, got {describe(value)}")
        return ()
    items: list[PromptItem] = []
    for index, entry in enumerate(value):
        entry_mark = value.item_mark(index) if isinstance(value, LocatedList) else mark
        item = _parse_item(entry, entry_mark, f"{owner}[{index + 1}]", report)
        if item is not None:
            items.append(item)
    return tuple(items)


def _parse_item(entry: Any, mark: Mark, owner: str, report: Report) -> PromptItem | None:
    if not isinstance(entry, dict) or len(entry) != 1:
        report.add(mark, f"{owner}: a prompt item is one of say: TEXT, play: URL, pause: SECONDS")
        return None
    kind, value = next(iter(entry.items()))
    value_mark = entry.value_mark(kind) if isinstance(entry, LocatedDict) else mark
    if kind == "pause":
        try:
            return PromptItem("pause", mark, seconds=convert(PAUSE_SECONDS, value))
        except ParamError as exc:
            report.add(value_mark, f"{owner}: {exc}")
            return None
    if kind == "say":
        fields = _fields(SAY_FIELDS, TEXT, value, value_mark, f"{owner}.say", report)
        if fields is None:
            return None
        return PromptItem(
            "say",
            mark,
            text=fields["text"],
            language=fields["language"],
            voice=fields["voice"],
            rate=fields["rate"],
        )
    if kind == "play":
        fields = _fields(PLAY_FIELDS, URL, value, value_mark, f"{owner}.play", report)
        if fields is None:
            return None
        if (fields["url"] is None) == (fields["tone"] is None):
            report.add(value_mark, f"{owner}.play: give exactly one of url or tone")
            return None
        return PromptItem("play", mark, url=fields["url"], tone=fields["tone"])
    report.add(mark, f"{owner}: unknown prompt item {kind!r}; use say:, play: or pause:")
    return None


def _fields(
    params: tuple[Param, ...], short: Param, value: Any, mark: Mark, owner: str, report: Report
) -> dict[str, Any] | None:
    """The object form ``{text: ..., voice: ...}``, or the short form ``TEXT`` for ``short``."""
    before = len(report.problems)
    if isinstance(value, dict):
        fields = check_mapping(params, value, report, owner=owner, mark=mark)
    else:
        try:
            fields = {param.name: param.default for param in params}
            fields[short.name] = convert(short, value)
        except ParamError as exc:
            report.add(mark, f"{owner}: {exc}")
    return fields if len(report.problems) == before else None


# -- Run time -------------------------------------------------------------------------------


async def speech(
    context: ActionContext,
    text: Template | str,
    *,
    language: str | None = None,
    voice: str | None = None,
    rate: float | None = None,
) -> Pcm:
    """Synthesise ``text`` (interpolated) with the scenario defaults filling the gaps."""
    defaults = context.defaults
    spoken = context.sandbox.interpolate(text)
    try:
        return await context.prompts.speech(
            spoken,
            language=language or defaults.language,
            voice=voice or defaults.voice,
            rate=rate if rate is not None else defaults.rate,
        )
    except AudioError as exc:
        raise ActionFailed(f"cannot say {spoken!r}: {exc}") from None


async def sound(context: ActionContext, *, url: Template | None, tone: str | None) -> Pcm:
    """A sound file (``url`` interpolated) or a named tone."""
    try:
        if tone is not None:
            return context.prompts.tone(tone)
        if url is None:
            raise ActionFailed("nothing to play: give url or tone")
        location = context.sandbox.interpolate(url)
        return await context.prompts.file(location)
    except AudioError as exc:
        raise ActionFailed(str(exc)) from None


async def tone_or_sound(context: ActionContext, source: Template | str | None) -> Pcm | None:
    """Audio named by one interpolated string: a tone name (beep, ringback, busy,
    dial) or a sound file or http(s) URL; None for None."""
    if source is None:
        return None
    text = context.sandbox.interpolate(source)
    try:
        return context.prompts.tone(text) if text in TONES else await context.prompts.file(text)
    except AudioError as exc:
        raise ActionFailed(str(exc)) from None


async def play_silence(context: ActionContext, seconds: float, stop_keys: str = "") -> str | None:
    """Play ``seconds`` of silence; return the key that interrupted it, if any."""
    remaining = round(seconds * SAMPLE_RATE)
    while remaining > 0:
        chunk = _SILENCE_CHUNK[: min(remaining, SAMPLE_RATE)]
        key = await context.call.play(chunk, stop_keys=stop_keys)
        if key is not None:
            return key
        remaining -= len(chunk)
    return None


async def play_prompt(
    context: ActionContext, items: Sequence[PromptItem], stop_keys: str
) -> str | None:
    """Play ``items`` in order; stop at the first of ``stop_keys`` and return it."""
    for item in items:
        if item.kind == "pause":
            key = await play_silence(context, item.seconds, stop_keys)
        else:
            audio = await _render(context, item)
            key = await context.call.play(audio, stop_keys=stop_keys)
        if key is not None:
            return key
    return None


async def _render(context: ActionContext, item: PromptItem) -> Pcm:
    if item.kind == "say" and item.text is not None:
        return await speech(
            context, item.text, language=item.language, voice=item.voice, rate=item.rate
        )
    return await sound(context, url=item.url, tone=item.tone)
