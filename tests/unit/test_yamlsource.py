"""YAML loading with positions: located containers, duplicate keys, syntax and file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.yamlsource import (
    LocatedDict,
    LocatedList,
    Mark,
    Problem,
    ProblemsError,
    load_yaml,
    load_yaml_file,
)


def problems(text: str, filename: str = "f.yaml") -> list[str]:
    with pytest.raises(ProblemsError) as info:
        load_yaml(text, filename)
    return [str(p) for p in info.value.problems]


# -- located containers ------------------------------------------------------


DOC = """\
name: demo
count: 3
items:
  - first
  - {inner: 1, other: [a, b]}
nothing:
flow: {x: 1,   y: 2}
"""


def test_mappings_and_sequences_are_located_subclasses() -> None:
    doc = load_yaml(DOC, "doc.yaml")
    assert isinstance(doc, LocatedDict) and isinstance(doc, dict)
    assert isinstance(doc["items"], LocatedList) and isinstance(doc["items"], list)
    assert isinstance(doc["items"][1], LocatedDict)
    assert isinstance(doc["items"][1]["other"], LocatedList)
    # Plain readers see plain values.
    assert doc == {
        "name": "demo",
        "count": 3,
        "items": ["first", {"inner": 1, "other": ["a", "b"]}],
        "nothing": None,
        "flow": {"x": 1, "y": 2},
    }


def test_marks_of_keys_and_values_are_one_based() -> None:
    doc = load_yaml(DOC, "doc.yaml")
    assert doc.mark == Mark(1, 1)
    assert doc.key_mark("name") == Mark(1, 1)
    assert doc.value_mark("name") == Mark(1, 7)
    assert doc.key_mark("count") == Mark(2, 1)
    assert doc.value_mark("count") == Mark(2, 8)
    assert doc.key_mark("items") == Mark(3, 1)
    assert doc.value_mark("items") == Mark(4, 3)  # the sequence starts at its first "-"
    flow = doc["flow"]
    assert flow.mark == Mark(7, 7)
    assert flow.key_mark("y") == Mark(7, 16)
    assert flow.value_mark("y") == Mark(7, 19)


def test_marks_of_list_items() -> None:
    doc = load_yaml(DOC, "doc.yaml")
    items = doc["items"]
    assert items.mark == Mark(4, 3)
    assert items.item_mark(0) == Mark(4, 5)
    assert items.item_mark(1) == Mark(5, 5)
    inner = items[1]
    assert inner.mark == Mark(5, 5)
    assert inner.key_mark("other") == Mark(5, 16)
    assert inner["other"].item_mark(1) == Mark(5, 27)


def test_a_missing_value_is_null_and_located_after_its_key() -> None:
    doc = load_yaml(DOC, "doc.yaml")
    assert doc["nothing"] is None
    assert doc.key_mark("nothing") == Mark(6, 1)
    assert doc.value_mark("nothing").line == 6


def test_unknown_keys_and_indexes_fall_back_to_the_container() -> None:
    doc = load_yaml(DOC, "doc.yaml")
    assert doc.key_mark("absent") == doc.mark
    assert doc.value_mark("absent") == doc.mark
    items = doc["items"]
    assert items.item_mark(2) == items.mark
    assert items.item_mark(-1) == items.mark


def test_containers_built_by_hand_have_empty_marks() -> None:
    mapping = LocatedDict(a=1)
    assert mapping == {"a": 1}
    assert mapping.mark == Mark(1, 1)
    assert mapping.key_mark("a") == Mark(1, 1)
    assert mapping.key_text("a") == "a"
    sequence = LocatedList([1, 2])
    assert sequence == [1, 2] and sequence.item_mark(0) == Mark(1, 1)


def test_key_types_follow_yaml_and_the_text_as_written_is_kept() -> None:
    doc = load_yaml('+33199001234: a\n"+33100": b\n0x1F: c\nyes: d\n1.5: e\n~: f\n', "f")
    assert doc == {33199001234: "a", "+33100": "b", 31: "c", True: "d", 1.5: "e", None: "f"}
    assert doc.key_text(33199001234) == "+33199001234"
    assert doc.key_text("+33100") == "+33100"
    assert doc.key_text(31) == "0x1F"
    assert doc.key_text(True) == "yes"
    assert doc.key_text(None) == "~"


def test_anchors_aliases_and_merge_keys() -> None:
    text = "base: &b {a: 1, c: 3}\nx:\n  <<: *b\n  a: 2\ny: *b\n"
    doc = load_yaml(text, "f")
    # YAML merge: the mapping's own keys override merged ones, and that is no duplicate.
    assert doc["x"] == {"a": 2, "c": 3}
    assert doc["x"].key_mark("a") == Mark(4, 3)
    assert doc["x"].key_mark("c") == Mark(1, 17)  # where the merged key was written
    assert doc["y"] is doc["base"]


def test_merging_several_mappings_takes_the_first_one_listed() -> None:
    doc = load_yaml("a: &a {k: 1}\nb: &b {k: 2, j: 0}\nc:\n  <<: [*a, *b]\n", "f")
    assert doc["c"] == {"k": 1, "j": 0}


def test_a_duplicate_key_after_a_merge_is_still_a_duplicate() -> None:
    text = "base: &b {a: 1}\nx:\n  <<: *b\n  a: 2\n  a: 3\n"
    assert problems(text) == ["f.yaml:5:3: duplicate key 'a' (first defined at line 4)"]


# -- duplicate keys ----------------------------------------------------------


def test_duplicate_keys_are_reported_at_the_second_one() -> None:
    assert problems("a: 1\nb: 2\na: 3\n") == [
        "f.yaml:3:1: duplicate key 'a' (first defined at line 1)"
    ]


def test_duplicate_keys_in_nested_and_flow_mappings() -> None:
    assert problems("top:\n  inner: {k: 1, k: 2}\n") == [
        "f.yaml:2:17: duplicate key 'k' (first defined at line 2)"
    ]


def test_the_same_number_written_twice_is_a_duplicate() -> None:
    assert problems("1: a\n0x1: b\n") == ["f.yaml:2:1: duplicate key 1 (first defined at line 1)"]
    assert problems("~: a\nnull: b\n") == [
        "f.yaml:2:1: duplicate key None (first defined at line 1)"
    ]


@pytest.mark.parametrize(
    ("text", "loaded"),
    [
        ("1: a\n'1': b\n", {1: "a", "1": "b"}),
        ("true: a\n'true': b\n", {True: "a", "true": "b"}),
        ("a: x\nA: y\n", {"a": "x", "A": "y"}),
    ],
)
def test_keys_of_different_types_are_not_duplicates(text: str, loaded: dict[object, str]) -> None:
    doc = load_yaml(text, "f")
    assert doc == loaded
    assert [type(k) for k in doc] == [type(k) for k in loaded]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1: a\ntrue: b\n",
            "f.yaml:2:1: key true and key 1 (line 1) are the same key once loaded "
            "(True == 1); quote them to keep both",
        ),
        (
            "1: a\n1.0: b\n",
            "f.yaml:2:1: key 1.0 and key 1 (line 1) are the same key once loaded "
            "(1.0 == 1); quote them to keep both",
        ),
        (
            "false: a\n0: b\n",
            "f.yaml:2:1: key 0 and key false (line 1) are the same key once loaded "
            "(0 == False); quote them to keep both",
        ),
    ],
)
def test_different_yaml_keys_that_python_equates_are_not_called_duplicates(
    text: str, message: str
) -> None:
    # 1, 1.0 and true are different YAML values but one dict key in Python (1 == True):
    # the loader says so instead of "duplicate key", and keeps no key silently.
    assert problems(text) == [message]


def test_keys_must_be_plain_values() -> None:
    assert problems("? [a, b]\n: 1\n") == ["f.yaml:1:3: a mapping key must be a plain value"]
    assert problems("? {a: 1}\n: 1\n") == ["f.yaml:1:3: a mapping key must be a plain value"]


# -- syntax errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: [1, 2\nb: 3\n",
            "f.yaml:2:2: YAML syntax error: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence)",
        ),
        (
            "a: 1\n  b: 2\n",
            "f.yaml:2:4: YAML syntax error: mapping values are not allowed here",
        ),
        (
            "a:\n\tb: 1\n",
            "f.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token "
            "(while scanning for the next token)",
        ),
        (
            "a: *nowhere\n",
            "f.yaml:1:4: YAML syntax error: found undefined alias 'nowhere'",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "f.yaml:2:1: YAML syntax error: expected a single document in the stream, "
            "but found another document",
        ),
        (
            'a: "open\n',
            "f.yaml:2:1: YAML syntax error: found unexpected end of stream "
            "(while scanning a quoted scalar)",
        ),
    ],
)
def test_syntax_errors_name_the_position(text: str, message: str) -> None:
    assert problems(text) == [message]


def test_python_tags_are_refused() -> None:
    (message,) = problems("a: !!python/object/apply:os.system [ls]\n")
    assert message.startswith("f.yaml:1:4: YAML syntax error: could not determine a constructor")


def test_control_characters_are_reported_where_they_are() -> None:
    assert problems("ok: 1\nbad: x\x01y\n") == [
        "f.yaml:2:7: YAML syntax error: unacceptable character U+0001 "
        "(special characters are not allowed)"
    ]


# -- empty documents -----------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "--- \n...\n"])
def test_empty_documents_load_as_none(text: str) -> None:
    assert load_yaml(text, "f") is None


def test_a_lone_scalar_or_list_loads_as_itself() -> None:
    assert load_yaml("hello\n", "f") == "hello"
    assert load_yaml("- 1\n- 1\n", "f") == [1, 1]  # repeated items are fine


# -- files -------------------------------------------------------------------


def test_a_file_loads_and_problems_name_it(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("a: [1, 2]\n", encoding="utf-8")
    assert load_yaml_file(str(good)) == {"a": [1, 2]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(ProblemsError) as info:
        load_yaml_file(str(bad))
    assert str(info.value) == f"{bad}:2:1: duplicate key 'a' (first defined at line 1)"


def test_utf8_text_with_a_bom_and_crlf_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffname: café\r\nnext: [1,\r\n 2, x]\r\n".encode())
    doc = load_yaml_file(str(path))
    assert doc == {"name": "café", "next": [1, 2, "x"]}
    assert doc["next"].item_mark(2) == Mark(3, 5)


def test_non_utf8_files_point_at_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("first: é\nsecond: caf".encode() + b"\xe9\n")
    with pytest.raises(ProblemsError) as info:
        load_yaml_file(str(path))
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2:12: not UTF-8 text: byte 0xe9 (invalid continuation byte); save it as UTF-8"
    ]


def test_missing_files_and_folders_are_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ProblemsError) as info:
        load_yaml_file(str(missing))
    assert str(info.value) == f"{missing}:1:1: cannot read file: No such file or directory"
    with pytest.raises(ProblemsError) as info:
        load_yaml_file(str(tmp_path))
    assert str(info.value) == f"{tmp_path}:1:1: cannot read file: Is a directory"


def test_problems_print_as_file_line_column_and_sort_by_position() -> None:
    found = [
        Problem("b.yaml", Mark(1, 1), "third"),
        Problem("a.yaml", Mark(10, 2), "second"),
        Problem("a.yaml", Mark(2, 30), "first"),
    ]
    error = ProblemsError(found)
    assert [p.message for p in error.problems] == ["first", "second", "third"]
    assert str(error) == "a.yaml:2:30: first\na.yaml:10:2: second\nb.yaml:1:1: third"


# -- explicit tags and bounds (hardening: hostile documents) ------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: !!int abc\n", "f.yaml:1:4: 'abc' is not a valid !!int value (invalid literal"),
        ("a: !!float .\n", "f.yaml:1:4: '.' is not a valid !!float value (could not convert"),
        ("a: !!timestamp 2001-13-45\n", "f.yaml:1:4: '2001-13-45' is not a valid !!timestamp"),
        ("a: !!timestamp soon\n", "f.yaml:1:4: 'soon' is not a valid !!timestamp value"),
        ("a: !!bool\n", "f.yaml:1:4: '' is not a valid !!bool value (expected true or false)"),
        # Found by fuzzing: an empty !!int or !!float (IndexError inside PyYAML).
        ("a: !!int\n", "f.yaml:1:4: '' is not a valid !!int value (the tag does not accept"),
        ("a: !!float\n", "f.yaml:1:4: '' is not a valid !!float value (the tag does not"),
        ("a:\n  - !!int " + "9" * 5000 + "\n", "f.yaml:2:5: '99999"),
    ],
)
def test_values_an_explicit_tag_refuses_are_located(text: str, expected: str) -> None:
    [found] = problems(text)
    assert found.startswith(expected)


def test_deep_nesting_is_refused_before_building() -> None:
    assert problems("a: " + "[" * 300 + "]" * 300 + "\n") == [
        "f.yaml:1:67: nested too deeply: more than 64 levels"
    ]
    block = "".join("  " * i + "a:\n" for i in range(300))
    assert problems(block) == ["f.yaml:65:129: nested too deeply: more than 64 levels"]
    # Up to the limit is fine.
    assert load_yaml("[" * 64 + "]" * 64, "f.yaml") is not None


def test_aliases_count_as_what_they_name() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    assert problems("\n".join(lines)) == [
        "f.yaml:5:45: too many values: more than 100000 once aliases are expanded "
        "(aliases that repeat aliases multiply)"
    ]
    # An alias nests what it names: depth counts it too.
    deep = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30
    assert problems(deep) == [
        "f.yaml:2:34: nested too deeply once aliases are expanded: more than 64 levels"
    ]
    # So does text.
    big = 'a: &a "' + "x" * 100_000 + '"\nb: [' + ", ".join(["*a"] * 11) + "]"
    assert problems(big)[0].startswith("f.yaml:2:")
    assert "too much text" in problems(big)[0]
    # Plain reuse stays fine.
    assert load_yaml("a: &a [1, 2]\nb: [*a, *a]\n", "f.yaml") == {"a": [1, 2], "b": [[1, 2]] * 2}


def test_an_alias_inside_what_it_names_is_a_loop() -> None:
    assert problems("m: &l {k: *l}\n") == [
        "f.yaml:1:11: alias *l is inside the node it names (a loop)"
    ]


def test_oversized_documents_are_refused_with_their_size() -> None:
    text = "a: " + "x" * 1_000_000 + "\n"
    assert problems(text) == [
        "f.yaml:1:1: document too large: 1000004 characters, at most 1000000; "
        "split it into several files"
    ]
