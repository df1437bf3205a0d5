"""Callr's voicemail detection (App.Param.VmsDetect): the settings' checks, the DTMF
and SILENCE methods on a fake call (virtual clock: times are exact), detect@v1's
``method``, dial@v1's ``vms_detect`` checks, and the customer field a run hands over."""

from __future__ import annotations

import numpy as np
import pytest
from test_amd import silence, word
from test_runner_fakes import FakeCall, FakePrompts, run_actions

from mediaserver.actions.callapi import DialResult, Pcm
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.actions.vms_detect import (
    VmsDetect,
    VmsDetectError,
    VmsVerdict,
    detect_voicemail,
    vms_detect_from,
)
from mediaserver.media.silence import SilenceWatch
from mediaserver.yamlsource import ProblemsError


def fake_call(*parts: Pcm) -> FakeCall:
    call = FakeCall(FakePrompts(), answered=True)
    call.sent_audio = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    return call


# -- the settings ------------------------------------------------------------------------


def test_defaults_are_the_seeds() -> None:
    settings = vms_detect_from({"method": "SILENCE"})
    assert settings == VmsDetect("SILENCE")
    assert (settings.dtmf_iterations, settings.dtmf_timeout) == (2, 2)
    assert (settings.silence_iterations, settings.silence_ms, settings.silence_timeout) == (
        1,
        1800,
        3,
    )
    assert settings.active and settings.media is None


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({}, "vms_detect.method", "DTMF or SILENCE"),
        ({"method": "AMD"}, "vms_detect.method", "DTMF or SILENCE"),
        ({"method": "DTMF", "dtmf_timeout": 0}, "vms_detect.dtmf_timeout", "1 to 60"),
        ({"method": "SILENCE", "silence_ms": 20}, "vms_detect.silence_ms", "50 to 10000"),
        ({"method": "SILENCE", "silence_iterations": 31}, "vms_detect.silence_iterations", "30"),
        ({"method": "SILENCE", "silence_timeout": 1.5}, "vms_detect.silence_timeout", "whole"),
        ({"method": "DTMF", "dtmf_media": 12}, "vms_detect.dtmf_media", "media ids"),
        ({"method": "DTMF", "active": "yes"}, "vms_detect.active", "true or false"),
        ({"method": "DTMF", "silence": 1}, "vms_detect.silence", "unknown field"),
    ],
)
def test_bad_settings_name_the_field(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(VmsDetectError) as caught:
        vms_detect_from(data)
    assert caught.value.field == field
    assert words in str(caught.value) and str(caught.value).startswith(field)


def test_media_zero_is_none_and_text_is_played() -> None:
    settings = vms_detect_from({"method": "DTMF", "dtmf_media": "beep", "silence_media": 0})
    assert settings.media == "beep" and settings.silence_media is None


# -- the methods -------------------------------------------------------------------------


async def test_dtmf_a_key_during_the_wait_is_a_person() -> None:
    call = fake_call().press("7", at=3.0)
    verdict = await detect_voicemail(call, VmsDetect("DTMF"), None)
    assert verdict == VmsVerdict("human", "DTMF", "dtmf", 2, "7")  # in the second wait


async def test_dtmf_no_key_is_a_voicemail_after_every_try() -> None:
    call = fake_call()
    verdict = await detect_voicemail(call, VmsDetect("DTMF", dtmf_iterations=3), None)
    assert verdict == VmsVerdict("voicemail", "DTMF", "no_dtmf", 3)
    assert call.now == pytest.approx(6.0)


async def test_dtmf_a_key_before_the_question_does_not_count() -> None:
    call = fake_call().press("1", at=0.0)  # already in the buffer when the question starts
    verdict = await detect_voicemail(call, VmsDetect("DTMF", dtmf_iterations=1), None)
    assert verdict.result == "voicemail"


async def test_dtmf_the_media_plays_before_each_wait() -> None:
    call = fake_call()
    media = np.zeros(8000, np.int16)  # one second
    verdict = await detect_voicemail(call, VmsDetect("DTMF", dtmf_iterations=2), media)
    assert verdict.result == "voicemail"
    assert len(call.played) == 2 and call.now == pytest.approx(2 * (1 + 2))


async def test_silence_after_hello_is_a_person() -> None:
    call = fake_call(silence(0.2), word(0.6), silence(3.0))
    verdict = await detect_voicemail(call, VmsDetect("SILENCE", silence_ms=1000), None)
    assert verdict == VmsVerdict("human", "SILENCE", "silence", 1)
    assert call.now == pytest.approx(0.2 + 0.6 + 1.0)


async def test_a_greeting_without_pause_is_a_voicemail() -> None:
    call = fake_call(word(20.0))
    settings = VmsDetect("SILENCE", silence_ms=500, silence_timeout=2, silence_iterations=2)
    verdict = await detect_voicemail(call, settings, None)
    assert verdict == VmsVerdict("voicemail", "SILENCE", "no_silence", 2)
    assert call.now == pytest.approx(2 * 2.5)  # silence_timeout + silence_ms each try


def test_silence_watch_needs_the_silence_in_a_row() -> None:
    watch = SilenceWatch(100)
    frames = [*np.split(silence(0.08), 4), *np.split(word(0.02), 1), *np.split(silence(0.1), 5)]
    heard = [watch.hear(frame) for frame in frames]
    assert heard == [False] * 9 + [True]


# -- the actions -------------------------------------------------------------------------


async def test_detect_method_dtmf() -> None:
    call = fake_call().press("#", at=0.5)
    outcome, _, _ = await run_actions(
        "- action: detect@v1\n  params: {method: DTMF, dtmf_timeout: 3}\n  result: $who",
        call=call,
    )
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$who"] == "human"
    detection = outcome.variables["$detection"]
    assert (detection["method"], detection["key"], detection["reason"]) == ("DTMF", "#", "dtmf")


async def test_detect_method_silence_voicemail_is_machine() -> None:
    outcome, _, _ = await run_actions(
        "- action: detect@v1\n  params: {method: SILENCE, silence_timeout: 1}\n  result: $who",
        call=fake_call(word(10.0)),
    )
    assert outcome.variables["$who"] == "machine"
    assert outcome.variables["$detection"]["reason"] == "no_silence"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{method: DTMF, silence_ms: 500}", "silence_ms needs method: SILENCE"),
        ("{dtmf_timeout: 3}", "dtmf_timeout needs method: DTMF"),
        ("{method: SILENCE, greeting_end: true}", "greeting_end needs method: AMD"),
        ("{method: SILENCE, silence_ms: 10}", "silence_ms"),
    ],
)
def test_detect_params_are_checked_at_load_time(params: str, message: str) -> None:
    text = f"branches:\n  inbound-call:\n    actions:\n      - action: detect@v1\n        params: {params}\n"  # noqa: E501
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(text, "t.yaml")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("vms", "message"),
    [
        ("{method: DTMF, dtmf_iterations: 0}", "vms_detect.dtmf_iterations"),
        ("{method: BEEP}", "vms_detect.method: must be DTMF or SILENCE"),
        ("[DTMF]", "vms_detect: expected a mapping"),
    ],
)
def test_dial_vms_detect_is_checked_at_load_time(vms: str, message: str) -> None:
    text = (
        "branches:\n  inbound-call:\n    actions:\n      - action: dial@v1\n"
        f"        params: {{targets: ['sip:b@127.0.0.1'], vms_detect: {vms}}}\n"
    )
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(text, "t.yaml")
    assert message in str(caught.value)


