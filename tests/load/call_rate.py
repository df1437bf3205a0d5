"""Call set-up rate: sipp's built-in ``uac`` against the echo scenario.

Starts a server (info-level logging, as in production), drives it at each
rate for a fixed time, and prints for each step the calls that succeeded or
failed and the server's own CPU time and memory, read from /proc. Not part of
the pass/fail suite: figures go to docs/PERFORMANCE.md.

    .venv/bin/python -m tests.load.call_rate --rates 100,200,300,400 --seconds 15
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tests.integration.conftest import start_server
from tests.support.sipp import run_sipp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (a server's relay workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def workers_cpu_seconds(pid: int) -> float:
    """CPU time of the server's child processes (its relay workers), alive now."""
    total = 0.0
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,300,400", help="calls per second, in order")
    parser.add_argument("--seconds", type=int, default=15, help="duration of each step")
    parser.add_argument("--call-ms", type=int, default=0, help="how long each call stays up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "server", log_level="info", routes={"echo": "echo"})
        pid = server.process.pid
        columns = ("rate", "calls", "ok", "failed", "cpu %", "ms/call", "rss MB")
        print(" ".join(f"{name:>7}" for name in columns))
        try:
            for rate in (int(r) for r in args.rates.split(",")):
                calls = rate * args.seconds
                before = cpu_seconds(pid)
                result = run_sipp(
                    server.target,
                    scenario="uac",
                    service="echo",
                    calls=calls,
                    rate=rate,
                    duration_ms=args.call_ms or None,
                    timeout=args.seconds * 3 + 30,
                    workdir=Path(tmp) / f"sipp-{rate}",
                )
                used = cpu_seconds(pid) - before
                print(
                    f"{rate:>7} {calls:>7} {result.successful:>7} {result.failed:>7}"
                    f" {100 * used / args.seconds:>7.1f} {1000 * used / max(1, calls):>7.2f}"
                    f" {rss_mb(pid):>7.0f}",
                    flush=True,
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
