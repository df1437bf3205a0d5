"""The Call Flow Loop against a fake call and a scripted application (no network).

Each test runs ``callflow@v1`` (or a scenario around it) with
:func:`test_callflow_fakes.run_flow`: what the caller heard, the call's
events, and every request the application received are checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_amd import word
from test_callflow_fakes import EPOCH, FLOW, URL, FlowApp, json_answer, run_flow
from test_callflow_fakes import clock as clock  # the fixture, used by pytestmark
from test_runner_fakes import FakeCall, FakePrompts, run_actions

from mediaserver.actions.callapi import FetchError, FetchResult
from mediaserver.callflow import errors

pytestmark = pytest.mark.usefixtures("clock")


def say(text: str, **params: Any) -> dict[str, Any]:
    return {"type": "SAY", "params": {"text": text, **params}}


HANGUP = {"type": "HANGUP"}


# -- the loop: init_call, live_call, end_call ---------------------------------------------------


async def test_init_live_and_end_call_in_order() -> None:
    outcome, call, app, _ = await run_flow(
        {"actions": [say("Hello")]},
        {"actions": [say("Again"), HANGUP]},
    )
    assert outcome.status == "completed", outcome.error
    assert app.types() == ["init_call", "live_call", "end_call"]
    assert call.heard() == ["say:Hello", "say:Again"]
    assert all(r.url == URL and r.method == "POST" for r in app.requests)
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_the_init_call_request_has_the_seed_fields() -> None:
    _, _, app, _ = await run_flow([HANGUP])
    init = app.bodies("init_call")[0]
    assert init["service"] == "programmable_voice" and init["type"] == "init_call"
    assert init["is_webhook"] is False
    assert init["call_id"] == "call0001"
    assert init["direction"] == "inbound"
    assert init["caller_no"] == "+33123456789" and init["api_no"] == "ivr"
    assert init["start_time"] == "2023-11-14T22:13:20.000Z"
    assert init["status"] == "live-ringing" and init["duration"] == 0
    assert init["session_data"] == {} and init["error_code"] is None and init["error"] is None
    for field in ("key_presses", "recordings", "end_time", "connect_time_sec", "parent_call_id"):
        assert field not in init  # seed, "When": live_call and end_call only


async def test_the_end_call_reports_times_status_and_keys() -> None:
    collect = {"name": "pin", "type": "COLLECT", "params": {"num_digits": 4}}
    _, call, app, _ = await run_flow(
        [say("Hi"), collect, HANGUP], keys="1234", keys_at=3, key_gap=0.5
    )
    end = app.bodies("end_call")[0]
    assert end["status"] == "completed"
    assert end["key_presses"] == [{"name": "pin", "digits": "1234", "history": ["1234"]}]
    assert end["recordings"] == [] and end["last_queue_poll_connect_call"] is None
    assert end["duration"] == round(call.now * 1000)
    assert end["connect_time_sec"] == int(call.now - 1)  # FakeCall answers at +1 s
    assert end["end_time"].startswith("2023-11-14T22:13:")


async def test_an_empty_204_answer_hangs_up_and_ends_the_flow() -> None:
    outcome, call, app, _ = await run_flow([say("Hello")], 204)
    assert outcome.status == "completed"
    assert app.types() == ["init_call", "live_call", "end_call"]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_an_answer_without_actions_ends_the_flow_as_a_204_does() -> None:
    outcome, call, app, _ = await run_flow([say("Hello")], {"actions": []})
    assert outcome.status == "completed"
    assert app.types() == ["init_call", "live_call", "end_call"]
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_a_bare_action_object_and_a_bare_list_are_answers_too() -> None:
    _, call, _, _ = await run_flow(say("One"), [say("Two"), HANGUP])
    assert call.heard() == ["say:One", "say:Two"]


async def test_the_caller_hanging_up_ends_the_flow_with_end_call() -> None:
    call = FakeCall(FakePrompts(), hangup_at=0.5)
    outcome, _, app, _ = await run_flow([say("A long welcome message for you")], call=call)
    assert outcome.status == "hangup"
    assert app.types() == ["init_call", "end_call"]
    assert app.bodies("end_call")[0]["status"] == "completed"


async def test_a_cancelled_run_still_sends_end_call() -> None:
    app = FlowApp([say("Hello")], 30.0)  # the live_call never answers
    task = asyncio.ensure_future(run_flow(app=app))
    while len(app.requests) < 2:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(10):
        await asyncio.sleep(0)
    assert app.types() == ["init_call", "live_call", "end_call"]


async def test_session_data_set_by_the_scenario_is_the_flow_s() -> None:
    actions = "- action: set@v1\n  params: {$sessionData: \"({name: 'Jill'})\"}\n" + FLOW
    _, call, app, _ = await run_flow([say("Hello ${sessionData.name}"), HANGUP], actions=actions)
    assert call.heard() == ["say:Hello Jill"]
    assert app.bodies("init_call")[0]["session_data"] == {"name": "Jill"}


async def test_template_mapping_fills_the_answer_from_the_request_it_answers() -> None:
    # seeds/003, "Example Template Mapping": {{property}} and {{property|default}}.
    actions = "- action: set@v1\n  params: {$sessionData: \"({conferenceName: 'team-7'})\"}\n"
    conference = {
        "type": "CONFERENCE",
        "params": {"name": "{{session_data.conferenceName}}", "exit_on_key": "#"},
    }
    answer = [
        say("Hello, {{session_data.firstName|guest}}."),
        conference,
        say("{{caller_no}} after {{ duration }} ms{{nothing}}, {{session_data.nothing|}}."),
        HANGUP,
    ]
    _, call, app, _ = await run_flow(answer, actions=actions + FLOW, keys="#", keys_at=5)
    init = app.bodies("init_call")[0]
    assert "conference:team-7" in [e for _, e in call.events]
    assert call.heard() == [
        "say:Hello, guest.",
        f"say:{init['caller_no']} after {init['duration']} ms, .",
    ]


async def test_is_template_false_leaves_the_answer_as_written() -> None:
    # seeds/003, "is_template": "If true, Template Mapping. will be found and replaced".
    flow = f"- action: callflow@v1\n  params: {{url: '{URL}', is_template: false}}"
    answer = [say("Hello, {{session_data.firstName|guest}}."), HANGUP]
    _, call, app, _ = await run_flow(answer, actions=flow)
    assert call.heard() == ["say:Hello, {{session_data.firstName|guest}}."]
    assert app.bodies("init_call")[0]["session_data"] == {}


async def test_headers_and_method_of_the_action_are_used() -> None:
    actions = (
        "- action: callflow@v1\n"
        f"  params: {{url: '{URL}', method: PUT, headers: {{X-Key: 'k-${{call.to}}'}}}}"
    )
    _, _, app, _ = await run_flow([HANGUP], actions=actions)
    assert [r.method for r in app.requests] == ["PUT", "PUT"]
    assert app.requests[0].headers == {"X-Key": "k-ivr"}


async def test_get_sends_the_fields_as_a_query_string() -> None:
    actions = f"- action: callflow@v1\n  params: {{url: '{URL}?app=1', method: GET}}"
    collect = {"name": "menu", "type": "COLLECT", "params": {"num_digits": 1}}
    _, _, app, _ = await run_flow([collect], [HANGUP], actions=actions, keys="7", keys_at=1)
    first, second, end = app.requests
    assert first.method == second.method == end.method == "GET" and first.body is None
    assert first.url.startswith(f"{URL}?app=1&service=programmable_voice&type=init_call")
    live = app.bodies("live_call")[0]
    assert live["key_presses.menu"] == "7" and "key_presses" not in live
    assert live["is_webhook"] == "false" and "error_code" not in live  # nulls are left out


# -- variables ------------------------------------------------------------------------------------


async def test_native_constants_are_set_and_read_only() -> None:
    answer = [
        {"$callerNo": "'changed'", "$mine": "$callerNo + ' ' + $direction + ' ' + $callId"},
        say("${mine} ${apiNo} ${appId} ${typeof callTime}"),
        HANGUP,
    ]
    outcome, call, _, _ = await run_flow(answer)
    assert call.heard() == ["say:+33123456789 INBOUND call0001 ivr mediaserver number"]
    assert outcome.variables["$callerNo"] == "+33123456789"
    assert outcome.variables["$config"]["url"] == URL


async def test_assignments_paths_and_session_data() -> None:
    answer = [
        {"$counter": "0", "$pets": "['Whiskers', 'Spot']", "$obj": "{}"},
        {"$counter": "$counter + 1"},
        {"$obj.foo": "'bar'", "$sessionData.seen": "true"},
        {"$dog": "$pets[1]", "$literal": 5},
        {"type": "SESSIONDATA", "session_data": {"name": "Bob", "age": 21}},
        {"$sessionData.age": "$sessionData.age + 1"},
        say("${counter} ${obj.foo} ${dog} ${literal} ${sessionData.name} ${sessionData.age}"),
    ]
    _, call, app, _ = await run_flow(answer, [HANGUP])
    assert call.heard() == ["say:1 bar Spot 5 Bob 22"]
    assert app.bodies("live_call")[0]["session_data"] == {"name": "Bob", "age": 22}


async def test_sessiondata_takes_an_expression() -> None:
    answer = [{"$d": "{a: 1}"}, {"type": "SESSIONDATA", "session_data": "$d"}, HANGUP]
    _, _, app, _ = await run_flow(answer)
    assert app.bodies("end_call")[0]["session_data"] == {"a": 1}


# -- flow control -----------------------------------------------------------------------------


async def test_if_then_and_or_else() -> None:
    answer = [
        {"$n": "3"},
        {"type": "IF", "condition": "$n > 2", "then": [say("big")], "orElse": [say("small")]},
        {"type": "IF", "condition": "$n > 5", "then": [say("huge")], "orElse": [say("not huge")]},
        {"type": "IF", "condition": "$n > 5", "then": [say("never")]},
        HANGUP,
    ]
    _, call, _, _ = await run_flow(answer)
    assert call.heard() == ["say:big", "say:not huge"]


async def test_goto_label_loops_with_collect_attempt() -> None:
    """The seed's COLLECT "Advanced" example: retry while nothing is pressed."""
    answer = [
        {"$nextUrl": "'operator.json'"},
        {"type": "LABEL", "name": "PROMPT_MENU_CHOICE"},
        {
            "type": "COLLECT",
            "actions": [say("Press 1 for sales. Press 2 for service.")],
            "params": {"num_digits": 1, "timeout": 2000},
        },
        {
            "type": "IF",
            "condition": "! $keyPresses && $collectAttempt < 3",
            "then": [{"type": "GOTO", "params": {"label": "PROMPT_MENU_CHOICE"}}],
        },
        {"type": "IF", "condition": "$keyPresses=='1'", "then": [{"$nextUrl": "'sales.json'"}]},
        {"type": "REDIRECT", "params": {"url": "${nextUrl}"}},
    ]
    _, call, app, _ = await run_flow(answer, [HANGUP], keys="1", keys_at=9)
    assert call.heard().count("say:Press 1 for sales. Press 2 for service.") == 3
    live = app.bodies("live_call")[0]
    assert app.requests[1].url == "http://app.test/sales.json"  # relative to the flow's URL
    assert live["key_presses"] == [{"name": None, "digits": "1", "history": ["", "", "1"]}]


