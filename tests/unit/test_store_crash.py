"""Crash recovery: a process writing call records is SIGKILLed, the store opens again.

The child process runs the real store against a file in tmp_path, reports
on stdout what it has committed, and is killed with SIGKILL (no clean-up of
any kind runs). The parent then checks the file is sound, everything
committed is there, nothing uncommitted is, and start-up recovery marks what
was in flight ``interrupted``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mediaserver.store import CallEnd, CallFilter, NewCall, NewRecording, Store

T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from datetime import UTC, datetime, timedelta
    from mediaserver.store import CallEnd, NewCall, NewRecording, Store

    T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)

    def report(**fields):
        print(json.dumps(fields), flush=True)

    async def committed_then_held(store):
        scenario = await store.scenarios.create("crash", "branches: {}")
        run = await store.runs.create(scenario.id, "inbound-call", started_at=T0)
        ended, live = [], []
        for i in range(5):
            call = await store.calls.create(NewCall("inbound", f"+3361234{i}", "+331", T0))
            await store.calls.answered(call.id, T0 + timedelta(seconds=1))
            await store.calls.finish(call.id, CallEnd(T0 + timedelta(seconds=9), "normal_clearing",
                                                      "caller", 16, media_stats={"a": {"lost": i}}))
            ended.append(call.id)
        for i in range(3):
            call = await store.calls.create(NewCall("inbound", f"+4478{i}", "+331", T0,
                                                    run_id=run.id))
            live.append(call.id)
        await store.calls.answered(live[0], T0 + timedelta(seconds=2))
        ready = await store.recordings.create(NewRecording("{id}.wav", "wav", call_id=ended[0],
                                                           duration_ms=8000, size=128044))
        busy = await store.recordings.create(NewRecording("{id}.wav", "wav", call_id=live[0],
                                                          status="recording"))
        report(ended=ended, live=live, run=run.id, ready=ready.id, busy=busy.id)
        async with store.db.transaction() as tx:
            await tx.execute("UPDATE calls SET status = 'ended' WHERE id = ?", (live[1],))
            await tx.execute("DELETE FROM recordings WHERE id = ?", (ready.id,))
            report(holding=True)
            await asyncio.sleep(3600)

    async def storm(store):
        written = 0
        while True:
            call = await store.calls.create(NewCall("outbound", "+331", f"+1555{written}", T0))
            if written % 2:
                await store.calls.finish(call.id, CallEnd(T0 + timedelta(seconds=1)))
            written += 1
            if written == 50:
                report(storming=True)

    async def main(path, mode):
        store = await Store.open(path)
        await (committed_then_held(store) if mode == "held" else storm(store))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def run_child_until(path: Path, mode: str, until: str) -> list[dict[str, Any]]:
    """Start the child, read its reports until one has key ``until``, SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(path),
        mode,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None
    reports: list[dict[str, Any]] = []
    try:
        while not reports or until not in reports[-1]:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
            if not line:
                assert child.stderr is not None
                error = (await child.stderr.read()).decode()
                pytest.fail(f"the child exited before {until!r}:\n{error}")
            reports.append(json.loads(line))
        if mode == "storm":
            await asyncio.sleep(0.2)  # let it write on: the kill lands mid-write
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    return reports


async def test_sigkill_with_a_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    reports = await run_child_until(path, "held", until="holding")
    done = reports[0]

    store = await Store.open(path)
    try:
        assert await store.db.integrity_check() == ["ok"]
        assert await store.db.fetch_all("PRAGMA foreign_key_check") == []
        # Committed: the finished calls with everything they recorded.
        for i, call_id in enumerate(done["ended"]):
            record = await store.calls.get(call_id)
            assert record is not None
            assert (record.status, record.duration_ms, record.hangup_cause_code) == (
                "ended",
                9000,
                16,
            )
            assert record.media_stats == {"a": {"lost": i}}
        ready = await store.recordings.get(done["ready"])  # its deletion was never committed
        assert ready is not None
        assert (ready.status, ready.size) == ("ready", 128044)
        # The open transaction's change is gone: the second live call is still live.
        live = await store.calls.search(CallFilter(status="live"), limit=50)
        assert sorted(r.id for r in live.hits) == sorted(done["live"])

        restarted = T0 + timedelta(minutes=5)
        recovery = await store.mark_interrupted_calls(restarted)
        assert sorted(recovery.calls) == sorted(done["live"])
        assert recovery.runs == [done["run"]]
        assert recovery.recordings == [done["busy"]]
        for call_id in done["live"]:
            record = await store.calls.get(call_id)
            assert record is not None
            assert (record.status, record.ended_at, record.duration_ms) == (
                "interrupted",
                restarted,
                300_000,
            )
            assert (record.hangup_cause, record.hangup_source) == ("interrupted", "server")
        first = await store.calls.get(done["live"][0])
        assert first is not None
        assert first.duration_answered_ms == 298_000
        run = await store.runs.get(done["run"])
        assert run is not None
        assert (run.status, run.ended_at) == ("interrupted", restarted)
        assert run.error == "the server stopped before the run finished"
        busy = await store.recordings.get(done["busy"])
        assert busy is not None
        assert busy.status == "interrupted"
        assert (await store.calls.search(CallFilter(status="live"))).total == 0
        # Recovery is a no-op the second time.
        again = await store.mark_interrupted_calls(restarted + timedelta(hours=1))
        assert (again.calls, again.runs, again.recordings) == ([], [], [])
    finally:
        await store.close()


async def test_sigkill_during_a_write_storm(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    await run_child_until(path, "storm", until="storming")

    store = await Store.open(path)
    try:
        assert await store.db.integrity_check() == ["ok"]
        total = (await store.calls.search(limit=0)).total
        live = (await store.calls.search(CallFilter(status="live"), limit=0)).total
        assert total >= 50
        assert live >= 25
        recovery = await store.mark_interrupted_calls()
        assert len(recovery.calls) == live
        interrupted = await store.calls.search(CallFilter(status="interrupted"), limit=0)
        assert interrupted.total == live
        # The store takes new work at once.
        call = await store.calls.create(NewCall("inbound", "a", "b", T0))
        assert await store.calls.finish(call.id, CallEnd(T0 + timedelta(seconds=1)))
        await store.recordings.create(NewRecording("{id}.wav", "wav", call_id=call.id))
    finally:
        await store.close()
