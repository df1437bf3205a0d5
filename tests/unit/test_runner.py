"""Runner semantics: results, failures and on-error, goto, loop guard, hang-up, cancellation."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs
from test_runner_fakes import FakeCall, FakePrompts, run_actions, scenario_text

from mediaserver.actions.runner import MAX_ACTIONS, Run
from mediaserver.actions.scenario import load_scenario_text


async def test_result_variables_and_set() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: gather@v1
          params: {max_digits: 2}
          result: $choice
        - action: set@v1
          params:
            $double: "$choice + $choice"
            $n: "Number($choice) + 1"
            $obj: "{}"
            $obj.key: "$n * 2"
        """,
        keys="42",
    )
    assert outcome.status == "completed" and outcome.error is None
    assert outcome.variables["$choice"] == "42"
    assert outcome.variables["$digits"] == "42"
    assert outcome.variables["$double"] == "4242"
    assert outcome.variables["$n"] == 43
    assert outcome.variables["$obj"] == {"key": 86}
    assert outcome.actions_executed == 2


async def test_initial_variables_scenario_then_caller() -> None:
    outcome, _, _ = await run_actions(
        "- {action: set@v1, params: {$sum: '$a + $b'}}",
        header="variables:\n  $a: 1\n  $b: 2\n",
        variables={"$b": 40},
    )
    assert outcome.variables["$sum"] == 41


def test_constructor_refuses_bad_branch_and_variables() -> None:
    scenario = load_scenario_text(scenario_text("- action: answer@v1"), "t.yaml")
    prompts = FakePrompts()
    with pytest.raises(ValueError, match="no 'api-initiated' branch"):
        Run(scenario, "api-initiated", call=None, prompts=prompts, run_id="r")
    with pytest.raises(ValueError, match="read-only"):
        Run(
            scenario,
            "inbound-call",
            call=None,
            prompts=prompts,
            run_id="r",
            variables={"$digits": "1"},
        )
    with pytest.raises(ValueError, match="invalid variable name"):
        Run(scenario, "inbound-call", call=None, prompts=prompts, run_id="r", variables={"x": 1})
    with pytest.raises(ValueError, match="not a finite number"):
        Run(
            scenario,
            "inbound-call",
            call=None,
            prompts=prompts,
            run_id="r",
            variables={"$x": float("inf")},
        )


async def test_builtins_are_visible() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: set@v1
          params:
            $before: "$call.answered_at"
            $who: "$call.from"
            $where: "$run.scenario + '/' + $run.branch + '/' + $run.id"
            $nothing: "[$digits, $recording, $dial]"
            $fresh: "$now > 1600000000000"
        - action: answer@v1
        - action: set@v1
          params:
            $after: "$call.answered_at"
        """
    )
    variables = outcome.variables
    assert variables["$before"] is None
    assert variables["$after"] == 1_700_000_001_000  # $call follows the call
    assert variables["$who"] == "+33123456789"
    assert variables["$where"] == "test/inbound-call/run-test"
    assert variables["$nothing"] == [None, None, None]
    assert variables["$fresh"] is True


async def test_failing_action_ends_the_run_with_its_place() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: answer@v1
        - action: play@v1
          params: {url: "sounds/missing.wav"}
        - action: say@v1
          params: {text: never}
        """,
        prompts=FakePrompts(missing=("sounds/missing.wav",)),
    )
    assert outcome.status == "failed"
    assert outcome.error == "play@v1 at test.yaml:5: cannot read sounds/missing.wav: no such file"
    assert outcome.actions_executed == 2
    assert call.heard() == []
    assert not call.ended  # the runner leaves hanging up to the call's owner


async def test_expression_failure_fails_the_run() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: if@v1
          params:
            condition: "$missing.count > 1"
            then: []
        """,
        header="variables: {$missing: null}\n",
    )
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("if@v1 at test.yaml:5: ")
    assert "cannot read property 'count' of null" in outcome.error


async def test_on_error_runs_and_the_run_goes_on() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: play@v1
          params: {url: "gone.wav"}
          on-error:
            - action: say@v1
              params: {text: "Sorry"}
            - action: set@v1
              params: {$recovered: "true"}
        - action: say@v1
          params: {text: "After"}
        - action: play@v1
          params: {url: "gone.wav"}
          on-error: []
        - action: say@v1
          params: {text: "End"}
        """,
        prompts=FakePrompts(missing=("gone.wav",)),
    )
    assert outcome.status == "completed"
    assert outcome.variables["$recovered"] is True
    assert call.heard() == ["say:Sorry", "say:After", "say:End"]


async def test_nested_failure_is_handled_by_the_enclosing_on_error() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: if@v1
          params:
            condition: "true"
            then:
              - action: play@v1
                params: {url: "gone.wav"}
              - action: say@v1
                params: {text: "skipped"}
          on-error:
            - action: say@v1
              params: {text: "handled"}
        - action: say@v1
          params: {text: "next"}
        """,
        prompts=FakePrompts(missing=("gone.wav",)),
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:handled", "say:next"]


async def test_failure_inside_on_error_ends_the_run() -> None:
    outcome, _, _ = await run_actions(
        """
        - action: play@v1
          params: {url: "gone.wav"}
          on-error:
            - action: play@v1
              params: {url: "also-gone.wav"}
        """,
        prompts=FakePrompts(missing=("gone.wav", "also-gone.wav")),
    )
    assert outcome.status == "failed"
    assert outcome.error is not None and "play@v1 at test.yaml:7: " in outcome.error


async def test_goto_loop_with_counter_within_a_list() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: set@v1
          params: {$i: 0}
        - label: loop
          action: set@v1
          params: {$i: "$i + 1"}
        - action: say@v1
          params: {text: "round ${i}"}
        - action: if@v1
          params:
            condition: "$i < 3"
            then:
              - {action: goto@v1, params: {label: loop}}
        - action: say@v1
          params: {text: "done"}
        """
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:round 1", "say:round 2", "say:round 3", "say:done"]


