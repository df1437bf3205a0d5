"""The Q.850 cause number of each hang-up cause the server records.

A call's ``hangup_cause`` is a name (``busy``, ``no_answer``...); its call
record and the ``Reason`` header of our BYE (RFC 3326) carry the ITU-T Q.850
number as well. Names map as RFC 3398 maps the SIP statuses the server sends
for them (486 busy -> 17, 404 -> 1, 603 -> 21, 480 -> 20 ...).
"""

from __future__ import annotations

NORMAL_CLEARING = 16

Q850_CAUSES: dict[str, int] = {
    "normal_clearing": NORMAL_CLEARING,
    "not_found": 1,  # unallocated number (404)
    "busy": 17,  # user busy (486)
    "no_answer": 19,  # no answer from user, user alerted
    "unavailable": 20,  # subscriber absent (480)
    "declined": 21,  # call rejected (603)
    "rejected": 21,
    "failed": 41,  # temporary failure
    "session_expired": 102,  # recovery on timer expiry (RFC 4028 10: no refresh came)
    # The caller cancelled before the answer: 487, as SIP says it (FreeSWITCH's value).
    "originator_cancel": 487,
}


def q850_cause(cause: str | None) -> int:
    """The Q.850 number of a hang-up cause; a name the server does not give (a
    scenario's own ``hangup@v1`` reason) counts as normal clearing."""
    return Q850_CAUSES.get(cause or "", NORMAL_CLEARING)


# RFC 3398 8.2.6.1: the Q.850 cause of a SIP final status (records of refused calls).
_STATUS_CAUSES = {400: 41, 403: 21, 404: 1, 406: 79, 415: 79, 422: 127, 482: 25, 488: 127,
                  500: 41, 503: 41}  # fmt: skip


def q850_of_status(status: int) -> int:
    """The Q.850 number of a call refused with SIP ``status``; 127 (interworking,
    unspecified) for a status the table does not name."""
    return _STATUS_CAUSES.get(status, 127)
