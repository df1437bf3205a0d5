"""The INVITE session of one dialog, sans-I/O: what RFC 3261, 3262, 3311 and 4028 ask of
a user agent above the transactions.

Theory of operation
-------------------
:class:`InviteSession` is the state of one INVITE dialog seen from our side, on the
model of :mod:`mediaserver.sip.transaction`: no sockets, no clock, no tasks. The caller
(the call, an asyncio adapter) feeds it what happened, each with a ``now``:

- our own acts: ``send_reliable`` (a 1xx that needs a PRACK), ``send_final`` (our final
  response to the INVITE), ``send_offer`` (our re-INVITE or UPDATE), ``answer_offer``
  (our final response to theirs), ``confirm``, ``terminate``;
- what the peer sent: ``handle_request`` (a re-INVITE, UPDATE or PRACK), ``handle_ack``,
  ``handle_response`` (the final response to our re-INVITE or UPDATE);
- the passage of time: ``handle_timeout(now)``;

and drains ``poll_transmit()`` (responses the session itself sends: retransmitted
reliable provisionals, 491, 500, the PRACK's 200 or 481), ``poll_events()`` (what the
call must do: send a refresh or retry, hang up, refuse the INVITE) and
``next_deadline()``. Requests are built by the caller (it owns Via and CSeq); the
session says when.

Five small machines share the session, each ``[machine][state][trigger]`` in
:data:`TRANSITIONS`; every state change happens in :meth:`InviteSession._apply`.
Entering a state stops the timers of the state left and starts those of
:data:`ENTRY_TIMERS`; a transition that keeps its state with ``Action.RESTART`` re-arms
them. A trigger missing from the table raises :class:`SessionError` (a bug of the
caller); everything a peer can send is in the table, so a peer cannot cause one.

Decisions where the RFCs leave room, marked "decision" at their entries:

- A peer's offer that arrives while we wait to retry after a 491 is taken; our retry is
  dropped. This server only sends offers to refresh the session, which their answered
  offer does as well.
- As refresher, a refresh answered with an error other than 408 or 481 leaves the
  session as it was and the next refresh comes half an interval later.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.timers import TimerConfig


class Machine(Enum):
    DIALOG = "dialog"  # RFC 3261 12: early, confirmed, terminated
    RELIABLE = "reliable provisional"  # RFC 3262 3
    OFFER = "re-INVITE or UPDATE"  # RFC 3261 14, RFC 3311 5
    ACK = "2xx awaiting ACK"  # RFC 3261 13.3.1.4
    SESSION_TIMER = "session timer"  # RFC 4028 10


class Phase(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Reliable(Enum):
    IDLE = "idle"
    UNACKED = "awaiting PRACK"


class Offer(Enum):
    IDLE = "idle"
    LOCAL = "ours pending"
    REMOTE = "theirs pending"
    RETRY_WAIT = "waiting to retry after 491"


class Ack(Enum):
    IDLE = "idle"
    AWAITING = "awaiting ACK"


class Refresh(Enum):
    OFF = "off"
    REFRESHER = "we refresh"
    REFRESHEE = "they refresh"


State = Phase | Reliable | Offer | Ack | Refresh


class Input(Enum):
    CONFIRM = "dialog confirmed"
    TERMINATE = "dialog terminated"
    SEND_RELIABLE = "reliable 1xx sent"
    RECV_PRACK = "PRACK for the unacknowledged 1xx"
    RECV_STRAY_PRACK = "PRACK matching no unacknowledged 1xx"
    SEND_FINAL = "final response to the INVITE sent"
    SEND_OFFER = "our re-INVITE or UPDATE sent"
    RECV_OFFER = "their re-INVITE or UPDATE"
    RECV_2XX = "2xx to ours"
    RECV_491 = "491 to ours"
    RECV_FAILURE = "other final response to ours"
    SEND_ANSWER = "final response to theirs sent"
    SEND_2XX = "2xx to an INVITE sent"
    RECV_ACK = "ACK"
    START_REFRESHER = "session timer, we refresh"
    START_REFRESHEE = "session timer, they refresh"
    REFRESHED = "session refreshed"
    REFRESH_FAILED = "refresh answered 408 or 481"

    def __str__(self) -> str:
        return self.value


class Timer(Enum):
    RETRANSMIT_1XX = "1xx retransmission"  # RFC 3262 3: T1, doubling
    PRACK_TIMEOUT = "PRACK timeout"  # RFC 3262 3: 64*T1
    RETRY = "491 retry"  # RFC 3261 14.1
    RETRANSMIT_2XX = "2xx retransmission"  # RFC 3261 13.3.1.4: T1 doubling to T2
    ACK_TIMEOUT = "ACK timeout"  # RFC 3261 13.3.1.4: 64*T1
    REFRESH = "refresh"  # RFC 4028 10: half the interval
    EXPIRE = "expiry"  # RFC 4028 10: interval - min(32, interval/3)

    def __str__(self) -> str:
        return f"{self.value} timer"


Trigger = Input | Timer


class Action(Enum):
    NONE = "-"
    RESTART = "restart the state's timers"
    START_TIMER = "start the session timer"
    STOP_ALL = "stop every machine"
    SEND_PROVISIONAL = "send the 1xx with RSeq"
    RESEND_PROVISIONAL = "resend the 1xx"
    ACCEPT_PRACK = "200 to the PRACK, report it"
    REJECT_PRACK = "481 to the PRACK"
    PRACK_TIMED_OUT = "report: refuse the INVITE with 5xx"
    PASS_UP = "the call answers it"
    REJECT_491 = "491 to theirs"
    REJECT_500 = "500 with Retry-After to theirs"
    ARM_RETRY = "wait to retry"
    RETRY = "report: retry ours"
    REFRESHED = "the session is refreshed"
    REFUSE = "refuse: an offer is pending"
    RESEND_2XX = "resend the 2xx"
    ACK_TIMED_OUT = "report: hang up, no ACK"
    REFRESH_DUE = "report: send a refresh"
    EXPIRED = "report: hang up, session expired"


_D, _R, _O, _A, _T = Phase, Reliable, Offer, Ack, Refresh
Transition = tuple[State, Action]

TRANSITIONS: dict[Machine, dict[State, dict[Trigger, Transition]]] = {
    Machine.DIALOG: {
        _D.EARLY: {
            Input.CONFIRM: (_D.CONFIRMED, Action.START_TIMER),
            Input.TERMINATE: (_D.TERMINATED, Action.STOP_ALL),
        },
        _D.CONFIRMED: {
            Input.CONFIRM: (_D.CONFIRMED, Action.NONE),
            Input.TERMINATE: (_D.TERMINATED, Action.STOP_ALL),
        },
        _D.TERMINATED: {},
    },
    # RFC 3262 3: one unacknowledged reliable 1xx at a time, resent until PRACKed.
    Machine.RELIABLE: {
        _R.IDLE: {
            Input.SEND_RELIABLE: (_R.UNACKED, Action.SEND_PROVISIONAL),
            Input.RECV_STRAY_PRACK: (_R.IDLE, Action.REJECT_PRACK),
            Input.SEND_FINAL: (_R.IDLE, Action.NONE),
        },
        _R.UNACKED: {
            Input.RECV_PRACK: (_R.IDLE, Action.ACCEPT_PRACK),
            Input.RECV_STRAY_PRACK: (_R.UNACKED, Action.REJECT_PRACK),  # RFC 3262 7.2
            Input.SEND_FINAL: (_R.IDLE, Action.NONE),  # the final ends retransmission
            Timer.RETRANSMIT_1XX: (_R.UNACKED, Action.RESEND_PROVISIONAL),
            Timer.PRACK_TIMEOUT: (_R.IDLE, Action.PRACK_TIMED_OUT),
        },
    },
    # RFC 3261 14.1/14.2 and RFC 3311 5.2: one offer exchange at a time each way.
    Machine.OFFER: {
        _O.IDLE: {
            Input.SEND_OFFER: (_O.LOCAL, Action.NONE),
            Input.RECV_OFFER: (_O.REMOTE, Action.PASS_UP),
        },
        _O.LOCAL: {
            Input.SEND_OFFER: (_O.LOCAL, Action.REFUSE),
            Input.RECV_OFFER: (_O.LOCAL, Action.REJECT_491),  # glare: 14.2, 3311 5.2
            Input.RECV_2XX: (_O.IDLE, Action.REFRESHED),
            Input.RECV_491: (_O.RETRY_WAIT, Action.ARM_RETRY),  # 14.1
            Input.RECV_FAILURE: (_O.IDLE, Action.NONE),
        },
        _O.REMOTE: {
            Input.SEND_OFFER: (_O.REMOTE, Action.REFUSE),
            Input.RECV_OFFER: (_O.REMOTE, Action.REJECT_500),  # 14.2, 3311 5.2
            Input.SEND_ANSWER: (_O.IDLE, Action.NONE),
        },
        _O.RETRY_WAIT: {
            Input.SEND_OFFER: (_O.RETRY_WAIT, Action.REFUSE),
            Input.RECV_OFFER: (_O.REMOTE, Action.PASS_UP),  # decision: theirs wins
            Timer.RETRY: (_O.IDLE, Action.RETRY),
        },
    },
    # RFC 3261 13.3.1.4: our 2xx to an INVITE is resent until its ACK.
    Machine.ACK: {
        _A.IDLE: {
            Input.SEND_2XX: (_A.AWAITING, Action.NONE),
            Input.RECV_ACK: (_A.IDLE, Action.NONE),  # a retransmitted ACK
        },
        _A.AWAITING: {
            Input.SEND_2XX: (_A.AWAITING, Action.RESTART),  # a re-INVITE's 2xx replaces it
            Input.RECV_ACK: (_A.IDLE, Action.NONE),
            Timer.RETRANSMIT_2XX: (_A.AWAITING, Action.RESEND_2XX),
            Timer.ACK_TIMEOUT: (_A.IDLE, Action.ACK_TIMED_OUT),
        },
    },
    # RFC 4028 10.
    Machine.SESSION_TIMER: {
        _T.OFF: {
            Input.START_REFRESHER: (_T.REFRESHER, Action.NONE),
            Input.START_REFRESHEE: (_T.REFRESHEE, Action.NONE),
            Input.REFRESHED: (_T.OFF, Action.NONE),
            Input.REFRESH_FAILED: (_T.OFF, Action.NONE),
        },
        _T.REFRESHER: {
            Timer.REFRESH: (_T.REFRESHER, Action.REFRESH_DUE),
            Input.REFRESHED: (_T.REFRESHER, Action.RESTART),
            Input.REFRESH_FAILED: (_T.OFF, Action.EXPIRED),
        },
        _T.REFRESHEE: {
            Timer.EXPIRE: (_T.OFF, Action.EXPIRED),
            Input.REFRESHED: (_T.REFRESHEE, Action.RESTART),
            Input.REFRESH_FAILED: (_T.REFRESHEE, Action.NONE),
        },
    },
}

ENTRY_TIMERS: dict[State, tuple[Timer, ...]] = {
    _R.UNACKED: (Timer.RETRANSMIT_1XX, Timer.PRACK_TIMEOUT),
    _O.RETRY_WAIT: (Timer.RETRY,),
    _A.AWAITING: (Timer.RETRANSMIT_2XX, Timer.ACK_TIMEOUT),
    _T.REFRESHER: (Timer.REFRESH,),
    _T.REFRESHEE: (Timer.EXPIRE,),
}

INITIAL: dict[Machine, State] = {
    Machine.DIALOG: _D.EARLY,
    Machine.RELIABLE: _R.IDLE,
    Machine.OFFER: _O.IDLE,
    Machine.ACK: _A.IDLE,
    Machine.SESSION_TIMER: _T.OFF,
}

_MACHINE_OF_TIMER = {
    trigger: machine
    for machine, states in TRANSITIONS.items()
    for transitions in states.values()
    for trigger in transitions
    if isinstance(trigger, Timer)
}


class SessionError(Exception):
    """A trigger the table has no entry for: a bug of the caller, never of a peer."""

    def __init__(self, machine: Machine, state: State, trigger: Trigger) -> None:
        super().__init__(f"{machine.value} in state {state.value!r}: no transition on {trigger}")


# -- outputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Transmit:
    """A response the session sends; ``answers`` is the request it answers."""

    response: Response
    answers: Request


@dataclass(frozen=True)
class ProvisionalAcknowledged:
    """The PRACK for our reliable 1xx came: the next one, or the 2xx, may go."""

    rseq: int


@dataclass(frozen=True)
class ProvisionalTimedOut:
    """No PRACK within 64*T1: refuse the INVITE with a 5xx (RFC 3262 3)."""


@dataclass(frozen=True)
class AckTimedOut:
    """No ACK for our 2xx within 64*T1: end the dialog with BYE (RFC 3261 13.3.1.4)."""


@dataclass(frozen=True)
class RefreshDue:
    """Send a session refresh now (RFC 4028 10)."""


@dataclass(frozen=True)
class RetryDue:
    """Send again the re-INVITE or UPDATE the peer refused with 491 (RFC 3261 14.1)."""

    method: str


@dataclass(frozen=True)
class SessionExpired:
    """The session was not refreshed in time: end it with BYE (RFC 4028 10)."""


Event = (
    ProvisionalAcknowledged | ProvisionalTimedOut | AckTimedOut | RefreshDue | RetryDue
    | SessionExpired
)  # fmt: skip


# -- the session -----------------------------------------------------------------------


class InviteSession:
    """One INVITE dialog's session state; see the module docstring."""

    def __init__(
        self,
        invite: Request,
        *,
        timers: TimerConfig,
        session_timer: SessionTimer | None = None,
        owns_call_id: bool = False,
        transaction_awaits_ack: bool = False,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """``invite``: the dialog's initial INVITE; ``owns_call_id``: we sent it (its
        Call-ID is ours, RFC 3261 14.1); ``transaction_awaits_ack``: the INVITE server
        transaction already resends our 2xx and times the ACK out (RFC 6026 7.1), so
        the session only tracks the state; ``rng``: uniform in [0, 1), for the 491 retry
        and RSeq."""
        self.invite = invite
        self.transaction_awaits_ack = transaction_awaits_ack
        self.timers = timers
        self.session_timer = session_timer
        self.owns_call_id = owns_call_id
        self._rng = rng
        self._states: dict[Machine, State] = dict(INITIAL)
        self._deadlines: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}
        self._transmits: list[Transmit] = []
        self._events: list[Event] = []
        self.rseq = int(rng() * 2**30)  # RFC 3262 3: a random start below 2**31
        self._provisional: Response | None = None
        self._ok: tuple[Response, Request] | None = None  # the 2xx awaiting its ACK
        self._offer_method = "INVITE"
        self._pending: Request | None = None  # the request the current trigger came with
        self._remote_offer: Request | None = None  # their offer awaiting our answer

    # -- state -----------------------------------------------------------------------

    def state(self, machine: Machine) -> State:
        return self._states[machine]

    @property
    def terminated(self) -> bool:
        return self._states[Machine.DIALOG] is Phase.TERMINATED

    @property
    def unacknowledged(self) -> Response | None:
        """The reliable 1xx awaiting its PRACK."""
        return self._provisional if self._states[Machine.RELIABLE] is Reliable.UNACKED else None

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def poll_transmit(self) -> list[Transmit]:
        out, self._transmits = self._transmits, []
        return out

    def poll_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    # -- our acts ----------------------------------------------------------------------

    def confirm(self, now: float) -> None:
        """The dialog is confirmed (our 2xx sent, or theirs received): session timers start."""
        self._input(Machine.DIALOG, Input.CONFIRM, now)

    def terminate(self, now: float) -> None:
        self._input(Machine.DIALOG, Input.TERMINATE, now)

    def send_reliable(self, response: Response, now: float) -> Response:
        """Make a 1xx reliable (RFC 3262 3: Require 100rel, the next RSeq) and send it;
        the previous one must have been PRACKed."""
        self.rseq += 1
        response.headers.add("Require", "100rel")
        response.headers.add("RSeq", str(self.rseq))
        self._provisional = response
        self._input(Machine.RELIABLE, Input.SEND_RELIABLE, now)
        return response

    def send_final(self, response: Response, now: float) -> None:
        """Our final response to the initial INVITE: it stops 1xx retransmission, and a
        2xx awaits its ACK and confirms the dialog."""
        self._input(Machine.RELIABLE, Input.SEND_FINAL, now)
        if 200 <= response.status < 300:
            self._await_ack(response, self.invite, now)
            self.confirm(now)

    def send_offer(self, method: str, now: float) -> bool:
        """We send a re-INVITE or UPDATE; False (send nothing) while an offer is pending."""
        if self.terminated:
            return False
        self._offer_method = method
        return self._input(Machine.OFFER, Input.SEND_OFFER, now) is not Action.REFUSE

    def answer_offer(self, request: Request, response: Response, now: float) -> None:
        """Our final response to their re-INVITE or UPDATE; a 2xx refreshes the session
        (RFC 4028 10), and a 2xx to a re-INVITE awaits its ACK."""
        if request is self._remote_offer:
            self._remote_offer = None
            self._input(Machine.OFFER, Input.SEND_ANSWER, now)
        if 200 <= response.status < 300:
            if request.method == "INVITE":
                self._await_ack(response, request, now)
            self._input(Machine.SESSION_TIMER, Input.REFRESHED, now)

    # -- what the peer sent ------------------------------------------------------------

    def handle_request(self, request: Request, now: float) -> bool:
        """A PRACK, re-INVITE or UPDATE in the dialog. True: the call answers it (and
        reports its answer with :meth:`answer_offer`); False: the session did."""
        self.handle_timeout(now)
        if self.terminated:
            return True
        if request.method == "PRACK":
            rack = (request.headers.get("RAck") or "").split()
            expected = [str(self.rseq), str(self.invite.cseq[0]), self.invite.method]
            matches = self.unacknowledged is not None and rack == expected  # RFC 3262 7.2
            trigger = Input.RECV_PRACK if matches else Input.RECV_STRAY_PRACK
            self._input(Machine.RELIABLE, trigger, now, request)
            return False
        if request.method == "UPDATE" and not request.body:
            return True  # RFC 3311 5.2: no offer, no glare; a plain refresh
        if self._input(Machine.OFFER, Input.RECV_OFFER, now, request) is not Action.PASS_UP:
            return False
        self._remote_offer = request
        return True

    def handle_ack(self, ack: Request, now: float) -> None:
        """An ACK; it stops the retransmission of the 2xx to the INVITE it names."""
        self.handle_timeout(now)
        if self._ok is not None and ack.cseq[0] != self._ok[1].cseq[0]:
            return  # the ACK of an earlier INVITE (RFC 3261 13.2.2.4: CSeq tells)
        if not self.terminated:
            self._input(Machine.ACK, Input.RECV_ACK, now)

    def handle_response(self, status: int | None, now: float) -> None:
        """The final response to our re-INVITE or UPDATE; None when it timed out."""
        self.handle_timeout(now)
        if self.terminated:
            return
        if status is not None and 200 <= status < 300:
            self._input(Machine.OFFER, Input.RECV_2XX, now)
        elif status == 491:
            self._input(Machine.OFFER, Input.RECV_491, now)
        else:
            self._input(Machine.OFFER, Input.RECV_FAILURE, now)
            if status is None or status in (408, 481):
                # RFC 4028 10: a refresh that times out or gets 408 or 481 ends the session.
                self._input(Machine.SESSION_TIMER, Input.REFRESH_FAILED, now)

    def handle_timeout(self, now: float) -> None:
        """Fire every timer due at ``now``, in the order of their deadlines."""
        while self._deadlines:
            timer, deadline = min(self._deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                return
            del self._deadlines[timer]
            self._apply(_MACHINE_OF_TIMER[timer], timer, deadline)

    # -- the one mutation point --------------------------------------------------------

    def _input(
        self, machine: Machine, trigger: Input, now: float, request: Request | None = None
    ) -> Action:
        self.handle_timeout(now)
        if self.terminated:
            return Action.NONE  # the caller may act before it read the end
        self._pending = request
        try:
            return self._apply(machine, trigger, now)
        finally:
            self._pending = None

    def _apply(self, machine: Machine, trigger: Trigger, now: float) -> Action:
        state = self._states[machine]
        entry = TRANSITIONS[machine][state].get(trigger)
        if entry is None:
            raise SessionError(machine, state, trigger)
        new_state, action = entry
        if new_state is not state or action is Action.RESTART:
            for timer in ENTRY_TIMERS.get(state, ()):
                self._deadlines.pop(timer, None)
            self._states[machine] = new_state
            for timer in ENTRY_TIMERS.get(new_state, ()):
                if machine is not Machine.ACK or not self.transaction_awaits_ack:
                    self._arm(timer, now, self._first_interval(timer))
        self._act(action, trigger, now)
        return action

    def _act(self, action: Action, trigger: Trigger, now: float) -> None:
        request = self._pending
        if action is Action.START_TIMER and self.session_timer is not None:
            start = (
                Input.START_REFRESHER if self.session_timer.we_refresh else Input.START_REFRESHEE
            )
            self._apply(Machine.SESSION_TIMER, start, now)
        elif action is Action.STOP_ALL:
            self._deadlines.clear()
            for machine, state in INITIAL.items():
                if machine is not Machine.DIALOG:
                    self._states[machine] = state
        elif action is Action.SEND_PROVISIONAL or action is Action.RESEND_PROVISIONAL:
            assert self._provisional is not None
            self._transmits.append(Transmit(self._provisional, self.invite))
            if action is Action.RESEND_PROVISIONAL:  # RFC 3262 3: the interval doubles
                self._arm(trigger, now, 2 * self._intervals[Timer.RETRANSMIT_1XX])
        elif action is Action.ACCEPT_PRACK:
            assert request is not None
            self._transmits.append(Transmit(make_response(request, 200), request))
            self._events.append(ProvisionalAcknowledged(self.rseq))
        elif action is Action.REJECT_PRACK:
            assert request is not None
            response = make_response(request, 481, "No such reliable response")
            self._transmits.append(Transmit(response, request))
        elif action is Action.PRACK_TIMED_OUT:
            self._events.append(ProvisionalTimedOut())
        elif action is Action.REJECT_491:
            assert request is not None
            self._transmits.append(Transmit(make_response(request, 491), request))
        elif action is Action.REJECT_500:
            assert request is not None
            # RFC 3261 14.2: Retry-After a random 0 to 10 seconds.
            retry = [("Retry-After", str(int(self._rng() * 11)))]
            response = make_response(request, 500, "Offer pending", extra=retry)
            self._transmits.append(Transmit(response, request))
        elif action is Action.REFRESHED:
            self._apply(Machine.SESSION_TIMER, Input.REFRESHED, now)
        elif action is Action.RETRY:
            self._events.append(RetryDue(self._offer_method))
        elif action is Action.RESEND_2XX:
            assert self._ok is not None
            self._transmits.append(Transmit(*self._ok))
            self._arm(trigger, now, self.timers.backoff(self._intervals[Timer.RETRANSMIT_2XX]))
        elif action is Action.ACK_TIMED_OUT:
            self._events.append(AckTimedOut())
        elif action is Action.REFRESH_DUE:
            # The next one is due half an interval on unless a 2xx restarts the count.
            self._arm(trigger, now, self._first_interval(Timer.REFRESH))
            self._events.append(RefreshDue())
        elif action is Action.EXPIRED:
            self._events.append(SessionExpired())

    # -- helpers -----------------------------------------------------------------------

    def _await_ack(self, response: Response, request: Request, now: float) -> None:
        self._ok = (response, request)
        self._input(Machine.ACK, Input.SEND_2XX, now)

    def _first_interval(self, timer: Timer) -> float:
        t1 = self.timers.t1
        if timer is Timer.RETRY:
            # RFC 3261 14.1: 2.1 to 4 s if we own the Call-ID, else 0 to 2 s; 10 ms units.
            low, high = (2.1, 4.0) if self.owns_call_id else (0.0, 2.0)
            return low + round(self._rng() * (high - low), 2)
        if timer in (Timer.PRACK_TIMEOUT, Timer.ACK_TIMEOUT):
            return 64 * t1
        if timer is Timer.REFRESH:
            assert self.session_timer is not None
            return self.session_timer.refresh_after
        if timer is Timer.EXPIRE:
            assert self.session_timer is not None
            return self.session_timer.expire_after
        return t1  # the retransmission timers start at T1

    def _arm(self, timer: Trigger, now: float, interval: float) -> None:
        assert isinstance(timer, Timer)
        self._intervals[timer] = interval
        self._deadlines[timer] = now + interval
