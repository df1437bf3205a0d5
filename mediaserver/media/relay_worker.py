"""A relay worker: a process of its own that relays the pure bridges handed to it.

``python -m mediaserver.media.relay_worker FD``: FD is its end of a private
socketpair with the main process (media/relay_workers.py), which sends
``adopt`` with a group's :class:`~mediaserver.media.relay_state.RelayEnd`
states and duplicates of their sockets, and ``release`` to take a group back.

The worker relays as the main process's fast path does (RtpLeg.
datagram_received and _relay_send): a plain audio packet from the latched peer
goes out of the other leg with that leg's header, byte-translated when the
codecs differ. Per packet it only keeps the header's sequence number and
timestamp and the arrival time; the counters and RFC 3550 reception figures
are brought up to date per run of packets when the figures are sent
(``ReceiverStats.update_run``, NumPy over the run), which takes most of the
per-packet Python out of the hot path.
Every other packet (a telephone-event, RTCP or STUN on the RTP port, a new
source or SSRC, anything malformed) is not the worker's business: the group
goes back to the main process with that packet, which handles it as if it
had read it itself; the main process may hand the group over again once it is
quiet. So the worker holds no call logic, and losing one loses no call: the
main process keeps its own copy of every socket and resumes the relay.

The worker ends when the main process goes (its end of the socketpair
closes); Ctrl-C is for the main process, which stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from mediaserver.media.relay_state import Bounced, RelayEnd
from mediaserver.media.stats import ReceiverStats

# Header bytes 2-8: sequence number and timestamp (RFC 3550 5.1), as kept per packet.
_HEADS = np.dtype([("sequence", ">u2"), ("timestamp", ">u4")])
_RTP_HEADER = struct.Struct("!BBHII")  # the whole fixed header, version 2 and no extras
SYNC_INTERVAL = 2.0  # seconds between the figures sent back for RTCP and the API
SYNC_CHUNK = 200  # groups per figures message (a SEQPACKET message must fit the buffer)
MAX_MESSAGE = 1 << 20
MAX_FDS = 2


class _End(asyncio.DatagramProtocol):
    """One relayed leg: its socket, its header and its counters."""

    def __init__(self, group: _Group, index: int, state: RelayEnd) -> None:
        self.group = group
        self.index = index
        self.state = state
        self.peer = state.peer
        self.expected = state.expected
        self.remote = state.remote
        self.payload_type = state.payload_type
        ssrc = state.remote_ssrc
        self.remote_ssrc = b"" if ssrc is None else ssrc.to_bytes(4, "big")  # compared as bytes
        self.ssrc = state.ssrc
        self.sequence = state.sequence
        self.timestamp = state.timestamp
        # The header's second byte (marker and payload type) of the next packet we send:
        # the first after a hand-over may start a talkspurt (RFC 3551 4.1).
        self.second = state.payload_type | (0x80 if state.marker else 0)
        self.table = state.table
        self.packets_in = state.packets_in
        self.bytes_in = state.bytes_in
        self.packets_out = state.packets_out
        self.transcoded = state.transcoded
        self.receiver = ReceiverStats(state.clock_rate)
        self.receiver.adopt_reception(state.reception)
        # What arrived since the last figures, counted in one go by count_arrivals():
        # sequence number and timestamp (header bytes 2-8), arrival time, sizes.
        self.heads: list[bytes] = []
        self.arrivals: list[float] = []
        self.octets = 0
        self.last = b""  # the last packet relayed
        self.sent_packets, self.sent_octets, self.last_timestamp, self.last_sent_at = state.sending
        self.stats_bytes_in = state.stats_bytes_in
        self.target: _End = self
        self.transport: asyncio.DatagramTransport | None = None
        # Relayed to us before our socket is open (the group's ends open one by
        # one): sent once it is. None once open, and after we closed.
        self.waiting: list[bytes] | None = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        waiting, self.waiting = self.waiting, None
        for payload in waiting or ():
            self.emit(payload)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # The main process's fast path, same checks (RFC 3550 5.1: 0x80 is version 2
        # with no padding, extension or CSRC).
        # The statistics are only gathered here: figures() counts them per run.
        if (
            addr == self.peer
            and len(data) > 12
            and data[0] == 0x80
            and data[1] & 0x7F == self.payload_type
            and data[8:12] == self.remote_ssrc
        ):
            self.heads.append(data[2:8])
            self.arrivals.append(time.time())
            self.octets += len(data)
            self.last = data
            payload = data[12:]
            table = self.table
            if table is not None:
                payload = payload.translate(table)
            self.target.emit(payload)
            return
        if (
            self.peer is None
            and addr == self.expected
            and len(data) > 12
            and data[0] >> 6 == 2
            and not 192 <= data[1] <= 223  # RTCP's packet types (RFC 5761 4)
        ):
            # No media yet when we took the leg: its SDP's address is the peer on sight
            # (media/latching.py), by its first RTP packet; then as above.
            self.peer, self.remote_ssrc = addr, data[8:12]
            self.datagram_received(data, addr)
            return
        self.group.bounce(self.index, data, addr)

    def emit(self, payload: bytes) -> None:
        """Send a relayed payload with our header (RtpLeg._relay_send); what we send
        is counted from what the source end received, in count_arrivals."""
        transport = self.transport
        if transport is None:
            if self.waiting is not None:
                self.waiting.append(payload)
            return
        sequence, timestamp = self.sequence, self.timestamp
        header = _RTP_HEADER.pack(0x80, self.second, sequence, timestamp, self.ssrc)
        transport.sendto(header + payload, self.remote)
        self.second = self.payload_type
        self.sequence = (sequence + 1) & 0xFFFF
        self.timestamp = (timestamp + len(payload)) & 0xFFFFFFFF

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error about a peer gone: the main process sees the call end

    def count_arrivals(self) -> None:
        """Count what arrived since the last time: our reception (RFC 3550 figures
        and counters) and the target's sending, a packet out for each one in."""
        count = len(self.heads)
        if not count:
            return
        heads = np.frombuffer(b"".join(self.heads), _HEADS)
        arrivals = np.array(self.arrivals)
        self.heads, self.arrivals = [], []
        ssrc = int.from_bytes(self.remote_ssrc, "big")
        self.receiver.update_run(heads["sequence"], heads["timestamp"], arrivals, ssrc)
        size = self.octets - 12 * count
        self.octets = 0
        self.packets_in += count
        self.bytes_in += size
        self.stats_bytes_in += size
        if self.table is not None:
            self.transcoded += count
        target = self.target
        target.packets_out += count
        target.sent_packets += count
        target.sent_octets += size
        target.last_timestamp = (target.timestamp - (len(self.last) - 12)) & 0xFFFFFFFF
        target.last_sent_at = float(arrivals[-1])

    def figures(self) -> RelayEnd:
        """The state as it is now, for the main process (after every end of the
        group counted its arrivals: they are our sending too)."""
        state = self.state
        state.sequence, state.timestamp = self.sequence, self.timestamp
        state.peer = self.peer
        state.remote_ssrc = int.from_bytes(self.remote_ssrc, "big") if self.remote_ssrc else None
        state.marker = bool(self.second & 0x80)
        state.packets_in, state.bytes_in = self.packets_in, self.bytes_in
        state.packets_out, state.transcoded = self.packets_out, self.transcoded
        state.reception = self.receiver.reception()
        state.sending = self.sent_packets, self.sent_octets, self.last_timestamp, self.last_sent_at
        state.stats_bytes_in = self.stats_bytes_in
        return state


