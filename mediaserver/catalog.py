"""The scenario catalog: creating, changing and deleting scenarios and attaching numbers.

A scenario lives in three places: the store (its record, its id, its
numbers), the library (what runs) and the router (which number leads to it).
:class:`Catalog` changes them together: every check first, then the store
write, then, with no await in between, the library and the router. A refused
change or a failed store write therefore leaves all three as they were.

Scenarios from ``scenarios_dir`` files (``origin: file``) are read-only here
(:class:`ReadOnly`), because the file would put them back at the next start
or reload; they can still have numbers attached. A scenario the config's
``routes`` lead to keeps its name and cannot be deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mediaserver.actions.model import Scenario
from mediaserver.audio_recorder import is_recording_line
from mediaserver.callflow.route import route_url
from mediaserver.config import scenario_file
from mediaserver.library import Router, ScenarioFiles, ScenarioLibrary, read_scenario_files
from mediaserver.log import get_logger
from mediaserver.numbers import NumberChange
from mediaserver.realtime.route import route_url as realtime_route_url
from mediaserver.runs import INBOUND_BRANCH
from mediaserver.store import Conflict, Store, UnknownReference
from mediaserver.store import Scenario as StoredScenario
from mediaserver.yamlsource import Mark, Problem, ProblemsError

log = get_logger("catalog")


class CatalogError(Exception):
    """A change the catalog refuses; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(CatalogError):
    """No such scenario, or the number is not attached to it."""


class ReadOnly(CatalogError):
    """The scenario comes from a file: edit the file and reload instead."""


class Unfit(CatalogError):
    """The scenario's script cannot do what its numbers or routes need of it."""


class Unavailable(CatalogError):
    """The store is not open (the server is starting or stopping)."""


@dataclass(frozen=True)
class Attached:
    """A number attached; ``previous``: the scenario id it was moved from, if another."""

    number: str
    previous: str | None


@dataclass(frozen=True)
class FilesReload:
    """The scenario files and routes a reload will put in place, checked and stored."""

    files: ScenarioFiles
    ids: dict[str, str]  # store id of each file scenario
    routes: dict[str, str]


