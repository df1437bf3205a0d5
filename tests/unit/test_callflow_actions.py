"""Parsing callback responses into typed actions; every mistake named by path and field.

The seed's own examples (seed 003, "Actions") are parsed as written; those
using something this server cannot honour must say so precisely.
"""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.callflow import model as m
from mediaserver.callflow.actions import ResponseError, parse_response


def parse(*actions: dict[str, Any]) -> tuple[m.Action, ...]:
    return parse_response({"actions": list(actions)}).actions


def one(action: dict[str, Any]) -> Any:
    (parsed,) = parse(action)
    return parsed


def problems(*actions: Any, response: Any = None) -> list[str]:
    with pytest.raises(ResponseError) as caught:
        parse_response(response if response is not None else {"actions": list(actions)})
    return caught.value.problems


# -- the response -------------------------------------------------------------------------------


def test_the_call_flow_loop_example() -> None:
    response = parse_response(
        {
            "actions": [
                {"type": "SAY", "params": {"text": "Hello, Jill", "loop": 1}},
                {"type": "CONFERENCE", "params": {"name": "test-conf"}},
                {"type": "SAY", "params": {"text": "You have left the conference."}},
                {
                    "name": "rating",
                    "type": "COLLECT",
                    "params": {"num_digits": 1, "finish_on_key": "pound", "timeout": 3000},
                },
                {"type": "SAY", "params": {"text": "Thank you and good bye."}},
            ],
            "name": "MainMenu",
            "comments": "the seed's first example",
        }
    )
    say, conference, _, collect, _ = response.actions
    assert response.name == "MainMenu"
    assert isinstance(say, m.Say) and say.text == "Hello, Jill" and say.repeat == 1
    assert isinstance(conference, m.Conference) and conference.room == "test-conf"
    assert isinstance(collect, m.Collect)
    assert (collect.name, collect.num_digits, collect.timeout_ms, collect.finish_on_key) == (
        "rating",
        1,
        3000,
        "#",
    )
    assert collect.path == "actions[3]" and collect.where == "actions[3] (COLLECT)"


def test_a_single_action_and_a_bare_list_are_responses() -> None:
    detect = {"type": "DETECT", "params": {"trigger_live_in_ms": 3000}}
    assert isinstance(parse_response(detect).actions[0], m.Detect)
    assert isinstance(parse_response([{"type": "HANGUP"}]).actions[0], m.Hangup)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"nothing": 1}, "the response did not contain JSON actions"),
        ("text", "the response did not contain JSON actions"),
        (42, "got 42"),
        ({"actions": {"type": "SAY"}}, "actions: expected a list of actions, got an object"),
        ({"actions": [], "extra": 1}, "the response: extra: unknown field"),
        ({"actions": [1]}, "actions[0]: expected an action object, got 1"),
        ({"actions": [{"params": {}}]}, "actions[0]: missing type (or $variable assignments)"),
        (
            {"actions": [{"type": "say"}]},
            "actions[0]: unknown action type 'say' (did you mean SAY?)",
        ),
        ({"actions": [{"type": "SAY", "params": []}]}, "params: expected an object, got a list"),
        ({"actions": [{"type": "HANGUP", "colour": 1}]}, "actions[0] (HANGUP): colour: unknown"),
        ({"actions": [{"type": "HANGUP", "name": [3]}]}, "name: expected a string, got a list"),
    ],
)
def test_response_shape_mistakes(response: Any, message: str) -> None:
    found = problems(response=response)
    assert any(message in problem for problem in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {"type": "SAY"},
        {"type": "COLLECT", "params": {"num_digits": 0, "timeout": -1}},
        {
            "type": "IF",
            "condition": "$x >",
            "then": [{"type": "PAUSE", "params": {"seconds": "1"}}],
        },
    )
    assert found == [
        "actions[0] (SAY): params.text: required",
        "actions[1] (COLLECT): params.num_digits: must be 1 to 128, got 0",
        "actions[1] (COLLECT): params.timeout: must be 0 to 3600000 milliseconds, got -1",
        "actions[2] (IF): condition: invalid expression '$x >': SyntaxError: unexpected token "
        "in expression: ')'",
        "actions[2].then[0] (PAUSE): params.seconds: expected a number of seconds, got '1'",
    ]


def test_unknown_params_are_named_with_a_suggestion() -> None:
    assert problems({"type": "COLLECT", "params": {"finish_on_keys": "#"}}) == [
        "actions[0] (COLLECT): params.finish_on_keys: unknown field (did you mean 'finish_on_key'?)"
    ]


