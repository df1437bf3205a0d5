"""The load generator's side of the RTP benchmarks: batched UDP and stamped packets.

A Python generator that calls ``socket.sendto`` once per packet would spend
as much CPU as the server it measures. Here packets live in the rows of a
NumPy array and go out and come back through Linux ``sendmmsg``/``recvmmsg``
(through ctypes, up to a few hundred packets per system call), so the
generator's Python work is per batch, not per packet.

Every packet carries its send time (nanoseconds since the run started) in the
first 16 bytes of its 160-byte G.711 payload, one nibble per byte. The 16
byte values that stand for the nibbles, and the filler after them, are
chosen so that PCMU -> PCMA -> PCMU translation (the relay's 256-byte tables)
maps them to distinct bytes and back to themselves: the stamp survives a
same-codec relay (bytes untouched), a PCMU->PCMA one and a PCMA->PCMU one,
and is read back with a lookup chosen by the received payload type.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mediaserver.media.g711 import PCMA, PCMU, transcode_table

PACKET_SIZE = 12 + 160  # RTP header + 20 ms of G.711
STAMP_OFFSET = 12  # the stamp's 16 nibble bytes start the payload
FILLER_OFFSET = STAMP_OFFSET + 16
MAX_BATCH = 1024  # UIO_MAXIOV: the kernel's cap on messages per sendmmsg/recvmmsg
_MSG_DONTWAIT = 0x40
_SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS, the control message it brings

_libc = ctypes.CDLL(None, use_errno=True)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


class _SockaddrIn(ctypes.Structure):
    _fields_ = [
        ("sin_family", ctypes.c_ushort),
        ("sin_port", ctypes.c_uint16),
        ("sin_addr", ctypes.c_uint32),
        ("sin_zero", ctypes.c_char * 8),
    ]


_sendmmsg = _libc.sendmmsg
_sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_recvmmsg = _libc.recvmmsg
_recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]

# -- the stamp code ------------------------------------------------------------

_U2A = np.frombuffer(transcode_table(PCMU, PCMA) or bytes(range(256)), np.uint8)
_A2U = np.frombuffer(transcode_table(PCMA, PCMU) or bytes(range(256)), np.uint8)
_STABLE = [c for c in range(255, -1, -1) if _A2U[_U2A[c]] == c]
NIBBLE_CODES = np.array(_STABLE[1:17], np.uint8)  # PCMU bytes for the nibbles 0-15
FILLER = {PCMU.payload_type: _STABLE[0], PCMA.payload_type: int(_U2A[_STABLE[0]])}
_ENCODE = {PCMU.payload_type: NIBBLE_CODES, PCMA.payload_type: _U2A[NIBBLE_CODES]}
_DECODE = np.full((128, 256), 0xFF, np.uint8)  # [payload type][byte] -> nibble, 0xFF: not one
for _pt, _codes in _ENCODE.items():
    assert len(set(_codes.tolist())) == 16  # distinct, so the stamp reads back exactly
    _DECODE[_pt, _codes] = np.arange(16, dtype=np.uint8)
_FILLER_BY_PT = np.full(128, -1, np.int16)
for _pt, _byte in FILLER.items():
    _FILLER_BY_PT[_pt] = _byte
_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)


def encode_stamp(value: int, payload_type: int) -> NDArray[np.uint8]:
    """The 16 payload bytes that carry ``value`` for a packet of ``payload_type``."""
    nibbles = [(value >> shift) & 0xF for shift in range(60, -4, -4)]
    return _ENCODE[payload_type][nibbles]


def decode_stamps(rows: NDArray[np.uint8]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """Send times of received packets (rows of whole RTP packets) and which rows are intact:
    172 bytes, a stamp made only of nibble codes, the expected filler for their payload type."""
    pt = rows[:, 1] & 0x7F
    nibbles = _DECODE[pt[:, None], rows[:, STAMP_OFFSET:FILLER_OFFSET]]
    good = (nibbles != 0xFF).all(axis=1)
    expected = _FILLER_BY_PT[pt]
    good &= rows[:, FILLER_OFFSET] == expected
    good &= rows[:, -1] == expected
    values = (nibbles.astype(np.uint64) << _SHIFTS).sum(axis=1, dtype=np.uint64)
    return values, good


def packet_rows(
    payload_types: Sequence[int], ssrc_base: int = 0x10000, one_flow: bool = False
) -> NDArray[np.uint8]:
    """One RTP packet per row, of the given payload types, each row its own flow (SSRC)
    unless ``one_flow``."""
    count = len(payload_types)
    types = np.asarray(payload_types, np.uint8)
    rows = np.empty((count, PACKET_SIZE), np.uint8)
    rows[:] = _FILLER_BY_PT[types][:, None]
    rows[:, 0] = 0x80
    rows[:, 1] = types
    flows = np.zeros(count, np.uint32) if one_flow else np.arange(count, dtype=np.uint32)
    ssrcs = (ssrc_base + flows).astype(">u4")
    rows[:, 8:12] = ssrcs.view(np.uint8).reshape(count, 4)
    return rows


def stamp(rows: NDArray[np.uint8], value: int, stop: int | None = None) -> None:
    """Write the send time ``value`` into rows ``[0, stop)``, coded for each row's type."""
    part = rows[:stop]
    types = part[:, 1] & 0x7F
    for payload_type in np.unique(types).tolist():
        code = encode_stamp(value, payload_type)
        if len(part) and (types == payload_type).all():
            part[:, STAMP_OFFSET:FILLER_OFFSET] = code
        else:
            part[types == payload_type, STAMP_OFFSET:FILLER_OFFSET] = code


