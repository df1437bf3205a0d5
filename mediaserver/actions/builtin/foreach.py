"""``foreach@v1``: run a list of actions once for each item of a list or object.

As Voxology's FOREACH: ``items`` is evaluated once, when the action starts
(later changes to the variable it reads do not change the loop). For each
element, in order, three variables are set and ``do`` runs:

- ``as`` (``$item``): the element's value;
- ``key`` (``$key``): its index in a list, its property name in an object;
- ``index`` (``$index``): the loop counter, from 0.

They are ordinary variables: they keep their last values after the loop, and
nested loops need their own names. An object's properties come in
JavaScript's order (integer-like names first, ascending, then the others as
written). A ``goto`` in ``do`` may jump to a label of ``do`` or of an
enclosing list, which leaves the loop (the way to break out of it). Every
action run counts for the loop guard, so ``do`` must not be empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.interpreter import entries
from mediaserver.actions.params import Param, ParamType, describe
from mediaserver.actions.variables import BUILTINS, VARIABLE_NAME

_NAME_HINT = "a variable name ($, a letter, then letters, digits or _)"


async def foreach(context: ActionContext, params: Mapping[str, Any]) -> None:
    sandbox = context.sandbox
    items = sandbox.evaluate(params["items"])
    pairs = entries(items)
    if pairs is None:
        raise ActionFailed(
            f"items: {params['items']} is {describe(items)}; expected a list or an object"
        )
    context.log.debug("foreach", count=len(pairs))
    for index, (key, value) in enumerate(pairs):
        sandbox.assign(params["as"], value)
        sandbox.assign(params["key"], key)
        sandbox.assign(params["index"], index)
        await context.run_actions(params["do"])


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for param in ("as", "key", "index"):
        name = values.get(param)
        if not isinstance(name, str):
            continue
        if name in BUILTINS:
            problems.append((param, f"foreach@v1: {param}: {name} is a read-only built-in"))
        elif name in seen:
            problems.append((param, f"foreach@v1: {param}: {name} is already {seen[name]}'s"))
        seen[name] = param
    if not values.get("do"):
        problems.append(("do", "foreach@v1: do: give at least one action"))
    return problems


def _variable(name: str, default: str, doc: str) -> Param:
    return Param(
        name,
        ParamType.STRING,
        doc,
        default=default,
        pattern=VARIABLE_NAME.pattern.removeprefix("^").removesuffix("$"),
        pattern_hint=_NAME_HINT,
    )


FOREACH = ActionDefinition(
    name="foreach",
    version=1,
    summary="Run a list of actions once for each item of a list or object.",
    params=(
        Param(
            "items",
            ParamType.EXPRESSION,
            "JavaScript expression giving a list or an object, evaluated once",
            required=True,
        ),
        _variable("as", "$item", "variable set to each item's value"),
        _variable("key", "$key", "variable set to the item's index (list) or name (object)"),
        _variable("index", "$index", "variable set to the loop counter, from 0"),
        Param("do", ParamType.ACTIONS, "actions run for each item", required=True),
    ),
    run=foreach,
    check=_check,
    needs_call=False,
)

ACTIONS = (FOREACH,)
