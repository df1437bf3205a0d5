"""What the RTP relay benchmark measures, and the server process it measures.

:class:`ServerProcess` spawns :func:`tests.load.relay_server.serve` and sends it
commands. :class:`Returns` reads what comes back to the generator's sockets
and keeps each packet's round trip (its send time from the payload, its
arrival from the kernel's receive timestamp). :class:`Measure` takes the
server's and the generator's CPU time (/proc/<pid>/stat), the time the server
waited for its core (/proc/<pid>/schedstat) and the kernel's drops at full
receive buffers (/proc/net/udp) around one step, and makes a :class:`Step`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.load import relay_server
from tests.load.udp_batch import PACKET_SIZE, BatchReceiver, decode_stamps, udp_drops

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONTENDED: list[str] = []  # steps where other programs held the server's core > 10% of the time
_T0 = time.time_ns()


def now_ns() -> int:
    """Nanoseconds since the benchmark started, on the clock of the kernel's receive
    timestamps (CLOCK_REALTIME): what the packets' stamps hold."""
    return time.time_ns() - _T0


def runqueue_wait(pid: int) -> float:
    """Seconds the process's main thread spent runnable but waiting for its CPU (schedstat):
    the time other programs on the same core took from the server."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def cpu_seconds(pid: int | str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


# -- the server process -----------------------------------------------------------


class ServerProcess:
    """The server, in a spawned process, driven by commands over a pipe."""

    def __init__(self, cpu: int | None, ports: tuple[int, int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=relay_server.serve, args=(child, cpu, ports), daemon=True
        )
        self.process.start()
        child.close()
        assert self.process.pid is not None
        self.pid = self.process.pid

    def call(self, command: str, *args: Any, timeout: float = 120.0) -> Any:
        self.conn.send((command, *args))
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the server did not answer {command!r} in {timeout} s")
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"server, {command}: {value}")
        return value

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call("quit", timeout=10)
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- the generator ----------------------------------------------------------------


class Returns:
    """The generator's sockets and every stamp that came back on them."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.ports = {s.getsockname()[1] for s in sockets}
        self.receivers = {s.fileno(): BatchReceiver(s) for s in sockets}
        self.poller = select.epoll()
        for s in sockets:
            self.poller.register(s.fileno(), select.EPOLLIN)
        self.stamps: list[np.ndarray] = []
        self.latencies: list[np.ndarray] = []
        self.bad = 0

    def _read(self, receiver: BatchReceiver) -> int:
        total = 0
        while count := receiver.receive():
            arrived = receiver.arrivals(count) - _T0
            values, good = decode_stamps(receiver.rows[:count, :PACKET_SIZE])
            good &= receiver.lengths[:count] == PACKET_SIZE
            self.bad += count - int(good.sum())
            sent = values[good].astype(np.int64)
            self.stamps.append(sent)
            self.latencies.append(arrived[good] - sent)
            total += count
            if count < len(receiver.rows):
                break
        return total

    def drain(self) -> int:
        """Read whatever is waiting, without blocking."""
        return sum(self._read(receiver) for receiver in self.receivers.values())

    def wait_until(self, deadline_ns: int) -> None:
        """Read what comes back until ``deadline_ns``, at most once a millisecond (the
        kernel's timestamps keep the round trips exact; fewer wake-ups keep the generator
        cheap when the server's answers trickle in)."""
        while (left := deadline_ns - now_ns()) > 0:
            for fd, _ in self.poller.poll(left / 1e9):
                self._read(self.receivers[fd])
            if (left := deadline_ns - now_ns()) > 0:
                time.sleep(min(left / 1e9, 0.001))
        self.drain()

    def window(self, start: int, end: int) -> tuple[int, np.ndarray]:
        """Packets sent in ``[start, end)`` that came back, and their round trips (ns)."""
        if not self.stamps:
            return 0, np.zeros(0)
        stamps = np.concatenate(self.stamps)
        latencies = np.concatenate(self.latencies)
        inside = (stamps >= start) & (stamps < end)
        return int(inside.sum()), latencies[inside]

    def close(self) -> None:
        self.poller.close()
        for s in self.sockets:
            s.close()


@dataclass
class Step:
    """What one step measured."""

    label: str
    offered: float  # packets/s into the server (0: flat out)
    seconds: float
    sent: int
    received: int
    bad: int
    server_cpu: float  # seconds
    generator_cpu: float
    server_drops: int  # full receive buffers on the server's sockets
    generator_drops: int
    latencies: np.ndarray  # ns
    server_waited: float  # seconds runnable but not running: other programs on its core
    late_ticks: int = 0
    extra: str = ""

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0

    @property
    def delivered(self) -> float:
        return self.received / self.seconds

    @property
    def us_per_packet(self) -> float:
        """Server CPU per packet relayed (one in and one out)."""
        return 1e6 * self.server_cpu / max(1, self.received)

    def quantile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) / 1e6 if len(self.latencies) else 0.0


class Measure:
    """CPU times and kernel drop counters around one step's send window."""

    def __init__(self, server: ServerProcess, server_ports: set[int], returns: Returns) -> None:
        self.server, self.server_ports, self.returns = server, server_ports, returns

    def begin(self) -> None:
        self.start = now_ns()
        self.cpu = (self.server.cpu(), cpu_seconds())
        self.waited = runqueue_wait(self.server.pid)
        self.bad = self.returns.bad

    def end(self) -> None:
        self.stop = now_ns()
        self.cpu = (self.server.cpu() - self.cpu[0], cpu_seconds() - self.cpu[1])
        self.waited = runqueue_wait(self.server.pid) - self.waited

    @contextlib.contextmanager
    def drops(self) -> Iterator[list[int]]:
        ports = self.server_ports | self.returns.ports
        before = (udp_drops(self.server_ports), udp_drops(ports))
        counts = [0, 0]
        yield counts
        counts[0] = udp_drops(self.server_ports) - before[0]
        counts[1] = udp_drops(ports) - before[1] - counts[0]

    def step(self, label: str, offered: float, sent: int, drops: list[int], **kw: Any) -> Step:
        received, latencies = self.returns.window(self.start, self.stop)
        seconds = (self.stop - self.start) / 1e9
        if self.waited > 0.1 * seconds:
            CONTENDED.append(label)
        return Step(
            label,
            offered,
            (self.stop - self.start) / 1e9,
            sent,
            received,
            self.returns.bad - self.bad,
            self.cpu[0],
            self.cpu[1],
            drops[0],
            drops[1],
            latencies,
            self.waited,
            **kw,
        )
