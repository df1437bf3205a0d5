"""Secrets the server keeps in its data dir (the API key, the Call Control signing key).

They are written with mode 0600 from the moment the file exists, so no other
user can read them, not even briefly; an existing file of another mode (an
empty one made by hand) is brought back to 0600.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (folders made as needed), readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)  # an existing file may have had another mode