class Catalog:
    def __init__(
        self, library: ScenarioLibrary, router: Router, store: Callable[[], Store | None]
    ) -> None:
        """``store``: the server's store, None while it is not open."""
        self.library = library
        self.router = router
        self._store_now = store
        # What each API scenario in the library was made from: (id, source), by name.
        self._api_sources: dict[str, tuple[str, str]] = {}
        # Told of every number attached or detached (the number webhooks), after the change.
        self.number_listeners: list[Callable[[NumberChange], None]] = []

    def _numbers_changed(self, changes: list[NumberChange]) -> None:
        for change in changes:
            for listener in self.number_listeners:
                listener(change)

    def _store(self) -> Store:
        store = self._store_now()
        if store is None:
            raise Unavailable("store", "the server is starting or stopping")
        return store

    # -- start, stop and reload ------------------------------------------------------------

    def load_files(self) -> None:
        """Load the scenario files and check the config's routes against them;
        ProblemsError listing every mistake (the server does not start)."""
        problems = self.library.load_files()
        problems += routing_problems(self.router.routes, self.library.get)
        if problems:
            raise ProblemsError(problems)

    async def open(self) -> None:
        """Once the store is open: give the file scenarios their store ids, load the
        API ones and the attached numbers."""
        await self.library.sync(self._store())
        await self.refresh()  # the numbers, and what each API scenario was made from

    def file_sources(self) -> dict[str, str]:
        """The YAML text of each file scenario now runnable, by name."""
        return self.library.file_sources()

    async def refresh(self) -> None:
        """Read the API scenarios and the attached numbers again: another node sharing
        the database changed them (:mod:`mediaserver.shared_state`). Scenarios whose
        text changed are validated again; one no longer valid is left out, logged."""
        store = self._store()
        page = await store.scenarios.search(origin="api", limit=100_000)
        stored = {record.name: record for record in page.hits}
        scenarios = {}
        for record in page.hits:
            if self._api_sources.get(record.name) == (record.id, record.source):
                continue
            try:
                scenarios[record.name] = self.library.validate(record.name, record.source)
            except ProblemsError as exc:
                log.error("stored scenario not valid", scenario=record.name, errors=str(exc))
        await self.router.load(store)
        # From here on no await: the library and the router change together.
        # Only names a read of the store gave: one created here meanwhile is kept.
        for name in set(self._api_sources) - set(stored):
            self._api_sources.pop(name)
            if name in self.library.api_names():
                self.library.remove(name)
        for name, scenario in scenarios.items():
            record = stored[name]
            self.library.put(name, record.id, scenario)
            self._api_sources[name] = (record.id, record.source)
        log.debug("catalog read", api_scenarios=len(stored), numbers=len(self.router.numbers))

    async def prepare_reload(self, routes: dict[str, str], config_file: Path) -> FilesReload:
        """Read the scenario files as they are now, check them and ``routes`` (the
        new config's, from ``config_file``) and store the files; nothing runs them
        until :meth:`apply_reload`. ProblemsError listing every mistake."""
        folder = self.library.scenarios_dir
        # In a thread: validating the example folder takes ~30 ms, over one media tick.
        files = await asyncio.to_thread(read_scenario_files, folder)
        problems = list(files.problems)
        problems += routing_problems(routes, files.scenarios.get)
        for key, target in routes.items():
            # A file with errors is among files.problems already; a missing one is not.
            # No scenario file: Call Control's, or the built-in recording line.
            parked = target.startswith("call-control:") or is_recording_line(target)
            url = route_url(target) or realtime_route_url(target)
            if url is None and not parked and scenario_file(folder, target) is None:
                message = f"routes.{key}: no scenario {target!r} in {folder}"
                problems.append(Problem(str(config_file), Mark(1, 1), message))
        for name in sorted(self.library.api_names() & set(files.sources)):
            message = (
                f"scenario file {name!r}: a scenario created through the API has that "
                "name; rename the file or the API scenario"
            )
            problems.append(Problem(str(files.scenarios[name].file), Mark(1, 1), message))
        if problems:
            raise ProblemsError(problems)
        ids: dict[str, str] = {}
        try:
            for name, source in files.sources.items():
                ids[name] = (await self._store().scenarios.sync_file(name, source)).id
        except Conflict as exc:  # an API scenario took the name meanwhile
            raise ProblemsError([Problem(str(config_file), Mark(1, 1), str(exc))]) from None
        return FilesReload(files, ids, dict(routes))

    def apply_reload(self, reload: FilesReload) -> None:
        """Run the reloaded files and route by the new routes, at once (no await):
        a call routed now sees all of the old or all of the new."""
        self.library.replace_files(reload.files, reload.ids)
        self.router.routes = dict(reload.routes)

    # -- reading ---------------------------------------------------------------------------

    async def get(self, sid: str) -> StoredScenario:
        record = await self._store().scenarios.get(sid)
        if record is None:
            raise NotFound("sid", f"no scenario {sid!r}")
        return record

    def validate(self, name: str, script: str) -> Scenario:
        """The scenario ``script`` would be; ProblemsError with every mistake."""
        return self.library.validate(name, script)

    def routed_by_config(self, name: str) -> bool:
        return name in self.router.routes.values()

    # -- changing ----------------------------------------------------------------------------

    async def create(self, name: str, script: str) -> StoredScenario:
        """Store a new API scenario and make it runnable; ProblemsError if it does not
        validate, Conflict if the name is taken."""
        scenario = self.validate(name, script)
        record = await self._store().scenarios.create(name, script, "api")
        self.library.put(record.name, record.id, scenario)
        return record

    async def update(self, sid: str, name: str | None, script: str | None) -> StoredScenario:
        """Rename and/or rewrite an API scenario (None: unchanged); its numbers follow
        a new name. Running calls keep the scenario they started with."""
        record = await self.get(sid)
        _writable(record)
        new_name = name if name is not None else record.name
        new_script = script if script is not None else record.source
        scenario = self.validate(new_name, new_script)
        if INBOUND_BRANCH not in scenario.branches and (
            record.numbers or self.routed_by_config(record.name)
        ):
            raise Unfit(
                "script",
                f"script: numbers or routes lead to this scenario, so it needs an "
                f"{INBOUND_BRANCH} branch",
            )
        if new_name != record.name and self.routed_by_config(record.name):
            message = f"the config's routes lead to {record.name!r}: it keeps its name"
            raise Conflict("name", message)
        updated = await self._store().scenarios.update(sid, name=new_name, source=new_script)
        if updated is None:
            raise NotFound("sid", f"no scenario {sid!r}")
        if updated.name != record.name:
            self.library.remove(record.name)
            self.router.rename(record.name, updated.name)
        self.library.put(updated.name, updated.id, scenario)
        return updated

    async def delete(self, sid: str) -> StoredScenario:
        """Delete an API scenario with its numbers (calls to them are then routed as
        if never attached) and its runs; the record as it was."""
        record = await self.get(sid)
        _writable(record)
        if self.routed_by_config(record.name):
            raise Conflict("sid", f"the config's routes lead to {record.name!r}; change them first")
        if not await self._store().scenarios.delete(sid):
            raise NotFound("sid", f"no scenario {sid!r}")
        self.library.remove(record.name)
        self.router.forget(record.name)
        self._numbers_changed([NumberChange(n, sid, record.name, False) for n in record.numbers])
        return record

    async def attach(self, sid: str, number: str) -> Attached:
        """Route ``number`` to the scenario (moving it from another); live at once."""
        record = await self.get(sid)
        scenario = self.library.get(record.name)
        if scenario is None or INBOUND_BRANCH not in scenario.branches:
            raise Conflict(
                "sid", f"scenario {record.name!r} has no {INBOUND_BRANCH} branch to run for calls"
            )
        try:
            previous = await self._store().numbers.attach(number, sid)
        except UnknownReference:
            raise NotFound("sid", f"no scenario {sid!r}") from None
        self.router.attach(number, record.name)
        self._numbers_changed([NumberChange(number, sid, record.name, True)])
        return Attached(number, previous if previous not in (None, sid) else None)

    async def detach(self, sid: str, number: str) -> None:
        """Stop routing ``number`` to the scenario; live at once."""
        record = await self.get(sid)
        if not await self._store().numbers.detach(number, sid):
            raise NotFound("number", f"{number} is not attached to scenario {sid}")
        self.router.detach(number)
        self._numbers_changed([NumberChange(number, sid, record.name, False)])


def _writable(record: StoredScenario) -> None:
    if record.origin == "file":
        raise ReadOnly(
            "sid",
            f"scenario {record.name!r} comes from a file in scenarios_dir; edit the file "
            "and reload the server (SIGHUP) instead",
        )


def routing_problems(
    routes: dict[str, str], scenario_of: Callable[[str], Scenario | None]
) -> list[Problem]:
    """A routed scenario must have the branch every routed call runs."""
    problems = []
    for target in sorted(set(routes.values())):
        scenario = scenario_of(target)
        if scenario is not None and INBOUND_BRANCH not in scenario.branches:
            problems.append(
                Problem(
                    str(scenario.file),
                    Mark(1, 1),
                    f"scenario {target!r} is routed to but has no {INBOUND_BRANCH} branch",
                )
            )
    return problems
