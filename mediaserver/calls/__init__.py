"""Calls: one SIP dialog, its RTP leg and what drives them.

``base.py`` holds what every call is and its ``CallApi``, composed of parts
(``channel``, ``digits``, ``playback``, ``media``, ``renegotiation``,
``session_link``, ``run_owner``; see docs/architecture.md);
``inbound.py`` answers an INVITE; ``outbound.py`` places one; ``bridge.py``
joins two calls for ``dial@v1``. ``switch.py`` is the call switch the SIP user
agent passes calls up to (admission in ``admission.py``), ``dialer.py`` places
outbound calls, ``live.py`` holds the live calls and their RTP legs.
"""

from mediaserver.actions.callapi import DialError, DialOptions, DialResult
from mediaserver.calls.base import Call, new_call_id
from mediaserver.calls.inbound import CallSetup, InboundCall
from mediaserver.calls.outbound import OutboundCall

__all__ = [
    "Call",
    "CallSetup",
    "DialError",
    "DialOptions",
    "DialResult",
    "InboundCall",
    "OutboundCall",
    "new_call_id",
]
