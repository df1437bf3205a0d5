"""What ``storage.database`` names: an SQLite file, or a PostgreSQL database by URL.

A leaf module (the configuration reads it; the store opens by it).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a file path."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def check_postgres_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database; ValueError saying what is wrong.

    The shape is libpq's: ``postgresql://user[:password]@host[:port]/database``
    (the host may instead be given as ``?host=/run/postgresql``, a socket folder).
    """
    shape = "postgresql://user[:password]@host[:port]/database"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a PostgreSQL URL ({exc}); expected {shape}") from exc
    if port == 0:
        raise ValueError(f"port 0 in {url!r}; expected {shape}")
    database = parts.path.lstrip("/")
    if not database:
        raise ValueError(f"no database name in {url!r}; expected {shape}")
    if "/" in database:
        raise ValueError(f"bad database name {database!r}; expected {shape}")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"no host in {url!r}; expected {shape}")
    return url