# -- SAY, PLAY, PAUSE --------------------------------------------------------------------------


def test_say() -> None:
    say = one(
        {
            "type": "SAY",
            "params": {
                "text": "Hello, world.",
                "repeat": 2,
                "voice": "Kate",
                "language": "english",
                "gender": "female",
            },
        }
    )
    assert (say.text, say.repeat, say.voice, say.language, say.stop_on_key) == (
        "Hello, world.",
        2,
        "female",
        "en-US",
        False,
    )


@pytest.mark.parametrize(
    ("params", "voice", "language"),
    [
        ({}, None, None),
        ({"voice": "Kevin"}, "male", None),
        ({"voice": "Kevin", "gender": "female"}, "female", None),
        ({"gender": "male", "language": "englishGB"}, "male", "en-GB"),
        ({"language": "spanish"}, None, "es-ES"),
        ({"language": "fr-CA"}, None, "fr-CA"),
    ],
)
def test_say_voices_and_languages(
    params: dict[str, Any], voice: str | None, language: str | None
) -> None:
    say = one({"type": "SAY", "params": {"text": "x", **params}})
    assert (say.voice, say.language) == (voice, language)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"text": "x", "voice": "Bob"}, "params.voice: must be one of Kate, Kevin, Watson"),
        ({"text": "x", "language": "klingon"}, "params.language: 'klingon' is not english"),
        ({"text": "x", "repeat": 0}, "params.repeat: must be 1 to 100, got 0"),
        ({"text": "x", "repeat": 1.5}, "params.repeat: expected a whole number, got 1.5"),
        ({"text": "x", "repeat": 2, "loop": 2}, "params.loop: give repeat or loop, not both"),
        ({"text": "x", "stop_on_key": "yes"}, "params.stop_on_key: expected true or false"),
        ({"text": "Hi ${name"}, "params.text: unterminated ${"),
        ({"text": ""}, "params.text: must not be empty"),
    ],
)
def test_say_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "SAY", "params": params})
    assert any(message in p for p in found), found


def test_play_audio_and_dtmf() -> None:
    audio = one({"type": "PLAY", "params": {"url": "https://s3.amazonaws.com/a.mp3", "repeat": 1}})
    assert (audio.url, audio.dtmf, audio.repeat) == ("https://s3.amazonaws.com/a.mp3", None, 1)
    dtmf = one({"type": "PLAY", "params": {"dtmf": "1 2 3 - 4 -- 5 --- 6"}})
    assert (dtmf.dtmf, dtmf.dtmf_delay_ms, dtmf.dtmf_dash_delay_ms) == (
        "1 2 3 - 4 -- 5 --- 6",
        250,
        250,
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params.url: give url (an audio file) or dtmf"),
        ({"url": "a.wav", "dtmf": "1"}, "params.dtmf: give url or dtmf, not both"),
        ({"dtmf": "12a"}, "params.dtmf: '12a': use 0-9, #, * and -"),
        ({"dtmf": "1", "dtmf_delay": -1}, "params.dtmf_delay: must be 0 to 60000 milliseconds"),
    ],
)
def test_play_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "PLAY", "params": params})
    assert any(message in p for p in found), found


def test_pause() -> None:
    assert one({"type": "PAUSE", "params": {"seconds": 10}}).seconds == 10
    assert one({"type": "PAUSE"}).seconds == 5
    assert problems({"type": "PAUSE", "params": {"seconds": 4000}}) == [
        "actions[0] (PAUSE): params.seconds: must be 0 to 3600 seconds, got 4000"
    ]


# -- COLLECT ---------------------------------------------------------------------------------


def test_collect_with_child_actions() -> None:
    collect = one(
        {
            "name": "rating",
            "type": "COLLECT",
            "actions": [
                {"type": "SAY", "params": {"text": "Press 1 for yes. Press 2 for no."}},
                {"type": "PAUSE", "params": {"seconds": 1}},
                {"type": "PLAY", "params": {"url": "beep.wav"}},
            ],
            "params": {"finish_on_key": "#", "num_digits": 1, "timeout": 5000},
            "comments": "Rating of the user experience.",
        }
    )
    assert [type(child) for child in collect.prompt] == [m.Say, m.Pause, m.Play]
    assert collect.prompt[0].path == "actions[0].actions[0]"