async def test_goto_jumps_out_of_a_nested_list_and_foreach() -> None:
    answer = [
        {"$pets": "['Whiskers', 'Spot', 'Bubbles']"},
        {
            "type": "FOREACH",
            "params": {"iterator": "$pets"},
            "then": [
                say("The index ${index} has a value of ${val}."),
                {
                    "type": "IF",
                    "condition": "$val == 'Spot'",
                    "then": [{"type": "GOTO", "params": {"label": "after"}}],
                },
            ],
        },
        say("never said"),
        {"type": "LABEL", "name": "after"},
        HANGUP,
    ]
    _, call, _, _ = await run_flow(answer)
    assert call.heard() == [
        "say:The index 0 has a value of Whiskers.",
        "say:The index 1 has a value of Spot.",
    ]


async def test_foreach_over_an_object_with_its_own_variables() -> None:
    answer = [
        {"$o": "{cat: 'Whiskers', dog: 'Spot'}"},
        {
            "type": "FOREACH",
            "params": {"iterator": "$o", "valueVar": "$v", "keyVar": "$k", "indexVar": "$i"},
            "then": [say("${i} ${k} ${v}")],
        },
        HANGUP,
    ]
    _, call, _, _ = await run_flow(answer)
    assert call.heard() == ["say:0 cat Whiskers", "say:1 dog Spot"]


