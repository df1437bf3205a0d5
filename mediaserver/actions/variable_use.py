"""Variables read but never set: found when a scenario is loaded, not when a call fails.

Theory of operation. While :mod:`mediaserver.actions.scenario` validates a
file it tells :class:`VariableUse` every variable a branch sets (the
top-level ``variables:``, ``result:``, ``set@v1`` targets, ``foreach@v1``'s
``as``/``key``/``index``) and every expression and ``${...}`` field it
reads. :func:`reads` finds the variables an expression reads with a small
JavaScript scan: string literals are skipped (a template literal's ``${}``
holes are not), so are property names after ``.`` and object-literal keys,
and ``typeof $x`` is a guard, not a read.

A read of ``$x`` that nothing sets, that is no built-in (``$call``,
``$digits``...) and that the branch is not given (``$message`` in
``inbound-sms``) fails at run time with a ReferenceError. In
``inbound-call`` and ``inbound-sms`` branches nothing else can define it,
so that is an error. An ``api-initiated`` run may be started with variables
(``POST /api/scenarios/{sid}/start``), so there it is a warning. A bare name
in a ``${...}`` field (``${call.from}`` reads ``$call``) may also be a local
name of the expression (an arrow function's parameter), so an unknown one is
a warning too.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import quickjs

from mediaserver.actions.expressions import Expression, Template, TemplateField
from mediaserver.actions.variables import BUILTINS
from mediaserver.yamlsource import Mark, Problem

GIVEN: Mapping[str, frozenset[str]] = {
    "inbound-call": frozenset(),
    "inbound-sms": frozenset({"$message"}),
}
"""What a branch's run is given besides the built-ins; a branch not named here
(``api-initiated``) may be given anything when its run is started."""

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_VARIABLE = re.compile(r"\$[A-Za-z][A-Za-z0-9_]*")

_KEYWORDS = frozenset(
    {
        "break", "case", "catch", "class", "const", "continue", "debugger", "default",
        "delete", "do", "else", "export", "extends", "finally", "for", "function", "if",
        "import", "in", "instanceof", "new", "return", "super", "switch", "this", "throw",
        "try", "typeof", "var", "void", "while", "with", "yield", "let", "static", "await",
        "async", "of", "get", "set", "true", "false", "null", "undefined", "arguments",
    }
)  # fmt: skip


@functools.cache
def _javascript_names() -> frozenset[str]:
    """The words and the globals (Math, JSON...) a bare name in a ${...} field may be."""
    globals_ = json.loads(
        quickjs.Context().eval("JSON.stringify(Object.getOwnPropertyNames(globalThis))")
    )
    return _KEYWORDS | frozenset(globals_)


@dataclass(frozen=True)
class Read:
    """One variable an expression reads: ``$name`` as written, or a bare name of a
    ``${...}`` field (``bare``), which means ``$name`` when no JavaScript name does."""

    name: str
    bare: bool = False


def reads(source: str, *, bare: bool = False) -> list[Read]:
    """The variables ``source`` reads, in order (``bare``: a ``${...}`` field)."""
    found: list[Read] = []
    if bare and ("=>" in source or "function" in source):
        bare = False  # its bare names may be the parameters of a function it defines
    _scan(source, 0, len(source), bare, found)
    return found


def _scan(text: str, start: int, end: int, bare: bool, found: list[Read]) -> int:
    """Scan ``text[start:end]`` up to an unmatched ``}``; the index reached."""
    depth = 0
    position = start
    while position < end:
        char = text[position]
        if char in "'\"":
            position = _skip_string(text, position, end)
        elif char == "`":
            position = _template_literal(text, position + 1, end, bare, found)
        elif char == "{":
            depth += 1
            position += 1
        elif char == "}":
            if depth == 0:
                return position
            depth -= 1
            position += 1
        elif char == "/" and text.startswith(("//", "/*"), position):
            closing = "\n" if text[position + 1] == "/" else "*/"
            stop = text.find(closing, position + 2)
            position = end if stop < 0 else stop + len(closing)
        elif _IDENTIFIER.match(char) and (position == 0 or not _is_word(text[position - 1])):
            match = _IDENTIFIER.match(text, position)
            assert match is not None  # its first character matched
            word = match.group()
            position = match.end()
            read = _read(text, match.start(), position, word, bare)
            if read is not None:
                found.append(read)
        else:
            position += 1
    return position


def _read(text: str, start: int, end: int, word: str, bare: bool) -> Read | None:
    before = text[:start].rstrip()
    after = text[end:].lstrip()
    if before.endswith(".") and not before.endswith(".."):
        return None  # a property: obj.$x, obj.name (not the spread ...$x)
    if after.startswith(":") and before.endswith(("{", ",")):
        return None  # an object literal's key
    if after.startswith("=>"):
        return None  # an arrow function's parameter
    if re.search(r"\btypeof\s*\(?\s*$", before):
        return None  # typeof $x is how a scenario asks whether $x exists
    if _VARIABLE.fullmatch(word):
        return Read(word)
    if bare and not word.startswith("$") and word not in _javascript_names():
        return Read("$" + word, bare=True)
    return None


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _skip_string(text: str, start: int, end: int) -> int:
    quote = text[start]
    position = start + 1
    while position < end and text[position] != quote:
        position += 2 if text[position] == "\\" else 1
    return position + 1


def _template_literal(text: str, start: int, end: int, bare: bool, found: list[Read]) -> int:
    position = start
    while position < end:
        if text[position] == "\\":
            position += 2
        elif text[position] == "`":
            return position + 1
        elif text.startswith("${", position):
            position = _scan(text, position + 2, end, bare, found) + 1
        else:
            position += 1
    return position


def sources(value: Any) -> Iterator[tuple[str, bool]]:
    """Each expression in a checked parameter value, and whether it is a ``${...}``
    field (where bare names find variables); nested action items are not entered."""
    if isinstance(value, Expression):
        yield value.source, False
    elif isinstance(value, Template):
        for part in value.parts:
            if isinstance(part, TemplateField):
                yield part.expression, True
    elif isinstance(value, tuple | list):
        for item in value:
            yield from sources(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from sources(item)


@dataclass
class _BranchUse:
    sets: set[str] = field(default_factory=set)
    reads: list[tuple[Read, Mark]] = field(default_factory=list)


class VariableUse:
    """What each branch of one scenario sets and reads (module docstring)."""

    def __init__(self) -> None:
        self.declared: set[str] = set()
        self._branches: dict[str, _BranchUse] = {}

    def sets(self, branch: str, name: str) -> None:
        self._branches.setdefault(branch, _BranchUse()).sets.add(name)

    def reads(self, branch: str, value: Any, mark: Mark) -> None:
        """Note what a checked parameter value (expressions, templates) reads."""
        use = self._branches.setdefault(branch, _BranchUse())
        for source, bare in sources(value):
            use.reads.extend((read, mark) for read in reads(source, bare=bare))

    def problems(self, file: str) -> tuple[list[Problem], list[Problem]]:
        """The errors and the warnings: reads of variables that nothing sets."""
        errors: list[Problem] = []
        warnings: list[Problem] = []
        for branch, use in self._branches.items():
            known = self.declared | use.sets | set(BUILTINS) | GIVEN.get(branch, frozenset())
            reported: set[tuple[str, Mark]] = set()
            for read, mark in use.reads:
                if read.name in known or (read.name, mark) in reported:
                    continue
                reported.add((read.name, mark))
                hint = _did_you_mean(read.name, known)
                if read.bare:
                    shown = read.name.removeprefix("$")
                    warnings.append(
                        Problem(
                            file,
                            mark,
                            f"{shown} is not a JavaScript name, and {read.name} is never set"
                            f" in the {branch} branch{hint}",
                            warning=True,
                        )
                    )
                elif branch in GIVEN:
                    errors.append(
                        Problem(
                            file,
                            mark,
                            f"{read.name} is read but never set in the {branch} branch{hint};"
                            " set it (set@v1, result:) or declare it under variables:",
                        )
                    )
                else:
                    warnings.append(
                        Problem(
                            file,
                            mark,
                            f"{read.name} is read but never set in the {branch}"
                            f" branch{hint}; unless every start passes it, declare it under"
                            " variables:",
                            warning=True,
                        )
                    )
        return errors, warnings


def _did_you_mean(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