@pytest.mark.parametrize(
    ("key", "expected"),
    [("#", "#"), ("pound", "#"), ("star", "*"), ("*", "*"), ("off", None), ("5", "5"), (5, "5")],
)
def test_collect_finish_keys(key: Any, expected: str | None) -> None:
    assert one({"type": "COLLECT", "params": {"finish_on_key": key}}).finish_on_key == expected


def test_collect_defaults() -> None:
    collect = one({"type": "COLLECT"})
    assert (collect.num_digits, collect.timeout_ms, collect.finish_on_key) == (1, 5000, "#")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"type": "COLLECT", "params": {"finish_on_key": "##"}},
            "params.finish_on_key: expected one key",
        ),
        ({"type": "COLLECT", "params": {"timeout": 3600001}}, "must be 0 to 3600000 millisecon"),
        (
            {"type": "COLLECT", "actions": [{"type": "HANGUP"}]},
            "actions[0].actions[0] (HANGUP): a COLLECT's actions are SAY, PLAY (url) and PAUSE",
        ),
        (
            {"type": "COLLECT", "actions": [{"type": "PLAY", "params": {"dtmf": "1"}}]},
            "a COLLECT's actions are SAY, PLAY (url) and PAUSE only",
        ),
    ],
)
def test_collect_mistakes(action: dict[str, Any], message: str) -> None:
    found = problems(action)
    assert any(message in p for p in found), found


# -- CONFERENCE ------------------------------------------------------------------------------


def test_conference_params_and_events() -> None:
    conference = one(
        {
            "type": "CONFERENCE",
            "params": {
                "name": "my-conference",
                "max_participants": 10,
                "mute_on_key": "1",
                "unmute_on_key": "1",
                "exit_on_key": "#",
                "join_muted": True,
                "hold_audio": "hold.wav",
                "announce_on_join": "beep",
                "hold_on_join": True,
                "start_on_join": False,
                "end_on_exit": True,
                "auto_hold": True,
                "send_dtmf": True,
                "receive_dtmf": True,
                "hold_on_exit": True,
            },
            "events": {
                "on_enter": [
                    {"type": "SAY", "params": {"text": "Joining."}},
                    {"type": "WEBHOOK", "params": {"event_name": "onEnterConference"}},
                ],
                "on_enter_error_max_participants": [{"type": "SAY", "params": {"text": "Full."}}],
            },
        }
    )
    assert conference.room == "my-conference" and conference.max_participants == 10
    assert (conference.mute_on_key, conference.exit_on_key) == ("1", "#")
    assert conference.join_muted and conference.beep and conference.end_on_exit
    assert conference.hold_on_join and not conference.start_on_join
    assert conference.hold_audio == "hold.wav"
    assert conference.send_dtmf and conference.receive_dtmf and conference.hold_on_exit
    assert conference.events.names() == ("on_enter", "on_enter_error_max_participants")
    assert conference.events.get("on_enter")[1].path == "actions[0].events.on_enter[1]"


def test_every_conference_event_of_the_seed_is_taken() -> None:
    names = (
        "on_enter_started",
        "on_enter_waiting",
        "on_enter_alone",
        "on_enter",
        "on_enter_error_max_participants",
        "on_enter_error_ended",
        "on_enter_error",
    )
    say = [{"type": "SAY", "params": {"text": "x"}}]
    conference = one(
        {"type": "CONFERENCE", "params": {"name": "c"}, "events": dict.fromkeys(names, say)}
    )
    assert conference.events.names() == names


