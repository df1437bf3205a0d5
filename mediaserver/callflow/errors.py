"""Call Flow Loop errors: the seed's codes, what the caller hears, and which code applies.

The seed ("Errors", "Call Flow Loop Errors") numbers each failure by what
went wrong, the call's direction, and whether the call was connected
(answered) yet::

    4001    inbound/outbound  pre-connect        the callback request timed out
    400900  inbound           pre-connect        non-2xx from the callback URL (nothing heard)
    400901  inbound           post-connect       non-2xx from the callback URL
    400902  inbound           pre/post-connect   the response did not contain JSON actions
    400910  outbound          pre-connect        non-2xx (nothing heard)
    400911  outbound          post-connect       non-2xx, on the init_call response
    400912  outbound          post-connect       non-2xx, after the init_call response
    400913  outbound          pre/post-connect   the response did not contain JSON actions
    400931  inbound/outbound  pre/post-connect   a url in the response could not be fetched
    413900  inbound           pre/post-connect   the response is over the 81 KB hard limit
    413910  outbound          pre/post-connect   the same, outbound

"Error Handling" (Callback Response): the error goes into the ``end_call``
request (``error_code``, ``error``), and "if a failure happens during the
call, the caller will hear a generic audio error ... that generally includes
a specific error code": :func:`phone_message` gives the seed's text, or
``None`` where the table says ``n/a``.

Decisions where the seed is silent: a timeout is 4001 whether or not the
call is connected (the table lists it pre-connect only); a callback URL that
cannot be reached at all (refused, unknown host) counts as a non-2xx answer;
an action of a valid response that fails when it runs (an expression that
throws, a voice that cannot be synthesised) is 400902, except a PLAY url or
CONFERENCE hold_audio that cannot be fetched, which is 400931.
"""

from __future__ import annotations

from typing import Literal

TIMEOUT = 4001
INBOUND_STATUS_PRE = 400900
INBOUND_STATUS_POST = 400901
INBOUND_NO_ACTIONS = 400902
OUTBOUND_STATUS_PRE = 400910
OUTBOUND_STATUS_INIT = 400911
OUTBOUND_STATUS_LATER = 400912
OUTBOUND_NO_ACTIONS = 400913
UNFETCHABLE_URL = 400931
INBOUND_TOO_BIG = 413900
OUTBOUND_TOO_BIG = 413910

HARD_LIMIT_BYTES = 81 * 1024
"""Callback Response: "A hard callback response limit of 81 kb", measured minimised."""
SOFT_LIMIT_BYTES = 31_415
"""Callback Response: "A soft callback response limit of 31.415 kb" (a warning only)."""

Failure = Literal["timeout", "status", "no_actions", "too_big", "unfetchable"]

_SORRY = "We're sorry, something went wrong."
_SORRY_REACH = "We're sorry, something went wrong when trying to reach you."
_BUSY = "We're sorry, all circuits are busy right now. Please try your call again later."

_MESSAGES: dict[int, str | None] = {
    TIMEOUT: _BUSY,
    INBOUND_STATUS_PRE: None,
    INBOUND_STATUS_POST: _SORRY,
    INBOUND_NO_ACTIONS: _SORRY,
    OUTBOUND_STATUS_PRE: None,
    OUTBOUND_STATUS_INIT: _SORRY_REACH,
    OUTBOUND_STATUS_LATER: _SORRY,
    OUTBOUND_NO_ACTIONS: _SORRY_REACH,
    UNFETCHABLE_URL: _SORRY,
    INBOUND_TOO_BIG: _SORRY,
    OUTBOUND_TOO_BIG: _SORRY_REACH,
}


class CallflowError(Exception):
    """The call flow cannot go on: ``code`` from the table above, ``message`` for
    the ``error`` field of ``end_call`` and the log."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_code(
    failure: Failure, *, outbound: bool, connected: bool, first_request: bool = False
) -> int:
    """The seed's code for ``failure``; ``first_request`` is True for the ``init_call``."""
    if failure == "timeout":
        return TIMEOUT
    if failure == "unfetchable":
        return UNFETCHABLE_URL
    if failure == "no_actions":
        return OUTBOUND_NO_ACTIONS if outbound else INBOUND_NO_ACTIONS
    if failure == "too_big":
        return OUTBOUND_TOO_BIG if outbound else INBOUND_TOO_BIG
    if not outbound:
        return INBOUND_STATUS_POST if connected else INBOUND_STATUS_PRE
    if not connected:
        return OUTBOUND_STATUS_PRE
    return OUTBOUND_STATUS_INIT if first_request else OUTBOUND_STATUS_LATER


def phone_message(code: int) -> str | None:
    """What the caller hears for ``code`` (the seed's "Phone Message"), None for "n/a".

    The code is spelled digit by digit ("4 0 0 9 0 1") so that speech reads
    it the way a caller would note it down.
    """
    if code not in _MESSAGES:
        return f"{_SORRY} Error code {_spell(code)}. Good bye."
    text = _MESSAGES[code]
    if text is None:
        return None
    if code == TIMEOUT:
        return f"{text} Error code {_spell(code)}."
    return f"{text} Error code {_spell(code)}. Good bye."


def _spell(code: int) -> str:
    return " ".join(str(code))
