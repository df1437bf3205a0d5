"""Webhooks: event envelopes and signatures (``envelope``), who wants which event
(``subscriptions``) and their delivery off the call path (``delivery``)."""
