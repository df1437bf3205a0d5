"""YAML documents that remember where each key and item came from.

Configuration files and scenarios are YAML written by people, and every
mistake in them must be reported as ``FILE:LINE:COL: message``. PyYAML's
composer knows the position of every node; this loader keeps those marks on
the mappings and lists it builds, so validators can point at the exact key
or value that is wrong long after parsing.

Mappings become :class:`LocatedDict`, sequences :class:`LocatedList`; both
are plain ``dict``/``list`` subclasses, so code that only reads values does
not need to know about positions. Duplicate keys, which PyYAML silently
overwrites, are reported as errors; so are different YAML keys that Python
takes for one (``1``, ``1.0`` and ``true``: ``1 == True``), which one dict
cannot hold apart. Keys keep their YAML types, and :meth:`LocatedDict.key_text`
gives a key as it was written (``+33199001234``, read as an int). Merge keys
(``<<``) work as YAML defines them: the mapping's own keys override merged ones.

A document is measured before any Python object is built (:mod:`.yamllimits`):
its size, its nesting depth and its node count with every alias expanded are
bounded, so a "billion laughs" document or 300 nested brackets is refused with
a line and column in milliseconds instead of costing seconds and memory.
Values an explicit tag refuses (``!!int abc``) are reported at their place too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from mediaserver.yamllimits import LimitExceeded, Limits, measure


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
    warning: bool = False
    """A likely mistake that does not stop the file from loading."""

    def __str__(self) -> str:
        severity = "warning: " if self.warning else ""
        return f"{self.file}:{self.mark.line}:{self.mark.column}: {severity}{self.message}"


class ProblemsError(Exception):
    """Raised with every problem found in a document, sorted by position."""

    def __init__(self, problems: list[Problem], warnings: Sequence[Problem] = ()) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.mark))
        self.warnings = list(warnings)  # found along with the problems; not in the message
        super().__init__("\n".join(str(p) for p in self.problems))


class LocatedDict(dict[Any, Any]):
    """A mapping with the position of itself, each key and each value."""

    mark: Mark
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]
    key_texts: dict[Any, str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mark = Mark(1, 1)
        self.key_marks = {}
        self.value_marks = {}
        self.key_texts = {}

    def key_mark(self, key: Any) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: Any) -> Mark:
        return self.value_marks.get(key, self.key_mark(key))

    def key_text(self, key: Any) -> str:
        """The key as written in the file (``+331...`` stays ``+331...``, not the int)."""
        return self.key_texts.get(key, str(key))


class LocatedList(list[Any]):
    """A sequence with the position of itself and of each item."""

    mark: Mark
    item_marks: list[Mark]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.mark = Mark(1, 1)
        self.item_marks = []

    def item_mark(self, index: int) -> Mark:
        if 0 <= index < len(self.item_marks):
            return self.item_marks[index]
        return self.mark


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LocatingLoader(yaml.SafeLoader):
    """SafeLoader that builds located containers and refuses duplicate keys."""

    filename = "<string>"

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data = LocatedDict()
        data.mark = _mark(node)
        yield data
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.flatten_mapping(node)
        # flatten_mapping puts the pairs merged in with "<<" before the mapping's own pairs.
        merged = len(node.value) - own
        written: dict[Any, Any] = {}  # own keys seen so far, as loaded
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            mark = _mark(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise _DuplicateOrBadKey(mark, "a mapping key must be a plain value")
            text = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
            if index >= merged:
                # YAML merge keys: the mapping's own keys override merged ones, silently.
                if key in written:
                    raise _DuplicateOrBadKey(mark, self._clash(data, written[key], key, text))
                written[key] = key
            # Python's 1 == 1.0 == True: drop the old entry so the winning key keeps its type.
            data.pop(key, None)
            data[key] = self.construct_object(value_node, deep=True)
            for marks in (data.key_marks, data.value_marks, data.key_texts):
                marks.pop(key, None)
            data.key_marks[key] = mark
            data.value_marks[key] = _mark(value_node)
            data.key_texts[key] = text

    @staticmethod
    def _clash(data: LocatedDict, first: Any, key: Any, text: str) -> str:
        line = data.key_marks[first].line
        if type(first) is type(key):
            return f"duplicate key {key!r} (first defined at line {line})"
        # Different YAML values that one Python dict cannot hold apart (1, 1.0 and true).
        return (
            f"key {text} and key {data.key_texts[first]} (line {line}) are the same key once "
            f"loaded ({key!r} == {first!r}); quote them to keep both"
        )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, _DuplicateOrBadKey):
            raise  # already located
        except Exception as exc:
            if not isinstance(node, yaml.ScalarNode):
                raise
            # An explicit tag whose constructor refuses the text (!!int abc, empty !!bool).
            raise _DuplicateOrBadKey(_mark(node), _tag_refusal(node, exc)) from None

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data = LocatedList()
        data.mark = _mark(node)
        data.item_marks = [_mark(child) for child in node.value]
        yield data
        data.extend(self.construct_sequence(node, deep=True))


_LocatingLoader.add_constructor("tag:yaml.org,2002:map", _LocatingLoader.construct_yaml_map)
_LocatingLoader.add_constructor("tag:yaml.org,2002:seq", _LocatingLoader.construct_yaml_seq)


_TAG_PREFIX = "tag:yaml.org,2002:"


def _tag_refusal(node: yaml.ScalarNode, exc: Exception) -> str:
    tag = node.tag.removeprefix(_TAG_PREFIX)
    shown = "!!" + tag if tag != node.tag else f"!<{node.tag}>"
    value = node.value if len(node.value) <= 40 else node.value[:40] + "..."
    if tag == "bool":
        reason = "expected true or false"
    elif isinstance(exc, ValueError) and str(exc):
        reason = str(exc)
    else:
        reason = "the tag does not accept this text"
    return f"{value!r} is not a valid {shown} value ({reason}); fix the value or remove the tag"


class _DuplicateOrBadKey(Exception):
    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def load_yaml(text: str, filename: str, limits: Limits | None = None) -> Any:
    """Parse one YAML document; raise :class:`ProblemsError` naming the place on error.

    An empty document loads as ``None``. The document is measured against
    ``limits`` (default :class:`Limits`) before anything is built.
    """
    try:
        measure(text, limits or Limits())
    except LimitExceeded as exc:
        mark = Mark(exc.line, exc.column)
        raise ProblemsError([Problem(filename, mark, exc.message)]) from None
    except yaml.YAMLError:
        pass  # a syntax error: reported with its place by the loader below
    try:
        loader = _LocatingLoader(text)
    except yaml.reader.ReaderError as exc:
        # YAML 1.1 5.1: control characters are not allowed; the reader checks the whole text.
        mark = _text_mark(text, exc.position)
        message = f"YAML syntax error: unacceptable character U+{exc.character:04X} ({exc.reason})"
        raise ProblemsError([Problem(filename, mark, message)]) from None
    try:
        return loader.get_single_data()
    except _DuplicateOrBadKey as exc:
        raise ProblemsError([Problem(filename, exc.mark, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        mark = Mark(where.line + 1, where.column + 1) if where else Mark(1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            if exc.problem.startswith("but "):
                message = f"{exc.context}, {exc.problem}"
            else:
                message = f"{exc.problem} ({exc.context})"
        raise ProblemsError([Problem(filename, mark, f"YAML syntax error: {message}")]) from None
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(filename, Mark(1, 1), f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()


def _text_mark(text: str, position: int) -> Mark:
    """The 1-based line and column of a character index."""
    line_start = text.rfind("\n", 0, position) + 1
    return Mark(text.count("\n", 0, position) + 1, position - line_start + 1)


def load_yaml_file(path: str) -> Any:
    """Read and parse a YAML file; unreadable files are reported as problems too."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ProblemsError(
            [Problem(path, Mark(1, 1), f"cannot read file: {exc.strerror}")]
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Point at the first byte that is not UTF-8, counting columns in characters.
        before = data[: exc.start].decode("utf-8")
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason}); save it as UTF-8"
        raise ProblemsError([Problem(path, _text_mark(before, len(before)), message)]) from None
    return load_yaml(text, path)
