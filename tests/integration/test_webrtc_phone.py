"""The browser softphone (/phone, mediaserver/webrtc) in a real Chromium.

The browser's microphone is a 700 Hz tone (Chromium's fake capture device);
its RTCPeerConnection reaches the server over ICE (the server is ICE-lite),
DTLS-SRTP and PCMU, and the page measures what it hears with a Web Audio
analyser. Echo gives its tone back; a key of the page's keypad (RFC 4733
through RTCDTMFSender) chooses the IVR's branch; a conference room joins the
browser and a baresip phone, each hearing the other; without the API key the
signalling refuses.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from websockets.sync.client import connect

from tests.integration.conftest import SCENARIOS, TEST_API_KEY, ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.browser import chromium, missing, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(missing() is not None, reason=missing() or ""),
]

BROWSER_TONE = 700.0
PHONE_TONE = 1100.0
ROOM = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: conference@v1
        params: {name: "room"}
      - action: hangup@v1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("webrtc")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    for name in ("echo", "ivr"):
        shutil.copy(SCENARIOS / f"{name}.yaml", scenarios)
    (scenarios / "room.yaml").write_text(ROOM)
    proc = start_server(
        tmp / "server", scenarios=scenarios, routes={"echo": "echo", "ivr": "ivr", "room": "room"}
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    tone = tmp_path_factory.mktemp("tone") / "tone.wav"
    audio.make_tone_wav(tone, BROWSER_TONE, 60.0, rate=48000, amplitude=0.3)
    with chromium(fake_audio=tone) as driver:
        yield driver


def dial(browser: WebDriver, server: ServerProcess, to: str, key: str = TEST_API_KEY) -> None:
    browser.get(f"{server.api_url}/phone?key={key}")
    browser.execute_script(
        "window.phone.call(arguments[0]).catch(e => window.phone.end('failed', String(e)))", to
    )


def state(browser: WebDriver) -> tuple[str, str]:
    found: list[str] = browser.execute_script("return [phone.state, phone.reason]")
    return found[0], found[1]


def answered(browser: WebDriver) -> None:
    def check() -> bool:
        now, why = state(browser)
        assert now not in ("failed", "ended"), f"the call {now}: {why}"
        return now == "answered"

    try:
        wait_for(check, 30, "the call to be answered")
    except AssertionError:
        seen = browser.execute_script(
            "return [phone.state, phone.messages.map(m => m.type),"
            " phone.pc && phone.pc.iceConnectionState, phone.pc && phone.pc.connectionState]"
        )
        raise AssertionError(f"the call was not answered: {seen}") from None


def hearing(browser: WebDriver, hz: float, seconds: float = 10.0) -> list[Any]:
    """Until the page hears ``hz`` loudest (within 15 Hz) and louder than -45 dBFS."""

    def heard() -> list[Any] | None:
        found: list[Any] = browser.execute_script(
            "return [phone.dominantFrequency(), phone.levelDb()]"
        )
        frequency, level = found
        return found if frequency and abs(frequency - hz) < 15 and level > -45 else None

    return wait_for(heard, seconds, f"the page to hear {hz} Hz")


def ended_record(server: ServerProcess, call_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found = [r for r in server.log_records("call ended") if r["call_id"] == call_id]
        return found[0] if found else None

    return wait_for(ended, 10, f"call {call_id} to end")


def hang_up(browser: WebDriver) -> None:
    browser.execute_script("window.phone.hangup()")


def test_the_browser_hears_its_own_tone_from_echo(
    server: ServerProcess, browser: WebDriver
) -> None:
    dial(browser, server, "echo")
    answered(browser)
    hearing(browser, BROWSER_TONE)
    hang_up(browser)
    call_id = server.log_records("webrtc call")[-1]["call_id"]
    ended = ended_record(server, call_id)
    assert ended["source"] == "caller"
    media = ended["media"]
    assert media["dtls_done"] == 1 and media["stun_in"] > 0
    assert media["packets_in"] > 0 and media["packets_out"] > 0
    [started] = [r for r in server.log_records("call started") if r["call_id"] == call_id]
    assert started["transport"] == "webrtc" and started["called"] == "echo"


def test_a_key_of_the_keypad_chooses_the_ivr_branch(
    server: ServerProcess, browser: WebDriver
) -> None:
    dial(browser, server, "ivr")
    answered(browser)
    time.sleep(1.0)  # into the menu's prompt
    browser.execute_script("window.phone.press('1')")
    wait_for(lambda: server.log_records("ivr: option 1 sales"), 15, "the IVR's branch 1")
    hearing(browser, 1000.0, 15)  # branch 1 ends with a 1000 Hz beep
    hang_up(browser)
    digits = [r["key"] for r in server.log_records("dtmf received")]
    assert digits == ["1"]


def test_the_browser_and_a_sip_phone_meet_in_a_conference(
    server: ServerProcess, browser: WebDriver, tmp_path: Path
) -> None:
    tone = audio.make_tone_wav(tmp_path / "phone.wav", PHONE_TONE, 30.0, amplitude=0.3)
    with Baresip(user="sip", input_wav=tone, max_call_s=40, workdir=tmp_path / "sip") as phone:
        phone.dial(server.uri("room"))
        phone.wait_established(timeout=10)
        dial(browser, server, "room")
        answered(browser)
        hearing(browser, PHONE_TONE, 15)
        time.sleep(2.0)
        samples, rate = phone.recorded_audio()
        hang_up(browser)
        phone.hangup()
        phone.wait_closed(timeout=10)
    assert audio.tone_present(samples[-2 * rate :], rate, BROWSER_TONE, 1.0), (
        "the SIP phone did not hear the browser"
    )


def test_with_opus_allowed_the_browser_calls_in_opus(browser: WebDriver, tmp_path: Path) -> None:
    """``rtp.codecs`` with opus first: Chromium's offer leads with Opus, so the call
    is Opus end to end (relayed back untouched by echo) and still heard."""
    opus = start_server(tmp_path / "server", routes={"echo": "echo"}, codecs="[opus, PCMU, PCMA]")
    try:
        dial(browser, opus, "echo")
        answered(browser)
        hearing(browser, BROWSER_TONE)
        hang_up(browser)
    finally:
        opus.stop()
    assert [r["codec"] for r in opus.log_records("webrtc call")] == ["opus"]


def test_without_the_key_the_signalling_refuses(server: ServerProcess, browser: WebDriver) -> None:
    before = len(server.log_records("webrtc call"))
    dial(browser, server, "echo", key="wrong")
    wait_for(lambda: state(browser)[0] == "failed", 15, "the call to fail")
    assert len(server.log_records("webrtc call")) == before
    # And from outside a browser: the handshake is answered 401 with the API's error.
    response = httpx.get(
        f"{server.api_url}/api/webrtc",
        headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
    )  # fmt: skip
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_the_console_phone_page_calls_with_the_console_key(
    server: ServerProcess, browser: WebDriver
) -> None:
    """The softphone in the console (#phone): logged in once, it calls echo with the
    console's key and hears its tone back."""
    browser.get(f"{server.api_url}/console/")
    browser.find_element("id", "login-key").send_keys(TEST_API_KEY)
    browser.find_element("css selector", "#login button[type=submit]").click()
    wait_for(lambda: browser.find_elements("css selector", "#nav a[href='#phone']"), 10, "the nav")
    browser.find_element("css selector", "#nav a[href='#phone']").click()
    wait_for(lambda: browser.find_elements("id", "phone-dial"), 10, "the phone page")
    browser.find_element("id", "phone-dial").click()
    answered(browser)
    hearing(browser, BROWSER_TONE)
    if folder := os.environ.get("MEDIASERVER_SCREENSHOTS"):  # docs/console/phone.png
        browser.set_window_size(1200, 700)
        browser.save_screenshot(str(Path(folder) / "phone.png"))
    browser.find_element("id", "phone-hangup").click()
    wait_for(lambda: state(browser)[0] == "ended", 10, "the call to end")


def test_a_page_that_goes_away_after_its_offer_leaves_no_call(server: ServerProcess) -> None:
    """The socket closes right after the offer (a tab closed): whether or not the
    call was made by then, nothing stays live and its RTP ports are given back."""
    offer = (Path(__file__).parents[1] / "unit" / "data" / "chromium_offer.sdp").read_text()
    url = f"ws://127.0.0.1:{server.http_port}/api/webrtc?key={TEST_API_KEY}"
    for _ in range(3):
        with connect(url) as socket:
            socket.send(json.dumps({"type": "call", "to": "echo", "sdp": offer}))
    with httpx.Client(base_url=server.api_url, headers={"X-API-Key": TEST_API_KEY}) as api:
        wait_for(lambda: api.get("/api/calls").json()["total"] == 0, 10, "no live call")
