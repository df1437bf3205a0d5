"""The recordings index: create, finish, search, read flag, delete."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mediaserver.store import (
    CallEnd,
    Conflict,
    NewCall,
    NewRecording,
    RecordingFilter,
    Store,
    UnknownReference,
)
from mediaserver.store.recordings import RecordingKind
from tests.support.hand_clock import T0, HandClock


@pytest.fixture
async def store(database_target: str | Path, clock: HandClock) -> AsyncIterator[Store]:
    opened = await Store.open(database_target, clock=clock)
    yield opened
    await opened.close()


async def test_a_recording_from_start_to_ready(store: Store, tmp_path: Path) -> None:
    scenario = await store.scenarios.create("ivr", "x")
    call = await store.calls.create(
        NewCall(
            "inbound",
            "+33612345678",
            "+33199001234",
            T0,
            scenario_id=scenario.id,
            scenario_name="ivr",
        )
    )
    started = await store.recordings.create(
        NewRecording(
            path=str(tmp_path / "recordings" / "{id}.wav"),
            format="wav",
            call_id=call.id,
            channels=2,
            status="recording",
        )
    )
    assert re.fullmatch(r"[a-z0-9]{8}", started.id)
    assert started.path == str(tmp_path / "recordings" / f"{started.id}.wav")
    assert (started.status, started.duration_ms, started.size, started.created_at) == (
        "recording",
        0,
        0,
        T0,
    )
    assert (started.caller, started.callee, started.scenario_id, started.scenario_name) == (
        "+33612345678",
        "+33199001234",
        scenario.id,
        "ivr",
    )
    assert (started.read, started.read_at, started.kind, started.channels) == (
        False,
        None,
        "call",
        2,
    )
    ready = await store.recordings.finish(started.id, duration_ms=5200, size=83244)
    assert ready is not None
    assert (ready.status, ready.duration_ms, ready.size) == ("ready", 5200, 83244)
    assert await store.recordings.get(started.id) == ready
    assert await store.recordings.finish(started.id, duration_ms=1, size=1) is None  # once
    assert await store.recordings.get("nosuchid") is None


async def test_recording_ids_and_calls_are_checked(store: Store) -> None:
    given = await store.recordings.create(
        NewRecording("v/{id}.wav", "wav", kind="voicemail", id="k3j9x0aa")
    )
    assert (given.id, given.path, given.call_id, given.caller) == (
        "k3j9x0aa",
        "v/k3j9x0aa.wav",
        None,
        None,
    )
    with pytest.raises(Conflict):
        await store.recordings.create(NewRecording("x", "wav", id="k3j9x0aa"))
    with pytest.raises(UnknownReference) as unknown:
        await store.recordings.create(NewRecording("x", "wav", call_id="nosuchid"))
    assert unknown.value.field == "call_id"
    assert (await store.recordings.search()).total == 1


async def test_read_flag_keeps_the_first_read_time(store: Store, clock: HandClock) -> None:
    recording = await store.recordings.create(NewRecording("r.wav", "wav"))
    clock.now = T0 + timedelta(minutes=1)
    read = await store.recordings.set_read(recording.id, True)
    assert read is not None
    assert (read.read, read.read_at) == (True, T0 + timedelta(minutes=1))
    clock.now = T0 + timedelta(minutes=2)
    again = await store.recordings.set_read(recording.id, True)
    assert again is not None
    assert again.read_at == T0 + timedelta(minutes=1)
    unread = await store.recordings.set_read(recording.id, False)
    assert unread is not None
    assert (unread.read, unread.read_at) == (False, None)
    assert await store.recordings.set_read("nosuchid", True) is None


async def test_bulk_read_flag(store: Store) -> None:
    ids = [(await store.recordings.create(NewRecording(f"{i}.wav", "wav"))).id for i in range(4)]
    assert await store.recordings.set_read_many([*ids[:2], "nosuchid"], True) == 2
    assert (await store.recordings.search(RecordingFilter(read=True))).total == 2
    assert await store.recordings.set_read_many([], True) == 0
    assert await store.recordings.set_read_many(None, True) == 4
    assert (await store.recordings.search(RecordingFilter(read=False))).total == 0


async def test_delete_returns_the_paths_for_the_caller_to_delete(store: Store) -> None:
    ids = [
        (await store.recordings.create(NewRecording(f"rec/{{id}}-{i}.wav", "wav"))).id
        for i in range(4)
    ]
    assert await store.recordings.delete(ids[0]) == f"rec/{ids[0]}-0.wav"
    assert await store.recordings.delete(ids[0]) is None
    assert await store.recordings.delete_many([ids[1], "nosuchid"]) == [f"rec/{ids[1]}-1.wav"]
    assert await store.recordings.delete_many([]) == []
    assert sorted(await store.recordings.delete_many(None)) == sorted(
        [f"rec/{ids[2]}-2.wav", f"rec/{ids[3]}-3.wav"]
    )
    assert (await store.recordings.search()).total == 0


async def test_recording_search_filters_and_pages(store: Store, clock: HandClock) -> None:
    alice = await store.calls.create(NewCall("inbound", "alice", "ivr", T0))
    bob = await store.calls.create(NewCall("outbound", "ivr", "bob", T0))
    made = []
    specs: list[tuple[RecordingKind, str | None, int]] = [
        ("call", alice.id, 3000),
        ("voicemail", alice.id, 12000),
        ("conference", None, 60000),
        ("call", bob.id, 500),
    ]
    for minute, (kind, call_id, duration) in enumerate(specs):
        clock.now = T0 + timedelta(minutes=minute)
        made.append(
            await store.recordings.create(
                NewRecording(
                    f"{minute}.wav",
                    "wav",
                    kind=kind,
                    call_id=call_id,
                    duration_ms=duration,
                )
            )
        )
    clock.now = T0 + timedelta(hours=1)
    await store.recordings.set_read(made[1].id, True)

    async def ids(**filters: object) -> list[str]:
        page = await store.recordings.search(RecordingFilter(**filters), limit=50)  # type: ignore[arg-type]
        return [r.id for r in page.hits]

    assert await ids() == [r.id for r in reversed(made)]
    assert await ids(kind="call") == [made[3].id, made[0].id]
    assert await ids(call_id=alice.id) == [made[1].id, made[0].id]
    assert await ids(caller="alice") == [made[1].id, made[0].id]
    assert await ids(callee="bob") == [made[3].id]
    assert await ids(read=True) == [made[1].id]
    assert await ids(read=False, kind="call") == [made[3].id, made[0].id]
    assert await ids(min_duration_ms=3000) == [made[2].id, made[1].id, made[0].id]
    assert await ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)) == [
        made[2].id,
        made[1].id,
    ]
    assert await ids(read_since=T0 + timedelta(minutes=30)) == [made[1].id]
    assert await ids(read_until=T0 + timedelta(minutes=30)) == []
    assert await ids(status="recording") == []

    page = await store.recordings.search(order="asc", limit=3, offset=2)
    assert ([r.id for r in page.hits], page.total, page.has_more) == (
        [made[2].id, made[3].id],
        4,
        False,
    )


async def test_a_recording_outlives_the_link_to_a_finished_call(store: Store) -> None:
    call = await store.calls.create(NewCall("inbound", "a", "b", T0))
    recording = await store.recordings.create(NewRecording("r.wav", "wav", call_id=call.id))
    await store.calls.finish(call.id, CallEnd(T0 + timedelta(seconds=3)))
    found = await store.recordings.get(recording.id)
    assert found is not None
    assert (found.call_id, found.caller) == (call.id, "a")


async def test_interrupted_recordings_are_measured_once(store: Store, tmp_path: Path) -> None:
    """After a crash: only interrupted rows still at size 0 are listed, and measured once."""
    cut = await store.recordings.create(
        NewRecording(path=str(tmp_path / "{id}.wav"), format="wav", status="recording")
    )
    live = await store.recordings.create(
        NewRecording(path=str(tmp_path / "{id}.wav"), format="wav", status="recording")
    )
    await store.mark_interrupted_calls()
    resumed = await store.recordings.create(
        NewRecording(path=str(tmp_path / "{id}.wav"), format="wav", status="recording")
    )
    assert sorted(r.id for r in await store.recordings.unmeasured()) == sorted([cut.id, live.id])
    measured = await store.recordings.measured(cut.id, duration_ms=6040, size=96_684)
    assert measured is not None
    assert (measured.status, measured.duration_ms, measured.size) == ("interrupted", 6040, 96_684)
    assert [r.id for r in await store.recordings.unmeasured()] == [live.id]
    # A recording still being written is not the recovery's to change.
    assert await store.recordings.measured(resumed.id, duration_ms=1, size=1) is None