def test_the_seed_s_conference_example_is_accepted() -> None:
    # seeds/003, CONFERENCE, "Example Response", as written.
    conference = one(
        {
            "type": "CONFERENCE",
            "params": {
                "name": "my-conference",
                "max_participants": 10,
                "mute_on_key": "1",
                "unmute_on_key": "3",
                "exit_on_key": "#0",
            },
            "events": {
                "on_enter": [
                    {"type": "SAY", "params": {"text": "You are now joining the conference."}},
                    {"type": "WEBHOOK", "params": {"event_name": "onEnterConference"}},
                ],
                "on_enter_error_max_participants": [
                    {"type": "SAY", "params": {"text": "I'm sorry. The conference is full."}}
                ],
            },
        }
    )
    keys = (conference.mute_on_key, conference.unmute_on_key, conference.exit_on_key)
    assert keys == ("1", "3", "#0")
    assert conference.events.names() == ("on_enter", "on_enter_error_max_participants")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params.name: required"),
        ({"name": "a b"}, "params.name: 'a b' is not letters, digits, underscores and dashes"),
        ({"name": "c", "max_participants": 0}, "params.max_participants: must be 1 to"),
        (
            {"name": "c", "mute_on_key": "1", "exit_on_key": "1"},
            "params.mute_on_key: mute_on_key and exit_on_key are the same keys ('1')",
        ),
        (
            {"name": "c", "mute_on_key": "#", "exit_on_key": "#0"},
            "params.mute_on_key: mute_on_key ('#') would act in the middle of exit_on_key ('#0')",
        ),
        (
            {"name": "c", "exit_on_key": "#x"},
            'params.exit_on_key: expected keys pressed in order (1 to 8 of 0-9, #, *, e.g. "#0"),'
            " pound, star or off, got '#x'",
        ),
        ({"name": "c", "exit_on_key": "123456789"}, "params.exit_on_key: expected keys"),
        ({"name": "c", "hold_on_exit": "yes"}, "params.hold_on_exit: expected true or false"),
        ({"name": "c", "receive_dtmf": 1}, "params.receive_dtmf: expected true or false"),
        ({"name": "c", "announce_on_join": "tone"}, "params.announce_on_join: must be one of beep"),
    ],
)
def test_conference_mistakes(params: dict[str, Any], message: str) -> None:
    events = params.pop("events", None)
    found = problems({"type": "CONFERENCE", "params": params, "events": events or {}})
    assert any(message in p for p in found), found


def test_unknown_event_names_are_named() -> None:
    found = problems({"type": "CONFERENCE", "params": {"name": "c"}, "events": {"on_entr": []}})
    assert found == [
        "actions[0] (CONFERENCE): events.on_entr: unknown event (did you mean 'on_enter'?); "
        "CONFERENCE has on_enter_started, on_enter_waiting, on_enter_alone, on_enter, "
        "on_enter_error_max_participants, on_enter_error_ended, on_enter_error"
    ]


# -- DIAL, TRANSFER, QUEUE -------------------------------------------------------------------


def test_the_seed_s_dial_examples() -> None:
    plain = one({"type": "DIAL", "params": {"no": "+19495551111"}})
    assert (plain.number, plain.caller_id, plain.timeout, plain.session_data) == (
        "+19495551111",
        None,
        50.0,
        None,
    )
    data = one(
        {
            "type": "DIAL",
            "params": {
                "no": "abc123@sip.mypbx.com",
                "caller_id_no": "+1714",
                "inbound_api": "CallFlows",
            },
            "session_data": {"name": "Bob", "age": 21},
        }
    )
    assert data.session_data == {"name": "Bob", "age": 21} and data.caller_id == "+1714"
    expression = one({"type": "DIAL", "params": {"no": "+1"}, "session_data": "$sessionData"})
    assert expression.session_data == "$sessionData"
    on_error = one(
        {
            "type": "DIAL",
            "params": {"no": "+1"},
            "events": {"on_error": [{"type": "SAY", "params": {"text": "x"}}]},
        }
    )
    assert len(on_error.events.get("on_error")) == 1


def test_dial_detection_max_call_time_and_override_config() -> None:
    plain = one({"type": "DIAL", "params": {"no": "+1"}})
    assert (plain.detection, plain.max_call_time, plain.override_config) == ("none", 86400, None)
    dial = one(
        {
            "type": "DIAL",
            "params": {
                "no": "+1",
                "detection": "full",
                "max_call_time": 120,
                "override_callback_config": "${sessionData.line}",
            },
        }
    )
    assert (dial.detection, dial.max_call_time) == ("full", 120)
    assert dial.override_config == "${sessionData.line}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"no": "+1", "detection": "early"}, "params.detection: must be one of none, preconnect"),
        ({"no": "+1", "max_call_time": 59}, "params.max_call_time: must be 60 to 172800 seconds"),
        ({"no": "+1", "override_callback_config": []}, "override_callback_config: expected"),
        ({"no": "+1", "timeout": 10}, "params.timeout: must be 20 to 240 seconds, got 10"),
        ({"no": "+1", "inbound_api": "Parking"}, "params.inbound_api: must be one of CallFlows"),
        ({"no": "+1", "session_data": 5}, "params.session_data: expected an object or an expr"),
        ({}, "params.no: required"),
    ],
)
def test_dial_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "DIAL", "params": params})
    assert any(message in p for p in found), found


def test_transfer() -> None:
    transfer = one(
        {
            "type": "TRANSFER",
            "params": {"no": "abc123@sip.mypbx.com", "caller_id_no": "+17145552222"},
        }
    )
    assert (transfer.number, transfer.caller_id) == ("abc123@sip.mypbx.com", "+17145552222")


