"""The SIP transaction timers: RFC 3261 Table 4 (section 17 and appendix A) and RFC 6026.

Every timer of the transaction layer is derived here from three base values:

- **T1** (500 ms): the round-trip time estimate; the first retransmission interval.
- **T2** (4 s): the longest retransmission interval for non-INVITE requests and INVITE
  responses.
- **T4** (5 s): the longest time a message can stay in the network.

A timer that does not run on a transport returns ``None`` (the retransmission timers A,
E and G over reliable transports, RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1). A timer that
runs but lasts zero seconds over reliable transports returns ``0.0`` (D, I, J, K): the
transaction moves on at once because a reliable transport never duplicates messages.

``reliable`` means TCP, TLS, SCTP or WebSocket; UDP is the unreliable transport.

=====  =====================  =====================================================
Timer  Value                  Meaning
=====  =====================  =====================================================
A      T1, doubling           INVITE request retransmit interval, UDP only
B      64*T1                  INVITE transaction timeout
D      >= 32 s UDP, 0 reliable Wait time for INVITE response retransmits
E      T1, doubling to T2     non-INVITE request retransmit interval, UDP only
F      64*T1                  non-INVITE transaction timeout
G      T1, doubling to T2     INVITE response retransmit interval, UDP only
H      64*T1                  Wait time for ACK receipt
I      T4 UDP, 0 reliable     Wait time for ACK retransmits
J      64*T1 UDP, 0 reliable  Wait time for non-INVITE request retransmits
K      T4 UDP, 0 reliable     Wait time for non-INVITE response retransmits
L      64*T1                  Wait time for accepted INVITE request retransmits
M      64*T1                  Wait time for retransmission of 2xx to INVITE
=====  =====================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimerConfig:
    """T1, T2 and T4 (RFC 3261 17.1.1.1 and Table 4) and every timer derived from them.

    The defaults are the RFC's. Tests may shrink them, keeping ``t1 <= t2``.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"TimerConfig needs 0 < t1 <= t2, got t1={self.t1} t2={self.t2}")
        if self.t4 <= 0:
            raise ValueError(f"TimerConfig needs t4 > 0, got t4={self.t4}")

    def a(self, *, reliable: bool) -> float | None:
        """Timer A: first INVITE retransmission after T1, then doubling without a cap
        (:meth:`next_a`); UDP only (RFC 3261 17.1.1.2)."""
        return None if reliable else self.t1

    def next_a(self, previous: float) -> float:
        """Timer A after it fired: twice its previous value (RFC 3261 17.1.1.2)."""
        return 2 * previous

    def b(self) -> float:
        """Timer B: the INVITE client transaction timeout, 64*T1 (RFC 3261 17.1.1.2)."""
        return 64 * self.t1

    def d(self, *, reliable: bool) -> float:
        """Timer D: how long the INVITE client transaction absorbs retransmitted non-2xx
        finals, at least 32 s over UDP and zero over reliable transports (RFC 3261
        17.1.1.2). It is never shorter than the server's Timer H, 64*T1, which bounds those
        retransmissions when T1 is raised."""
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    def e(self, *, reliable: bool) -> float | None:
        """Timer E: first non-INVITE retransmission after T1, then doubling up to T2, and
        T2 from the Proceeding state on (:meth:`backoff`); UDP only (RFC 3261 17.1.2.2)."""
        return None if reliable else self.t1

    def f(self) -> float:
        """Timer F: the non-INVITE client transaction timeout, 64*T1 (RFC 3261 17.1.2.2)."""
        return 64 * self.t1

    def g(self, *, reliable: bool) -> float | None:
        """Timer G: first retransmission of a non-2xx final to INVITE after T1, then
        doubling up to T2 (:meth:`backoff`); UDP only (RFC 3261 17.2.1)."""
        return None if reliable else self.t1

    def h(self) -> float:
        """Timer H: how long the INVITE server transaction waits for the ACK, 64*T1
        (RFC 3261 17.2.1; the same bound applies to the ACK for a 2xx, 13.3.1.4)."""
        return 64 * self.t1

    def i(self, *, reliable: bool) -> float:
        """Timer I: how long the Confirmed state absorbs ACK retransmissions, T4 over UDP
        and zero over reliable transports (RFC 3261 17.2.1)."""
        return 0.0 if reliable else self.t4

    def j(self, *, reliable: bool) -> float:
        """Timer J: how long a non-INVITE server transaction absorbs request
        retransmissions after its final response, 64*T1 over UDP and zero over reliable
        transports (RFC 3261 17.2.2)."""
        return 0.0 if reliable else 64 * self.t1

    def k(self, *, reliable: bool) -> float:
        """Timer K: how long a non-INVITE client transaction absorbs response
        retransmissions, T4 over UDP and zero over reliable transports (RFC 3261
        17.1.2.2)."""
        return 0.0 if reliable else self.t4

    def l(self) -> float:  # noqa: E743 - the RFC's name for the timer
        """Timer L: how long an INVITE server transaction stays Accepted after its 2xx,
        absorbing INVITE retransmissions, 64*T1 on every transport (RFC 6026 7.1, 8.7)."""
        return 64 * self.t1

    def m(self) -> float:
        """Timer M: how long an INVITE client transaction stays Accepted after a 2xx,
        passing further 2xx (retransmitted or forked) to the TU, 64*T1 on every transport
        (RFC 6026 7.2, 8.4)."""
        return 64 * self.t1

    def retransmit_2xx(self) -> float:
        """First retransmission of a 2xx to INVITE after T1, then doubling up to T2
        (:meth:`backoff`), on every transport: the 2xx travels end to end and may cross
        UDP hops beyond a reliable first hop (RFC 3261 13.3.1.4)."""
        return self.t1

    def backoff(self, previous: float) -> float:
        """The next interval of Timers E (in Trying), G and the 2xx retransmission:
        ``min(2 * previous, T2)`` (RFC 3261 17.1.2.2, 17.2.1, 13.3.1.4)."""
        return min(2 * previous, self.t2)
