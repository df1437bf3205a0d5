"""The call event log line of a Call Control webhook attempt (``GET /telnyx/v2/call_events``).

Every attempt to post a Call Control event (types of the seed's ``call.*``
and ``conference.*`` families) becomes one ``type: webhook`` line: the
event's name, the ``call_leg_id`` and ``call_session_id`` of its payload, the
application it was posted for (the ``webhook_id`` given to
:meth:`~mediaserver.webhooks.delivery.WebhookDispatcher.publish_to`, and its
name then), ``delivered`` or ``failed`` (an attempt that will be retried
failed too), and as metadata the body posted and how the attempt went.
"""

from __future__ import annotations

from typing import Any

from mediaserver.store import NewCallEvent
from mediaserver.webhooks.delivery import DeliveryRecord
from mediaserver.webhooks.envelope import is_native_event

CALL_CONTROL_FAMILIES = ("call", "conference")


def is_call_control_event(event_type: str) -> bool:
    """Whether ``event_type`` is of a family the call event log keeps (``call.hangup``)."""
    family = event_type.split(".", 1)[0]
    return not is_native_event(event_type) and family in CALL_CONTROL_FAMILIES


def call_event_of(record: DeliveryRecord, application_name: str = "") -> NewCallEvent:
    """The log line of one attempt."""
    envelope = record.envelope or {}
    data = envelope.get("data")
    payload = data.get("payload") if isinstance(data, dict) else None
    if not isinstance(payload, dict):
        payload = {}
    delivery: dict[str, Any] = {
        "url": record.url,
        "attempt": record.attempt,
        "outcome": record.outcome,
        "status_code": record.status_code,
        "error": record.error,
        "duration_ms": round(record.duration_ms, 1),
        "failover": record.failover,
    }
    return NewCallEvent(
        type="webhook",
        name=record.event_type,
        status="delivered" if record.outcome == "delivered" else "failed",
        at=record.at,
        call_leg_id=str(payload.get("call_leg_id") or ""),
        call_session_id=str(payload.get("call_session_id") or ""),
        application_id=record.webhook_id,
        application_name=application_name,
        metadata={"event": envelope, "delivery": delivery},
    )
