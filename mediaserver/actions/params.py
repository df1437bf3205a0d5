"""Declarative action parameters: what each action accepts, checked at load time.

Theory of operation: an action declares its parameters as a tuple of
:class:`Param` (name, type, default, whether it is required, allowed
choices, numeric range, whether a string is a ``${...}`` template or a
JavaScript expression, and a one-line doc). The scenario validator walks a
document and calls :func:`convert` on every scalar value, which either
returns the value in the form the action implementation wants (a float of
seconds, a parsed :class:`Template`, an :class:`Expression` checked for
syntax, a normalised key string) or raises :class:`ParamError` whose message
names the parameter, what was expected and what was found. Structural
types (nested action lists, prompts, switch cases) are walked by the
validator itself, since they contain actions.

The same declarations are the single source for documentation: the type's
value is the human description ("a number of seconds").
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mediaserver.actions.callapi import DTMF_KEYS
from mediaserver.actions.expressions import Expression, ExpressionError, check_expression
from mediaserver.actions.expressions import parse_template as _parse_template
from mediaserver.actions.variables import VariableError, check_value
from mediaserver.yamlsource import LocatedDict, Mark, Problem

LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
"""What a ``label:`` must look like."""


class ParamType(enum.Enum):
    """Kinds of parameter; each value is how documentation and errors describe it."""

    STRING = "a string"
    INTEGER = "an integer"
    NUMBER = "a number"
    SECONDS = "a number of seconds"
    BOOLEAN = "true or false"
    KEYS = "a string of DTMF keys (0-9, *, #, A-D)"
    STOP_KEYS = "true, false or a string of DTMF keys"
    EXPRESSION = "a JavaScript expression"
    LABEL = "the label of an action in this or an enclosing action list"
    ACTIONS = "a list of actions"
    PROMPT = "a list of prompt items (say:, play: or pause:)"
    CASES = "a mapping from values to lists of actions"
    STRINGS = "a list of strings"
    HEADERS = "a mapping of header names to strings"
    DATA = "any YAML value (a mapping, a list, a string, a number...); strings are interpolated"


STRUCTURAL = frozenset({ParamType.ACTIONS, ParamType.PROMPT, ParamType.CASES})
"""Types whose values contain actions or prompt items and are walked by the validator."""


@dataclass(frozen=True)
class Param:
    """One parameter of an action."""

    name: str
    type: ParamType
    doc: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    interpolated: bool = False
    """A STRING whose ``${...}`` fields are evaluated when the action runs."""
    pattern: str | None = None
    """A regular expression a STRING must match, with ``pattern_hint`` explaining it."""
    pattern_hint: str = ""


class ParamError(ValueError):
    """A value that does not fit its :class:`Param`; the message is for the user."""


class Report:
    """Collects every problem found in one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, mark: Mark, message: str) -> None:
        self.problems.append(Problem(self.file, mark, message))


def describe(value: Any) -> str:
    """How an offending value is shown in a message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def convert(param: Param, value: Any) -> Any:
    """Check ``value`` against ``param`` and return it in its runtime form."""
    kind = param.type
    if kind in STRUCTURAL:
        raise TypeError(f"{param.name} is walked by the scenario validator")
    if kind is ParamType.EXPRESSION:
        return _expression(param, value)
    if kind is ParamType.BOOLEAN:
        if not isinstance(value, bool):
            raise _mistyped(param, value)
        return value
    if kind in (ParamType.INTEGER, ParamType.NUMBER, ParamType.SECONDS):
        return _number(param, value)
    if kind in (ParamType.KEYS, ParamType.STOP_KEYS):
        return _keys(param, value)
    if kind is ParamType.STRINGS:
        return _strings(param, value)
    if kind is ParamType.HEADERS:
        return _headers(param, value)
    if kind is ParamType.DATA:
        return _data(param, value)
    if not isinstance(value, str):
        raise _mistyped(param, value)
    if kind is ParamType.LABEL:
        if not LABEL_NAME.match(value):
            raise ParamError(f"{param.name}: {value!r} is not a valid label name")
        return value
    if param.choices and value not in param.choices:
        raise ParamError(f"{param.name}: must be one of {', '.join(param.choices)}; got {value!r}")
    if param.pattern is not None and not re.fullmatch(param.pattern, value):
        raise ParamError(f"{param.name}: {value!r} is not {param.pattern_hint}")
    if param.interpolated:
        try:
            return _parse_template(value)
        except ExpressionError as exc:
            raise ParamError(f"{param.name}: {exc}") from None
    return value


def _strings(param: Param, value: Any) -> tuple[Any, ...]:
    """A list of strings (one string alone counts as a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _mistyped(param, value)
    out = []
    for index, item in enumerate(items):
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)  # a number written without quotes
        if not isinstance(item, str) or not item.strip():
            raise ParamError(f"{param.name}[{index}]: expected a string, got {describe(item)}")
        try:
            out.append(_parse_template(item) if param.interpolated else item)
        except ExpressionError as exc:
            raise ParamError(f"{param.name}[{index}]: {exc}") from None
    return tuple(out)


_HEADER_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def _headers(param: Param, value: Any) -> dict[str, Any]:
    """Header names (RFC 3261 25.1 and RFC 9110 5.6.2 tokens) to values, maybe templates."""
    if not isinstance(value, dict):
        raise _mistyped(param, value)
    out: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ParamError(f"{param.name}: {name!r} is not a header name")
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or any(ch in item for ch in "\r\n"):
            raise ParamError(f"{param.name}.{name}: expected a one-line string")
        try:
            out[name] = _parse_template(item) if param.interpolated else item
        except ExpressionError as exc:
            raise ParamError(f"{param.name}.{name}: {exc}") from None
    return out


