"""Where callback requests go, and the signals the loop and its steps exchange.

:class:`Callback` is the callback configuration of a flow (seed, "callback"
of the Call Flow configuration: url, method, headers, timeout), changed by
REDIRECT. The exceptions carry the loop's own control flow: a REDIRECT, a
request that failed, a native action that failed (a GOTO raises the shared
interpreter's :class:`~mediaserver.actions.interpreter.Jump`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from mediaserver.callflow import errors

_pending: set[asyncio.Task[None]] = set()
"""Requests sent after their flow stopped waiting (end_call after a cancel, WEBHOOKs)."""


@dataclass(frozen=True)
class Callback:
    """Where and how callback requests go (seed, "callback" and REDIRECT)."""

    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 5.0
    is_template: bool = True  # seed, "is_template": map {{property}} in answers (default true)
    failover: tuple[str, str] | None = None
    """Seed, ``callback_failover``: the URL and method "a second request attempt will be
    made to" when a request fails; same headers and timeout."""

    def failover_callback(self) -> Callback | None:
        """Where a failed request is sent again, None without ``callback_failover``."""
        if self.failover is None:
            return None
        url, method = self.failover
        return Callback(url, method, self.headers, self.timeout, self.is_template)

    def config(self) -> dict[str, Any]:
        """``$config``."""
        return {
            "url": self.url,
            "method": self.method,
            "headers": dict(self.headers),
            "content_type": "application/json",
            "timeout": self.timeout,
            "is_template": self.is_template,
        }


class Redirected(Exception):
    """A REDIRECT: stop this list and ask the (new) URL at once."""


class HttpFailure(Exception):
    """A callback request without a usable answer: a timeout, or no answer at all."""

    def __init__(self, kind: errors.Failure, message: str) -> None:
        super().__init__(message)
        self.kind: errors.Failure = kind
        self.message = message


class StepFailed(Exception):
    """A native action failed; the loop decides between a handler and an error."""


def background(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` without waiting for it (and keep it from being collected)."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
