"""SIP transactions: the four RFC 3261 state machines (17.1, 17.2) with RFC 6026's Accepted state.

Theory of operation
-------------------
A SIP transaction is one request and the responses to it (RFC 3261 17). This module
holds the four transaction state machines of RFC 3261 Figures 5 to 8, with the
"Accepted" state RFC 6026 adds to both INVITE machines, and nothing else: no sockets,
no clock, no tasks. The caller (the asyncio endpoint) feeds it

- messages it received: :meth:`TransactionLayer.handle_request`, ``handle_response``;
- commands of the transaction user (TU, the dialog and UA layers): ``send_request``,
  ``send_response``, ``ack_received``;
- failures of the transport: ``handle_transport_error``;
- the passage of time: ``handle_timeouts(now)``, and a ``now`` with every other call;

and drains what the layer wants done: ``poll_transmit()`` (messages and where to send
them), ``poll_events()`` (what the TU must know) and ``next_deadline()`` (when to call
``handle_timeouts`` next). Time is a float in seconds on any monotonic clock the caller
likes; tests use plain numbers.

Every state change happens in this file, in one method, ``TransactionLayer._apply``,
which looks ``[kind][state][trigger]`` up in :data:`TRANSITIONS`. A trigger is an
:class:`Input` (a message received, a TU command, a transport error) or a
:class:`Timer` firing. Each entry gives the new state and one :class:`Action`, the way
the RFC figures label their arrows ("event / action"). Entering a state stops the
timers of the state left and starts those :data:`ENTRY_TIMERS` lists for the new one
(Timers E and F carry over from Trying into Proceeding, :data:`CARRIED_TIMERS`). The
retransmission timers (A, E, G and the 2xx retransmission) re-arm themselves when
their transition keeps the state.

A trigger missing from the table raises :class:`TransitionError`, naming the machine,
the state and the trigger: it is a bug. Everything the network can deliver is in the
table for every live state, so a peer can never cause that error: a message to ignore
(a late retransmission, a 1xx after the final response) is an explicit entry with
``Action.NONE``, the RFC figures' "-". Only TU commands that make no sense (a 1xx after
the final response) raise. TU commands on a terminated transaction are ignored: the TU
may act before it has read the timeout or transport failure that ended it.

Timers of all transactions share one heap ordered by deadline, then by arming order,
with lazy invalidation: cancelling a timer only forgets it in its transaction, stale
heap entries are skipped when they surface, and the heap is rebuilt when most of it is
stale. Every input first fires the timers already due at its ``now`` (so events keep
the order of time even when ``handle_timeouts`` runs late), then applies the input, then
fires the zero-length timers it armed (D, I, J, K over reliable transports): a
transaction over TCP ends within the call that completes it, and is removed from the
layer at once (RFC 3261 17.1.1.2: destroyed the instant it enters Terminated).

Decisions beyond the figures, each marked "decision" at its table entry:

- The INVITE server transaction retransmits its own 2xx (RFC 3261 13.3.1.4 gives that
  to the TU; RFC 6026 7.1 keeps the transaction alive for it): at T1, 2*T1, ... capped
  at T2, over every transport as 13.3.1.4 asks, until the TU reports the ACK with
  ``ack_received`` or an ACK matches the transaction itself. No ACK within 64*T1 gives
  ``TransactionTimedOut(tx, "H")`` (the TU should send BYE); Timer L then ends it.
- A transport error ends the INVITE client transaction in Proceeding too (Figure 5
  has no arrow there): no final response can arrive once the connection is gone, and
  nothing else bounds that state. In the server Accepted state it informs the TU and
  stops the 2xx retransmissions; Timer L still ends the transaction.
- An INVITE client transaction passes a 2xx that follows a non-2xx final to the TU
  (it must ACK and BYE it, RFC 3261 13.2.2.4) and ignores 1xx and non-2xx responses
  once Accepted.
- A CANCEL matching an INVITE server transaction in Proceeding marks it ``cancelled``;
  the TU answers the CANCEL and sends the 487 (RFC 3261 9.2).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

from mediaserver.sip.message import Headers, Request, Response, make_response
from mediaserver.sip.timers import TimerConfig
from mediaserver.sip.uri import BRANCH_COOKIE, SipSyntaxError, Via

Peer = Hashable
"""An opaque address or connection token from the caller, handed back in :class:`Transmit`."""

TransactionKey = tuple[Hashable, ...]


# --------------------------------------------------------------------------------------
# Machines, states, triggers and actions
# --------------------------------------------------------------------------------------


class Kind(Enum):
    """The four transaction state machines."""

    INVITE_CLIENT = "INVITE client"  # RFC 3261 17.1.1, Figure 5; RFC 6026 7.2
    NON_INVITE_CLIENT = "non-INVITE client"  # RFC 3261 17.1.2, Figure 6
    INVITE_SERVER = "INVITE server"  # RFC 3261 17.2.1, Figure 7; RFC 6026 7.1
    NON_INVITE_SERVER = "non-INVITE server"  # RFC 3261 17.2.2, Figure 8


class InviteClientState(Enum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteClientState(Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class InviteServerState(Enum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteServerState(Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


State = InviteClientState | NonInviteClientState | InviteServerState | NonInviteServerState


class Input(Enum):
    """What can happen to a transaction, timers aside."""

    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_3XX_6XX = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    RECV_CANCEL = "CANCEL received"
    SEND_1XX = "1xx from TU"
    SEND_2XX = "2xx from TU"
    SEND_3XX_6XX = "300-699 from TU"
    TU_ACK = "ACK for the 2xx reported by TU"
    TRANSPORT_ERROR = "transport error"

    def __str__(self) -> str:
        return self.value


class Timer(Enum):
    """The transaction timers (RFC 3261 Table 4, RFC 6026), by the RFC's letters."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name for the timer
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    RETRANSMIT_2XX = "2xx"  # RFC 3261 13.3.1.4, unnamed there

    def __str__(self) -> str:
        return f"Timer {self.value}"