class _Group:
    """The legs of one bridge (two, or one relaying to itself: echo)."""

    def __init__(self, worker: RelayWorker, group_id: int, states: list[RelayEnd]) -> None:
        self.worker = worker
        self.id = group_id
        self.ends = [_End(self, index, state) for index, state in enumerate(states)]
        for end, state in zip(self.ends, states, strict=True):
            end.target = self.ends[state.target]
        self.bounced: list[Bounced] | None = None  # set while leaving: what came meanwhile
        self.opening: asyncio.Task[None] | None = None  # its sockets being opened
        self.release_asked = False  # the main process asked for it back while opening
        self.closed = False

    def figures(self) -> list[RelayEnd]:
        for end in self.ends:
            end.count_arrivals()
        return [end.figures() for end in self.ends]

    async def open(self, sockets: list[socket.socket]) -> None:
        """Read the ends' sockets; given back at once if one cannot be (the main
        process carries the group on), and a release asked for meanwhile waits."""
        loop = asyncio.get_running_loop()
        try:
            for end, sock in zip(self.ends, sockets, strict=True):
                if self.closed:
                    sock.close()
                    continue
                await loop.create_datagram_endpoint(lambda end=end: end, sock=sock)  # type: ignore[misc]
                if self.closed and end.transport is not None:
                    end.transport.close()  # released while this one opened
                    end.transport = None
        except OSError:
            self.worker.release(self.id)
        self.opening = None
        if self.release_asked:
            self.worker.release(self.id)

    def bounce(self, index: int, data: bytes, addr: tuple[str, int]) -> None:
        """A packet that is not a plain relay: the group goes home with it (and with
        whatever else arrives before the end of this loop iteration)."""
        if self.bounced is None:
            self.bounced = []
            asyncio.get_running_loop().call_soon(self.worker.release, self.id)
        self.bounced.append((index, data, addr))

    def close(self) -> list[RelayEnd]:
        """Stop reading and sending (the main process has its own copies of the
        sockets); the final figures."""
        self.closed = True
        for end in self.ends:
            end.waiting = None
            if end.transport is not None:
                end.transport.close()
                end.transport = None
        return self.figures()


