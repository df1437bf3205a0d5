"""Parsing a callback response into typed actions, with every mistake located.

Seed, "Callback Response": ``{"actions": [...], "name", "comments"}``; a bare
list of actions and a single action object (as the DETECT example shows) are
taken too. Seed, "Action Types": every action has ``type``, ``params``,
``name`` and ``comments``; a few keep more next to ``type`` (IF's
``condition``/``then``/``orElse``, FOREACH's ``then``, COLLECT's child
``actions``, SESSIONDATA's ``session_data``, ``events`` handlers). An object
without ``type`` whose keys are all ``$names`` is a variable assignment
("Variable Handling").

:func:`parse_response` returns a :class:`~.model.Response` or raises
:class:`ResponseError` listing every problem, each naming the action by its
path and type and the field at fault::

    actions[1] (COLLECT): params.timeout: expected a whole number of milliseconds, got '5'
    actions[4].then[0] (GOTO): params.label: LABEL 'menu' does not exist; GOTO jumps ...

Each type's fields are read by a function of :mod:`.parse_media` or
:mod:`.parse_flow`. Parameters the seed documents but this server cannot
honour are refused with "not supported by this server: why" rather than
ignored (each reason is in docs/callflow.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mediaserver.actions.expressions import ExpressionError, check_expression
from mediaserver.actions.variables import BUILTINS, VariableError, parse_target
from mediaserver.callflow import model as m
from mediaserver.callflow import parse_flow, parse_media
from mediaserver.callflow.fields import ActionReader, Fields, shown
from mediaserver.callflow.variables import NATIVE_CONSTANTS


class ResponseError(ValueError):
    """A response that cannot be run; ``problems`` lists every mistake."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# -- The whole response ----------------------------------------------------------------------


def parse_response(data: Any) -> m.Response:
    """The typed actions of a response; :class:`ResponseError` with every problem."""
    problems: list[str] = []
    name: str | None = None
    if isinstance(data, dict) and "actions" in data:
        fields = Fields(data, "the response", problems)
        name = fields.string("name")
        fields.string("comments")
        fields.finish(("actions",))
        raw = data["actions"]
    elif isinstance(data, dict) and "type" in data:
        raw = [data]
    elif isinstance(data, list):
        raw = data
    else:
        raise ResponseError(
            [f'the response did not contain JSON actions: expected {{"actions": [...]}}, '
             f"got {shown(data)}"]
        )  # fmt: skip
    actions = parse_list(raw, "actions", problems)
    _check_labels(actions, problems)
    if problems:
        raise ResponseError(problems)
    return m.Response(actions, name)


def parse_list(value: Any, path: str, problems: list[str]) -> m.Actions:
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of actions, got {shown(value)}")
        return ()
    out: list[m.Action] = []
    for index, entry in enumerate(value):
        action = parse_action(entry, f"{path}[{index}]", problems)
        if action is not None:
            out.append(action)
    return tuple(out)


def parse_action(entry: Any, path: str, problems: list[str]) -> m.Action | None:
    if not isinstance(entry, dict):
        problems.append(f"{path}: expected an action object, got {shown(entry)}")
        return None
    if "type" not in entry:
        if entry and all(isinstance(key, str) and key.startswith("$") for key in entry):
            return _assign(entry, path, problems)
        problems.append(f"{path}: missing type (or $variable assignments)")
        return None
    kind = entry["type"]
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        close = difflib.get_close_matches(str(kind).upper(), list(_PARSERS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{path}: unknown action type {shown(kind)}{hint}")
        return None
    return parser(ActionReader(entry, path, kind, problems, parse_list))


def _assign(entry: Mapping[str, Any], path: str, problems: list[str]) -> m.Assign:
    """``{"$var": "expression"}``. Seed: the value is an expression in a string; a
    non-string JSON value is taken as a literal here. Targets that are native
    constants are dropped ("attempts to change their values will fail silently")."""
    pairs: list[tuple[str, Any]] = []
    owner = f"{path} (assignment)"
    for target, value in entry.items():
        try:
            parsed = parse_target(target)
        except VariableError as exc:
            problems.append(f"{owner}: {exc}")
            continue
        if parsed.variable in NATIVE_CONSTANTS:
            continue
        if parsed.variable in BUILTINS:
            problems.append(f"{owner}: {target}: {parsed.variable} is read-only")
            continue
        if isinstance(value, str):
            try:
                check_expression(value)
            except ExpressionError as exc:
                problems.append(f"{owner}: {target}: {exc}")
                continue
        pairs.append((target, value))
    return m.Assign(path, None, pairs=tuple(pairs))


_PARSERS: dict[str, Callable[[ActionReader], m.Action]] = {
    **parse_media.PARSERS,
    **parse_flow.PARSERS,
}
"""Seed, "Action Types": every type it lists."""


# -- Labels --------------------------------------------------------------------------------------


def _check_labels(actions: m.Actions, problems: list[str]) -> None:
    """LABEL names are unique in a response; a GOTO's label (when it is not
    interpolated) is in its own list or an enclosing one, where the loop can
    jump (seed, GOTO: "The call flow will fail if the specified LABEL does not
    exist within the same callback response")."""
    seen: dict[str, str] = {}
    for action in m.walk(actions):
        if isinstance(action, m.Label) and action.name is not None:
            if action.name in seen:
                problems.append(f"{action.where}: duplicate LABEL {action.name!r} "
                                f"(first at {seen[action.name]})")  # fmt: skip
            seen.setdefault(action.name, action.path)
    _check_gotos(actions, (), problems, set(seen))


def _check_gotos(
    actions: m.Actions, enclosing: tuple[frozenset[str], ...], problems: list[str], all_: set[str]
) -> None:
    here = frozenset(a.name for a in actions if isinstance(a, m.Label) and a.name)
    scopes = (here, *enclosing)
    for action in actions:
        if not isinstance(action, m.Goto) or "${" in action.label:
            pass  # an interpolated label is looked for when the GOTO runs
        elif not any(action.label in scope for scope in scopes):
            where = "is inside another list" if action.label in all_ else "does not exist"
            problems.append(
                f"{action.where}: params.label: LABEL {action.label!r} {where}; GOTO jumps "
                "to a LABEL of its own list or of an enclosing one"
            )
        for sublist in m.sublists(action):
            _check_gotos(sublist, scopes, problems, all_)