async def test_an_interpolated_goto_label_is_looked_for_when_it_runs() -> None:
    answer = [
        {"$where": "'b'"},
        {"type": "GOTO", "params": {"label": "${where}"}},
        {"type": "LABEL", "name": "a"},
        say("a"),
        {"type": "LABEL", "name": "b"},
        say("b"),
        {"type": "GOTO", "params": {"label": "${'nowhere'}"}},
    ]
    outcome, call, app, _ = await run_flow(answer)
    assert call.heard()[:1] == ["say:b"]
    assert "GOTO: no LABEL 'nowhere'" in str(outcome.error)
    assert app.bodies("end_call")[0]["error_code"] == errors.INBOUND_NO_ACTIONS


async def test_a_goto_loop_is_stopped_by_the_guard() -> None:
    answer = [{"type": "LABEL", "name": "x"}, {"type": "GOTO", "params": {"label": "x"}}]
    outcome, _, app, _ = await run_flow(answer)
    assert outcome.status == "failed" and "loop guard" in str(outcome.error)
    assert app.bodies("end_call")[0]["error_code"] == errors.INBOUND_NO_ACTIONS


async def test_redirect_changes_url_method_and_headers_and_asks_at_once() -> None:
    answer = [
        {
            "type": "REDIRECT",
            "params": {"url": "../other.json", "method": "GET", "headers": {"X-Step": "2"}},
        },
        say("never said"),
    ]
    _, call, app, _ = await run_flow(answer, [HANGUP])
    assert call.heard() == []
    second, end = app.requests[1:]
    assert second.method == "GET" and second.url.startswith("http://app.test/other.json?")
    assert second.headers == {"X-Step": "2"} and end.url.startswith("http://app.test/other.json")
    assert app.bodies("live_call")[0]["type"] == "live_call"


async def test_a_redirect_to_a_non_http_url_is_an_error() -> None:
    outcome, _, app, _ = await run_flow([{"type": "REDIRECT", "params": {"url": "file:///etc"}}])
    assert "is not an http(s) URL" in str(outcome.error)
    assert app.bodies("end_call")[0]["error_code"] == errors.INBOUND_NO_ACTIONS


# -- media actions ---------------------------------------------------------------------------


async def test_say_options_become_say_at_v1() -> None:
    prompts = FakePrompts()
    answer = [
        say("Hello", voice="Kevin", language="french", repeat=2),
        say("Hi", gender="female", language="en-GB"),
        HANGUP,
    ]
    _, call, _, _ = await run_flow(answer, call=FakeCall(prompts))
    assert call.heard() == ["say:Hello", "say:Hello", "say:Hi"]
    assert [(r["language"], r["voice"]) for r in prompts.speech_requests] == [
        ("fr-FR", "male"),
        ("en-GB", "female"),
    ]


async def test_play_a_url_relative_to_the_flow() -> None:
    answer = [{"type": "PLAY", "params": {"url": "music/hold.wav", "repeat": 2}}, HANGUP]
    _, call, _, _ = await run_flow(answer)
    assert call.heard() == ["file:http://app.test/music/hold.wav"] * 2


async def test_a_play_url_that_cannot_be_fetched_is_400931_and_heard() -> None:
    prompts = FakePrompts(missing=("http://app.test/gone.wav",))
    answer = [say("Hi"), {"type": "PLAY", "params": {"url": "gone.wav"}}, say("never")]
    outcome, call, app, _ = await run_flow(answer, call=FakeCall(prompts))
    assert outcome.status == "failed"
    end = app.bodies("end_call")[0]
    assert end["error_code"] == errors.UNFETCHABLE_URL == 400931
    assert "actions[1] (PLAY): play@v1: cannot read" in end["error"]
    assert call.heard()[-1] == f"say:{errors.phone_message(400931)}"
    assert call.events[-1][1] == "hangup:normal_clearing"


