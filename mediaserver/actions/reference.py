"""The scenario reference's generated parts, rendered from the action declarations.

Theory of operation: ``docs/scenarios.md`` is written by hand, except for
blocks between markers that this module owns::

    <!-- BEGIN GENERATED: say@v1 -->
    | param | type | default | description |
    ...
    <!-- END GENERATED -->

Each block is rendered from the registry, so the documented parameters,
types, defaults and results are the ones the validator enforces:

- ``NAME@vN``: one action's parameter table, its result and whether it
  needs a call (from its :class:`ActionDefinition` and its :class:`Param` list);
- ``actions``: the index of every available action;
- ``planned``: the SPEC actions not available yet (:data:`registry.PLANNED`);
- ``prompt-items``: the fields of ``say:``, ``play:`` and ``pause:`` items.

:func:`refresh` replaces the body of every block found in a document and
:func:`problems` says what is stale, missing or unknown. From a shell::

    python -m mediaserver.actions.reference --write docs/scenarios.md
    python -m mediaserver.actions.reference --check docs/scenarios.md
    python -m mediaserver.actions.reference [BLOCK ...]    # print blocks

``tests/unit/test_reference_docs.py`` fails while the document is stale.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mediaserver.actions import registry
from mediaserver.actions.callapi import DTMF_KEYS
from mediaserver.actions.definition import ActionDefinition
from mediaserver.actions.model import CALLLESS_BRANCHES
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import PAUSE_SECONDS, PLAY_FIELDS, SAY_FIELDS

BEGIN = "<!-- BEGIN GENERATED: {name} -->"
END = "<!-- END GENERATED -->"
_MARKER = re.compile(r"^<!-- (?:BEGIN GENERATED: (?P<name>\S+)|(?P<end>END GENERATED)) -->$")
_BARE_YAML = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "y", "n"})
_NO_DEFAULT = "—"
_TEMPLATE_WORD = re.compile(r"(?<!`)\$\{\.\.\.\}(?!`)")

INTERPOLATION_ANCHOR = "#interpolation"
"""Where the document explains ``${...}``; the type of interpolated strings links there."""
PROMPTS_ANCHOR = "#prompts"
"""Where the document explains prompts; the type of prompt parameters links there."""


class ReferenceDocError(ValueError):
    """A document whose markers cannot be refreshed (unknown block, unbalanced markers)."""


# -- Rendering ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """``text`` made safe for one cell of a markdown table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _number(value: float) -> str:
    return f"{value:g}"


