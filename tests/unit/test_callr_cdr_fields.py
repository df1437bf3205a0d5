"""The Callr v1 CDR fields derived here: caller presentation from the INVITE,
the customer field from a run variable, the number facts and did_hash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mediaserver.actions.cdr_field import customer_field
from mediaserver.sip.message import Request, parse_message
from mediaserver.sip.presentation import cli_presentation
from mediaserver.store.cdrs import CallRecord, did_hash


def invite(from_: str, *extra: str) -> Request:
    lines = [
        "INVITE sip:+33612345678@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc",
        f"From: {from_};tag=1",
        "To: <sip:+33612345678@127.0.0.1>",
        "Call-ID: c1",
        "CSeq: 1 INVITE",
        "Max-Forwards: 70",
        *extra,
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


@pytest.mark.parametrize(
    ("from_", "extra", "expected"),
    [
        ('"Alice" <sip:+447890123456@example.com>', (), "allowed_passed_screen"),
        ("<sip:+447890123456@example.com>", ("Privacy: none",), "allowed_passed_screen"),
        ("<sip:+447890123456@example.com>", ("Privacy: id",), "prohib_passed_screen"),
        ("<sip:+447890123456@example.com>", ("Privacy: header;user",), "prohib_passed_screen"),
        ("<sip:+447890123456@example.com>", ("Privacy: ID",), "prohib_passed_screen"),
        ("<sip:anonymous@anonymous.invalid>", (), "prohib_passed_screen"),
        ("<sip:Anonymous@example.com>", (), "prohib_passed_screen"),
        ('"Anonymous" <sip:+447890123456@example.com>', (), "prohib_passed_screen"),
        (
            '"Anonymous" <sip:+447890123456@example.com>',
            ("P-Asserted-Identity: <sip:+447890123456@example.com>",),
            "allowed_passed_screen",
        ),
    ],
)
def test_cli_presentation(from_: str, extra: tuple[str, ...], expected: str) -> None:
    assert cli_presentation(invite(from_, *extra)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ACME42", "ACME42"),
        (42, "42"),
        (1.5, "1.5"),
        ("x" * 40, "x" * 32),
        ("", None),
        (None, None),
        (True, None),
        ({"a": 1}, None),
        ([1], None),
    ],
)
def test_customer_field(value: object, expected: str | None) -> None:
    assert customer_field(value) == expected


def test_did_hash_is_stable_and_distinct() -> None:
    assert did_hash("+33612345678") == did_hash("+33612345678")
    assert did_hash("+33612345678") != did_hash("+33612345679")
    assert len(did_hash("ivr")) == 8


def record(direction: str, from_number: str, to_number: str, dial: str | None) -> CallRecord:
    now = datetime(2024, 4, 24, 0, 42, 42, tzinfo=UTC)
    return CallRecord(
        id="abc12345", direction=direction, status="ended",  # type: ignore[arg-type]
        from_number=from_number, from_name=None, to_number=to_number, number=to_number,
        scenario_id=None, scenario_name=None, run_id=None, parent_call_id=None,
        sip_call_id=None, started_at=now, answered_at=None, ended_at=now, duration_ms=0,
        duration_answered_ms=0, hangup_cause=None, hangup_cause_code=None,
        hangup_source=None, sip_status=None, dial_status=dial, media_stats={},
        cli_pres="allowed_passed_screen", customer_field="ACME",
    )  # fmt: skip


def test_inbound_cdr_tells_the_callers_country_and_type() -> None:
    cdr = record("inbound", "+16467890800", "+33612345678", None).as_cdr()
    assert cdr["cli_country_code"] == "US"
    assert cdr["cli_number_type"] == "FIXED_OR_MOBILE"
    assert cdr["did_hash"] == did_hash("+33612345678")
    assert cdr["customer_field"] == "ACME" and cdr["cli_pres"] == "allowed_passed_screen"
    assert "dialstatus" not in cdr and "number_type" not in cdr


def test_a_sip_user_tells_nothing() -> None:
    cdr = record("inbound", "alice", "ivr", None).as_cdr()
    assert cdr["cli_country_code"] is None and cdr["cli_number_type"] is None


@pytest.mark.parametrize(
    ("status", "callr"),
    [("answered", "ANSWER"), ("busy", "BUSY"), ("no-answer", "NOANSWER"),
     ("canceled", "CANCEL"), ("failed", "CHANUNAVAIL"), (None, None)],
)  # fmt: skip
def test_outbound_cdr_dialstatus_in_callr_casing(status: str | None, callr: str | None) -> None:
    cdr = record("outbound", "+33612345678", "+33187654321", status).as_cdr()
    assert cdr["dialstatus"] == callr
    assert cdr["number_country_code"] == "FR" and cdr["number_type"] == "FIXED"