async def test_play_dtmf_with_dashes_and_interpolation() -> None:
    answer = [
        {"type": "PLAY", "params": {"dtmf": "1 2-3", "dtmf_delay": 100, "dtmf_dash_delay": 500}},
        {"$code": "'45'"},
        {"type": "PLAY", "params": {"dtmf": "${code}"}},
        HANGUP,
    ]
    _, call, _, _ = await run_flow(answer)
    sent = [event for _, event in call.events if event.startswith("dtmf:")]
    assert sent == ["dtmf:12", "dtmf:3", "dtmf:4", "dtmf:5"]


async def test_pause_waits_seconds() -> None:
    _, call, _, _ = await run_flow([{"type": "PAUSE", "params": {"seconds": 2}}, HANGUP])
    assert call.now == pytest.approx(2)


async def test_collect_with_finish_key_names_history_and_attempts() -> None:
    collect = {
        "name": "rating",
        "type": "COLLECT",
        "params": {"num_digits": 3, "finish_on_key": "pound", "timeout": 3000},
        "actions": [say("Rate us"), {"type": "PAUSE", "params": {"seconds": 1}}],
    }
    script = [
        [collect, say("${keyPresses} ${collectAttempt}")],
        [collect, say("${keyPresses} ${collectAttempt}")],
        [HANGUP],
    ]
    _, call, app, _ = await run_flow(*script, keys="5#", keys_at=0.2, key_gap=0.2)
    assert call.heard() == ["say:Rate us", "say:5 1", "say:Rate us", "say: 2"]
    second, third = app.bodies("live_call")
    assert second["key_presses"] == [{"name": "rating", "digits": "5", "history": ["5"]}]
    assert third["key_presses"] == [{"name": "rating", "digits": "", "history": ["5", ""]}]


async def test_collect_finish_key_off() -> None:
    collect = {"type": "COLLECT", "params": {"num_digits": 2, "finish_on_key": "off"}}
    _, _, app, _ = await run_flow([collect], [HANGUP], keys="#1")
    assert app.bodies("live_call")[0]["key_presses"][0]["digits"] == "#1"


async def test_conference_events_when_full() -> None:
    call = FakeCall(FakePrompts())
    call.conference_size = 2
    conference = {
        "type": "CONFERENCE",
        "params": {"name": "room-${callId}", "max_participants": 2, "join_muted": True},
        "events": {
            "on_enter": [say("You are now joining the conference.")],
            "on_enter_error_max_participants": [say("I'm sorry. The conference is full.")],
            "on_enter_error": [say("error")],
        },
    }
    _, call, _, _ = await run_flow([conference, HANGUP], call=call)
    # The room is seen full before joining: on_enter does not run, nor the join.
    assert not [e for _, e in call.events if e.startswith("conference:")]
    assert call.heard() == ["say:I'm sorry. The conference is full.", "say:error"]


async def test_conference_enter_events_in_the_seed_s_order_with_the_participant_count() -> None:
    hook = {
        "type": "WEBHOOK",
        "params": {"event_name": "n", "webhook_data": "({n: $numConferenceParticipants})"},
    }
    events = {name: [say(name)] for name in ("on_enter_started", "on_enter_waiting",
                                             "on_enter_alone", "on_enter_error_ended")}  # fmt: skip
    events["on_enter"] = [say("on_enter"), hook]
    conference = {"type": "CONFERENCE", "params": {"name": "c", "exit_on_key": "#"},
                  "events": events}  # fmt: skip
    _, call, app, _ = await run_flow([conference, HANGUP], keys="#", keys_at=30)
    assert call.heard()[:3] == ["say:on_enter_started", "say:on_enter_alone", "say:on_enter"]
    (body,) = app.bodies("live_call")
    assert body["webhook_data"] == {"n": "1"}  # a string, the caller counted

    busy = FakeCall(FakePrompts(), hangup_at=60)
    busy.conference_size = 2
    waiting = {"type": "CONFERENCE", "events": events,
               "params": {"name": "c", "hold_on_join": True, "start_on_join": False}}  # fmt: skip
    _, busy, app, _ = await run_flow([waiting, HANGUP], call=busy)
    assert busy.heard()[:2] == ["say:on_enter_waiting", "say:on_enter"]
    assert app.bodies("live_call")[0]["webhook_data"] == {"n": "3"}


async def test_a_full_queue_runs_on_enter_error_max_calls_not_on_enter() -> None:
    call = FakeCall(FakePrompts())
    call.queue_length = 10
    queue = {
        "type": "QUEUE",
        "params": {"name": "low-priority", "event": "offer", "max_calls": 10},
        "events": {
            "on_enter": [say("You are now entering the queue.")],
            "on_enter_error_max_calls": [say("I'm sorry. The queue is full.")],
            "on_enter_error": [say("error")],
        },
    }
    _, call, _, _ = await run_flow([queue, HANGUP], call=call)
    assert call.heard() == ["say:I'm sorry. The queue is full.", "say:error"]
    assert not [e for _, e in call.events if e.startswith("enqueue:")]


