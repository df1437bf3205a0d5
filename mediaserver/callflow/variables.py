"""The variables a call flow's expressions see (seed, "Variables").

"Native Constants" (``$keyPresses``, ``$callTime``, ``$callerNo``...) are
read-only: "any attempts to change their values will fail silently", so an
assignment to one is dropped when the response is parsed. ``$sessionData``
and ``$webhookData`` are the writable "User Defined Variables"; any other
``$name`` is the application's own.

They live in the run's sandbox next to the scenario's variables, so a
scenario that hands a call to ``callflow@v1`` can prepare ``$sessionData``
(and read what the flow left when it ends). ``$now`` is the server's
built-in, which already means what the seed says (epoch milliseconds).
"""

from __future__ import annotations

from typing import Any

from mediaserver.callflow.requests import GEO_FIELDS, CallFacts

KEY_PRESSES = "$keyPresses"
COLLECT_ATTEMPT = "$collectAttempt"
CALL_TIME = "$callTime"
SESSION_DATA = "$sessionData"
WEBHOOK_DATA = "$webhookData"
PARENT_CALL_ID = "$parentCallID"
LAST_QUEUE_POLL_CONNECT_CALL = "$lastQueuePollConnectCall"
"""Set by a QUEUE poll_connect that bridged a call: ``{id, no}``; null before."""
NUM_CONFERENCE_PARTICIPANTS = "$numConferenceParticipants"
"""Set by CONFERENCE (a string, as the seed types it); undefined before the first."""
RESULT = "$callflowResult"
"""Where the loop keeps the result of the native action it just ran (a conference's
outcome, a detection's verdict); not part of the dialect."""

_GEO = ("Latitude", "Longitude", "PostalCode", "City", "RateCenter", "Lata", "Region",
        "Country", "TimeZone")  # fmt: skip
assert len(_GEO) == len(GEO_FIELDS)

NATIVE_CONSTANTS = frozenset(
    {
        "$config",
        LAST_QUEUE_POLL_CONNECT_CALL,
        "$direction",
        KEY_PRESSES,
        "$now",
        CALL_TIME,
        "$startTime",
        NUM_CONFERENCE_PARTICIPANTS,
        "$callId",
        PARENT_CALL_ID,
        "$appId",
        COLLECT_ATTEMPT,
        "$callerNo",
        "$apiNo",
        *(f"$callerNo{suffix}" for suffix in _GEO),
        *(f"$apiNo{suffix}" for suffix in _GEO),
    }
)
"""Seed, "Native Constants": read-only for the application."""


def constants(
    facts: CallFacts, *, app_id: str, parent_call_id: str | None, config: dict[str, Any]
) -> dict[str, Any]:
    """The native constants that do not change during the call.

    ``$numConferenceParticipants`` is set by CONFERENCE (the seed: "Do not use
    before a conference has been accessed"); ``$lastQueuePollConnectCall`` is null
    until a QUEUE poll_connect bridges a call.
    """
    values: dict[str, Any] = {
        "$config": config,
        LAST_QUEUE_POLL_CONNECT_CALL: None,
        "$direction": facts.direction.upper(),
        "$startTime": facts.started_ms,
        "$callId": facts.call_id,
        PARENT_CALL_ID: parent_call_id,
        "$appId": app_id,
        "$callerNo": facts.caller_no,
        "$apiNo": facts.api_no,
    }
    for suffix in _GEO:
        values[f"$callerNo{suffix}"] = None
        values[f"$apiNo{suffix}"] = None
    return values
