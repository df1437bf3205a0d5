"""The seed's Call Flow Loop error codes and what the caller hears."""

from __future__ import annotations

import pytest

from mediaserver.callflow import errors


@pytest.mark.parametrize(
    ("failure", "outbound", "connected", "first", "code"),
    [
        ("timeout", False, False, True, 4001),
        ("timeout", True, True, False, 4001),
        ("status", False, False, True, 400900),
        ("status", False, True, False, 400901),
        ("status", False, True, True, 400901),
        ("status", True, False, True, 400910),
        ("status", True, True, True, 400911),
        ("status", True, True, False, 400912),
        ("no_actions", False, False, False, 400902),
        ("no_actions", False, True, False, 400902),
        ("no_actions", True, True, False, 400913),
        ("unfetchable", False, True, False, 400931),
        ("unfetchable", True, True, False, 400931),
        ("too_big", False, True, False, 413900),
        ("too_big", True, False, False, 413910),
    ],
)
def test_error_codes_follow_the_seed_table(
    failure: errors.Failure, outbound: bool, connected: bool, first: bool, code: int
) -> None:
    assert (
        errors.error_code(failure, outbound=outbound, connected=connected, first_request=first)
        == code
    )


def test_phone_messages_are_the_seed_s() -> None:
    assert errors.phone_message(4001) == (
        "We're sorry, all circuits are busy right now. Please try your call again later. "
        "Error code 4 0 0 1."
    )
    assert errors.phone_message(400901) == (
        "We're sorry, something went wrong. Error code 4 0 0 9 0 1. Good bye."
    )
    assert errors.phone_message(400911) == (
        "We're sorry, something went wrong when trying to reach you. "
        "Error code 4 0 0 9 1 1. Good bye."
    )
    assert errors.phone_message(413900) is not None
    assert (
        errors.phone_message(123)
        == "We're sorry, something went wrong. Error code 1 2 3. Good bye."
    )


@pytest.mark.parametrize("code", [400900, 400910])
def test_pre_connect_status_errors_are_silent(code: int) -> None:
    assert errors.phone_message(code) is None


def test_the_error_carries_its_code_and_message() -> None:
    error = errors.CallflowError(400902, "invalid actions")
    assert (error.code, error.message, str(error)) == (400902, "invalid actions", "invalid actions")
