"""Callr's voicemail options (``App.Param.Vms``, seeds/000) on ``voicemail@v1``:
the attachment's name and format, and the e-mail that carries a message.

``file_name`` names the attachment with the seed's tags: ``{CALLID}`` (the
call's id), ``{MEDIA_HASH}`` (the recording's id, as ``GET
/api/recordings/{sid}`` knows it) and ``{DATETIME}`` (when the message
was left, ``YYYYMMDD-HHMMSS`` in ``timezone``, UTC by default); the
extension follows ``file_format``: ``wav`` (the recording as it is, 16-bit
mono at 8 kHz, or 16 kHz from a wideband phone), ``mp3`` (encoded by
libsndfile) or ``sln`` (Asterisk's signed linear: the raw 16-bit
little-endian 8 kHz samples, no header; a 16 kHz message is resampled).

The e-mail (:func:`voicemail_email`) says who called whom, when and for how
long, in plain text, with the message attached.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import soundfile as sf
import soxr

from mediaserver.media.pcm import SAMPLE_RATE
from mediaserver.media.sources import RESAMPLE_QUALITY

FILE_FORMATS = ("wav", "mp3", "sln")
FILE_NAME_TAGS = ("CALLID", "MEDIA_HASH", "DATETIME")
DEFAULT_FILE_NAME = "{DATETIME}-{CALLID}"
_TAG = re.compile(r"\{([^{}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")  # kept out of the attachment's name
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")
_MIME = {"wav": ("audio", "wav"), "mp3": ("audio", "mpeg"), "sln": ("application", "octet-stream")}


def check_file_name(template: str) -> None:
    """ValueError naming an unknown tag (the seed's tags only)."""
    for tag in _TAG.findall(template):
        if tag not in FILE_NAME_TAGS:
            known = ", ".join(f"{{{name}}}" for name in FILE_NAME_TAGS)
            raise ValueError(f"unknown tag {{{tag}}}; the tags are {known}")
    if not template.strip():
        raise ValueError("must not be empty")


def check_address(address: str) -> str:
    """``address`` trimmed; ValueError when it is not ``local@domain``."""
    text = address.strip()
    if not _ADDRESS.fullmatch(text):
        raise ValueError(f"{address!r} is not an e-mail address such as alice@example.com")
    return text


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name`` (UTC for None); ValueError when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Paris"
        ) from None


@dataclass(frozen=True)
class VoicemailMessage:
    """A message left, as the e-mail tells it."""

    call_id: str
    recording_id: str
    caller: str
    called: str
    left_at: datetime
    duration: float | None
    path: Path


def attachment_name(template: str, message: VoicemailMessage, tz: ZoneInfo, fmt: str) -> str:
    """The attachment's file name: the template's tags filled in, unsafe characters
    replaced, the format's extension added."""
    values = {
        "CALLID": message.call_id,
        "MEDIA_HASH": message.recording_id,
        "DATETIME": message.left_at.astimezone(tz).strftime("%Y%m%d-%H%M%S"),
    }
    name = _TAG.sub(lambda m: values[m.group(1)], template)
    return f"{_UNSAFE.sub('_', name)[:200]}.{fmt}"


def encode(path: Path, fmt: str) -> bytes:
    """The recording in ``fmt``; blocking (file reading, encoding): run it in a thread."""
    if fmt == "wav":
        return path.read_bytes()
    samples, rate = sf.read(str(path), dtype="int16")
    if fmt == "sln":
        if rate != SAMPLE_RATE:  # .sln is 8 kHz by definition (Asterisk's .sln16 is another)
            samples = soxr.resample(samples, rate, SAMPLE_RATE, quality=RESAMPLE_QUALITY)
        return np.asarray(samples, dtype="<i2").tobytes()
    out = io.BytesIO()
    sf.write(out, samples, rate, format="MP3")
    return out.getvalue()


def voicemail_email(
    message: VoicemailMessage,
    recipients: list[str],
    attachment: bytes,
    name: str,
    fmt: str,
    tz: ZoneInfo,
) -> EmailMessage:
    """The e-mail of one message (no From: the mailer sets the configured sender)."""
    when = message.left_at.astimezone(tz)
    length = "unknown" if message.duration is None else f"{message.duration:.1f} s"
    mail = EmailMessage()
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = f"Voicemail from {message.caller or 'an unknown caller'}"
    mail["Date"] = format_datetime(when)
    mail["Message-ID"] = make_msgid(domain="mediaserver.invalid")
    mail.set_content(
        "You have a new voicemail message.\n\n"
        f"From:      {message.caller}\n"
        f"To:        {message.called}\n"
        f"Left at:   {when.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
        f"Length:    {length}\n"
        f"Call:      {message.call_id}\n"
        f"Recording: {message.recording_id}\n"
    )
    maintype, subtype = _MIME[fmt]
    mail.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=name)
    return mail