def test_async_transfer_and_stop() -> None:
    started = one({"type": "TRANSFER", "params": {"no": "+17145551212", "async": True}})
    assert (started.number, started.event, started.is_async) == ("+17145551212", "start", True)
    stop = one({"type": "TRANSFER", "params": {"event": "stop"}})
    assert (stop.event, stop.number) == ("stop", "")
    assert problems({"type": "TRANSFER", "params": {"event": "stop", "async": True}}) == [
        "actions[0] (TRANSFER): params.async: a TRANSFER stop does not wait for anything: "
        "leave async out"
    ]
    assert problems({"type": "TRANSFER", "params": {"async": True}}) == [
        "actions[0] (TRANSFER): params.no: required"
    ]


def test_queue_offer_and_poll_connect() -> None:
    offer = one({"type": "QUEUE", "params": {"name": "high-priority"}})
    assert (offer.queue, offer.event) == ("high-priority", "offer")
    poll = one(
        {
            "type": "QUEUE",
            "params": {"name": "q", "event": "poll_connect"},
            "events": {"on_enter_error": []},
        }
    )
    assert poll.event == "poll_connect" and poll.events.names() == ("on_enter_error",)


def test_the_seed_s_advanced_queue_example_has_max_calls() -> None:
    queue = one(
        {
            "type": "QUEUE",
            "params": {"name": "low-priority", "event": "offer", "max_calls": 10},
            "events": {"on_enter": [], "on_enter_error_max_calls": []},
        }
    )
    assert (queue.event, queue.max_calls, queue.is_async) == ("offer", 10, False)


def test_queue_poll_remove_and_async_offer() -> None:
    poll = one({"type": "QUEUE", "params": {"name": "q", "event": "poll"}})
    remove = one({"type": "QUEUE", "params": {"name": "q", "event": "remove"}})
    offer = one({"type": "QUEUE", "params": {"name": "q", "async": True}})
    assert (poll.event, remove.event) == ("poll", "remove")
    assert offer.event == "offer" and offer.is_async


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"event": "poll", "async": True}, "params.async: only offer can be asynchronous"),
        ({"event": "remove", "max_calls": 3}, "params.max_calls: max_calls applies to offer"),
        ({"max_calls": 0}, "params.max_calls: must be 1 to 1000000, got 0"),
        ({"event": "peek"}, "params.event: must be one of offer, poll, poll_connect, remove"),
    ],
)
def test_queue_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "QUEUE", "params": {"name": "q", **params}})
    assert any(message in p for p in found), found


# -- RECORD, RECORDMESSAGE -----------------------------------------------------------------


def test_record() -> None:
    record = one({"type": "RECORD", "params": {"group": "support_technical", "action": "start"}})
    assert (record.command, record.group) == ("start", "support_technical")
    assert one({"type": "RECORD", "params": {"action": "pause"}}).command == "pause"
    assert problems({"type": "RECORD", "params": {"action": "rewind"}}) == [
        "actions[0] (RECORD): params.action: must be one of start, stop, pause, resume; "
        "got 'rewind'"
    ]


def test_recordmessage() -> None:
    message = one({"type": "RECORDMESSAGE", "params": {"group": "support", "action": "start"}})
    assert (message.command, message.finish_on_key, message.max_seconds) == ("start", "any", 30.0)
    assert message.silence_seconds == 5.0
    custom = one(
        {
            "type": "RECORDMESSAGE",
            "params": {"finish_on_key": "pound", "timeout": 3, "max_recording_time": 60},
        }
    )
    assert (custom.finish_on_key, custom.silence_seconds, custom.max_seconds) == ("#", 3, 60)
    save = one(
        {
            "type": "RECORDMESSAGE",
            "params": {"action": "save"},
            "events": {"on_save": [{"type": "WEBHOOK", "params": {"event_name": "s"}}]},
        }
    )
    assert save.command == "save" and save.events.names() == ("on_save",)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_recording_time": 0}, "params.max_recording_time: must be 1 to 3600 seconds"),
        ({"timeout": 61}, "params.timeout: must be 1 to 60 seconds, got 61"),
        ({"finish_on_key": "none"}, "params.finish_on_key: expected one key"),
    ],
)
def test_recordmessage_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "RECORDMESSAGE", "params": params})
    assert any(message in p for p in found), found


# -- REDIRECT, REJECT, HANGUP, STOP, SMS, DETECT ------------------------------------------------


