"""Scenarios, the numbers attached to them, and runs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mediaserver.store import Conflict, Store, UnknownReference
from tests.support.hand_clock import T0, HandClock


@pytest.fixture
async def store(database_target: str | Path, clock: HandClock) -> AsyncIterator[Store]:
    opened = await Store.open(database_target, clock=clock)
    yield opened
    await opened.close()


# -- scenarios -----------------------------------------------------------------------------


async def test_create_get_update_delete_a_scenario(store: Store, clock: HandClock) -> None:
    created = await store.scenarios.create("Call Forwarding", "branches: {}\n")
    assert re.fullmatch(r"[a-z0-9]{8}", created.id)
    assert created.name == "Call Forwarding"
    assert created.source == "branches: {}\n"
    assert created.origin == "api"
    assert created.created_at == created.updated_at == T0
    assert created.numbers == ()
    assert await store.scenarios.get(created.id) == created
    assert await store.scenarios.get_by_name("Call Forwarding") == created

    later = clock.advance(60)
    renamed = await store.scenarios.update(created.id, name="Forward")
    assert renamed is not None
    assert (renamed.name, renamed.source) == ("Forward", "branches: {}\n")
    assert (renamed.created_at, renamed.updated_at) == (T0, later)
    edited = await store.scenarios.update(created.id, source="new")
    assert edited is not None
    assert (edited.name, edited.source) == ("Forward", "new")

    assert await store.scenarios.delete(created.id)
    assert await store.scenarios.get(created.id) is None
    assert not await store.scenarios.delete(created.id)
    assert await store.scenarios.update(created.id, name="x") is None


async def test_scenario_names_are_unique(store: Store) -> None:
    first = await store.scenarios.create("ivr", "a")
    second = await store.scenarios.create("echo", "b")
    with pytest.raises(Conflict) as taken:
        await store.scenarios.create("ivr", "c")
    assert taken.value.field == "name"
    assert "ivr" in str(taken.value)
    with pytest.raises(Conflict):
        await store.scenarios.update(second.id, name="ivr")
    assert await store.scenarios.update(first.id, name="ivr") is not None  # its own name
    assert (await store.scenarios.search()).total == 2


async def test_sync_file_creates_updates_and_leaves_unchanged(
    store: Store, clock: HandClock
) -> None:
    first = await store.scenarios.sync_file("echo", "v1")
    assert (first.origin, first.source, first.updated_at) == ("file", "v1", T0)
    clock.advance(10)
    same = await store.scenarios.sync_file("echo", "v1")
    assert same == first  # unchanged text: not even updated_at moves
    later = clock.advance(10)
    changed = await store.scenarios.sync_file("echo", "v2")
    assert (changed.id, changed.source, changed.updated_at) == (first.id, "v2", later)


async def test_sync_file_refuses_the_name_of_an_api_scenario(store: Store) -> None:
    await store.scenarios.create("ivr", "api text")
    with pytest.raises(Conflict, match="rename the file"):
        await store.scenarios.sync_file("ivr", "file text")
    found = await store.scenarios.get_by_name("ivr")
    assert found is not None
    assert found.source == "api text"


async def test_scenario_search_filters_sorts_and_pages(store: Store, clock: HandClock) -> None:
    names = ["Zeta", "alpha", "50% off_sale", "Beta", "5000 off"]
    for name in names:
        await store.scenarios.create(name, "x", origin="file" if name == "Beta" else "api")
        clock.advance(1)

    newest_first = await store.scenarios.search()
    assert [s.name for s in newest_first.hits] == list(reversed(names))
    by_name = await store.scenarios.search(sort="name", order="asc")
    assert [s.name for s in by_name.hits] == sorted(names)
    by_created = await store.scenarios.search(sort="created", order="asc")
    assert [s.name for s in by_created.hits] == names

    # Partial, case-insensitive, with LIKE wildcards taken literally.
    assert [s.name for s in (await store.scenarios.search(name="ALP")).hits] == ["alpha"]
    assert [s.name for s in (await store.scenarios.search(name="0% off")).hits] == ["50% off_sale"]
    assert [s.name for s in (await store.scenarios.search(name="f_s")).hits] == ["50% off_sale"]
    assert [s.name for s in (await store.scenarios.search(origin="file")).hits] == ["Beta"]

    page = await store.scenarios.search(sort="name", order="asc", limit=2, offset=2)
    assert [s.name for s in page.hits] == sorted(names)[2:4]
    assert (page.total, page.offset, page.limit, page.has_more) == (5, 2, 2, True)
    last = await store.scenarios.search(sort="name", order="asc", limit=2, offset=4)
    assert (len(last.hits), last.has_more) == (1, False)
    beyond = await store.scenarios.search(limit=2, offset=50)
    assert (beyond.hits, beyond.total, beyond.has_more) == ([], 5, False)
    counted = await store.scenarios.search(limit=0)
    assert (counted.hits, counted.total) == ([], 5)


async def test_search_shows_each_scenario_with_its_numbers(store: Store) -> None:
    ivr = await store.scenarios.create("ivr", "x")
    echo = await store.scenarios.create("echo", "x")
    await store.numbers.attach("+33199001234", ivr.id)
    await store.numbers.attach("+15551230000", ivr.id)
    numbers = {s.name: s.numbers for s in (await store.scenarios.search()).hits}
    assert numbers == {"ivr": ("+15551230000", "+33199001234"), "echo": ()}
    assert await store.scenarios.get(echo.id) is not None


# -- numbers -------------------------------------------------------------------------------


async def test_attach_route_move_and_detach_a_number(store: Store, clock: HandClock) -> None:
    ivr = await store.scenarios.create("ivr", "x")
    echo = await store.scenarios.create("echo", "x")
    assert await store.numbers.attach("+33199001234", ivr.id) is None
    assert await store.numbers.scenario_for("+33199001234") == ivr.id
    clock.advance(5)
    assert await store.numbers.attach("+33199001234", ivr.id) == ivr.id  # already there
    (attachment,) = await store.numbers.all()
    assert attachment.attached_at == T0  # re-attaching keeps the original time

    assert await store.numbers.attach("+33199001234", echo.id) == ivr.id  # moved
    assert await store.numbers.scenario_for("+33199001234") == echo.id
    assert await store.numbers.of_scenario(ivr.id) == []
    assert await store.numbers.of_scenario(echo.id) == ["+33199001234"]

    assert not await store.numbers.detach("+33199001234", ivr.id)  # not attached there
    assert await store.numbers.detach("+33199001234", echo.id)
    assert await store.numbers.scenario_for("+33199001234") is None
    assert not await store.numbers.detach("+33199001234")


async def test_the_routing_table_names_the_scenarios(store: Store) -> None:
    ivr = await store.scenarios.create("ivr", "x")
    await store.numbers.attach("alice", ivr.id)
    await store.numbers.attach("+33199001234", ivr.id)
    assert [(a.number, a.scenario_id, a.scenario_name) for a in await store.numbers.all()] == [
        ("+33199001234", ivr.id, "ivr"),
        ("alice", ivr.id, "ivr"),
    ]


async def test_attaching_to_an_unknown_scenario_is_refused(store: Store) -> None:
    with pytest.raises(UnknownReference) as unknown:
        await store.numbers.attach("+33199001234", "nosuchid")
    assert unknown.value.field == "scenario_id"
    assert await store.numbers.all() == []


async def test_deleting_a_scenario_detaches_its_numbers_and_deletes_its_runs(
    store: Store,
) -> None:
    ivr = await store.scenarios.create("ivr", "x")
    await store.numbers.attach("+33199001234", ivr.id)
    run = await store.runs.create(ivr.id, "api-initiated")
    assert await store.scenarios.delete(ivr.id)
    assert await store.numbers.all() == []
    assert await store.runs.get(run.id) is None


# -- runs ----------------------------------------------------------------------------------


async def test_run_ids_follow_the_seed(store: Store) -> None:
    scenario = await store.scenarios.create("ivr", "x")
    api = await store.runs.create(scenario.id, "api-initiated")
    assert re.fullmatch(r"api:[a-z0-9]{8}", api.id)
    inbound = await store.runs.create(scenario.id, "inbound-call")
    assert re.fullmatch(r"inbound-call:[a-z0-9]{8}", inbound.id)
    given = await store.runs.create(scenario.id, "inbound-call", runid="inbound-call:k3j9x0aa")
    assert given.id == "inbound-call:k3j9x0aa"
    with pytest.raises(Conflict) as taken:
        await store.runs.create(scenario.id, "inbound-call", runid="inbound-call:k3j9x0aa")
    assert taken.value.field == "runid"


async def test_a_run_lives_and_finishes_once(store: Store, clock: HandClock) -> None:
    scenario = await store.scenarios.create("ivr", "x")
    run = await store.runs.create(scenario.id, "api-initiated", variables={"$to": "+331"})
    assert (run.status, run.variables, run.started_at, run.ended_at) == (
        "running",
        {"$to": "+331"},
        T0,
        None,
    )
    assert await store.runs.get(run.id, scenario.id) == run
    assert await store.runs.get(run.id, "otherone") is None
    assert await store.runs.get("api:nosuchid") is None

    assert await store.runs.save_variables(run.id, {"$to": "+331", "$step": 2})
    saved = await store.runs.get(run.id)
    assert saved is not None
    assert saved.variables == {"$to": "+331", "$step": 2}

    ended_at = clock.advance(3)
    finished = await store.runs.finish(run.id, "failed", error="say@v1 at ivr.yaml:3: boom")
    assert finished is not None
    assert (finished.status, finished.error, finished.ended_at) == (
        "failed",
        "say@v1 at ivr.yaml:3: boom",
        ended_at,
    )
    assert finished.variables == {"$to": "+331", "$step": 2}  # None keeps the saved ones
    assert await store.runs.finish(run.id, "completed") is None  # only once
    assert not await store.runs.save_variables(run.id, {})

    other = await store.runs.create(scenario.id, "api-initiated")
    done = await store.runs.finish(other.id, "completed", variables={"$x": [1, {"y": None}]})
    assert done is not None
    assert done.variables == {"$x": [1, {"y": None}]}


async def test_run_arguments_are_checked(store: Store) -> None:
    scenario = await store.scenarios.create("ivr", "x")
    with pytest.raises(UnknownReference):
        await store.runs.create("nosuchid", "api-initiated")
    with pytest.raises(TypeError):
        await store.runs.create(scenario.id, "api-initiated", variables={"$f": object()})
    run = await store.runs.create(scenario.id, "api-initiated")
    with pytest.raises(ValueError, match="a run ends as one of"):
        await store.runs.finish(run.id, "running")
    assert (await store.runs.search()).total == 1


async def test_run_search(store: Store, clock: HandClock) -> None:
    ivr = await store.scenarios.create("ivr", "x")
    echo = await store.scenarios.create("echo", "x")
    runs = []
    for scenario in (ivr, echo, ivr, ivr):
        runs.append(await store.runs.create(scenario.id, "api-initiated"))
        clock.advance(1)
    await store.runs.finish(runs[0].id, "completed")
    of_ivr = await store.runs.search(scenario_id=ivr.id)
    assert [r.id for r in of_ivr.hits] == [runs[3].id, runs[2].id, runs[0].id]
    running = await store.runs.search(scenario_id=ivr.id, status="running", order="asc")
    assert [r.id for r in running.hits] == [runs[2].id, runs[3].id]
    inclusive = await store.runs.search(
        since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=2)
    )
    assert [r.id for r in inclusive.hits] == [runs[2].id, runs[1].id]
    assert (await store.runs.search(limit=1, offset=1)).hits[0].id == runs[2].id
