"""Example requests and answers of the Call Control operations, for ``/openapi.json``.

Built from the routes' own models, so an example that stops passing their
validation fails at import; :mod:`mediaserver.api.examples` adds them to the
native ones (keys are the full paths, ``/telnyx/v2/...``).
"""

from __future__ import annotations

from typing import Any

from mediaserver.api.telnyx import PREFIX
from mediaserver.api.telnyx.applications import (
    ApplicationIn,
    ApplicationOut,
    ApplicationPatch,
    InboundIn,
    InboundOut,
    OutboundIn,
    OutboundOut,
    page_meta,
)
from mediaserver.api.telnyx.call_events import CallEventOut

T0 = "2025-08-15T13:52:20.333Z"
APP_ID = "1293384261075731499"

_app_in = ApplicationIn(
    application_name="call-router",
    webhook_event_url="https://example.com/telnyx",
    webhook_event_failover_url="https://failover.example.com/telnyx",
    webhook_timeout_secs=25,
    inbound=InboundIn(channel_limit=10),
    outbound=OutboundIn(outbound_voice_profile_id="1293384261075731499"),
)
_app = ApplicationOut(
    id=APP_ID,
    application_name="call-router",
    active=True,
    anchorsite_override="Latency",
    dtmf_type="RFC 2833",
    first_command_timeout=False,
    first_command_timeout_secs=30,
    inbound=InboundOut(
        channel_limit=10, sip_subdomain=None, sip_subdomain_receive_settings="from_anyone"
    ),
    outbound=OutboundOut(channel_limit=None, outbound_voice_profile_id="1293384261075731499"),
    webhook_api_version="1",
    webhook_event_failover_url="https://failover.example.com/telnyx",
    webhook_event_url="https://example.com/telnyx",
    webhook_timeout_secs=25,
    call_cost_in_webhooks=False,
    redact_dtmf_debug_logging=False,
    tags=[],
    created_at=T0,
    updated_at=T0,
).model_dump(mode="json")
_event = CallEventOut(
    call_leg_id="308fe500-5213-11e9-ace7-02420a0f0668",
    call_session_id="308fec30-5213-11e9-9d3f-02420a0f0668",
    event_timestamp=T0,
    name="call.hangup",
    type="webhook",
    metadata={
        "delivery": {"url": "https://example.com/telnyx", "attempt": 1, "outcome": "delivered",
                     "status_code": 200, "error": None, "duration_ms": 12.5, "failover": False},
    },
).model_dump(mode="json")  # fmt: skip
_meta = page_meta(1, 20, 1).model_dump(mode="json")
_apps = f"{PREFIX}/call_control_applications"

EXAMPLES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("GET", _apps): (None, {"data": [_app], "meta": _meta}),
    ("POST", _apps): (_app_in.model_dump(mode="json", exclude_unset=True), {"data": _app}),
    ("GET", f"{_apps}/{{id}}"): (None, {"data": _app}),
    ("PATCH", f"{_apps}/{{id}}"): (
        ApplicationPatch(webhook_timeout_secs=10).model_dump(mode="json", exclude_unset=True),
        {"data": {**_app, "webhook_timeout_secs": 10}},
    ),
    ("DELETE", f"{_apps}/{{id}}"): (None, {"data": _app}),
    ("GET", f"{PREFIX}/call_events"): (None, {"data": [_event], "meta": _meta}),
}
