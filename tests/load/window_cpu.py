"""The server's CPU, relay workers included, while a load generator runs.

    .venv/bin/python -m tests.load.window_cpu python3 ../shared/bench/e2e_bridge.py . 500 10

Runs the command given (the shared yardstick, unchanged) and watches the
processes it starts: while one named ``mblast`` (the generator) lives, it
reads the CPU time of the ``mediaserver run`` process and of its relay workers
(``mediaserver.media.relay_worker``). The yardstick's own "server cpu" counts
the main process only, since it reads one pid; with ``rtp.relay_workers`` the
relaying happens in the workers, so this prints, after the command's output,
``main``, ``workers`` and their sum in percent of one core over the
generator's run. Not part of the suite: figures go to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.load.call_rate import CLOCK_TICKS

POLL = 0.02  # seconds between looks at /proc


def processes(root: int) -> dict[int, tuple[str, float]]:
    """Every process descending from ``root``: its command line and CPU seconds
    (utime + stime)."""
    table: dict[int, tuple[int, str, float]] = {}
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (folder / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        table[int(folder.name)] = (int(fields[1]), cmdline, cpu)

    def descends(pid: int) -> bool:
        for _ in range(16):
            if pid == root:
                return True
            if pid not in table:
                return False
            pid = table[pid][0]
        return False

    return {pid: (cmd, cpu) for pid, (_, cmd, cpu) in table.items() if descends(pid)}


def server_cpu(table: dict[int, tuple[str, float]]) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds of the main processes and of the relay workers, by pid."""
    main = {pid: cpu for pid, (cmd, cpu) in table.items() if "mediaserver run" in cmd}
    workers = {pid: cpu for pid, (cmd, cpu) in table.items() if "media.relay_worker" in cmd}
    return main, workers


def main() -> None:
    command = sys.argv[1:]
    if not command:
        sys.exit(__doc__)
    child = subprocess.Popen(command)
    before: tuple[dict[int, float], dict[int, float]] | None = None
    began = ended = 0.0
    last: tuple[dict[int, float], dict[int, float]] = ({}, {})
    while child.poll() is None:
        table = processes(child.pid)
        blasting = any("mblast" in cmd.split(" ", 1)[0] for cmd, _ in table.values())
        if blasting and before is None:
            before, began = server_cpu(table), time.monotonic()
        elif blasting:
            last, ended = server_cpu(table), time.monotonic()
        elif before is not None and ended:
            break
        time.sleep(POLL)
    child.wait()
    if before is None or not ended:
        print("window_cpu: no generator run seen")
        return
    seconds = ended - began
    parts = []
    for name, now, then in (("main", last[0], before[0]), ("workers", last[1], before[1])):
        used = sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items())
        parts.append((name, used / seconds * 100))
    total = sum(share for _, share in parts)
    shares = " ".join(f"{name} {share:.0f}%" for name, share in parts)
    print(f"window_cpu: over {seconds:.1f} s of mblast: {shares} total {total:.0f}% of one core")


if __name__ == "__main__":
    main()
