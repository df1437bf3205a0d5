"""The webhook retry policy: which answers are worth another try, and how long to wait.

408, 429 and 5xx are retried, other statuses are final; waits double from a
base up to a cap, less a random share (jitter); ``Retry-After`` (RFC 9110
10.2.3) replaces the wait on 429/503. :mod:`mediaserver.webhooks.delivery`
applies it.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

from mediaserver.webhooks.envelope import as_utc


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth another try; other non-2xx statuses are final."""
    return status in (408, 429) or status >= 500


def backoff_delay(attempt: int, base: float, maximum: float, jitter: float, rand: float) -> float:
    """Seconds to wait after failed ``attempt`` (from 1): capped doubling, minus jitter.

    ``rand`` in [0, 1) takes off up to ``jitter`` (a fraction) of the delay.
    """
    nominal = min(maximum, base * 2.0 ** min(attempt - 1, 62))
    return nominal * (1.0 - jitter * rand)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value (RFC 9110 10.2.3), None when absent or bad.

    Delay-seconds and HTTP-dates are both accepted; decimal seconds too (lenient).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        # A date already past means "now".
        return max(0.0, (as_utc(when) - as_utc(now)).total_seconds())
    return seconds if seconds >= 0 else None  # also refuses NaN
