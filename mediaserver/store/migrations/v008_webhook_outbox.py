"""Schema version 8: the webhook outbox, posts on their way claimed in the database.

One row per event and webhook URL still to be posted (or posted: rows stay
until pruned, so a second node's insert of the same event finds them). A
node inserts its fresh events claimed by itself (``claimed_by``, with a
``lease_until`` it renews while it holds them); a row whose lease ran out
belongs to a node that died, and the next node to look claims it
(:mod:`mediaserver.store.outbox`). ``event_key`` is unique: the same event
published by every node (a number assigned by a config reload they all run)
is inserted, and posted, once.
"""

from __future__ import annotations

NAME = "webhook_outbox"

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE webhook_outbox (
        id INTEGER PRIMARY KEY,
        event_key TEXT NOT NULL UNIQUE,
        webhook_id TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT,
        hmac_algo TEXT NOT NULL DEFAULT 'SHA256',
        event_type TEXT NOT NULL,
        event_id TEXT NOT NULL,
        subject_sid TEXT NOT NULL DEFAULT '',
        payload TEXT NOT NULL,
        event_at INTEGER NOT NULL,
        failover_url TEXT,
        timeout REAL,
        failover INTEGER NOT NULL DEFAULT 0 CHECK (failover IN (0, 1)),
        attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'delivered', 'failed', 'dropped')),
        due_at INTEGER NOT NULL,
        claimed_by TEXT NOT NULL DEFAULT '',
        claimed_at INTEGER NOT NULL DEFAULT 0,
        lease_until INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX webhook_outbox_pending ON webhook_outbox (state, lease_until, id)",
    "CREATE INDEX webhook_outbox_created ON webhook_outbox (created_at)",
)