def test_redirect() -> None:
    redirect = one(
        {
            "type": "REDIRECT",
            "params": {
                "url": "https://your-domain.com/path/to/here",
                "method": "GET",
                "headers": {"X-A": "1"},
                "content_type": "application/json",
            },
        }
    )
    assert (redirect.url, redirect.method, redirect.headers) == (
        "https://your-domain.com/path/to/here",
        "GET",
        (("X-A", "1"),),
    )
    assert one({"type": "REDIRECT", "params": {"url": "../../other_file.json"}}).method is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params.url: required"),
        ({"url": "x", "method": "PATCH"}, "params.method: must be one of POST, PUT, GET"),
        ({"url": "x", "content_type": "application/xml"}, "params.content_type: not supported"),
        ({"url": "x", "headers": {"Bad Name": "v"}}, "params.headers.Bad Name: is not a header"),
        ({"url": "x", "headers": {"X": "a\nb"}}, "params.headers.X: expected a one-line string"),
    ],
)
def test_redirect_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "REDIRECT", "params": params})
    assert any(message in p for p in found), found


def test_reject_hangup_stop() -> None:
    assert one({"type": "REJECT", "params": {"reason": "busy"}}).reason == "busy"
    assert one({"type": "REJECT"}).reason == "busy"
    assert one({"type": "REJECT", "params": {"reason": "disconnected"}}).reason == "disconnected"
    assert isinstance(one({"type": "HANGUP"}), m.Hangup)
    assert isinstance(one({"type": "STOP", "params": {"actions": "AUDIO"}}), m.Stop)
    assert problems({"type": "STOP", "params": {"actions": "VIDEO"}}) == [
        "actions[0] (STOP): params.actions: must be one of AUDIO; got 'VIDEO'"
    ]
    assert problems({"type": "HANGUP", "params": {"now": True}}) == [
        "actions[0] (HANGUP): params.now: unknown field"
    ]


def test_sms_and_detect() -> None:
    sms = one(
        {
            "type": "SMS",
            "params": {
                "no": "+19495551111",
                "caller_id_no": "+17145552222",
                "message": "Hello, world!",
            },
        }
    )
    assert (sms.to, sms.sender, sms.message) == ("+19495551111", "+17145552222", "Hello, world!")
    detect = one(
        {
            "type": "DETECT",
            "params": {"trigger_live_in_ms": 3000},
            "events": {"on_live_person": [], "on_voicemail": []},
        }
    )
    assert detect.trigger_seconds == 3.0
    assert problems({"type": "DETECT", "params": {"trigger_live_in_ms": 50}}) == [
        "actions[0] (DETECT): params.trigger_live_in_ms: must be 1000 to 30000 milliseconds, got 50"
    ]


# -- IF, GOTO, LABEL, FOREACH ----------------------------------------------------------------


def test_if_then_or_else() -> None:
    action = one(
        {
            "type": "IF",
            "condition": "$keyPresses == '1' && $sessionData.age > 21",
            "then": [{"type": "SAY", "params": {"text": "a"}}],
            "orElse": [{"type": "SAY", "params": {"text": "b"}}],
        }
    )
    assert action.condition == "$keyPresses == '1' && $sessionData.age > 21"
    assert action.then[0].path == "actions[0].then[0]"
    assert action.or_else[0].path == "actions[0].orElse[0]"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"type": "IF", "then": []}, "actions[0] (IF): condition: required"),
        ({"type": "IF", "condition": "1"}, "actions[0] (IF): then: required: a list of actions"),
        ({"type": "IF", "condition": "1", "then": {}}, "actions[0].then: expected a list"),
        (
            {"type": "IF", "params": {"condition": "1"}, "then": []},
            "params.condition: condition goes next to type, not inside params",
        ),
        (
            {"type": "IF", "condition": "1", "then": [], "else": []},
            "actions[0] (IF): else: the IF action calls it orElse",
        ),
        ({"type": "IF", "condition": 1, "then": []}, "condition: expected a JavaScript expression"),
    ],
)
def test_if_mistakes(action: dict[str, Any], message: str) -> None:
    found = problems(action)
    assert any(message in p for p in found), found


