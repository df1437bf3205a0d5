"""Webhooks: event envelopes and signatures (``envelope``), who wants which event
(``subscriptions``), their delivery off the call path (``delivery``, with the
``retry`` policy) and the Call Control event log lines (``call_events``)."""
