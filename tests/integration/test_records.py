"""Call records and runs written by a live server, and what survives a crash.

Calls are placed with sipp and a bare SIP peer; the SQLite database the
server writes is then read directly: one record per call with its numbers,
times, hangup cause and source, and a run per call; after a SIGKILL during a
call, a restart finds the database intact, the finished records there, and
the interrupted call recorded as such; a recording cut by the SIGKILL keeps
its audio and its index gets the duration and size of the repaired file; webhook
posts in retry when the server was killed are delivered, once, after the restart.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import WebPeer
from tests.support.rawsip import SipProbe, sdp_offer
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"


def database(server: ServerProcess) -> sqlite3.Connection:
    db = sqlite3.connect(server.data_dir / "data" / "mediaserver.db")
    db.row_factory = sqlite3.Row
    return db


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_each_call_leaves_a_record_and_a_run(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", routes={"echo": "echo"}, scenarios=SCENARIOS)
    try:
        run_sipp(server.target, scenario="uac", service="echo", calls=3, duration_ms=500,
                 workdir=tmp_path / "sipp").assert_ok(calls=3)  # fmt: skip
        db = database(server)
        # Records are written off the call path: wait for the calls and their runs.
        wait_for(
            lambda: (
                db.execute("SELECT count(*) FROM calls WHERE status='ended'").fetchone()[0] == 3
                and db.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone()[0]
                == 0
            )
        )
        rows = db.execute("SELECT * FROM calls ORDER BY started_at").fetchall()
        for row in rows:
            assert row["direction"] == "inbound"
            assert row["from_number"] == "sipp" and row["number"] == "echo"
            assert row["scenario_name"] == "echo"
            assert row["hangup_source"] == "caller" and row["hangup_cause"] == "normal_clearing"
            assert row["sip_status"] == 200
            assert row["answered_at"] is not None and row["ended_at"] >= row["answered_at"]
            assert 300 <= row["duration_answered_ms"] <= 5000
            run = db.execute("SELECT * FROM runs WHERE id = ?", (row["run_id"],)).fetchone()
            assert run is not None and run["status"] == "hangup" and run["branch"] == "inbound-call"
    finally:
        server.stop()


def test_sigkill_during_a_call_then_restart(tmp_path: Path) -> None:
    data = tmp_path / "server"
    server = start_server(data, routes={"echo": "echo"}, scenarios=SCENARIOS)
    run_sipp(server.target, scenario="uac", service="echo", calls=2, workdir=tmp_path / "sipp"
             ).assert_ok(calls=2)  # fmt: skip
    with SipProbe(server.sip_port) as caller:
        caller.send(caller.build("INVITE", body=sdp_offer()))
        ok = caller.expect_final()
        assert ok.status == 200
        caller.send(caller.build("ACK", call_id=ok.header("call-id"), to_tag=ok.to_tag))
        db = database(server)
        # The journal writes off the call path: wait until both sipp calls are ended
        # and the probe's call is live in the database before killing the server.
        wait_for(
            lambda: (
                sorted(r[0] for r in db.execute("SELECT status FROM calls"))
                == ["ended", "ended", "live"]
            )
        )
        db.close()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)

    again = start_server(data, routes={"echo": "echo"}, scenarios=SCENARIOS)
    try:
        db = database(again)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = sorted(r[0] for r in db.execute("SELECT status FROM calls"))
        assert statuses == ["ended", "ended", "interrupted"]
        interrupted = db.execute("SELECT * FROM calls WHERE status='interrupted'").fetchone()
        assert interrupted["ended_at"] is not None
        run = db.execute(
            "SELECT status FROM runs WHERE id = ?", (interrupted["run_id"],)
        ).fetchone()
        assert run["status"] == "interrupted"
        assert '"recovered from an unclean stop"' in again.log_text()
        # And it takes calls again.
        run_sipp(again.target, scenario="uac", service="echo", calls=1, workdir=tmp_path / "sipp2"
                 ).assert_ok(calls=1)  # fmt: skip
    finally:
        again.stop()


def test_sigkill_with_webhooks_in_retry_then_restart_delivers_them_once(tmp_path: Path) -> None:
    data = tmp_path / "server"
    with WebPeer() as web:
        web.answer("/events", 500, "down")
        hooks = f'webhooks:\n  - url: {web.url("/events")}\n    events: ["v2.call.*"]\n'
        server = start_server(
            data, routes={"echo": "echo"}, scenarios=SCENARIOS, extra_config=hooks
        )
        run_sipp(server.target, scenario="uac", service="echo", calls=1, duration_ms=300,
                 workdir=tmp_path / "sipp").assert_ok(calls=1)  # fmt: skip
        db = database(server)
        # Both events of the call wait in the database: "started" for its retry, "ended"
        # behind it (a URL gets its events in order).
        pending = "SELECT count(*), max(attempts) FROM webhook_outbox WHERE state = 'pending'"
        wait_for(lambda: tuple(db.execute(pending).fetchone()) >= (2, 1))
        db.close()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)

        web.answer("/events", 200, {})
        seen = len(web.requests)
        again = start_server(data, routes={"echo": "echo"}, scenarios=SCENARIOS, extra_config=hooks)
        try:
            wait_for(lambda: len(web.requests) - seen >= 2)
            db = database(again)
            wait_for(
                lambda: (
                    [r[0] for r in db.execute("SELECT state FROM webhook_outbox")]
                    == ["delivered", "delivered"]
                )
            )
            delivered = [r.json() for r in web.requests[seen:]]
            assert [b["type"] for b in delivered] == [
                "v2.call.inbound.started",
                "v2.call.inbound.ended",
            ]
            assert len({b["id"] for b in delivered}) == 2
            assert delivered[0]["try"] >= 1  # a retry: the count goes on
        finally:
            again.stop()


REJECTS = {"notfound": "not_found", "unavailable": "unavailable", "declined": "declined"}


def test_a_rejected_call_records_the_q850_cause_of_its_reason(tmp_path: Path) -> None:
    """reject@v1's reasons leave their own Q.850 cause in the record (RFC 3398: 404 -> 1,
    480 -> 20, 603 -> 21), not normal clearing's 16."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name, reason in REJECTS.items():
        (scenarios / f"{name}.yaml").write_text(
            "branches:\n  inbound-call:\n    actions:\n"
            f"      - action: reject@v1\n        params: {{reason: {reason}}}\n"
        )
    server = start_server(tmp_path / "server", routes={n: n for n in REJECTS}, scenarios=scenarios)
    try:
        statuses = {}
        with SipProbe(server.sip_port) as probe:
            for name in REJECTS:
                invite = probe.build("INVITE", user=name, body=sdp_offer(), call_id=f"q850-{name}")
                probe.send(invite)
                reply = probe.final_for(f"q850-{name}")
                probe.ack(invite, reply)
                statuses[name] = reply.status
        db = database(server)
        ended = "SELECT count(*) FROM calls WHERE status='ended'"
        wait_for(lambda: db.execute(ended).fetchone()[0] == len(REJECTS))
        rows = db.execute("SELECT * FROM calls").fetchall()
        causes = {r["sip_call_id"]: (r["hangup_cause"], r["hangup_cause_code"]) for r in rows}
    finally:
        server.stop()
    assert statuses == {"notfound": 404, "unavailable": 480, "declined": 603}
    assert causes == {
        "q850-notfound": ("not_found", 1),
        "q850-unavailable": ("unavailable", 20),
        "q850-declined": ("declined", 21),
    }


