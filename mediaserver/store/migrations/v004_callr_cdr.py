"""Schema version 6: the Callr v1 CDR fields a call record keeps beyond version 1.

``cli_pres`` is the caller presentation read from the INVITE
(:mod:`mediaserver.sip.presentation`); ``customer_field`` the run's
``customer_field`` variable when the call ended. The number facts
(country, type) and ``did_hash`` are derived from the numbers when read,
so they need no column.
"""

from __future__ import annotations

NAME = "callr_cdr"

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE calls ADD COLUMN cli_pres TEXT",
    "ALTER TABLE calls ADD COLUMN customer_field TEXT",
)