def test_dial_vms_detect_with_a_templated_method_waits_for_the_run() -> None:
    text = (
        "branches:\n  inbound-call:\n    actions:\n      - action: dial@v1\n"
        "        params: {targets: ['sip:b@127.0.0.1'], vms_detect: {method: '${$m}'}}\n"
    )
    load_scenario_text(
        text.replace(
            "actions:\n", "actions:\n      - action: set@v1\n        params: {$m: \"'DTMF'\"}\n", 1
        ),
        "t.yaml",
    )


def test_dial_result_shows_the_detection() -> None:
    verdict = VmsVerdict("voicemail", "DTMF", "no_dtmf", 2)
    value = DialResult("voicemail", 0.0, "sip:b@x", 200, detection=verdict).as_variable()
    assert value["detection"] == verdict.as_variable()
    assert "detection" not in DialResult("busy", 0.0, None).as_variable()


# -- the customer field ------------------------------------------------------------------


async def test_the_run_hands_its_customer_field_to_the_call() -> None:
    _, call, _ = await run_actions("- action: set@v1\n  params: {$customer_field: \"'AC' + 42\"}")
    assert call.customer_field == "AC42"


async def test_a_start_variable_is_handed_over_at_once() -> None:
    call = FakeCall(FakePrompts())
    await run_actions("- action: hangup@v1", call=call, variables={"$customer_field": "x" * 40})
    assert call.customer_field == "x" * 32
