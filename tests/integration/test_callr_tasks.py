"""Callr v2 surfaces through a live server: recordings in bulk and as MP3, tasks, webhooks.

Recordings are made by a real call (baresip sending an 800 Hz tone to a
scenario that records three times); the bulk update and delete go by
``sid`` and run as tasks; the MP3 rendition is decoded back and its tone
measured. The calls export runs as a task whose ``v2.task.updated`` posts
reach a local receiver and whose CSV matches ``GET /api/cdrs``. Webhooks
created the seed's way, one per ``hmac_algo``, are checked by a receiver
recomputing the HMAC with hashlib, and the ``v2.call.inbound.started`` they
carry holds the seed's CDR fields.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import Request, WebPeer
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"

RECORD_THREE = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: pause@v1
        params: {seconds: 1}
      - action: record@v1
      - action: pause@v1
        params: {seconds: 1.5}
      - action: record@v1
        params: {command: stop}
      - action: record@v1
      - action: pause@v1
        params: {seconds: 1.5}
      - action: record@v1
        params: {command: stop}
      - action: record@v1
      - action: pause@v1
        params: {seconds: 1.5}
      - action: record@v1
        params: {command: stop}
      - action: hangup@v1
"""


@pytest.fixture
def web() -> Iterator[WebPeer]:
    with WebPeer() as peer:
        yield peer


def api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, headers={"X-API-Key": server.api_key})