async def test_goto_out_of_nested_lists_and_within_a_nested_list() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: set@v1
          params: {$pass: 0, $inner: 0}
        - label: top
          action: set@v1
          params: {$pass: "$pass + 1"}
        - action: switch@v1
          params:
            value: "$pass"
            cases:
              1:
                - label: again
                  action: set@v1
                  params: {$inner: "$inner + 1"}
                - action: if@v1
                  params:
                    condition: "$inner < 2"
                    then: [{action: goto@v1, params: {label: again}}]
                - action: if@v1
                  params:
                    condition: "true"
                    then: [{action: goto@v1, params: {label: top}}]
                - action: say@v1
                  params: {text: "never"}
            default:
              - action: say@v1
                params: {text: "pass ${pass}, inner ${inner}"}
        """
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:pass 2, inner 2"]


async def test_loop_guard_stops_a_goto_loop_at_ten_thousand() -> None:
    assert MAX_ACTIONS == 10_000
    outcome, _, _ = await run_actions(
        """
        - label: spin
          action: set@v1
          params: {$n: "1"}
        - action: goto@v1
          params: {label: spin}
        """
    )
    assert outcome.status == "failed"
    assert outcome.actions_executed == 10_000
    assert outcome.error is not None
    assert "loop guard: more than 10000 actions executed" in outcome.error
    assert "set@v1 at test.yaml:4" in outcome.error


async def test_loop_guard_yields_to_other_tasks() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    outcome, _, _ = await run_actions(
        "- {label: a, action: goto@v1, params: {label: a}}", max_actions=1000
    )
    task.cancel()
    assert outcome.actions_executed == 1000
    assert ticks >= 5


async def test_caller_hangup_ends_the_run_with_status_hangup() -> None:
    call = FakeCall(FakePrompts(), hangup_at=1.5)
    outcome, _, _ = await run_actions(
        """
        - action: answer@v1
        - action: say@v1
          params: {text: "a long sentence that lasts more than a second and a half"}
        - action: say@v1
          params: {text: "never"}
        """,
        call=call,
    )
    assert outcome.status == "hangup"
    assert outcome.error is None
    assert outcome.actions_executed == 2
    assert call.now == pytest.approx(1.5)


async def test_hangup_action_ends_the_run_completed() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: hangup@v1
          params: {reason: user_busy}
        - action: say@v1
          params: {text: never}
        """
    )
    assert outcome.status == "completed" and outcome.actions_executed == 1
    assert (0.0, "hangup:user_busy") in call.events


async def test_cancellation_propagates_and_is_recorded() -> None:
    prompts = FakePrompts()
    call = FakeCall(prompts, block_echo=True)
    scenario = load_scenario_text(scenario_text("- action: answer@v1\n- action: echo@v1"), "t.yaml")
    run = Run(scenario, "inbound-call", call=call, prompts=prompts, run_id="r1")
    task = asyncio.create_task(run.execute())
    for _ in range(20):
        await asyncio.sleep(0)
    assert run.outcome is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert run.outcome is not None
    assert run.outcome.status == "cancelled"
    assert run.outcome.actions_executed == 2


async def test_a_bug_in_an_action_fails_the_run_without_raising() -> None:
    class BrokenPrompts(FakePrompts):
        def tone(self, name: str) -> object:  # type: ignore[override]
            raise RuntimeError("synthesiser on fire")

    outcome, _, _ = await run_actions(
        "- {action: play@v1, params: {tone: beep}}", prompts=BrokenPrompts()
    )
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert "play@v1 at test.yaml:4: internal error: RuntimeError('synthesiser on fire')" in (
        outcome.error
    )


async def test_a_run_executes_once() -> None:
    _, _, run = await run_actions("- action: answer@v1")
    with pytest.raises(RuntimeError):
        await run.execute()


async def test_run_without_call() -> None:
    scenario = load_scenario_text(
        "branches:\n  inbound-message:\n    actions:\n"
        "      - {action: set@v1, params: {$x: '$call === null'}}\n"
        "      - {action: pause@v1, params: {seconds: 0.001}}\n"
        "      - {action: log@v1, params: {message: 'got ${x}'}}\n",
        "m.yaml",
    )
    run = Run(scenario, "inbound-sms", call=None, prompts=FakePrompts(), run_id="m1")
    with capture_logs() as logs:
        outcome = await run.execute()
    assert outcome.status == "completed" and outcome.variables["$x"] is True
    assert any(entry["event"] == "got true" and entry["run_id"] == "m1" for entry in logs)


async def test_action_needing_a_call_fails_in_a_run_without_one() -> None:
    scenario = load_scenario_text(scenario_text("- action: answer@v1"), "t.yaml")
    run = Run(scenario, "inbound-call", call=None, prompts=FakePrompts(), run_id="r")
    outcome = await run.execute()
    assert outcome.status == "failed"
    assert outcome.error == "answer@v1 at t.yaml:4: answer@v1 needs a call, and this run has none"


async def test_actions_are_logged_at_debug_with_the_run_id() -> None:
    with capture_logs() as logs:
        await run_actions("- action: answer@v1\n- {action: log@v1, params: {message: hi}}")
    actions = [entry for entry in logs if entry["event"] == "action"]
    assert [entry["action"] for entry in actions] == ["answer@v1", "log@v1"]
    assert all(entry["run_id"] == "run-test" and entry["log_level"] == "debug" for entry in actions)
    assert actions[0]["line"] == 4
