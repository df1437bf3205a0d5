"""The pure parts of SMS: what a send request may be, its encoding and parts, and
which seed status each SIP answer to a MESSAGE means."""

from __future__ import annotations

import pytest

from mediaserver.sms.rules import (
    DEFAULT_SENDER,
    SmsInputError,
    check_outbound,
    encoding_of,
    parts_of,
    status_of_answer,
    units,
    unreachable,
)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (200, "delivered"),
        (202, "remote-queued"),  # RFC 3428 7: accepted by a store-and-forward server
        (204, "delivered"),
        (404, "failed"),
        (480, "failed"),
        (486, "failed"),
        (488, "failed"),
        (503, "failed"),
        (603, "failed"),
        (408, "expired"),
        (None, "expired"),  # no answer before Timer F
    ],
)
def test_each_sip_answer_has_a_seed_status(answer: int | None, status: str) -> None:
    outcome = status_of_answer(answer)
    assert outcome.status == status
    assert (outcome.error is None) == (status in ("delivered", "remote-queued"))
    if answer is not None and outcome.error is not None:
        assert str(answer) in outcome.error


def test_an_unreachable_recipient_is_an_error() -> None:
    assert unreachable("user 'x' is not registered").status == "error"


def test_encoding_follows_the_characters() -> None:
    assert encoding_of("Hello world! {curly} 5 € café") == "gsm"
    assert encoding_of("snow ☃") == "unicode"
    assert encoding_of("Ünïcode") == "unicode"  # ï is not in GSM 03.38
    assert units("€[]", "gsm") == 6  # extension characters take an escape each
    assert units("😀", "unicode") == 2  # a surrogate pair


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, "gsm", 1),
        ("a" * 161, "gsm", 2),
        ("a" * 306, "gsm", 2),
        ("a" * 307, "gsm", 3),
        ("€" * 80, "gsm", 1),
        ("€" * 81, "gsm", 2),
        ("☃" * 70, "unicode", 1),
        ("☃" * 71, "unicode", 2),
        ("☃" * 134, "unicode", 2),
        ("☃" * 135, "unicode", 3),
    ],
)
def test_parts_are_counted_as_on_a_mobile_network(text: str, encoding: str, parts: int) -> None:
    assert parts_of(text, encoding) == parts  # type: ignore[arg-type]


def test_a_good_request_is_completed() -> None:
    sms = check_outbound("+33612345678", None, "Hello")
    assert (sms.sender, sms.encoding, sms.parts, sms.traffic_type) == (
        DEFAULT_SENDER, "gsm", 1, "marketing",
    )  # fmt: skip
    assert check_outbound("+33612345678", "+15551230000", "x").sender == "+15551230000"
    assert check_outbound("+33612345678", "MyCompany", "é", "unicode").encoding == "unicode"
    assert check_outbound("+33612345678", "", "x", None, "alerting").traffic_type == "alerting"


@pytest.mark.parametrize(
    ("to", "sender", "text", "encoding", "field", "words"),
    [
        (None, None, "hi", None, "to", "required"),
        ("0612345678", None, "hi", None, "to", "E.164"),
        ("+0612345678", None, "hi", None, "to", "E.164"),
        ("+3361", None, "hi", None, "to", "E.164"),  # under the seed's 6 digits
        ("+33612345678", "TwelveLetter", "hi", None, "from", "alphanumeric"),
        ("+33612345678", "My Company", "hi", None, "from", "alphanumeric"),
        ("+33612345678", None, "", None, "text", "required"),
        ("+33612345678", None, None, None, "text", "required"),
        ("+33612345678", None, "x" * 3201, None, "text", "3200"),
        ("+33612345678", None, "snow ☃", "gsm", "encoding", "GSM 03.38"),
    ],
)
def test_a_bad_request_names_its_field(
    to: str | None,
    sender: str | None,
    text: str | None,
    encoding: str | None,
    field: str,
    words: str,
) -> None:
    with pytest.raises(SmsInputError) as caught:
        check_outbound(to, sender, text, encoding)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and words in str(caught.value)


def test_the_longest_text_is_taken() -> None:
    assert check_outbound("+33612345678", None, "x" * 3200).parts == 21
