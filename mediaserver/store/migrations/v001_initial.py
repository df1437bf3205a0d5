"""Schema version 1: scenarios, numbers, runs, call records, recordings, webhooks.

Conventions: ids are 8 characters of ``[a-z0-9]`` (run ids carry a prefix,
``api:XXXXXXXX``); times are integer milliseconds since the epoch, UTC;
JSON lives in TEXT columns; booleans are 0/1 with a CHECK. Call records
keep the scenario's id and name as plain columns without a foreign key: a
record outlives the scenario it ran. Durations are generated columns, so
they can never disagree with the timestamps they come from. The delivery
log has no foreign key to ``webhooks``: webhooks from the configuration file
are not rows there, and a deleted webhook's log stays readable.
"""

from __future__ import annotations

NAME = "initial"

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE scenarios (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('file', 'api')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX scenarios_created ON scenarios (created_at)",
    "CREATE INDEX scenarios_updated ON scenarios (updated_at)",
    """
    CREATE TABLE numbers (
        number TEXT PRIMARY KEY,
        scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
        attached_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX numbers_scenario ON numbers (scenario_id)",
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
        branch TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('running', 'completed', 'hangup', 'failed', 'cancelled', 'interrupted')),
        variables TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        started_at INTEGER NOT NULL,
        ended_at INTEGER
    )
    """,
    "CREATE INDEX runs_scenario ON runs (scenario_id, started_at)",
    "CREATE INDEX runs_running ON runs (status) WHERE status = 'running'",
    """
    CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'ended', 'interrupted')),
        from_number TEXT NOT NULL,
        from_name TEXT,
        to_number TEXT NOT NULL,
        number TEXT,
        scenario_id TEXT,
        scenario_name TEXT,
        run_id TEXT REFERENCES runs (id) ON DELETE SET NULL,
        parent_call_id TEXT REFERENCES calls (id) ON DELETE SET NULL,
        sip_call_id TEXT,
        started_at INTEGER NOT NULL,
        answered_at INTEGER,
        ended_at INTEGER,
        duration_ms INTEGER GENERATED ALWAYS AS (ended_at - started_at) VIRTUAL,
        -- NULL while live (ended_at is NULL), 0 for a call never answered.
        duration_answered_ms INTEGER GENERATED ALWAYS AS
            (CASE WHEN answered_at IS NULL THEN ended_at - ended_at
                  ELSE ended_at - answered_at END) VIRTUAL,
        hangup_cause TEXT,
        hangup_cause_code INTEGER,
        hangup_source TEXT,
        sip_status INTEGER,
        dial_status TEXT,
        media_stats TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX calls_started ON calls (started_at, id)",
    "CREATE INDEX calls_direction ON calls (direction, started_at)",
    "CREATE INDEX calls_from ON calls (from_number, started_at)",
    "CREATE INDEX calls_to ON calls (to_number, started_at)",
    "CREATE INDEX calls_number ON calls (number, started_at)",
    "CREATE INDEX calls_scenario ON calls (scenario_id, started_at)",
    "CREATE INDEX calls_run ON calls (run_id)",
    "CREATE INDEX calls_parent ON calls (parent_call_id)",
    "CREATE INDEX calls_sip_call_id ON calls (sip_call_id)",
    "CREATE INDEX calls_live ON calls (status) WHERE status = 'live'",
    """
    CREATE TABLE recordings (
        id TEXT PRIMARY KEY,
        call_id TEXT REFERENCES calls (id) ON DELETE SET NULL,
        kind TEXT NOT NULL CHECK (kind IN ('call', 'recording', 'conference', 'voicemail')),
        status TEXT NOT NULL CHECK (status IN ('recording', 'ready', 'interrupted')),
        path TEXT NOT NULL,
        format TEXT NOT NULL,
        channels INTEGER NOT NULL CHECK (channels >= 1),
        duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
        size INTEGER NOT NULL CHECK (size >= 0),
        created_at INTEGER NOT NULL,
        read INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
        read_at INTEGER
    )
    """,
    "CREATE INDEX recordings_created ON recordings (created_at, id)",
    "CREATE INDEX recordings_call ON recordings (call_id)",
    "CREATE INDEX recordings_kind ON recordings (kind, created_at)",
    "CREATE INDEX recordings_unfinished ON recordings (status) WHERE status = 'recording'",
    """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL DEFAULT '["*"]',
        secret TEXT,
        enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        failed INTEGER NOT NULL DEFAULT 0,
        last_failed_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX webhooks_created ON webhooks (created_at, id)",
    """
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        url TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        subject_sid TEXT NOT NULL DEFAULT '',
        attempt INTEGER NOT NULL CHECK (attempt >= 0),
        outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
        status_code INTEGER,
        error TEXT,
        duration_ms REAL NOT NULL CHECK (duration_ms >= 0),
        payload TEXT,
        at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX deliveries_at ON webhook_deliveries (at, id)",
    "CREATE INDEX deliveries_webhook ON webhook_deliveries (webhook_id, at)",
    "CREATE INDEX deliveries_event ON webhook_deliveries (event_id)",
)
