"""The asyncio adapter of a call's INVITE session core (sip/invite_session.py).

As ``transport.py`` drives the transaction layer, :class:`SessionDriver` drives one
:class:`~mediaserver.sip.invite_session.InviteSession`: it gives every input the loop's
time, sends what the session transmits through the right server transaction, hands
its events to the call and keeps one loop timer armed at the session's next deadline.
All the rules are in the core; nothing here decides anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from mediaserver.sip.invite_session import Event, InviteSession
from mediaserver.sip.message import Request
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import SipEndpoint

R = TypeVar("R")


class SessionDriver:
    def __init__(
        self,
        session: InviteSession,
        endpoint: SipEndpoint,
        *,
        invite_transaction: ServerTransaction | None,
        on_event: Callable[[Event], None],
    ) -> None:
        """``invite_transaction``: where responses to the initial INVITE go (None for a
        call we placed); ``on_event``: the call's reaction to the session's events."""
        self.session = session
        self.endpoint = endpoint
        self.invite_transaction = invite_transaction
        self.on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def apply(self, step: Callable[[float], R]) -> R:
        """Run ``step(now)`` on the session, then act on what it produced."""
        result = step(self._loop.time())
        self._flush({})
        return result

    def handle_request(self, tx: ServerTransaction, request: Request) -> bool:
        """A PRACK, re-INVITE or UPDATE: True when the call answers it itself."""
        mine = self.session.handle_request(request, self._loop.time())
        self._flush({id(request): tx})
        return mine

    def close(self) -> None:
        """The call is over: the session terminates and its timer goes."""
        self.session.terminate(self._loop.time())
        self._flush({})
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = None

    def _flush(self, transactions: dict[int, ServerTransaction]) -> None:
        for transmit in self.session.poll_transmit():
            tx = transactions.get(id(transmit.answers))
            if transmit.answers is self.session.invite:
                tx = self.invite_transaction
            if tx is not None:
                self.endpoint.respond(tx, transmit.response)
        for event in self.session.poll_events():
            self.on_event(event)
        self._arm()

    def _arm(self) -> None:
        deadline = self.session.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        due = self._timer_at or 0.0
        self._timer = None
        self._timer_at = None
        # The loop may wake a hair early; never show the session a time before its deadline.
        self.session.handle_timeout(max(self._loop.time(), due))
        self._flush({})
