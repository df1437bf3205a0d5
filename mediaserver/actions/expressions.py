"""JavaScript expressions and ``${...}`` templates, evaluated in a quickjs sandbox.

Theory of operation. Scenario expressions (``condition``, ``set@v1`` values,
``switch`` ``value``) are JavaScript, as in the Voxology Call Flow Loop, so
``!$digits && $attempts < 3`` means exactly what it means there. Each run
owns one :class:`Sandbox`: a quickjs context created on first use, with a
time limit per evaluation and a memory limit, and nothing in it that could
reach the outside world (quickjs has no I/O unless the host adds it, and this
host adds none: no ``std``/``os`` modules, no Python callables).

The variables live in a Python mirror (``Sandbox.variables``), which is the
source of truth; each one is also defined as a global property of the
context, deep-frozen and read-only, and re-defined only when it is assigned.
Expressions therefore read variables at no cost but cannot change them
(strict mode turns ``$x = 1`` inside an expression into a TypeError);
variables change only through assignments (``set@v1``, ``result:``), which
update the mirror and push the new value in. Because the mirror is the
truth, the context can be thrown away and rebuilt at any time, which is what
happens after an expression runs out of memory.

Each distinct expression is compiled once per sandbox into a strict-mode
function (``"use strict"; return (EXPR\\n);``). Source that only compiles
because it closes the parenthesis and adds statements is refused: it must
also compile as the single element of an array literal.

Templates interpolate ``${expr}`` as JavaScript template literals do
(``String(value)``), and for Voxology compatibility a bare name inside
``${...}`` also finds the variable of that name with ``$``
(``${call.from}`` is ``${$call.from}``) unless the bare name is a JavaScript
global such as ``Math``. ``${...expr}`` spells the value out one character
at a time ("1 2 3"), as Voxology's SAY does. Write ``\\${`` for a literal
``${`` (in a double-quoted YAML string that is ``"\\\\${"``).

Results come back to Python through ``JSON.stringify``: numbers, strings,
booleans, lists and dicts; ``null``, ``undefined``, ``NaN`` and functions
become ``None``.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import quickjs

from mediaserver.actions.variables import (
    BUILTINS,
    Target,
    VariableError,
    check_name,
    check_value,
    parse_target,
    store,
)

TIME_LIMIT = 0.05
"""Seconds one evaluation may run; the event loop is blocked meanwhile."""

MEMORY_LIMIT = 16 * 1024 * 1024
"""Bytes one run's sandbox may allocate."""

_CACHE_LIMIT = 1000
"""Compiled expressions kept per sandbox; dynamic dialects could otherwise grow it forever."""


class ExpressionError(Exception):
    """An expression or template that does not parse or fails when evaluated."""


@dataclass(frozen=True)
class Expression:
    """A JavaScript expression as written in a scenario, checked for syntax at load time."""

    source: str

    @classmethod
    def literal(cls, value: Any) -> Expression:
        """The expression whose value is ``value`` (a JSON-like YAML literal)."""
        return cls(json.dumps(value))

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class TemplateField:
    """One ``${...}`` of a template; ``spell`` for ``${...expr}``."""

    expression: str
    spell: bool = False


@dataclass(frozen=True)
class Template:
    """A string with ``${...}`` fields, parsed and checked at load time."""

    source: str
    parts: tuple[str | TemplateField, ...]

    @property
    def constant(self) -> str | None:
        """The text when there is nothing to interpolate, else ``None``."""
        if all(isinstance(part, str) for part in self.parts):
            return "".join(part for part in self.parts if isinstance(part, str))
        return None

    def __str__(self) -> str:
        return self.source


# -- Parsing and checking, without running anything -----------------------------------------

_checker = threading.local()


def _syntax_context() -> quickjs.Context:
    # quickjs runtimes must not be shared between threads, even one at a time.
    context = getattr(_checker, "context", None)
    if context is None:
        context = quickjs.Context()
        context.set_memory_limit(MEMORY_LIMIT)
        context.set_time_limit(TIME_LIMIT)
        _checker.context = context
    return context


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _compile_function(context: quickjs.Context, source: str, body: str) -> Any:
    """Compile ``(function(){ body })`` without calling it; check ``source`` is one expression."""
    if not source.strip():
        raise ExpressionError("empty expression")
    problem = _unreadable(source)
    if problem is not None:
        raise ExpressionError(f"invalid expression {source!r}: {problem}")
    try:
        function = context.eval(body)
    except quickjs.JSException as exc:
        raise ExpressionError(f"invalid expression {source!r}: {_first_line(exc)}") from None
    try:
        # An expression that escapes "return (...)" with ")" cannot also sit inside "[...]".
        context.eval('(function(){"use strict"; return [' + source + "\n];})")
    except quickjs.JSException:
        raise ExpressionError(
            f"invalid expression {source!r}: not a single expression (unbalanced brackets?)"
        ) from None
    return function


def _unreadable(source: str) -> str | None:
    """Why quickjs cannot be handed ``source`` at all (it takes NUL-free UTF-8), or None."""
    if "\x00" in source:
        return "it contains a NUL character (\\x00); remove it"
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        # YAML's "\ud800" escape gives a lone surrogate, which no UTF-8 text can hold.
        code = ord(source[exc.start])
        return f"it contains an unpaired surrogate U+{code:04X}; write the whole character"
    return None


