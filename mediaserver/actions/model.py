"""The immutable model of a loaded scenario.

A :class:`Scenario` is what :mod:`mediaserver.actions.scenario` builds from a
YAML file once every check has passed, and what a
:class:`mediaserver.actions.runner.Run` executes. Nothing in it changes
after loading: parameters are already converted to their runtime form
(floats of seconds, parsed templates, syntax-checked expressions, nested
action lists as tuples), so running never re-validates and many calls can
share one scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mediaserver.yamlsource import Mark, Problem

BRANCH_NAMES = ("inbound-call", "api-initiated", "inbound-sms")
"""Branches a scenario may define (SPEC section 3), named as in the Callr seed."""

BRANCH_ALIASES = {"inbound-message": "inbound-sms"}
"""Other names a scenario may give a branch: ``inbound-message``, this server's
first name for the branch a SIP MESSAGE runs, is kept for existing scenarios."""

CALLLESS_BRANCHES = frozenset({"inbound-sms"})
"""Branches that run without a call, so actions needing one are refused there."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Defaults:
    """Scenario-wide speech settings, used where an action leaves them out."""

    language: str = "en-US"
    voice: str = "female"
    rate: float | None = None


@dataclass(frozen=True, eq=False)
class ActionItem:
    """One action of an action list, as written in the scenario.

    ``on_error`` is ``None`` when the item has no ``on-error:``; an empty
    tuple means "ignore failures of this action".
    """

    name: str
    version: int
    params: Mapping[str, Any]
    result: str | None
    label: str | None
    on_error: tuple[ActionItem, ...] | None
    mark: Mark

    @property
    def key(self) -> str:
        """``name@vN``, the registry key."""
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True, eq=False)
class Branch:
    """The action list run for one kind of event (``inbound-call``, ...)."""

    name: str
    actions: tuple[ActionItem, ...]
    mark: Mark = field(default=Mark(1, 1))


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario file."""

    name: str
    file: str
    defaults: Defaults
    variables: Mapping[str, Any]
    branches: Mapping[str, Branch]
    warnings: tuple[Problem, ...] = ()
    """Likely mistakes found when it was loaded (e.g. a variable read but never set)."""

    def where(self, item: ActionItem) -> str:
        """``FILE:LINE`` of an action, for messages."""
        return f"{self.file}:{item.mark.line}"


ScenarioCompiler = Callable[[Any, str], Scenario]
"""``compile(data, filename)``: a scenario document already parsed into Python data
(dicts and lists) checked against every action and built into a :class:`Scenario`;
``ProblemsError`` naming each mistake. The server's is
:func:`mediaserver.actions.scenario.load_scenario_data`; the Call Flow Loop is handed
it (through :class:`~mediaserver.actions.callapi.ServerApi`) rather than importing it."""


def frozen_mapping(values: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only view over a copy of ``values`` (order kept)."""
    return MappingProxyType(dict(values)) if values else _EMPTY
