"""Calls per second through Kamailio (deploy/kamailio/kamailio.cfg) to one node, then two.

For each cluster size, starts the nodes (info-level logging, echo scenario)
and Kamailio with the shipped config, then drives sipp (``uac_proxied``: the
ACK and BYE follow Kamailio's Record-Route) at each rate for a fixed time.
Prints per step the calls that succeeded or failed, the rate achieved
(successful calls over the wall time of the step) and the CPU each piece
used (nodes one by one, Kamailio's processes together), read from /proc.
Not part of the pass/fail suite: figures go to docs/PERFORMANCE.md.

    .venv/bin/python -m tests.load.cluster_bench --rates 50,100,200 --seconds 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.integration.conftest import ServerProcess, start_server
from tests.load.call_rate import CLOCK_TICKS, cpu_seconds
from tests.support.cluster import Kamailio, Node
from tests.support.net import free_port, free_port_block
from tests.support.sipp import run_sipp


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of every process in the group ``pgid`` (Kamailio and its children)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def bench(count: int, rates: list[int], seconds: int, call_ms: int, folder: Path) -> None:
    nodes: list[ServerProcess] = []
    names = [f"node-{chr(ord('a') + i)}" for i in range(count)]
    try:
        for name in names:
            low = free_port_block(2000, "udp", even=True)
            nodes.append(
                start_server(
                    folder / name,
                    log_level="info",
                    routes={"echo": "echo"},
                    rtp_range=(low, low + 1999),
                    extra_args=["--sip-port", str(free_port("both")), "--node-name", name],
                )
            )
        proxy = Kamailio(
            folder / "kamailio",
            [Node(name, n.sip_port) for name, n in zip(names, nodes, strict=True)],
            children=4,
        ).start()
        assert proxy.process is not None
        try:
            for rate in rates:
                calls = rate * seconds
                before = [cpu_seconds(n.process.pid) for n in nodes]
                proxy_before = group_cpu_seconds(proxy.process.pid)
                started = time.monotonic()
                result = run_sipp(
                    proxy.address, scenario="uac_proxied", service="echo", calls=calls,
                    rate=rate, duration_ms=call_ms, timeout=seconds * 3 + 30,
                    workdir=folder / f"sipp-{count}-{rate}",
                )  # fmt: skip
                wall = time.monotonic() - started
                used = [cpu_seconds(n.process.pid) - b for n, b in zip(nodes, before, strict=True)]
                proxy_used = group_cpu_seconds(proxy.process.pid) - proxy_before
                node_cpu = "/".join(f"{100 * u / wall:.0f}" for u in used)
                proxy_cpu = 100 * proxy_used / wall
                print(
                    f"{count:>5} {rate:>6} {calls:>6} {result.successful:>6} {result.failed:>6}"
                    f" {result.successful / wall:>8.1f} {node_cpu:>12} {proxy_cpu:>8.0f}",
                    flush=True,
                )
        finally:
            proxy.close()
    finally:
        for node in nodes:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200", help="calls per second, in order")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each step")
    parser.add_argument("--call-ms", type=int, default=0, help="how long each call stays up")
    parser.add_argument("--nodes", default="1,2", help="cluster sizes, in order")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    columns = ("nodes", "rate", "calls", "ok", "failed", "calls/s", "node cpu %", "kam cpu%")
    print(f"{columns[0]:>5} {columns[1]:>6} {columns[2]:>6} {columns[3]:>6} {columns[4]:>6}"
          f" {columns[5]:>8} {columns[6]:>12} {columns[7]:>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(n) for n in args.nodes.split(",")):
            bench(count, rates, args.seconds, args.call_ms, Path(tmp) / f"cluster-{count}")


if __name__ == "__main__":
    main()
