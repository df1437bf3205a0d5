"""transfer@v1 and queue@v1 against a fake call: parameters, results, checks."""

from __future__ import annotations

from test_runner_fakes import FakeCall, FakePrompts, run_actions, scenario_text
from test_scenario_examples import run_example

from mediaserver.actions.scenario import load_scenario_text
from mediaserver.yamlsource import ProblemsError


def problems(actions: str) -> list[str]:
    try:
        load_scenario_text(scenario_text(actions), "t.yaml")
    except ProblemsError as exc:
        return [problem.message for problem in exc.problems]
    return []


# -- transfer@v1 ---------------------------------------------------------------------------


async def test_transfer_passes_the_interpolated_target_and_mode() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: transfer@v1
          params: {target: 'sip:${agent}@127.0.0.1', mode: refer}
          result: $how
        """,
        variables={"$agent": "alice"},
    )
    assert outcome.status == "completed"
    assert call.events == [(0.0, "transfer:sip:alice@127.0.0.1:refer")]
    assert outcome.variables["$how"] == "transferred"


async def test_a_failed_transfer_leaves_the_call_to_the_scenario() -> None:
    call = FakeCall(FakePrompts(), answered=True)
    call.transfer_outcome = "failed"
    outcome, call, _ = await run_actions(
        """
        - action: transfer@v1
          params: {target: '1001'}
          result: $how
        - action: say@v1
          params: {text: 'Sorry, nobody is free.'}
        """,
        call=call,
    )
    assert outcome.status == "completed"
    assert call.events[0] == (0.0, "transfer:1001:auto")
    assert outcome.variables["$how"] == "failed"
    assert call.heard() == ["say:Sorry, nobody is free."]


def test_transfer_parameters_are_checked() -> None:
    assert any("target" in p for p in problems("- {action: transfer@v1, params: {}}"))
    assert any(
        "mode" in p and "refer" in p
        for p in problems("- {action: transfer@v1, params: {target: x, mode: attended}}")
    )


# -- queue@v1 ------------------------------------------------------------------------------


async def test_enqueue_answers_and_holds_with_ringback_by_default() -> None:
    call = FakeCall(FakePrompts())
    call.queue_wait = 42.0
    outcome, call, _ = await run_actions(
        "- {action: queue@v1, params: {name: sales}, result: $queued}", call=call
    )
    assert outcome.status == "completed"
    assert call.events == [(0.0, "answer"), (0.0, "enqueue:sales:tone:ringback")]
    assert outcome.variables["$queued"] == "bridged"
    assert call.now == 42.0


async def test_enqueue_times_out_after_max_wait() -> None:
    call = FakeCall(FakePrompts())
    call.queue_wait = 600.0
    outcome, call, _ = await run_actions(
        """
        - action: queue@v1
          params: {name: 'support-${lang}', hold_audio: music.wav, max_wait: 90}
          result: $queued
        """,
        call=call,
        variables={"$lang": "fr"},
    )
    assert outcome.variables["$queued"] == "timeout"
    assert call.events[-1] == (0.0, "enqueue:support-fr:file:music.wav")
    assert call.now == 90.0


async def test_enqueue_announces_the_position_in_words() -> None:
    outcome, call, _ = await run_actions(
        "- {action: queue@v1, params: {name: sales, announce_position: true}}"
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:You are next in line."]


async def test_a_missing_hold_file_fails_the_action() -> None:
    outcome, _, _ = await run_actions(
        "- {action: queue@v1, params: {name: sales, hold_audio: nothere.wav}}",
        prompts=FakePrompts(missing=("nothere.wav",)),
    )
    assert outcome.status == "failed"
    assert "nothere.wav" in str(outcome.error)


async def test_bridge_next_reports_an_empty_queue() -> None:
    call = FakeCall(FakePrompts(), answered=True)
    call.queue_outcome = "empty"
    outcome, call, _ = await run_actions(
        "- {action: queue@v1, params: {name: sales, command: bridge-next}, result: $got}",
        call=call,
    )
    assert call.events == [(0.0, "bridge-next:sales")]
    assert outcome.variables["$got"] == "empty"


def test_queue_parameters_are_checked() -> None:
    assert any("name" in p for p in problems("- {action: queue@v1, params: {}}"))
    assert problems(
        "- {action: queue@v1, params: {name: q, command: bridge-next, max_wait: 10}}"
    ) == ["queue@v1: max_wait applies to enqueue, not bridge-next"]
    assert any(
        "command" in p
        for p in problems("- {action: queue@v1, params: {name: q, command: dequeue}}")
    )
    assert any(
        "max_wait" in p for p in problems("- {action: queue@v1, params: {name: q, max_wait: 0}}")
    )


# -- the queue and agent examples of configs/scenarios ---------------------------------------

GREETING = (
    "say:Thank you for calling. All our agents are busy; please hold and the next one "
    "will take your call."
)


async def test_queue_example_waits_for_an_agent() -> None:
    call = FakeCall(FakePrompts())
    call.queue_wait = 30.0
    outcome, logs = await run_example("queue", call)
    assert outcome.status == "completed"
    assert call.heard() == [GREETING, "say:You are next in line."]
    assert "enqueue:support:tone:ringback" in [event for _, event in call.events]
    assert [entry["event"] for entry in logs] == ["queue: bridged"]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_queue_example_offers_voicemail_after_five_minutes() -> None:
    call = FakeCall(FakePrompts(), hangup_at=400.0)
    call.queue_wait = 1000.0
    outcome, logs = await run_example("queue", call)
    assert [entry["event"] for entry in logs] == ["queue: timeout"]
    assert call.heard()[-2:] == [
        "say:Sorry, nobody could take your call. Please leave a message after the tone.",
        "tone:beep",
    ]
    assert outcome.variables["$recording"] is not None


async def test_agent_example_takes_callers_until_the_agent_hangs_up() -> None:
    call = FakeCall(FakePrompts(), hangup_at=12.0)
    call.queue_outcome = "empty"
    outcome, logs = await run_example("agent", call)
    assert outcome.status == "hangup"
    takes = [at for at, event in call.events if event == "bridge-next:support"]
    assert len(takes) == 3  # at once, then after each 5 s pause
    assert [entry["event"] for entry in logs] == ["agent: empty"] * 3
    assert call.heard() == ["say:Nobody is waiting."] * 3
