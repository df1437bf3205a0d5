"""The shared interpreter of action lists, on a toy language of tuples.

An action is ``("label", name)``, ``("goto", name)``, ``("say", text)`` or
``("block", actions)`` (a nested list walked by the same interpreter).
"""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.actions.interpreter import Interpreter, Jump, entries

Toy = tuple[str, Any]


class GuardTripped(Exception):
    pass


def toy() -> tuple[Interpreter[Toy], list[str]]:
    said: list[str] = []

    async def step(action: Toy) -> None:
        kind, value = action
        if kind == "say":
            said.append(value)
        elif kind == "goto":
            raise Jump(value)
        elif kind == "block":
            await interpreter.run_list(value)

    def guard(action: Toy, limit: int) -> BaseException:
        return GuardTripped(f"more than {limit} steps, stopped before {action}")

    def label_of(action: Toy) -> str | None:
        return action[1] if action[0] == "label" else None

    interpreter: Interpreter[Toy] = Interpreter(step, label_of=label_of, guard=guard, max_steps=50)
    return interpreter, said


async def test_actions_run_in_order_and_count_as_steps() -> None:
    interpreter, said = toy()
    await interpreter.run_list([("say", "a"), ("label", "x"), ("say", "b")])
    assert said == ["a", "b"]
    assert interpreter.steps == 3


async def test_a_goto_jumps_backwards_within_its_list() -> None:
    interpreter, said = toy()
    actions: list[Toy] = [("say", "a"), ("label", "top"), ("say", "b"), ("goto", "top")]
    with pytest.raises(GuardTripped, match="more than 50 steps"):
        await interpreter.run_list(actions)
    assert said[:3] == ["a", "b", "b"]
    assert interpreter.steps == 50


async def test_a_goto_leaves_nested_lists_for_an_enclosing_label() -> None:
    interpreter, said = toy()
    inner: list[Toy] = [("say", "in"), ("block", [("goto", "out")]), ("say", "skipped")]
    await interpreter.run_list([("block", inner), ("say", "skipped too"), ("label", "out")])
    assert said == ["in"]


async def test_a_goto_to_no_label_goes_out_to_the_caller() -> None:
    interpreter, said = toy()
    with pytest.raises(Jump) as raised:
        await interpreter.run_list([("say", "a"), ("goto", "nowhere"), ("say", "b")])
    assert raised.value.label == "nowhere"
    assert said == ["a"]


def test_jump_is_not_swallowed_by_except_exception() -> None:
    assert not issubclass(Jump, Exception)


async def test_restart_gives_a_full_guard_again() -> None:
    interpreter, _ = toy()
    with pytest.raises(GuardTripped):
        await interpreter.run_list([("label", "l"), ("goto", "l")])
    interpreter.restart()
    assert interpreter.steps == 0
    await interpreter.run_list([("say", "again")])
    assert interpreter.steps == 1


async def test_two_lists_with_the_same_contents_keep_their_own_labels() -> None:
    interpreter, said = toy()
    await interpreter.run_list([("label", "a"), ("say", "first")])
    # A different list (a new Call Flow answer) whose label stands elsewhere.
    await interpreter.run_list([("goto", "b"), ("say", "skipped"), ("label", "b"), ("say", "x")])
    assert said == ["first", "x"]


def test_entries_of_a_list_an_object_and_anything_else() -> None:
    assert entries(["a", "b"]) == [(0, "a"), (1, "b")]
    assert entries({"k": 1}) == [("k", 1)]
    assert entries("text") is None
