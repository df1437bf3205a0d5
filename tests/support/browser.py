"""Debian's Chromium, headless, driven by Selenium through chromedriver, for tests.

    with chromium(fake_audio=tone_wav) as browser:
        browser.get(url)
        browser.execute_script("return ...")

Flags: this machine's network is closed, so everything that would call out
(background networking, component updates, sync, QUIC) is off; no sandbox
(root in a container); pages may play audio without a user gesture. Each
browser gets a fresh profile folder, its downloads going to
``<profile>/downloads`` (``capabilities["chrome"]["userDataDir"]``).
``fake_audio``: the microphone is that WAV (looped), getUserMedia is granted
without a prompt and WebRTC may use the loopback interface.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver

T = TypeVar("T")

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,860",
)  # fmt: skip
WEBRTC_FLAGS = (
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
)  # fmt: skip


def missing() -> str | None:
    """Why no browser can run here, or None."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return "needs Debian's chromium and chromium-driver (./scripts/setup --dev)"
    return None


@contextlib.contextmanager
def chromium(fake_audio: Path | None = None) -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if fake_audio is not None:
        for flag in (*WEBRTC_FLAGS, f"--use-file-for-fake-audio-capture={fake_audio}"):
            options.add_argument(flag)
    downloads = Path(profile) / "downloads"
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the pages' messages
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(predicate: Callable[[], T | None], timeout: float = 15.0, what: str = "") -> T:
    """Poll ``predicate`` until it gives something truthy (bounded). A WebDriver error
    (an element replaced while a list refreshes) counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except WebDriverException:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not in {timeout} s: {what or predicate}")
