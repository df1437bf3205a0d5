"""Audio files (Callr v2 /api/audio-files) through the real server: an MP3 uploaded,
converted, announced by v2.audio-file.updated, played by sid in a call and still
there after a restart; and every bad input refused or ended in ``error``."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

TONE_HZ = 700.0


class _Hooks(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook_url() -> Iterator[str]:
    """A local webhook receiver; what it got is in ``_Hooks.bodies``."""
    _Hooks.bodies = []
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{hooks.server_address[1]}/events"
    finally:
        hooks.shutdown()
        hooks.server_close()


def serve(folder: Path, hook_url: str) -> ServerProcess:
    extra = f'webhooks:\n  - url: "{hook_url}"\n    events: ["v2.audio-file.*"]\n'
    return start_server(folder, extra_config=extra)


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, headers={"X-API-Key": server.api_key}, timeout=10)


def tone_bytes(folder: Path, format: str, seconds: float = 2.0, rate: int = 44100) -> bytes:
    """A 700 Hz tone encoded by libsndfile (MP3, WAV, ...).

    Written to a file: libsndfile's MP3 encoder writing to a file object (BytesIO)
    leaves a gap in the middle of the audio."""
    t = np.arange(round(seconds * rate)) / rate
    path = folder / f"tone-{seconds}.{format.lower()}"
    sf.write(path, 0.4 * np.sin(2 * np.pi * TONE_HZ * t), rate, format=format)
    return path.read_bytes()


def wait_status(api: httpx.Client, sid: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body: dict[str, Any] = api.get(f"/api/audio-files/{sid}").json()
        if body["status"] in wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"audio file {sid} never reached {wanted}")


def hook_statuses(sid: str, count: int) -> list[str]:
    """The statuses v2.audio-file.updated announced for ``sid`` (waits for ``count``)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [b for b in _Hooks.bodies if b["payload"]["sid"] == sid]
        if len(mine) >= count:
            break
        time.sleep(0.1)
    for body in mine:
        assert body["type"] == "v2.audio-file.updated"
        assert set(body) == {"id", "at", "sid", "type", "try", "payload"}
    return [b["payload"]["status"] for b in mine]


