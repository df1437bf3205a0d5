"""Schema version 3: audio files (Callr v2 ``/audio-files``).

One row per audio file: its name, where it comes from, its status in the
conversion (``pending-content``, ``pending-conversion``, ``processing``,
``ready``, ``error``) and, once converted, its duration. The audio itself is
a file named by the id under ``storage.audio_files``; ``reason`` says why a
conversion ended in ``error``.
"""

from __future__ import annotations

NAME = "audio_files"

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE audio_files (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('file-upload', 'phone-record', 'system')),
        readonly INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN
            ('pending-content', 'pending-conversion', 'processing', 'ready', 'error')),
        reason TEXT NOT NULL DEFAULT '',
        format TEXT NOT NULL DEFAULT '',
        duration_ms INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    "CREATE INDEX audio_files_updated ON audio_files (updated_at, id)",
    "CREATE INDEX audio_files_created ON audio_files (created_at, id)",
)
