"""The web console (/console) in a real browser: Debian's headless Chromium driven by
Selenium, against one server, with sipp placing the calls.

One server and one browser for the module. With MEDIASERVER_SCREENSHOTS set to a
folder, a PNG of each page is saved there (docs/console/*.png are made so).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import WebPeer
from tests.support.browser import chromium, missing, wait_for
from tests.support.sipp import SippBackground, run_sipp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(missing() is not None, reason=missing() or ""),
]

RECORDED_NUMBER = "+33100000042"
RECORD_A_GREETING = """\
name: console-recorded
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: record@v1
        params: {command: start, beep: true}
      - action: say@v1
        params: {text: "This call is recorded for the console test."}
      - action: record@v1
        params: {command: stop}
      - action: hangup@v1
"""
EDITABLE = """\
name: console-editable
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: say@v1
        params: {text: "Hello"}
      - action: hangup@v1
"""
ROOM_NUMBER = "+33100000043"
LINE_NUMBER = "+33100000044"
JOIN_A_ROOM = """\
name: console-room
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: conference@v1
        params: {name: console-room, beep: none}
"""
WAIT_IN_LINE = """\
name: console-line
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: queue@v1
        params: {name: console-line, hold_audio: ringback}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("console"))
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def screenshot(browser: WebDriver, name: str) -> None:
    folder = os.environ.get("MEDIASERVER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / f"{name}.png"))


def element(browser: WebDriver, css: str) -> WebElement | None:
    found = browser.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found and found[0].is_displayed() else None


def visible(browser: WebDriver, css: str, timeout: float = 15.0) -> WebElement:
    return wait_for(lambda: element(browser, css), timeout, f"{css} shown")


def click(browser: WebDriver, css: str) -> None:
    """Click what ``css`` finds, found afresh on each try: live lists are re-rendered."""

    def clicked() -> bool:
        found = element(browser, css)
        if found is None:
            return False
        found.click()
        return True

    wait_for(clicked, what=f"{css} clicked")


def text_of(browser: WebDriver, css: str) -> str:
    return wait_for(lambda: (found := element(browser, css)) and found.text, what=f"{css} text")


def log_in(browser: WebDriver, server: ServerProcess, key: str) -> None:
    browser.get(f"{server.api_url}/console")
    field = visible(browser, "#login-key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def open_page(browser: WebDriver, name: str) -> WebElement:
    browser.execute_script("location.hash = arguments[0]", name)
    return visible(browser, f'[data-page="{name}"]')


@pytest.fixture(scope="module")
def webhook(api: httpx.Client) -> Iterator[WebPeer]:
    """A webhook of every call event, to a loopback receiver that accepts them."""
    with WebPeer() as web:
        created = api.post("/api/webhooks", json={"endpoint": web.url("/events"),
                                                  "events": ["v2.call.*"]})  # fmt: skip
        assert created.status_code == 201, created.text
        yield web


@pytest.fixture(scope="module")
def logged_in(browser: WebDriver, server: ServerProcess, webhook: WebPeer) -> WebDriver:
    log_in(browser, server, server.api_key)
    visible(browser, "#nav")
    return browser


# --- without the key ---------------------------------------------------------------------


def test_without_the_key_data_and_stream_refuse_and_the_page_shows_the_login(
    server: ServerProcess, browser: WebDriver
) -> None:
    with httpx.Client(base_url=server.api_url, timeout=10) as anonymous:
        for method, path in (
            ("GET", "/api/calls"),
            ("GET", "/api/cdrs"),
            ("GET", "/api/recordings"),
            ("GET", "/api/console/health"),
            ("POST", "/api/scenarios/check"),
            ("PUT", "/api/conferences/room/members/abc/muted"),
        ):
            response = anonymous.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
        page = anonymous.get("/console/")  # the page itself holds no data
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        assert anonymous.get("/console/nothing.js").status_code == 404
        assert anonymous.get("/console/..%2Fapp.py").status_code == 404
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.http_port}/api/events", open_timeout=10)
    assert refused.value.response.status_code == 401

    browser.get(f"{server.api_url}/console/#calls")
    visible(browser, "#login-key")
    assert not element(browser, "#nav") and not element(browser, "#live-calls")
    log_in(browser, server, "not-the-key")
    error = visible(browser, "#login-error")
    wait_for(lambda: "wrong API key" in error.text, what="the wrong key named")
    assert browser.execute_script("return sessionStorage.length") == 0
    screenshot(browser, "login")


# --- live calls ----------------------------------------------------------------------------


def call_row(browser: WebDriver, to: str) -> WebElement | None:
    return element(browser, f'#live-calls tr[data-to="{to}"][data-state="answered"]')


def listed_call(browser: WebDriver, to: str) -> str:
    """The id of the answered call to ``to`` once the live list shows it."""
    return wait_for(
        lambda: (row := call_row(browser, to)) and row.get_attribute("data-call"),
        what=f"a call to {to} listed",
    )


def test_a_call_appears_in_the_live_list_and_leaves_it_when_it_ends(
    server: ServerProcess, logged_in: WebDriver, tmp_path: Path
) -> None:
    browser = logged_in
    open_page(browser, "calls")
    with SippBackground(server.target, scenario="uac", service="echo", duration_ms=4000,
                        rtp_echo=True, timeout=30, workdir=tmp_path / "sipp") as sipp:  # fmt: skip
        call_id = listed_call(browser, "echo")
        listed = f'#live-calls tr[data-call="{call_id}"]'
        cells = text_of(browser, listed)
        assert "sipp" in cells and "echo" in cells and "PCMU" in cells
        # The scenario's current action comes from the event stream.
        wait_for(lambda: "echo@v1" in text_of(browser, listed), what="the current action")
        screenshot(browser, "calls")
        sipp.wait(timeout=20).assert_ok(calls=1)
    wait_for(lambda: not element(browser, f'#live-calls tr[data-call="{call_id}"]'),
             what="the ended call gone")  # fmt: skip


def test_a_call_hung_up_from_the_page_ends(
    server: ServerProcess, logged_in: WebDriver, tmp_path: Path
) -> None:
    browser = logged_in
    open_page(browser, "calls")
    with SippBackground(server.target, scenario="uac_bye_from_server", service="echo",
                        recv_timeout_ms=30000, rtp_echo=True, timeout=40,
                        workdir=tmp_path / "sipp") as sipp:  # fmt: skip
        call_id = listed_call(browser, "echo")
        click(browser, f'#live-calls button[data-hangup="{call_id}"]')
        # sipp's scenario succeeds only if the server's BYE came.
        sipp.wait(timeout=20).assert_ok(calls=1)
    wait_for(lambda: not element(browser, f'#live-calls tr[data-call="{call_id}"]'),
             what="the hung-up call gone")  # fmt: skip


# --- recordings ----------------------------------------------------------------------------


def test_a_recording_is_found_plays_and_is_deleted(
    server: ServerProcess, api: httpx.Client, logged_in: WebDriver, tmp_path: Path
) -> None:
    created = api.post("/api/scenarios", json={"name": "console-recorded",
                                               "script": RECORD_A_GREETING})  # fmt: skip
    assert created.status_code == 201, created.text
    sid = created.json()["sid"]
    assert api.put(f"/api/scenarios/{sid}/numbers/{RECORDED_NUMBER}").status_code == 200
    run_sipp(server.target, scenario="uac_bye_from_server", service=RECORDED_NUMBER,
             recv_timeout_ms=20000, workdir=tmp_path / "sipp").assert_ok(calls=1)  # fmt: skip

    def ready() -> str | None:
        hits = api.get("/api/recordings", params={"callee": RECORDED_NUMBER}).json()["hits"]
        return next((str(r["sid"]) for r in hits if r["status"] == "ready"), None)

    recording = wait_for(ready, what="the recording ready")
    browser = logged_in
    page = open_page(browser, "recordings")
    search = page.find_element(By.CSS_SELECTOR, '#recording-search input[name="callee"]')
    search.send_keys(RECORDED_NUMBER)
    page.find_element(By.CSS_SELECTOR, "#recording-search button[type=submit]").click()
    click(browser, f'#recording-list button[data-play="{recording}"]')
    player = visible(browser, "#player")

    def playing() -> bool:
        state = browser.execute_script(
            "const a = arguments[0]; return [a.currentTime, a.error && a.error.message]", player
        )
        assert state[1] is None, f"the audio element failed: {state[1]}"
        return bool(state[0] > 0.3)

    wait_for(playing, what="the recording playing")
    drawn = wait_for(lambda: visible(browser, "#waveform").get_attribute("data-drawn"),
                     what="the waveform drawn")  # fmt: skip
    assert float(drawn) > 1.0
    assert recording in browser.find_element(By.ID, "player-title").text
    screenshot(browser, "recordings")

    click(browser, f'#recording-list button[data-delete="{recording}"]')
    wait_for(lambda: browser.switch_to.alert, what="the confirmation asked").accept()
    wait_for(lambda: not element(browser, f'#recording-list tr[data-recording="{recording}"]'),
             what="the deleted recording gone")  # fmt: skip
    assert api.get(f"/api/recordings/{recording}").status_code == 404


# --- scenarios -----------------------------------------------------------------------------


def test_a_mistake_is_shown_at_its_line_and_nothing_is_saved(
    api: httpx.Client, logged_in: WebDriver
) -> None:
    created = api.post("/api/scenarios", json={"name": "console-editable", "script": EDITABLE})
    assert created.status_code == 201, created.text
    sid = created.json()["sid"]
    browser = logged_in
    open_page(browser, "scenarios")
    visible(browser, f'#scenario-list a[data-sid="{sid}"]').click()
    editor = visible(browser, "#scenario-script")
    wait_for(lambda: "✓" in browser.find_element(By.ID, "check-state").text, what="valid")
    # Line 6: an action that does not exist, the last key typed as a person would.
    broken = EDITABLE.replace("say@v1", "say@v")
    caret = broken.index("say@v") + len("say@v")
    browser.execute_script(
        "const e = arguments[0]; e.value = arguments[1]; e.focus();"
        "e.setSelectionRange(arguments[2], arguments[2])",
        editor, broken, caret,
    )  # fmt: skip
    ActionChains(browser).send_keys("9").perform()  # at the caret, unlike send_keys
    assert editor.get_attribute("value") == EDITABLE.replace("say@v1", "say@v9")
    marked = wait_for(lambda: element(browser, '#gutter div.problem[data-line="6"]'),
                      what="line 6 marked")  # fmt: skip
    assert "say@v" in (marked.get_attribute("title") or "")
    problem = visible(browser, '#check-problems li.problem[data-line="6"]')
    assert problem.text.startswith("line 6, column")
    screenshot(browser, "scenarios")

    browser.find_element(By.ID, "scenario-save").click()
    error = visible(browser, "#save-error")
    assert error.get_attribute("data-status") == "422"
    assert "line 6" in error.text
    assert api.get(f"/api/scenarios/{sid}").json()["script"] == EDITABLE


# --- conferences and queues --------------------------------------------------------------


def attach(api: httpx.Client, name: str, script: str, number: str) -> None:
    created = api.post("/api/scenarios", json={"name": name, "script": script})
    assert created.status_code == 201, created.text
    assert api.put(f"/api/scenarios/{created.json()['sid']}/numbers/{number}").status_code == 200


def test_a_member_is_muted_and_kicked_and_a_waiter_shown_with_its_wait(
    server: ServerProcess, api: httpx.Client, logged_in: WebDriver, tmp_path: Path
) -> None:
    attach(api, "console-room", JOIN_A_ROOM, ROOM_NUMBER)
    attach(api, "console-line", WAIT_IN_LINE, LINE_NUMBER)
    browser = logged_in
    open_page(browser, "rooms")
    with (
        SippBackground(server.target, scenario="uac_bye_from_server", service=ROOM_NUMBER,
                       recv_timeout_ms=30000, rtp_echo=True, timeout=40,
                       workdir=tmp_path / "member") as member,
        SippBackground(server.target, scenario="uac_bye_from_server", service=LINE_NUMBER,
                       recv_timeout_ms=30000, rtp_echo=True, timeout=40,
                       workdir=tmp_path / "waiter") as waiter,
    ):  # fmt: skip
        member_row = '[data-conference="console-room"] tr[data-member]'
        callid = wait_for(lambda: visible(browser, member_row).get_attribute("data-member"))
        click(browser, f'button[data-mute="{callid}"]')

        def muted() -> bool:
            rooms = api.get("/api/conferences").json()["hits"]
            return any(m["callid"] == callid and m["muted"] for r in rooms for m in r["members"])

        wait_for(muted, what="the member muted")
        wait_for(lambda: text_of(browser, f'button[data-mute="{callid}"]') == "Unmute")
        queued = '#queues tr[data-queue="console-line"]'
        wait_for(lambda: " s" in text_of(browser, queued), what="the wait shown")
        screenshot(browser, "rooms")
        click(browser, f'button[data-kick="{callid}"]')
        member.wait(timeout=20).assert_ok(calls=1)  # the kicked member got the BYE
        waiter_id = api.get("/api/queues").json()["hits"][0]["callids"][0]
        assert api.delete(f"/api/calls/{waiter_id}").status_code == 200
        waiter.wait(timeout=20).assert_ok(calls=1)


# --- call records --------------------------------------------------------------------------


def test_records_are_filtered_and_exported_as_csv(logged_in: WebDriver) -> None:
    browser = logged_in
    page = open_page(browser, "records")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#cdr-list tr[data-cdr]")) >= 4,
             what="every call so far listed")  # fmt: skip
    visible(browser, ".charts svg")
    screenshot(browser, "records")
    page.find_element(By.CSS_SELECTOR, '#cdr-filters input[name="to"]').send_keys(ROOM_NUMBER)
    page.find_element(By.CSS_SELECTOR, "#cdr-filters button[type=submit]").click()

    def only_the_room_call() -> list[str] | None:
        rows = browser.find_elements(By.CSS_SELECTOR, "#cdr-list tr[data-cdr]")
        texts = [r.text for r in rows]
        return texts if len(texts) == 1 and ROOM_NUMBER in texts[0] else None

    wait_for(only_the_room_call, what="the filtered records")
    assert "1 calls" in browser.find_element(By.CSS_SELECTOR, ".charts").text
    browser.find_element(By.ID, "cdr-export").click()
    profile = Path(str(browser.capabilities["chrome"]["userDataDir"]))
    exported = profile / "downloads" / "cdrs.csv"
    wait_for(lambda: exported.exists() and exported.stat().st_size > 0, what="cdrs.csv saved")
    header, *rows = exported.read_text().splitlines()
    assert header.startswith("id,direction,") and "media_stats" in header, header
    assert len(rows) == 1 and ROOM_NUMBER in rows[0], exported.read_text()


# --- the other pages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("webhooks", '#webhook-log tr[data-outcome="delivered"]'),
        ("health", "#health .card"),
    ],
)
def test_each_other_page_shows_its_data(logged_in: WebDriver, name: str, shown: str) -> None:
    open_page(logged_in, name)
    visible(logged_in, shown)
    errors = logged_in.find_elements(By.CSS_SELECTOR, f'[data-page="{name}"] .error')
    assert not [e.text for e in errors if e.text], [e.text for e in errors]
    screenshot(logged_in, name)


def test_the_health_page_names_ports_and_loop_lag(logged_in: WebDriver) -> None:
    open_page(logged_in, "health")
    wait_for(lambda: "RTP ports in use" in text_of(logged_in, "#health"), what="ports")
    assert "Event-loop lag" in text_of(logged_in, "#health")


def test_no_page_broke_the_content_security_policy_or_threw(logged_in: WebDriver) -> None:
    for name in ("calls", "records", "recordings", "scenarios", "rooms", "webhooks", "health"):
        open_page(logged_in, name)
    messages = [entry["message"] for entry in logged_in.get_log("browser")]  # type: ignore[attr-defined]
    broken = [m for m in messages if "Content Security Policy" in m or "Uncaught" in m]
    assert not broken, broken
