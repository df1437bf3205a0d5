"""The scenarios the server can run, by name, and the routing table.

Scenarios come from two places: the YAML files of ``scenarios_dir`` (loaded
and validated at start-up, so a broken file stops the server from starting)
and those created through the API (validated before they are stored, so a
stored scenario is always runnable). Both are kept in the store, where each
has an id that runs and call records refer to.

Routing maps a called number or user to a scenario name: numbers attached
through the API first (they change routing live), then the config's
``routes``, then its ``"*"`` fallback.
"""

from __future__ import annotations

from pathlib import Path

from mediaserver.actions.model import Scenario
from mediaserver.actions.scenario import load_scenario_text, load_scenarios
from mediaserver.log import get_logger
from mediaserver.store import Store
from mediaserver.yamlsource import Problem, ProblemsError

log = get_logger("library")


class ScenarioLibrary:
    def __init__(self, scenarios_dir: Path) -> None:
        self.scenarios_dir = scenarios_dir
        self._scenarios: dict[str, Scenario] = {}
        self._ids: dict[str, str] = {}  # name -> store id
        self._files: dict[str, str] = {}  # name -> YAML text, for file scenarios

    def load_files(self) -> list[Problem]:
        """Load and validate every scenario file; the problems found (none: all good)."""
        scenarios, problems = load_scenarios(self.scenarios_dir)
        self._scenarios.update(scenarios)
        for name, scenario in scenarios.items():
            self._files[name] = Path(scenario.file).read_text(encoding="utf-8")
            for warning in scenario.warnings:  # likely mistakes that do not stop it loading
                log.warning("scenario warning", scenario=name, problem=str(warning))
        return problems

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


class Router:
    """Called number or user -> scenario name."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = dict(routes)
        self.numbers: dict[str, str] = {}  # attached through the API: number -> scenario name

    async def load(self, store: Store) -> None:
        self.numbers = {n.number: n.scenario_name for n in await store.numbers.all()}

    def __call__(self, called: str) -> str | None:
        return self.numbers.get(called) or self.routes.get(called) or self.routes.get("*")