def check_expression(source: str) -> Expression:
    """Return ``source`` as an :class:`Expression`, or raise :class:`ExpressionError`."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}")
    _compile_function(
        _syntax_context(), source, '(function(){"use strict"; return (' + source + "\n);})"
    )
    return Expression(source)


def parse_template(text: str) -> Template:
    """Split ``text`` into literal parts and checked ``${...}`` fields."""
    parts: list[str | TemplateField] = []
    literal: list[str] = []
    position = 0
    while position < len(text):
        if text.startswith("\\${", position):
            literal.append("${")
            position += 3
        elif text.startswith("${", position):
            end = _closing_brace(text, position + 2)
            inner = text[position + 2 : end].strip()
            spell = inner.startswith("...")
            expression = inner[3:].strip() if spell else inner
            if not expression:
                raise ExpressionError(f"empty ${{}} at character {position + 1}")
            check_expression(expression)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(TemplateField(expression, spell))
            position = end + 1
        else:
            literal.append(text[position])
            position += 1
    if literal:
        parts.append("".join(literal))
    return Template(text, tuple(parts))


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose expression starts at ``start``."""
    depth = 0
    position = start
    while position < len(text):
        char = text[position]
        if char in "'\"`":
            position = _end_of_string(text, position)
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return position
            depth -= 1
        position += 1
    raise ExpressionError(
        f"unterminated ${{ at character {start - 1}: add the closing }} "
        "(write \\${ for a literal ${)"
    )


def _end_of_string(text: str, start: int) -> int:
    quote = text[start]
    position = start + 1
    while position < len(text):
        if text[position] == "\\":
            position += 2
            continue
        if text[position] == quote:
            return position
        position += 1
    raise ExpressionError(f"unterminated string starting at character {start + 1}")


# -- The sandbox ---------------------------------------------------------------------------

_HELPERS = r"""
globalThis.__ms_helpers = (function (g) {
  function freeze(v) {
    if (v !== null && typeof v === "object") {
      Object.freeze(v);
      Object.keys(v).forEach(function (k) { freeze(v[k]); });
    }
    return v;
  }
  Object.defineProperty(g, "$now", {
    get: function () { return Date.now(); }, enumerable: true, configurable: false
  });
  return {
    define: function (name, json) {
      Object.defineProperty(g, name, {
        value: freeze(JSON.parse(json)), writable: false, enumerable: true, configurable: true
      });
    },
    out: function (v) { return v === undefined ? undefined : JSON.stringify(v); },
    spell: function (v) { return String(v).split("").join(" "); },
    bare: new Proxy({}, {
      has: function (t, k) {
        return typeof k === "string" && !(k in g) &&
          Object.prototype.hasOwnProperty.call(g, "$" + k);
      },
      get: function (t, k) { return typeof k === "string" ? g["$" + k] : undefined; }
    })
  };
})(globalThis);
"""
_HELPER_NAMES = ("define", "out", "spell", "bare")


def _javascript_integer(digits: str) -> int | float:
    # JavaScript writes 3.7e16 as "37345908152463490": beyond 2**53 it was a float all along.
    value = int(digits)
    return value if abs(value) <= 2**53 else float(value)


