"""set, if, switch, goto and log."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from test_runner_fakes import run_actions


async def test_set_in_order_with_literals_and_paths() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: set@v1
          params:
            $counter: "0"
            $name: "'MyConference'"
            $myObj: "{}"
            $myPets: "['Whiskers', 'Spot', 'Bubbles']"
            $literal: 5
            $list: [1, "two"]
            $text: "$name + $counter"
        - action: set@v1
          params:
            $myObj.foo: "'bar'"
            $myDog: "$myPets[1]"
            $list[2]: "3"
        """
    )
    variables = outcome.variables
    assert variables["$counter"] == 0
    assert variables["$name"] == "MyConference"
    assert variables["$text"] == "MyConference0"
    assert variables["$myObj"] == {"foo": "bar"}
    assert variables["$myDog"] == "Spot"
    assert variables["$literal"] == 5
    assert variables["$list"] == [1, "two", 3]


async def test_set_sees_earlier_pairs_of_the_same_action() -> None:
    outcome, _, _ = await run_actions(
        "- {action: set@v1, params: {$a: '1', $b: '$a + 1', $c: '$b * 10'}}"
    )
    assert outcome.variables["$c"] == 20


async def test_set_to_a_missing_object_fails() -> None:
    outcome, _, _ = await run_actions("- {action: set@v1, params: {$ghost.x: '1'}}")
    assert outcome.status == "failed"
    assert outcome.error is not None and "$ghost is not defined" in outcome.error


@pytest.mark.parametrize(
    ("condition", "branch"),
    [
        ("true", "then"),
        ("'0'", "then"),
        ("[]", "then"),
        ("0", "else"),
        ("''", "else"),
        ("null", "else"),
        ("!$digits && $attempts < 3", "then"),
        ("$attempts >= 3", "else"),
    ],
)
async def test_if_uses_javascript_truthiness(condition: str, branch: str) -> None:
    outcome, _, _ = await run_actions(
        f"""
        - action: if@v1
          params:
            condition: "{condition}"
            then: [{{action: set@v1, params: {{$went: "'then'"}}}}]
            else: [{{action: set@v1, params: {{$went: "'else'"}}}}]
        """,
        header="variables:\n  $attempts: 1\n",
    )
    assert outcome.variables["$went"] == branch


async def test_if_without_else_does_nothing_when_false() -> None:
    outcome, _, _ = await run_actions(
        "- {action: if@v1, params: {condition: false, then: [{action: hangup@v1}]}}"
    )
    assert outcome.status == "completed" and outcome.actions_executed == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'1'", "one"),
        ("1", "one"),
        ("2", "two"),
        ("null", "nothing"),
        ("1 == 1", "yes"),
        ("'x'", "other"),
    ],
)
async def test_switch_compares_string_forms(value: str, expected: str) -> None:
    outcome, _, _ = await run_actions(
        f"""
        - action: switch@v1
          params:
            value: "{value}"
            cases:
              1: [{{action: set@v1, params: {{$out: "'one'"}}}}]
              "2": [{{action: set@v1, params: {{$out: "'two'"}}}}]
              null: [{{action: set@v1, params: {{$out: "'nothing'"}}}}]
              "true": [{{action: set@v1, params: {{$out: "'yes'"}}}}]
            default: [{{action: set@v1, params: {{$out: "'other'"}}}}]
        """
    )
    assert outcome.variables["$out"] == expected


async def test_switch_without_default_and_no_match() -> None:
    outcome, _, _ = await run_actions(
        "- {action: switch@v1, params: {value: \"'z'\", cases: {a: [{action: hangup@v1}]}}}"
    )
    assert outcome.status == "completed" and outcome.actions_executed == 1


async def test_log_levels_and_interpolation() -> None:
    with capture_logs() as logs:
        await run_actions(
            """
            - {action: log@v1, params: {message: "value ${1 + 1}"}}
            - {action: log@v1, params: {message: "careful", level: warning}}
            """
        )
    scenario_logs = [entry for entry in logs if entry.get("scenario_log")]
    assert [(entry["event"], entry["log_level"]) for entry in scenario_logs] == [
        ("value 2", "info"),
        ("careful", "warning"),
    ]
    assert scenario_logs[0]["action"] == "log@v1" and scenario_logs[0]["line"] == 4