class RelayWorker:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.groups: dict[int, _Group] = {}
        self.done = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.control.fileno(), self._readable)
        sync = loop.create_task(self._sync())
        try:
            await self.done
        finally:
            sync.cancel()
            for group in self.groups.values():
                group.close()

    def _readable(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(
                    self.control, MAX_MESSAGE, MAX_FDS, socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the main process is gone
                if not self.done.done():
                    self.done.set_result(None)
                return
            self._handle(pickle.loads(data), fds)

    def _handle(self, message: Any, fds: list[int]) -> None:
        """Groups are opened side by side (many arrive at once when a sweep finds
        them); a release of one still opening waits for its sockets."""
        kind, group_id = message[0], message[1]
        if kind == "adopt":
            adopted = _Group(self, group_id, message[2])
            sockets = [socket.socket(fileno=fd) for fd in fds]
            self.groups[group_id] = adopted
            adopted.opening = asyncio.get_running_loop().create_task(adopted.open(sockets))
        elif kind == "release":
            group = self.groups.get(group_id)
            if group is not None and group.opening is not None:
                group.release_asked = True
            else:
                self.release(group_id)

    def release(self, group_id: int) -> None:
        group = self.groups.pop(group_id, None)
        if group is None:
            return  # gone home already (a bounce and a release crossed)
        ends = group.close()
        # Blocking: the main process waits for this one (it always reads).
        self._send(("released", group_id, ends, group.bounced or []), wait=True)

    async def _sync(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            groups = [(gid, group.figures()) for gid, group in self.groups.items()]
            for start in range(0, len(groups), SYNC_CHUNK):
                self._send(("synced", groups[start : start + SYNC_CHUNK]))

    def _send(self, message: object, *, wait: bool = False) -> None:
        flags = 0 if wait else socket.MSG_DONTWAIT
        try:
            self.control.send(pickle.dumps(message, pickle.HIGHEST_PROTOCOL), flags)
        except BlockingIOError:
            pass  # figures only: the next sync carries them (a release is never this big)
        except OSError:
            if not self.done.done():
                self.done.set_result(None)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops us
    control = socket.socket(fileno=int(argv[1]))
    runner: Callable[[Any], Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run

    async def serve() -> None:
        await RelayWorker(control).run()

    with contextlib.suppress(KeyboardInterrupt):
        runner(serve())


if __name__ == "__main__":
    main(sys.argv)