async def test_an_async_offer_goes_on_and_poll_and_remove_run() -> None:
    call = FakeCall(FakePrompts())
    offer = {"type": "QUEUE", "params": {"name": "q", "async": True},
             "events": {"on_enter": [say("queued")]}}  # fmt: skip
    poll = {"type": "QUEUE", "params": {"name": "q", "event": "poll"},
            "events": {"on_enter_error": [say("nobody")]}}  # fmt: skip
    remove = {"type": "QUEUE", "params": {"name": "q", "event": "remove"}}
    _, call, _, _ = await run_flow([offer, say("meanwhile"), remove, poll, HANGUP], call=call)
    assert call.heard() == ["say:queued", "say:meanwhile", "say:nobody"]
    assert [e for _, e in call.events if ":q" in e] == ["offer:q", "leave:q", "release-next:q"]


async def test_the_seed_s_async_transfer_goes_on_and_stop_hangs_up() -> None:
    # seeds/003, TRANSFER, "Example Response // Async Transfer", as written.
    answer = [
        {"type": "TRANSFER", "params": {"no": "+17145551212", "async": True}},
        {
            "type": "COLLECT",
            "params": {"num_digits": 1, "timeout": 3600000},
            "actions": [{"type": "SAY", "params": {"text": "Press any key to end the call."}}],
        },
        {"type": "TRANSFER", "params": {"event": "stop"}},
    ]
    _, call, _, _ = await run_flow(answer, [HANGUP], keys="5", keys_at=3)
    events = [e for _, e in call.events]
    assert events.index("dial:+17145551212") < events.index("stop-dial")
    assert not call.dialling


async def test_poll_connect_tells_whom_it_bridged() -> None:
    poll = {"type": "QUEUE", "params": {"name": "support", "event": "poll_connect"}}
    check = {"type": "IF", "condition": "$lastQueuePollConnectCall.no == '+33987654321'",
             "then": [say("bridged")]}  # fmt: skip
    _, call, app, _ = await run_flow([poll, check], [HANGUP])
    assert call.heard() == ["say:bridged"]
    live = app.bodies("live_call")[0]
    assert live["last_queue_poll_connect_call"] == {"id": "caller01", "no": "+33987654321"}


async def test_conference_exit_key_then_the_flow_goes_on() -> None:
    conference = {"type": "CONFERENCE", "params": {"name": "c1", "exit_on_key": "pound"}}
    _, call, _, _ = await run_flow([conference, say("You left"), HANGUP], keys="#", keys_at=5)
    assert call.heard() == ["say:You left"]


async def test_the_seed_s_conference_keys_leave_on_pound_then_zero() -> None:
    # seeds/003, CONFERENCE, "Example Response" params: "#0" exits, "0#" does not.
    params = {"name": "my-conference", "mute_on_key": "1", "unmute_on_key": "3",
              "exit_on_key": "#0"}  # fmt: skip
    conference = {"type": "CONFERENCE", "params": params}
    _, call, _, _ = await run_flow([conference, say("You left"), HANGUP], keys="130#0", keys_at=5)
    assert call.heard() == ["say:You left"]
    stays = FakeCall(FakePrompts(), hangup_at=60)
    answer = [conference, say("You left"), HANGUP]
    _, call, _, _ = await run_flow(answer, keys="0#", keys_at=5, call=stays)
    assert "caller hung up" in [e for _, e in call.events] and call.heard() == []


async def test_transfer_bridges_with_dial_and_goes_on() -> None:
    transfer = {
        "type": "TRANSFER",
        "params": {"no": "abc123@sip.mypbx.com", "caller_id_no": "+17145552222"},
    }
    _, call, _, run = await run_flow([transfer, say("${typeof x}"), HANGUP])
    assert "dial:sip:abc123@sip.mypbx.com" in [e for _, e in call.events]
    assert run.sandbox.get("$dial")["status"] == "no-answer"


async def test_queue_offer_runs_on_enter_and_poll_connect_errors_when_empty() -> None:
    call = FakeCall(FakePrompts())
    call.queue_outcome = "empty"
    answer = [
        {
            "type": "QUEUE",
            "params": {"name": "support"},
            "events": {"on_enter": [say("You are now entering the queue.")]},
        },
        {
            "type": "QUEUE",
            "params": {"name": "support", "event": "poll_connect"},
            "events": {"on_enter_error": [say("Nobody is waiting.")]},
        },
        HANGUP,
    ]
    _, call, _, _ = await run_flow(answer, call=call)
    assert call.heard() == ["say:You are now entering the queue.", "say:Nobody is waiting."]
    events = [e for _, e in call.events]
    assert "enqueue:support:tone:ringback" in events and "bridge-next:support" in events


async def test_record_start_and_stop_are_in_recordings() -> None:
    answer = [
        {"type": "RECORD", "name": "whole", "params": {"action": "start", "group": "support"}},
        say("recorded"),
        {"type": "RECORD", "params": {"action": "stop"}},
    ]
    _, call, app, _ = await run_flow(answer, [HANGUP])
    assert app.bodies("live_call")[0]["recordings"] == [{"name": "whole", "id": "rec00001"}]
    assert [e for _, e in call.events if e.startswith("record:")] == [
        "record:start:mono",
        "record:stop",
    ]


async def test_recordmessage_start_play_and_save() -> None:
    answer = [
        {
            "type": "RECORDMESSAGE",
            "name": "vm",
            "params": {"max_recording_time": 20, "timeout": 2, "finish_on_key": "any"},
        },
        {"type": "RECORDMESSAGE", "params": {"action": "play"}},
        {
            "type": "RECORDMESSAGE",
            "params": {"action": "save"},
            "events": {"on_save": [{"type": "WEBHOOK", "params": {"event_name": "saved"}}]},
        },
    ]
    _, call, app, _ = await run_flow(answer, [HANGUP], keys="5", keys_at=1)
    # The beep tells the caller when to speak (a voicemail-type system), then the message.
    assert call.heard() == ["tone:beep", "file:/data/recordings/rec00001.wav"]
    assert call.played[-1].start == pytest.approx(1)  # the key ended it (finish_on_key any)
    assert "webhook:saved" in app.types()  # sent in the background: in any order
    assert app.bodies("live_call")[0]["recordings"] == [{"name": "vm", "id": "rec00001"}]


