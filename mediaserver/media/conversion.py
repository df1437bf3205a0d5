"""Uploaded audio: which formats are taken, and their conversion to the prompt format.

Theory of operation. An upload names its type (the multipart part's
``Content-Type``, or its file name's extension when the type is missing or
generic): :func:`upload_format` maps it to one of :data:`FORMATS` or
refuses it with :class:`UnsupportedAudio`, naming the type and the types
taken. Refusing here answers the request at once (415); content that
claims a supported type but cannot be decoded is only found out by the
conversion, which then ends in ``error`` with the reason.

:func:`convert` (blocking: run it in a thread) decodes the upload with
libsndfile through :func:`~mediaserver.media.sources.decode_file` to the
format every prompt plays (16-bit mono at 8 kHz) and writes it as a WAV
file, so playing it later decodes nothing but PCM. The length is checked
from the file's header before decoding, so a small file claiming hours of
audio is refused without filling memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from mediaserver.media.pcm import SAMPLE_RATE, AudioError
from mediaserver.media.sources import decode_file

FORMATS: dict[str, str] = {
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "application/ogg": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
}
"""The types taken (the seed's, and their common aliases), each to its format."""

EXTENSIONS: dict[str, str] = {
    ".flac": "flac",
    ".mp3": "mp3",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
    ".wav": "wav",
    ".wave": "wav",
}
"""Formats by file name, for parts sent without a type or as application/octet-stream."""

NO_DECODER = ("audio/mp4", "audio/x-m4a", "audio/m4a", "audio/aac", "video/mp4")
_NO_DECODER_EXTENSIONS = (".mp4", ".m4a", ".aac")
_GENERIC = ("", "application/octet-stream")

SEED_TYPES = "audio/flac, audio/mpeg, audio/ogg, audio/wav"

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""The largest upload taken (20 MiB: about 20 minutes of 128 kbit/s MP3)."""

MAX_SECONDS = 3600.0
"""The longest audio a file may hold: an hour of prompt is 57.6 MB at 8 kHz."""


class UnsupportedAudio(ValueError):
    """An upload's type is not one this server converts; the message names it."""


def upload_format(content_type: str | None, filename: str | None) -> str:
    """The format (``flac``, ``mp3``, ``ogg``, ``wav``) of an upload, from its type or name."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    extension = os.path.splitext(filename or "")[1].lower()
    if media in NO_DECODER or (media in _GENERIC and extension in _NO_DECODER_EXTENSIONS):
        shown = media if media not in _GENERIC else f"a {extension} file"
        raise UnsupportedAudio(
            f"file: {shown} (MP4/AAC) is not supported: this server has no MP4 decoder; "
            f"convert it to one of {SEED_TYPES}"
        )
    if media in FORMATS:
        return FORMATS[media]
    if media in _GENERIC and extension in EXTENSIONS:
        return EXTENSIONS[extension]
    if media in _GENERIC:
        named = f"file name {filename!r}" if filename else "no file name"
        raise UnsupportedAudio(
            f"file: no audio type given ({named}): send the part with a Content-Type "
            f"among {SEED_TYPES}, or name the file .flac, .mp3, .ogg or .wav"
        )
    raise UnsupportedAudio(f"file: type {media!r} is not supported; send one of {SEED_TYPES}")


def convert(upload: Path, target: Path, max_seconds: float = MAX_SECONDS) -> int:
    """Convert ``upload`` to 8 kHz mono 16-bit WAV at ``target``; its duration in ms.

    Blocking. Raises :class:`AudioError` with a reason that does not name the
    server's paths (it is shown to API users). ``target`` appears whole or not
    at all: the WAV is written beside it and renamed.
    """
    try:
        # A file object, not the path: libsndfile then says what is wrong with the content.
        with open(upload, "rb") as raw, sf.SoundFile(raw) as audio:
            rate, frames = int(audio.samplerate), int(audio.frames)
        claimed = frames / rate if rate > 0 else 0.0
        if claimed > max_seconds:
            raise AudioError(
                f"the audio lasts {claimed:.0f} s, over the {max_seconds:.0f} s an audio file "
                "may hold; cut it shorter"
            )
        pcm = decode_file(upload)
    except AudioError as exc:
        raise AudioError(_without_path(str(exc), upload)) from None
    except (sf.LibsndfileError, sf.SoundFileError, RuntimeError, ValueError, OSError) as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        raise AudioError(
            f"not audio this server can decode ({_without_path(detail, upload)})"
        ) from None
    if len(pcm) == 0:
        raise AudioError("the file holds no audio (0 samples)")
    duration_s = len(pcm) / SAMPLE_RATE
    if duration_s > max_seconds:
        raise AudioError(
            f"the audio lasts {duration_s:.0f} s, over the {max_seconds:.0f} s an audio file "
            "may hold; cut it shorter"
        )
    partial = target.with_name(target.name + ".part")
    sf.write(partial, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(partial, target)
    return round(duration_s * 1000)


def _without_path(message: str, path: Path) -> str:
    return message.replace(f"{path}: ", "").replace(str(path), "the file")
