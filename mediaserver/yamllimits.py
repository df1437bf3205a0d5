"""Bounds on a YAML document, checked on its event stream before anything is built.

PyYAML's composer and constructor recurse once per nesting level (300 nested
brackets end in ``RecursionError``), and aliases let a few hundred bytes name
millions of nodes ("billion laughs": 7 levels of 10 aliases is 10**7 items).
PyYAML shares the aliased objects, but everything downstream that walks,
copies or serialises the document pays for every one of them.

:func:`measure` reads the parser's events, which the parser produces without
recursion, and keeps for each anchor the size of what it names, so an alias
counts as the whole subtree it stands for. It stops at the first event that
crosses a limit and reports its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

import yaml


@dataclass(frozen=True)
class Limits:
    """The largest document accepted; far above any hand-written scenario or config."""

    characters: int = 1_000_000
    depth: int = 64  # nested mappings and sequences, aliases expanded
    nodes: int = 100_000  # scalars, mappings and sequences, aliases expanded
    scalar_characters: int = 1_000_000  # text of every scalar, aliases expanded


class LimitExceeded(Exception):
    """The document crosses one of its :class:`Limits`; 1-based line and column."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message


@dataclass
class _Size:
    """A subtree as it would be once every alias in it is expanded."""

    nodes: int = 0
    characters: int = 0
    height: int = 0


@dataclass
class _Open:
    """A mapping or sequence whose end has not been read yet."""

    anchor: str | None
    size: _Size = field(default_factory=lambda: _Size(nodes=1))


def measure(text: str, limits: Limits) -> None:
    """Raise :class:`LimitExceeded` if ``text`` crosses ``limits``; YAML errors pass through."""
    if len(text) > limits.characters:
        raise LimitExceeded(
            1,
            1,
            f"document too large: {len(text)} characters, at most {limits.characters}; "
            "split it into several files",
        )
    loader = yaml.SafeLoader(text)
    try:
        _walk(loader, limits)
    finally:
        loader.dispose()


def _walk(loader: yaml.SafeLoader, limits: Limits) -> None:
    anchors: dict[str, _Size] = {}
    open_: list[_Open] = []
    total = _Size()
    while loader.check_event():
        event: yaml.Event = loader.get_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.DocumentStartEvent):
            anchors.clear()  # YAML 1.1 9.1: anchors do not cross documents
        if isinstance(event, yaml.ScalarEvent):
            size = _Size(1, len(event.value), 0)
        elif isinstance(event, yaml.AliasEvent):
            if any(frame.anchor == event.anchor for frame in open_):
                _refuse(event, f"alias *{event.anchor} is inside the node it names (a loop)")
            size = anchors.get(event.anchor or "", _Size(1, 0, 0))  # undefined: composer reports
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_) + 1 > limits.depth:
                _refuse(event, f"nested too deeply: more than {limits.depth} levels")
            total.nodes += 1
            _check_total(event, total, limits)
            open_.append(_Open(event.anchor))
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            done = open_.pop()
            done.size.height += 1
            if done.anchor is not None:
                anchors[done.anchor] = done.size
            if open_:
                _add(open_[-1].size, done.size)
            continue
        else:
            continue
        # A scalar or an alias: counted in full where it stands.
        if len(open_) + size.height > limits.depth:
            expanded = "nested too deeply once aliases are expanded"
            _refuse(event, f"{expanded}: more than {limits.depth} levels")
        total.nodes += size.nodes
        total.characters += size.characters
        _check_total(event, total, limits)
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.ScalarEvent) and anchor is not None:
            anchors[anchor] = size
        if open_:
            _add(open_[-1].size, size)


def _add(parent: _Size, child: _Size) -> None:
    parent.nodes += child.nodes
    parent.characters += child.characters
    parent.height = max(parent.height, child.height)


def _check_total(event: yaml.Event, total: _Size, limits: Limits) -> None:
    if total.nodes > limits.nodes:
        _refuse(
            event,
            f"too many values: more than {limits.nodes} once aliases are expanded "
            "(aliases that repeat aliases multiply)",
        )
    if total.characters > limits.scalar_characters:
        _refuse(
            event,
            f"too much text: more than {limits.scalar_characters} characters once aliases "
            "are expanded",
        )


def _refuse(event: yaml.Event, message: str) -> NoReturn:
    mark = event.start_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    raise LimitExceeded(line, column, message)
