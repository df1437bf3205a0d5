"""Reading one JSON object of a callback response field by field, every mistake kept.

:class:`Fields` wraps an action's ``params`` (or the action object itself)
and hands out checked values: a missing optional field gives its default, a
wrong one adds a problem and gives the default too, so parsing goes on and
the application hears about every mistake at once. Problems read
``actions[3] (COLLECT): params.timeout: expected a whole number of
milliseconds, got '5'``; :meth:`Fields.finish` adds one for each field the
action does not take. :class:`ActionReader` holds the two of an action (its
top-level fields and its ``params``) and parses its nested action lists.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mediaserver.actions.expressions import ExpressionError, check_expression, parse_template
from mediaserver.callflow import model as m

DTMF_NAMES = {"pound": "#", "star": "*", "hash": "#"}
"""Key names the seed's examples use (``"finish_on_key": "pound"``) for ``#`` and ``*``."""
_KEYS = "0123456789#*"
_MAX_COMBINATION = 8
NAME = r"[A-Za-z0-9_-]{1,128}"
"""Seed: names of conferences, queues and labels are "alpha-numeric, underscores, and dashes"."""
NAME_HINT = "letters, digits, underscores and dashes"

ListParser = Callable[[Any, str, list[str]], m.Actions]
"""``parse_list(value, path, problems)``: a nested list of actions."""
_HEADER_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def shown(value: Any) -> str:
    """How an offending JSON value appears in a message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value)


class Fields:
    """The fields of one JSON object; see the module docstring."""

    def __init__(
        self, raw: Mapping[str, Any], owner: str, problems: list[str], prefix: str = ""
    ) -> None:
        self.raw = raw
        self.owner = owner
        self.prefix = prefix
        self.problems = problems
        self._read: set[str] = set()

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{self.owner}: {self.prefix}{key}: {message}")

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def _take(self, key: str) -> Any:
        self._read.add(key)
        return self.raw.get(key)

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        choices: Iterable[str] = (),
        pattern: str | None = None,
        hint: str = "",
        template: bool = False,
    ) -> str | None:
        """A string; ``template`` ones may hold ``${...}`` (syntax-checked, choices and
        pattern then apply only when there is nothing to interpolate)."""
        value = self._take(key)
        if value is None:
            if required:
                self.add(key, "required")
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = json.dumps(value)  # "num_digits"-like strings written as numbers
        if not isinstance(value, str):
            self.add(key, f"expected a string, got {shown(value)}")
            return default
        if template and "${" in value:
            try:
                parse_template(value)
            except ExpressionError as exc:
                self.add(key, str(exc))
                return default
            return value
        allowed = tuple(choices)
        if allowed and value not in allowed:
            self.add(key, f"must be one of {', '.join(allowed)}; got {value!r}")
            return default
        if pattern is not None and not re.fullmatch(pattern, value):
            self.add(key, f"{value!r} is not {hint}")
            return default
        if required and not value.strip():
            self.add(key, "must not be empty")
            return default
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int, unit: str = "") -> int:
        """A whole number (``5000`` or ``5000.0``) within ``minimum``..``maximum``."""
        value = self._number(key, unit, whole=True)
        if value is None:
            return default
        if not minimum <= value <= maximum:
            self.add(key, f"must be {minimum} to {maximum}{_unit(unit)}, got {value:g}")
            return default
        return int(value)

    def number(
        self, key: str, default: float, minimum: float, maximum: float, unit: str = ""
    ) -> float:
        value = self._number(key, unit, whole=False)
        if value is None:
            return default
        if not minimum <= value <= maximum:
            self.add(key, f"must be {minimum:g} to {maximum:g}{_unit(unit)}, got {value:g}")
            return default
        return float(value)

    def _number(self, key: str, unit: str, *, whole: bool) -> float | None:
        value = self._take(key)
        if value is None:
            return None
        kind = "a whole number" if whole else "a number"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or (whole and isinstance(value, float) and not value.is_integer())
        ):
            self.add(key, f"expected {kind}{_unit(unit, ' of ')}, got {shown(value)}")
            return None
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(key, f"expected true or false, got {shown(value)}")
            return default
        return value

    def key(self, key: str, default: str | None, *, others: Iterable[str] = ("off",)) -> str | None:
        """One DTMF key (``pound``/``star`` are ``#``/``*``); ``off`` gives None, other
        words in ``others`` are returned as they are."""
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
            value = str(value)
        words = tuple(others)
        if isinstance(value, str):
            text = DTMF_NAMES.get(value.lower(), value)
            if len(text) == 1 and text in _KEYS:
                return text
            if value.lower() in words:
                return None if value.lower() == "off" else value.lower()
        accepted = ", ".join(("0-9", "#", "*", "pound", "star", *words))
        self.add(key, f"expected one key ({accepted}), got {shown(value)}")
        return default

    def combination(self, key: str) -> str | None:
        """Keys pressed in order (seed, CONFERENCE: "which key combination", ``"#0"``):
        ``0-9``, ``#``, ``*``; ``pound``/``star`` alone; ``off`` (or nothing) gives None."""
        value = self._take(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if isinstance(value, str):
            text = DTMF_NAMES.get(value.lower(), value)
            if value.lower() == "off":
                return None
            if re.fullmatch(f"[{re.escape(_KEYS)}]{{1,{_MAX_COMBINATION}}}", text):
                return text
        self.add(
            key,
            f"expected keys pressed in order (1 to {_MAX_COMBINATION} of 0-9, #, *, e.g. "
            f'"#0"), pound, star or off, got {shown(value)}',
        )
        return None

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self._take(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(key, f"expected an object, got {shown(value)}")
            return None
        return value

    def headers(self, key: str) -> tuple[tuple[str, str], ...] | None:
        """``{"X-Name": "value"}``: header names and one-line string values."""
        value = self.mapping(key)
        if value is None:
            return None
        out: list[tuple[str, str]] = []
        for name, item in value.items():
            if isinstance(item, int | float) and not isinstance(item, bool):
                item = json.dumps(item)
            if not _HEADER_NAME.fullmatch(name):
                self.add(f"{key}.{name}", "is not a header name")
            elif not isinstance(item, str) or any(ch in item for ch in "\r\n"):
                self.add(f"{key}.{name}", "expected a one-line string")
            else:
                out.append((name, item))
        return tuple(out)

    def expression(self, key: str, *, required: bool = False) -> str | None:
        """A JavaScript expression (seed, "Variables": evaluated as ES5 JavaScript)."""
        value = self._take(key)
        if value is None:
            if required:
                self.add(key, "required")
            return None
        if not isinstance(value, str):
            self.add(key, f"expected a JavaScript expression in a string, got {shown(value)}")
            return None
        try:
            check_expression(value)
        except ExpressionError as exc:
            self.add(key, str(exc))
            return None
        return value

    def data(self, key: str) -> Any:
        """An object (sent as is) or a string (a JavaScript expression), as DIAL's
        ``session_data`` and WEBHOOK's ``webhook_data`` take."""
        value = self.raw.get(key)
        if isinstance(value, str):
            return self.expression(key)
        self._take(key)
        if value is not None and not isinstance(value, dict):
            self.add(key, f"expected an object or an expression string, got {shown(value)}")
            return None
        return value

    def unsupported(self, key: str, why: str, *, harmless: Iterable[Any] = ()) -> None:
        """Refuse ``key`` unless absent or one of the ``harmless`` values (its default)."""
        value = self._take(key)
        if value is None or value in tuple(harmless):
            return
        self.add(key, f"not supported by this server: {why}")

    def finish(self, extra: Iterable[str] = ()) -> None:
        """Report each field of the object that nothing read."""
        known = self._read | set(extra)
        for key in self.raw:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            takes = f"; it takes {', '.join(sorted(known))}" if not close and known else ""
            self.problems.append(f"{self.owner}: {self.prefix}{key}: unknown field{hint}{takes}")


class ActionReader:
    """One action object being parsed: its top-level fields (``top``), its ``params``,
    and its nested action lists and event handlers (parsed by ``parse_list``)."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        path: str,
        kind: str,
        problems: list[str],
        parse_list: ListParser,
    ) -> None:
        self.raw = raw
        self._parse_list = parse_list
        self.path = path
        self.kind = kind
        self.problems = problems
        self.owner = f"{path} ({kind})"
        self.top = Fields(raw, self.owner, problems)
        params = raw.get("params")
        if params is not None and not isinstance(params, dict):
            self.top.add("params", f"expected an object, got {shown(params)}")
            params = None
        self.params = Fields(params or {}, self.owner, problems, prefix="params.")
        self.name = self.top.string("name")
        self.top.string("comments")

    def actions(self, key: str, *, required: bool = False) -> m.Actions:
        """A nested action list kept next to ``type`` (IF's ``then``...)."""
        value = self.top._take(key)
        if value is None:
            if required:
                self.top.add(key, "required: a list of actions")
            return ()
        return self._parse_list(value, f"{self.path}.{key}", self.problems)

    def events(
        self, supported: Sequence[str], unsupported: Mapping[str, str] | None = None
    ) -> m.Events:
        unsupported = unsupported or {}
        """``events: {on_error: [...]}`` for the event names the server can fire."""
        value = self.top.mapping("events")
        if value is None:
            return m.Events()
        handlers: list[tuple[str, m.Actions]] = []
        for event, actions in value.items():
            where = f"{self.path}.events.{event}"
            if event in unsupported:
                why = unsupported[event]
                self.top.add(f"events.{event}", f"not supported by this server: {why}")
            elif event not in supported:
                close = difflib.get_close_matches(event, list(supported), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.top.add(
                    f"events.{event}",
                    f"unknown event{hint}; {self.kind} has {', '.join(supported)}",
                )
            else:
                handlers.append((event, self._parse_list(actions, where, self.problems)))
        return m.Events(tuple(handlers))

    def finish(self, *top: str) -> None:
        self.top.finish(("type", "params", "name", "comments", *top))
        self.params.finish()


def _unit(unit: str, joiner: str = " ") -> str:
    return f"{joiner}{unit}" if unit else ""
