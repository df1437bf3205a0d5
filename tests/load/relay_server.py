"""The server side of the RTP relay benchmark, run in its own process on its own core.

:func:`serve` pins the process to one CPU, installs uvloop and runs an event
loop that obeys commands from the benchmark over a pipe: bind bare UDP echo
sockets, or set up bridged calls the way :mod:`mediaserver.calls.bridge` does
(two :class:`RtpLeg` bound through :class:`PortAllocator`, ``relay_to`` both
ways, both legs started on the shared :class:`MediaClock`), report the legs'
counters, tear down. The hot path is exactly the server's: nothing here runs
per packet except ``RtpLeg.datagram_received`` (or the echo's one line).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, cast

from mediaserver.media.clock import MediaClock
from mediaserver.media.g711 import CODECS, PCMU, transcode_table
from mediaserver.media.leg import RtpLeg
from mediaserver.media.ports import PortAllocator
from mediaserver.media.rtp import build_rtp, is_rtcp, parse_rtp

HOST = "127.0.0.1"


class Echo(asyncio.DatagramProtocol):
    """The bare limit: send every datagram straight back to where it came from."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


class Server:
    def __init__(self, ports: tuple[int, int]) -> None:
        self.allocator = PortAllocator(*ports)
        self.clock = MediaClock()
        self.echoes: list[tuple[asyncio.DatagramTransport, int]] = []
        self.legs: list[RtpLeg] = []

    async def echo(self, count: int) -> list[int]:
        for _ in range(count):
            transport, _, port = await self.allocator.bind(HOST, Echo)
            self.echoes.append((transport, port))
        return [port for _, port in self.echoes[-count:]]

    async def bridge(
        self, codecs: tuple[str, str], remotes: list[tuple[tuple[str, int], tuple[str, int]]]
    ) -> list[tuple[int, int]]:
        """One bridged call per pair of remotes; returns each call's two local ports."""
        ports = []
        for remote_a, remote_b in remotes:
            a = await self._leg(CODECS[codecs[0]], remote_a)
            b = await self._leg(CODECS[codecs[1]], remote_b)
            a.relay_to(b)
            b.relay_to(a)
            a.start()
            b.start()
            ports.append((a.local_port, b.local_port))
        return ports

    async def _leg(self, codec: Any, remote: tuple[str, int]) -> RtpLeg:
        leg = RtpLeg(
            self.clock,
            codec,
            payload_type=codec.payload_type,
            telephone_event_pt=101,
            remote=remote,
            on_digit=lambda key: None,
        )
        _, _, leg.local_port = await self.allocator.bind(HOST, lambda: leg)
        self.legs.append(leg)
        return leg

    def stats(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for leg in self.legs:
            total.update(leg.stats)
        total["clock_ticks"] = self.clock.ticks
        total["clock_skipped"] = self.clock.skipped
        return dict(total)

    def clear(self) -> None:
        for transport, port in self.echoes:
            transport.close()
            self.allocator.release(port)
        for leg in self.legs:
            leg.close()
            self.allocator.release(leg.local_port)
        self.echoes.clear()
        self.legs.clear()


def per_call_ns(action: Callable[[], object], count: int = 200_000) -> float:
    """Mean nanoseconds of one call of ``action`` (best of five runs), less the loop's own."""
    return max(0.0, _best_ns(action, count) - _best_ns(_nothing, count))


def _best_ns(action: Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(count):
            action()
        best = min(best, (time.perf_counter_ns() - start) / count)
    return best


def _nothing() -> None:
    pass


class _NullTransport:
    """Stands in for the socket so the Python work of one packet is timed alone."""

    def sendto(self, data: bytes, addr: object = None) -> None:
        pass


async def breakdown(count: int = 200_000) -> dict[str, float]:
    """Nanoseconds per packet of each piece of the relay's hot path, on this core."""
    clock = MediaClock()
    packet = build_rtp(0, 1000, 160_000, 0x1234, bytes(160))
    # A stream, not one packet again and again: the RFC 3550 statistics see consecutive
    # sequence numbers and timestamps, as on a call (every 65,536th packet wraps).
    stream = [build_rtp(0, i, i * 160, 0x1234, bytes(160)) for i in range(65536)]
    next_packet = itertools.cycle(stream).__next__
    next_parsed = itertools.cycle([parse_rtp(p) for p in stream]).__next__
    payload = bytes(160)
    table = transcode_table(CODECS["PCMU"], CODECS["PCMA"])
    assert table is not None
    source = (HOST, 40000)
    counter: Counter[str] = Counter()

    def increment() -> None:
        counter["packets_in"] += 1

    echo = Echo()
    echo.connection_made(cast(asyncio.DatagramTransport, _NullTransport()))
    pieces: dict[str, Callable[[], object]] = {
        "is_rtcp": lambda: is_rtcp(packet),
        "parse_rtp": lambda: parse_rtp(packet),
        "build_rtp": lambda: build_rtp(0, 1000, 160_000, 0x1234, payload, False),
        "transcode_table lookup (lru_cache, hashes both Codecs)": (
            lambda: transcode_table(PCMU, PCMU)
        ),
        "payload.translate": lambda: payload.translate(table),
        "Counter += 1 (each of 3 or 4 per packet)": increment,
        "echo datagram_received (no syscall)": lambda: echo.datagram_received(packet, source),
    }
    streamed = []  # pieces fed from the stream: the cost of taking a packet is taken off
    legs: list[RtpLeg] = []
    for name, (codec_a, codec_b) in {
        "same codec": ("PCMU", "PCMU"),
        "PCMU->PCMA": ("PCMU", "PCMA"),
    }.items():
        legs = [_leg(CODECS[codec_a], clock, source), _leg(CODECS[codec_b], clock, source)]
        for leg in legs:
            leg.connection_made(cast(asyncio.BaseTransport, _NullTransport()))
        legs[0].relay_to(legs[1])
        legs[1].relay_to(legs[0])
        receive: Callable[[bytes, tuple[str, int]], None] = legs[0].datagram_received
        piece = f"relay datagram_received, {name} (no syscall)"
        pieces[piece] = partial(_feed, receive, next_packet, source)
        streamed.append(piece)
    # Every answered leg is on the clock; a bridged one only checks for DTMF and returns.
    tick = legs[0].on_tick
    pieces["RtpLeg.on_tick of a bridged leg (50 per s per leg)"] = lambda: tick(0.0)
    stats = getattr(_leg(PCMU, clock, source), "rtp_stats", None)  # RFC 3550 statistics
    if stats is not None:
        piece = "rtp_stats.on_rtp_received(packet, time.time())"
        pieces[piece] = lambda: stats.on_rtp_received(next_parsed(), time.time())
        streamed.append(piece)
        pieces["rtp_stats.on_rtp_sent(ts, size, time.time())"] = lambda: stats.on_rtp_sent(
            160_000, 160, time.time()
        )
    results = {name: per_call_ns(action, count) for name, action in pieces.items()}
    taking = per_call_ns(next_packet, count)
    for piece in streamed:
        results[piece] = max(0.0, results[piece] - taking)
    results["sendto syscall (uvloop, 172 B, loopback)"] = await _sendto_ns(packet)
    return results


def _feed(
    receive: Callable[[bytes, tuple[str, int]], None],
    next_packet: Callable[[], bytes],
    source: tuple[str, int],
) -> None:
    receive(next_packet(), source)


def _leg(codec: Any, clock: MediaClock, remote: tuple[str, int]) -> RtpLeg:
    return RtpLeg(
        clock,
        codec,
        payload_type=codec.payload_type,
        telephone_event_pt=101,
        remote=remote,
        on_digit=lambda key: None,
    )


async def _sendto_ns(packet: bytes, rounds: int = 200, batch: int = 500) -> float:
    """uvloop's ``transport.sendto`` to a local socket, drained between timed batches."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sink.bind((HOST, 0))
    sink.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(HOST, 0)
    )
    target = sink.getsockname()
    best = float("inf")
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(batch):
                transport.sendto(packet, target)
            best = min(best, (time.perf_counter_ns() - start) / batch)
            try:
                while True:
                    sink.recv(2048)
            except BlockingIOError:
                pass
    finally:
        transport.close()
        sink.close()
    return best


def serve(conn: Connection, cpu: int | None, ports: tuple[int, int]) -> None:
    """The server process: pinned to ``cpu`` when given, uvloop, commands from ``conn``."""
    import uvloop

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    uvloop.install()
    asyncio.run(_serve(conn, ports))


async def _serve(conn: Connection, ports: tuple[int, int]) -> None:
    server = Server(ports)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    busy: set[asyncio.Task[None]] = set()

    async def handle(command: str, args: tuple[Any, ...]) -> None:
        try:
            if command == "echo":
                conn.send(("ok", await server.echo(*args)))
            elif command == "bridge":
                conn.send(("ok", await server.bridge(*args)))
            elif command == "stats":
                conn.send(("ok", server.stats()))
            elif command == "clear":
                server.clear()
                conn.send(("ok", None))
            elif command == "breakdown":
                conn.send(("ok", await breakdown(*args)))
            elif command == "quit":
                server.clear()
                conn.send(("ok", None))
                done.set_result(None)
            else:
                conn.send(("error", f"unknown command {command!r}"))
        except Exception as exc:  # report it to the benchmark rather than die silently
            conn.send(("error", repr(exc)))

    def readable() -> None:
        try:
            command, *args = conn.recv()
        except EOFError:
            if not done.done():
                done.set_result(None)
            return
        task = loop.create_task(handle(command, tuple(args)))
        busy.add(task)
        task.add_done_callback(busy.discard)

    loop.add_reader(conn.fileno(), readable)
    await done
    loop.remove_reader(conn.fileno())
