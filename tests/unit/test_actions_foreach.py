"""foreach@v1: lists and objects, its variables, goto in and out of it, the loop guard."""

from __future__ import annotations

import pytest
from test_runner_fakes import run_actions, scenario_text

from mediaserver.actions.scenario import load_scenario_text
from mediaserver.yamlsource import ProblemsError


def problems(actions: str, branch: str = "inbound-call") -> list[str]:
    try:
        load_scenario_text(scenario_text(actions, branch=branch), "t.yaml")
    except ProblemsError as exc:
        return [problem.message for problem in exc.problems]
    return []


async def test_a_list_gives_value_index_and_counter() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "['Whiskers', 'Spot', 'Bubbles']"
            do:
              - action: say@v1
                params: {text: "${key}/${index}: ${item}"}
        """
    )
    assert outcome.status == "completed", outcome.error
    assert call.heard() == ["say:0/0: Whiskers", "say:1/1: Spot", "say:2/2: Bubbles"]
    # Ordinary variables: they keep the last item's values.
    assert outcome.variables["$item"] == "Bubbles"
    assert (outcome.variables["$key"], outcome.variables["$index"]) == (2, 2)


async def test_an_object_gives_its_names_in_javascript_order() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "$pets"
            as: $v
            key: $k
            index: $n
            do:
              - action: say@v1
                params: {text: "${n} ${k}=${v.name}"}
        """,
        header="variables: {$pets: {}}\n",
        variables={
            "$pets": {"cat": {"name": "Whiskers"}, "2": {"name": "Two"}, "dog": {"name": "Spot"}}
        },
    )
    assert outcome.status == "completed", outcome.error
    # JavaScript puts integer-like property names first.
    assert call.heard() == ["say:0 2=Two", "say:1 cat=Whiskers", "say:2 dog=Spot"]
    assert "$item" not in outcome.variables


async def test_a_literal_list_and_an_empty_one() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: [1, 2]
            do: [{action: set@v1, params: {$sum: "$sum + $item"}}]
        - action: foreach@v1
          params:
            items: "[]"
            do: [{action: say@v1, params: {text: "never"}}]
        """,
        variables={"$sum": 10},
    )
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$sum"] == 13
    assert call.heard() == []


async def test_items_are_evaluated_once() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "$list"
            do:
              - action: set@v1
                params: {$list: "$list.concat([$item])", $count: "$count + 1"}
        """,
        variables={"$list": [1, 2, 3], "$count": 0},
    )
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$count"] == 3
    assert outcome.variables["$list"] == [1, 2, 3, 1, 2, 3]


async def test_nested_loops_with_their_own_names() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "['a', 'b']"
            as: $row
            key: $r
            index: $ri
            do:
              - action: foreach@v1
                params:
                  items: "[1, 2]"
                  do:
                    - action: set@v1
                      params: {$cells: "$cells.concat([$row + $item])"}
        """,
        variables={"$cells": []},
    )
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$cells"] == ["a1", "a2", "b1", "b2"]


@pytest.mark.parametrize(
    ("items", "shown"),
    [("5", "5"), ("'abc'", "'abc'"), ("null", "nothing (null)"), ("true", "true")],
)
async def test_items_must_be_a_list_or_an_object(items: str, shown: str) -> None:
    outcome, _, _ = await run_actions(
        f"""
        - action: foreach@v1
          params:
            items: "{items}"
            do: [{{action: log@v1, params: {{message: x}}}}]
        """
    )
    assert outcome.status == "failed"
    assert outcome.error == (
        f"foreach@v1 at test.yaml:4: items: {items} is {shown}; expected a list or an object"
    )


async def test_a_failing_items_expression_goes_to_on_error() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "$nothing.list"
            do: [{action: say@v1, params: {text: "never"}}]
          on-error: [{action: say@v1, params: {text: "no list"}}]
        """,
        header="variables: {$nothing: null}\n",
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:no list"]


# -- goto and the loop guard ----------------------------------------------------------------


