"""Schema version 9: the registrar bindings of every node, for the others to find.

A node's registrar lives in its memory (:mod:`mediaserver.sip.registrar`); each
node also writes its bindings here (:mod:`mediaserver.store.bindings`), so a
node dialing a user registered on another finds where to reach the phone.
``node`` is the node that took the REGISTER; ``source_*`` where it came from;
``expires_at`` when the binding lapses (rows past it are ignored, and dropped
at the next write of the same user).
"""

from __future__ import annotations

NAME = "registrar_bindings"

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE registrar_bindings (
        node TEXT NOT NULL,
        user_name TEXT NOT NULL,
        contact TEXT NOT NULL,
        transport TEXT NOT NULL,
        source_host TEXT NOT NULL,
        source_port INTEGER NOT NULL,
        q REAL NOT NULL DEFAULT 1.0,
        expires_at INTEGER NOT NULL,
        refreshed_at INTEGER NOT NULL,
        PRIMARY KEY (node, user_name, contact)
    )
    """,
    "CREATE INDEX registrar_bindings_user ON registrar_bindings (user_name, expires_at)",
)
