"""Structured parameter values at run time: ``fetch@v1``'s ``body``, ``webhook@v1``'s ``data``.

A :attr:`~mediaserver.actions.params.ParamType.DATA` value is checked when
the scenario loads and kept as JSON-like values (lists as tuples) whose
strings are parsed :class:`~mediaserver.actions.expressions.Template`
objects. :func:`render` turns it into plain JSON-like values for the run:

- a string with ``${...}`` fields and text around them is interpolated, as
  everywhere else (the result is text);
- a string that is exactly one ``${...}`` and nothing else keeps the type of
  its value, so ``"${$order}"`` is the object itself and ``"${attempts}"``
  a number (``undefined`` becomes ``null``); ``${...expr}`` still spells;
- mapping keys are literal; numbers, booleans and ``null`` stay as written.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.expressions import ExpressionError, Sandbox, Template, TemplateField


def render(value: Any, sandbox: Sandbox) -> Any:
    """``value`` with every template evaluated (see the module docstring)."""
    if isinstance(value, Template):
        field = _single_field(value)
        if field is None:
            return sandbox.interpolate(value)
        # The value travels as JSON text, so interpolation's name lookup applies.
        wrapped = _as_json(field.expression)
        try:
            return json.loads(sandbox.interpolate(wrapped))[0]
        except ExpressionError as exc:  # name what the user wrote, not the wrapper
            raise ExpressionError(
                str(exc).replace(repr(wrapped.source), repr(value.source))
            ) from None
    if isinstance(value, list | tuple):
        return [render(item, sandbox) for item in value]
    if isinstance(value, Mapping):
        return {key: render(item, sandbox) for key, item in value.items()}
    return value


def _single_field(template: Template) -> TemplateField | None:
    if len(template.parts) != 1:
        return None
    part = template.parts[0]
    if isinstance(part, TemplateField) and not part.spell:
        return part
    return None


@functools.lru_cache(maxsize=512)
def _as_json(expression: str) -> Template:
    # In a one-element array, undefined becomes null instead of vanishing.
    wrapped = f"JSON.stringify([({expression}\n)])"
    return Template("${" + wrapped + "}", (TemplateField(wrapped),))
