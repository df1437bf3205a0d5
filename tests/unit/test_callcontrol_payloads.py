"""Call Control's pure parts: event payloads, hang-up causes, the error shape, command ids."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from mediaserver.api.telnyx.errors import (
    call_ended,
    from_validation,
    invalid,
    not_found,
    pointer_of,
)
from mediaserver.callcontrol.controlled import MAX_COMMAND_IDS, ControlledCall, Webhook
from mediaserver.callcontrol.payloads import call_payload, hangup_cause, hangup_source


class FakeCall:
    id = "abcd1234"
    ended = False


def controlled(direction: Any = "incoming") -> ControlledCall:
    return ControlledCall(
        FakeCall(),  # type: ignore[arg-type]
        direction,
        "+33100000001",
        "cc",
        "app-1",
        Webhook("http://127.0.0.1:9/hooks"),
        "c3RhdGU=",
    )


@pytest.mark.parametrize(
    ("ours", "seed"),
    [
        ("normal_clearing", "normal_clearing"),
        ("busy", "user_busy"),
        ("declined", "call_rejected"),
        ("rejected", "call_rejected"),
        ("no_answer", "timeout"),
        ("time_limit", "time_limit"),
        ("originator_cancel", "originator_cancel"),
        ("not_found", "not_found"),
        ("unavailable", "not_found"),
        ("failed", "unspecified"),
        ("session_expired", "unspecified"),
        (None, "unspecified"),
    ],
)
def test_hangup_causes_are_the_seeds_enum(ours: str | None, seed: str) -> None:
    assert hangup_cause(ours) == seed


@pytest.mark.parametrize(
    ("source", "direction", "seed"),
    [
        ("caller", "incoming", "caller"),
        ("callee", "outgoing", "callee"),
        ("server", "incoming", "callee"),  # we answered it: we are the callee
        ("server", "outgoing", "caller"),  # we placed it: we are the caller
        (None, "incoming", "unknown"),
    ],
)
def test_hangup_source_is_told_from_the_call_direction(
    source: str | None, direction: str, seed: str
) -> None:
    assert hangup_source(source, direction) == seed


def test_every_payload_names_the_call_its_application_and_client_state() -> None:
    cc = controlled()
    payload = call_payload(cc, "call.speak.started")
    assert payload == {
        "call_control_id": "abcd1234",
        "call_leg_id": cc.call_leg_id,
        "call_session_id": cc.call_session_id,
        "connection_id": "app-1",
        "client_state": "c3RhdGU=",
    }


def test_parties_where_the_seed_has_them() -> None:
    cc = controlled()
    payload = call_payload(cc, "call.hangup", hangup_cause="normal_clearing")
    assert payload["from"] == "+33100000001" and payload["to"] == "cc"
    assert payload["start_time"].endswith("Z") and payload["hangup_cause"] == "normal_clearing"
    assert "from" not in call_payload(cc, "call.playback.started")


def test_a_repeated_command_id_is_seen_and_old_ones_are_forgotten() -> None:
    cc = controlled()
    assert not cc.seen(None) and not cc.seen(None)
    assert not cc.seen("first")
    assert cc.seen("first")
    for n in range(MAX_COMMAND_IDS):
        cc.seen(f"id-{n}")
    assert not cc.seen("first")  # the oldest was forgotten


def test_errors_have_the_seed_shape() -> None:
    assert invalid("custom_headers.0.name", "bad").wire() == {
        "errors": [
            {
                "code": "10015",
                "title": "Invalid value",
                "detail": "bad",
                "source": {"pointer": "/custom_headers/0/name"},
            }
        ]
    }
    assert not_found("call", "x").status == 404
    ended = call_ended("abc")
    assert ended.status == 422 and ended.code == "90018"


def test_pointers_escape_as_rfc_6901_says() -> None:
    assert pointer_of("a/b.c~d") == "/a~1b/c~0d"


def test_validation_errors_name_the_first_field() -> None:
    exc = RequestValidationError(
        [
            {"type": "missing", "loc": ("body", "to"), "msg": "Field required"},
            {"type": "int_parsing", "loc": ("body", "timeout_secs"), "msg": "bad"},
        ]
    )
    error = from_validation(exc)
    assert error.status == 422 and error.code == "10004" and error.pointer == "/to"
    assert "(and 1 more)" in error.detail
    query = from_validation(
        RequestValidationError([{"type": "int_parsing", "loc": ("query", "page"), "msg": "x"}])
    )
    assert query.parameter == "page" and query.pointer is None


def test_commanded_starts_unset() -> None:
    async def check() -> None:
        assert not controlled().commanded.is_set()

    asyncio.run(check())
