"""The example scenarios forward, voicemail, conference and reminder run as their comments say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_runner_fakes import FakeCall, FakePrompts, FakeServer

from mediaserver.actions.callapi import DialError, DialOptions, DialResult
from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.actions.scenario import load_scenario

CONFIGS = Path(__file__).parents[2] / "configs" / "scenarios"
VOICEMAIL_PROMPT = "say:Sorry, nobody can take your call. Please leave a message after the tone."


async def run_example(
    name: str,
    call: FakeCall | None,
    *,
    branch: str = "inbound-call",
    server: FakeServer | None = None,
    variables: dict[str, Any] | None = None,
    dial: dict[str, Any] | None = None,
) -> tuple[RunOutcome, list[str]]:
    scenario = load_scenario(CONFIGS / f"{name}.yaml")
    run = Run(
        scenario,
        branch,
        call=call,
        prompts=call.prompts if call else FakePrompts(),
        run_id=f"{name}-1",
        server=server,
        variables=variables,
    )
    if dial is not None:  # what the server tells an api-initiated run about its call
        run.sandbox.define_builtin("$dial", dial)
    with capture_logs() as logs:
        outcome = await run.execute()
    return outcome, [str(entry["event"]) for entry in logs if entry.get("scenario_log")]


class AnsweringCall(FakeCall):
    """The dialled target answers and talks for ``talk`` seconds."""

    talk = 12.5

    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        await self.answer()
        self.events.append((self.now, f"dial:{','.join(targets)}:{options.timeout:g}"))
        self.now += 3 + self.talk
        return DialResult("answered", self.talk, targets[0])


class UntrustedCall(FakeCall):
    async def dial(self, targets: list[str], options: DialOptions) -> DialResult:
        raise DialError("an unauthenticated caller cannot make the server dial out")


# -- forward -------------------------------------------------------------------------------


async def test_forward_unanswered_goes_to_voicemail() -> None:
    call = FakeCall(FakePrompts())
    outcome, logs = await run_example("forward", call)
    assert outcome.status == "completed", outcome.error
    assert call.events[0] == (0.0, "dial:alice")
    assert call.heard() == [VOICEMAIL_PROMPT, "tone:beep", "say:Thank you. Goodbye."]
    assert logs == [
        "forward: no-answer, voicemail",
        "forward: voicemail rec00001 0 s",
    ]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_forward_answered_ends_after_the_bridge() -> None:
    call = AnsweringCall(FakePrompts())
    outcome, logs = await run_example("forward", call, variables={"$target": "sip:bob@192.0.2.5"})
    assert outcome.status == "completed", outcome.error
    assert (0.0, "dial:sip:bob@192.0.2.5:15") in call.events
    assert call.heard() == []
    assert logs == ["forward: answered sip:bob@192.0.2.5 after 12.5 s"]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_forward_that_cannot_dial_takes_a_message() -> None:
    call = UntrustedCall(FakePrompts())
    outcome, logs = await run_example("forward", call)
    assert outcome.status == "completed", outcome.error
    assert logs[:2] == ["forward: cannot dial alice", "forward: failed, voicemail"]
    assert call.heard()[0] == VOICEMAIL_PROMPT


# -- voicemail -----------------------------------------------------------------------------


async def test_voicemail_greets_beeps_records_and_thanks() -> None:
    call = FakeCall(FakePrompts()).press("#", at=9.0)
    outcome, logs = await run_example("voicemail", call)
    assert outcome.status == "completed", outcome.error
    assert call.heard() == [
        "say:You have reached the voicemail of the team. Please leave your message after "
        "the tone, then press hash or hang up.",
        "tone:beep",
        "say:Thank you for your message. Goodbye.",
    ]
    assert logs == ["voicemail: message rec00001 from +33123456789, 0 s"]
    assert outcome.variables["$recording"]["id"] == "rec00001"


# -- conference ----------------------------------------------------------------------------

ASK = "say:Welcome to the conference. Please enter your PIN, then press hash."
SORRY = "say:Sorry, that PIN is not valid."


async def test_conference_right_pin_joins_the_room() -> None:
    call = FakeCall(FakePrompts(), hangup_at=60).press("1234#", at=1.0, gap=0.3)
    outcome, logs = await run_example("conference", call)
    assert outcome.status == "hangup"
    assert [event for _, event in call.events] == ["answer", "conference:team", "caller hung up"]
    assert call.heard() == [ASK, "say:Thank you. You are joining the conference."]
    assert logs == [
        "conference: +33123456789 joins team",
        "conference: +33123456789 left team (hangup)",
    ]


async def test_conference_wrong_pin_then_the_right_one() -> None:
    call = FakeCall(FakePrompts(), hangup_at=120)
    call.press("99#", at=1.0, gap=0.2).press("1234#", at=10.0, gap=0.2).press("*", at=30)
    outcome, logs = await run_example("conference", call)
    assert outcome.status == "completed", outcome.error
    assert call.heard() == [
        ASK,
        SORRY,
        ASK,
        "say:Thank you. You are joining the conference.",
        "say:You have left the conference. Goodbye.",
    ]
    assert logs == [
        "conference: wrong PIN from +33123456789 (attempt 1)",
        "conference: +33123456789 joins team",
        "conference: +33123456789 left team (key)",
    ]


async def test_conference_three_wrong_pins_hang_up() -> None:
    call = FakeCall(FakePrompts())
    for at in (1.0, 12.0, 23.0):
        call.press("0000#", at=at, gap=0.2)
    outcome, logs = await run_example("conference", call)
    assert outcome.status == "completed", outcome.error
    assert call.heard() == [
        ASK,
        SORRY,
        ASK,
        SORRY,
        ASK,
        "say:Sorry, that PIN is not valid. Goodbye.",
    ]
    assert logs[-1] == "conference: +33123456789 refused"
    assert not any("conference:" in event for _, event in call.events)
    assert call.events[-1][1] == "hangup:normal_clearing"


# -- reminder ------------------------------------------------------------------------------

REMINDER = "say:Hello Alice. This is a reminder of your appointment at 3 PM."
PRESS = "say:Press 1 to confirm, or 2 to cancel."
ANSWERED = {"status": "answered", "duration": 0.0, "target": "sip:alice@192.0.2.7"}
ALICE = {"$name": "Alice", "$time": "3 PM"}


@pytest.mark.parametrize(
    ("key", "answer", "said"),
    [
        ("1", "confirmed", "say:Thank you. your appointment at 3 PM is confirmed. Goodbye."),
        ("2", "cancelled", "say:your appointment at 3 PM is cancelled. Goodbye."),
    ],
)
async def test_reminder_takes_the_answer(key: str, answer: str, said: str) -> None:
    call = FakeCall(FakePrompts(), answered=True).press(key, at=3.0)
    server = FakeServer()
    outcome, logs = await run_example(
        "reminder", call, branch="api-initiated", server=server, variables=ALICE, dial=ANSWERED
    )
    assert outcome.status == "completed", outcome.error
    assert call.heard()[0] == REMINDER and call.heard()[-1] == said
    assert logs == [f"reminder: Alice {answer}"]
    ((url, event, payload),) = server.webhooks
    assert (url, event) == (None, "v2.scenario.reminder")
    assert payload["data"] == {"name": "Alice", "time": "3 PM", "answer": answer}
    assert payload["callid"] == "call0001" and payload["branch"] == "api-initiated"
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_reminder_without_an_answer_asks_three_times() -> None:
    call = FakeCall(FakePrompts(), answered=True)
    server = FakeServer()
    outcome, logs = await run_example(
        "reminder", call, branch="api-initiated", server=server, variables=ALICE, dial=ANSWERED
    )
    assert outcome.status == "completed", outcome.error
    assert call.heard() == [REMINDER, PRESS] * 3 + ["say:We did not get your answer. Goodbye."]
    assert logs == ["reminder: Alice no answer"]
    assert server.webhooks[0][2]["data"]["answer"] == "no answer"


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
async def test_reminder_not_answered_logs_it_without_a_call(status: str) -> None:
    server = FakeServer()
    dial = {"status": status, "duration": 0.0, "target": "sip:alice@192.0.2.7"}
    outcome, logs = await run_example(
        "reminder", None, branch="api-initiated", server=server, variables=ALICE, dial=dial
    )
    assert outcome.status == "completed", outcome.error
    assert logs == [f"reminder: Alice not reached ({status})"]
    ((_, _, payload),) = server.webhooks
    assert payload["data"]["answer"] == "not reached" and payload["callid"] is None


async def test_reminder_started_without_a_target() -> None:
    server = FakeServer()
    outcome, logs = await run_example("reminder", None, branch="api-initiated", server=server)
    assert outcome.status == "completed", outcome.error
    assert logs == ["reminder: there not reached (no call)"]


async def test_reminder_line_takes_no_calls() -> None:
    call = FakeCall(FakePrompts())
    outcome, _ = await run_example("reminder", call)
    assert outcome.status == "completed", outcome.error
    assert call.heard() == ["say:This line only places reminder calls. Goodbye."]
    assert call.events[-1][1] == "hangup:normal_clearing"
