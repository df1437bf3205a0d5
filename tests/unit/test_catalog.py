"""The scenario catalog (mediaserver/catalog.py): store, library and router change together.

Every case runs on a real store in a temporary folder; "unchanged" is checked
on all three: what the library runs, where the router sends each number, and
what the store holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediaserver.catalog import Catalog, NotFound, ReadOnly, Unavailable, Unfit
from mediaserver.library import Router, ScenarioLibrary
from mediaserver.numbers import NumberChange
from mediaserver.store import Conflict, Store
from mediaserver.yamlsource import ProblemsError

ECHO = "name: echo\nbranches:\n  inbound-call:\n    actions:\n      - action: answer@v1\n"
BYE = "branches:\n  inbound-call:\n    actions:\n      - action: hangup@v1\n"
NO_INBOUND = "branches:\n  api-initiated:\n    actions:\n      - action: hangup@v1\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "ms.db")
    yield store
    await store.close()


@pytest.fixture
async def catalog(tmp_path: Path, store: Store) -> Catalog:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "echo.yaml").write_text(ECHO)
    library = ScenarioLibrary(tmp_path / "scenarios")
    catalog = Catalog(library, Router({"100": "echo"}), lambda: store)
    catalog.load_files()
    await catalog.open()
    return catalog


def state(catalog: Catalog) -> tuple[list[str], dict[str, str | None], dict[str, str]]:
    """What runs, where numbers lead, which numbers are attached."""
    called = ["100", "+331", "+332", "other"]
    return (
        catalog.library.names(),
        {n: catalog.router(n) for n in called},
        dict(catalog.router.numbers),
    )


async def stored_numbers(store: Store) -> dict[str, str]:
    return {n.number: n.scenario_name for n in await store.numbers.all()}


async def test_create_makes_the_scenario_runnable_and_a_taken_name_changes_nothing(
    catalog: Catalog,
) -> None:
    record = await catalog.create("bye", BYE)
    assert catalog.library.get("bye") is not None
    assert catalog.library.store_id("bye") == record.id
    before = state(catalog)
    bye = catalog.library.get("bye")
    with pytest.raises(Conflict):
        await catalog.create("bye", BYE)  # the store refuses the name
    assert state(catalog) == before
    assert catalog.library.get("bye") is bye


async def test_an_invalid_script_is_refused_before_anything_is_written(
    catalog: Catalog, store: Store
) -> None:
    before = state(catalog)
    with pytest.raises(ProblemsError):
        await catalog.create("broken", "branches: [")
    assert state(catalog) == before
    assert await store.scenarios.get_by_name("broken") is None


async def test_rename_moves_the_numbers_in_the_router_and_the_store(
    catalog: Catalog, store: Store
) -> None:
    record = await catalog.create("bye", BYE)
    await catalog.attach(record.id, "+331")
    updated = await catalog.update(record.id, "farewell", None)
    assert updated.name == "farewell" and updated.numbers == ("+331",)
    assert catalog.router("+331") == "farewell"
    assert catalog.library.get("bye") is None and catalog.library.get("farewell") is not None
    assert catalog.library.store_id("farewell") == record.id
    assert await stored_numbers(store) == {"+331": "farewell"}


async def test_a_rename_the_store_refuses_leaves_library_and_router_as_they_were(
    catalog: Catalog, store: Store
) -> None:
    record = await catalog.create("bye", BYE)
    await catalog.create("taken", BYE)
    await catalog.attach(record.id, "+331")
    before = state(catalog)
    with pytest.raises(Conflict):
        await catalog.update(record.id, "taken", BYE)
    assert state(catalog) == before
    assert catalog.router("+331") == "bye"
    assert await stored_numbers(store) == {"+331": "bye"}


async def test_a_failed_store_write_leaves_library_and_router_as_they_were(
    catalog: Catalog, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = await catalog.create("bye", BYE)
    await catalog.attach(record.id, "+331")
    before = state(catalog)

    async def disk_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    # Reads still work; every write fails, as on a full disk.
    for table, method in [
        (store.scenarios, "create"),
        (store.scenarios, "update"),
        (store.scenarios, "delete"),
        (store.numbers, "attach"),
        (store.numbers, "detach"),
    ]:
        monkeypatch.setattr(table, method, disk_full)
    for change in (
        catalog.update(record.id, "farewell", None),
        catalog.update(record.id, None, NO_INBOUND.replace("api-initiated", "inbound-call")),
        catalog.delete(record.id),
        catalog.attach(record.id, "+332"),
        catalog.detach(record.id, "+331"),
        catalog.create("new", BYE),
    ):
        with pytest.raises(sqlite3.OperationalError):
            await change
        assert state(catalog) == before
    assert catalog.library.get("bye") is not None and catalog.library.get("farewell") is None


async def test_delete_forgets_the_numbers_attached_to_the_scenario(
    catalog: Catalog, store: Store
) -> None:
    record = await catalog.create("bye", BYE)
    await catalog.attach(record.id, "+331")
    await catalog.attach(record.id, "+332")
    deleted = await catalog.delete(record.id)
    assert deleted.name == "bye"
    assert catalog.library.get("bye") is None
    assert dict(catalog.router.numbers) == {}
    assert catalog.router("+331") is None  # no "*" route: nowhere to go
    assert await stored_numbers(store) == {}
    with pytest.raises(NotFound):
        await catalog.get(record.id)


async def test_file_scenarios_are_read_only_but_take_numbers(
    catalog: Catalog, store: Store
) -> None:
    echo = await store.scenarios.get_by_name("echo")
    assert echo is not None
    before = state(catalog)
    for change in (catalog.update(echo.id, None, ECHO), catalog.delete(echo.id)):
        with pytest.raises(ReadOnly):
            await change
        assert state(catalog) == before
    attached = await catalog.attach(echo.id, "+331")
    assert attached.previous is None and catalog.router("+331") == "echo"


async def test_a_routed_scenario_keeps_its_name_and_its_inbound_branch(catalog: Catalog) -> None:
    record = await catalog.create("bye", BYE)
    catalog.router.routes["200"] = "bye"  # as a config route would
    before = state(catalog)
    with pytest.raises(Conflict) as refused:
        await catalog.update(record.id, "farewell", None)
    assert refused.value.field == "name"
    with pytest.raises(Unfit):
        await catalog.update(record.id, None, NO_INBOUND)
    with pytest.raises(Conflict):
        await catalog.delete(record.id)
    assert state(catalog) == before


async def test_attach_moves_a_number_and_refuses_a_scenario_calls_cannot_run(
    catalog: Catalog,
) -> None:
    first = await catalog.create("bye", BYE)
    second = await catalog.create("bye2", BYE)
    offline = await catalog.create("offline", NO_INBOUND)
    await catalog.attach(first.id, "+331")
    moved = await catalog.attach(second.id, "+331")
    assert moved.previous == first.id and catalog.router("+331") == "bye2"
    assert (await catalog.attach(second.id, "+331")).previous is None  # already there
    before = state(catalog)
    with pytest.raises(Conflict):
        await catalog.attach(offline.id, "+332")
    assert state(catalog) == before


async def test_detach_only_from_its_scenario(catalog: Catalog, store: Store) -> None:
    first = await catalog.create("bye", BYE)
    second = await catalog.create("bye2", BYE)
    await catalog.attach(first.id, "+331")
    with pytest.raises(NotFound) as refused:
        await catalog.detach(second.id, "+331")
    assert refused.value.field == "number" and catalog.router("+331") == "bye"
    await catalog.detach(first.id, "+331")
    assert catalog.router("+331") is None and await stored_numbers(store) == {}


async def test_without_a_store_the_catalog_says_so(tmp_path: Path) -> None:
    catalog = Catalog(ScenarioLibrary(tmp_path), Router({}), lambda: None)
    with pytest.raises(Unavailable):
        await catalog.get("k3x9a0pq")


async def test_listeners_hear_each_number_attached_and_detached(catalog: Catalog) -> None:
    heard: list[NumberChange] = []
    catalog.number_listeners.append(heard.append)
    record = await catalog.create("bye", BYE)
    await catalog.attach(record.id, "+331")
    await catalog.attach(record.id, "+332")
    await catalog.detach(record.id, "+331")
    with pytest.raises(NotFound):
        await catalog.detach(record.id, "+331")  # refused: nothing to tell
    await catalog.delete(record.id)  # its remaining number goes with it
    assert heard == [
        NumberChange("+331", record.id, "bye", attached=True),
        NumberChange("+332", record.id, "bye", attached=True),
        NumberChange("+331", record.id, "bye", attached=False),
        NumberChange("+332", record.id, "bye", attached=False),
    ]