def error_of(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["field"] == field, error
    return error


def play_scenario(api: httpx.Client, name: str, sid: str) -> None:
    """A scenario playing audio file ``sid``, reached by calling ``name``."""
    script = (
        "branches:\n  inbound-call:\n    actions:\n      - action: answer@v1\n"
        f"      - action: play@v1\n        params: {{url: 'audio-file:{sid}'}}\n"
        "      - action: hangup@v1\n"
    )
    created = api.post("/api/scenarios", json={"name": name, "script": script})
    assert created.status_code == 201, created.text
    attached = api.put(f"/api/scenarios/{created.json()['sid']}/numbers/{name}")
    assert attached.status_code == 200, attached.text


def test_an_uploaded_mp3_is_converted_announced_and_played_by_sid(
    tmp_path: Path, hook_url: str
) -> None:
    mp3 = tone_bytes(tmp_path, "MP3", 3.0)
    server = serve(tmp_path / "server", hook_url)
    try:
        with client(server) as api:
            response = api.post(
                "/api/audio-files",
                data={"name": "Tone"},
                files={"file": ("tone.mp3", mp3, "audio/mpeg")},
            )
            assert response.status_code == 201, response.text
            created = response.json()
            assert created["status"] == "pending-conversion"
            assert (created["name"], created["source"], created["readonly"]) == (
                "Tone",
                "file-upload",
                False,
            )
            sid = created["sid"]
            ready = wait_status(api, sid, {"ready", "error"})
            assert ready["status"] == "ready", ready
            assert 2.9 <= ready["duration"] <= 3.2
            assert set(ready) == {
                "sid", "name", "duration", "source", "readonly", "status", "created", "updated"
            }  # fmt: skip
            assert hook_statuses(sid, 3) == ["pending-conversion", "processing", "ready"]
            page = api.get("/api/audio-files", params={"name": "ton", "status": "ready"}).json()
            assert (page["total"], page["hits"][0]["sid"]) == (1, sid)
            play_scenario(api, "tonefile", sid)
        with Baresip(max_call_s=30) as phone:
            phone.dial(server.uri("tonefile"))
            phone.wait_established(timeout=10)
            phone.wait_closed(timeout=20)
            heard, rate = phone.recorded_audio()
    finally:
        server.stop()
    heard_s = audio.tone_seconds(heard, rate, TONE_HZ)
    assert heard_s >= 2.5, f"the uploaded tone was heard {heard_s:.2f} s of its 3 s"
    # Stored in the data folder and the database: still there after a restart.
    assert (server.data_dir / "data" / "audio-files" / f"{sid}.wav").is_file()
    assert not (server.data_dir / "data" / "audio-files" / f"{sid}.upload").exists()
    again = serve(tmp_path / "server", hook_url)
    try:
        with client(again) as api:
            assert api.get(f"/api/audio-files/{sid}").json() == ready
    finally:
        again.stop()


def test_bad_inputs_are_refused_or_end_in_error(tmp_path: Path, hook_url: str) -> None:
    server = serve(tmp_path / "server", hook_url)
    try:
        with client(server) as api:
            tone = ("tone.wav", tone_bytes(tmp_path, "WAV", 1.0, 8000), "audio/wav")
            # Types this server does not convert: 415 naming the type.
            error = error_of(
                api.post(
                    "/api/audio-files",
                    data={"name": "x"},
                    files={"file": ("x.txt", b"hello", "text/plain")},
                ),
                415,
                "file",
            )
            assert "text/plain" in error["message"]
            error = error_of(
                api.post(
                    "/api/audio-files",
                    data={"name": "x"},
                    files={"file": ("x.m4a", b"\0\0\0 ftypM4A ", "audio/mp4")},
                ),
                415,
                "file",
            )
            assert "audio/mp4" in error["message"] and "MP4" in error["message"]
            error_of(
                api.post(
                    "/api/audio-files", content=b"name=x", headers={"Content-Type": "text/plain"}
                ),
                415,
                "Content-Type",
            )
            # Malformed forms: 400 naming the body, or the file part that is one too many.
            unbounded = {"Content-Type": "multipart/form-data"}
            error = error_of(
                api.post("/api/audio-files", content=b"x", headers=unbounded), 400, "body"
            )
            assert "boundary" in error["message"]
            two = [("file", tone), ("file", tone)]
            error_of(api.post("/api/audio-files", data={"name": "x"}, files=two), 400, "file")
            # The name: required, 1 to 64 characters, in either body.
            error_of(api.post("/api/audio-files", files={"file": tone}), 422, "name")
            error_of(
                api.post("/api/audio-files", data={"name": "n" * 65}, files={"file": tone}),
                422,
                "name",
            )
            error_of(api.post("/api/audio-files", json={}), 422, "name")
            error_of(api.post("/api/audio-files", json={"name": ""}), 422, "name")
            error_of(api.post("/api/audio-files", json={"name": "a", "colour": 1}), 422, "colour")
            error_of(api.post("/api/audio-files", data={"name": "no file", "x": "1"}), 422, "x")
            error_of(api.post("/api/audio-files", data={"name": "no file"}), 422, "file")
            error_of(api.get("/api/audio-files", params={"status": "lost"}), 422, "status")
            error_of(api.get("/api/audio-files/zzzzzzzz"), 404, "sid")
            # Uploads may be larger than the 1 MiB of the rest of the API, up to 20 MiB.
            big = ("long.wav", tone_bytes(tmp_path, "WAV", 150.0, 8000), "audio/wav")
            assert len(big[1]) > 2 * 1024 * 1024
            response = api.post("/api/audio-files", data={"name": "Long"}, files={"file": big})
            assert response.status_code == 201, response.text
            long = wait_status(api, response.json()["sid"], {"ready", "error"})
            assert long["status"] == "ready" and long["duration"] == 150.0
            huge = ("huge.wav", b"RIFF" + bytes(21 * 1024 * 1024), "audio/wav")
            error_of(
                api.post("/api/audio-files", data={"name": "Huge"}, files={"file": huge}),
                413,
                "body",
            )
            assert api.delete(f"/api/audio-files/{long['sid']}").status_code == 200
            # Corrupt content of a supported type: accepted, then error with the reason.
            response = api.post(
                "/api/audio-files",
                data={"name": "Broken"},
                files={"file": ("broken.mp3", b"ID3" + b"not audio" * 200, "audio/mpeg")},
            )
            assert response.status_code == 201, response.text
            broken = wait_status(api, response.json()["sid"], {"ready", "error"})
            assert broken["status"] == "error" and "decode" in broken["reason"], broken
            assert hook_statuses(broken["sid"], 3) == ["pending-conversion", "processing", "error"]
            # A name alone: pending-content, then the content, then ready.
            response = api.post("/api/audio-files", json={"name": "Later"})
            assert response.status_code == 201, response.text
            later = response.json()
            assert later["status"] == "pending-content" and later["duration"] == 0
            play_scenario(api, "notyet", later["sid"])
        with Baresip(max_call_s=20) as phone:
            phone.dial(server.uri("notyet"))
            phone.wait_closed(timeout=15)
        (failed,) = server.log_records("run failed")
        assert f"audio-file:{later['sid']}" in str(failed["error"])
        assert "pending-content" in str(failed["error"])
        with client(server) as api:
            sid = later["sid"]
            error_of(
                api.post(f"/api/audio-files/{sid}/file", json={"name": "x"}), 415, "Content-Type"
            )
            response = api.post(f"/api/audio-files/{sid}/file", files={"file": tone})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "pending-conversion"
            assert wait_status(api, sid, {"ready", "error"})["status"] == "ready"
            renamed = api.patch(f"/api/audio-files/{sid}", json={"name": "Renamed"})
            assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"
            error_of(api.patch(f"/api/audio-files/{sid}", json={"name": ""}), 422, "name")
            assert api.delete(f"/api/audio-files/{sid}").json()["code"] == "ok"
            error_of(api.get(f"/api/audio-files/{sid}"), 404, "sid")
            error_of(api.delete(f"/api/audio-files/{sid}"), 404, "sid")
            assert not list((server.data_dir / "data" / "audio-files").glob(f"{sid}.*"))
            everything = api.get("/api/audio-files", params={"sort": "name", "order": "asc"})
            assert [h["name"] for h in everything.json()["hits"]] == ["Broken"]
    finally:
        server.stop()
