"""The runs service (mediaserver/runs.py): starting, cancelling and injecting runs.

The server here is built and given its store but never listens; the calls
are a stand-in switch (placing real calls is covered by
tests/integration/test_api_calls.py), so these cases are the runs' own rules:
what is refused and why, which runs are kept while they go, and what the
journal records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mediaserver.config import load_config
from mediaserver.journal import RunStart
from mediaserver.runs import API_BRANCH, RunRefused, Runs
from mediaserver.server import Server
from mediaserver.sip.uac import TargetError
from mediaserver.store import Store


def branch(name: str, seconds: int) -> str:
    pause = f"      - action: pause@v1\n        params: {{seconds: {seconds}}}\n"
    return f"branches:\n  {name}:\n    actions:\n{pause}"


WAIT = branch("api-initiated", 30)
QUICK = branch("api-initiated", 0)
INBOUND_ONLY = "branches:\n  inbound-call:\n    actions:\n      - action: hangup@v1\n"
MESSAGE = branch("inbound-message", 30)


@dataclass
class LiveCall:
    id: str
    ended: bool = False


@dataclass
class Switch:
    """A call switch whose calls are listed but which can place none."""

    calls: list[Any] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    @property
    def active_calls(self) -> list[Any]:
        return [call for call in self.calls if not call.ended]

    async def originate(
        self,
        target: str,
        *,
        caller_id: str,
        headers: Mapping[str, str],
        parent: Any = None,
        run: RunStart | None = None,
    ) -> Any:
        self.asked.append(target)
        raise TargetError(f"cannot call {target!r}: no such host")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for name, text in [("wait", WAIT), ("quick", QUICK), ("inbound", INBOUND_ONLY)]:
        (folder / f"{name}.yaml").write_text(text)
    (folder / "message.yaml").write_text(MESSAGE)
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: .\nroutes: {}\n", encoding="utf-8")
    server = Server(load_config(config))
    server.store = await Store.open(tmp_path / "ms.db")
    await server.library.sync(server.store)
    server.journal.store = server.store
    server.journal.start()
    yield server
    await server.journal.stop()
    await server.store.close()


def switched(server: Server) -> tuple[Runs, Switch]:
    switch = Switch()
    server.runs.connect(switch, switch, server.actions)  # lists and places calls
    return server.runs, switch


async def finished(runs: Runs, run_id: str) -> None:
    for _ in range(200):  # bounded: 2 s
        if run_id not in runs.live():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} still going")


async def test_a_run_is_refused_for_an_unknown_scenario_or_one_without_the_branch(
    server: Server,
) -> None:
    runs, _ = switched(server)
    with pytest.raises(RunRefused) as unknown:
        await runs.start_run("nope")
    with pytest.raises(RunRefused) as no_branch:
        await runs.start_run("inbound")
    assert (unknown.value.field, no_branch.value.field) == ("scenario", "scenario")
    assert API_BRANCH in str(no_branch.value)
    assert runs.live() == []


async def test_an_offline_run_is_kept_until_it_ends_and_journalled(server: Server) -> None:
    runs, switch = switched(server)
    with pytest.raises(RunRefused) as refused:
        await runs.start_run("quick", variables={"who": "alice"})
    assert refused.value.field == "variables" and runs.live() == []
    run_id = await runs.start_run("quick", variables={"$who": "alice"})
    assert run_id.startswith("api:") and switch.asked == []
    await finished(runs, run_id)
    await server.journal.flush()
    assert server.store is not None
    sid = server.library.store_id("quick")
    assert sid is not None
    record = await server.store.runs.get(run_id, sid)
    assert record is not None and record.status == "completed"
    assert record.variables.get("$who") == "alice"


async def test_cancel_stops_a_run_still_going_and_only_once(server: Server) -> None:
    runs, _ = switched(server)
    run_id = await runs.start_run("wait")
    assert runs.live() == [run_id]
    assert runs.cancel_run(run_id)
    await finished(runs, run_id)
    assert not runs.cancel_run(run_id)
    assert not runs.cancel_run("api:unknown0")


async def test_a_target_that_cannot_be_called_refuses_the_run(server: Server) -> None:
    runs, switch = switched(server)
    with pytest.raises(RunRefused) as refused:
        await runs.start_run("wait", to="sip:bob@nowhere.invalid")
    assert refused.value.field == "to" and "nowhere.invalid" in str(refused.value)
    assert switch.asked == ["sip:bob@nowhere.invalid"] and runs.live() == []


async def test_actions_are_injected_only_into_a_live_call(server: Server) -> None:
    runs, switch = switched(server)
    switch.calls = [LiveCall("k3x9a0pq", ended=True), LiveCall("m2m2m2m2")]
    assert [call.id for call in runs.live_calls()] == ["m2m2m2m2"]
    assert runs.find_call("k3x9a0pq") is None
    with pytest.raises(RunRefused) as refused:
        runs.inject_actions("k3x9a0pq", [{"action": "hangup@v1"}])
    assert refused.value.field == "call"


async def test_a_message_run_is_kept_while_it_goes(server: Server) -> None:
    runs, _ = switched(server)
    runs.serve_message("message", {"from": "alice", "to": "bob", "text": "hi"})
    runs.serve_message("inbound", {"from": "alice", "to": "bob", "text": "hi"})  # no branch
    live = runs.live()
    assert len(live) == 1 and live[0].startswith("inbound-sms:")
    assert runs.cancel_run(live[0])
    await finished(runs, live[0])
