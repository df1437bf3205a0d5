"""Several servers (nodes) on one database: each row in flight names its node, and
start-up recovery closes only the restarting node's calls on a shared database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mediaserver.shared_state import Rereader
from mediaserver.store import (
    ApplicationSettings,
    Conflict,
    NewCall,
    NewRecording,
    NewSms,
    Store,
)
from mediaserver.store import scenarios as scenarios_module
from mediaserver.store.call_control import APPLICATIONS_CHANNEL
from mediaserver.store.scenarios import CATALOG_CHANNEL
from mediaserver.store.webhooks import WEBHOOKS_CHANNEL
from tests.support.postgres import PostgresCluster

T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)


async def test_recovery_closes_only_the_restarting_nodes_calls(
    database_target: str | Path, engine: str
) -> None:
    alpha = await Store.open(database_target, node="alpha")
    beta = await Store.open(database_target, node="beta")
    try:
        scenario = await alpha.scenarios.create("echo", "x")
        calls = {}
        for name, store in (("alpha", alpha), ("beta", beta)):
            run = await store.runs.create(scenario.id, "inbound-call")
            call = await store.calls.create(
                NewCall("inbound", "+33612345678", "echo", T0, run_id=run.id)
            )
            await store.recordings.create(
                NewRecording("{id}.wav", "wav", call_id=call.id, status="recording")
            )
            assert call.node == name
            calls[name] = call.id

        recovery = await beta.mark_interrupted_calls()  # beta restarts; alpha runs on

        alpha_call = await beta.calls.get(calls["alpha"])
        beta_call = await beta.calls.get(calls["beta"])
        assert alpha_call is not None and beta_call is not None
        assert beta_call.status == "interrupted"
        if engine == "postgresql":  # shared: alpha's call is alive on alpha
            assert recovery.calls == [calls["beta"]]
            assert len(recovery.runs) == len(recovery.recordings) == 1
            assert alpha_call.status == "live"
        else:  # an SQLite file is one server's: everything in it was that server's
            assert sorted(recovery.calls) == sorted(calls.values())
            assert alpha_call.status == "interrupted"
    finally:
        await alpha.close()
        await beta.close()


async def test_rows_written_before_node_names_are_every_nodes(
    database_target: str | Path,
) -> None:
    store = await Store.open(database_target, node="alpha")
    try:
        old = await store.calls.create(NewCall("inbound", "+33612345678", "echo", T0))
        async with store.db.transaction() as tx:
            await tx.execute("UPDATE calls SET node = '' WHERE id = ?", (old.id,))
        assert (await store.mark_interrupted_calls()).calls == [old.id]
    finally:
        await store.close()


async def test_changes_are_told_to_the_other_nodes_at_commit(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.create_database()
    alpha = await Store.open(url, node="alpha")
    beta = await Store.open(url, node="beta")
    heard: dict[str, asyncio.Event] = {CATALOG_CHANNEL: asyncio.Event()}
    heard[WEBHOOKS_CHANNEL] = asyncio.Event()
    heard[APPLICATIONS_CHANNEL] = asyncio.Event()
    try:
        for channel, event in heard.items():
            await beta.db.listen(channel, event.set)
        with pytest.raises(RuntimeError):  # rolled back: nothing to tell
            async with alpha.db.transaction() as tx:
                await tx.notify(CATALOG_CHANNEL)
                raise RuntimeError("undo")
        scenario = await alpha.scenarios.create("ivr", "x")
        await asyncio.wait_for(heard[CATALOG_CHANNEL].wait(), 10)
        assert not heard[WEBHOOKS_CHANNEL].is_set()
        heard[CATALOG_CHANNEL].clear()
        await alpha.numbers.attach("+33199001234", scenario.id)
        await asyncio.wait_for(heard[CATALOG_CHANNEL].wait(), 10)
        await alpha.webhooks.create("http://127.0.0.1:9/hook")
        await asyncio.wait_for(heard[WEBHOOKS_CHANNEL].wait(), 10)
        await alpha.applications.create(
            ApplicationSettings(application_name="cc", webhook_event_url="http://x")
        )
        await asyncio.wait_for(heard[APPLICATIONS_CHANNEL].wait(), 10)
    finally:
        await alpha.close()
        await beta.close()


async def test_a_burst_of_pokes_rereads_once_more_after_the_running_one() -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def reread() -> None:
        started.append(len(started))
        await release.wait()

    rereader = Rereader("test", reread)
    rereader.poke()
    await asyncio.sleep(0)
    for _ in range(5):
        rereader.poke()  # while the first runs: one more, not five
    release.set()
    for _ in range(100):
        if rereader.done == 2:
            break
        await asyncio.sleep(0.01)
    assert (started, rereader.done) == ([0, 1], 2)
    rereader.poke()
    await rereader.stop()
    rereader.poke()  # stopped: pokes are ignored
    assert rereader.done == 2


async def test_sms_on_their_way_and_conversions_are_the_sending_nodes(
    database_target: str | Path, engine: str
) -> None:
    alpha = await Store.open(database_target, node="alpha")
    beta = await Store.open(database_target, node="beta")
    try:
        sent = {}
        converting = {}
        for name, store in (("alpha", alpha), ("beta", beta)):
            sms = NewSms(f"sms{name}", "outbound", "+331", "+332", "hi", "gsm", 1, None, "pending")
            sent[name] = (await store.sms.create(sms)).id
            converting[name] = (await store.audio_files.create(name, status="processing")).id

        expired = await beta.sms.expire_unfinished("beta restarted")
        resumed = [f.id for f in await beta.audio_files.in_status("processing")]

        if engine == "postgresql":  # alpha's SMS waits for its answer on alpha
            assert expired == [sent["beta"]]
            assert resumed == [converting["beta"]]
            alpha_sms = await alpha.sms.get(sent["alpha"])
            assert alpha_sms is not None and alpha_sms.status == "pending"
        else:
            assert sorted(expired) == sorted(sent.values())
            assert sorted(resumed) == sorted(converting.values())
    finally:
        await alpha.close()
        await beta.close()


async def test_a_name_taken_by_another_node_meanwhile_is_a_conflict(
    database_target: str | Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await Store.open(database_target, node="alpha")
    beta = await Store.open(database_target, node="beta")
    try:
        await alpha.scenarios.create("ivr", "x")

        async def checked_before_alpha_wrote(*_: object) -> None:
            return None  # beta's check ran before alpha's insert committed

        monkeypatch.setattr(scenarios_module, "_check_name_free", checked_before_alpha_wrote)
        with pytest.raises(Conflict, match="already exists") as refused:
            await beta.scenarios.create("ivr", "y")
        assert refused.value.field == "name"
        assert (await beta.scenarios.search()).total == 1
    finally:
        await alpha.close()
        await beta.close()
