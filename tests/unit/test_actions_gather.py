"""gather@v1: digits, finish key, timeouts, validity, attempts, prompts and type-ahead.

The fake call runs on a virtual clock: a prompt "say: Hi" lasts
2 characters x 0.05 s = 0.1 s, so a key scheduled at 0.5 arrives after it.
"""

from __future__ import annotations

import pytest
from test_runner_fakes import FakeCall, FakePrompts, run_actions

PROMPT = "prompt: [{say: 'Enter your code'}]"  # 15 characters: 0.75 s of speech


def gather(params: str, result: str = "$got") -> str:
    return f"- action: gather@v1\n  params: {{{params}}}\n  result: {result}\n"


async def test_digits_until_finish_key() -> None:
    outcome, call, _ = await run_actions(
        gather("max_digits: 6"), keys="123#9", keys_at=1, key_gap=0.5
    )
    assert outcome.variables["$got"] == "123"
    assert outcome.variables["$digits"] == "123"
    assert call.now == pytest.approx(2.5)  # the # arrived at 1 + 3 * 0.5


async def test_max_digits_reached_leaves_later_keys_buffered() -> None:
    outcome, _, _ = await run_actions(
        gather("max_digits: 3") + gather("max_digits: 1, timeout: 0", result="$next"),
        keys="12345",
    )
    assert outcome.variables["$got"] == "123"
    assert outcome.variables["$next"] == "4"


async def test_timeout_to_first_key_counts_from_end_of_prompt() -> None:
    outcome, call, _ = await run_actions(gather(f"{PROMPT}, timeout: 4"))
    assert outcome.variables["$got"] == ""
    assert outcome.variables["$digits"] == ""
    assert call.now == pytest.approx(0.75 + 4)
    assert call.heard() == ["say:Enter your code"]


async def test_key_after_the_timeout_is_too_late() -> None:
    outcome, _, _ = await run_actions(gather("timeout: 2"), keys="1", keys_at=2.5)
    assert outcome.variables["$got"] == ""


async def test_inter_digit_timeout_ends_input() -> None:
    call = FakeCall(FakePrompts()).press("12", at=1, gap=1).press("3", at=10)
    outcome, _, _ = await run_actions(gather("max_digits: 5, inter_digit_timeout: 2"), call=call)
    assert outcome.variables["$got"] == "12"
    assert call.now == pytest.approx(2 + 2)


async def test_min_digits_not_reached_is_invalid() -> None:
    outcome, _, _ = await run_actions(
        gather("min_digits: 3, max_digits: 5, inter_digit_timeout: 1"), keys="12"
    )
    assert outcome.variables["$got"] == ""


async def test_finish_key_alone_is_invalid() -> None:
    outcome, _, _ = await run_actions(gather("attempts: 1"), keys="#")
    assert outcome.variables["$got"] == ""


async def test_invalid_key_makes_the_attempt_invalid() -> None:
    outcome, _, _ = await run_actions(gather("max_digits: 3, valid_digits: '123'"), keys="14")
    assert outcome.variables["$got"] == ""
    outcome, _, _ = await run_actions(gather("max_digits: 3, valid_digits: '123'"), keys="132")
    assert outcome.variables["$got"] == "132"


async def test_attempts_with_invalid_prompt() -> None:
    call = FakeCall(FakePrompts()).press("97", at=1).press("2", at=5)
    outcome, _, _ = await run_actions(
        gather(f"{PROMPT}, valid_digits: '123', attempts: 3, invalid_prompt: [{{say: 'Invalid'}}]"),
        call=call,
    )
    assert outcome.variables["$got"] == "2"
    # Attempt 1: prompt, 9 is invalid, the buffered 7 is forgotten, "Invalid";
    # attempt 2: prompt again, then 2.
    assert call.heard() == ["say:Enter your code", "say:Invalid", "say:Enter your code"]
    assert (1.0, "flush:7") in call.events


async def test_timeout_reprompts_without_invalid_prompt() -> None:
    outcome, call, _ = await run_actions(
        gather(f"{PROMPT}, attempts: 3, timeout: 1, invalid_prompt: [{{say: 'Invalid'}}]")
    )
    assert outcome.variables["$got"] == ""
    assert call.heard() == ["say:Enter your code"] * 3
    assert call.now == pytest.approx(3 * (0.75 + 1))


async def test_prompt_is_interrupted_by_a_key_kept_as_first_digit() -> None:
    call = FakeCall(FakePrompts()).press("4", at=0.5).press("2", at=1)
    outcome, _, _ = await run_actions(
        gather(
            "prompt: [{say: 'Enter your code'}, {play: {tone: beep}}, {pause: 2}], max_digits: 2"
        ),
        call=call,
    )
    assert outcome.variables["$got"] == "42"
    (played,) = call.played
    assert played.label == "say:Enter your code"
    assert played.stopped_by == "4" and played.seconds == pytest.approx(0.5)


async def test_pause_in_a_prompt_is_interruptible() -> None:
    call = FakeCall(FakePrompts(), answered=True).press("8", at=1.2)
    outcome, _, _ = await run_actions(gather("prompt: [{pause: 3}, {say: 'later'}]"), call=call)
    assert outcome.variables["$got"] == "8"
    assert call.heard() == []
    assert call.played[-1].stopped_by == "8"


async def test_type_ahead_skips_the_prompt() -> None:
    outcome, call, _ = await run_actions(
        "- action: say@v1\n  params: {text: 'Welcome to the service'}\n"
        + gather(f"{PROMPT}, max_digits: 2"),
        keys="31",
        keys_at=0.2,
    )
    assert outcome.variables["$got"] == "31"
    assert call.heard() == ["say:Welcome to the service"]


async def test_finish_key_none_makes_hash_a_digit() -> None:
    outcome, _, _ = await run_actions(gather("max_digits: 2, finish_on_key: none"), keys="1#")
    assert outcome.variables["$got"] == "1#"


async def test_other_finish_key() -> None:
    outcome, _, _ = await run_actions(gather("max_digits: 4, finish_on_key: '*'"), keys="5#*")
    assert outcome.variables["$got"] == "5#"


async def test_hangup_during_gather_ends_the_run() -> None:
    call = FakeCall(FakePrompts(), hangup_at=3)
    outcome, _, _ = await run_actions(gather("timeout: 5"), call=call)
    assert outcome.status == "hangup"
    assert "$got" not in outcome.variables
