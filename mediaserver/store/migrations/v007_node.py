"""Schema version 7: the node that holds each call, run, recording, SMS and audio file.

Several servers (nodes) may share one PostgreSQL database; what is in
flight belongs to the process that runs it, so start-up recovery closes only
its own node's (:mod:`mediaserver.store.recovery`), an SMS on its way is
expired only by the node that sent it, and an interrupted audio-file
conversion is resumed only by the node holding the upload. ``node`` is the
``node.name`` setting when the row was written; rows written before this
version have ``''`` and are taken as every node's.
"""

from __future__ import annotations

NAME = "node"

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE sms ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE audio_files ADD COLUMN node TEXT NOT NULL DEFAULT ''",
)
