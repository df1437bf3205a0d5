"""Scenario variables: their names, the values they may hold, and assignment paths.

A variable is written ``$name`` (SPEC section 3). Its value is JSON-like:
``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list`` and ``dict``
with string keys, nested at most :data:`MAX_DEPTH` deep. That is what
JavaScript expressions can hand back through ``JSON.stringify`` and what
the API can hand in, so a value survives the trip between Python, the
sandbox and storage unchanged.

An assignment target (``set@v1`` keys, ``result:``) is a variable name
optionally followed by a path into it, as in the Voxology Call Flow Loop:
``$myObj.foo``, ``$list[0]``, ``$obj["some key"]``. Only literal property
names and indexes are allowed, so every target can be checked when the
scenario is loaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VARIABLE_NAME = re.compile(r"^\$[a-zA-Z][a-zA-Z0-9_]{0,254}$")
"""What a variable name must look like (SPEC section 3)."""

BUILTINS: Mapping[str, str] = {
    "$call": "the call: id, from, to, direction, sip_call_id, started_at, answered_at, headers",
    "$digits": "the digits of the last gather@v1",
    "$recording": "the last recording: id, path, duration",
    "$dial": "the last dial@v1: status, duration, target",
    "$detection": "the last detect@v1: result, reason, greeting, beep_hz",
    "$queue": "the last queue@v1: name, command, result, caller a bridge-next took",
    "$now": "the current time in epoch milliseconds",
    "$run": "this run: id, scenario, branch",
}
"""Read-only variables the runner maintains; scenarios may read but never assign them."""

MAX_DEPTH = 64
"""Deepest nesting of lists and objects a variable may hold."""

_PATH_STEP = re.compile(
    r"""\.(?P<prop>[A-Za-z_$][A-Za-z0-9_$]*)"""
    r"""|\[(?P<index>0|[1-9][0-9]{0,8})\]"""
    r"""|\[(?P<quote>["'])(?P<key>(?:(?!(?P=quote))[^\\])*)(?P=quote)\]"""
)


class VariableError(ValueError):
    """A bad variable name, target or value; the message says what and where."""


@dataclass(frozen=True)
class Target:
    """Where an assignment stores its value: a variable and a path inside it."""

    variable: str
    path: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        text = self.variable
        for step in self.path:
            text += f"[{step}]" if isinstance(step, int) else f".{step}"
        return text


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid variable name, else raise :class:`VariableError`."""
    if not isinstance(name, str) or not VARIABLE_NAME.match(name):
        raise VariableError(
            f"invalid variable name {name!r}: write $ then a letter, then letters, "
            "digits or _ (at most 255 characters)"
        )
    return name


def parse_target(text: object) -> Target:
    """Parse ``$name``, ``$name.prop``, ``$name[0]`` or ``$name["key"]`` chains."""
    if not isinstance(text, str):
        raise VariableError(f"invalid assignment target {text!r}: expected $name")
    match = re.match(r"\$[a-zA-Z][a-zA-Z0-9_]*", text)
    if match is None:
        raise VariableError(f"invalid assignment target {text!r}: expected $name")
    variable = check_name(match.group(0))
    path: list[str | int] = []
    position = match.end()
    while position < len(text):
        step = _PATH_STEP.match(text, position)
        if step is None:
            raise VariableError(
                f"invalid assignment target {text!r} at character {position + 1}: "
                'expected .property, [index] or ["key"]'
            )
        if step.group("prop") is not None:
            path.append(step.group("prop"))
        elif step.group("index") is not None:
            path.append(int(step.group("index")))
        else:
            path.append(step.group("key"))
        position = step.end()
    return Target(variable, tuple(path))


def check_value(value: Any, where: str = "value") -> None:
    """Raise :class:`VariableError` unless ``value`` is JSON-like (see module docstring)."""
    _check_value(value, where, 0)


def _check_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise VariableError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VariableError(f"{where} is {value}, which is not a finite number")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise VariableError(f"{where} has a key {key!r} that is not a string")
            _check_value(item, f"{where}.{key}", depth + 1)
        return
    raise VariableError(f"{where} is a {type(value).__name__}, which is not a JSON value")


def store(root: Any, target: Target, value: Any) -> Any:
    """Put ``value`` at ``target.path`` inside ``root`` (mutated in place) and return the root.

    Like JavaScript, a missing property of an object is created; unlike it,
    a list index may only replace an item or append one (no holes).
    """
    if not target.path:
        return value
    container = root
    reached = target.variable
    for step in target.path[:-1]:
        container = _step_into(container, step, reached)
        reached += f"[{step}]" if isinstance(step, int) else f".{step}"
    last = target.path[-1]
    if isinstance(container, dict):
        container[str(last)] = value
    elif isinstance(container, list) and isinstance(last, int):
        if last > len(container):
            raise VariableError(
                f"cannot set {target}: index {last} is past the end of {reached} "
                f"(length {len(container)})"
            )
        if last == len(container):
            container.append(value)
        else:
            container[last] = value
    else:
        raise VariableError(f"cannot set {target}: {reached} is {_describe(container)}")
    return root


def _step_into(container: Any, step: str | int, reached: str) -> Any:
    if isinstance(container, dict) and str(step) in container:
        return container[str(step)]
    if isinstance(container, list) and isinstance(step, int) and step < len(container):
        return container[step]
    shown = f"{reached}[{step}]" if isinstance(step, int) else f"{reached}.{step}"
    raise VariableError(f"{shown} is undefined")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "not an object"