def test_goto_and_label() -> None:
    label, goto = parse(
        {"type": "LABEL", "name": "goto_here"}, {"type": "GOTO", "params": {"label": "goto_here"}}
    )
    assert isinstance(label, m.Label) and label.name == "goto_here"
    assert isinstance(goto, m.Goto) and goto.label == "goto_here"
    (label,) = parse({"type": "LABEL", "params": {"name": "p"}})
    assert label.name == "p"


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([{"type": "LABEL"}], "actions[0] (LABEL): name: required: the LABEL's name"),
        ([{"type": "LABEL", "name": "a b"}], "name: 'a b' is not letters, digits"),
        (
            [{"type": "LABEL", "name": "a"}, {"type": "LABEL", "name": "a"}],
            "actions[1] (LABEL): duplicate LABEL 'a' (first at actions[0])",
        ),
        (
            [{"type": "GOTO", "params": {"label": "x"}}],
            "actions[0] (GOTO): params.label: LABEL 'x' does not exist; GOTO jumps to a LABEL of "
            "its own list or of an enclosing one",
        ),
        (
            [
                {"type": "IF", "condition": "1", "then": [{"type": "LABEL", "name": "in"}]},
                {"type": "GOTO", "params": {"label": "in"}},
            ],
            "actions[1] (GOTO): params.label: LABEL 'in' is inside another list",
        ),
        (
            [
                {
                    "type": "IF",
                    "condition": "1",
                    "then": [{"type": "LABEL", "name": "t"}],
                    "orElse": [{"type": "GOTO", "params": {"label": "t"}}],
                }
            ],
            "actions[0].orElse[0] (GOTO): params.label: LABEL 't' is inside another list",
        ),
        ([{"type": "GOTO"}], "actions[0] (GOTO): params.label: required"),
    ],
)
def test_label_mistakes(actions: list[dict[str, Any]], message: str) -> None:
    found = problems(*actions)
    assert any(message in p for p in found), found


def test_goto_may_jump_out_of_nested_lists_and_handlers() -> None:
    parse(
        {"type": "LABEL", "name": "top"},
        {"type": "IF", "condition": "1", "then": [{"type": "GOTO", "params": {"label": "top"}}]},
        {
            "type": "WEBHOOK",
            "params": {"event_name": "e"},
            "events": {"on_error": [{"type": "GOTO", "params": {"label": "top"}}]},
        },
        {"type": "GOTO", "params": {"label": "${'computed'}"}},
    )


def test_foreach() -> None:
    loop = one(
        {
            "type": "FOREACH",
            "params": {"iterator": "$myPetsObj", "valueVar": "$v", "keyVar": "$k"},
            "then": [{"type": "SAY", "params": {"text": "The key ${k} has a value of ${v}."}}],
        }
    )
    assert (loop.iterator, loop.value_var, loop.key_var, loop.index_var) == (
        "$myPetsObj",
        "$v",
        "$k",
        "$index",
    )
    plain = one({"type": "FOREACH", "params": {"iterator": "$a"}, "then": [{"type": "HANGUP"}]})
    assert (plain.value_var, plain.key_var) == ("$val", "$key")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"type": "FOREACH", "then": [{"type": "HANGUP"}]}, "params.iterator: required"),
        ({"type": "FOREACH", "params": {"iterator": "$a"}}, "then: required"),
        ({"type": "FOREACH", "params": {"iterator": "$a"}, "then": []}, "then: give at least one"),
        (
            {
                "type": "FOREACH",
                "params": {"iterator": "$a", "valueVar": "v"},
                "then": [{"type": "HANGUP"}],
            },
            "params.valueVar: 'v' is not a variable name",
        ),
        (
            {
                "type": "FOREACH",
                "params": {"iterator": "$a", "keyVar": "$callId"},
                "then": [{"type": "HANGUP"}],
            },
            "params.keyVar: $callId is read-only",
        ),
    ],
)
def test_foreach_mistakes(action: dict[str, Any], message: str) -> None:
    found = problems(action)
    assert any(message in p for p in found), found


# -- SESSIONDATA, WEBHOOK, assignments ------------------------------------------------------


def test_sessiondata() -> None:
    data = one({"type": "SESSIONDATA", "session_data": {"name": "Bob", "age": 21}})
    assert data.value == {"name": "Bob", "age": 21}
    assert one({"type": "SESSIONDATA", "params": {"session_data": "$x"}}).value == "$x"
    assert problems({"type": "SESSIONDATA"}) == [
        "actions[0] (SESSIONDATA): session_data: required: an object, or an expression string"
    ]
    assert problems({"type": "SESSIONDATA", "session_data": [1]}) == [
        "actions[0] (SESSIONDATA): session_data: expected an object or an expression string, "
        "got a list"
    ]


