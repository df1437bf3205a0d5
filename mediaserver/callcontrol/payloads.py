"""The payloads of Call Control events (seed 002 ``Call*Event`` schemas) and hang-up causes.

Every call event carries the call's ids, its application (``connection_id``)
and the latest ``client_state``; the events whose schema has them add the
parties (``from``, ``to``). The hang-up cause is the seed's enum:
``call_rejected``, ``normal_clearing``, ``originator_cancel``, ``timeout``,
``time_limit``, ``user_busy``, ``not_found`` or ``unspecified``, with the
party that ended the call (``caller``, ``callee``, ``unknown``) and the SIP
status behind it (``sip_hangup_cause``, ``unspecified`` when there was none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mediaserver.webhooks.envelope import format_occurred_at

if TYPE_CHECKING:
    from mediaserver.callcontrol.controlled import ControlledCall

# The event types whose seed schema names the parties.
_WITH_PARTIES = frozenset(
    {
        "call.initiated",
        "call.answered",
        "call.bridged",
        "call.dtmf.received",
        "call.gather.ended",
        "call.hangup",
        "call.machine.detection.ended",
        "call.machine.greeting.ended",
        "call.refer.started",
        "call.refer.completed",
        "call.refer.failed",
    }
)

# Our hang-up causes (calls/causes.py) in the seed's enum.
_CAUSES = {
    "normal_clearing": "normal_clearing",
    "busy": "user_busy",
    "declined": "call_rejected",
    "rejected": "call_rejected",
    "no_answer": "timeout",
    "timeout": "timeout",
    "time_limit": "time_limit",
    "originator_cancel": "originator_cancel",
    "not_found": "not_found",
    "unavailable": "not_found",
}


def hangup_cause(cause: str | None) -> str:
    """The seed's ``hangup_cause`` for one of ours (``unspecified`` when it has no word)."""
    return _CAUSES.get(cause or "", "unspecified")


def hangup_source(source: str | None, direction: str) -> str:
    """Who hung up in the seed's words: the caller is the far end of an incoming call
    and us on an outgoing one."""
    if source in ("caller", "callee"):
        return source
    if source == "server":
        return "callee" if direction == "incoming" else "caller"
    return "unknown"


def call_payload(cc: ControlledCall, event_type: str, **fields: Any) -> dict[str, Any]:
    """The payload of ``event_type`` about ``cc``: ids, application, client_state,
    the parties where the seed has them, then ``fields``."""
    payload: dict[str, Any] = {
        "call_control_id": cc.call_control_id,
        "call_leg_id": cc.call_leg_id,
        "call_session_id": cc.call_session_id,
        "connection_id": cc.connection_id,
        "client_state": cc.client_state,
    }
    if event_type in _WITH_PARTIES:
        payload["from"] = cc.from_
        payload["to"] = cc.to
        payload["direction"] = cc.direction
    if event_type == "call.hangup":
        payload["start_time"] = format_occurred_at(cc.start_time)
    payload.update(fields)
    return payload
