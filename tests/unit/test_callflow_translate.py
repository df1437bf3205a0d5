"""Voxology actions as native items: the conversions, and the validator's word on them."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.actions.expressions import Template
from mediaserver.actions.model import ActionItem
from mediaserver.actions.scenario import load_scenario_data
from mediaserver.callflow import model as m
from mediaserver.callflow.actions import ResponseError, parse_response
from mediaserver.callflow.translate import (
    ANSWERED,
    NOT_IN_SERVICE,
    RUN,
    TranslationError,
    build_items,
    compile_plan,
    dtmf_entries,
    resolve_url,
    sip_target,
)

BASE = "http://app.test/ivr/flow.json"


def items(action: dict[str, Any], variant: str = RUN) -> tuple[ActionItem, ...]:
    response = parse_response([action])
    plan = compile_plan(response, BASE, load_scenario_data)
    variants = plan.variants(response.actions[0])
    assert variants is not None
    return variants[variant]


def only(action: dict[str, Any]) -> ActionItem:
    (item,) = items(action)
    return item


def text(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(text(item) for item in value)
    return value.source if isinstance(value, Template) else value


RECORDMESSAGE_PARAMS = ("beep", "max_length", "silence_timeout", "finish_on_key")


def params(item: ActionItem) -> dict[str, Any]:
    return {name: text(value) for name, value in item.params.items()}


# -- URLs and targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "absolute"),
    [
        ("other_file.json", "http://app.test/ivr/other_file.json"),
        ("../../other_file.json", "http://app.test/other_file.json"),
        ("/root.json", "http://app.test/root.json"),
        ("https://cdn.example/a.mp3", "https://cdn.example/a.mp3"),
        ("${url}", "${url}"),
    ],
)
def test_relative_urls_resolve_against_the_response_s(url: str, absolute: str) -> None:
    assert resolve_url(url, BASE) == absolute


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/a.wav"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(TranslationError, match="is not an http"):
        resolve_url(url, BASE)


@pytest.mark.parametrize(
    ("number", "target"),
    [
        ("+19495551111", "+19495551111"),
        ("abc123@sip.mypbx.com", "sip:abc123@sip.mypbx.com"),
        ("sip:bob@host", "sip:bob@host"),
        ("alice", "alice"),
        ("${no}@host", "${no}@host"),
    ],
)
def test_sip_targets(number: str, target: str) -> None:
    assert sip_target(number) == target


# -- each media action ----------------------------------------------------------------------


def test_say_becomes_say_at_v1() -> None:
    item = only(
        {
            "type": "SAY",
            "params": {
                "text": "Hi ${callerNo}",
                "repeat": 2,
                "stop_on_key": True,
                "voice": "Kevin",
                "language": "german",
            },
        }
    )
    assert item.key == "say@v1"
    assert params(item) == {
        "text": "Hi ${callerNo}",
        "repeat": 2,
        "stop_on_key": "0123456789*#ABCD",
        "voice": "male",
        "language": "de-DE",
        "rate": None,
    }


def test_say_without_voice_keeps_the_scenario_defaults() -> None:
    item = only({"type": "SAY", "params": {"text": "Hi"}})
    assert item.params["voice"] is None and item.params["language"] is None


def test_play_url_becomes_play_at_v1() -> None:
    item = only({"type": "PLAY", "params": {"url": "hold.wav", "repeat": 3}})
    assert item.key == "play@v1"
    assert params(item)["url"] == "http://app.test/ivr/hold.wav"
    assert params(item)["repeat"] == 3 and params(item)["stop_on_key"] == ""


def test_play_dtmf_becomes_send_dtmf_and_pauses() -> None:
    found = items(
        {"type": "PLAY", "params": {"dtmf": "12-3--4", "dtmf_delay": 100, "dtmf_dash_delay": 250}}
    )
    assert [(i.key, params(i)) for i in found] == [
        ("send-dtmf@v1", {"digits": "12", "duration": 0.1}),
        ("pause@v1", {"seconds": 0.25}),
        ("send-dtmf@v1", {"digits": "3", "duration": 0.1}),
        ("pause@v1", {"seconds": 0.5}),
        ("send-dtmf@v1", {"digits": "4", "duration": 0.1}),
    ]


def test_dtmf_entries_with_the_default_delay_and_repeats() -> None:
    assert dtmf_entries("1 2", 250, 250, 2) == [
        {"action": "send-dtmf@v1", "params": {"digits": "1", "duration": 0.1}},
        {"action": "pause@v1", "params": {"seconds": 0.15}},
        {"action": "send-dtmf@v1", "params": {"digits": "2", "duration": 0.1}},
        {"action": "pause@v1", "params": {"seconds": 0.15}},
        {"action": "send-dtmf@v1", "params": {"digits": "1", "duration": 0.1}},
        {"action": "pause@v1", "params": {"seconds": 0.15}},
        {"action": "send-dtmf@v1", "params": {"digits": "2", "duration": 0.1}},
    ]
    assert dtmf_entries("9-", 0, 300, 1)[-1] == {"action": "pause@v1", "params": {"seconds": 0.3}}
    with pytest.raises(TranslationError, match="has no key"):
        dtmf_entries("--", 250, 250, 1)


def test_an_interpolated_dtmf_is_translated_when_it_runs() -> None:
    response = parse_response([{"type": "PLAY", "params": {"dtmf": "${code}"}}])
    assert compile_plan(response, BASE, load_scenario_data).variants(response.actions[0]) is None


def test_pause_becomes_pause_at_v1() -> None:
    item = only({"type": "PAUSE", "params": {"seconds": 2}})
    assert (item.key, params(item)) == ("pause@v1", {"seconds": 2.0})


def test_collect_becomes_gather_with_its_prompt() -> None:
    item = only(
        {
            "type": "COLLECT",
            "params": {"num_digits": 4, "timeout": 2500, "finish_on_key": "star"},
            "actions": [
                {
                    "type": "SAY",
                    "params": {"text": "Enter your PIN", "repeat": 2, "language": "french"},
                },
                {"type": "PAUSE", "params": {"seconds": 1}},
                {"type": "PLAY", "params": {"url": "beep.wav"}},
            ],
        }
    )
    assert item.key == "gather@v1"
    found = params(item)
    assert (found["max_digits"], found["min_digits"], found["attempts"]) == (4, 1, 1)
    assert (found["timeout"], found["inter_digit_timeout"]) == (2.5, 2.5)
    assert found["finish_on_key"] == "*"
    prompt = found["prompt"]
    assert [p.kind for p in prompt] == ["say", "say", "pause", "play"]
    assert prompt[0].text.source == "Enter your PIN" and prompt[0].language == "fr-FR"
    assert prompt[2].seconds == 1.0 and prompt[3].url.source == "http://app.test/ivr/beep.wav"
    off = only({"type": "COLLECT", "params": {"finish_on_key": "off"}})
    assert params(off)["finish_on_key"] == "none"


def test_conference_becomes_conference_at_v1() -> None:
    item = only(
        {
            "type": "CONFERENCE",
            "params": {
                "name": "room-${callId}",
                "join_muted": True,
                "max_participants": 5,
                "announce_on_join": "beep",
                "mute_on_key": "1",
                "exit_on_key": "pound",
                "hold_audio": "/music/hold.mp3",
                "hold_on_join": True,
                "start_on_join": False,
                "end_on_exit": True,
                "hold_on_exit": True,
                "send_dtmf": True,
            },
        }
    )
    assert item.key == "conference@v1" and item.result == "$callflowResult"
    assert params(item) == {
        "name": "room-${callId}",
        "muted": True,
        "moderator": False,
        "wait_for_moderator": True,
        "end_on_exit": True,
        "beep": "both",
        "hold_audio": "http://app.test/music/hold.mp3",
        "max_participants": 5,
        "exit_on_key": "#",
        "mute_on_key": "1",
        "unmute_on_key": "none",
        "record": False,
        "hold_on_exit": True,
        "send_dtmf": True,
        "receive_dtmf": False,
    }
    quiet = params(only({"type": "CONFERENCE", "params": {"name": "c"}}))
    assert (quiet["beep"], quiet["moderator"], quiet["exit_on_key"], quiet["hold_audio"]) == (
        "none",
        True,
        "none",
        None,
    )


def test_transfer_becomes_a_dial_bridge() -> None:
    item = only({"type": "TRANSFER", "params": {"no": "abc@pbx.example", "caller_id_no": "+1"}})
    assert item.key == "dial@v1"
    assert params(item)["targets"] == ("sip:abc@pbx.example",)
    assert params(item)["caller_id"] == "+1"


def test_async_transfer_dials_without_waiting_and_stop_hangs_it_up() -> None:
    started = only({"type": "TRANSFER", "params": {"no": "+17145551212", "async": True}})
    assert started.key == "dial@v1"
    assert (params(started)["wait"], params(started)["ringback"]) == (False, "none")
    assert params(only({"type": "TRANSFER", "params": {"no": "+1"}}))["wait"] is True
    stop = only({"type": "TRANSFER", "params": {"event": "stop"}})
    assert (stop.key, params(stop)) == ("stop@v1", {"dial": True})


def test_queue_offer_and_poll_connect() -> None:
    offer = only({"type": "QUEUE", "params": {"name": "sales"}})
    assert (offer.key, params(offer)["command"], params(offer)["name"]) == (
        "queue@v1",
        "enqueue",
        "sales",
    )
    assert (params(offer)["wait"], params(offer)["max_calls"]) == (True, None)
    poll = only({"type": "QUEUE", "params": {"name": "sales", "event": "poll_connect"}})
    assert params(poll)["command"] == "bridge-next" and poll.result == "$callflowResult"


def test_queue_max_calls_async_poll_and_remove() -> None:
    full = params(only({"type": "QUEUE", "params": {"name": "q", "max_calls": 10}}))
    assert (full["command"], full["max_calls"], full["wait"]) == ("enqueue", 10, True)
    offer = params(only({"type": "QUEUE", "params": {"name": "q", "async": True}}))
    assert (offer["command"], offer["wait"]) == ("enqueue", False)
    for event, command in (("poll", "release-next"), ("remove", "leave")):
        item = params(only({"type": "QUEUE", "params": {"name": "q", "event": event}}))
        assert (item["command"], item["wait"], item["max_calls"]) == (command, True, None)


def test_record_and_recordmessage() -> None:
    record = only({"type": "RECORD", "params": {"action": "resume"}})
    assert (record.key, params(record)["command"]) == ("record@v1", "resume")
    message = only({"type": "RECORDMESSAGE", "params": {"max_recording_time": 45, "timeout": 3}})
    assert message.key == "voicemail@v1"
    assert {
        name: value for name, value in params(message).items() if name in RECORDMESSAGE_PARAMS
    } == {
        "beep": True,
        "max_length": 45.0,
        "silence_timeout": 3.0,
        "finish_on_key": "any",
    }
    assert items({"type": "RECORDMESSAGE", "params": {"action": "save"}}) == ()
    response = parse_response([{"type": "RECORDMESSAGE", "params": {"action": "play"}}])
    assert compile_plan(response, BASE, load_scenario_data).variants(response.actions[0]) is None


def test_reject_before_and_after_the_answer() -> None:
    busy = {"type": "REJECT", "params": {"reason": "busy"}}
    assert [(i.key, params(i)) for i in items(busy)] == [("reject@v1", {"reason": "busy"})]
    assert [
        (i.key, params(i).get("tone") or params(i).get("reason")) for i in items(busy, ANSWERED)
    ] == [
        ("play@v1", "busy"),
        ("hangup@v1", "busy"),
    ]
    gone = {"type": "REJECT", "params": {"reason": "disconnected"}}
    assert params(items(gone)[0]) == {"reason": "not_found"}
    say, hangup = items(gone, ANSWERED)
    assert params(say)["text"] == NOT_IN_SERVICE and hangup.key == "hangup@v1"


def test_hangup_stop_detect_sms() -> None:
    assert only({"type": "HANGUP"}).key == "hangup@v1"
    assert only({"type": "STOP"}).key == "stop@v1"
    detect = only({"type": "DETECT", "params": {"trigger_live_in_ms": 4500}})
    amd = {name: value for name, value in params(detect).items() if value is not None}
    assert (detect.key, amd, detect.result) == (
        "detect@v1",
        {"timeout": 4.5, "greeting_end": False, "greeting_timeout": 20.0, "method": "AMD"},
        "$callflowResult",
    )
    sms = only({"type": "SMS", "params": {"message": "Hi"}})
    assert (sms.key, params(sms)) == (
        "message@v1",
        {"to": "${callerNo}", "text": "Hi", "from": "${apiNo || 'mediaserver'}"},
    )


@pytest.mark.parametrize(
    "action",
    [
        {"type": "IF", "condition": "1", "then": []},
        {"type": "GOTO", "params": {"label": "x"}},
        {"type": "LABEL", "name": "x"},
        {"$x": "1"},
        {"type": "REDIRECT", "params": {"url": "a"}},
        {"type": "WEBHOOK", "params": {"event_name": "e"}},
        {"type": "DIAL", "params": {"no": "+1"}},
        {"type": "SESSIONDATA", "session_data": {}},
    ],
)
def test_control_flow_has_no_native_items(action: dict[str, Any]) -> None:
    response = parse_response(
        [action] if "name" in action else [action, {"type": "LABEL", "name": "x"}]
    )
    assert compile_plan(response, BASE, load_scenario_data).variants(response.actions[0]) is None


# -- the whole response ---------------------------------------------------------------------


def test_nested_actions_are_translated_too() -> None:
    response = parse_response(
        [{"type": "IF", "condition": "1", "then": [{"type": "SAY", "params": {"text": "in"}}]}]
    )
    plan = compile_plan(response, BASE, load_scenario_data)
    nested = response.actions[0]
    assert isinstance(nested, m.If)
    variants = plan.variants(nested.then[0])
    assert variants is not None and variants[RUN][0].key == "say@v1"


def test_actions_that_do_not_translate_are_all_named() -> None:
    response = parse_response(
        [
            {"type": "PLAY", "params": {"url": "file:///etc/passwd"}},
            {"type": "CONFERENCE", "params": {"name": "c", "hold_audio": "ftp://x"}},
            {"type": "SAY", "params": {"text": "fine"}},
        ]
    )
    with pytest.raises(ResponseError) as caught:
        compile_plan(response, BASE, load_scenario_data)
    assert caught.value.problems == [
        "actions[0] (PLAY): 'file:///etc/passwd' is not an http(s) URL (nor one relative to "
        f"{BASE})",
        f"actions[1] (CONFERENCE): 'ftp://x' is not an http(s) URL (nor one relative to {BASE})",
    ]


def test_build_items_reports_what_the_validator_says() -> None:
    with pytest.raises(TranslationError, match="send-dtmf@v1: digits: 'x' is not a DTMF key"):
        build_items([{"action": "send-dtmf@v1", "params": {"digits": "x"}}], load_scenario_data)
    assert build_items([], load_scenario_data) == ()