def until(probe: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def finished_task(client: httpx.Client, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        task: dict[str, Any] = client.get(f"/api/tasks/{task_id}").json()
        return task if task["status"] not in ("pending", "running") else None

    return dict(until(probe, f"task {task_id} ended", timeout))


def hmac_of(request: Request, secret: str, algo: str) -> str:
    """The signature recomputed here, from the exact body posted."""
    return hmac.new(secret.encode(), request.body, getattr(hashlib, algo.lower())).hexdigest()


# --- recordings -----------------------------------------------------------------------------


def test_recordings_in_bulk_by_sid_and_as_mp3(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "rec.yaml").write_text(RECORD_THREE)
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 800, 10.0, amplitude=0.4)
    server = start_server(tmp_path / "server", routes={"rec": "rec"}, scenarios=folder)
    try:
        with Baresip(input_wav=tone, max_call_s=30) as phone:
            phone.dial(server.uri("rec"))
            phone.wait_established(timeout=10)
            phone.wait_closed(timeout=20)
        client = api(server)

        def ready() -> list[dict[str, Any]] | None:
            hits: list[dict[str, Any]] = client.get("/api/recordings").json()["hits"]
            ok = len(hits) == 3 and all(h["status"] == "ready" for h in hits)
            return hits if ok else None

        hits = until(ready, "three recordings ready")
        a, b, c = sorted(h["sid"] for h in hits)
        # Search by one sid or several; the seed's fields are there.
        found = client.get("/api/recordings", params=[("sid", a), ("sid", b)]).json()
        assert sorted(h["sid"] for h in found["hits"]) == [a, b] and found["total"] == 2
        one = client.get("/api/recordings", params={"sid": c}).json()["hits"][0]
        assert one["options"] == {"format": "wav", "channels": 1}
        assert one["transcription"] is None and one["read"] is False
        assert one["url"] == f"{server.api_url}/api/recordings/{c}/file"
        assert one["url_mp3"] == f"{server.api_url}/api/recordings/{c}/file.mp3"
        # An empty sid is an error, never "every recording".
        empty = client.delete("/api/recordings", params={"sid": ""})
        assert empty.status_code == 422 and empty.json()["error"]["field"] == "sid", empty.text

        # Bulk update by sid: a task, done, only those two read.
        answer = client.patch(
            "/api/recordings", params=[("sid", a), ("sid", b)], json={"read": True}
        )
        assert answer.status_code == 202, answer.text
        task = finished_task(client, answer.json())
        assert (task["status"], task["result"], task["percent"]) == ("done", {"updated": 2}, 100)
        read = {h["sid"]: h["read"] for h in client.get("/api/recordings").json()["hits"]}
        assert read == {a: True, b: True, c: False}

        # The MP3: decoded back, the caller's 800 Hz is there.
        mp3 = client.get(f"/api/recordings/{c}/file.mp3")
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        (tmp_path / "c.mp3").write_bytes(mp3.content)
        samples, rate = audio.read_mono(tmp_path / "c.mp3")
        assert 1.0 <= len(samples) / rate <= 2.5, len(samples) / rate
        assert audio.tone_present(samples, rate, 800, 1.0)
        assert audio.dominant_frequency(samples, rate) == pytest.approx(800, abs=10)
        recordings = server.data_dir / "data" / "recordings"
        assert (recordings / f"{c}.mp3").is_file(), "the rendition is kept"
        assert client.get(f"/api/recordings/{c}/file.mp3").content == mp3.content

        # Delete everything: the task waits, cancellable; cancelled, nothing is gone.
        everything = client.delete("/api/recordings")
        assert everything.status_code == 202, everything.text
        pending = client.get(f"/api/tasks/{everything.json()}").json()
        assert pending["status"] == "pending" and pending["type"] == "recordings.delete"
        cancel = client.delete(f"/api/tasks/{everything.json()}")
        assert cancel.status_code == 200, cancel.text
        again = client.delete(f"/api/tasks/{everything.json()}")
        assert again.status_code == 409 and "cancelled" in again.json()["error"]["message"]
        assert client.get(f"/api/tasks/{everything.json()}").json()["status"] == "cancelled"
        assert client.get("/api/recordings").json()["total"] == 3

        # Bulk delete by sid: the row, the file and its MP3 go; the others stay.
        gone = client.delete("/api/recordings", params={"sid": c})
        task = finished_task(client, gone.json())
        assert task["status"] == "done" and task["result"] == {"deleted": 1, "sids": [c]}
        assert not (recordings / f"{c}.wav").exists() and not (recordings / f"{c}.mp3").exists()
        left = client.get("/api/recordings").json()["hits"]
        assert sorted(h["sid"] for h in left) == [a, b]
        assert (recordings / f"{a}.wav").is_file()

        # Without a sid, the update takes every recording.
        task = finished_task(client, client.patch("/api/recordings", json={"read": False}).json())
        assert task["result"] == {"updated": 2}
        assert not any(h["read"] for h in client.get("/api/recordings").json()["hits"])
        unknown = client.get("/api/tasks/" + "0" * 32)
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "taskid"
    finally:
        server.stop()


# --- the calls export task ------------------------------------------------------------------


def test_the_calls_export_is_a_task_and_its_csv_matches_the_search(
    tmp_path: Path, web: WebPeer
) -> None:
    server = start_server(tmp_path / "server", routes={"echo": "echo"}, scenarios=SCENARIOS)
    try:
        client = api(server)
        secret = "task-secret-512"
        hook = client.post(
            "/api/webhooks",
            params={"type": "v2.task.updated"},
            json={
                "endpoint": web.url("/tasks"),
                "options": {"hmac_algo": "SHA512", "hmac_secret": secret},
            },
        )
        assert hook.status_code == 201, hook.text
        assert hook.json()["type"] == "v2.task.updated"
        assert hook.json()["options"] == {"format": "JSON", "hmac_algo": "SHA512"}
        since = datetime.now(UTC) - timedelta(seconds=1)
        run_sipp(server.target, scenario="uac", service="echo", calls=3, duration_ms=300,
                 workdir=tmp_path / "sipp").assert_ok(calls=3)  # fmt: skip

        def ended() -> bool:
            page = client.get("/api/cdrs", params={"status": "ended"}).json()
            return bool(page["total"] == 3)

        until(ended, "three call records ended")
        window = {"from": since.isoformat(), "to": (datetime.now(UTC)).isoformat()}
        started = client.post("/api/calls/export", params={"direction": "inbound", **window})
        assert started.status_code == 202, started.text
        task_id = started.json()
        assert len(task_id) == 32 and task_id.isalnum()
        task = finished_task(client, task_id)
        assert task["status"] == "done" and task["type"] == "calls.export", task
        assert task["result"]["rows"] == 3 and task["ended"] is not None
        assert task["result"]["url"] == f"{server.api_url}/api/tasks/{task_id}/file"
        got = client.get(task["result"]["url"])
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(got.text)))
        search = client.get(
            "/api/cdrs",
            params={"direction": "inbound", "startedAfter": window["from"],
                    "startedBefore": window["to"], "order": "asc"},
        ).json()  # fmt: skip
        assert [r["id"] for r in rows] == [h["callid"] for h in search["hits"]]
        assert [r["from"] for r in rows] == ["sipp"] * 3
        # The synchronous export stays, with the same rows.
        same = client.get("/api/cdrs/export", params={"direction": "inbound"})
        assert same.status_code == 200 and same.text == got.text

        # v2.task.updated at each state change, signed with HMAC-SHA512.
        def posts() -> list[Request] | None:
            mine = [r for r in web.requests if r.path == "/tasks" and task_id.encode() in r.body]
            return mine if any(r.json()["payload"]["status"] == "done" for r in mine) else None

        mine = until(posts, "v2.task.updated done posted")
        statuses = [r.json()["payload"]["status"] for r in mine]
        assert statuses[0] == "pending" and statuses[-1] == "done" and "running" in statuses
        for request in mine:
            assert request.json()["type"] == "v2.task.updated"
            assert request.headers["x-mediaserver-signature"] == hmac_of(request, secret, "SHA512")
            assert request.headers["x-mediaserver-signature-algorithm"] == "SHA512"
        assert mine[-1].json()["payload"]["result"] == task["result"]

        # The seed's limits and required fields.
        wide = {"from": "2024-01-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}
        refused = client.post("/api/calls/export", params={"direction": "inbound", **wide})
        assert refused.status_code == 422 and "31 days" in refused.json()["error"]["message"]
        assert client.post("/api/calls/export", params=window).status_code == 422
        done = client.delete(f"/api/tasks/{task_id}")
        assert done.status_code == 409, done.text
    finally:
        server.stop()


# --- webhooks, one per hmac_algo, and the started CDR ---------------------------------------


def test_a_webhook_per_hmac_algo_and_the_started_cdr(tmp_path: Path, web: WebPeer) -> None:
    server = start_server(tmp_path / "server", routes={"echo": "echo"}, scenarios=SCENARIOS)
    try:
        client = api(server)
        sids = {}
        for algo in ("MD5", "SHA1", "SHA256", "SHA512"):
            made = client.post(
                "/api/webhooks",
                json={
                    "type": "v2.call.inbound.started",
                    "endpoint": web.url(f"/{algo}"),
                    "options": {"hmac_algo": algo, "hmac_secret": f"secret-{algo}"},
                },
            )
            assert made.status_code == 201, made.text
            assert made.json()["status"] == "enabled" and "hmac_secret" not in made.text
            sids[algo] = made.json()["sid"]
        # The native body still works: patterns and a secret, HMAC-SHA256.
        native = client.post(
            "/api/webhooks",
            json={"endpoint": web.url("/native"), "events": ["v2.call.*"], "secret": "native-1"},
        )
        assert native.status_code == 201 and native.json()["type"] is None, native.text
        mixed = client.post(
            "/api/webhooks",
            json={"endpoint": web.url("/x"), "type": "v2.task.updated", "events": ["*"]},
        )
        assert mixed.status_code == 422 and mixed.json()["error"]["field"] == "events", mixed.text
        short = client.post(
            "/api/webhooks",
            json={"endpoint": web.url("/x"), "options": {"hmac_algo": "SHA1", "hmac_secret": "s"}},
        )
        assert short.status_code == 422, short.text
        # Searches by type and by sid; the URL cannot change.
        by_type = client.get("/api/webhooks", params={"type": "v2.call.inbound.started"}).json()
        assert sorted(h["sid"] for h in by_type["hits"]) == sorted(sids.values())
        by_sid = client.get("/api/webhooks", params={"sid": sids["MD5"]}).json()
        assert [h["options"]["hmac_algo"] for h in by_sid["hits"]] == ["MD5"]
        moved = client.patch(f"/api/webhooks/{sids['MD5']}", json={"endpoint": web.url("/y")})
        assert moved.status_code == 422, moved.text

        run_sipp(server.target, scenario="uac", service="echo", calls=1, duration_ms=300,
                 workdir=tmp_path / "sipp").assert_ok(calls=1)  # fmt: skip
        for algo in ("MD5", "SHA1", "SHA256", "SHA512"):
            posted = web.wait_for(lambda r, a=algo: r.path == f"/{a}")  # type: ignore[misc]
            assert posted.headers["x-mediaserver-signature"] == hmac_of(
                posted, f"secret-{algo}", algo
            ), algo
            assert posted.headers["x-mediaserver-signature-algorithm"] == algo
            body = posted.json()
            assert body["type"] == "v2.call.inbound.started" and body["sid"] == sids[algo]
        nat = web.wait_for(lambda r: r.path == "/native")
        assert nat.headers["x-mediaserver-signature"] == hmac_of(nat, "native-1", "SHA256")
        cdr = web.wait_for(lambda r: r.path == "/SHA256").json()["payload"]
        # The seed's CDR (Callr CDR.In) as the call starts: not answered, not hung up yet.
        assert cdr["cli_number"] == "sipp" and cdr["did_intl_number"] == "echo"
        assert cdr["scenario_name"] == "echo" and cdr["callid"]
        assert cdr["answer"] is None and cdr["hangup"] is None and cdr["duration"] is None
        assert datetime.strptime(cdr["start"], "%Y-%m-%d %H:%M:%S")
        assert cdr["record"]["status"] == "live" and cdr["record"]["callid"] == cdr["callid"]
    finally:
        server.stop()