async def test_recordmessage_discard_deletes_the_message() -> None:
    answer = [
        {"type": "RECORDMESSAGE", "name": "vm", "params": {"timeout": 2}},
        {"type": "RECORDMESSAGE", "params": {"action": "discard"}},
    ]
    _, call, app, _ = await run_flow(answer, [HANGUP])
    assert "discard:rec00001" in [event for _, event in call.events], call.events
    assert app.bodies("live_call")[0]["recordings"] == []  # gone from the requests too
    # Nothing left to discard: the error (or on_error, when there is one).
    outcome, _, _, _ = await run_flow([{"type": "RECORDMESSAGE", "params": {"action": "discard"}}])
    assert "no message recorded to discard" in str(outcome.error)


async def test_recordmessage_play_before_any_message_is_an_error() -> None:
    outcome, _, _, _ = await run_flow([{"type": "RECORDMESSAGE", "params": {"action": "play"}}])
    assert "no message recorded yet" in str(outcome.error)


async def test_reject_before_the_answer_is_a_sip_status() -> None:
    outcome, call, app, _ = await run_flow([{"type": "REJECT"}])
    assert outcome.status == "completed"
    assert call.events == [(0.0, "reject:busy")]
    end = app.bodies("end_call")[0]
    assert end["status"] == "busy" and end["connect_time_sec"] == 0


async def test_reject_disconnected_before_and_after_the_answer() -> None:
    _, call, app, _ = await run_flow([{"type": "REJECT", "params": {"reason": "disconnected"}}])
    assert call.events == [(0.0, "reject:not_found")]
    assert app.bodies("end_call")[0]["status"] == "failed"
    _, call, _, _ = await run_flow([say("Hi"), {"type": "REJECT", "params": {"reason": "busy"}}])
    assert call.heard() == ["say:Hi", "tone:busy"]
    assert call.events[-1][1] == "hangup:busy"


async def test_stop_stops_background_audio() -> None:
    _, call, _, _ = await run_flow([say("Hi"), {"type": "STOP"}, HANGUP])
    assert "stop" in [e for _, e in call.events]


async def test_detect_runs_the_handler_of_its_verdict() -> None:
    call = FakeCall(FakePrompts())
    call.sent_audio = word(4.0)  # four seconds of speech: a machine's greeting
    detect = {
        "type": "DETECT",
        "params": {"trigger_live_in_ms": 6000},
        "events": {
            "on_live_person": [say("person")],
            "on_voicemail_early": [say("early")],
            "on_voicemail": [say("machine")],
        },
    }
    _, call, app, _ = await run_flow([detect, HANGUP], call=call)
    assert call.heard() == ["say:early", "say:machine"]
    assert app.bodies("end_call")[0]["detection"] == "voicemail"


async def test_sms_sends_a_sip_message_to_the_caller() -> None:
    _, _, app, _ = await run_flow(
        [{"type": "SMS", "params": {"message": "Hi ${callerNo}"}}, HANGUP]
    )
    assert app.messages == [("+33123456789", "Hi +33123456789", "ivr")]


# -- webhooks and dials --------------------------------------------------------------------------


async def test_a_webhook_waits_with_await_response_and_sets_webhook_data() -> None:
    app = FlowApp(
        [
            {
                "type": "WEBHOOK",
                "params": {
                    "event_name": "lookup",
                    "await_response": True,
                    "webhook_data": {"conferenceName": "my-conf"},
                },
            },
            say("${webhookData.name}"),
            HANGUP,
        ]
    )
    app.webhook_answer = {"name": "Alice"}
    _, call, app, _ = await run_flow(app=app)
    assert call.heard() == ["say:Alice"]
    hook = app.bodies()[1]
    assert hook["is_webhook"] is True and hook["event_name"] == "lookup"
    assert hook["webhook_data"] == {"conferenceName": "my-conf"} and hook["type"] == "live_call"


async def test_a_failing_webhook_runs_on_error() -> None:
    app = FlowApp(
        [
            {
                "type": "WEBHOOK",
                "params": {"event_name": "x", "url": "/hooks", "timeout": 2},
                "events": {
                    "on_error": [
                        say("A webhook error occurred."),
                        {"$webhookData": "{ foo: 'I got no foo' }"},
                    ]
                },
            },
            say("${webhookData.foo}"),
            HANGUP,
        ]
    )
    app.webhook_answer = 500
    _, call, app, _ = await run_flow(app=app)
    assert call.heard() == ["say:A webhook error occurred.", "say:I got no foo"]
    assert app.requests[1].url == "http://app.test/hooks"


async def test_a_webhook_without_waiting_goes_on_at_once() -> None:
    app = FlowApp(
        [
            {
                "type": "WEBHOOK",
                "params": {"event_name": "entered", "webhook_data": "$sessionData"},
            },
            HANGUP,
        ]
    )
    app.webhook_answer = 2.0  # the receiver hangs: nobody waits for it
    outcome, _, app, _ = await run_flow(app=app)
    assert outcome.status == "completed"
    assert "webhook:entered" in app.types()