def test_the_seed_s_webhook_examples() -> None:
    simple = one({"type": "WEBHOOK", "params": {"event_name": "onEnterConference"}})
    assert (simple.event_name, simple.data, simple.url, simple.await_response) == (
        "onEnterConference",
        None,
        None,
        False,
    )
    advanced = one(
        {
            "type": "WEBHOOK",
            "params": {
                "event_name": "onEnterConference",
                "webhook_data": {"conferenceName": "my-conf"},
                "url": "https://mydomain.com/app/webhook",
                "method": "POST",
                "content_type": "application/json",
            },
            "events": {"on_error": [{"$webhookData": "{ foo: 'I got no foo' }"}]},
        }
    )
    assert advanced.data == {"conferenceName": "my-conf"} and advanced.method == "POST"
    assert advanced.timeout == 30.0 and advanced.events.names() == ("on_error",)
    text = one(
        {"type": "WEBHOOK", "params": {"event_name": "e", "webhook_data": "$dataMap.webhookData"}}
    )
    assert text.data == "$dataMap.webhookData"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params.event_name: required"),
        ({"event_name": "e", "timeout": 31}, "params.timeout: must be 1 to 30 seconds"),
        ({"event_name": "e", "content_type": "application/xml"}, "content_type: not supported"),
        ({"event_name": "e", "method": "DELETE"}, "params.method: must be one of GET, POST, PUT"),
        ({"event_name": "e", "webhook_data": "$a +"}, "params.webhook_data: invalid expression"),
    ],
)
def test_webhook_mistakes(params: dict[str, Any], message: str) -> None:
    found = problems({"type": "WEBHOOK", "params": params})
    assert any(message in p for p in found), found


def test_assignments() -> None:
    assign = one(
        {
            "$conferenceName": "'MyConference'",
            "$counter": "0",
            "$myObj.foo": "'bar'",
            "$sessionData.isInConference": "false",
            "$n": 5,
        }
    )
    assert isinstance(assign, m.Assign)
    assert assign.pairs == (
        ("$conferenceName", "'MyConference'"),
        ("$counter", "0"),
        ("$myObj.foo", "'bar'"),
        ("$sessionData.isInConference", "false"),
        ("$n", 5),
    )
    assert assign.where == "actions[0]"


def test_assignments_to_native_constants_fail_silently() -> None:
    assign = one({"$keyPresses": "'1'", "$callTime": "0", "$now": "1", "$x": "2"})
    assert assign.pairs == (("$x", "2"),)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ({"$x": "1 +"}, "actions[0] (assignment): $x: invalid expression '1 +'"),
        ({"$call": "1"}, "actions[0] (assignment): $call: $call is read-only"),
        ({"$x.": "1"}, "invalid assignment target '$x.'"),
        ({"$": "1"}, "invalid assignment target '$'"),
    ],
)
def test_assignment_mistakes(assignment: dict[str, Any], message: str) -> None:
    found = problems(assignment)
    assert any(message in p for p in found), found


def test_a_mixed_object_is_not_an_assignment() -> None:
    assert problems({"$x": "1", "other": 2}) == [
        "actions[0]: missing type (or $variable assignments)"
    ]


def test_the_variables_example_of_the_seed() -> None:
    actions = parse(
        {"type": "SAY", "params": {"text": "We're about to assign some variables."}},
        {
            "$conferenceName": "'MyConference'",
            "$counter": "0",
            "$myObj": "{}",
            "$myPets": "['Whiskers', 'Spot', 'Bubbles']",
            "$myPetsAgain": "{cat: 'Whiskers', dog: 'Spot', fish: 'Bubbles'}",
        },
        {"$conferenceName": "'MyConference' + $counter"},
        {"$sessionData.isInConference": "false"},
        {"$myObj.foo": "'bar'"},
        {"$counter": "$counter + 1"},
        {"$myDog": "$myPets[1]"},
        {"$myPetsAgain.bird": "'Tweety'"},
    )
    assert len(actions) == 8


def test_walk_and_sublists() -> None:
    actions = parse(
        {
            "type": "IF",
            "condition": "1",
            "then": [{"type": "HANGUP"}],
            "orElse": [
                {
                    "type": "FOREACH",
                    "params": {"iterator": "[]"},
                    "then": [{"type": "SAY", "params": {"text": "x"}}],
                }
            ],
        },
        {"type": "COLLECT", "actions": [{"type": "SAY", "params": {"text": "prompt"}}]},
    )
    assert [a.path for a in m.walk(actions)] == [
        "actions[0]",
        "actions[0].then[0]",
        "actions[0].orElse[0]",
        "actions[0].orElse[0].then[0]",
        "actions[1]",  # a COLLECT's child actions are its prompt
    ]
