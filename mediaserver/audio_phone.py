"""Recording an audio file over the phone (Callr v2 "Update audio file on the phone").

Theory of operation. ``POST /api/audio-files/{sid}/phone?country=CC`` asks
:meth:`RecordingLine.offer` for a code and a number: the code is 6 digits,
good for :data:`CODE_TTL` seconds, one live code per audio file (asking
again replaces it); the number is one of the config's routes to
:data:`RECORDING_LINE` (``routes: {"+33199000000": audio-recorder}``), the
first in the requested country, else the first sharing its country calling
code (the seed's "closest possible"), else the first. A call to that number
runs the built-in scenario of :mod:`mediaserver.audio_recorder`: it reads
the code (``audio-file@v1 check-code``), records, and on the caller's
"keep" hands the recording to :meth:`RecordingLine.save`, which uses the
code up and gives the audio file the recording as new content (source
``phone-record``), converted as an upload is.

A code entered in time is good for another :data:`CODE_TTL` from then, so
the call may take as long as its recording needs. Codes live in memory: a
restart forgets them (ask for a new one).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from mediaserver.audio_files import AudioFiles
from mediaserver.config import RECORDING_LINE
from mediaserver.numbering import number_facts
from mediaserver.store.audio_files import AudioFile

CODE_TTL = 600.0
"""Seconds a code may be entered after it is given (10 minutes)."""
CODE_DIGITS = 6


class NoRecordingLine(LookupError):
    """No route leads to :data:`RECORDING_LINE`; the message says what to add."""


class CodeRefused(ValueError):
    """A code that is unknown, expired, replaced or used; the message says which."""


@dataclass(frozen=True)
class PhoneCode:
    code: int
    sid: str
    expires: float
    """On the codes' clock (``time.monotonic`` unless given another)."""


class RecordingCodes:
    """The live codes: at most one per audio file, each unique among the live ones."""

    def __init__(self, now: Callable[[], float] = time.monotonic, ttl: float = CODE_TTL) -> None:
        self._now = now
        self.ttl = ttl
        self._by_code: dict[int, PhoneCode] = {}

    def issue(self, sid: str) -> PhoneCode:
        """A new code for ``sid``; the one it had before stops working."""
        self._forget_expired()
        for old in [c for c in self._by_code.values() if c.sid == sid]:
            del self._by_code[old.code]
        low = 10 ** (CODE_DIGITS - 1)  # the seed's code is a number: no leading zero
        while True:
            code = low + secrets.randbelow(9 * low)
            if code not in self._by_code:
                break
        issued = PhoneCode(code, sid, self._now() + self.ttl)
        self._by_code[code] = issued
        return issued

    def check(self, code: str) -> str:
        """The audio file sid ``code`` (as the caller typed it) was issued for; the
        code is then good for another ``ttl``, the time the call needs."""
        issued = self._live(code)
        self._by_code[issued.code] = PhoneCode(issued.code, issued.sid, self._now() + self.ttl)
        return issued.sid

    def use(self, code: str) -> str:
        """Use ``code`` up; its sid."""
        issued = self._live(code)
        del self._by_code[issued.code]
        return issued.sid

    def _live(self, code: str) -> PhoneCode:
        issued = self._by_code.get(int(code)) if code.isdigit() and len(code) < 10 else None
        if issued is None:
            raise CodeRefused(f"code {code!r} is not a live code (wrong, used or replaced)")
        if issued.expires <= self._now():
            del self._by_code[issued.code]
            raise CodeRefused(f"code {code} has expired; ask for a new one")
        return issued

    def _forget_expired(self) -> None:
        now = self._now()
        for gone in [c for c in self._by_code.values() if c.expires <= now]:
            del self._by_code[gone.code]


def recording_lines(routes: Mapping[str, str]) -> list[str]:
    """The numbers (or users) routed to the recording line, in config order; not ``*``."""
    return [key for key, target in routes.items() if target == RECORDING_LINE and key != "*"]


def choose_line(lines: list[str], country: str) -> str | None:
    """The line for a caller in ``country`` (ISO 3166-1 alpha-2): one in that
    country, else one with its calling code (+1 for US and CA), else the first."""
    if not lines:
        return None
    for line in lines:
        if number_facts(line).country == country:
            return line
    calling_code = phonenumbers.country_code_for_region(country)
    if calling_code:
        for line in lines:
            if line.startswith(f"+{calling_code}") and number_facts(line).valid:
                return line
    return lines[0]


@dataclass(frozen=True)
class PhoneOffer:
    code: int
    number: str


class RecordingLine:
    """Codes given through the API and taken by the recording line's calls."""

    def __init__(
        self,
        audio_files: AudioFiles,
        routes: Callable[[], Mapping[str, str]],
        codes: RecordingCodes | None = None,
    ) -> None:
        self.audio_files = audio_files
        self._routes = routes
        self.codes = codes or RecordingCodes()

    def offer(self, record: AudioFile, country: str) -> PhoneOffer:
        """A code for ``record`` and the number to call; NoRecordingLine without one."""
        number = choose_line(recording_lines(self._routes()), country)
        if number is None:
            raise NoRecordingLine(
                f"this server has no recording line: route a number to {RECORDING_LINE} in "
                f'the config\'s routes (e.g. routes: {{"+33199000000": {RECORDING_LINE}}}) '
                "and reload it"
            )
        return PhoneOffer(self.codes.issue(record.id).code, number)

    def file_for_code(self, code: str) -> str:
        """The audio file sid of a live code; CodeRefused otherwise."""
        return self.codes.check(code)

    async def save(self, code: str, recording: Path) -> AudioFile:
        """Use ``code`` up and make ``recording`` its audio file's content
        (``phone-record``, converted in the background). CodeRefused, or the
        AudioFiles errors (AudioFileGone, AudioFileBusy) naming the file."""
        sid = self.codes.check(code)  # before the read: a used code changes nothing
        data = await asyncio.to_thread(recording.read_bytes)
        record = await self.audio_files.replace_content(sid, data, "wav", source="phone-record")
        self.codes.use(code)
        return record
