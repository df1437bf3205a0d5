"""Call Control (SPEC section 5, seed 002): calls driven by REST commands and webhooks.

Theory of operation. A call under Call Control has no scenario: a route
``call-control:URL`` (or ``call-control:APPLICATION_ID``) parks the inbound
call (ringing, not answered) and posts ``call.initiated``; ``POST /calls``
places an outbound one. From then on the application drives the call with
commands (answer, speak, gather, bridge, hangup...), and learns what happens
from the events posted to its webhook URL.

- :mod:`.controlled`: :class:`ControlledCall`, what Call Control adds to a
  call: its ids (``call_control_id``, ``call_leg_id``, ``call_session_id``),
  the application and webhook URL, ``client_state``, the ``command_id`` seen,
  the media operation under way;
- :mod:`.payloads`: the seed's event payloads, and the hang-up causes in the
  seed's words;
- :mod:`.service`: :class:`CallControl`, the live controlled calls by id,
  parking, dialling, posting events;
- :mod:`.commands`: each command, on the call layer (``calls/``) and the
  native actions, which it runs as action items (speak is ``say@v1``,
  gather is ``gather@v1``...), so both dialects share one implementation.

The HTTP side is ``mediaserver/api/telnyx/``; event delivery (Ed25519
signatures, retries, failover URL) is ``mediaserver/webhooks/``.
"""
