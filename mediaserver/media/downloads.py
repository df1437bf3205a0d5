"""Sound files from http(s) URLs, downloaded once and kept on disk.

Theory of operation: ``play@v1`` (and prompts, and hold music) may name an
``http://`` or ``https://`` URL. :meth:`AudioDownloads.fetch` returns a local
file holding that URL's body, which is then decoded like any other file
(:func:`~mediaserver.media.sources.load_file`, whose memory cache keeps the
decoded audio).

* Cache: one file per URL under the cache folder (``data/cache/http``), named
  by the SHA-256 of the URL, with a small JSON sidecar holding the URL, when
  it was fetched and the validators the server gave (``ETag``,
  ``Last-Modified``). Files survive restarts.
* Freshness: a copy younger than :data:`FRESH_SECONDS` is used without any
  request. An older one is revalidated with a conditional GET
  (``If-None-Match`` / ``If-Modified-Since``): 304 keeps it, 200 replaces it.
  If the server cannot be reached then, the old copy is used (and logged):
  a prompt server being down should not silence every call.
* Limits: :data:`TIMEOUT_SECONDS` for the whole request, at most
  :data:`MAX_BYTES` of body (checked on ``Content-Length`` and while
  streaming), up to five redirects.
* Errors: an unreachable host, an HTTP error status, a body that is not
  audio (a ``text/*`` or JSON content type, or a file libsndfile cannot
  read) raise :class:`~mediaserver.media.pcm.AudioError` whose message starts
  with the URL and says why, e.g. ``http://x/a.wav: HTTP 404 Not Found``.
  A refused body never enters the cache.

Writes are atomic (a temporary file renamed into place), and concurrent
fetches of one URL share one download.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import soundfile as sf

from mediaserver.log import get_logger
from mediaserver.media.pcm import AudioError

log = get_logger("media")

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 50 * 1024 * 1024
"""About 50 minutes of 16-bit 8 kHz WAV, or hours of MP3."""
FRESH_SECONDS = 300.0
MAX_REDIRECTS = 5
NOT_AUDIO_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


class AudioDownloads:
    """The on-disk cache of audio fetched over HTTP (module docstring)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout: float = TIMEOUT_SECONDS,
        max_bytes: int = MAX_BYTES,
        fresh_for: float = FRESH_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.fresh_for = fresh_for
        self.transport = transport  # tests give a mock transport
        self.requests = 0
        self._pending: dict[str, asyncio.Task[Path]] = {}

    def path_for(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()[:40]
        return self.cache_dir / f"{digest}.audio"

    async def fetch(self, url: str) -> Path:
        """A local file with ``url``'s audio; :class:`AudioError` naming the URL."""
        if not is_url(url):
            raise AudioError(f"{url}: not an http(s) URL")
        task = self._pending.get(url)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(url))
            self._pending[url] = task
            task.add_done_callback(lambda _: self._pending.pop(url, None))
        return await asyncio.shield(task)

    async def _fetch(self, url: str) -> Path:
        path = self.path_for(url)
        meta = _read_meta(path)
        have = meta is not None and path.exists()
        if have and meta is not None and time.time() - meta.get("fetched_at", 0) < self.fresh_for:
            return path
        headers = {}
        if have and meta is not None:
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = meta["last_modified"]
        try:
            return await self._download(url, path, headers, meta if have else None)
        except _Unreachable as exc:
            if have:
                log.warning("audio URL unreachable; playing the cached copy", url=url, why=str(exc))
                return path
            raise AudioError(f"{url}: cannot download ({exc})") from None

    async def _download(
        self, url: str, path: Path, headers: dict[str, str], meta: dict[str, Any] | None
    ) -> Path:
        self.requests += 1
        client = httpx.AsyncClient(
            timeout=self.timeout,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=self.transport,
        )
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        try:
            async with (
                client,
                asyncio.timeout(self.timeout),
                client.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code == 304 and meta is not None:
                    meta["fetched_at"] = time.time()
                    _write_meta(path, meta)
                    return path
                _check_response(url, response, self.max_bytes)
                await self._save(url, response, partial)
        except (httpx.TransportError, httpx.TooManyRedirects, TimeoutError) as exc:
            partial.unlink(missing_ok=True)
            raise _Unreachable(_reason(exc)) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        try:
            await asyncio.get_running_loop().run_in_executor(None, _check_audio, url, partial)
        except AudioError:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        _write_meta(
            path,
            {
                "url": url,
                "fetched_at": time.time(),
                "etag": response.headers.get("etag"),
                "last_modified": response.headers.get("last-modified"),
                "content_type": response.headers.get("content-type"),
            },
        )
        log.info("audio downloaded", url=url, bytes=path.stat().st_size)
        return path

    async def _save(self, url: str, response: httpx.Response, partial: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        received = 0
        with open(partial, "wb") as file:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > self.max_bytes:
                    raise AudioError(f"{url}: the body is larger than {self.max_bytes} bytes")
                file.write(chunk)


class _Unreachable(Exception):
    """The request did not get a response (connection, timeout, redirects)."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    return str(exc) or type(exc).__name__


def _check_response(url: str, response: httpx.Response, max_bytes: int) -> None:
    if response.status_code >= 300:
        phrase = response.reason_phrase or ""
        raise AudioError(f"{url}: HTTP {response.status_code} {phrase}".rstrip())
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith(NOT_AUDIO_TYPES):
        raise AudioError(f"{url}: the server sent {content_type}, not audio")
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise AudioError(f"{url}: the body is larger than {max_bytes} bytes ({length})")


def _check_audio(url: str, path: Path) -> None:
    """Blocking: whether libsndfile can read the file."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        raise AudioError(f"{url}: the body is not audio libsndfile can read ({detail})") from None
    if info.frames <= 0 and info.format != "MPEG":
        raise AudioError(f"{url}: the body holds no audio")


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _read_meta(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(_meta_path(path).read_text())
        if isinstance(meta, dict):
            return meta
    return None


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    target = _meta_path(path)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.part")
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, target)
