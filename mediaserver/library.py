"""The scenarios the server can run, by name, and the routing table.

Scenarios come from two places: the YAML files of ``scenarios_dir`` (loaded
and validated at start-up, so a broken file stops the server from starting,
and again on SIGHUP, when they replace the file scenarios as one set: see
:mod:`mediaserver.reload`) and those created through the API (validated
before they are stored, so a stored scenario is always runnable). Both are
kept in the store, where each has an id that runs and call records refer to.

Routing maps a called number or user to a scenario name: numbers attached
through the API first (they change routing live), then the config's
``routes``, then its ``"*"`` fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from mediaserver.actions.model import Scenario
from mediaserver.actions.scenario import load_scenario_text, load_scenarios
from mediaserver.log import get_logger
from mediaserver.store import Store
from mediaserver.yamlsource import Mark, Problem, ProblemsError

log = get_logger("library")


class ScenarioLibrary:
    def __init__(self, scenarios_dir: Path) -> None:
        self.scenarios_dir = scenarios_dir
        self._scenarios: dict[str, Scenario] = {}
        self._ids: dict[str, str] = {}  # name -> store id
        self._files: dict[str, str] = {}  # name -> YAML text, for file scenarios

    def load_files(self) -> list[Problem]:
        """Load and validate every scenario file; the problems found (none: all good)."""
        files = read_scenario_files(self.scenarios_dir)
        self._scenarios.update(files.scenarios)
        self._files.update(files.sources)
        for name, scenario in files.scenarios.items():
            for warning in scenario.warnings:  # likely mistakes that do not stop it loading
                log.warning("scenario warning", scenario=name, problem=str(warning))
        return files.problems

    def file_sources(self) -> dict[str, str]:
        """The YAML text of each file scenario now runnable, by name."""
        return dict(self._files)

    def api_names(self) -> set[str]:
        """Names of the runnable scenarios created through the API."""
        return set(self._scenarios) - set(self._files)

    def replace_files(self, files: ScenarioFiles, ids: dict[str, str]) -> None:
        """Make ``files`` the file scenarios (with their store ``ids``): those no longer
        there stop being runnable; API-created ones stay. Calls already running keep
        the Scenario object they started with."""
        for name in set(self._files) - set(files.sources):
            self._scenarios.pop(name, None)
            self._ids.pop(name, None)
        self._files = dict(files.sources)
        self._scenarios.update(files.scenarios)
        self._ids.update(ids)

    async def sync(self, store: Store) -> None:
        """Give file scenarios their store ids and load the API-created ones."""
        for name, source in self._files.items():
            record = await store.scenarios.sync_file(name, source)
            self._ids[name] = record.id
        page = await store.scenarios.search(origin="api", limit=100_000)
        for record in page.hits:
            try:
                self._scenarios[record.name] = load_scenario_text(
                    record.source, f"{record.name}.yaml"
                )
            except ProblemsError as exc:
                log.error("stored scenario no longer valid", scenario=record.name, errors=str(exc))
                continue
            self._ids[record.name] = record.id

    def get(self, name: str) -> Scenario | None:
        return self._scenarios.get(name)

    def store_id(self, name: str) -> str | None:
        return self._ids.get(name)

    def names(self) -> list[str]:
        return sorted(self._scenarios)

    def validate(self, name: str, source: str) -> Scenario:
        """The scenario ``source`` would be; ProblemsError with every mistake."""
        return load_scenario_text(source, f"{name}.yaml")

    def put(self, name: str, store_id: str, scenario: Scenario) -> None:
        """Make a validated (and stored) scenario runnable under ``name``."""
        self._scenarios[name] = scenario
        self._ids[name] = store_id

    def remove(self, name: str) -> None:
        self._scenarios.pop(name, None)
        self._ids.pop(name, None)


@dataclass(frozen=True)
class ScenarioFiles:
    """The scenario files of a folder as read at one moment."""

    scenarios: dict[str, Scenario]  # the valid ones, by name (the file's stem)
    sources: dict[str, str]  # their YAML text, by name
    problems: list[Problem]  # every mistake found, in any file


def read_scenario_files(folder: Path) -> ScenarioFiles:
    """Load and validate every file of ``folder``; safe in a worker thread (the
    expression checker keeps one quickjs context per thread)."""
    scenarios, problems = load_scenarios(folder)
    sources: dict[str, str] = {}
    for name, scenario in scenarios.items():
        try:
            sources[name] = Path(scenario.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # removed or rewritten since it was parsed
            problems.append(Problem(str(scenario.file), Mark(1, 1), f"cannot read file: {exc}"))
    valid = {name: scenario for name, scenario in scenarios.items() if name in sources}
    return ScenarioFiles(valid, sources, problems)


class Router:
    """Called number or user -> scenario name: the numbers attached through the API
    first, then the config's ``routes``, then its ``*`` route."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = dict(routes)
        self._numbers: dict[str, str] = {}  # attached through the API: number -> scenario name

    async def load(self, store: Store) -> None:
        self._numbers = {n.number: n.scenario_name for n in await store.numbers.all()}

    def __call__(self, called: str) -> str | None:
        return self._numbers.get(called) or self.routes.get(called) or self.routes.get("*")

    @property
    def numbers(self) -> Mapping[str, str]:
        """The attached numbers (read-only; changed by the methods below, as the store is)."""
        return MappingProxyType(self._numbers)

    def attach(self, number: str, scenario_name: str) -> None:
        self._numbers[number] = scenario_name

    def detach(self, number: str) -> None:
        self._numbers.pop(number, None)

    def rename(self, old: str, new: str) -> None:
        """A scenario was renamed: its numbers lead to the new name."""
        for number, target in self._numbers.items():
            if target == old:
                self._numbers[number] = new

    def forget(self, scenario_name: str) -> None:
        """A scenario was deleted: its numbers lead nowhere now."""
        for number in [n for n, target in self._numbers.items() if target == scenario_name]:
            del self._numbers[number]
