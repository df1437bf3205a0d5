"""A dial the run does not wait for: ``dial@v1`` with ``wait: false``.

Voxology's asynchronous TRANSFER: the caller is bridged to the target as
``dial@v1`` does (:func:`~mediaserver.calls.bridge.dial`), but in a task of
its own, so the run goes on meanwhile (its prompts are not heard while the
bridge relays the callee; the caller's keys still reach it). ``stop@v1``
with ``dial: true`` ends it (Voxology's TRANSFER ``event: stop``): every
call the dial placed is hung up (a ringing one is cancelled), and the
bridge ends as when the callee hangs up. The caller hanging up ends it too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mediaserver.actions.callapi import CallEnded, DialOptions, DialResult
from mediaserver.log import get_logger

if TYPE_CHECKING:
    from mediaserver.calls.inbound import InboundCall
    from mediaserver.calls.outbound import OutboundCall

log = get_logger("dial")

STOP_WAIT = 10.0
"""Seconds ``stop`` waits for the dial to wind down (BYE or CANCEL answered)."""


class BackgroundDial:
    """One dial running beside the run (module docstring)."""

    def __init__(self, call: InboundCall, targets: list[str], options: DialOptions) -> None:
        from mediaserver.calls.bridge import dial

        self.placed: list[OutboundCall] = []
        self.result: DialResult | None = None
        self._dial = dial(call, targets, options, placed=self.placed)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            self.result = await self._dial
            log.info("background dial ended", status=self.result.status)
        except CallEnded:
            pass  # the caller hung up: the bridge ended with the call
        except Exception:  # the run went on without it: nobody else would hear of it
            log.exception("background dial failed")

    @property
    def running(self) -> bool:
        return not self.task.done()

    async def stop(self) -> bool:
        """Hang up what the dial placed and wait (bounded) for it to end; False
        when it was over already."""
        if not self.running:
            return False
        for leg in list(self.placed):
            if not leg.ended:
                await leg.hangup("normal_clearing")
        await asyncio.wait([self.task], timeout=STOP_WAIT)
        return True
