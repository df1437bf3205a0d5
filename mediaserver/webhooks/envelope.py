"""Webhook event envelopes and their signatures (SPEC section 5).

Theory of operation
-------------------
An event has a type, a payload and, once published, an id and a time. It is
posted in one of two envelopes, chosen by its type:

* ``v2.*`` types (native webhooks) use the Callr v2 envelope of
  ``seeds/001``::

      {"id": "0f8e...32 letters/digits", "at": "2024-04-24T17:42:28Z",
       "sid": "k3x9a0pq", "type": "v2.call.inbound.ended", "try": 0,
       "payload": {...}}

  ``sid`` is the *webhook's* SID (the seed: "Unique identifier for the
  webhook"), ``at`` is RFC 3339 UTC to the second as in the seed's samples,
  and ``try`` counts the attempts made before this one (0 on the first post,
  as in the seed's samples).
* every other type (``call.hangup``, ``conference.created``, ...) uses the
  Call Control envelope of ``seeds/002``::

      {"data": {"record_type": "event", "id": "<uuid4>",
                "event_type": "call.hangup",
                "occurred_at": "2025-08-15T13:52:20.333Z", "payload": {...}},
       "meta": {"attempt": 1, "delivered_to": "http://127.0.0.1:9000/hooks"}}

The event id and time are fixed when the event is published and repeat on
every retry (receivers deduplicate on the id); only ``try``/``meta.attempt``
change, so the body is rebuilt and re-signed for each attempt.

Every post is ``Content-Type: application/json`` with the event type in
``X-Mediaserver-Event``. Call Control events are signed as Telnyx signs
them, with the server's Ed25519 key (:mod:`mediaserver.callcontrol.keys`):
``telnyx-timestamp`` is the Unix time in seconds of the attempt and
``telnyx-signature-ed25519`` the base64 of the 64-byte signature of
``b"<timestamp>|" + body`` (:func:`sign_ed25519`); receivers check it with the
public key and refuse timestamps more than 300 s away
(:func:`verify_ed25519`, the same rule as the Telnyx SDK's
``webhooks.unwrap``). When the webhook has a secret,
``X-Mediaserver-Signature`` carries the lowercase hex HMAC-SHA256 of the exact
body bytes, as SPEC section 5 says. There is no separate signed timestamp: the
signed body already carries the event id and time, so a receiver rejects
replays by remembering ids (and may refuse events whose ``at`` is too old).
:func:`verify_signature` is the check a receiver runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_HEADER = "X-Mediaserver-Signature"
ALGORITHM_HEADER = "X-Mediaserver-Signature-Algorithm"
HMAC_ALGOS = {"MD5": hashlib.md5, "SHA1": hashlib.sha1, "SHA256": hashlib.sha256,
              "SHA512": hashlib.sha512}  # fmt: skip
DEFAULT_HMAC_ALGO = "SHA256"  # SPEC section 5
EVENT_HEADER = "X-Mediaserver-Event"
NATIVE_PREFIX = "v2."
TIMESTAMP_HEADER = "telnyx-timestamp"
ED25519_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_TOLERANCE = 300  # seconds either way, as the Telnyx SDK's unwrap allows
MAX_TRY = 10  # seeds/001: "try" is an integer in [0, 10]

Envelope = dict[str, Any]


# --- envelopes ------------------------------------------------------------------------------


def as_utc(at: datetime | None) -> datetime:
    """``at`` in UTC (now when None; a naive time is taken as UTC)."""
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def format_at(at: datetime) -> str:
    """Callr ``at``: RFC 3339 UTC to the second, ``2024-04-24T17:42:28Z``."""
    return as_utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_occurred_at(at: datetime) -> str:
    """Call Control ``occurred_at``: ISO 8601 UTC to the millisecond, ``...:20.333Z``."""
    t = as_utc(at)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def is_native_event(event_type: str) -> bool:
    """Whether ``event_type`` goes in the Callr v2 envelope (else Call Control)."""
    return event_type.startswith(NATIVE_PREFIX)


def new_event_id(event_type: str) -> str:
    """A fresh event id: 32 hex digits for Callr types, a UUID for Call Control."""
    return uuid.uuid4().hex if is_native_event(event_type) else str(uuid.uuid4())


def make_envelope(
    event_type: str,
    sid: str,
    payload: Mapping[str, Any],
    *,
    event_id: str | None = None,
    at: datetime | None = None,
    attempt: int = 1,
) -> Envelope:
    """The Callr v2 webhook body; ``sid`` is the webhook's SID, ``attempt`` counts from 1."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return {
        "id": event_id if event_id is not None else new_event_id(event_type),
        "at": format_at(as_utc(at)),
        "sid": sid,
        "type": event_type,
        "try": min(attempt - 1, MAX_TRY),
        "payload": dict(payload),
    }


def make_call_control_event(
    event_type: str,
    payload: Mapping[str, Any],
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    attempt: int = 1,
    delivered_to: str | None = None,
) -> Envelope:
    """The Call Control (Telnyx-style) webhook body; ``meta.attempt`` counts from 1."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    meta: dict[str, Any] = {"attempt": attempt}
    if delivered_to is not None:
        meta["delivered_to"] = delivered_to
    return {
        "data": {
            "record_type": "event",
            "id": event_id if event_id is not None else str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": format_occurred_at(as_utc(occurred_at)),
            "payload": dict(payload),
        },
        "meta": meta,
    }


def encode_body(envelope: Envelope) -> bytes:
    """The exact bytes posted (and signed): compact UTF-8 JSON."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- signatures -----------------------------------------------------------------------------


def sign(body: bytes, secret: str, algo: str = DEFAULT_HMAC_ALGO) -> str:
    """Lowercase hex HMAC of ``body`` keyed with ``secret``, SHA-256 unless ``algo``
    names another of :data:`HMAC_ALGOS` (SPEC section 5)."""
    return hmac.new(secret.encode("utf-8"), body, HMAC_ALGOS[algo]).hexdigest()


def verify_signature(
    body: bytes, secret: str, signature: str | None, algo: str = DEFAULT_HMAC_ALGO
) -> bool:
    """Whether ``signature`` (the header value) signs ``body``; constant-time compare."""
    if not signature:
        return False
    return hmac.compare_digest(sign(body, secret, algo), signature.strip().lower())


def sign_ed25519(body: bytes, key: Ed25519PrivateKey, now: float | None = None) -> dict[str, str]:
    """The two Telnyx signature headers for ``body`` posted at ``now`` (Unix seconds)."""
    timestamp = str(int(time.time() if now is None else now))
    signature = key.sign(timestamp.encode("ascii") + b"|" + body)
    return {TIMESTAMP_HEADER: timestamp, ED25519_HEADER: base64.b64encode(signature).decode()}


def verify_ed25519(
    body: bytes,
    headers: Mapping[str, str],
    public_key: Ed25519PublicKey,
    now: float | None = None,
) -> bool:
    """Whether ``headers`` sign ``body`` with ``public_key`` at a time within
    :data:`TIMESTAMP_TOLERANCE` of ``now``; header names in any case."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp, signature = lowered.get(TIMESTAMP_HEADER), lowered.get(ED25519_HEADER)
    if timestamp is None or signature is None or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TIMESTAMP_TOLERANCE:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, timestamp.encode("ascii") + b"|" + body)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