async def test_dial_places_an_independent_call_running_this_flow() -> None:
    dial = {
        "type": "DIAL",
        "params": {"no": "+19495551111", "caller_id_no": "+17145552222", "timeout": 30},
        "session_data": {"name": "Bob", "age": 21},
    }
    _, call, app, _ = await run_flow([dial, say("dialled"), HANGUP])
    (started,) = app.started
    assert started["to"] == "+19495551111" and started["caller_id"] == "+17145552222"
    assert started["timeout"] == 30
    assert started["variables"] == {
        "$sessionData": {"name": "Bob", "age": 21},
        "$parentCallID": "call0001",
    }
    branch = started["scenario"].branches["api-initiated"].actions[0]
    assert branch.key == "callflow@v1"
    assert call.heard() == ["say:dialled"]


async def test_dial_detection_max_call_time_and_override_config_reach_the_new_call() -> None:
    dial = {
        "type": "DIAL",
        "params": {
            "no": "+19495551111",
            "detection": "full",
            "max_call_time": 120,
            "override_callback_config": "+17145553333",
        },
    }
    app = FlowApp([dial, HANGUP])
    app.routes["+17145553333"] = "callflow:http://other.test/flow"
    await run_flow(app=app)
    (started,) = app.started
    (item,) = started["scenario"].branches["api-initiated"].actions
    assert item.params["url"].constant == "http://other.test/flow"
    assert (item.params["detection"], item.params["max_call_time"]) == ("full", 120)


async def test_the_dialled_call_runs_the_flow_of_its_caller_id_s_route() -> None:
    dial = {"type": "DIAL", "params": {"no": "+19495551111", "caller_id_no": "+17145552222"}}
    app = FlowApp([dial, HANGUP])
    app.routes["+17145552222"] = "callflow:http://caller-id.test/flow"
    await run_flow(app=app)
    (item,) = app.started[0]["scenario"].branches["api-initiated"].actions
    assert item.params["url"].constant == "http://caller-id.test/flow"


async def test_an_override_config_without_a_callflow_route_runs_on_error() -> None:
    dial = {
        "type": "DIAL",
        "params": {"no": "+19495551111", "override_callback_config": "+17145553333"},
        "events": {"on_error": [say("No such line.")]},
    }
    app = FlowApp([dial, HANGUP])
    app.routes["+17145553333"] = "ivr"
    _, call, app, _ = await run_flow(app=app)
    assert app.started == [] and call.heard() == ["say:No such line."]
    outcome, _, _, _ = await run_flow([{**dial, "events": {}}])
    assert "'+17145553333' is not routed to a callflow: URL (route: none)" in str(outcome.error)


async def test_a_failed_request_goes_to_the_failover_url() -> None:
    flow = (
        f"- action: callflow@v1\n"
        f"  params: {{url: '{URL}', failover_url: 'http://failover.test/f.json', "
        f"failover_method: GET}}"
    )
    _, call, app, _ = await run_flow(500, [say("from the failover"), HANGUP], actions=flow)
    assert call.heard() == ["say:from the failover"]
    first, second = app.requests[:2]
    assert (first.url, first.method) == (URL, "POST")
    assert second.url.startswith("http://failover.test/f.json?") and second.method == "GET"


async def test_a_dial_that_cannot_be_placed_runs_on_error() -> None:
    app = FlowApp(
        [
            {
                "type": "DIAL",
                "params": {"no": "nowhere"},
                "events": {"on_error": [say("This call could not be dialed.")]},
            },
            HANGUP,
        ]
    )
    app.start_error = "no route to nowhere"
    _, call, _, _ = await run_flow(app=app)
    assert call.heard() == ["say:This call could not be dialed."]


async def test_a_dialled_call_that_was_not_answered_sends_failed_call() -> None:
    app = FlowApp()
    scenario = "- action: callflow@v1\n  params: {url: 'http://app.test/flow'}"
    prompts = FakePrompts()
    from test_runner_fakes import scenario_text

    from mediaserver.actions.runner import Run
    from mediaserver.actions.scenario import load_scenario_text

    loaded = load_scenario_text(scenario_text(scenario, branch="api-initiated"), "t.yaml")
    run = Run(
        loaded,
        "api-initiated",
        call=None,
        prompts=prompts,
        run_id="api:x",
        server=app,
        variables={"$sessionData": {"a": 1}, "$parentCallID": "parent1"},
    )
    run.sandbox.define_builtin("$dial", {"status": "no-answer", "duration": 0, "target": "+1555"})
    outcome = await run.execute()
    assert outcome.status == "completed"
    (failed,) = app.bodies()
    assert failed["type"] == "failed_call" and failed["status"] == "no-answer"
    assert failed["parent_call_id"] == "parent1" and failed["caller_no"] == "+1555"
    assert failed["session_data"] == {"a": 1} and failed["direction"] == "outbound"


# -- errors ----------------------------------------------------------------------------------


async def test_a_non_2xx_init_call_is_400900_and_nothing_is_heard() -> None:
    outcome, call, app, _ = await run_flow(500)
    assert outcome.status == "failed" and "400900" in str(outcome.error)
    assert call.heard() == []
    assert call.events == [(0.0, "hangup:unavailable")]
    end = app.bodies("end_call")[0]
    assert end["error_code"] == 400900 and end["status"] == "failed"
    assert end["error"] == f"POST {URL} answered 500"