async def test_goto_out_of_the_loop_breaks_it() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "[1, 2, 3, 4]"
            do:
              - action: if@v1
                params:
                  condition: "$item === 3"
                  then: [{action: goto@v1, params: {label: found}}]
              - action: say@v1
                params: {text: "item ${item}"}
        - action: say@v1
          params: {text: "not found"}
        - label: found
          action: say@v1
          params: {text: "found at ${index}"}
        """
    )
    assert outcome.status == "completed", outcome.error
    assert call.heard() == ["say:item 1", "say:item 2", "say:found at 2"]


async def test_goto_inside_the_loop_body() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "['a', 'b']"
            do:
              - action: set@v1
                params: {$tries: 0}
              - label: again
                action: set@v1
                params: {$tries: "$tries + 1"}
              - action: if@v1
                params:
                  condition: "$tries < 2"
                  then: [{action: goto@v1, params: {label: again}}]
              - action: say@v1
                params: {text: "${item} after ${tries}"}
        """
    )
    assert outcome.status == "completed", outcome.error
    assert call.heard() == ["say:a after 2", "say:b after 2"]


async def test_goto_back_before_the_loop_restarts_it() -> None:
    outcome, _, _ = await run_actions(
        """
        - label: top
          action: set@v1
          params: {$rounds: "$rounds + 1"}
        - action: foreach@v1
          params:
            items: "[1, 2]"
            do:
              - action: set@v1
                params: {$seen: "$seen + 1"}
              - action: if@v1
                params:
                  condition: "$rounds < 3 && $item === 2"
                  then: [{action: goto@v1, params: {label: top}}]
        """,
        variables={"$rounds": 0, "$seen": 0},
    )
    assert outcome.status == "completed", outcome.error
    assert (outcome.variables["$rounds"], outcome.variables["$seen"]) == (3, 6)


async def test_every_action_of_the_loop_counts_for_the_loop_guard() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "Array.from({length: 1000}, (_, i) => i)"
            do:
              - {action: set@v1, params: {$last: "$item"}}
        """,
        max_actions=500,
    )
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith(
        "loop guard: more than 500 actions executed, stopped before set@v1 at test.yaml:8"
    )
    assert outcome.variables["$last"] == 498  # the foreach itself was the first action


async def test_the_default_loop_guard_stops_a_long_loop() -> None:
    outcome, _, run = await run_actions(
        """
        - action: foreach@v1
          params:
            items: "Array.from({length: 20000}, (_, i) => i)"
            do:
              - {action: log@v1, params: {message: "${item}", level: debug}}
        """
    )
    assert outcome.status == "failed"
    assert "loop guard: more than 10000 actions executed" in str(outcome.error)
    assert run.actions_executed == 10_000


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{do: [{action: hangup@v1}]}", "foreach@v1: missing required parameter 'items'"),
        ("{items: '[1]'}", "foreach@v1: missing required parameter 'do'"),
        ("{items: '[1]', do: []}", "foreach@v1: do: give at least one action"),
        ("{items: '[1', do: [{action: hangup@v1}]}", "foreach@v1: items: invalid expression"),
        ("{items: '[1]', as: item, do: [{action: hangup@v1}]}", "foreach@v1: as: 'item' is not"),
        ("{items: '[1]', as: $call, do: [{action: hangup@v1}]}", "foreach@v1: as: $call is a"),
        ("{items: '[1]', key: $x, index: $x, do: [{action: hangup@v1}]}", "foreach@v1: index: $x"),
        ("{items: '[1]', as: $key, do: [{action: hangup@v1}]}", "foreach@v1: key: $key is already"),
        ("{items: '[1]', each: $x, do: [{action: hangup@v1}]}", "foreach@v1 has no parameter"),
        ("{items: '[1]', do: [{action: nope@v1}]}", "unknown action 'nope@v1'"),
    ],
)
def test_foreach_params_are_checked(params: str, message: str) -> None:
    found = problems(f"- {{action: foreach@v1, params: {params}}}")
    assert any(p.startswith(message) for p in found), found


def test_foreach_runs_without_a_call_but_its_actions_are_checked() -> None:
    log = "{action: log@v1, params: {message: x}}"
    ok = f"- {{action: foreach@v1, params: {{items: '[1]', do: [{log}]}}}}"
    assert problems(ok, "inbound-message") == []
    bad = "- {action: foreach@v1, params: {items: '[1]', do: [{action: hangup@v1}]}}"
    assert problems(bad, "inbound-message") == [
        "hangup@v1 needs a call, and the inbound-message branch has none"
    ]


def test_goto_into_the_loop_body_is_refused() -> None:
    found = problems(
        """
        - action: goto@v1
          params: {label: inside}
        - action: foreach@v1
          params:
            items: "[1]"
            do:
              - label: inside
                action: log@v1
                params: {message: x}
        """
    )
    assert any("inside another action list" in p for p in found), found
