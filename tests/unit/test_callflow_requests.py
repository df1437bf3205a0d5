"""Callback request bodies and their query-string form (seed, "Callback Request // Voice")."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from mediaserver.callflow.requests import (
    GEO_FIELDS,
    CallFacts,
    FlowState,
    Webhook,
    iso_time,
    live_status,
    location_fields,
    minimised_size,
    query_items,
    request_body,
    with_query,
)

STARTED = 1_474_407_148_471  # 2016-09-20T21:32:28.471Z, the seed's example
FACTS = CallFacts(
    call_id="12345@678",
    direction="inbound",
    caller_no="+19495551212",
    api_no="+17145551212",
    started_ms=STARTED,
    answered_ms=STARTED + 1_500,
    sip_domain="sip.example.net",
    sip_forwarded_for="192.168.1.1",
)

ALWAYS = {
    "service",
    "type",
    "is_webhook",
    "app_id",
    "subaccount_id",
    "call_id",
    "start_time",
    "direction",
    "duration",
    "status",
    "detection",
    "caller_no",
    "api_no",
    "custom_data",
    "session_data",
    "sip_domain",
    "sip_forwarded_for",
    "error_code",
    "error",
    *(f"caller_no_{s}" for s in GEO_FIELDS),
    *(f"api_no_{s}" for s in GEO_FIELDS),
}
LIVE = {
    "parent_call_id",
    "connect_time_sec",
    "key_presses",
    "recordings",
    "last_queue_poll_connect_call",
}


def body(kind: str, state: FlowState | None = None, **extra: object) -> dict[str, object]:
    return request_body(
        kind,  # type: ignore[arg-type]
        FACTS,
        state or FlowState(),
        now_ms=STARTED + 9_763,
        status="live-in-progress",
        session_data={"name": "Bob"},
        **extra,  # type: ignore[arg-type]
    )


def test_iso_time_has_milliseconds_and_utc() -> None:
    assert iso_time(STARTED) == "2016-09-20T21:32:28.471Z"
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(STARTED + 9_673) == "2016-09-20T21:32:38.144Z"


def test_init_call_has_the_fields_sent_on_every_request() -> None:
    init = body("init_call")
    assert set(init) == ALWAYS
    assert init["service"] == "programmable_voice" and init["type"] == "init_call"
    assert init["is_webhook"] is False and init["app_id"] == "mediaserver"
    assert init["subaccount_id"] == 0 and init["custom_data"] is None
    assert init["call_id"] == "12345@678" and init["direction"] == "inbound"
    assert init["start_time"] == "2016-09-20T21:32:28.471Z"
    assert init["duration"] == 9_763  # milliseconds
    assert init["caller_no"] == "+19495551212" and init["api_no"] == "+17145551212"
    # Seed, "Callback Request": the location fields, here from the numbers themselves.
    assert (init["caller_no_country"], init["caller_no_timezone"]) == ("US", "America/Los_Angeles")
    assert (init["api_no_country"], init["api_no_timezone"]) == ("US", "America/Los_Angeles")
    unknown = ("latitude", "longitude", "postal_code", "rate_center", "lata")
    assert all(init[f"caller_no_{s}"] is None for s in unknown)
    assert set(GEO_FIELDS) >= set(unknown)
    assert init["session_data"] == {"name": "Bob"}
    assert init["sip_domain"] == "sip.example.net"
    assert init["sip_forwarded_for"] == "192.168.1.1"


def test_location_fields_come_from_the_number() -> None:
    fields = location_fields("caller_no", "+14155552671")
    assert fields["caller_no_city"] is None and fields["caller_no_region"] is None
    assert fields["caller_no_country"] == "US"
    assert fields["caller_no_timezone"] == "America/Los_Angeles"
    assert location_fields("api_no", "+33142685300")["api_no_country"] == "FR"
    # A SIP user name tells nothing: every field is present and null.
    assert set(location_fields("api_no", "alice").values()) == {None}
    assert len(location_fields("api_no", None)) == len(GEO_FIELDS)


def test_live_call_adds_connect_time_key_presses_and_recordings() -> None:
    state = FlowState(parent_call_id="12345@677")
    state.collected("collectName", "12")
    state.collected("collectName", "78")
    state.collected(None, "")
    state.recorded("recordingName", "ABC123")
    state.recorded("recordingName", "ABC123")  # once
    live = body("live_call", state)
    assert set(live) == ALWAYS | LIVE
    assert live["connect_time_sec"] == 8  # whole seconds since the answer
    assert live["parent_call_id"] == "12345@677"
    assert live["key_presses"] == [
        {"name": "collectName", "digits": "78", "history": ["12", "78"]},
        {"name": None, "digits": "", "history": [""]},
    ]
    assert live["recordings"] == [{"name": "recordingName", "id": "ABC123"}]
    assert live["last_queue_poll_connect_call"] is None


def test_end_call_adds_end_time_and_the_error() -> None:
    state = FlowState(error_code=400901, error="POST http://x answered 500")
    end = body("end_call", state)
    assert set(end) == ALWAYS | LIVE | {"end_time"}
    assert end["end_time"] == "2016-09-20T21:32:38.234Z"
    assert end["error_code"] == 400901 and end["error"] == "POST http://x answered 500"


def test_connect_time_is_zero_before_the_answer() -> None:
    facts = CallFacts("c", "inbound", "a", "b", STARTED)
    live = request_body(
        "live_call", facts, FlowState(), now_ms=STARTED + 5000, status="x", session_data={}
    )
    assert live["connect_time_sec"] == 0


def test_a_webhook_request_says_so() -> None:
    hook = body("live_call", webhook=Webhook("onEnterConference", {"room": "r"}))
    assert hook["is_webhook"] is True
    assert hook["event_name"] == "onEnterConference"
    assert hook["webhook_data"] == {"room": "r"}
    assert "event_name" not in body("live_call")


def test_detection_comes_from_the_state() -> None:
    state = FlowState(detection="voicemail")
    assert body("live_call", state)["detection"] == "voicemail"


def test_live_status() -> None:
    assert live_status(True) == "live-in-progress"
    assert live_status(False) == "live-ringing"


# -- the query-string form -------------------------------------------------------------------


def test_query_items_follow_the_seed_for_key_presses_and_recordings() -> None:
    state = FlowState()
    state.collected("menu", "1")
    state.collected("menu", "2")
    state.collected(None, "9")
    state.recorded("greeting", "rec1")
    items = dict(query_items(body("live_call", state)))
    assert items["key_presses.menu"] == "2"  # no history in a query string
    assert items["key_presses"] == "9"
    assert items["recordings.greeting"] == "rec1"
    assert items["is_webhook"] == "false"
    assert items["duration"] == "9763"
    assert items["session_data.name"] == "Bob"
    assert "error_code" not in items and "caller_no_city" not in items  # nulls are left out


def test_query_items_flatten_nested_objects_and_lists() -> None:
    data = {"session_data": {"user": {"name": "Al"}, "pets": ["a", "b"], "ok": True, "n": 1.5}}
    assert query_items(data) == [
        ("session_data.user.name", "Al"),
        ("session_data.pets.0", "a"),
        ("session_data.pets.1", "b"),
        ("session_data.ok", "true"),
        ("session_data.n", "1.5"),
    ]


def test_with_query_keeps_the_url_s_own_query() -> None:
    url = with_query("http://h/p/flow.json?app=1", [("type", "init_call"), ("a b", "c&d")])
    parts = urlsplit(url)
    assert parts.path == "/p/flow.json"
    assert parse_qsl(parts.query) == [("app", "1"), ("type", "init_call"), ("a b", "c&d")]


def test_minimised_size_ignores_whitespace() -> None:
    assert minimised_size({"actions": [{"type": "HANGUP"}]}) == len(
        '{"actions":[{"type":"HANGUP"}]}'
    )
    assert minimised_size("é") == 4  # UTF-8 bytes, quotes included


# -- facts from the call -------------------------------------------------------------------


def test_facts_of_an_inbound_call() -> None:
    info = {
        "id": "c1",
        "from": "alice",
        "to": "+33199009999",
        "direction": "inbound",
        "started_at": 1000,
        "answered_at": None,
        "headers": {
            "Via": "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport=5062;received=192.0.2.7",
            "To": "<sip:+33199009999@voice.example.com:5060>",
        },
    }
    facts = CallFacts.from_call_info(info)
    assert facts == CallFacts(
        "c1", "inbound", "alice", "+33199009999", 1000, None, "voice.example.com", "192.0.2.7"
    )


@pytest.mark.parametrize(
    ("via", "source"),
    [
        ("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1", "127.0.0.1"),
        ("SIP/2.0/TCP [2001:db8::1]:5060;branch=z9", "2001:db8::1"),
        ("SIP/2.0/UDP a.example:5060;branch=1, SIP/2.0/UDP b:5060", "a.example"),
    ],
)
def test_the_source_is_the_top_via(via: str, source: str) -> None:
    facts = CallFacts.from_call_info({"headers": {"v": via}, "direction": "inbound"})
    assert facts.sip_forwarded_for == source


def test_facts_of_an_outbound_call_swap_the_numbers() -> None:
    info = {
        "id": "c2",
        "from": "mediaserver",
        "to": "bob",
        "direction": "outbound",
        "started_at": 5,
        "answered_at": 9,
        "headers": {},
    }
    facts = CallFacts.from_call_info(info)
    assert (facts.caller_no, facts.api_no, facts.direction) == ("bob", "mediaserver", "outbound")
    assert facts.answered_ms == 9 and facts.sip_domain is None
