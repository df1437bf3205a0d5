"""The README's quick start, as written: the server started the way ``./scripts/run``
starts it (``--config configs/default.yaml``, cwd = the repository, data in the
relative folder ``./data``, the API key generated on the first start), then a
voicemail left by a real phone, downloaded and deleted through the API.

The other integration tests give the server an absolute ``--data-dir``; this
one keeps every path relative, as a user's first run does.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.conftest import REPO, ServerProcess, _rtp_range, wait_for_banner
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

DOCS_API = REPO / "docs" / "api.md"
PEER_HUNG_UP = "Connection reset by peer"
TONE_HZ = 800
MESSAGE_S = 3.0


def start_quickstart(layout: Path) -> ServerProcess:
    """``mediaserver run --config configs/default.yaml`` with cwd = ``layout`` (a copy of
    the repository's configs), on free ports; no --data-dir: data goes to ./data."""
    shutil.copytree(REPO / "configs", layout / "configs")
    low, high = _rtp_range()
    log_path = layout / "server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's code, from another cwd
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "mediaserver", "run", "--config", "configs/default.yaml",
             "--sip-port", "0", "--http-port", "0", "--rtp-ports", f"{low}-{high}", "--drain", "2"],
            stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=layout, env=env,
        )  # fmt: skip
    server = wait_for_banner(process, layout, log_path, sip_host="0.0.0.0")
    assert server.api_key, "a first start prints the key it generated"
    return server


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_quickstart(tmp_path / "mediaserver")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log_text()[-5000:]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen in {timeout} s")


def test_voicemail_downloaded_and_deleted_with_relative_data_folder(
    quickstart: ServerProcess, tmp_path: Path
) -> None:
    server = quickstart
    assert (server.data_dir / "data" / "api-key").is_file()  # the quick start's key file
    api = httpx.Client(
        base_url=server.api_url, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=10
    )

    def voicemails(status: str) -> list[dict[str, Any]]:
        found = api.get("/api/recordings", params={"type": "voicemail", "status": status})
        assert found.status_code == 200, found.text
        return list(found.json()["hits"])

    tone = audio.make_tone_wav(tmp_path / "caller.wav", TONE_HZ, 40.0, amplitude=0.4)
    with api, Baresip(user="dave", input_wav=tone, max_call_s=40) as caller:
        caller.dial(server.uri("voicemail"))
        caller.wait_established(timeout=10)
        wait_for(lambda: voicemails("recording"), 40, "the message being recorded")
        time.sleep(MESSAGE_S)
        caller.send_dtmf("#")
        assert caller.wait_closed(timeout=20) == PEER_HUNG_UP
        (message,) = wait_for(lambda: voicemails("ready"), 15, "the message indexed")
        sid = message["sid"]
        on_disk = server.data_dir / "data" / "recordings" / f"{sid}.wav"
        assert on_disk.is_file()

        download = api.get(f"/api/recordings/{sid}/file")
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "audio/wav"
        assert download.content == on_disk.read_bytes()
        with wave.open(io.BytesIO(download.content)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
            frames = wav.readframes(wav.getnframes())
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
        length = len(samples) / 8000
        assert MESSAGE_S - 1.0 <= length <= MESSAGE_S + 1.5, length
        assert abs(length - message["duration"]) < 0.05
        assert audio.tone_present(samples, 8000, TONE_HZ, MESSAGE_S - 1.0)

        deleted = api.delete(f"/api/recordings/{sid}")
        assert deleted.status_code == 200, deleted.text
        assert not on_disk.exists(), "the file stays on disk after DELETE"
        assert api.get(f"/api/recordings/{sid}").status_code == 404
        assert api.get(f"/api/recordings/{sid}/file").status_code == 404


def docs_request_body(method_path: str) -> dict[str, Any]:
    """The JSON body of the first example request in docs/api.md's section ``method_path``."""
    text = DOCS_API.read_text()
    section = text.index(f"\n### {method_path}\n")
    start = text.index(f"```http\n{method_path}\nContent-Type: application/json\n\n", section)
    block = text[start : text.index("```", start + 3)]
    body: dict[str, Any] = json.loads(block.split("\n\n", 1)[1])
    return body


def test_docs_scenario_example_is_created_next_to_the_shipped_ones(
    quickstart: ServerProcess,
) -> None:
    example = docs_request_body("POST /api/scenarios")
    headers = {"Authorization": f"Bearer {quickstart.api_key}"}
    with httpx.Client(base_url=quickstart.api_url, headers=headers, timeout=10) as api:
        created = api.post("/api/scenarios", json=example)
        assert created.status_code == 201, created.text
        assert created.json()["name"] == example["name"]
