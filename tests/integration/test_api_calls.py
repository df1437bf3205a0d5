"""The HTTP API with real calls: routing changed live, live calls, hang-up, injected
actions, call records, webhooks, metrics, and the `mediaserver call`/`calls` commands.

Peers are sipp and baresip on loopback. The end-to-end test builds a whole
service through the API alone (a scenario, a number, a webhook), places a
call to it, watches it live, then reads its call record with media
statistics and checks the webhooks a local receiver got: signed, in order.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaserver.config import host_name
from mediaserver.webhooks.envelope import verify_signature
from tests.integration.conftest import REPO, ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.sipp import SippBackground, run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"
ROUTES = {"echo": "echo", "*": "echo"}
PEER_HUNG_UP = "Connection reset by peer"

BEEP_AND_HANG_UP = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: play@v1
        params: {tone: beep}
      - action: pause@v1
        params: {seconds: 1.5}
      - action: log@v1
        params:
          message: "${$run.scenario}: started ${$call.started} ${$call.started_at} ${call.answered}"
      - action: hangup@v1
"""
OUTBOUND = """\
branches:
  api-initiated:
    actions:
      - action: log@v1
        params: {message: "outbound run for ${$who}, dial ${$dial.status}"}
      - action: pause@v1
        params: {seconds: 1}
      - action: hangup@v1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("api-calls"), routes=ROUTES, scenarios=SCENARIOS)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=15) as client:
        yield client


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def create_scenario(api: httpx.Client, name: str, script: str) -> str:
    response = api.post("/api/scenarios", json={"name": name, "script": script})
    assert response.status_code == 201, response.text
    sid: str = response.json()["sid"]
    return sid


def live_call(api: httpx.Client, **match: str) -> dict[str, Any] | None:
    hits = api.get("/api/calls", params={"limit": 100}).json()["hits"]
    return next((c for c in hits if all(c.get(k) == v for k, v in match.items())), None)


def records_to(api: httpx.Client, number: str) -> list[dict[str, Any]]:
    page = api.get("/api/cdrs", params={"number": number, "order": "asc", "limit": 100}).json()
    hits: list[dict[str, Any]] = page["hits"]
    return hits


def mediaserver(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediaserver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


# --- routing, live calls, hang-up ----------------------------------------------------------


def test_attaching_a_number_changes_routing_live(
    server: ServerProcess, api: httpx.Client, tmp_path: Path
) -> None:
    number = "+33199007777"
    sid = create_scenario(api, "live-routing", BEEP_AND_HANG_UP)

    def call(workdir: str) -> None:
        run_sipp(server.target, scenario="uac", service=number, duration_ms=500,
                 workdir=tmp_path / workdir).assert_ok(calls=1)  # fmt: skip

    call("before")  # the "*" route: echo
    assert api.put(f"/api/scenarios/{sid}/numbers/{number}").status_code == 200
    # Now the scenario answers, beeps and hangs up: sipp sees the server's BYE.
    run_sipp(server.target, scenario="uac_bye_from_server", service=number,
             recv_timeout_ms=15000, workdir=tmp_path / "attached").assert_ok(calls=1)  # fmt: skip
    assert api.delete(f"/api/scenarios/{sid}/numbers/{number}").status_code == 200
    call("after")

    records = wait_for(lambda: len(records_to(api, number)) == 3 and records_to(api, number))
    assert [r["scenario"]["name"] for r in records] == ["echo", "live-routing", "echo"]
    assert records[1]["scenario"]["sid"] == sid
    assert records[1]["hangupSource"] == "server"


def test_live_call_is_listed_then_hung_up_through_the_api(
    server: ServerProcess, api: httpx.Client, tmp_path: Path
) -> None:
    with SippBackground(server.target, scenario="uac_bye_from_server", service="echo",
                        recv_timeout_ms=30000, rtp_echo=True, timeout=40,
                        workdir=tmp_path / "sipp") as sipp:  # fmt: skip
        call = wait_for(lambda: live_call(api, to="echo", state="answered"))
        assert call["direction"] == "inbound" and call["from"] == "sipp"
        assert call["scenario"] == "echo" and call["sipCallId"]
        assert call["node"] == host_name()  # node.name's default: the calls' holder
        one = api.get(f"/api/calls/{call['id']}").json()
        assert one["id"] == call["id"] and one["duration"] >= 0 and "packets_out" in one["media"]

        listed = mediaserver("calls", "--server", server.api_url, "--api-key", server.api_key)
        assert listed.returncode == 0, listed.stderr
        header, *rows = listed.stdout.splitlines()
        assert header.split() == ["ID", "DIRECTION", "FROM", "TO", "SCENARIO", "STATE", "SECONDS"]
        assert any(row.split()[:4] == [call["id"], "inbound", "sipp", "echo"] for row in rows)

        hung_up = api.delete(f"/api/calls/{call['id']}")
        assert hung_up.status_code == 200 and hung_up.json()["code"] == "ok"
        # sipp was waiting for our BYE: its call succeeds only if the BYE came.
        sipp.wait(timeout=20).assert_ok(calls=1)

    assert api.get(f"/api/calls/{call['id']}").status_code == 404

    def ended() -> dict[str, Any] | None:
        record: dict[str, Any] = api.get(f"/api/cdrs/{call['id']}").json()
        return record if record["status"] == "ended" else None

    record = wait_for(ended)
    assert record["hangupSource"] == "server" and record["hangupCause"] == "normal_clearing"
    assert "packets_in" in record["media"]["a"]  # sipp sent no audio here: see the e2e test


def test_injected_actions_are_heard(server: ServerProcess, api: httpx.Client) -> None:
    with Baresip(max_call_s=40) as phone:
        phone.dial(server.uri("echo"))
        phone.wait_established(timeout=10)
        call = wait_for(lambda: live_call(api, to="echo", state="answered"))
        time.sleep(1.0)
        bad = api.post(f"/api/calls/{call['id']}/actions", json={"actions": [{"action": "x@v1"}]})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "actions"
        actions = [
            {
                "action": "say@v1",
                "params": {"text": "Hello from the API. This message was injected."},
            },
            {"action": "hangup@v1"},
        ]
        response = api.post(f"/api/calls/{call['id']}/actions", json={"actions": actions})
        assert response.status_code == 201, response.text
        assert response.json()["runid"].startswith("inject:")
        assert phone.wait_closed(timeout=30) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    # The phone sent silence, so echo returned silence: the speech is the injected say@v1.
    assert audio.speech_seconds(heard, rate) > 1.0
    missing = api.post("/api/calls/zzzzzzzz/actions", json={"actions": actions})
    assert missing.status_code == 404


# --- the whole service through the API ---------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A loopback HTTP server that answers 200 to every POST and keeps what it got."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/events"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(headers, body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def poll(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        exact = line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
        if exact and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_service_built_through_the_api_end_to_end(
    server: ServerProcess, tmp_path: Path
) -> None:
    number = "+33199008888"
    secret = "e2e-signing-secret"
    headers = {"X-API-Key": server.api_key}
    async with (
        Receiver() as receiver,
        httpx.AsyncClient(base_url=server.api_url, headers=headers, timeout=15) as api,
    ):
        hook = await api.post(
            "/api/webhooks",
            json={"endpoint": receiver.url, "events": ["v2.call.*"], "secret": secret},
        )
        assert hook.status_code == 201, hook.text
        hook_sid = hook.json()["sid"]
        created = await api.post("/api/scenarios", json={"name": "e2e", "script": BEEP_AND_HANG_UP})
        sid = created.json()["sid"]
        assert (await api.put(f"/api/scenarios/{sid}/numbers/{number}")).status_code == 200

        async with SippBackground(server.target, scenario="uac_bye_from_server", service=number,
                                  recv_timeout_ms=15000, rtp_echo=True,
                                  workdir=tmp_path / "sipp") as sipp:  # fmt: skip

            async def visible() -> dict[str, Any] | None:
                hits = (await api.get("/api/calls")).json()["hits"]
                return next((c for c in hits if c["to"] == number), None)

            live = await poll(visible)
            assert live["scenario"] == "e2e" and live["direction"] == "inbound"
            (await sipp.wait_async(timeout=20)).assert_ok(calls=1)

        async def ended() -> dict[str, Any] | None:
            record: dict[str, Any] = (await api.get(f"/api/cdrs/{live['id']}")).json()
            return record if record.get("status") == "ended" else None

        record = await poll(ended)
        assert record["scenario"] == {"sid": sid, "name": "e2e"}
        assert record["number"] == number and record["from"] == "sipp"
        assert record["answered"] and record["durationAnswered"] >= 1.5
        assert record["hangupSource"] == "server" and record["sipStatus"] == 200
        media = record["media"]["a"]
        assert media["packets_out"] > 50 and media["packets_in"] > 0, media

        search = (await api.get("/api/cdrs", params={"scenario": sid})).json()
        assert [r["callid"] for r in search["hits"]] == [live["id"]]

        async def both_posted() -> bool:
            return len(receiver.requests) >= 2

        await poll(both_posted)
        bodies = [json.loads(r.body) for r in receiver.requests]
        assert [b["type"] for b in bodies] == ["v2.call.inbound.started", "v2.call.inbound.ended"]
        for request, body in zip(receiver.requests, bodies, strict=True):
            signature = request.headers.get("x-mediaserver-signature")
            assert verify_signature(request.body, secret, signature), "bad signature"
            assert not verify_signature(request.body, "another-secret", signature)
            assert body["sid"] == hook_sid and body["try"] == 0
            assert request.headers["x-mediaserver-event"] == body["type"]
        assert bodies[0]["payload"]["callid"] == live["id"]
        assert bodies[0]["payload"]["scenario_name"] == "e2e"
        assert bodies[1]["payload"]["callid"] == live["id"]
        # The webhooks carry the record in /api/cdrs's words and times, next to Callr's CDR.
        started = bodies[0]["payload"]
        assert started["start"] == record["started"][:19].replace("T", " ")  # the CDR's own
        assert (started["cli_number"], started["did_intl_number"]) == ("sipp", number)
        assert started["answer"] is None and started["hangup"] is None
        assert started["record"]["started"] == record["started"]
        assert (started["record"]["status"], started["record"]["number"]) == ("live", number)
        assert bodies[1]["payload"]["record"] == record
        assert bodies[1]["payload"]["hangupsource"] == "SERVER"  # the seed's CDR.In stays
        # $call.started is the record's start (RFC 3339); $call.started_at the same in ms.
        (logged,) = server.scenario_logs("e2e: started ")
        _, _, text, millis, answered = logged.split(" ")
        assert text == record["started"] and answered == record["answered"]
        at = datetime.fromisoformat(record["started"].replace("Z", "+00:00"))
        assert int(millis) // 1000 == int(at.timestamp())
        assert bodies[0]["at"] <= bodies[1]["at"]

        async def logged() -> list[dict[str, Any]] | None:
            page = (await api.get("/api/webhooks/logs", params={"sid": hook_sid})).json()
            hits: list[dict[str, Any]] = page["hits"]
            return hits if len(hits) >= 2 else None

        logs = await poll(logged)
        assert {log["type"] for log in logs} == {"v2.call.inbound.started", "v2.call.inbound.ended"}
        assert all(log["outcome"] == "delivered" and log["httpcode"] == 200 for log in logs)

        text = (await api.get("/metrics")).text
        assert metric(text, "mediaserver_calls_total", direction="inbound", outcome="answered") >= 1
        assert metric(text, "mediaserver_rtp_packets_total", direction="out") >= 50
        assert metric(text, "mediaserver_sip_requests_total", direction="in", method="INVITE") >= 1
        assert metric(text, "mediaserver_sip_responses_total", direction="out", status="200") >= 1
        assert metric(text, "mediaserver_webhook_posts_total", outcome="delivered") >= 2


# --- call records as CSV --------------------------------------------------------------------


def utc_now_text() -> str:
    """Now, as RFC 3339 in UTC with milliseconds (the API's timestamps)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_cdr_export_is_csv_of_the_search(server: ServerProcess, api: httpx.Client) -> None:
    # Only this test's calls: the module's server took others, some perhaps still ending.
    search = {"to": "echo", "status": "ended", "startedAfter": utc_now_text()}
    run_sipp(server.target, scenario="uac", service="echo", calls=3, duration_ms=300).assert_ok(
        calls=3
    )

    def ended_calls() -> int:
        total: int = api.get("/api/cdrs", params=search).json()["total"]
        return total if total >= 3 else 0

    total = wait_for(ended_calls)
    assert total == 3
    page = api.get("/api/cdrs", params={**search, "limit": 2}).json()
    assert len(page["hits"]) == 2 and page["hasMore"]
    export = api.get("/api/cdrs/export", params=search)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == total
    assert all(r["to"] == "echo" and r["status"] == "ended" for r in rows)
    assert all("packets_out" in json.loads(r["media_stats"])["a"] for r in rows)
    started = [r["started_at"] for r in rows]
    assert started == sorted(started)  # oldest first
    since = rows[-1]["started_at"]
    later = api.get("/api/cdrs", params={"to": "echo", "startedAfter": since}).json()
    assert later["total"] >= 1 and all(h["started"] >= since for h in later["hits"])


# --- the command line -----------------------------------------------------------------------


def test_mediaserver_call_places_an_outbound_call(
    server: ServerProcess, api: httpx.Client, tmp_path: Path
) -> None:
    sid = create_scenario(api, "cli-call", OUTBOUND)
    with SippBackground(scenario="uas_answer_then_bye", variables={"hold_ms": 10000},
                       workdir=tmp_path / "uas") as uas:  # fmt: skip
        done = mediaserver(
            "call", uas.uri, "--scenario", "cli-call", "--var", "$who=cli",
            "--var", "$count=3", "--server", server.api_url,
            env={"MEDIASERVER_API_KEY": server.api_key},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runid = done.stdout.strip()
        assert runid.startswith("api:")
        uas.wait(timeout=20).assert_ok(calls=1)

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/scenarios/{sid}/runs/{runid}").json()
        return run if run["status"] != "running" else None

    run = wait_for(finished, timeout=15)
    assert run["variables"]["$who"] == "cli" and run["variables"]["$count"] == 3
    assert run["variables"]["$dial"]["status"] == "answered"
    assert "outbound run for cli, dial answered" in server.log_text()


def test_cli_finds_the_key_and_reports_errors(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "api-key").write_text(server.api_key + "\n")
    listed = mediaserver("calls", "--server", server.api_url, "--data-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr

    wrong = mediaserver("calls", "--server", server.api_url, "--api-key", "wrong")
    assert wrong.returncode == 1 and "wrong API key" in wrong.stderr
    unknown = mediaserver("call", "sip:x@127.0.0.1:9", "--scenario", "no-such-scenario",
                          "--server", server.api_url, "--api-key", server.api_key)  # fmt: skip
    assert unknown.returncode == 1 and "no scenario named 'no-such-scenario'" in unknown.stderr
    down = mediaserver("calls", "--server", "http://127.0.0.1:9", "--api-key", "k")
    assert down.returncode == 1 and "cannot reach the server" in down.stderr
    nokey = mediaserver(
        "calls", "--server", server.api_url, "--data-dir", str(tmp_path / "none"),
        env={"MEDIASERVER_API_KEY": ""},
    )  # fmt: skip
    assert nokey.returncode == 1 and "no API key" in nokey.stderr