def set_sequence(rows: NDArray[np.uint8], sequence: int) -> None:
    """Every row is packet ``sequence`` of its own flow (timestamps 160 samples apart)."""
    rows[:, 2:4] = np.frombuffer(struct.pack("!H", sequence & 0xFFFF), np.uint8)
    rows[:, 4:8] = np.frombuffer(struct.pack("!I", (sequence * 160) & 0xFFFFFFFF), np.uint8)


def set_sequences(rows: NDArray[np.uint8], first: int, stop: int) -> None:
    """Rows ``[0, stop)`` are consecutive packets of one flow, starting at ``first``."""
    numbers = first + np.arange(stop, dtype=np.uint64)
    rows[:stop, 2:4] = (numbers & 0xFFFF).astype(">u2").view(np.uint8).reshape(stop, 2)
    stamps = ((numbers * 160) & 0xFFFFFFFF).astype(">u4")
    rows[:stop, 4:8] = stamps.view(np.uint8).reshape(stop, 4)


# -- batched sockets ----------------------------------------------------------------


def udp_socket(host: str = "127.0.0.1", buffer: int = 8 << 20) -> socket.socket:
    """A bound UDP socket with large buffers, so the generator itself does not drop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option, forced in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # *BUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, buffer)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, option, buffer)
    sock.bind((host, 0))
    return sock


class BatchSender:
    """Sends rows ``[start, stop)`` of a packet array, row i to destination i, in one call."""

    def __init__(
        self, sock: socket.socket, rows: NDArray[np.uint8], destinations: Sequence[tuple[str, int]]
    ) -> None:
        assert rows.flags.c_contiguous and len(rows) == len(destinations)
        self.sock = sock
        self.rows = rows
        count, width = rows.shape
        self._addresses = (_SockaddrIn * count)()
        self._iovecs = (_Iovec * count)()
        self._messages = (_MMsgHdr * count)()
        base = rows.ctypes.data
        for i, (host, port) in enumerate(destinations):
            address = self._addresses[i]
            address.sin_family = socket.AF_INET
            address.sin_port = socket.htons(port)
            address.sin_addr = int.from_bytes(socket.inet_aton(host), "little")
            self._iovecs[i].iov_base = base + i * width
            self._iovecs[i].iov_len = width
            header = self._messages[i].msg_hdr
            header.msg_name = ctypes.addressof(address)
            header.msg_namelen = ctypes.sizeof(_SockaddrIn)
            header.msg_iov = ctypes.addressof(self._iovecs[i])
            header.msg_iovlen = 1
        self._base = ctypes.addressof(self._messages)
        self.errors = 0

    def send(self, start: int = 0, stop: int | None = None) -> int:
        """Send the rows; returns how many went out (a refused one is counted in ``errors``)."""
        stop = len(self.rows) if stop is None else stop
        fd = self.sock.fileno()
        size = ctypes.sizeof(_MMsgHdr)
        sent = 0
        while start < stop:
            n = _sendmmsg(fd, self._base + start * size, min(stop - start, MAX_BATCH), 0)
            if n < 0:
                error = ctypes.get_errno()
                if error == errno.EINTR:
                    continue
                self.errors += 1  # ECONNREFUSED from an earlier ICMP: skip that packet
                start += 1
                continue
            sent += n
            start += n
        return sent


class BatchReceiver:
    """Reads up to ``capacity`` waiting packets per call, without blocking, into ``rows``,
    with the kernel's arrival time of each (SO_TIMESTAMPNS, CLOCK_REALTIME nanoseconds),
    so the round trip does not depend on when the generator got round to reading."""

    _CONTROL = 64  # room for one SCM_TIMESTAMPNS message: 16-byte cmsghdr + struct timespec

    def __init__(self, sock: socket.socket, capacity: int = 256, width: int = 2048) -> None:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self.sock = sock
        self.rows = np.zeros((capacity, width), np.uint8)
        self._control = np.zeros((capacity, self._CONTROL // 8), np.int64)
        self._iovecs = (_Iovec * capacity)()
        self._messages = (_MMsgHdr * capacity)()
        base = self.rows.ctypes.data
        for i in range(capacity):
            self._iovecs[i].iov_base = base + i * width
            self._iovecs[i].iov_len = width
            header = self._messages[i].msg_hdr
            header.msg_iov = ctypes.addressof(self._iovecs[i])
            header.msg_iovlen = 1
            header.msg_control = self._control.ctypes.data + i * self._CONTROL
        size = ctypes.sizeof(_MMsgHdr)
        self.lengths = self._field(_MMsgHdr.msg_len.offset, np.uint32, capacity)
        self._control_lengths = self._field(
            _MsgHdr.msg_controllen.offset, np.uint64, capacity
        )  # the kernel shrinks it to what it wrote: reset before every call
        assert size % 8 == 0
        self._base = ctypes.addressof(self._messages)
        self._capacity = capacity

    def _field(self, offset: int, dtype: type, count: int) -> NDArray[Any]:
        return np.ndarray(
            (count,),
            dtype,
            buffer=memoryview(self._messages).cast("B"),
            offset=offset,
            strides=(ctypes.sizeof(_MMsgHdr),),
        )

    def receive(self) -> int:
        """How many packets were read (0 when none is waiting)."""
        self._control_lengths[:] = self._CONTROL
        n = _recvmmsg(self.sock.fileno(), self._base, self._capacity, _MSG_DONTWAIT, None)
        return max(int(n), 0)

    def arrivals(self, count: int) -> NDArray[np.int64]:
        """Kernel arrival times (CLOCK_REALTIME ns) of the last ``count`` packets read;
        -1 where the kernel gave none."""
        control = self._control[:count]
        # struct cmsghdr {size_t len; int level; int type;} then struct timespec {sec; nsec}.
        level_type = control[:, 1]
        ok = level_type == (_SO_TIMESTAMPNS << 32 | socket.SOL_SOCKET)
        ok &= self._control_lengths[:count] >= 32
        return np.where(ok, control[:, 2] * 1_000_000_000 + control[:, 3], -1)


def udp_drops(ports: set[int]) -> int:
    """Packets the kernel dropped at full receive buffers of our 127.0.0.1 sockets (/proc)."""
    total = 0
    with open("/proc/net/udp") as table:
        next(table)
        for line in table:
            fields = line.split()
            host, port = fields[1].split(":")
            if host == "0100007F" and int(port, 16) in ports:
                total += int(fields[12])
    return total
