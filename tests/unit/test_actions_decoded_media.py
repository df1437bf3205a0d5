"""send-dtmf, record, voicemail, conference, stop and background play against a fake call."""

from __future__ import annotations

import pytest
from test_runner_fakes import FakeCall, FakePrompts, run_actions

from mediaserver.actions.scenario import load_scenario_text
from mediaserver.yamlsource import ProblemsError


def problems(actions: str) -> list[str]:
    from test_runner_fakes import scenario_text

    try:
        load_scenario_text(scenario_text(actions), "t.yaml")
    except ProblemsError as exc:
        return [problem.message for problem in exc.problems]
    return []


# -- send-dtmf@v1 ------------------------------------------------------------------------


async def test_send_dtmf_takes_the_time_of_its_keys() -> None:
    outcome, call, _ = await run_actions(
        "- {action: send-dtmf@v1, params: {digits: '12w#', duration: 0.2}}"
    )
    assert outcome.status == "completed"
    assert call.events == [(0.0, "answer"), (0.0, "dtmf:12w#")]
    assert call.now == pytest.approx(3 * 0.3 + 0.5)


def test_send_dtmf_digits_are_checked_when_written_out() -> None:
    assert problems("- {action: send-dtmf@v1, params: {digits: '12x'}}") == [
        "send-dtmf@v1: digits: 'x' is not a DTMF key or a pause "
        "(use 0-9, *, #, A-D, w for 0.5 s, W for 1 s)"
    ]
    assert problems("- {action: send-dtmf@v1, params: {digits: '${pin}'}}") == []
    assert any(
        "duration: must be at least 0.04" in p
        for p in problems("- {action: send-dtmf@v1, params: {digits: '1', duration: 0.01}}")
    )


async def test_send_dtmf_digits_from_a_variable_are_checked_when_run() -> None:
    outcome, _, _ = await run_actions(
        "- {action: send-dtmf@v1, params: {digits: '${pin}'}}", variables={"$pin": "12-34"}
    )
    assert outcome.status == "failed"
    assert "digits '12-34': '-' is not a DTMF key" in str(outcome.error)


# -- record@v1 -----------------------------------------------------------------------------


async def test_record_start_and_stop_fill_recording() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: record@v1
          params: {channels: dual, format: flac, beep: true}
          result: $rid
        - action: log@v1
          params: {message: "during: ${$recording.duration}"}
        - action: pause@v1
          params: {seconds: 2}
        - action: record@v1
          params: {command: stop}
          result: $stopped
        """
    )
    assert outcome.status == "completed"
    assert call.heard() == ["tone:beep"]
    variables = outcome.variables
    assert variables["$rid"] == variables["$stopped"] == "rec00001"
    assert variables["$recording"] == {
        "id": "rec00001",
        "path": "/data/recordings/rec00001.flac",
        "duration": 2.0,
    }
    assert [e for _, e in call.events if e.startswith("record")] == [
        "record:start:dual",
        "record:stop",
    ]


@pytest.mark.parametrize("command", ["stop", "pause", "resume"])
async def test_record_commands_need_a_running_recording(command: str) -> None:
    outcome, _, _ = await run_actions(f"- {{action: record@v1, params: {{command: {command}}}}}")
    assert outcome.status == "failed"
    assert "no recording is running on this call" in str(outcome.error)


async def test_one_record_at_a_time() -> None:
    outcome, _, _ = await run_actions("- action: record@v1\n- action: record@v1")
    assert outcome.status == "failed" and "already running" in str(outcome.error)


async def test_record_pause_and_resume() -> None:
    _, call, _ = await run_actions(
        """
        - action: record@v1
        - {action: record@v1, params: {command: pause}}
        - {action: record@v1, params: {command: resume}}
        """
    )
    assert [e for _, e in call.events if e.startswith("record")] == [
        "record:start:mono",
        "record:pause",
        "record:resume",
    ]


# -- voicemail@v1 --------------------------------------------------------------------------


async def test_voicemail_beeps_then_records_until_silence() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: voicemail@v1
          params: {silence_timeout: 3}
          result: $message
        """
    )
    assert outcome.status == "completed"
    assert call.heard() == ["tone:beep"]
    assert outcome.variables["$message"] == outcome.variables["$recording"]
    assert outcome.variables["$message"]["id"] == "rec00001"
    assert call.now == pytest.approx(1.0 + 3.0)  # the fake beep lasts 1 s


async def test_voicemail_ends_on_its_key_without_beep() -> None:
    outcome, call, _ = await run_actions(
        "- {action: voicemail@v1, params: {beep: false, finish_on_key: '*'}}", keys="*", keys_at=2
    )
    assert outcome.status == "completed" and call.heard() == []
    assert call.now == pytest.approx(2.0)


# -- conference@v1 -------------------------------------------------------------------------


async def test_conference_until_the_exit_key() -> None:
    prompts = FakePrompts()
    call = FakeCall(prompts, hangup_at=100)
    call.press("5*", at=10, gap=1)
    outcome, call, _ = await run_actions(
        """
        - action: conference@v1
          params: {name: "sales-${call.to}", exit_on_key: "*", mute_on_key: "5",
                   hold_audio: ringback, record: true}
          result: $how
        """,
        call=call,
    )
    assert outcome.status == "completed"
    assert outcome.variables["$how"] == "key"
    assert "conference:sales-ivr" in [e for _, e in call.events]
    assert outcome.variables["$recording"]["id"] == "rec00001"


async def test_conference_result_when_full_or_hung_up() -> None:
    call = FakeCall(FakePrompts(), hangup_at=5)
    call.conference_size = 3
    outcome, _, _ = await run_actions(
        """
        - action: conference@v1
          params: {name: room, max_participants: 3}
          result: $how
        - action: log@v1
          params: {message: "${$how}"}
        - action: conference@v1
          params: {name: room}
          result: $how
        - action: say@v1
          params: {text: never}
        """,
        call=call,
    )
    assert outcome.status == "hangup"
    assert outcome.variables["$how"] == "hangup"


async def test_conference_hold_audio_from_a_file_that_is_missing_fails() -> None:
    outcome, _, _ = await run_actions(
        "- {action: conference@v1, params: {name: r, hold_audio: music/missing.wav}}",
        prompts=FakePrompts(missing=("music/missing.wav",)),
    )
    assert outcome.status == "failed" and "music/missing.wav" in str(outcome.error)


def test_conference_keys_must_differ() -> None:
    assert problems(
        "- {action: conference@v1, params: {name: r, exit_on_key: '#', mute_on_key: '#'}}"
    ) == ["conference@v1: mute_on_key and exit_on_key are the same keys ('#')"]


# -- background play and stop@v1 ----------------------------------------------------------------


async def test_background_play_then_stop() -> None:
    outcome, call, _ = await run_actions(
        """
        - action: play@v1
          params: {tone: ringback, repeat: 5, background: true}
        - action: stop@v1
        - action: stop@v1
        """
    )
    assert outcome.status == "completed"
    assert [e for _, e in call.events][1:] == ["background:tone:ringbackx5", "stop", "stop"]
    assert call.played == []  # nothing played in the foreground


def test_background_audio_has_no_stop_keys() -> None:
    assert problems(
        "- {action: play@v1, params: {tone: beep, background: true, stop_on_key: true}}"
    ) == ["play@v1: stop_on_key does not apply to background audio"]
