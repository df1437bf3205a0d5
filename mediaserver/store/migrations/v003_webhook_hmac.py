"""Webhook HMAC algorithm: the hash a stored webhook's signature uses (Callr ``hmac_algo``).

Existing webhooks keep HMAC-SHA256, the signature they had (SPEC section 5).
"""

from __future__ import annotations

NAME = "webhook_hmac"

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE webhooks ADD COLUMN hmac_algo TEXT NOT NULL DEFAULT 'SHA256'"
    " CHECK (hmac_algo IN ('MD5', 'SHA1', 'SHA256', 'SHA512'))",
)
