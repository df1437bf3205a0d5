"""Schema version 2: Call Control applications and the call event log (SPEC section 5).

An application's settings (everything but its id, name and times) are one
JSON object: the seed's fields, read back with defaults for any a later
version adds, so new settings need no migration. The event log has no
foreign key to the applications: a deleted application's events stay
readable, under the name it had when they were logged.
"""

from __future__ import annotations

NAME = "call_control"

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE call_control_applications (
        id TEXT PRIMARY KEY,
        application_name TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX call_control_applications_created ON call_control_applications (created_at, id)",
    """
    CREATE TABLE call_events (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL CHECK (type IN ('command', 'webhook')),
        name TEXT NOT NULL,
        call_leg_id TEXT NOT NULL DEFAULT '',
        call_session_id TEXT NOT NULL DEFAULT '',
        application_id TEXT NOT NULL DEFAULT '',
        application_name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
        metadata TEXT NOT NULL DEFAULT '{}',
        at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX call_events_at ON call_events (at, id)",
    "CREATE INDEX call_events_leg ON call_events (call_leg_id, at)",
    "CREATE INDEX call_events_session ON call_events (call_session_id, at)",
)
