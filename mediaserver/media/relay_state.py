"""What a leg's relay carries between the main process and a relay worker.

A bridge that only relays (same codec or a G.711 byte table, plain RTP, the
peer latched, nothing decoding, playing, forking or detecting) is handed to a
relay worker process (media/relay_workers.py) with one :class:`RelayEnd` per
leg: where its packets come from and go, the header it writes, its counters
and the packet-driven part of its RTP statistics. The worker moves them
forward packet by packet and gives them back, so the leg resumes in the main
process exactly where the worker left it: same sequence numbers, same
timestamps, same RFC 3550 figures.

The control socket's messages are pickled tuples (both ends are this
program, over a private socketpair), listed at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Bounced", "RelayEnd"]


@dataclass(slots=True)
class RelayEnd:
    """One leg of a relayed bridge, as the worker needs it (its socket goes along)."""

    target: int  # the end (0 or 1 of the group) this end's packets go out of
    peer: tuple[str, int] | None  # the latched source; None: the SDP's address, on sight
    expected: tuple[str, int] | None  # the SDP's address (latched by its first packet)
    remote: tuple[str, int]  # where this end sends
    payload_type: int  # the audio payload type received and sent (RFC 3551)
    clock_rate: int  # of the RTP timestamps (the receiver's jitter, RFC 3550 A.8)
    remote_ssrc: int | None  # the peer's source (None until latched)
    ssrc: int  # ours, written on what we send
    sequence: int  # the next sequence number we send
    timestamp: int  # the next RTP timestamp we send
    marker: bool  # the next packet we send starts a talkspurt (RFC 3551 4.1)
    table: bytes | None  # translation to the target's codec (PCMU <-> PCMA), None: same
    packets_in: int
    bytes_in: int
    packets_out: int
    transcoded: int
    reception: tuple[object, ...]  # ReceiverStats.reception()
    sending: tuple[int, int, int | None, float | None]  # SenderStats.sending()
    stats_bytes_in: int  # LegStats.bytes_in


# The control socket's messages (pickled tuples):
#   main -> worker: ("adopt", group id, [RelayEnd, ...]) with the sockets as SCM_RIGHTS,
#                   ("release", group id);
#   worker -> main: ("released", group id, [RelayEnd, ...], [Bounced, ...]),
#                   ("synced", [(group id, [RelayEnd, ...]), ...]) every second.
Bounced = tuple[int, bytes, tuple[str, int]]  # end index, datagram, source: for the main process
