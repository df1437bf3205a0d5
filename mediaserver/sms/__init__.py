"""SMS (Callr v2 ``/sms``) carried as SIP MESSAGE (RFC 3428).

:mod:`~mediaserver.sms.rules` holds the pure parts (what a valid SMS is, its
encoding and parts, which seed status a SIP answer means);
:mod:`~mediaserver.sms.service` sends and receives them, stores each in
SQLite (:mod:`mediaserver.store.sms`) and publishes ``v2.sms.*`` webhooks.
"""
