"""answer, hangup, reject, say, play, pause and echo against a fake call."""

from __future__ import annotations

import time

import pytest
from test_runner_fakes import FakeCall, FakePrompts, run_actions


async def test_answer_without_ring() -> None:
    outcome, call, _ = await run_actions("- action: answer@v1")
    assert outcome.status == "completed"
    assert call.events == [(0.0, "answer")]


async def test_answer_rings_first() -> None:
    started = time.monotonic()
    _, call, _ = await run_actions("- {action: answer@v1, params: {ring: 0.05}}")
    assert [event for _, event in call.events] == ["ring", "answer"]
    assert time.monotonic() - started >= 0.045  # asyncio may wake a hair early


async def test_answer_when_already_answered_does_not_ring() -> None:
    call = FakeCall(FakePrompts(), answered=True)
    await run_actions("- {action: answer@v1, params: {ring: 5}}", call=call)
    assert call.events == []


async def test_hangup_default_reason() -> None:
    _, call, _ = await run_actions("- action: hangup@v1")
    assert call.events == [(0.0, "hangup:normal_clearing")]


@pytest.mark.parametrize("reason", ["busy", "declined", "unavailable", "not_found"])
async def test_reject_reasons(reason: str) -> None:
    outcome, call, _ = await run_actions(
        f"- {{action: reject@v1, params: {{reason: {reason}}}}}\n- action: answer@v1"
    )
    assert outcome.status == "completed" and outcome.actions_executed == 1
    assert call.events == [(0.0, f"reject:{reason}")]


async def test_reject_after_answer_fails() -> None:
    outcome, _, _ = await run_actions("- action: answer@v1\n- action: reject@v1")
    assert outcome.status == "failed"
    assert outcome.error == "reject@v1 at test.yaml:5: the call is already answered; use hangup@v1"


async def test_say_interpolates_and_uses_defaults() -> None:
    prompts = FakePrompts()
    outcome, call, _ = await run_actions(
        """
        - action: say@v1
          params: {text: "Hello ${name}, ${...$code}"}
        - action: say@v1
          params: {text: "Bonjour", language: fr-FR, voice: male, rate: 1.5}
        """,
        header="defaults:\n  language: en-GB\n  rate: 0.9\nvariables:\n  $name: Ada\n"
        "  $code: '12'\n",
        prompts=prompts,
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:Hello Ada, 1 2", "say:Bonjour"]
    assert prompts.speech_requests == [
        {"text": "Hello Ada, 1 2", "language": "en-GB", "voice": "female", "rate": 0.9},
        {"text": "Bonjour", "language": "fr-FR", "voice": "male", "rate": 1.5},
    ]
    assert call.events[0] == (0.0, "answer")  # playing answers first


async def test_say_repeat() -> None:
    _, call, _ = await run_actions("- {action: say@v1, params: {text: hi, repeat: 3}}")
    assert call.heard() == ["say:hi"] * 3


async def test_say_stop_on_any_key_stops_the_remaining_repeats() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: say@v1
          params: {text: "twenty characters ok", repeat: 3, stop_on_key: true}
        - action: gather@v1
          params: {timeout: 0}
          result: $key
        """,
        keys="7",
        keys_at=1.5,
    )
    assert [(p.label, p.stopped_by) for p in call.played] == [
        ("say:twenty characters ok", None),
        ("say:twenty characters ok", "7"),
    ]
    assert call.now == pytest.approx(1.5)
    assert outcome.variables["$key"] == "7"  # the key stayed buffered


async def test_say_stops_only_on_listed_keys() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: say@v1
          params: {text: "twenty characters ok", stop_on_key: "#"}
        - action: gather@v1
          params: {timeout: 0, max_digits: 2}
          result: $keys
        """,
        keys="1#",
        keys_at=0.2,
        key_gap=0.3,
    )
    assert call.played[0].stopped_by == "#"
    assert call.now == pytest.approx(0.5)
    assert outcome.variables["$keys"] == "1"  # 1 typed ahead, then # finished the gather


async def test_say_without_stop_on_key_plays_to_the_end() -> None:
    _, call, _ = await run_actions(
        "- {action: say@v1, params: {text: abcdefghij}}", keys="1", keys_at=0.1
    )
    assert call.played[0].stopped_by is None and call.now == pytest.approx(0.5)


async def test_say_audio_error_fails_with_the_text() -> None:
    outcome, _, _ = await run_actions("- {action: say@v1, params: {text: hi, language: xx-XX}}")
    assert outcome.status == "failed"
    assert outcome.error == ("say@v1 at test.yaml:4: cannot say 'hi': no voice for language xx-XX")


async def test_play_file_interpolated_and_tone() -> None:
    _, call, _ = await run_actions(
        """
        - action: play@v1
          params: {url: "sounds/${lang}/hello.wav"}
        - action: play@v1
          params: {tone: ringback, repeat: 2}
        """,
        header="variables:\n  $lang: fr\n",
    )
    assert call.heard() == ["file:sounds/fr/hello.wav", "tone:ringback", "tone:ringback"]


async def test_play_stop_on_key() -> None:
    _, call, _ = await run_actions(
        "- {action: play@v1, params: {tone: dial, repeat: 5, stop_on_key: '*'}}",
        keys="*",
        keys_at=1.5,
    )
    assert [p.stopped_by for p in call.played] == [None, "*"]


async def test_pause_on_an_answered_call_plays_silence() -> None:
    call = FakeCall(FakePrompts(), answered=True)
    outcome, _, _ = await run_actions("- {action: pause@v1, params: {seconds: 2.5}}", call=call)
    assert outcome.status == "completed"
    assert call.heard() == []
    assert sum(p.seconds for p in call.played) == pytest.approx(2.5)
    assert call.now == pytest.approx(2.5)


async def test_pause_before_answer_waits_without_answering() -> None:
    started = time.monotonic()
    _, call, _ = await run_actions("- {action: pause@v1, params: {seconds: 0.05}}")
    assert time.monotonic() - started >= 0.045  # asyncio may wake a hair early
    assert call.events == [] and not call.answered


async def test_hangup_during_pause() -> None:
    call = FakeCall(FakePrompts(), answered=True, hangup_at=1.2)
    outcome, _, _ = await run_actions(
        "- {action: pause@v1, params: {seconds: 10}}\n- action: hangup@v1", call=call
    )
    assert outcome.status == "hangup"
    assert call.now == pytest.approx(1.2)


async def test_echo_for_some_seconds() -> None:
    outcome, call, _ = await run_actions("- {action: echo@v1, params: {seconds: 4}}")
    assert outcome.status == "completed"
    assert call.now == pytest.approx(4)
    assert [event for _, event in call.events] == ["answer", "echo"]


async def test_echo_until_hangup() -> None:
    call = FakeCall(FakePrompts(), hangup_at=30)
    outcome, _, _ = await run_actions("- action: answer@v1\n- action: echo@v1", call=call)
    assert outcome.status == "hangup"
    assert call.now == pytest.approx(30)
