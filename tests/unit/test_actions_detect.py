"""detect@v1 and the live-call driver (mediaserver.actions.amd) on a fake call.

The fake call sends scripted audio (words of noise, silence, beeps: the helpers of
test_amd) one 20 ms frame per virtual 20 ms, so the times below are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
from test_amd import GREETING, beep, silence, word, words
from test_runner_fakes import FakeCall, FakePrompts, run_actions, scenario_text

from mediaserver.actions.amd import (
    CALL_CONTROL_MODES,
    SLACK_SECONDS,
    MachineDetection,
    detect_machine,
    follows_greeting,
    reports_greeting_end,
)
from mediaserver.actions.builtin.detect import DETECT_CONFIG
from mediaserver.actions.callapi import CallEnded, Pcm
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.media.amd import AmdConfig, Detection, GreetingEnd
from mediaserver.yamlsource import ProblemsError


def fake_call(*parts: Pcm, **options: object) -> FakeCall:
    call = FakeCall(FakePrompts(), answered=True, **options)  # type: ignore[arg-type]
    call.sent_audio = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    return call


# -- the driver --------------------------------------------------------------------------


async def test_the_detection_then_the_greeting_end() -> None:
    call = fake_call(*GREETING, silence(0.5), beep(1400, 0.5))
    seen = []
    async with MachineDetection(call, follow_greeting=True) as amd:
        async for result in amd.results():
            seen.append(result)
    assert [type(result) for result in seen] == [Detection, GreetingEnd]
    assert isinstance(seen[0], Detection) and seen[0].result == "machine"
    assert isinstance(seen[1], GreetingEnd) and seen[1].result == "beep_detected"
    assert call.now == pytest.approx(seen[1].at)  # the listening stopped there


async def test_a_person_has_no_greeting_to_follow() -> None:
    call = fake_call(silence(0.3), word(0.5))
    detection, greeting = await detect_machine(call, follow_greeting=True)
    assert (detection.result, greeting) == ("human", None)
    assert call.now == pytest.approx(0.3 + 0.5 + 0.8)


async def test_without_following_the_listening_stops_at_the_verdict() -> None:
    call = fake_call(*GREETING, silence(0.5), beep(1400, 0.5))
    detection, greeting = await detect_machine(call)
    assert (detection.result, greeting) == ("machine", None)
    assert call.now == pytest.approx(detection.at)


async def test_the_listening_is_bounded_by_both_analysis_times() -> None:
    config = AmdConfig(total_analysis_time_millis=3000, greeting_total_analysis_time_millis=7000)
    call = fake_call()
    assert MachineDetection(call, config).time_limit == 3 + SLACK_SECONDS
    assert MachineDetection(call, config, follow_greeting=True).time_limit == 10 + SLACK_SECONDS


class SilentLine:
    """A call whose frames never come (a stuck clock): the time limit passes."""

    def __init__(self) -> None:
        self.limits: list[float] = []

    async def listen_frames(self, seconds: float, listener: Callable[[Pcm], bool]) -> None:
        self.limits.append(seconds)
        await asyncio.sleep(0)


async def test_no_frames_in_time_is_not_sure() -> None:
    line = SilentLine()
    detection, greeting = await detect_machine(line, follow_greeting=True)  # type: ignore[arg-type]
    assert detection == Detection("not_sure", "total_analysis_time", 0.0, 0, 0.0)
    assert greeting is None
    assert line.limits == [3.5 + 5.0 + SLACK_SECONDS]


async def test_the_call_ending_fails_both_results() -> None:
    call = fake_call(*GREETING, hangup_at=5.0)
    async with MachineDetection(call, follow_greeting=True) as amd:
        assert (await amd.detection()).result == "machine"
        with pytest.raises(CallEnded):
            await amd.greeting_end()
    quiet = fake_call(hangup_at=1.0)
    async with MachineDetection(quiet, follow_greeting=True) as amd:
        with pytest.raises(CallEnded):
            await amd.detection()
        # Left unread: no "exception never retrieved" warning on the way out.


async def test_leaving_early_stops_the_listening() -> None:
    class Endless:
        started = asyncio.Event()

        async def listen_frames(self, seconds: float, listener: Callable[[Pcm], bool]) -> None:
            self.started.set()
            await asyncio.sleep(3600)

    line = Endless()
    amd = MachineDetection(line)  # type: ignore[arg-type]
    async with amd:
        await line.started.wait()
    assert amd._task is not None and amd._task.cancelled()


@pytest.mark.parametrize(
    ("mode", "follows", "reported"),
    [
        ("detect", False, set()),
        ("detect_beep", True, {"beep_detected"}),
        ("detect_words", True, {"beep_detected", "ended", "not_sure"}),
        ("greeting_end", True, {"beep_detected", "ended", "not_sure"}),
        ("premium", True, {"beep_detected", "ended", "not_sure"}),
    ],
)
def test_call_control_modes(mode: str, follows: bool, reported: set[str]) -> None:
    assert mode in CALL_CONTROL_MODES
    assert follows_greeting(mode) is follows
    results = ("beep_detected", "ended", "not_sure")
    ends = [GreetingEnd(result, 1.0) for result in results]  # type: ignore[arg-type]
    assert {end.result for end in ends if reports_greeting_end(mode, end)} == reported


# -- detect@v1 ---------------------------------------------------------------------------

DETECT = """
- action: detect@v1
  params: {timeout: 4}
  result: $who
