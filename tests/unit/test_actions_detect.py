"""detect@v1: the greeting classifier on synthetic energy patterns, and the action."""

from __future__ import annotations

import math

import pytest
from test_runner_fakes import FakeCall, FakePrompts, run_actions, scenario_text

from mediaserver.actions.builtin.detect import GreetingClassifier
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.yamlsource import ProblemsError

SPEECH = -20.0  # a voice at a usual telephone level
QUIET = -60.0  # line noise, comfort noise


def pattern(*spans: tuple[str, float]) -> list[float]:
    """Frame levels for ``("speech"|"silence"|"click", seconds)`` spans, 20 ms each."""
    levels: list[float] = []
    for kind, seconds in spans:
        frames = round(seconds / 0.02)
        if kind == "click":  # one loud frame, then quiet
            levels += [SPEECH] + [QUIET] * (frames - 1)
        else:
            levels += [SPEECH if kind == "speech" else QUIET] * frames
    return levels


def classify(levels: list[float], timeout: float = 4.0) -> tuple[str, float]:
    """The verdict and the second at which it was reached (the timeout if never)."""
    classifier = GreetingClassifier()
    frames = round(timeout / 0.02)
    for index in range(frames):
        level = levels[index] if index < len(levels) else -math.inf
        if classifier.feed(level):
            return classifier.result(), round((index + 1) * 0.02, 2)
    return classifier.result(), timeout


def test_short_hello_then_silence_is_a_person() -> None:
    verdict, at = classify(pattern(("silence", 0.4), ("speech", 0.6)))
    assert verdict == "human"
    assert at == pytest.approx(0.4 + 0.6 + 1.2)


def test_two_short_phrases_with_a_pause_are_a_person() -> None:
    # "Hello?" ... "Hello, who is this?": 1.8 s of speech with a 0.7 s pause.
    levels = pattern(("silence", 0.3), ("speech", 0.5), ("silence", 0.7), ("speech", 0.6))
    verdict, at = classify(levels)
    assert verdict == "human"
    assert at == pytest.approx(0.3 + 0.5 + 0.7 + 0.6 + 1.2)


def test_a_long_continuous_greeting_is_a_machine() -> None:
    verdict, at = classify(pattern(("silence", 0.5), ("speech", 6.0)))
    assert verdict == "machine"
    assert at == pytest.approx(0.5 + 2.42)  # as soon as the speech is over 2.4 s


def test_a_greeting_with_pauses_between_phrases_is_a_machine() -> None:
    phrase = [("speech", 0.9), ("silence", 0.4)]
    verdict, _ = classify(pattern(("silence", 0.2), *phrase * 4))
    assert verdict == "machine"


def test_speech_just_under_the_machine_length_is_a_person() -> None:
    verdict, _ = classify(pattern(("speech", 2.4)), timeout=5)
    assert verdict == "human"


def test_no_speech_is_unknown_at_the_timeout() -> None:
    assert classify([], timeout=4) == ("unknown", 4)
    assert classify(pattern(("silence", 10)), timeout=3) == ("unknown", 3)


def test_clicks_and_noise_blips_are_not_speech() -> None:
    levels = pattern(*[("click", 0.3)] * 10, ("speech", 0.06), ("silence", 2))
    assert classify(levels) == ("unknown", 4)


def test_speech_still_going_at_the_timeout_is_unknown() -> None:
    verdict, at = classify(pattern(("silence", 2.5), ("speech", 5)), timeout=4)
    assert (verdict, at) == ("unknown", 4)


def test_the_threshold_is_about_minus_42_dbfs() -> None:
    assert classify([-41.0] * 200)[0] == "machine"
    assert classify([-43.0] * 200)[0] == "unknown"


def test_the_classifier_reports_what_it_heard() -> None:
    classifier = GreetingClassifier()
    for level in pattern(("silence", 1.0), ("speech", 0.5), ("silence", 0.3)):
        assert not classifier.feed(level)
    assert classifier.speech_started == pytest.approx(1.0)
    assert classifier.speech_seconds == pytest.approx(0.5)
    assert classifier.result() == "unknown"  # undecided so far
    for _ in range(45):
        classifier.feed(QUIET)
    assert classifier.result() == "human"
    assert classifier.feed(SPEECH)  # decided: later frames change nothing
    assert classifier.result() == "human"


# -- the action -----------------------------------------------------------------------------

DETECT = """
- action: detect@v1
  params: {timeout: 4}
  result: $who
- action: log@v1
  params: {message: "answered by ${who}"}
"""


@pytest.mark.parametrize(
    ("spans", "verdict", "seconds"),
    [
        ((("silence", 0.3), ("speech", 0.5)), "human", 2.0),
        ((("silence", 0.3), ("speech", 5.0)), "machine", 2.72),
        ((), "unknown", 4.0),
    ],
)
async def test_detect_listens_to_the_call(
    spans: tuple[tuple[str, float], ...], verdict: str, seconds: float
) -> None:
    call = FakeCall(FakePrompts(), answered=True)
    call.levels = pattern(*spans)
    outcome, _, _ = await run_actions(DETECT, call=call)
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$who"] == verdict
    assert call.now == pytest.approx(seconds)
    assert call.events == [(0.0, "listen:4")]


async def test_detect_answers_first_and_the_caller_may_hang_up() -> None:
    call = FakeCall(FakePrompts(), hangup_at=1.0)
    outcome, _, _ = await run_actions(DETECT, call=call)
    assert outcome.status == "hangup"
    assert [event for _, event in call.events] == ["answer", "listen:4", "caller hung up"]


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
        ("{wait: 3}", "detect@v1 has no parameter 'wait'; it takes timeout"),
    ],
)
def test_detect_params_are_checked(params: str, message: str) -> None:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(scenario_text(f"- {{action: detect@v1, params: {params}}}"), "t.yaml")
    assert [p.message for p in caught.value.problems] == [message]
