"""YAML documents that remember where each key and item came from.

Configuration files and scenarios are YAML written by people, and every
mistake in them must be reported as ``FILE:LINE:COL: message``. PyYAML's
composer knows the position of every node; this loader keeps those marks on
the mappings and lists it builds, so validators can point at the exact key
or value that is wrong long after parsing.

Mappings become :class:`LocatedDict`, sequences :class:`LocatedList`; both
are plain ``dict``/``list`` subclasses, so code that only reads values does
not need to know about positions. Duplicate keys, which PyYAML silently
overwrites, are reported as errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based line and column in a source file."""

    line: int
    column: int


@dataclass(frozen=True)
class Problem:
    """One user mistake, located in a file."""

    file: str
    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.mark.line}:{self.mark.column}: {self.message}"


class ProblemsError(Exception):
    """Raised with every problem found in a document, sorted by position."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.mark))
        super().__init__("\n".join(str(p) for p in self.problems))


class LocatedDict(dict[Any, Any]):
    """A mapping with the position of itself, each key and each value."""

    mark: Mark
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]

    def key_mark(self, key: Any) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: Any) -> Mark:
        return self.value_marks.get(key, self.key_mark(key))


class LocatedList(list[Any]):
    """A sequence with the position of itself and of each item."""

    mark: Mark
    item_marks: list[Mark]

    def item_mark(self, index: int) -> Mark:
        if 0 <= index < len(self.item_marks):
            return self.item_marks[index]
        return self.mark


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _LocatingLoader(yaml.SafeLoader):
    """SafeLoader that builds located containers and refuses duplicate keys."""

    filename = "<string>"

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data = LocatedDict()
        data.mark = _mark(node)
        data.key_marks = {}
        data.value_marks = {}
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise _DuplicateOrBadKey(_mark(key_node), "a mapping key must be a plain value")
            if key in data.key_marks:
                first = data.key_marks[key]
                raise _DuplicateOrBadKey(
                    _mark(key_node), f"duplicate key {key!r} (first defined at line {first.line})"
                )
            data[key] = self.construct_object(value_node, deep=True)
            data.key_marks[key] = _mark(key_node)
            data.value_marks[key] = _mark(value_node)

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data = LocatedList()
        data.mark = _mark(node)
        data.item_marks = [_mark(child) for child in node.value]
        yield data
        data.extend(self.construct_sequence(node, deep=True))


_LocatingLoader.add_constructor("tag:yaml.org,2002:map", _LocatingLoader.construct_yaml_map)
_LocatingLoader.add_constructor("tag:yaml.org,2002:seq", _LocatingLoader.construct_yaml_seq)


class _DuplicateOrBadKey(Exception):
    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def load_yaml(text: str, filename: str) -> Any:
    """Parse one YAML document; raise :class:`ProblemsError` naming the place on error.

    An empty document loads as ``None``.
    """
    loader = _LocatingLoader(text)
    try:
        return loader.get_single_data()
    except _DuplicateOrBadKey as exc:
        raise ProblemsError([Problem(filename, exc.mark, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        mark = Mark(where.line + 1, where.column + 1) if where else Mark(1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise ProblemsError([Problem(filename, mark, f"YAML syntax error: {message}")]) from None
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(filename, Mark(1, 1), f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()


def load_yaml_file(path: str) -> Any:
    """Read and parse a YAML file; unreadable files are reported as problems too."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ProblemsError(
            [Problem(path, Mark(1, 1), f"cannot read file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ProblemsError([Problem(path, Mark(1, 1), f"not UTF-8 text: {exc.reason}")]) from None
    return load_yaml(text, path)