def yaml_literal(value: Any) -> str:
    """How ``value`` is written in a scenario (quoted when YAML needs it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        if _BARE_YAML.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value)
    if isinstance(value, list | tuple) and not value:
        return "[]"
    return json.dumps(value)


def param_type(param: Param) -> str:
    """The type column: what a value must look like, with its range or choices."""
    kind = param.type
    described = str(kind.value)
    if kind in (ParamType.INTEGER, ParamType.NUMBER, ParamType.SECONDS):
        low, high = param.minimum, param.maximum
        if low is not None and high is not None:
            return f"{described}, {_number(low)} to {_number(high)}"
        if low is not None:
            return f"{described}, at least {_number(low)}"
        if high is not None:
            return f"{described}, at most {_number(high)}"
        return described
    if kind is ParamType.PROMPT:
        return f"a list of [prompt items]({PROMPTS_ANCHOR}) (`say:`, `play:` or `pause:`)"
    if kind is not ParamType.STRING:
        return described
    if param.choices:
        choices = list(param.choices)
        if all(key in choices for key in DTMF_KEYS):
            others = [choice for choice in choices if choice not in DTMF_KEYS]
            text = "one DTMF key (0-9, *, #, A-D)"
            return text + "".join(f" or {_code(other)}" for other in others)
        shown = [_code(choice) for choice in choices]
        if len(shown) <= 2:
            return " or ".join(shown)
        return "one of " + ", ".join(shown[:-1]) + f" or {shown[-1]}"
    if param.pattern is not None:
        return f"a string: {param.pattern_hint}" if param.pattern_hint else "a string"
    if param.interpolated:
        return f"a string, [`${{...}}` interpolated]({INTERPOLATION_ANCHOR})"
    return described


def param_default(param: Param) -> str:
    """The default column: ``required``, the value used when it is left out, or a dash."""
    if param.required:
        return "**required**"
    if param.default is None:
        return _NO_DEFAULT
    return _code(yaml_literal(param.default))


def params_table(params: Sequence[Param]) -> str:
    """A markdown table of ``params``: name, type, default, description."""
    rows = [
        "| param | type | default | description |",
        "|---|---|---|---|",
    ]
    for param in params:
        cells = (
            _code(param.name),
            param_type(param),
            param_default(param),
            _TEMPLATE_WORD.sub("`${...}`", param.doc),
        )
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows)


def _assignments_table() -> str:
    return "\n".join(
        [
            "| param | type | default | description |",
            "|---|---|---|---|",
            '| `$name`, `$name.key`, `$name[0]`, `$name["key"]` '
            "| a JavaScript expression (a string) or a literal (any other YAML value) "
            f"| {_NO_DEFAULT} | assigned in the order written; give at least one |",
        ]
    )


def action_block(definition: ActionDefinition) -> str:
    """The generated part of one action's section."""
    if definition.assignments:
        table = _assignments_table()
    elif definition.params:
        table = params_table(definition.params)
    else:
        table = "No parameters."
    if definition.result is None:
        result = "none (a `result:` key on this action is an error)"
    else:
        result = definition.result
    callless = ", ".join(f"`{name}`" for name in sorted(CALLLESS_BRANCHES))
    if definition.needs_call:
        call = f"yes: refused in {callless}, which has no call"
    else:
        call = f"no: also allowed in {callless}"
    return "\n".join(
        [
            table,
            "",
            f"**Result:** {result}.",
            "",
            f"**Needs a call:** {call}.",
        ]
    )


def _anchor(key: str) -> str:
    """The GitHub anchor of a ``### key`` heading."""
    return "#" + re.sub(r"[^a-z0-9 _-]", "", key.lower()).replace(" ", "-")


def actions_index() -> str:
    """A table of every available action, in registry order."""
    rows = ["| action | what it does | has a result | needs a call |", "|---|---|---|---|"]
    for key, definition in registry.ACTIONS.items():
        result = "yes" if definition.result is not None else "no"
        call = "yes" if definition.needs_call else "no"
        link = f"[`{key}`]({_anchor(key)})"
        rows.append(f"| {link} | {_cell(definition.summary)} | {result} | {call} |")
    return "\n".join(rows)


def planned_list() -> str:
    """The SPEC actions that are refused as "not available in this version yet"."""
    if not registry.PLANNED:
        return "None: every action of the specification is available."
    return ", ".join(f"`{name}@v1`" for name in sorted(registry.PLANNED)) + "."


def prompt_items() -> str:
    """The fields of the prompt items that gather@v1 and later actions play."""
    return "\n".join(
        [
            "`say:` — speech; `say: TEXT` is short for `say: {text: TEXT}`.",
            "",
            params_table(SAY_FIELDS),
            "",
            "`play:` — a sound file or a tone; `play: FILE` is short for `play: {url: FILE}`. "
            "Give exactly one of `url` and `tone`.",
            "",
            params_table(PLAY_FIELDS),
            "",
            f"`pause: SECONDS` — silence, which a key press interrupts like any other item; "
            f"SECONDS is {param_type(PAUSE_SECONDS)}.",
        ]
    )


def _renderers() -> dict[str, Callable[[], str]]:
    renderers: dict[str, Callable[[], str]] = {
        "actions": actions_index,
        "planned": planned_list,
        "prompt-items": prompt_items,
    }
    for key, definition in registry.ACTIONS.items():
        renderers[key] = functools.partial(action_block, definition)
    return renderers


def block_names() -> list[str]:
    """Every block a complete reference contains."""
    return list(_renderers())