RECORD_AND_WAIT = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: record@v1
      - action: pause@v1
        params: {seconds: 60}
"""


def test_sigkill_while_recording_then_the_index_matches_the_file(tmp_path: Path) -> None:
    """The audio of a recording cut by kill -9 is kept; the restart indexes what it holds."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "rec.yaml").write_text(RECORD_AND_WAIT)
    data = tmp_path / "server"
    server = start_server(data, routes={"rec": "rec"}, scenarios=folder)
    with SipProbe(server.sip_port) as caller:
        caller.send(caller.build("INVITE", "rec", body=sdp_offer()))
        ok = caller.expect_final()
        assert ok.status == 200
        caller.send(caller.build("ACK", "rec", call_id=ok.header("call-id"), to_tag=ok.to_tag))
        db = database(server)
        wait_for(lambda: db.execute("SELECT count(*) FROM recordings").fetchone()[0] == 1)
        name = db.execute("SELECT path FROM recordings").fetchone()[0]  # indexed by file name
        path = server.data_dir / "data" / "recordings" / name
        db.close()
        # The recorder writes each second: wait for more than two of them on disk.
        wait_for(lambda: path.exists() and path.stat().st_size > 2.2 * 16000 + 44)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)

    again = start_server(data, routes={"rec": "rec"}, scenarios=folder)
    try:
        db = database(again)
        row = db.execute("SELECT * FROM recordings").fetchone()
        assert row["status"] == "interrupted"
        info = sf.info(str(path))
        assert info.frames / info.samplerate >= 2.0
        assert row["size"] == path.stat().st_size
        assert row["duration_ms"] == round(info.frames / info.samplerate * 1000)
        # Searches by duration find it.
        response = httpx.get(
            f"{again.api_url}/api/recordings",
            params={"minDuration": 2},
            headers={"X-API-Key": again.api_key},
        )
        assert response.status_code == 200, response.text
        assert [hit["sid"] for hit in response.json()["hits"]] == [row["id"]]
    finally:
        again.stop()
