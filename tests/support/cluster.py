"""Kamailio in front of mediaserver nodes on loopback: the shipped config, rendered.

The config in ``deploy/kamailio/kamailio.cfg`` takes its settings as
pre-processor defines; :func:`kamailio_command` passes them with ``-A`` (ports,
the dispatcher list, the probing interval), so the file run here is the file
shipped. Kamailio stays in the foreground (``-DD``) with its log on stderr
(``-E``) and its control socket in its own folder (``-Y``).

    nodes = [Node("node-a", 5070), Node("node-b", 5072)]
    with Kamailio(workdir, nodes, ping_interval=1) as proxy:
        ...send calls to 127.0.0.1:proxy.port...

:func:`options_status` sends one OPTIONS over UDP and returns the status (or
None): how Kamailio's readiness, and the nodes' answer to its probes, are checked.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import HOST, free_port
from tests.support.peer import PeerProcess

REPO = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = REPO / "deploy" / "kamailio" / "kamailio.cfg"


def kamailio_missing() -> str | None:
    """Why Kamailio cannot run here (None when it can)."""
    if shutil.which("kamailio") is None:
        return "kamailio is not installed (Debian package kamailio; ./scripts/setup --dev)"
    return None


@dataclass(frozen=True)
class Node:
    """A mediaserver node as Kamailio's dispatcher sees it."""

    name: str
    sip_port: int
    host: str = HOST

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.sip_port}"


def dispatcher_list(nodes: Sequence[Node]) -> str:
    """The ``dispatcher.list`` text: every node in set 1, named in its attributes."""
    lines = ["# setid destination flags priority attributes"]
    lines += [f"1 {node.uri} 0 0 name={node.name}" for node in nodes]
    return "\n".join(lines) + "\n"


def kamailio_command(
    workdir: Path,
    *,
    port: int,
    host: str = HOST,
    ping_interval: int = 10,
    fr_timer_ms: int = 2000,
    children: int = 2,
) -> list[str]:
    """The command line running the shipped config on ``host:port`` (UDP and TCP), with
    ``workdir/dispatcher.list`` and its control socket and pid file in ``workdir``."""
    return [
        "kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-Y", str(workdir),
        "-P", str(workdir / "kamailio.pid"),
        "-A", f"LISTEN_UDP=udp:{host}:{port}",
        "-A", f"LISTEN_TCP=tcp:{host}:{port}",
        "-A", f'DISPATCHER_LIST="{workdir / "dispatcher.list"}"',
        "-A", f"DS_PING_INTERVAL={ping_interval}",
        "-A", f"FR_TIMER={fr_timer_ms}",
        "-A", f"CHILDREN={children}",
    ]  # fmt: skip


def options_status(host: str, port: int, timeout: float = 1.0, user: str = "") -> int | None:
    """Send one OPTIONS over UDP to ``host:port``; its final status, None if none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        target = f"sip:{user + '@' if user else ''}{host}:{port}"
        request = (
            f"OPTIONS {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <{target}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (host, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionRefusedError):
                return None
            status = int(data.split(b" ", 2)[1])
            if status >= 200:
                return status
    return None


class Kamailio(PeerProcess):
    """The shipped Kamailio config over ``nodes``, on a loopback port (picked when 0)."""

    def __init__(
        self,
        workdir: Path,
        nodes: Sequence[Node],
        *,
        port: int = 0,
        ping_interval: int = 10,
        fr_timer_ms: int = 2000,
        children: int = 2,
    ) -> None:
        self.workdir = workdir
        self.nodes = list(nodes)
        self.port = port or free_port("both")
        self.ping_interval = ping_interval
        self.fr_timer_ms = fr_timer_ms
        self.children = children
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        return kamailio_command(
            self.workdir,
            port=self.port,
            ping_interval=self.ping_interval,
            fr_timer_ms=self.fr_timer_ms,
            children=self.children,
        )

    def start(self, timeout: float = 15.0) -> Kamailio:
        missing = kamailio_missing()
        if missing:
            raise RuntimeError(missing)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "dispatcher.list").write_text(dispatcher_list(self.nodes))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children go with it (close() signals the group)
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kamailio exited at start:\n{self.log_text()[-4000:]}")
            if options_status(HOST, self.port, timeout=0.5) == 200:
                return self
        self.close()
        raise RuntimeError(f"kamailio did not answer OPTIONS:\n{self.log_text()[-4000:]}")

    def destinations(self) -> dict[str, str]:
        """Each node's URI and its dispatcher flags now (``AP`` active, ``IP`` inactive
        and probing, ...), from ``kamcmd dispatcher.list`` over the control socket."""
        done = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.workdir / 'kamailio_ctl'}", "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kamcmd dispatcher.list failed: {done.stderr.strip()}")
        found = re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", done.stdout)
        return dict(found)

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # Kamailio's main process stops its children on SIGTERM
        try:
            process.wait(10.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session)
            process.wait(5.0)
