"""Which webhooks want which events: subscriptions and their patterns (SPEC section 5).

Each webhook lists event patterns (:func:`event_matches`). A
pattern is dot-separated; ``*`` alone matches every type; a ``*`` segment in
the middle matches exactly one segment; a final ``.*`` matches one or more
further segments (``v2.call.*`` matches ``v2.call.inbound.started``); any
other pattern must equal the type. Matching is case-sensitive and no other
glob characters are special.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mediaserver.config import WebhookConfig

_SID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


class WebhookSubscription(Protocol):
    """What the dispatcher needs of a webhook (a config entry or a stored one)."""

    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def events(self) -> Sequence[str]: ...
    @property
    def secret(self) -> str | None: ...
    @property
    def hmac_algo(self) -> str:
        """The HMAC's hash: MD5, SHA1, SHA256 or SHA512."""
        ...


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook: where to post, which event patterns it wants, how to sign."""

    id: str
    url: str
    events: tuple[str, ...] = ("*",)
    secret: str | None = None
    hmac_algo: str = "SHA256"


def webhook_sid(*parts: str) -> str:
    """A stable Callr-style SID (8 of ``[a-z0-9]``) derived from ``parts``."""
    number = int.from_bytes(hashlib.sha256("\n".join(parts).encode("utf-8")).digest()[:8])
    digits = []
    for _ in range(8):
        number, digit = divmod(number, 36)
        digits.append(_SID_ALPHABET[digit])
    return "".join(digits)


def targets_from_config(webhooks: Iterable[WebhookConfig]) -> list[WebhookTarget]:
    """Targets for the config file's webhooks, each with a SID stable across restarts."""
    return [
        WebhookTarget(webhook_sid(w.url, *w.events), w.url, tuple(w.events), w.secret)
        for w in webhooks
    ]


def event_matches(pattern: str, event_type: str) -> bool:
    """Whether one subscription pattern selects ``event_type`` (rules in the module doc)."""
    if pattern == "*":
        return True
    want, have = pattern.split("."), event_type.split(".")
    if want[-1] == "*":
        # A final "*" takes the rest of the type: at least one more segment.
        want = want[:-1]
        if len(have) <= len(want):
            return False
        have = have[: len(want)]
    elif len(want) != len(have):
        return False
    return all(w == "*" or w == h for w, h in zip(want, have, strict=True))


def subscription_wants(patterns: Iterable[str], event_type: str) -> bool:
    """Whether any of a webhook's patterns selects ``event_type``."""
    return any(event_matches(p, event_type) for p in patterns)
