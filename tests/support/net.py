"""Loopback ports for test peers, picked at run time.

Every test binds to 127.0.0.1 on ports chosen here, never on fixed ports,
so that tests can run next to each other and next to a real server.

A port is "free" when we can bind it ourselves right now. There is an
unavoidable window between this check and the moment the peer binds it;
to keep that window harmless, ports are drawn at random from a range that
the kernel never hands out on its own (below the ephemeral range, see
/proc/sys/net/ipv4/ip_local_port_range) and a port is never handed out
twice by the same process.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Literal

HOST = "127.0.0.1"

PortKind = Literal["udp", "tcp", "both"]

# Below the kernel's ephemeral range (32768-60999 on Debian), above the
# well-known and most registered ports; the server's own default RTP range
# (20000-29999) is never used by tests, which pass their own.
_LOW, _HIGH = 10000, 32000

_given: set[int] = set()
_lock = threading.Lock()
_rng = random.Random()


def _can_bind(port: int, sock_type: int, host: str = HOST) -> bool:
    """Whether ``port`` can be bound on ``host`` right now (no SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, sock_type) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def is_free(port: int, kind: PortKind = "udp", host: str = HOST) -> bool:
    """Whether ``port`` is free for UDP, TCP or both on ``host``."""
    if kind in ("udp", "both") and not _can_bind(port, socket.SOCK_DGRAM, host):
        return False
    return not (kind in ("tcp", "both") and not _can_bind(port, socket.SOCK_STREAM, host))


def free_port_block(
    count: int = 1,
    kind: PortKind = "udp",
    *,
    even: bool = False,
    host: str = HOST,
    attempts: int = 500,
) -> int:
    """First port of ``count`` consecutive free ports (all free for ``kind``).

    ``even=True`` makes the first port even, as RTP wants (RTCP on +1).
    The ports are remembered and never returned again by this process.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    with _lock:
        for _ in range(attempts):
            base = _rng.randrange(_LOW, _HIGH - count)
            if even and base % 2:
                base += 1
            block = range(base, base + count)
            if any(p in _given for p in block):
                continue
            if all(is_free(p, kind, host) for p in block):
                _given.update(block)
                return base
    raise RuntimeError(f"no block of {count} free {kind} ports on {host} after {attempts} tries")


def free_port(kind: PortKind = "udp", *, host: str = HOST) -> int:
    """A port free on ``host`` for UDP, TCP, or both (``"both"``: same number)."""
    return free_port_block(1, kind, host=host)


def free_port_pair(*, host: str = HOST) -> int:
    """An even UDP port ``p`` with ``p + 1`` free too (RTP and RTCP)."""
    return free_port_block(2, "udp", even=True, host=host)


def wait_until_bound(
    port: int,
    kind: Literal["udp", "tcp"] = "udp",
    *,
    host: str = HOST,
    timeout: float = 5.0,
) -> None:
    """Wait until some process has bound ``port`` (a peer is listening).

    "Bound" means we can no longer bind it ourselves: this needs no packet
    or connection that the peer would see. Raises TimeoutError.
    """
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    deadline = time.monotonic() + timeout
    while _can_bind(port, sock_type, host):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing bound to {kind} {host}:{port} after {timeout} s")
        time.sleep(0.02)