class Sandbox:
    """One run's variables and the quickjs context its expressions run in.

    Not thread-safe: use it from the event loop thread that created it.
    """

    def __init__(
        self,
        variables: Mapping[str, Any] | None = None,
        *,
        time_limit: float = TIME_LIMIT,
        memory_limit: int = MEMORY_LIMIT,
    ) -> None:
        self._time_limit = time_limit
        self._memory_limit = memory_limit
        self._values: dict[str, Any] = {}
        self._context: quickjs.Context | None = None
        self._helpers: dict[str, Any] = {}
        self._compiled: dict[tuple[str, str], Any] = {}
        for name, value in (variables or {}).items():
            self._put(check_name(name), value)

    # -- variables --

    @property
    def variables(self) -> dict[str, Any]:
        """A copy of every variable except ``$now``."""
        return copy.deepcopy(self._values)

    def get(self, name: str) -> Any:
        """A copy of one variable's value; ``None`` when it is not set."""
        return copy.deepcopy(self._values.get(name))

    def assign(self, target: str | Target, value: Any) -> None:
        """Store ``value`` at ``target`` (``$x``, ``$x.a``, ``$x[0]``); built-ins are refused."""
        try:
            parsed = parse_target(target) if isinstance(target, str) else target
        except VariableError as exc:
            raise ExpressionError(str(exc)) from None
        if parsed.variable in BUILTINS:
            raise ExpressionError(f"{parsed.variable} is read-only")
        if parsed.path and parsed.variable not in self._values:
            raise ExpressionError(f"cannot set {parsed}: {parsed.variable} is not defined")
        try:
            check_value(value, str(parsed))
            fresh = json.loads(json.dumps(value))
            root = store(self._values.get(parsed.variable), parsed, fresh)
        except VariableError as exc:
            raise ExpressionError(str(exc)) from None
        self._put(parsed.variable, root)

    def define_builtin(self, name: str, value: Any) -> None:
        """Set a read-only built-in such as ``$digits`` (for the runner and actions only)."""
        if name not in BUILTINS or name == "$now":
            raise ValueError(f"{name} is not a settable built-in variable")
        try:
            check_value(value, name)
        except VariableError as exc:
            raise ValueError(str(exc)) from None
        self._put(name, json.loads(json.dumps(value)))

    def _put(self, name: str, value: Any) -> None:
        check_value(value, name)
        self._values[name] = value
        if self._context is not None:
            self._define(name, value)

    def _define(self, name: str, value: Any) -> None:
        try:
            self._helpers["define"](name, json.dumps(value))
        except quickjs.JSException as exc:
            # Too big for the memory or time limit: every later evaluation will say so too.
            self._drop_context()
            raise ExpressionError(
                f"{name} does not fit in the expression sandbox: {_first_line(exc)}"
            ) from None

    # -- evaluation --

    def evaluate(self, expression: str | Expression) -> Any:
        """The value of ``expression``, converted to Python."""
        source = str(expression)
        text = self._call("value", source, lambda: "return out((" + source + "\n));")
        return None if text is None else json.loads(text, parse_int=_javascript_integer)

    def test(self, expression: str | Expression) -> bool:
        """Whether ``expression`` is truthy in JavaScript (``[]`` and ``"0"`` are true)."""
        source = str(expression)
        return bool(self._call("truth", source, lambda: "return !!(" + source + "\n);"))

    def text(self, expression: str | Expression) -> str:
        """``String(expression)``: how ``switch@v1`` compares values."""
        source = str(expression)
        return str(self._call("string", source, lambda: "return String((" + source + "\n));"))

    def interpolate(self, template: str | Template) -> str:
        """The template with each ``${...}`` replaced by its value."""
        parsed = parse_template(template) if isinstance(template, str) else template
        constant = parsed.constant
        if constant is not None:
            return constant
        pieces: list[str] = []
        for part in parsed.parts:
            if isinstance(part, str):
                pieces.append(json.dumps(part))
            else:
                helper = "__ms_spell" if part.spell else "__ms_String"
                pieces.append(f"{helper}((" + part.expression + "\n))")
        body = 'return "" + ' + " + ".join(pieces) + ";"
        return str(self._call("template", parsed.source, lambda: body, bare=True))

    def close(self) -> None:
        """Free the context now rather than when the sandbox is collected."""
        self._drop_context()

    # -- the context --

    def _call(self, kind: str, source: str, body: Any, *, bare: bool = False) -> Any:
        function = self._compiled.get((kind, source))
        if function is None:
            function = self._compile(kind, source, body(), bare)
        try:
            return function()
        except quickjs.StackOverflow:
            self._drop_context()
            raise ExpressionError(f"expression {source!r} recursed too deeply") from None
        except quickjs.JSException as exc:
            message = _first_line(exc)
            if message in ("null", "InternalError: out of memory"):
                # What an OOM leaves reachable from globals would starve later expressions.
                self._drop_context()
                raise ExpressionError(f"expression {source!r} ran out of memory") from None
            if message == "InternalError: interrupted":
                raise ExpressionError(
                    f"expression {source!r} took too long (limit {self._time_limit * 1000:g} ms)"
                ) from None
            raise ExpressionError(f"expression {source!r} failed: {message}") from None

    def _compile(self, kind: str, source: str, body: str, bare: bool) -> Any:
        context = self._ensure_context()
        if bare:
            # Sloppy outer function for "with"; the strict inner one still sees its scope.
            # Helper names start with "_", so no $variable can be reached as them.
            wrapper = (
                "(function(__ms_String, __ms_spell, __ms_bare){ with (__ms_bare) {"
                ' return function(){"use strict"; ' + body + "}; } })"
            )
            try:
                maker = context.eval(wrapper)
            except quickjs.JSException as exc:
                raise ExpressionError(f"invalid template {source!r}: {_first_line(exc)}") from None
            helpers = self._helpers
            function = maker(context.get("String"), helpers["spell"], helpers["bare"])
        else:
            maker = _compile_function(
                context, source, '(function(out){ return function(){"use strict"; ' + body + "}; })"
            )
            function = maker(self._helpers["out"])
        if len(self._compiled) >= _CACHE_LIMIT:
            self._compiled.clear()
        self._compiled[(kind, source)] = function
        return function

    def _ensure_context(self) -> quickjs.Context:
        if self._context is not None:
            return self._context
        context = quickjs.Context()
        context.set_memory_limit(self._memory_limit)
        context.set_time_limit(self._time_limit)
        context.eval(_HELPERS)
        self._helpers = {name: context.eval(f"__ms_helpers.{name}") for name in _HELPER_NAMES}
        context.eval("delete globalThis.__ms_helpers")
        self._context = context
        for name, value in self._values.items():
            self._define(name, value)
        return context

    def _drop_context(self) -> None:
        self._compiled.clear()
        self._helpers = {}
        self._context = None
