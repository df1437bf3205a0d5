"""Loading and validating scenario files.

Theory of operation: a scenario file is parsed by
:mod:`mediaserver.yamlsource`, which keeps the line and column of every key
and value, then walked once by :class:`_Validator`. The walk never stops at
the first mistake: each one is added to a :class:`Report` as a
``FILE:LINE:COL: message`` problem pointing at the key or value at fault,
and the walk goes on with the next key, so a user fixes a file in one pass.
Only a file without any problem becomes a :class:`Scenario`.

What is checked: the top-level keys; ``name`` against the file name;
``defaults``; ``variables`` (names, read-only built-ins, JSON-like values);
branch names; every action item (known keys, ``action: NAME@vN`` known and
available, parameters against the action's declaration in
:mod:`mediaserver.actions.params`, ``result`` and ``label``), recursively
through nested action lists, prompts and switch cases; JavaScript syntax of
every expression and ``${...}`` field (compiled, never run); duplicate
labels; and that every ``goto`` targets a label of its own action list or of
an enclosing one, which is the only jump the runner can make.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mediaserver.actions import registry
from mediaserver.actions.definition import ActionDefinition
from mediaserver.actions.expressions import Expression
from mediaserver.actions.model import (
    BRANCH_ALIASES,
    BRANCH_NAMES,
    CALLLESS_BRANCHES,
    ActionItem,
    Branch,
    Defaults,
    Scenario,
    frozen_mapping,
)
from mediaserver.actions.params import (
    LABEL_NAME,
    LANGUAGE,
    RATE,
    VOICE,
    Param,
    ParamError,
    ParamType,
    Report,
    check_mapping,
    convert,
    describe,
)
from mediaserver.actions.prompt import PromptItem, parse_prompt
from mediaserver.actions.variable_use import VariableUse
from mediaserver.actions.variables import (
    BUILTINS,
    VARIABLE_NAME,
    VariableError,
    check_name,
    check_value,
)
from mediaserver.actions.variables import parse_target as _parse_target
from mediaserver.yamlsource import (
    LocatedDict,
    LocatedList,
    Mark,
    Problem,
    ProblemsError,
    load_yaml,
    load_yaml_file,
)

__all__ = [
    "ActionItem",
    "Branch",
    "Defaults",
    "Scenario",
    "load_scenario",
    "load_scenario_data",
    "load_scenario_text",
    "load_scenarios",
]

TOP_LEVEL_KEYS = ("name", "defaults", "variables", "branches")
ITEM_KEYS = ("action", "params", "result", "label", "on-error")
_ACTION = re.compile(r"^([a-z][a-z0-9-]*)@v([0-9]+)$")
_SET_VALUE = Param("value", ParamType.EXPRESSION, "expression whose value is assigned")
_VARIABLE_PARAM = VARIABLE_NAME.pattern.removeprefix("^").removesuffix("$")
"""The pattern of a parameter that names a variable to set (foreach@v1's ``as``)."""


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate one file; raise :class:`ProblemsError` listing every problem."""
    file = os.fspath(path)
    return _build(load_yaml_file(file), file)


def load_scenario_text(text: str, filename: str) -> Scenario:
    """Load and validate scenario text; ``filename`` names it in problems and gives its name."""
    return _build(load_yaml(text, filename), filename)


def load_scenario_data(data: Any, filename: str) -> Scenario:
    """Validate a document that is already Python data (plain dicts and lists, as
    JSON gives); such data has no positions, so every problem is at 1:1. Its
    variables are not checked: the Call Flow Loop's come from the application."""
    return _build(data, filename, check_variables=False)


def load_scenarios(directory: str | os.PathLike[str]) -> tuple[dict[str, Scenario], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` of a folder: the valid scenarios by name, and all problems."""
    folder = Path(directory)
    scenarios: dict[str, Scenario] = {}
    problems: list[Problem] = []
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except OSError as exc:
        return {}, [Problem(str(folder), Mark(1, 1), f"cannot read folder: {exc.strerror}")]
    seen: dict[str, str] = {}
    for path in files:
        if path.stem in seen:
            message = f"scenario {path.stem!r} is already defined by {seen[path.stem]}"
            problems.append(Problem(str(path), Mark(1, 1), message))
            continue
        seen[path.stem] = str(path)
        try:
            scenarios[path.stem] = load_scenario(path)
        except ProblemsError as exc:
            problems.extend(exc.problems)
    return scenarios, problems


def _build(data: Any, file: str, *, check_variables: bool = True) -> Scenario:
    validator = _Validator(file, VariableUse() if check_variables else None)
    scenario = validator.scenario(data, Path(file).stem)
    if validator.report.problems or scenario is None:
        raise ProblemsError(validator.report.problems, validator.report.warnings)
    return replace(scenario, warnings=tuple(validator.report.warnings))


@dataclass(frozen=True)
class _GotoReference:
    label: str
    mark: Mark
    lists: tuple[int, ...]
    """The action lists the goto may jump in: its own, then each enclosing one."""


@dataclass(frozen=True)
class _Label:
    mark: Mark
    list_id: int


class _Validator:
    """Walks one scenario document; every problem goes to ``self.report``."""

    def __init__(self, file: str, variables: VariableUse | None = None) -> None:
        self.report = Report(file)
        self.variables = variables
        self._list_count = 0
        self._labels: dict[str, _Label] = {}
        self._gotos: list[_GotoReference] = []
        self._branch = ""
        self._branch_written = ""  # as the file names it (an alias stays an alias in messages)

    # -- the document --

    def scenario(self, data: Any, stem: str) -> Scenario | None:
        top = Mark(1, 1)
        if data is None:
            self.report.add(top, "the file is empty: a scenario needs branches:")
            return None
        if not isinstance(data, dict):
            self.report.add(_mark_of(data, top), "a scenario is a mapping with branches:")
            return None
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.report.add(
                    _key_mark(data, key, top),
                    f"unknown top-level key {key!r}"
                    f"{_did_you_mean(key, TOP_LEVEL_KEYS)}; expected name, defaults, "
                    "variables or branches",
                )
        name = data.get("name")
        if "name" in data and name != stem:
            self.report.add(
                _value_mark(data, "name", top),
                f"name {name!r} does not match the file name (expected {stem!r})",
            )
        defaults = self._defaults(data.get("defaults"), _value_mark(data, "defaults", top))
        variables = self._variables(data.get("variables"), _value_mark(data, "variables", top))
        if "branches" not in data:
            self.report.add(top, "missing branches: (inbound-call, api-initiated or inbound-sms)")
            return None
        branches = self._branches(data["branches"], _value_mark(data, "branches", top))
        if self.variables is not None:
            self.variables.declared.update(variables)
            errors, warnings = self.variables.problems(self.report.file)
            self.report.problems.extend(errors)
            self.report.warnings.extend(warnings)
        return Scenario(stem, self.report.file, defaults, variables, branches)

    def _defaults(self, value: Any, mark: Mark) -> Defaults:
        if value is None:
            return Defaults()
        if not isinstance(value, dict):
            self.report.add(mark, f"defaults: expected a mapping, got {describe(value)}")
            return Defaults()
        values = check_mapping(
            (LANGUAGE, VOICE, RATE), value, self.report, owner="defaults", mark=mark
        )
        base = Defaults()
        return Defaults(
            language=values.get("language") or base.language,
            voice=values.get("voice") or base.voice,
            rate=values.get("rate"),
        )

    def _variables(self, value: Any, mark: Mark) -> Mapping[str, Any]:
        if value is None:
            return frozen_mapping()
        if not isinstance(value, dict):
            self.report.add(
                mark, f"variables: expected a mapping of $name: value, got {describe(value)}"
            )
            return frozen_mapping()
        variables: dict[str, Any] = {}
        for name, initial in value.items():
            key_mark = _key_mark(value, name, mark)
            if self._variable_name(name, key_mark, "variables"):
                try:
                    check_value(initial, name)
                    variables[name] = initial
                except VariableError as exc:
                    self.report.add(_value_mark(value, name, mark), f"variables: {exc}")
        # A JSON round trip drops the located containers and copies nested values.
        return frozen_mapping(json.loads(json.dumps(variables)))

    def _variable_name(self, name: Any, mark: Mark, owner: str) -> bool:
        try:
            check_name(name)
        except VariableError as exc:
            self.report.add(mark, f"{owner}: {exc}")
            return False
        if name in BUILTINS:
            self.report.add(mark, f"{owner}: {name} is a read-only built-in variable")
            return False
        return True

    def _branches(self, value: Any, mark: Mark) -> Mapping[str, Branch]:
        if not isinstance(value, dict):
            self.report.add(mark, f"branches: expected a mapping, got {describe(value)}")
            return frozen_mapping()
        branches: dict[str, Branch] = {}
        written: dict[str, str] = {}  # canonical name: the name the file uses
        for name, body in value.items():
            key_mark = _key_mark(value, name, mark)
            known = (*BRANCH_NAMES, *BRANCH_ALIASES)
            if name not in known:
                self.report.add(
                    key_mark,
                    f"unknown branch {name!r}"
                    f"{_did_you_mean(name, known)}; branches are "
                    f"{', '.join(BRANCH_NAMES)} (inbound-message is another name for "
                    "inbound-sms)",
                )
                continue
            canonical = BRANCH_ALIASES.get(str(name), str(name))
            if canonical in branches:
                first = written[canonical]
                self.report.add(
                    key_mark,
                    f"{first} and {name} are two names of one branch; keep one of them",
                )
                continue
            written[canonical] = name
            body_mark = _value_mark(value, name, mark)
            if not isinstance(body, dict):
                self.report.add(
                    body_mark, f"{name}: expected a mapping with actions:, got {describe(body)}"
                )
                continue
            for key in body:
                if key != "actions":
                    self.report.add(
                        _key_mark(body, key, body_mark),
                        f"{name}: unknown key {key!r}; a branch has only actions:",
                    )
            if "actions" not in body:
                self.report.add(body_mark, f"{name}: missing actions:")
                continue
            self._branch = canonical
            self._branch_written = name
            self._labels = {}
            self._gotos = []
            actions = self._actions(
                body["actions"], _value_mark(body, "actions", body_mark), f"{name}.actions", ()
            )
            self._check_gotos()
            branches[canonical] = Branch(canonical, actions, key_mark)
        return MappingProxyType(branches)

    # -- action lists and items --

    def _actions(
        self, value: Any, mark: Mark, owner: str, enclosing: tuple[int, ...]
    ) -> tuple[ActionItem, ...]:
        if not isinstance(value, list):
            self.report.add(mark, f"{owner}: expected a list of actions, got {describe(value)}")
            return ()
        self._list_count += 1
        lists = (self._list_count, *enclosing)
        items: list[ActionItem] = []
        for index, entry in enumerate(value):
            entry_mark = value.item_mark(index) if isinstance(value, LocatedList) else mark
            item = self._item(entry, entry_mark, lists)
            if item is not None:
                items.append(item)
        return tuple(items)

    def _item(self, entry: Any, mark: Mark, lists: tuple[int, ...]) -> ActionItem | None:
        if not isinstance(entry, dict):
            self.report.add(
                mark, f"an action item is a mapping with action: NAME@vN, got {describe(entry)}"
            )
            return None
        for key in entry:
            if key not in ITEM_KEYS:
                self.report.add(
                    _key_mark(entry, key, mark),
                    f"unknown key {key!r} in an action "
                    f"item{_did_you_mean(key, ITEM_KEYS)}; allowed: "
                    f"{', '.join(ITEM_KEYS)}",
                )
        label = self._label(entry, mark, lists[0])
        definition = self._definition(entry, mark)
        key = definition.key if definition else "action"
        action_mark = _value_mark(entry, "action", mark)
        result = self._result(entry, mark, definition)
        params = self._params(entry, action_mark, definition, lists)
        on_error: tuple[ActionItem, ...] | None = None
        if "on-error" in entry:
            on_error = self._actions(
                entry["on-error"], _value_mark(entry, "on-error", mark), f"{key} on-error", lists
            )
        if definition is None or params is None:
            return None
        return ActionItem(
            definition.name, definition.version, params, result, label, on_error, mark
        )

    def _definition(self, entry: Mapping[Any, Any], mark: Mark) -> ActionDefinition | None:
        if "action" not in entry:
            self.report.add(mark, "missing action: NAME@vN (e.g. action: say@v1)")
            return None
        text = entry["action"]
        where = _value_mark(entry, "action", mark)
        match = _ACTION.match(text) if isinstance(text, str) else None
        if match is None:
            self.report.add(where, f"malformed action {text!r}: write NAME@vN, e.g. say@v1")
            return None
        name, version = match.group(1), int(match.group(2))
        definition = registry.lookup(name, version)
        if definition is not None:
            if not definition.needs_call or self._branch not in CALLLESS_BRANCHES:
                return definition
            self.report.add(
                where, f"{text} needs a call, and the {self._branch_written} branch has none"
            )
            return None
        existing = registry.versions(name)
        if existing:
            self.report.add(
                where,
                f"{text} does not exist; available: {', '.join(f'{name}@v{v}' for v in existing)}",
            )
        elif name in registry.PLANNED:
            if version == 1:
                self.report.add(where, f"{text} is not available in this version yet")
            else:
                self.report.add(where, f"{text} does not exist")
        else:
            self.report.add(
                where,
                f"unknown action {text!r}{_did_you_mean(name, registry.names(), suffix='@v1')}",
            )
        return None

    def _label(self, entry: Mapping[Any, Any], mark: Mark, list_id: int) -> str | None:
        if "label" not in entry:
            return None
        label = entry["label"]
        where = _value_mark(entry, "label", mark)
        if not isinstance(label, str) or not LABEL_NAME.match(label):
            self.report.add(
                where,
                f"invalid label {label!r}: use letters, digits, _ and -, "
                "starting with a letter or _",
            )
            return None
        first = self._labels.get(label)
        if first is not None:
            self.report.add(where, f"duplicate label {label!r} (first at line {first.mark.line})")
            return None
        self._labels[label] = _Label(where, list_id)
        return label

    def _result(
        self, entry: Mapping[Any, Any], mark: Mark, definition: ActionDefinition | None
    ) -> str | None:
        if "result" not in entry:
            return None
        result = entry["result"]
        where = _value_mark(entry, "result", mark)
        if definition is not None and definition.result is None:
            self.report.add(where, f"{definition.key} has no result to store")
            return None
        if not self._variable_name(result, where, "result"):
            return None
        self._sets(result)
        return str(result)

    def _params(
        self,
        entry: Mapping[Any, Any],
        action_mark: Mark,
        definition: ActionDefinition | None,
        lists: tuple[int, ...],
    ) -> Mapping[str, Any] | None:
        given = entry.get("params", {})
        where = _value_mark(entry, "params", action_mark)
        if given is None:
            given = {}
        if not isinstance(given, dict):
            self.report.add(where, f"params: expected a mapping, got {describe(given)}")
            return None
        if definition is None:
            return None
        before = len(self.report.problems)
        if definition.assignments:
            values = self._assignments(given, where, definition)
        else:
            values = check_mapping(
                definition.params,
                given,
                self.report,
                owner=definition.key,
                mark=where,
                structural=lambda param, value, at: self._structural(
                    param, value, at, lists, definition.key
                ),
            )
            self._note_variables(definition, given, values, where)
            for param in definition.params:
                if param.type is ParamType.LABEL and isinstance(values.get(param.name), str):
                    self._gotos.append(
                        _GotoReference(
                            values[param.name], _value_mark(given, param.name, where), lists
                        )
                    )
        if len(self.report.problems) > before:
            return None
        if definition.check is not None:
            for name, message in definition.check(values):
                self.report.add(_value_mark(given, name, where) if name else where, message)
        return frozen_mapping(values)

    def _assignments(
        self, given: Mapping[Any, Any], mark: Mark, definition: ActionDefinition
    ) -> dict[str, Any]:
        if not given:
            self.report.add(mark, f"{definition.key} needs at least one $name: expression pair")
        values: dict[str, Expression] = {}
        for target, value in given.items():
            key_mark = _key_mark(given, target, mark)
            try:
                parsed = _parse_target(target)
            except VariableError as exc:
                self.report.add(key_mark, f"{definition.key}: {exc}")
                continue
            if parsed.variable in BUILTINS:
                self.report.add(
                    key_mark,
                    f"{definition.key}: {parsed.variable} is a read-only built-in variable",
                )
                continue
            self._sets(parsed.variable)
            try:
                values[target] = convert(_SET_VALUE, value)
                self._reads(values[target], _value_mark(given, target, mark))
            except ParamError as exc:
                message = str(exc).removeprefix("value: ")
                self.report.add(
                    _value_mark(given, target, mark), f"{definition.key}: {target}: {message}"
                )
        return values

    # -- variables set and read (mediaserver.actions.variable_use) --

    def _sets(self, name: str) -> None:
        if self.variables is not None:
            self.variables.sets(self._branch, name)

    def _reads(self, value: Any, mark: Mark) -> None:
        if self.variables is not None:
            self.variables.reads(self._branch, value, mark)

    def _note_variables(
        self,
        definition: ActionDefinition,
        given: Mapping[Any, Any],
        values: Mapping[str, Any],
        mark: Mark,
    ) -> None:
        """What the checked parameters of one action item set and read (nested action
        lists are their own items)."""
        for param in definition.params:
            value = values.get(param.name)
            if value is None or param.type in (ParamType.ACTIONS, ParamType.CASES):
                continue
            if param.type is ParamType.PROMPT:
                for item in value:
                    if isinstance(item, PromptItem):
                        self._reads((item.text, item.url), item.mark)
            elif param.type is ParamType.STRING and param.pattern == _VARIABLE_PARAM:
                self._sets(value)
            else:
                self._reads(value, _value_mark(given, param.name, mark))

    def _structural(
        self, param: Param, value: Any, mark: Mark, lists: tuple[int, ...], owner: str
    ) -> Any:
        name = f"{owner} {param.name}"
        if param.type is ParamType.ACTIONS:
            return self._actions(value, mark, name, lists)
        if param.type is ParamType.PROMPT:
            return parse_prompt(value, mark, f"{owner}: {param.name}", self.report)
        return self._cases(value, mark, name, lists)

    def _cases(
        self, value: Any, mark: Mark, owner: str, lists: tuple[int, ...]
    ) -> Mapping[str, tuple[ActionItem, ...]]:
        if not isinstance(value, dict):
            self.report.add(
                mark, f"{owner}: expected {ParamType.CASES.value}, got {describe(value)}"
            )
            return frozen_mapping()
        cases: dict[str, tuple[ActionItem, ...]] = {}
        firsts: dict[str, Any] = {}
        for key, actions in value.items():
            text = _case_text(key)
            key_mark = _key_mark(value, key, mark)
            if text in firsts:
                self.report.add(
                    key_mark, f"{owner}: case {key!r} is the same value as case {firsts[text]!r}"
                )
            firsts.setdefault(text, key)
            cases[text] = self._actions(
                actions, _value_mark(value, key, mark), f"{owner} {key!r}", lists
            )
        return frozen_mapping(cases)

    def _check_gotos(self) -> None:
        for goto in self._gotos:
            target = self._labels.get(goto.label)
            if target is None:
                self.report.add(
                    goto.mark,
                    f"goto@v1: no label {goto.label!r} in the "
                    f"{self._branch_written} branch"
                    f"{_did_you_mean(goto.label, list(self._labels))}",
                )
            elif target.list_id not in goto.lists:
                self.report.add(
                    goto.mark,
                    f"goto@v1: label {goto.label!r} (line "
                    f"{target.mark.line}) is inside another action list; goto can "
                    "only jump within its own list or out to an enclosing one",
                )


def _case_text(key: Any) -> str:
    """A YAML case key as JavaScript's String() would write the same value."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def _did_you_mean(word: Any, choices: Any, suffix: str = "") -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]}{suffix}?)" if close else ""


def _mark_of(value: Any, fallback: Mark) -> Mark:
    return getattr(value, "mark", fallback)


def _key_mark(container: Any, key: Any, fallback: Mark) -> Mark:
    return container.key_mark(key) if isinstance(container, LocatedDict) else fallback


def _value_mark(container: Any, key: Any, fallback: Mark) -> Mark:
    if isinstance(container, LocatedDict) and key in container:
        return container.value_mark(key)
    return fallback
