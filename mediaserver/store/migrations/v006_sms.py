"""Schema version 4 (registered third here; the lead renumbers on merge): SMS.

One row per SMS, sent (``outbound``, a SIP MESSAGE we send) or received
(``inbound``, a SIP MESSAGE a peer sent us), with the Callr v2 SMS fields.
``history`` is the JSON list of ``{"status", "at"}`` the seed calls
``statusHistory``; ``status`` is its last entry, kept as a column so
searches filter on it.
"""

from __future__ import annotations

NAME = "sms"

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE sms (
        id TEXT PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        encoding TEXT NOT NULL CHECK (encoding IN ('gsm', 'unicode')),
        parts INTEGER NOT NULL,
        traffic_type TEXT CHECK (traffic_type IN ('marketing', 'alerting')),
        status TEXT NOT NULL CHECK (status IN ('created', 'error', 'expired', 'failed',
            'pending', 'delivered', 'remote-queued', 'sent')),
        error TEXT,
        sip_status INTEGER,
        history TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        sent_at INTEGER,
        delivered_at INTEGER
    )
    """,
    "CREATE INDEX sms_created ON sms (created_at, id)",
    "CREATE INDEX sms_updated ON sms (updated_at, id)",
)
