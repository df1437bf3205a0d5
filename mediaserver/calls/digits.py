"""A call's DTMF keys: the type-ahead buffer, and waiting for a key or anything else.

Keys arrive however the peer sends them (RFC 4733 events from the RTP leg, SIP
INFO, in-band tones) and are buffered, so a ``gather@v1`` consumes keys pressed
before it started and the key that interrupts a prompt is the first one
gathered. :meth:`DigitBuffer.wait_any` is the call's one way to wait: for some
futures, a key, the call's end or a timeout, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from mediaserver.log import get_logger

log = get_logger("call")

MAX_BUFFERED_DIGITS = 64


class DigitBuffer:
    """The keys a call's peer pressed that no action has consumed yet."""

    def __init__(self, ended: asyncio.Future[None], call_id: str) -> None:
        """``ended``: resolved when the call ends (it wakes every wait)."""
        self._ended = ended
        self._call_id = call_id
        self._digits: deque[str] = deque(maxlen=MAX_BUFFERED_DIGITS)
        self._wakers: list[asyncio.Future[None]] = []
        self.listeners: list[Callable[[str], None]] = []
        """Told of every key as it arrives, consumed or not (Call Control's events)."""

    def __bool__(self) -> bool:
        return bool(self._digits)

    def deliver(self, key: str) -> None:
        """A key pressed: buffer it and wake whoever waits for one."""
        # Runs in datagram_received, outside the call's task: name the call explicitly.
        log.info("dtmf received", key=key, call_id=self._call_id)
        self._digits.append(key)
        for waker in self._wakers:
            if not waker.done():
                waker.set_result(None)
        for listener in self.listeners:
            listener(key)

    def pop(self) -> str | None:
        """The oldest key not consumed yet, consumed now."""
        return self._digits.popleft() if self._digits else None

    def clear(self) -> None:
        self._digits.clear()

    def buffered_key(self, stop_keys: str) -> str | None:
        """The first buffered key that is one of ``stop_keys`` (left in the buffer)."""
        for key in self._digits:
            if key in stop_keys:
                return key
        return None

    async def wait_any(
        self,
        futures: list[asyncio.Future[Any]],
        timeout: float | None,
        *,
        wake_on_digit: bool = True,
    ) -> None:
        """Wait until one of ``futures`` is done, a digit arrives (unless told
        not to), the call ends, or ``timeout`` seconds pass."""
        waiters: set[asyncio.Future[Any]] = {self._ended, *futures}
        waker: asyncio.Future[None] | None = None
        if wake_on_digit:
            waker = asyncio.get_running_loop().create_future()
            self._wakers.append(waker)
            waiters.add(waker)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if waker is not None:
                with contextlib.suppress(ValueError):
                    self._wakers.remove(waker)
