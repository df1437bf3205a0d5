"""Audio from http(s) URLs: downloaded once, cached on disk, revalidated, refused clearly."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from mediaserver.media.downloads import AudioDownloads
from mediaserver.media.pcm import AudioError
from mediaserver.media.prompts import Prompts
from mediaserver.media.tts import SpeechSynthesizer

URL = "http://prompts.test/hello.wav"


def wav_bytes(hz: float = 440.0, seconds: float = 0.5, rate: int = 16000) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * hz * t), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class Site:
    """A fake web server: path -> (status, headers, body), and the requests it saw."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[httpx.Request] = []
        self.down = False
        self.delay = 0.0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers, body = self.pages.get(request.url.path, (404, {}, b"no"))
        etag = headers.get("ETag")
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return httpx.Response(304, headers=headers)
        return httpx.Response(status, headers=headers, content=body)


@pytest.fixture
def site() -> Site:
    made = Site()
    made.pages["/hello.wav"] = (200, {"Content-Type": "audio/wav", "ETag": '"v1"'}, wav_bytes())
    return made


def downloads(tmp_path: Path, site: Site, **kwargs: float) -> AudioDownloads:
    return AudioDownloads(tmp_path / "http", transport=httpx.MockTransport(site.handle), **kwargs)  # type: ignore[arg-type]


async def test_a_url_is_downloaded_once_and_kept(tmp_path: Path, site: Site) -> None:
    cache = downloads(tmp_path, site)
    first = await cache.fetch(URL)
    assert await cache.fetch(URL) == first
    assert len(site.requests) == 1
    assert first.read_bytes() == site.pages["/hello.wav"][2]
    # Another process (a restart) finds it on disk.
    assert await downloads(tmp_path, site).fetch(URL) == first
    assert len(site.requests) == 1


async def test_an_old_copy_is_revalidated_with_its_etag(tmp_path: Path, site: Site) -> None:
    cache = downloads(tmp_path, site, fresh_for=0)
    path = await cache.fetch(URL)
    await cache.fetch(URL)
    assert site.requests[-1].headers["If-None-Match"] == '"v1"'
    assert len(site.requests) == 2
    site.pages["/hello.wav"] = (200, {"ETag": '"v2"'}, wav_bytes(880))
    assert await cache.fetch(URL) == path
    assert path.read_bytes() == wav_bytes(880)


async def test_concurrent_fetches_share_one_download(tmp_path: Path, site: Site) -> None:
    site.delay = 0.05
    cache = downloads(tmp_path, site)
    paths = await asyncio.gather(*(cache.fetch(URL) for _ in range(5)))
    assert len(set(paths)) == 1 and len(site.requests) == 1


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ((404, {}, b"missing"), f"{URL}: HTTP 404 Not Found"),
        ((500, {}, b"oops"), f"{URL}: HTTP 500 Internal Server Error"),
        ((200, {"Content-Type": "text/html; charset=utf-8"}, b"<html>"), "sent text/html, not"),
        ((200, {}, b"RIFF garbage that is no audio"), "not audio libsndfile can read"),
        ((200, {"Content-Length": "999999999"}, b""), "larger than"),
    ],
)
async def test_what_is_not_audio_fails_naming_the_url(
    tmp_path: Path, site: Site, page: tuple[int, dict[str, str], bytes], message: str
) -> None:
    site.pages["/hello.wav"] = page
    cache = downloads(tmp_path, site)
    with pytest.raises(AudioError, match=re.escape(message)) as caught:
        await cache.fetch(URL)
    assert str(caught.value).startswith(URL)
    assert not list((tmp_path / "http").glob("*"))  # nothing refused enters the cache


async def test_a_body_over_the_limit_is_cut_off(tmp_path: Path, site: Site) -> None:
    cache = AudioDownloads(
        tmp_path / "http", transport=httpx.MockTransport(site.handle), max_bytes=1000
    )
    with pytest.raises(AudioError, match="larger than 1000 bytes"):
        await cache.fetch(URL)
    assert not list((tmp_path / "http").glob("*"))


async def test_unreachable_fails_unless_a_copy_is_kept(tmp_path: Path, site: Site) -> None:
    cache = downloads(tmp_path, site, fresh_for=0)
    site.down = True
    with pytest.raises(AudioError, match=r"cannot download \(connection refused\)"):
        await cache.fetch(URL)
    site.down = False
    path = await cache.fetch(URL)
    site.down = True
    assert await cache.fetch(URL) == path  # the old copy plays when the server is down


async def test_a_slow_server_times_out(tmp_path: Path, site: Site) -> None:
    site.delay = 1.0
    cache = downloads(tmp_path, site, timeout=0.05)
    with pytest.raises(AudioError, match=r"cannot download \(timed out\)"):
        await cache.fetch(URL)


async def test_prompts_play_urls_and_name_them_in_errors(tmp_path: Path, site: Site) -> None:
    prompts = Prompts(SpeechSynthesizer(tmp_path / "tts"), tmp_path, downloads(tmp_path, site))
    pcm = await prompts.file(URL)
    assert len(pcm) == 4000  # 0.5 s, resampled to 8 kHz
    with pytest.raises(AudioError, match=r"^http://prompts\.test/gone\.wav: HTTP 404"):
        await prompts.file("http://prompts.test/gone.wav")
    default = Prompts(SpeechSynthesizer(tmp_path / "cache" / "tts"), tmp_path)
    assert default.downloads.cache_dir == tmp_path / "cache" / "http"