Trigger = Input | Timer


class Action(Enum):
    """What a transition does besides changing state: the text after "/" in the figures."""

    NONE = "-"
    RESEND_REQUEST = "send request"
    PASS_UP = "response to TU"
    ACK_AND_PASS_UP = "send ACK, response to TU"
    RESEND_ACK = "send ACK"
    TIMEOUT = "inform TU of the timeout"
    TRANSPORT_FAILED = "inform TU of the transport error"
    SEND_RESPONSE = "send response"
    RESEND_RESPONSE = "send last response"
    MARK_CANCELLED = "mark cancelled"
    ACK_TO_TU = "ACK to TU, stop 2xx retransmissions"
    STOP_2XX = "stop 2xx retransmissions"
    ABANDON_2XX = "inform TU of the transport error, stop 2xx retransmissions"


# --------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------

_IC = InviteClientState
_NC = NonInviteClientState
_IS = InviteServerState
_NS = NonInviteServerState

Transition = tuple[State, Action]

TRANSITIONS: dict[Kind, dict[State, dict[Trigger, Transition]]] = {
    # RFC 3261 Figure 5, with RFC 6026 Figure 3's Accepted state.
    Kind.INVITE_CLIENT: {
        _IC.CALLING: {
            Timer.A: (_IC.CALLING, Action.RESEND_REQUEST),
            Timer.B: (_IC.TERMINATED, Action.TIMEOUT),
            Input.TRANSPORT_ERROR: (_IC.TERMINATED, Action.TRANSPORT_FAILED),
            Input.RECV_1XX: (_IC.PROCEEDING, Action.PASS_UP),
            Input.RECV_2XX: (_IC.ACCEPTED, Action.PASS_UP),
            Input.RECV_3XX_6XX: (_IC.COMPLETED, Action.ACK_AND_PASS_UP),
        },
        _IC.PROCEEDING: {
            Input.RECV_1XX: (_IC.PROCEEDING, Action.PASS_UP),
            Input.RECV_2XX: (_IC.ACCEPTED, Action.PASS_UP),
            Input.RECV_3XX_6XX: (_IC.COMPLETED, Action.ACK_AND_PASS_UP),
            # decision: the response could only come back on the failed transport.
            Input.TRANSPORT_ERROR: (_IC.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _IC.COMPLETED: {
            Input.RECV_3XX_6XX: (_IC.COMPLETED, Action.RESEND_ACK),
            Input.RECV_1XX: (_IC.COMPLETED, Action.NONE),  # late, reordered
            Input.RECV_2XX: (_IC.COMPLETED, Action.PASS_UP),  # decision: TU ACKs and BYEs
            Timer.D: (_IC.TERMINATED, Action.NONE),
            Input.TRANSPORT_ERROR: (_IC.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _IC.ACCEPTED: {
            Input.RECV_2XX: (_IC.ACCEPTED, Action.PASS_UP),  # RFC 6026 8.4: TU re-ACKs
            Input.RECV_1XX: (_IC.ACCEPTED, Action.NONE),
            Input.RECV_3XX_6XX: (_IC.ACCEPTED, Action.NONE),
            Input.TRANSPORT_ERROR: (_IC.ACCEPTED, Action.NONE),  # nothing left to send
            Timer.M: (_IC.TERMINATED, Action.NONE),
        },
        _IC.TERMINATED: {
            Input.TRANSPORT_ERROR: (_IC.TERMINATED, Action.NONE),
        },
    },
    # RFC 3261 Figure 6.
    Kind.NON_INVITE_CLIENT: {
        _NC.TRYING: {
            Timer.E: (_NC.TRYING, Action.RESEND_REQUEST),
            Timer.F: (_NC.TERMINATED, Action.TIMEOUT),
            Input.TRANSPORT_ERROR: (_NC.TERMINATED, Action.TRANSPORT_FAILED),
            Input.RECV_1XX: (_NC.PROCEEDING, Action.PASS_UP),
            Input.RECV_2XX: (_NC.COMPLETED, Action.PASS_UP),
            Input.RECV_3XX_6XX: (_NC.COMPLETED, Action.PASS_UP),
        },
        _NC.PROCEEDING: {
            Timer.E: (_NC.PROCEEDING, Action.RESEND_REQUEST),
            Timer.F: (_NC.TERMINATED, Action.TIMEOUT),
            Input.TRANSPORT_ERROR: (_NC.TERMINATED, Action.TRANSPORT_FAILED),
            Input.RECV_1XX: (_NC.PROCEEDING, Action.PASS_UP),
            Input.RECV_2XX: (_NC.COMPLETED, Action.PASS_UP),
            Input.RECV_3XX_6XX: (_NC.COMPLETED, Action.PASS_UP),
        },
        _NC.COMPLETED: {
            Input.RECV_1XX: (_NC.COMPLETED, Action.NONE),
            Input.RECV_2XX: (_NC.COMPLETED, Action.NONE),  # retransmitted final
            Input.RECV_3XX_6XX: (_NC.COMPLETED, Action.NONE),
            Input.TRANSPORT_ERROR: (_NC.COMPLETED, Action.NONE),  # nothing left to send
            Timer.K: (_NC.TERMINATED, Action.NONE),
        },
        _NC.TERMINATED: {
            Input.TRANSPORT_ERROR: (_NC.TERMINATED, Action.NONE),
        },
    },
    # RFC 3261 Figure 7, with RFC 6026 Figure 5's Accepted state.
    Kind.INVITE_SERVER: {
        _IS.PROCEEDING: {
            Input.RECV_REQUEST: (_IS.PROCEEDING, Action.RESEND_RESPONSE),
            Input.RECV_ACK: (_IS.PROCEEDING, Action.NONE),  # no final response to ACK yet
            Input.RECV_CANCEL: (_IS.PROCEEDING, Action.MARK_CANCELLED),
            Input.SEND_1XX: (_IS.PROCEEDING, Action.SEND_RESPONSE),
            Input.SEND_2XX: (_IS.ACCEPTED, Action.SEND_RESPONSE),
            Input.SEND_3XX_6XX: (_IS.COMPLETED, Action.SEND_RESPONSE),
            Input.TRANSPORT_ERROR: (_IS.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _IS.COMPLETED: {
            Input.RECV_REQUEST: (_IS.COMPLETED, Action.RESEND_RESPONSE),
            Input.RECV_ACK: (_IS.CONFIRMED, Action.NONE),
            Input.RECV_CANCEL: (_IS.COMPLETED, Action.NONE),  # too late to cancel
            Timer.G: (_IS.COMPLETED, Action.RESEND_RESPONSE),
            Timer.H: (_IS.TERMINATED, Action.TIMEOUT),
            Input.TRANSPORT_ERROR: (_IS.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _IS.CONFIRMED: {
            Input.RECV_REQUEST: (_IS.CONFIRMED, Action.NONE),
            Input.RECV_ACK: (_IS.CONFIRMED, Action.NONE),  # absorbs ACK retransmissions
            Input.RECV_CANCEL: (_IS.CONFIRMED, Action.NONE),
            Input.TRANSPORT_ERROR: (_IS.CONFIRMED, Action.NONE),  # nothing left to send
            Timer.I: (_IS.TERMINATED, Action.NONE),
        },
        _IS.ACCEPTED: {
            Input.RECV_REQUEST: (_IS.ACCEPTED, Action.NONE),  # RFC 6026 7.1: absorbed
            Input.RECV_ACK: (_IS.ACCEPTED, Action.ACK_TO_TU),  # RFC 6026 7.1
            Input.RECV_CANCEL: (_IS.ACCEPTED, Action.NONE),  # too late to cancel
            Input.SEND_2XX: (_IS.ACCEPTED, Action.SEND_RESPONSE),
            Input.TU_ACK: (_IS.ACCEPTED, Action.STOP_2XX),  # decision
            Timer.RETRANSMIT_2XX: (_IS.ACCEPTED, Action.RESEND_RESPONSE),  # decision
            Timer.H: (_IS.ACCEPTED, Action.TIMEOUT),  # decision: RFC 3261 13.3.1.4
            Timer.L: (_IS.TERMINATED, Action.NONE),
            Input.TRANSPORT_ERROR: (_IS.ACCEPTED, Action.ABANDON_2XX),  # decision
        },
        _IS.TERMINATED: {
            Input.SEND_1XX: (_IS.TERMINATED, Action.NONE),
            Input.SEND_2XX: (_IS.TERMINATED, Action.NONE),
            Input.SEND_3XX_6XX: (_IS.TERMINATED, Action.NONE),
            Input.TU_ACK: (_IS.TERMINATED, Action.NONE),
            Input.TRANSPORT_ERROR: (_IS.TERMINATED, Action.NONE),
        },
    },
    # RFC 3261 Figure 8.
    Kind.NON_INVITE_SERVER: {
        _NS.TRYING: {
            Input.RECV_REQUEST: (_NS.TRYING, Action.NONE),  # 17.2.2: discarded
            Input.SEND_1XX: (_NS.PROCEEDING, Action.SEND_RESPONSE),
            Input.SEND_2XX: (_NS.COMPLETED, Action.SEND_RESPONSE),
            Input.SEND_3XX_6XX: (_NS.COMPLETED, Action.SEND_RESPONSE),
            Input.TRANSPORT_ERROR: (_NS.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _NS.PROCEEDING: {
            Input.RECV_REQUEST: (_NS.PROCEEDING, Action.RESEND_RESPONSE),
            Input.SEND_1XX: (_NS.PROCEEDING, Action.SEND_RESPONSE),
            Input.SEND_2XX: (_NS.COMPLETED, Action.SEND_RESPONSE),
            Input.SEND_3XX_6XX: (_NS.COMPLETED, Action.SEND_RESPONSE),
            Input.TRANSPORT_ERROR: (_NS.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _NS.COMPLETED: {
            Input.RECV_REQUEST: (_NS.COMPLETED, Action.RESEND_RESPONSE),
            Timer.J: (_NS.TERMINATED, Action.NONE),
            Input.TRANSPORT_ERROR: (_NS.TERMINATED, Action.TRANSPORT_FAILED),
        },
        _NS.TERMINATED: {
            Input.SEND_1XX: (_NS.TERMINATED, Action.NONE),
            Input.SEND_2XX: (_NS.TERMINATED, Action.NONE),
            Input.SEND_3XX_6XX: (_NS.TERMINATED, Action.NONE),
            Input.TRANSPORT_ERROR: (_NS.TERMINATED, Action.NONE),
        },
    },
}

INITIAL_STATE: dict[Kind, State] = {
    Kind.INVITE_CLIENT: _IC.CALLING,  # RFC 3261 17.1.1.2
    Kind.NON_INVITE_CLIENT: _NC.TRYING,  # RFC 3261 17.1.2.2
    Kind.INVITE_SERVER: _IS.PROCEEDING,  # RFC 3261 17.2.1
    Kind.NON_INVITE_SERVER: _NS.TRYING,  # RFC 3261 17.2.2
}

TERMINATED: frozenset[State] = frozenset(
    (_IC.TERMINATED, _NC.TERMINATED, _IS.TERMINATED, _NS.TERMINATED)
)

# Timers started on entering a state; a timer that does not apply to the transport
# (A, E, G over reliable ones) is not started. Entering a state stops every other timer.
ENTRY_TIMERS: dict[Kind, dict[State, tuple[Timer, ...]]] = {
    Kind.INVITE_CLIENT: {
        _IC.CALLING: (Timer.A, Timer.B),  # RFC 3261 17.1.1.2
        _IC.COMPLETED: (Timer.D,),  # RFC 3261 17.1.1.2
        _IC.ACCEPTED: (Timer.M,),  # RFC 6026 7.2
    },
    Kind.NON_INVITE_CLIENT: {
        _NC.TRYING: (Timer.E, Timer.F),  # RFC 3261 17.1.2.2
        _NC.COMPLETED: (Timer.K,),  # RFC 3261 17.1.2.2
    },
    Kind.INVITE_SERVER: {
        _IS.COMPLETED: (Timer.G, Timer.H),  # RFC 3261 17.2.1
        _IS.CONFIRMED: (Timer.I,),  # RFC 3261 17.2.1
        # Timer H before L: when both expire, the TU hears of the missing ACK first.
        _IS.ACCEPTED: (Timer.RETRANSMIT_2XX, Timer.H, Timer.L),  # 13.3.1.4, RFC 6026 7.1
    },
    Kind.NON_INVITE_SERVER: {
        _NS.COMPLETED: (Timer.J,),  # RFC 3261 17.2.2
    },
}

# Timers that keep running into a state. RFC 3261 17.1.2.2: Timer E keeps its schedule
# into Proceeding (where it then re-arms at T2) and Timer F still bounds the transaction.
CARRIED_TIMERS: dict[tuple[Kind, State], frozenset[Timer]] = {
    (Kind.NON_INVITE_CLIENT, _NC.PROCEEDING): frozenset((Timer.E, Timer.F)),
}

# Timers that re-arm themselves when their transition keeps the state.
RETRANSMIT_TIMERS = frozenset((Timer.A, Timer.E, Timer.G, Timer.RETRANSMIT_2XX))

# What the network (and the transport) can deliver to each machine: every live state of
# the machine has an entry for each, so no peer can cause a TransitionError.
NETWORK_INPUTS: dict[Kind, frozenset[Input]] = {
    Kind.INVITE_CLIENT: frozenset(
        (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_3XX_6XX, Input.TRANSPORT_ERROR)
    ),
    Kind.NON_INVITE_CLIENT: frozenset(
        (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_3XX_6XX, Input.TRANSPORT_ERROR)
    ),
    Kind.INVITE_SERVER: frozenset(
        (Input.RECV_REQUEST, Input.RECV_ACK, Input.RECV_CANCEL, Input.TRANSPORT_ERROR)
    ),
    Kind.NON_INVITE_SERVER: frozenset((Input.RECV_REQUEST, Input.TRANSPORT_ERROR)),
}


class TransitionError(RuntimeError):
    """A trigger the transition table has no entry for: a bug in the caller or the TU."""

    def __init__(self, kind: Kind, state: State, trigger: Trigger) -> None:
        super().__init__(
            f"{kind.value} transaction in state {state.value} has no transition for {trigger}"
        )
        self.kind = kind
        self.state = state
        self.trigger = trigger


# --------------------------------------------------------------------------------------
# Outputs: messages to send, events for the TU, what became of a received request
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transmit:
    """Send ``message`` to ``peer``. ``transaction`` is the one to report a failure to
    (``handle_transport_error``)."""

    message: Request | Response
    peer: Peer
    transaction: Transaction | None = None


@dataclass(frozen=True)
class ResponseReceived:
    """A response for the TU: each provisional, the first final, and every 2xx to an
    INVITE (RFC 6026 8.4: the TU acknowledges each)."""

    transaction: ClientTransaction
    response: Response


@dataclass(frozen=True)
class TransactionTimedOut:
    """Timer B or F (no final response: the TU acts as on a 408, RFC 3261 8.1.3.1) or
    Timer H (no ACK for our final response; for a 2xx the TU should send BYE, 13.3.1.4)."""

    transaction: Transaction
    timer: str


@dataclass(frozen=True)
class TransportFailed:
    """The transport reported an error for this transaction (RFC 3261 17.1.4, 17.2.4)."""

    transaction: Transaction


@dataclass(frozen=True)
class TransactionTerminated:
    """The transaction entered Terminated and left the layer."""

    transaction: Transaction


TransactionEvent = ResponseReceived | TransactionTimedOut | TransportFailed | TransactionTerminated


@dataclass(frozen=True)
class New:
    """A new request for the TU. For an INVITE, a 100 Trying is already queued when the
    layer was built with ``send_trying`` (RFC 3261 17.2.1)."""

    transaction: ServerTransaction


@dataclass(frozen=True)
class Absorbed:
    """A retransmission (the last response re-sent where the RFC says so), or the ACK of
    a non-2xx final response: nothing for the TU."""

    transaction: ServerTransaction


@dataclass(frozen=True)
class StrayAck:
    """An ACK for the TU: the ACK for a 2xx has its own branch and matches no
    transaction (RFC 3261 17.2.3, 13.3.1.4). ``transaction`` is the Accepted INVITE
    transaction when the ACK matched one anyway (an RFC 2543 peer, or a peer reusing the
    INVITE's branch, RFC 6026 7.1); its 2xx retransmissions have stopped."""

    transaction: ServerTransaction | None = None


@dataclass(frozen=True)
class Overloaded:
    """``max_transactions`` reached: answer 503 statelessly (RFC 3261 21.5.4)."""


RequestDisposition = New | Absorbed | StrayAck | Overloaded


# --------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------


class Transaction:
    """What client and server transactions share. Only the layer changes them."""

    __slots__ = (
        "_intervals",
        "_state",
        "_timers",
        "key",
        "kind",
        "last_response",
        "peer",
        "reliable",
        "request",
    )

    def __init__(
        self, kind: Kind, key: TransactionKey, request: Request, peer: Peer, reliable: bool
    ) -> None:
        self.kind = kind
        self.key = key
        self.request = request
        self.peer = peer
        self.reliable = reliable
        self.last_response: Response | None = None
        self._state: State = INITIAL_STATE[kind]
        self._timers: dict[Timer, tuple[float, int]] = {}  # timer -> (deadline, heap seq)
        self._intervals: dict[Timer, float] = {}  # retransmission timer -> current interval

    @property
    def state(self) -> State:
        return self._state

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def terminated(self) -> bool:
        return self._state in TERMINATED

    @property
    def timers(self) -> dict[str, float]:
        """Pending timers and their deadlines, e.g. ``{"A": 1.5, "B": 32.0}``."""
        return {timer.value: deadline for timer, (deadline, _) in self._timers.items()}

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.kind.value} {self.method} {self._state.value}"
            f" key={self.key!r}>"
        )


class ClientTransaction(Transaction):
    """A request we sent (RFC 3261 17.1). ``last_response`` is the last one passed up."""

    __slots__ = ("ack",)

    def __init__(
        self, kind: Kind, key: TransactionKey, request: Request, peer: Peer, reliable: bool
    ) -> None:
        super().__init__(kind, key, request, peer, reliable)
        self.ack: Request | None = None  # the ACK built for a non-2xx final (17.1.1.3)


class ServerTransaction(Transaction):
    """A request we received (RFC 3261 17.2). ``last_response`` is the last one sent."""

    __slots__ = ("cancelled",)

    def __init__(
        self, kind: Kind, key: TransactionKey, request: Request, peer: Peer, reliable: bool
    ) -> None:
        super().__init__(kind, key, request, peer, reliable)
        self.cancelled = False  # a CANCEL arrived before the final response (RFC 3261 9.2)

    @property
    def finalised(self) -> bool:
        """A final response has been sent."""
        return self.last_response is not None and self.last_response.status >= 200


# --------------------------------------------------------------------------------------
# Matching (RFC 3261 17.1.3, 17.2.3, 9.2) and the ACK for a non-2xx final (17.1.1.3)
# --------------------------------------------------------------------------------------


def _branch_key(via: Via, method: str) -> TransactionKey | None:
    """RFC 3261 17.2.3: branch, sent-by and method, when the branch has the magic cookie."""
    branch = via.branch or ""
    if not branch.startswith(BRANCH_COOKIE) or len(branch) == len(BRANCH_COOKIE):
        return None
    host, port = via.sent_by
    return ("rfc3261", branch, host.lower(), port, method)


def _rfc2543_key(request: Request, via: Via, method: str, to_tag: str | None) -> TransactionKey:
    """RFC 3261 17.2.3 for RFC 2543 peers: Request-URI, To tag, From tag, Call-ID, CSeq
    number (the method is given) and top Via. The Via is compared without the received
    and rport parameters the transport adds on arrival (RFC 3261 18.2.1, RFC 3581)."""
    number, _ = request.cseq
    host, port = via.sent_by
    top_via = (via.transport, host.lower(), port, via.branch)
    return ("rfc2543", request.uri.strip(), to_tag, request.from_.tag, request.call_id, number,
            method, top_via)  # fmt: skip


def server_key(request: Request, method: str | None = None) -> TransactionKey:
    """The key of the server transaction a request (not an ACK) creates or retransmits;
    ``method`` overrides the request's, to find the INVITE a CANCEL targets."""
    via = request.top_via
    method = method or request.method
    key = _branch_key(via, method)
    return key if key is not None else _rfc2543_key(request, via, method, request.to.tag)


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response to ``invite`` (RFC 3261 17.1.1.3): same
    Request-URI, Call-ID, From and CSeq number, the INVITE's top Via only, the To of the
    response (with its tag) and the INVITE's Route headers."""
    headers = Headers()
    headers.add("Via", invite.headers.get_list("Via")[0])
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")  # RFC 3261 8.1.1.6
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    number, _ = invite.cseq
    headers.add("CSeq", f"{number} ACK")
    return Request(method="ACK", uri=invite.uri, headers=headers)


def _response_input(status: int) -> Input:
    if 100 <= status < 200:
        return Input.RECV_1XX
    if 200 <= status < 300:
        return Input.RECV_2XX
    return Input.RECV_3XX_6XX


_SEND_INPUT = {
    Input.RECV_1XX: Input.SEND_1XX,
    Input.RECV_2XX: Input.SEND_2XX,
    Input.RECV_3XX_6XX: Input.SEND_3XX_6XX,
}

_HeapEntry = tuple[float, int, Transaction, Timer]


# --------------------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------------------

DEFAULT_TIMERS = TimerConfig()


class TransactionLayer:
    """All transactions of one SIP endpoint: matching, state machines and timers.

    Getters: ``len()``, :meth:`counts`, :attr:`server_transactions`,
    :attr:`client_transactions`, :meth:`find_invite_for_cancel`, :meth:`next_deadline`.
    Inputs: ``handle_request``, ``handle_response``, ``handle_timeouts``,
    ``handle_transport_error``. Commands: ``send_request``, ``send_response``,
    ``ack_received``. Outputs: ``poll_transmit``, ``poll_events``.
    """

    def __init__(
        self,
        timers: TimerConfig = DEFAULT_TIMERS,
        *,
        max_transactions: int = 10_000,
        send_trying: bool = True,
    ) -> None:
        self.timers = timers
        self.max_transactions = max_transactions
        self.send_trying = send_trying
        self._servers: dict[TransactionKey, ServerTransaction] = {}
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        self._heap: list[_HeapEntry] = []
        self._seq = itertools.count()
        self._pending_timers = 0
        self._transmits: list[Transmit] = []
        self._events: list[TransactionEvent] = []

    # ---- getters ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._servers) + len(self._clients)

    def counts(self) -> Counter[tuple[Kind, State]]:
        """Live transactions per (kind, state), for metrics and tests."""
        all_transactions: list[Transaction] = [*self._servers.values(), *self._clients.values()]
        return Counter((tx.kind, tx.state) for tx in all_transactions)

    @property
    def server_transactions(self) -> list[ServerTransaction]:
        return list(self._servers.values())

    @property
    def client_transactions(self) -> list[ClientTransaction]:
        return list(self._clients.values())

    def find_invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL cancels (RFC 3261 9.2: matched like a
        retransmission of the INVITE, the method aside)."""
        tx = self._servers.get(server_key(cancel, "INVITE"))
        return tx if tx is not None and tx.kind is Kind.INVITE_SERVER else None

    def is_retransmission(self, request: Request) -> bool:
        """Whether ``request`` (not an ACK) repeats one a live server transaction
        already took (RFC 3261 17.2.3 matching)."""
        return server_key(request) in self._servers

    def next_deadline(self) -> float | None:
        """When ``handle_timeouts`` must next run; None when no timer is pending."""
        heap = self._heap
        while heap:
            _, seq, tx, timer = heap[0]
            entry = tx._timers.get(timer)
            if entry is not None and entry[1] == seq:
                return heap[0][0]
            heapq.heappop(heap)  # cancelled or re-armed since: lazy invalidation
        return None

    # ---- outputs ---------------------------------------------------------------------

    def poll_transmit(self) -> list[Transmit]:
        out, self._transmits = self._transmits, []
        return out

    def poll_events(self) -> list[TransactionEvent]:
        out, self._events = self._events, []
        return out

    # ---- inputs ----------------------------------------------------------------------

    def handle_request(
        self, request: Request, peer: Peer, now: float, *, reliable: bool
    ) -> RequestDisposition:
        """A request from the network. It must have passed ``request_problem`` (Via,
        CSeq, From, To and Call-ID parse); a malformed one raises ``SipSyntaxError``."""
        self._expire(now)
        disposition = self._receive_request(request, peer, now, reliable)
        self._expire(now)
        return disposition

    def handle_response(self, response: Response, now: float) -> bool:
        """A response from the network, matched by top Via branch and CSeq method
        (RFC 3261 17.1.3). False when it matches no transaction: the caller passes a
        2xx to INVITE to the TU (a retransmission after Timer M) and drops the rest."""
        self._expire(now)
        try:
            branch = response.top_via.branch
            _, method = response.cseq
        except SipSyntaxError:
            return False
        tx = self._clients.get(("client", branch, method))
        if tx is None:
            return False
        self._apply(tx, _response_input(response.status), now, response)
        self._expire(now)
        return True

    def handle_timeouts(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        self._expire(now)

    def handle_transport_error(self, transaction: Transaction, now: float) -> None:
        """Sending for ``transaction`` failed (RFC 3261 17.1.4, 17.2.4)."""
        self._expire(now)
        self._apply(transaction, Input.TRANSPORT_ERROR, now)
        self._expire(now)

    # ---- commands --------------------------------------------------------------------

    def send_request(
        self, request: Request, peer: Peer, now: float, *, reliable: bool
    ) -> ClientTransaction:
        """Start a client transaction and queue ``request``. It must carry a top Via with
        a branch (RFC 3261 8.1.1.7). ACK is never a transaction: send it directly."""
        if request.method == "ACK":
            raise ValueError("ACK is not sent through a transaction (RFC 3261 17.1.1.3)")
        branch = request.top_via.branch
        if not branch:
            raise ValueError("the request's top Via has no branch (RFC 3261 8.1.1.7)")
        key: TransactionKey = ("client", branch, request.method)
        if key in self._clients:
            raise ValueError(f"a {request.method} client transaction with branch {branch} exists")
        self._expire(now)
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        tx = ClientTransaction(kind, key, request, peer, reliable)
        self._clients[key] = tx
        self._transmit(tx, request)  # "Request from TU / send request" into the first state
        self._enter(tx, tx.state, now)
        self._expire(now)
        return tx

    def send_response(self, transaction: ServerTransaction, response: Response, now: float) -> None:
        """Send the TU's response on a server transaction. On a terminated transaction
        nothing is sent; a response the state forbids raises ``TransitionError``."""
        if not isinstance(transaction, ServerTransaction):
            raise TypeError(f"responses are sent on server transactions, not {transaction!r}")
        if not 100 <= response.status <= 699:
            raise ValueError(f"bad status code {response.status}")
        self._expire(now)
        self._apply(transaction, _SEND_INPUT[_response_input(response.status)], now, response)
        self._expire(now)

    def ack_received(self, transaction: ServerTransaction, now: float) -> None:
        """The TU matched the ACK for this INVITE transaction's 2xx (by dialog, RFC 3261
        13.3.1.4): stop retransmitting the 2xx."""
        self._expire(now)
        self._apply(transaction, Input.TU_ACK, now)
        self._expire(now)

    # ---- internals -------------------------------------------------------------------

    def _receive_request(
        self, request: Request, peer: Peer, now: float, reliable: bool
    ) -> RequestDisposition:
        if request.method == "ACK":
            invite_tx = self._match_ack(request)
            if invite_tx is None:
                return StrayAck()
            action = self._apply(invite_tx, Input.RECV_ACK, now)
            return StrayAck(invite_tx) if action is Action.ACK_TO_TU else Absorbed(invite_tx)
        key = server_key(request)
        tx = self._servers.get(key)
        if tx is not None:
            self._apply(tx, Input.RECV_REQUEST, now)
            return Absorbed(tx)
        if len(self) >= self.max_transactions:
            return Overloaded()
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        tx = ServerTransaction(kind, key, request, peer, reliable)
        self._servers[key] = tx
        self._enter(tx, tx.state, now)
        if kind is Kind.INVITE_SERVER and self.send_trying:
            self._apply(tx, Input.SEND_1XX, now, make_response(request, 100))  # RFC 3261 17.2.1
        if request.method == "CANCEL":
            invite_tx = self.find_invite_for_cancel(request)
            if invite_tx is not None:
                self._apply(invite_tx, Input.RECV_CANCEL, now)
        return New(tx)

    def _match_ack(self, ack: Request) -> ServerTransaction | None:
        """RFC 3261 17.2.3: the INVITE server transaction an ACK belongs to."""
        via = ack.top_via
        key = _branch_key(via, "INVITE")
        if key is not None:
            tx = self._servers.get(key)
            return tx if tx is not None and tx.kind is Kind.INVITE_SERVER else None
        # RFC 2543: the ACK's To tag is the one of our response, not of the INVITE.
        to_tag = ack.to.tag
        for invite_to_tag in dict.fromkeys((None, to_tag)):
            tx = self._servers.get(_rfc2543_key(ack, via, "INVITE", invite_to_tag))
            if (
                tx is not None
                and tx.kind is Kind.INVITE_SERVER
                and tx.last_response is not None
                and tx.last_response.to.tag == to_tag
            ):
                return tx
        return None

    def _apply(
        self, tx: Transaction, trigger: Trigger, now: float, response: Response | None = None
    ) -> Action:
        """The one place a transaction changes state."""
        try:
            new_state, action = TRANSITIONS[tx.kind][tx.state][trigger]
        except KeyError:
            raise TransitionError(tx.kind, tx.state, trigger) from None
        self._act(tx, action, trigger, response)
        if new_state is not tx.state:
            self._enter(tx, new_state, now)
        return action

    def _act(
        self, tx: Transaction, action: Action, trigger: Trigger, response: Response | None
    ) -> None:
        if action is Action.NONE:
            return
        if action is Action.RESEND_REQUEST:
            self._transmit(tx, tx.request)
        elif action in (Action.PASS_UP, Action.ACK_AND_PASS_UP):
            assert isinstance(tx, ClientTransaction) and response is not None
            tx.last_response = response
            if action is Action.ACK_AND_PASS_UP:
                tx.ack = build_ack(tx.request, response)
                self._transmit(tx, tx.ack)
            self._events.append(ResponseReceived(tx, response))
        elif action is Action.RESEND_ACK:
            assert isinstance(tx, ClientTransaction) and tx.ack is not None
            self._transmit(tx, tx.ack)
        elif action is Action.TIMEOUT:
            assert isinstance(trigger, Timer)
            self._events.append(TransactionTimedOut(tx, trigger.value))
        elif action is Action.TRANSPORT_FAILED:
            self._events.append(TransportFailed(tx))
        elif action is Action.SEND_RESPONSE:
            assert response is not None
            tx.last_response = response
            self._transmit(tx, response)
        elif action is Action.RESEND_RESPONSE:
            if tx.last_response is not None:
                self._transmit(tx, tx.last_response)
        elif action is Action.MARK_CANCELLED:
            assert isinstance(tx, ServerTransaction)
            tx.cancelled = True
        elif action in (Action.ACK_TO_TU, Action.STOP_2XX, Action.ABANDON_2XX):
            self._cancel(tx, Timer.RETRANSMIT_2XX)
            self._cancel(tx, Timer.H)
            if action is Action.ABANDON_2XX:
                self._events.append(TransportFailed(tx))
        else:  # pragma: no cover - every Action is handled above
            raise AssertionError(action)

    def _enter(self, tx: Transaction, state: State, now: float) -> None:
        """Enter ``state``: stop the timers it does not carry, start its own."""
        tx._state = state
        carried = CARRIED_TIMERS.get((tx.kind, state), frozenset())
        for timer in [t for t in tx._timers if t not in carried]:
            self._cancel(tx, timer)
        for timer in ENTRY_TIMERS[tx.kind].get(state, ()):
            duration = self._first_interval(timer, tx.reliable)
            if duration is not None:
                self._arm(tx, timer, now, duration)
        if state in TERMINATED:
            if isinstance(tx, ServerTransaction):
                if self._servers.get(tx.key) is tx:
                    del self._servers[tx.key]
            elif isinstance(tx, ClientTransaction) and self._clients.get(tx.key) is tx:
                del self._clients[tx.key]
            self._events.append(TransactionTerminated(tx))

    def _first_interval(self, timer: Timer, reliable: bool) -> float | None:
        t = self.timers
        durations: dict[Timer, float | None] = {
            Timer.A: t.a(reliable=reliable),
            Timer.B: t.b(),
            Timer.D: t.d(reliable=reliable),
            Timer.E: t.e(reliable=reliable),
            Timer.F: t.f(),
            Timer.G: t.g(reliable=reliable),
            Timer.H: t.h(),
            Timer.I: t.i(reliable=reliable),
            Timer.J: t.j(reliable=reliable),
            Timer.K: t.k(reliable=reliable),
            Timer.L: t.l(),
            Timer.M: t.m(),
            Timer.RETRANSMIT_2XX: t.retransmit_2xx(),
        }
        return durations[timer]

    def _next_interval(self, tx: Transaction, timer: Timer) -> float:
        previous = tx._intervals[timer]
        if timer is Timer.A:
            return self.timers.next_a(previous)  # RFC 3261 17.1.1.2: doubles, no cap
        if timer is Timer.E and tx.state is _NC.PROCEEDING:
            return self.timers.t2  # RFC 3261 17.1.2.2: T2 once Proceeding
        return self.timers.backoff(previous)  # E in Trying, G, 2xx: doubles up to T2

    def _arm(self, tx: Transaction, timer: Timer, now: float, duration: float) -> None:
        if timer not in tx._timers:
            self._pending_timers += 1
        seq = next(self._seq)
        deadline = now + duration
        tx._timers[timer] = (deadline, seq)
        tx._intervals[timer] = duration
        heapq.heappush(self._heap, (deadline, seq, tx, timer))
        if len(self._heap) > 1024 and len(self._heap) > 4 * self._pending_timers:
            self._compact()

    def _cancel(self, tx: Transaction, timer: Timer) -> None:
        if tx._timers.pop(timer, None) is not None:
            self._pending_timers -= 1

    def _compact(self) -> None:
        """Drop the heap's stale entries (cancelled timers) in one pass."""
        # In place: _expire may be iterating over this list.
        self._heap[:] = [
            entry for entry in self._heap if entry[2]._timers.get(entry[3]) == entry[:2]
        ]
        heapq.heapify(self._heap)

    def _expire(self, now: float) -> None:
        """Fire the timers due at ``now`` in deadline order, including those the firing
        re-arms or starts at or before ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, seq, tx, timer = heapq.heappop(heap)
            entry = tx._timers.get(timer)
            if entry is None or entry[1] != seq:
                continue  # cancelled or re-armed since
            self._cancel(tx, timer)
            state = tx.state
            self._apply(tx, timer, deadline)
            if timer in RETRANSMIT_TIMERS and tx.state is state:
                # Re-armed from its deadline, so the schedule stays exact when we run late.
                self._arm(tx, timer, deadline, self._next_interval(tx, timer))

    def _transmit(self, tx: Transaction, message: Request | Response) -> None:
        self._transmits.append(Transmit(message, tx.peer, tx))