- action: log@v1
  params: {message: "answered by ${who}"}
"""


@pytest.mark.parametrize(
    ("parts", "verdict", "seconds"),
    [
        ((silence(0.3), word(0.5)), "human", 0.3 + 0.5 + 1.2),
        ((silence(0.3), word(5.0)), "machine", 0.3 + 2.42),
        ((silence(0.3), words(7, length=0.2, gap=0.1)), "machine", 0.3 + 1.6),
        ((), "unknown", 4.0),  # a silent line is unknown, not a machine
        ((silence(2.5), word(5.0)), "unknown", 4.0),
    ],
)
async def test_detect_listens_to_the_call(
    parts: tuple[Pcm, ...], verdict: str, seconds: float
) -> None:
    call = fake_call(*parts)
    outcome, _, _ = await run_actions(DETECT, call=call)
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$who"] == verdict
    assert outcome.variables["$detection"]["result"] == verdict
    assert outcome.variables["$detection"]["greeting"] is None
    assert call.now == pytest.approx(seconds)
    assert call.events == [(0.0, f"listen:{4 + SLACK_SECONDS:g}")]


def test_detect_keeps_its_thresholds() -> None:
    assert DETECT_CONFIG.greeting_duration_millis == 2400
    assert DETECT_CONFIG.after_greeting_silence_millis == 1200
    assert DETECT_CONFIG.initial_silence_millis is None


WAIT_FOR_BEEP = """
- action: detect@v1
  params: {timeout: 5, greeting_end: true, greeting_timeout: 10}
  result: $who
"""


async def test_detect_waits_for_the_beep() -> None:
    call = fake_call(*GREETING, silence(0.5), beep(1000, 0.4))
    outcome, _, _ = await run_actions(WAIT_FOR_BEEP, call=call)
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$who"] == "machine"
    assert outcome.variables["$detection"] == {
        "result": "machine",
        "reason": "maximum_number_of_words",
        "greeting": "beep_detected",
        "beep_hz": 1000.0,
    }
    assert call.now == pytest.approx(0.3 + 8 * 0.3 + 7 * 0.2 + 0.5 + 0.4 + 0.02, abs=0.021)


async def test_detect_waits_for_the_greeting_to_fall_silent() -> None:
    call = fake_call(*GREETING)
    outcome, _, _ = await run_actions(WAIT_FOR_BEEP, call=call)
    assert outcome.variables["$detection"]["greeting"] == "ended"
    assert call.now == pytest.approx(0.3 + 8 * 0.3 + 7 * 0.2 + 1.5)


async def test_detect_gives_up_on_the_greeting_at_its_timeout() -> None:
    call = fake_call(silence(0.3), words(60, length=0.3, gap=0.2))
    outcome, _, _ = await run_actions(WAIT_FOR_BEEP, call=call)
    detection = outcome.variables["$detection"]
    assert (detection["result"], detection["greeting"]) == ("machine", "not_sure")


async def test_a_person_is_not_waited_for() -> None:
    call = fake_call(silence(0.3), word(0.5))
    outcome, _, _ = await run_actions(WAIT_FOR_BEEP, call=call)
    assert outcome.variables["$detection"] == {
        "result": "human",
        "reason": "after_greeting_silence",
        "greeting": None,
        "beep_hz": None,
    }


async def test_detection_is_null_before_any_detect() -> None:
    outcome, _, _ = await run_actions("- {action: log@v1, params: {message: x}}")
    assert outcome.variables["$detection"] is None


async def test_detect_answers_first_and_the_caller_may_hang_up() -> None:
    call = FakeCall(FakePrompts(), hangup_at=1.0)
    outcome, _, _ = await run_actions(DETECT, call=call)
    assert outcome.status == "hangup"
    assert [event for _, event in call.events] == [
        "answer",
        f"listen:{4 + SLACK_SECONDS:g}",
        "caller hung up",
    ]


def test_detection_cannot_be_assigned() -> None:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(scenario_text("- {action: detect@v1, result: $detection}"), "t.yaml")
    assert "$detection" in caught.value.problems[0].message


async def test_detect_in_a_branch_without_a_call_is_refused() -> None:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(
            scenario_text("- {action: detect@v1}", branch="inbound-message"), "t.yaml"
        )
    assert [p.message for p in caught.value.problems] == [
        "detect@v1 needs a call, and the inbound-message branch has none"
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{timeout: 0.5}", "detect@v1: timeout: must be at least 1, got 0.5"),
        ("{timeout: 31}", "detect@v1: timeout: must be at most 30, got 31"),
        ("{timeout: soon}", "detect@v1: timeout: expected a number of seconds, got 'soon'"),
        ("{greeting_timeout: 121}", "detect@v1: greeting_timeout: must be at most 120, got 121"),
        (
            "{wait: 3}",
            "detect@v1 has no parameter 'wait'; it takes timeout, greeting_end, greeting_timeout, "
            "method, dtmf_iterations, dtmf_timeout, dtmf_media, silence_iterations, silence_ms, "
            "silence_timeout, silence_media",
        ),
    ],
)
def test_detect_params_are_checked(params: str, message: str) -> None:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(scenario_text(f"- {{action: detect@v1, params: {params}}}"), "t.yaml")
    assert [p.message for p in caught.value.problems] == [message]
