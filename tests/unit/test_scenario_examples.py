"""The example scenarios of configs/scenarios run as their comments say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_runner_fakes import FakeCall, FakePrompts

from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.actions.scenario import load_scenario

CONFIGS = Path(__file__).parents[2] / "configs" / "scenarios"
MENU = "say:Welcome. For sales, press 1. For support, press 2. To hear a tone, press 3."


async def run_example(name: str, call: FakeCall) -> tuple[RunOutcome, list[dict[str, Any]]]:
    scenario = load_scenario(CONFIGS / f"{name}.yaml")
    run = Run(scenario, "inbound-call", call=call, prompts=call.prompts, run_id=f"{name}-1")
    with capture_logs() as logs:
        outcome = await run.execute()
    return outcome, [entry for entry in logs if entry.get("scenario_log")]


@pytest.mark.parametrize(
    ("key", "heard", "logged"),
    [
        ("1", ["say:Sales.", "tone:beep"], "ivr: option 1 sales"),
        ("2", ["say:Support.", "tone:ringback"], "ivr: option 2 support"),
        ("3", ["say:Here is the dial tone.", "tone:dial"], "ivr: option 3 tone"),
    ],
)
async def test_ivr_options(key: str, heard: list[str], logged: str) -> None:
    call = FakeCall(FakePrompts()).press(key, at=2)
    outcome, logs = await run_example("ivr", call)
    assert outcome.status == "completed"
    assert call.heard() == [MENU, *heard, "say:Thank you for calling. Goodbye."]
    assert [entry["event"] for entry in logs if entry["log_level"] == "info"] == [logged]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_ivr_retries_three_times_then_says_goodbye() -> None:
    call = FakeCall(FakePrompts()).press("9", at=1)  # invalid, then silence twice
    outcome, logs = await run_example("ivr", call)
    assert outcome.status == "completed"
    assert outcome.variables["$attempts"] == 3
    sorry = "say:Sorry, I did not get that."
    assert call.heard() == [MENU, sorry, MENU, sorry, MENU, "say:Goodbye.", "tone:busy"]
    assert [entry["event"] for entry in logs if entry["log_level"] == "info"] == ["ivr: no choice"]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_ivr_second_try_succeeds() -> None:
    call = FakeCall(FakePrompts()).press("2", at=12)
    outcome, _ = await run_example("ivr", call)
    assert outcome.variables["$attempts"] == 1
    assert call.heard()[:4] == [MENU, "say:Sorry, I did not get that.", MENU, "say:Support."]


async def test_welcome_reads_back_the_caller_number() -> None:
    call = FakeCall(FakePrompts())
    outcome, logs = await run_example("welcome", call)
    assert outcome.status == "completed"
    assert outcome.variables["$caller"] == "+33123456789"
    assert call.heard() == [
        "say:Hello, and welcome. You are calling from + 3 3 1 2 3 4 5 6 7 8 9.",
        "say:Goodbye.",
    ]
    assert [entry["event"] for entry in logs] == ["welcome: greeting +33123456789"]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_welcome_with_a_bare_user_name() -> None:
    info = {
        "id": "c",
        "from": "alice",
        "to": "welcome",
        "direction": "inbound",
        "sip_call_id": "x",
        "started_at": 0,
        "answered_at": None,
        "headers": {},
    }
    outcome, _ = await run_example("welcome", FakeCall(FakePrompts(), info=info))
    assert outcome.variables["$caller"] == "alice"


async def test_echo_answers_and_echoes_until_hangup() -> None:
    call = FakeCall(FakePrompts(), hangup_at=12)
    outcome, _ = await run_example("echo", call)
    assert outcome.status == "hangup"
    assert [event for _, event in call.events] == ["answer", "echo", "caller hung up"]
    assert call.prompts.speech_requests == []