def render(name: str) -> str:
    """The body of block ``name``; :class:`KeyError` for an unknown block."""
    return _renderers()[name]()


def render_block(name: str) -> str:
    """Block ``name`` with its markers, as it appears in the document."""
    return f"{BEGIN.format(name=name)}\n{render(name)}\n{END}"


# -- Reading and refreshing a document ------------------------------------------------------


def _blocks(text: str) -> list[tuple[str, int, int, int]]:
    """``(name, line, body start, body end)`` of each block; offsets index ``text``."""
    found: list[tuple[str, int, int, int]] = []
    errors: list[str] = []
    open_name: str | None = None
    open_line = 0
    body_start = 0
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        match = _MARKER.match(line.strip())
        if match is not None:
            if match.group("name") is not None:
                if open_name is not None:
                    errors.append(
                        f"line {number}: BEGIN GENERATED inside block {open_name!r} "
                        f"(opened at line {open_line})"
                    )
                open_name, open_line, body_start = match.group("name"), number, offset + len(line)
            elif open_name is None:
                errors.append(f"line {number}: END GENERATED without a BEGIN")
            else:
                found.append((open_name, open_line, body_start, offset))
                open_name = None
        offset += len(line)
    if open_name is not None:
        errors.append(f"line {open_line}: block {open_name!r} has no END GENERATED")
    known = set(block_names())
    for name, at, _, _ in found:
        if name not in known:
            errors.append(f"line {at}: unknown generated block {name!r}")
    if errors:
        raise ReferenceDocError("; ".join(errors))
    return found


def refresh(text: str) -> str:
    """``text`` with every generated block re-rendered; blocks not in it are not added."""
    pieces: list[str] = []
    position = 0
    for name, _, start, end in _blocks(text):
        pieces.append(text[position:start])
        pieces.append(render(name) + "\n")
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def missing(text: str) -> list[str]:
    """Blocks a complete reference needs that ``text`` lacks (e.g. a new action)."""
    present = {name for name, _, _, _ in _blocks(text)}
    return [name for name in block_names() if name not in present]


def problems(text: str) -> list[str]:
    """What is wrong with the generated parts of ``text``; empty when it is up to date."""
    try:
        found = _blocks(text)
    except ReferenceDocError as exc:
        return [str(exc)]
    out: list[str] = []
    seen: set[str] = set()
    for name, line, start, end in found:
        if name in seen:
            out.append(f"line {line}: block {name!r} appears twice")
        seen.add(name)
        if text[start:end] != render(name) + "\n":
            out.append(f"line {line}: block {name!r} is out of date with the registry")
    out.extend(
        f"block {name!r} is missing: add {BEGIN.format(name=name)} ... {END} "
        "where it belongs, then run --write"
        for name in missing(text)
    )
    return out


# -- Command line ---------------------------------------------------------------------------

_COMMAND = "python -m mediaserver.actions.reference"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=_COMMAND, description="Render the generated parts of the scenario reference."
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="refresh the generated blocks of FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 if FILE's blocks are stale")
    parser.add_argument("blocks", nargs="*", metavar="BLOCK", help="print these blocks")
    args = parser.parse_args(list(argv) if argv is not None else None)

    if args.write or args.check:
        path = Path(args.write or args.check)
        text = path.read_text(encoding="utf-8")
        if args.write:
            try:
                fresh = refresh(text)
            except ReferenceDocError as exc:
                print(f"{path}: {exc}", file=sys.stderr)
                return 1
            if fresh != text:
                path.write_text(fresh, encoding="utf-8")
                print(f"{path}: generated blocks refreshed")
            else:
                print(f"{path}: up to date")
            text = fresh
        found = problems(text)
        for problem in found:
            print(f"{path}: {problem}", file=sys.stderr)
        if found and args.check:
            print(f"run: {_COMMAND} --write {path}", file=sys.stderr)
        return 1 if found else 0

    names = args.blocks or block_names()
    unknown = [name for name in names if name not in block_names()]
    if unknown:
        print(f"unknown block(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    print("\n\n".join(render_block(name) for name in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
