"""REALTIME10 messages: RT.Response parsing, commands as native items, RT.Request bodies."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.actions.scenario import load_scenario_data
from mediaserver.callflow.translate import build_items
from mediaserver.realtime.protocol import (
    COMMANDS,
    CallFacts,
    Command,
    CommandError,
    Outcome,
    call_id,
    native_entries,
    parse_response,
    request_body,
    result_text,
    seed_datetime,
)
from mediaserver.realtime.route import realtime_scenario, route_url, split_credentials


def entries(name: str, **params: Any) -> list[dict[str, Any]]:
    found = native_entries(Command(name, 1, params))
    build_items(found, load_scenario_data)  # every translation validates as a scenario would
    return found


def refused(data: Any) -> str:
    with pytest.raises(CommandError) as info:
        parse_response(data)
    return str(info.value)


def test_a_response_has_the_seed_fields() -> None:
    command = parse_response(
        {"command": "say", "command_id": "a1", "params": {"text": "Hi"}, "variables": {"n": 1}}
    )
    assert command == Command("say", "a1", {"text": "Hi"}, {"n": 1})
    assert parse_response({"command": "hangup"}) == Command("hangup", None, {}, {})


def test_wrong_responses_name_the_field_and_the_fix() -> None:
    assert refused([1]).startswith("the RT.Response is not a JSON object")
    assert "unknown field 'cmd'" in refused({"cmd": "say"})
    message = refused({"command": "dance"})
    assert "'dance' is not a command" in message and ", ".join(COMMANDS) in message
    assert refused({"command": "say", "params": []}).startswith("RT.Response.params")
    assert refused({"command": "say", "variables": 3}).startswith("RT.Response.variables")


def test_play_takes_a_url_or_a_tts_media() -> None:
    assert entries("play", media_id="https://x/a.wav") == [
        {"action": "play@v1", "params": {"url": "https://x/a.wav"}}
    ]
    assert entries("play", media_id="TTS|TTS_EN-GB_SERENA|Hello | world") == [
        {"action": "say@v1", "params": {"text": "Hello | world"}}
    ]
    with pytest.raises(CommandError, match="is not an http"):
        entries("play", media_id="/etc/passwd")
    with pytest.raises(CommandError, match=r"play: params.media_id is required"):
        entries("play")


def test_read_is_a_gather_whose_digits_are_the_result() -> None:
    (item,) = entries("read", media_id="TTS|V|Your code?", max_digits=4, timeout_ms=3000)
    assert item["action"] == "gather@v1" and item["result"] == "$realtimeResult"
    params = item["params"]
    assert params["prompt"] == [{"say": {"text": "Your code?"}}]
    assert (params["max_digits"], params["timeout"], params["attempts"]) == (4, 3.0, 1)


def test_record_dialout_wait_and_send_dtmf() -> None:
    (record,) = entries("record", max_duration=30, silence=2)
    assert record["action"] == "voicemail@v1"
    assert (record["params"]["max_length"], record["params"]["silence_timeout"]) == (30, 2)
    (dial,) = entries(
        "dialout",
        targets=[{"number": "bob@127.0.0.1:5062", "timeout": 15}, {"number": "+33612"}],
        cli="+33199001234",
    )
    assert dial["params"]["targets"] == ["sip:bob@127.0.0.1:5062", "+33612"]
    assert (dial["params"]["timeout"], dial["params"]["caller_id"]) == (30, "+33199001234")
    assert entries("wait", duration_ms=1500) == [{"action": "pause@v1", "params": {"seconds": 1.5}}]
    assert entries("send_dtmf", digits="12#")[0]["action"] == "send-dtmf@v1"
    assert entries("hangup") == []


def test_wrong_params_are_refused_by_name() -> None:
    with pytest.raises(CommandError, match=r"params.targets: expected a list"):
        entries("dialout", targets="+33612")
    with pytest.raises(CommandError, match=r"params.max_duration: 0 is out of range"):
        entries("record", max_duration=0)
    with pytest.raises(CommandError, match=r"say: unknown parameter params.txt; it takes"):
        entries("say", text="a", txt="b")
    with pytest.raises(CommandError, match=r"hangup: unknown parameter params.now; it takes none"):
        entries("hangup", now=True)


def test_results_are_strings_in_the_seed_casing() -> None:
    assert result_text("dialout", {"status": "answered"}) == "ANSWER"
    assert result_text("dialout", {"status": "no-answer"}) == "NOANSWER"
    assert result_text("record", {"id": "rec1", "path": "/x"}) == "rec1"
    assert result_text("read", "42") == "42"
    assert result_text("say", None) == ""


def test_a_request_has_every_seed_field() -> None:
    facts = CallFacts("ABCD1234", call_id("240419830042"), "+33612", "", "+33199", "x")
    body = request_body(facts, "UP", Outcome("read", 7, "42", ""), {"k": "v"})
    assert list(body) == [
        "app", "call_status", "callid", "cdr_field", "cli_name", "cli_number", "command",
        "command_error", "command_id", "command_result", "date_started", "number",
        "request_hash", "variables",
    ]  # fmt: skip
    assert body["callid"] == 240419830042 and body["command_result"] == "42"
    assert call_id("3mgkbrar") == "3mgkbrar"
    assert seed_datetime(1_335_311_562_000) == "2012-04-24 23:52:42"


def test_the_route_scenario_carries_the_credentials() -> None:
    assert route_url("realtime:http://h/rt") == "http://h/rt"
    assert route_url("callflow:http://h/rt") is None
    assert split_credentials("https://u%40x:p@h:8443/rt?a=1") == (
        "https://h:8443/rt?a=1",
        "u@x",
        "p",
    )
    scenario = realtime_scenario(load_scenario_data, "http://u:p@127.0.0.1:9/rt")
    assert scenario.file == "realtime:http://127.0.0.1:9/rt"
    for branch in ("inbound-call", "api-initiated"):
        (item,) = scenario.branches[branch].actions
        assert item.key == "realtime@v1"
        assert item.params["url"].constant == "http://127.0.0.1:9/rt"
        assert item.params["login"].constant == "u"
