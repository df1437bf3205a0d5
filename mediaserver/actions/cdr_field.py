"""The run variable that becomes the call record's ``customer_field``.

Callr v1 writes a "custom CDR field" (``cdr_customer_field``: 32 characters
at most) in each call record. Here a run sets it like any variable
(``set@v1`` of ``$customer_field``, or a start variable of an API run); the
run hands it to its call after every action, so the record gets the value
the variable had last, also when the caller hangs up mid-run. A call placed
by ``dial@v1`` gets its dialler's value unless its own run sets one.
"""

from __future__ import annotations

from typing import Any

CUSTOMER_FIELD = "$customer_field"
MAX_LENGTH = 32  # the seed's cdr_customer_field format


def customer_field(value: Any) -> str | None:
    """The record's text for the variable's value: text or a number, cut to 32
    characters; anything else (unset, null, a list or map) leaves the field empty."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)[:MAX_LENGTH] or None
