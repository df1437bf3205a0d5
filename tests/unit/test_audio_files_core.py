"""Audio files: the types taken, the conversion, the index, and playing by sid
(a real store in a temporary folder; the webhooks are left out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mediaserver.audio_files import AudioFileBusy, AudioFileGone, AudioFiles, audio_file_view
from mediaserver.media.conversion import UnsupportedAudio, convert, upload_format
from mediaserver.media.pcm import AudioError
from mediaserver.media.prompts import Prompts, audio_file_sid
from mediaserver.media.tts import SpeechSynthesizer
from mediaserver.store import Store
from mediaserver.store.audio_files import AudioFileFilter


def tone(path: Path, seconds: float = 1.0, rate: int = 16000, format: str | None = None) -> Path:
    t = np.arange(round(seconds * rate)) / rate
    sf.write(path, 0.4 * np.sin(2 * np.pi * 700 * t), rate, format=format)
    return path


# -- the types taken --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "filename", "format"),
    [
        ("audio/mpeg", "a.bin", "mp3"),
        ("audio/wav; charset=binary", None, "wav"),
        ("AUDIO/X-WAV", None, "wav"),
        ("audio/flac", None, "flac"),
        ("audio/ogg", None, "ogg"),
        ("application/octet-stream", "Greeting.MP3", "mp3"),
        (None, "g.opus", "ogg"),
    ],
)
def test_upload_format_by_type_then_by_name(
    content_type: str | None, filename: str | None, format: str
) -> None:
    assert upload_format(content_type, filename) == format


@pytest.mark.parametrize(
    ("content_type", "filename", "named"),
    [
        ("audio/mp4", "a.m4a", "audio/mp4"),
        ("application/octet-stream", "a.m4a", ".m4a"),
        ("text/plain", "a.mp3", "'text/plain'"),
        ("application/octet-stream", "notes", "'notes'"),
        (None, None, "no file name"),
    ],
)
def test_upload_format_refusals_name_the_type(
    content_type: str | None, filename: str | None, named: str
) -> None:
    with pytest.raises(UnsupportedAudio) as refused:
        upload_format(content_type, filename)
    message = str(refused.value)
    assert message.startswith("file: ") and named in message
    assert "audio/mpeg" in message  # says what is taken


# -- the conversion ---------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["MP3", "OGG", "FLAC", "WAV"])
def test_convert_writes_8k_mono_wav(tmp_path: Path, format: str) -> None:
    source = tone(tmp_path / f"in.{format.lower()}", 1.5, 44100, format)
    target = tmp_path / "out.wav"
    assert abs(convert(source, target) - 1500) <= 60
    info = sf.info(target)
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert not list(tmp_path.glob("*.part"))


def test_convert_refusals_give_the_reason_not_the_path(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    corrupt = tmp_path / "corrupt.upload"
    corrupt.write_bytes(b"ID3" + b"not audio" * 100)
    with pytest.raises(AudioError) as failed:
        convert(corrupt, target)
    assert "decode" in str(failed.value) and str(tmp_path) not in str(failed.value)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 8000)
    with pytest.raises(AudioError, match="no audio"):
        convert(empty, target)
    with pytest.raises(AudioError, match=r"lasts 2 s, over the 1 s"):
        convert(tone(tmp_path / "long.wav", 2.0), target, max_seconds=1.0)
    assert not target.exists()


# -- the index and the service ----------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "ms.db")
    try:
        yield opened
    finally:
        await opened.close()


async def test_search_filters_sorts_and_pages(store: Store) -> None:
    index = store.audio_files
    for name in ("Welcome", "welcome back", "100% off", "Hold music"):
        await index.create(name, status="pending-content")
    found = await index.search(AudioFileFilter(name="WELCOME"), sort="name", order="asc")
    assert [f.name for f in found.hits] == ["Welcome", "welcome back"]
    # % and _ are letters in a name filter, not wildcards.
    assert [f.name for f in (await index.search(AudioFileFilter(name="0%"))).hits] == ["100% off"]
    assert (await index.search(AudioFileFilter(name="_"))).total == 0
    page = await index.search(sort="name", order="desc", limit=2, offset=1)
    assert (page.total, [f.name for f in page.hits]) == (4, ["Welcome", "Hold music"])
    assert (await index.search(AudioFileFilter(status="ready"))).total == 0
    assert (await index.search(AudioFileFilter(source="file-upload"))).total == 4


async def test_status_changes_only_from_the_states_given(store: Store) -> None:
    index = store.audio_files
    created = await index.create("a", status="pending-conversion", format="mp3")
    assert await index.set_status(created.id, "ready", only_from=("processing",)) is None
    processing = await index.set_status(created.id, "processing")
    assert processing is not None and processing.updated_at >= created.updated_at
    ready = await index.set_status(created.id, "ready", duration_ms=1500, only_from=("processing",))
    assert ready is not None and (ready.status, ready.duration_ms) == ("ready", 1500)
    assert audio_file_view(ready)["duration"] == 1.5 and "reason" not in audio_file_view(ready)
    assert [f.id for f in await index.in_status("ready")] == [created.id]
    assert await index.delete(created.id) and not await index.delete(created.id)


async def test_upload_converts_and_plays_by_sid(store: Store, tmp_path: Path) -> None:
    files = AudioFiles(lambda: store, tmp_path / "audio-files")
    prompts = Prompts(SpeechSynthesizer(tmp_path / "tts"), tmp_path, audio_files=files)
    data = tone(tmp_path / "t.mp3", 1.0, 44100, "MP3").read_bytes()
    record = await files.upload("Tone", data, "mp3")
    assert record.status == "pending-conversion"
    await files.idle()
    ready = await store.audio_files.get(record.id)
    assert ready is not None and ready.status == "ready", ready
    pcm = await prompts.file(f"audio-file:{record.id.upper()}")
    assert abs(len(pcm) - 8000) <= 400
    assert not files.upload_path(record.id).exists()
    await files.delete(record.id)
    assert not files.content_path(record.id).exists()


async def test_new_content_waits_for_the_conversion_under_way(store: Store, tmp_path: Path) -> None:
    files = AudioFiles(lambda: store, tmp_path / "audio-files")
    data = tone(tmp_path / "t.wav", format="WAV").read_bytes()
    record = await files.upload("Tone", data, "wav")
    # The conversion may already have started (processing) when the new content comes.
    with pytest.raises(AudioFileBusy, match=r"is (pending-conversion|processing): wait"):
        await files.replace_content(record.id, data, "wav")
    await files.idle()
    again = await files.replace_content(record.id, data, "wav")
    assert again.status == "pending-conversion"
    await files.idle()
    with pytest.raises(AudioFileGone):
        await files.replace_content("zzzzzzzz", data, "wav")


async def test_playing_what_is_not_ready_names_the_sid(store: Store, tmp_path: Path) -> None:
    files = AudioFiles(lambda: store, tmp_path / "audio-files")
    prompts = Prompts(SpeechSynthesizer(tmp_path / "tts"), tmp_path, audio_files=files)
    empty = await files.create_empty("Later")
    with pytest.raises(AudioError, match=rf"audio-file:{empty.id}: .*'Later' is pending-content"):
        await prompts.file(f"audio-file:{empty.id}")
    with pytest.raises(AudioError, match="audio-file:zzzzzzzz: no such audio file"):
        await prompts.file("audio-file:zzzzzzzz")
    with pytest.raises(AudioError, match="8 characters"):
        await prompts.file("audio-file:../etc")
    broken = await files.upload("Broken", b"RIFF\0\0\0\0WAVEjunk", "wav")
    await files.idle()
    with pytest.raises(AudioError, match=r"is error \(not audio this server can decode"):
        await prompts.file(f"audio-file:{broken.id}")
    without = Prompts(SpeechSynthesizer(tmp_path / "tts"), tmp_path)
    with pytest.raises(AudioError, match="not available"):
        await without.file(f"audio-file:{empty.id}")


async def test_resume_converts_again_or_marks_lost_uploads(store: Store, tmp_path: Path) -> None:
    files = AudioFiles(lambda: store, tmp_path / "audio-files")
    kept = await store.audio_files.create("kept", status="processing", format="wav")
    lost = await store.audio_files.create("lost", status="pending-conversion", format="wav")
    files.folder.mkdir()
    tone(files.upload_path(kept.id), format="WAV")
    await files.resume()
    await files.idle()
    after_kept = await store.audio_files.get(kept.id)
    after_lost = await store.audio_files.get(lost.id)
    assert after_kept is not None and after_kept.status == "ready"
    assert after_lost is not None and after_lost.status == "error"
    assert "upload it again" in after_lost.reason


def test_audio_file_references() -> None:
    assert audio_file_sid("audio-file:K3D9X0QA") == "k3d9x0qa"
    assert audio_file_sid("Audio-File: k3d9x0qa ") == "k3d9x0qa"
    assert audio_file_sid("sounds/audio-file.wav") is None
    assert audio_file_sid("https://example.com/a.mp3") is None