async def test_a_non_2xx_live_call_is_400901_and_heard() -> None:
    outcome, call, app, _ = await run_flow([say("Hi")], 503)
    assert outcome.status == "failed"
    assert call.heard() == ["say:Hi", f"say:{errors.phone_message(400901)}"]
    assert "Error code 4 0 0 9 0 1. Good bye." in call.heard()[-1]
    end = app.bodies("end_call")[0]
    assert end["error_code"] == 400901 and end["status"] == "completed"


async def test_an_unreachable_url_counts_as_a_non_2xx_answer() -> None:
    outcome, _, app, _ = await run_flow(FetchError("connection refused"))
    assert outcome.status == "failed"
    assert app.bodies("end_call")[0]["error_code"] == 400900


async def test_a_timeout_is_4001_with_the_busy_circuits_message_as_early_media() -> None:
    actions = f"- action: callflow@v1\n  params: {{url: '{URL}', timeout: 1}}"
    outcome, call, app, _ = await run_flow(5.0, actions=actions)
    assert "4001" in str(outcome.error)
    assert call.events[0][1] == "progress"
    assert call.heard() == [f"say:{errors.phone_message(4001)}"]
    assert "all circuits are busy" in call.heard()[0]
    assert app.bodies("end_call")[0]["error_code"] == 4001


@pytest.mark.parametrize(
    "answer",
    [
        FetchResult(200, "not json", {"content-type": "text/plain"}),
        {"nothing": []},
        {"actions": [{"type": "SAY"}]},
        json_answer(42),
    ],
    ids=["text", "no-actions", "invalid", "number"],
)
async def test_answers_without_valid_actions_are_400902(answer: Any) -> None:
    outcome, call, app, _ = await run_flow(answer)
    assert app.bodies("end_call")[0]["error_code"] == 400902
    assert call.heard() == [f"say:{errors.phone_message(400902)}"]
    assert outcome.status == "failed"


async def test_a_json_text_answer_is_parsed() -> None:
    answer = FetchResult(200, '{"actions": [{"type": "HANGUP"}]}', {"content-type": "text/plain"})
    outcome, _, _, _ = await run_flow(answer)
    assert outcome.status == "completed"


async def test_invalid_actions_are_all_named_in_the_error() -> None:
    answer = {
        "actions": [say("ok"), {"type": "COLLECT", "params": {"timeout": "5"}}, {"type": "SAYY"}]
    }
    _, _, app, _ = await run_flow(answer)
    error = app.bodies("end_call")[0]["error"]
    assert "actions[1] (COLLECT): params.timeout: expected a whole number of milliseconds" in error
    assert "actions[2]: unknown action type 'SAYY' (did you mean SAY?)" in error


async def test_an_answer_over_81_kb_is_413900() -> None:
    big = [say("x" * 1000) for _ in range(90)]
    _, _, app, _ = await run_flow(big)
    assert app.bodies("end_call")[0]["error_code"] == 413900


async def test_an_expression_that_throws_is_400902() -> None:
    outcome, _, app, _ = await run_flow([{"type": "IF", "condition": "$nope.x", "then": []}])
    end = app.bodies("end_call")[0]
    assert end["error_code"] == 400902 and "actions[0] (IF): condition:" in end["error"]
    assert outcome.status == "failed"


async def test_outbound_codes_for_an_api_initiated_call() -> None:
    info = {
        **FakeCall(FakePrompts()).info,
        "direction": "outbound",
        "from": "ivr",
        "to": "+33123456789",
        "answered_at": 1_700_000_000_000,
    }
    call = FakeCall(FakePrompts(), answered=True, info=info)
    outcome, call, app, _ = await run_flow(500, call=call)
    end = app.bodies("end_call")[0]
    assert outcome.status == "failed" and end["error_code"] == 400911
    assert end["direction"] == "outbound"
    assert end["caller_no"] == "+33123456789" and end["api_no"] == "ivr"
    assert "when trying to reach you" in call.heard()[0]


async def test_on_error_of_the_callflow_item_takes_over() -> None:
    actions = FLOW + "\n  on-error:\n    - action: say@v1\n      params: {text: fallback}"
    outcome, call, app, _ = await run_flow(500, actions=actions)
    assert outcome.status == "completed"
    assert call.heard() == ["say:fallback"]  # no seed message, no hang-up: the scenario decides
    assert app.bodies("end_call")[0]["error_code"] == 400900


async def test_a_non_http_url_fails_the_action() -> None:
    actions = "- action: callflow@v1\n  params: {url: '${\"ftp://x\"}'}"
    outcome, _, app, _ = await run_flow(actions=actions)
    assert "is not an http:// or https:// URL" in str(outcome.error)
    assert app.requests == []


async def test_start_time_follows_the_call() -> None:
    _, call, app, _ = await run_flow([{"type": "PAUSE", "params": {"seconds": 3}}, HANGUP])
    end = app.bodies("end_call")[0]
    assert end["duration"] == 3000
    assert end["end_time"] == "2023-11-14T22:13:23.000Z"
    assert EPOCH + call.now == pytest.approx(1_700_000_003)


async def test_a_scenario_goes_on_after_the_callflow_only_through_on_error() -> None:
    actions = FLOW + "\n  on-error: []\n- action: say@v1\n  params: {text: after}"
    _, call, _, _ = await run_flow(500, actions=actions)
    assert call.heard() == ["say:after"]


async def test_callflow_in_a_scenario_with_run_actions_helper() -> None:
    app = FlowApp([HANGUP])
    outcome, _, _ = await run_actions(FLOW, server=app)
    assert outcome.status == "completed"