def _data(param: Param, value: Any) -> Any:
    """A JSON-like value whose strings become templates: lists are tuples, mappings dicts."""
    try:
        check_value(value, param.name)
    except VariableError as exc:
        raise ParamError(str(exc)) from None
    return _data_item(value, param.name)


def _data_item(value: Any, where: str) -> Any:
    if isinstance(value, str):
        try:
            return _parse_template(value)
        except ExpressionError as exc:
            raise ParamError(f"{where}: {exc}") from None
    if isinstance(value, list):
        return tuple(_data_item(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, dict):
        return {key: _data_item(item, f"{where}.{key}") for key, item in value.items()}
    return value


def _mistyped(param: Param, value: Any) -> ParamError:
    return ParamError(f"{param.name}: expected {param.type.value}, got {describe(value)}")


def _expression(param: Param, value: Any) -> Expression:
    if isinstance(value, str):
        try:
            return check_expression(value)
        except ExpressionError as exc:
            raise ParamError(f"{param.name}: {exc}") from None
    if value is None:
        raise ParamError(f"{param.name}: expected {param.type.value}, got nothing")
    try:
        check_value(value, param.name)
    except VariableError as exc:
        raise ParamError(str(exc)) from None
    # Non-string YAML values are literals, as the brief for set@v1 asks.
    return Expression.literal(value)


def _number(param: Param, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _mistyped(param, value)
    if param.type is ParamType.INTEGER and not isinstance(value, int):
        raise _mistyped(param, value)
    if not math.isfinite(value):
        raise ParamError(f"{param.name}: must be a finite number, got {value}")
    if param.minimum is not None and value < param.minimum:
        raise ParamError(f"{param.name}: must be at least {param.minimum:g}, got {value:g}")
    if param.maximum is not None and value > param.maximum:
        raise ParamError(f"{param.name}: must be at most {param.maximum:g}, got {value:g}")
    return float(value) if param.type is ParamType.SECONDS else value


def _keys(param: Param, value: Any) -> str:
    if param.type is ParamType.STOP_KEYS and isinstance(value, bool):
        return DTMF_KEYS if value else ""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ParamError(
            f'{param.name}: write DTMF keys as a quoted string, e.g. "{value}" '
            "(YAML reads unquoted digits as a number)"
        )
    if not isinstance(value, str) or not value:
        raise _mistyped(param, value)
    bad = sorted({key for key in value if key not in DTMF_KEYS})
    if bad:
        raise ParamError(
            f"{param.name}: {', '.join(repr(key) for key in bad)} "
            f"{'is not a DTMF key' if len(bad) == 1 else 'are not DTMF keys'} "
            "(use 0-9, *, #, A-D)"
        )
    return value


# -- Parameters several actions share ------------------------------------------------------

LANGUAGE = Param(
    "language",
    ParamType.STRING,
    "speech language as a BCP 47 tag; default: the scenario's defaults.language",
    pattern=r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*",
    pattern_hint="a language tag such as en-US or fr",
)
VOICE = Param(
    "voice",
    ParamType.STRING,
    "voice gender; default: the scenario's defaults.voice",
    choices=("female", "male"),
)
RATE = Param(
    "rate",
    ParamType.NUMBER,
    "speaking speed as a factor of the voice's normal speed (1.0); default: defaults.rate",
    minimum=0.5,
    maximum=2.5,
)
REPEAT = Param("repeat", ParamType.INTEGER, "how many times to play", default=1, minimum=1)
STOP_ON_KEY = Param(
    "stop_on_key",
    ParamType.STOP_KEYS,
    "stop playing when one of these keys is pressed (true: any key); the key stays "
    "buffered for the next gather@v1",
    default="",
)
TONES = ("beep", "ringback", "busy", "dial")


# -- Checking a whole mapping of parameters ------------------------------------------------

Structural = Callable[[Param, Any, Mark], Any]
"""Walks a structural value (actions, prompt, cases) and returns its runtime form."""


def check_mapping(
    params: Sequence[Param],
    given: Mapping[Any, Any],
    report: Report,
    *,
    owner: str,
    mark: Mark,
    structural: Structural | None = None,
) -> dict[str, Any]:
    """Check every entry of ``given`` against ``params``, reporting each mistake.

    Returns the converted values with defaults filled in; a value that was
    wrong is left out, so callers must only trust the result when no problem
    was added.
    """
    known = {param.name: param for param in params}
    values: dict[str, Any] = {}
    for key, value in given.items():
        key_mark, value_mark = _marks(given, key, mark)
        param = known.get(key) if isinstance(key, str) else None
        if param is None:
            report.add(key_mark, f"{owner} has no parameter {key!r}{_suggest(key, known)}")
            continue
        if param.type in STRUCTURAL:
            if structural is None:
                raise TypeError(f"{owner}.{key} needs a structural walker")
            values[key] = structural(param, value, value_mark)
            continue
        try:
            values[key] = convert(param, value)
        except ParamError as exc:
            report.add(value_mark, f"{owner}: {exc}")
    for param in params:
        if param.name in given:
            continue
        if param.required:
            report.add(mark, f"{owner}: missing required parameter {param.name!r}")
        else:
            values[param.name] = param.default
    return values


def _marks(given: Mapping[Any, Any], key: Any, fallback: Mark) -> tuple[Mark, Mark]:
    if isinstance(given, LocatedDict):
        return given.key_mark(key), given.value_mark(key)
    return fallback, fallback


def _suggest(key: Any, known: Mapping[str, Param]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if known:
        return f"; it takes {', '.join(known)}"
    return "; it takes none"
