"""What the store raises when an operation cannot be done as asked.

The HTTP layer maps them to status codes; ``field`` names the input at fault
so the JSON error can name it (SPEC section 5).
"""

from __future__ import annotations


class StoreError(Exception):
    """A storage operation that cannot be done as asked."""


class Conflict(StoreError):
    """A uniqueness rule would be broken (HTTP 409). ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownReference(StoreError):
    """A referenced row does not exist (HTTP 404/422). ``field`` names the reference."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SchemaTooNew(StoreError):
    """The database file was migrated by a newer mediaserver than this one."""
