"""RTP relay: packets per second against a bare uvloop UDP echo, and bridged calls per core.

The server side (:mod:`tests.load.relay_server`) runs in its own process with
uvloop, pinned to one CPU; this process is the load generator, pinned to the
other, sending and receiving in batches (:mod:`tests.load.udp_batch`). Every
packet is 172 bytes (RTP + 160 bytes of G.711) and carries its send time, so
each packet that comes back gives the round trip through the server. Three
parts, each printed as Markdown tables for docs/PERFORMANCE.md (figures are
printed, never asserted):

1. ``breakdown``: nanoseconds per packet of each piece of the relay's hot
   path (``parse_rtp``, ``build_rtp``, the codec-table lookup, counters, a
   whole ``datagram_received`` with the socket stubbed out, uvloop's
   ``sendto``), timed inside the server process on its core.
2. ``throughput``: one flow at increasing offered rates into (a) a bare
   echo socket, (b) a same-codec bridge (leg A -> leg B), (c) a PCMU->PCMA
   bridge; the highest delivered rate with loss under 0.1%, then flat out
   (the saturated rate), with the server's CPU time from /proc.
3. ``calls``: N bridged calls, every leg receiving 50 packets/s at a steady
   20 ms pace (one batch per tick), each step also run with a bare echo
   socket per leg at the same load to show the generator's and the kernel's
   share; loss, server CPU, round-trip p50/p99, where packets were dropped.

    .venv/bin/python -m tests.load.relay_bench --realtime   # as in docs/PERFORMANCE.md
    .venv/bin/python -m tests.load.relay_bench --quick
    .venv/bin/python -m tests.load.relay_bench --parts calls --calls 500,1000 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time

import numpy as np

from mediaserver.media.g711 import CODECS
from tests.load.relay_measure import CONTENDED, Measure, Returns, ServerProcess, Step, now_ns
from tests.load.server_profile import Profiler
from tests.load.udp_batch import (
    BatchSender,
    packet_rows,
    set_sequence,
    set_sequences,
    stamp,
    udp_socket,
)

HOST = "127.0.0.1"
LOSS_LIMIT = 0.001  # the bar: under 0.1% lost
RTT_LIMIT_MS = 20.0  # our bar for "keeps up": one packet time of delay at the 99th percentile
TICK_NS = 20_000_000  # 20 ms of G.711 per packet
BATCH = 256  # packets per sendmmsg in the throughput part
# -- part 2: one flow, increasing rates ------------------------------------------------

VARIANTS = {
    "echo": None,
    "relay PCMU->PCMU": ("PCMU", "PCMU"),
    "relay PCMU->PCMA": ("PCMU", "PCMA"),
}


def throughput(server: ServerProcess, args: argparse.Namespace, profile: Profiler) -> None:
    print("\n## Throughput: one flow into the server, packets/s\n")
    print(
        "| server | offered pps | sent | back | delivered pps | loss % | server CPU % "
        "| server waited % | CPU µs/pkt | generator CPU % | RTT p50 ms | RTT p99 ms "
        "| drops server/gen |"
    )
    print("|---|" + "---:|" * 12)
    summary: dict[str, dict[str, float]] = {}
    for variant, codecs in VARIANTS.items():
        sock = udp_socket()
        me = (HOST, sock.getsockname()[1])
        if codecs is None:
            (dest,) = server.call("echo", 1)
            server_ports = {dest}
        else:
            ((dest, other),) = server.call("bridge", codecs, [(me, me)])
            server_ports = {dest, other}
        returns = Returns([sock])
        rows = packet_rows([CODECS["PCMU"].payload_type] * BATCH, one_flow=True)
        sender = BatchSender(sock, rows, [(HOST, dest)] * BATCH)
        flow = Flow(server, server_ports, returns, rows, sender)
        flow.run(2000, 0.3)  # warm-up: the legs latch on the first packet
        steps: list[Step] = []

        def run(
            rate: float | None, variant: str = variant, flow: Flow = flow, steps: list[Step] = steps
        ) -> Step:
            step = flow.run(rate, args.step_seconds, label=variant)
            steps.append(step)
            print(throughput_row(step), flush=True)
            return step

        def passes(rate: float) -> bool:
            """Loss under the bar at ``rate``, twice in a row if the first try fails: a
            single loss burst is more often another program on the core than the limit."""
            for _ in range(2):
                step = run(rate)
                if step.loss < LOSS_LIMIT and step.sent >= 0.98 * rate * step.seconds:
                    return True
            return False

        good, bad = 0.0, 0.0
        rate = float(args.start_rate)
        while rate <= args.max_rate:
            if not passes(rate):
                bad = rate
                break
            good, rate = rate, rate * args.factor
        for _ in range(args.refine if bad else 0):
            middle = (good + bad) / 2
            if passes(middle):
                good = middle
            else:
                bad = middle
        with (
            profile.during(server.pid, f"flat-{variant}", args.step_seconds)
            if codecs
            else contextlib.nullcontext()
        ):
            flat = run(None)
        server_stats = server.call("stats")
        server.call("clear")
        returns.close()
        lossless = [s for s in steps if s.loss < LOSS_LIMIT and s.offered]
        paced = [s for s in steps if s.offered]
        summary[variant] = {
            "best": max((s.delivered for s in lossless), default=0.0),
            "flat": flat.delivered,
            "flat_loss": flat.loss,
            # CPU per packet over every paced step: the core's capacity, whoever else ran on it.
            "us": 1e6 * sum(s.server_cpu for s in paced) / max(1, sum(s.received for s in paced)),
            "flat_us": flat.us_per_packet,
        }
        if codecs is not None:
            counters = {k: v for k, v in sorted(server_stats.items()) if v}
            print(f"|  | server counters: {counters} |" + " |" * 11)
    echo = summary["echo"]
    print(
        "\n| server | max pps, loss < 0.1% | % of echo | flat-out pps (loss %) | % of echo "
        "| server CPU µs/pkt, paced steps | flat out | pps per core (1 / flat-out CPU/pkt) "
        "| % of echo |"
    )
    print("|---|" + "---:|" * 8)
    for variant, v in summary.items():
        capacity = 1e6 / max(1e-9, v["flat_us"])
        print(
            f"| {variant} | {v['best']:,.0f} | {100 * v['best'] / max(1, echo['best']):.0f} "
            f"| {v['flat']:,.0f} ({100 * v['flat_loss']:.0f}) "
            f"| {100 * v['flat'] / max(1, echo['flat']):.0f} | {v['us']:.2f} "
            f"| {v['flat_us']:.2f} | {capacity:,.0f} "
            f"| {100 * echo['flat_us'] / max(1e-9, v['flat_us']):.0f} |",
            flush=True,
        )


def throughput_row(s: Step) -> str:
    offered = f"{s.offered:,.0f}" if s.offered else "flat out"
    return (
        f"| {s.label} | {offered} | {s.sent:,} | {s.received:,} | {s.delivered:,.0f} "
        f"| {100 * s.loss:.3f} | {100 * s.server_cpu / s.seconds:.0f} "
        f"| {100 * s.server_waited / s.seconds:.0f} | {s.us_per_packet:.2f} "
        f"| {100 * s.generator_cpu / s.seconds:.0f} | {s.quantile_ms(50):.2f} "
        f"| {s.quantile_ms(99):.2f} | {s.server_drops:,}/{s.generator_drops:,} |"
    )


class Flow:
    """One paced flow of consecutive packets to one server port."""

    def __init__(
        self,
        server: ServerProcess,
        server_ports: set[int],
        returns: Returns,
        rows: np.ndarray,
        sender: BatchSender,
    ) -> None:
        self.measure = Measure(server, server_ports, returns)
        self.returns, self.rows, self.sender = returns, rows, sender
        self.sequence = 0

    def run(self, rate: float | None, seconds: float, label: str = "") -> Step:
        """Send at ``rate`` packets/s (None: as fast as the generator can) for ``seconds``."""
        # Batches of at least 0.2 ms of packets: smooth at the scale of the server's receive
        # buffer (256 packets by default), and the generator sleeps in between rather than
        # spinning, which would push every other program on the machine onto the server's core.
        smallest = 1 if rate is None else max(1, int(rate * 0.0002))
        sent = 0
        with self.measure.drops() as drops:
            self.measure.begin()
            start = self.measure.start
            end = start + int(seconds * 1e9)
            while (now := now_ns()) < end:
                due = BATCH if rate is None else int(rate * (now - start) / 1e9) - sent
                if due >= smallest:
                    count = min(due, BATCH)
                    set_sequences(self.rows, self.sequence, count)
                    stamp(self.rows, now, count)
                    done = self.sender.send(0, count)
                    self.sequence += done
                    sent += done
                self.returns.drain()
                if rate is None:
                    continue
                # Sleep until the next batch is due even when packets came back: they wait in
                # the socket (timestamped by the kernel) and are read in fewer, larger batches.
                left = smallest - (int(rate * (now_ns() - start) / 1e9) - sent)
                if left > 0:
                    gap = left / rate
                    if gap > 0.002:
                        self.returns.wait_until(min(end, now_ns() + int(gap * 1e9)))
                    else:
                        time.sleep(gap)
            self.measure.end()
            self.returns.wait_until(now_ns() + 300_000_000)  # what is still in flight
        return self.measure.step(label, rate or 0.0, sent, drops)


# -- part 3: bridged calls on the 20 ms clock ------------------------------------------


def calls_step(
    server: ServerProcess,
    calls: int,
    mode: str,
    codecs: tuple[str, str],
    args: argparse.Namespace,
    profile: Profiler,
) -> Step:
    """``calls`` bridged calls (mode "relay") or 2 x ``calls`` echo sockets ("echo"),
    every server socket receiving one packet per 20 ms tick."""
    legs = 2 * calls
    count = min(args.sockets, legs)
    sockets = [udp_socket() for _ in range(count)]
    mine = [(HOST, s.getsockname()[1]) for s in sockets]
    if mode == "echo":
        ports = server.call("echo", legs)
    else:
        remotes = [(mine[(2 * c) % count], mine[(2 * c + 1) % count]) for c in range(calls)]
        ports = [port for pair in server.call("bridge", codecs, remotes) for port in pair]
    types = [CODECS[codecs[i % 2]].payload_type for i in range(legs)]
    senders = []
    for k, sock in enumerate(sockets):
        mine_legs = range(k, legs, count)
        rows = packet_rows([types[i] for i in mine_legs], ssrc_base=0x10000 + k * legs)
        senders.append(BatchSender(sock, rows, [(HOST, ports[i]) for i in mine_legs]))
    slots = max(1, min(args.slots, count))
    returns = Returns(sockets)
    measure = Measure(server, set(ports), returns)
    warmup = int(args.warmup * 1e9)
    sent = 0
    late = 0
    with measure.drops() as drops:
        first = now_ns() + TICK_NS
        window = first + warmup
        stop = window + int(args.seconds * 1e9)
        measuring = False
        tick = 0
        name = f"calls-{calls}-{'-'.join(codecs)}"
        profiling = (
            profile.during(server.pid, name, args.seconds, args.warmup)
            if mode == "relay"
            else contextlib.nullcontext()
        )
        with profiling:
            while (due := first + tick * TICK_NS) < stop:
                for slot in range(slots):
                    slot_due = due + slot * TICK_NS // slots
                    returns.wait_until(slot_due)
                    if not measuring and slot_due >= window:
                        measure.begin()
                        measuring = True
                    if measuring and now_ns() - slot_due > TICK_NS // 4:
                        late += 1
                    for sender in senders[slot::slots]:
                        set_sequence(sender.rows, tick)
                        stamp(sender.rows, now_ns())
                        done = sender.send()
                        if measuring:
                            sent += done
                tick += 1
            measure.end()
            returns.wait_until(now_ns() + 500_000_000)
    stats = server.call("stats")
    server.call("clear")
    returns.close()
    extra = ""
    if mode == "relay":
        unusual = {
            k: v
            for k, v in stats.items()
            if k in ("malformed", "rtp_refused_source", "send_errors")
        }
        extra = f"clock ticks skipped {stats.get('clock_skipped', 0)}" + (
            f", {unusual}" if any(unusual.values()) else ""
        )
    label = f"{calls} calls, " + ("bare echo" if mode == "echo" else "+".join(codecs))
    return measure.step(label, legs * 50.0, sent, drops, late_ticks=late, extra=extra)


def bridged_calls(server: ServerProcess, args: argparse.Namespace, profile: Profiler) -> None:
    print(
        f"\n## Bridged calls: each leg receives and sends 50 packets/s "
        f"({args.seconds:g} s per step after {args.warmup:g} s warm-up, "
        f"{args.slots} send batch(es) per 20 ms tick)\n"
    )
    print(
        "| step | packets/s in | sent | back | loss % | server CPU % | server waited % "
        "| CPU µs/pkt | generator CPU % | RTT p50 ms | RTT p99 ms | RTT max ms | drops server/gen "
        "| late ticks | notes |"
    )
    print("|---|" + "---:|" * 13 + "---|")
    modes = (["echo"] if args.baseline else []) + ["relay"]
    codec_sets = {"same": [("PCMU", "PCMU")], "transcode": [("PCMU", "PCMA")]}.get(
        args.codecs, [("PCMU", "PCMU"), ("PCMU", "PCMA")]
    )
    relayed: list[tuple[int, Step]] = []
    for calls in args.calls:
        for codecs in codec_sets:
            for mode in modes:
                if mode == "echo" and codecs != codec_sets[0]:
                    continue
                s = calls_step(server, calls, mode, codecs, args, profile)
                if mode == "relay" and codecs == codec_sets[0]:
                    relayed.append((calls, s))
                print(
                    f"| {s.label} | {s.offered:,.0f} | {s.sent:,} | {s.received:,} "
                    f"| {100 * s.loss:.3f} | {100 * s.server_cpu / s.seconds:.1f} "
                    f"| {100 * s.server_waited / s.seconds:.1f} | {s.us_per_packet:.2f} "
                    f"| {100 * s.generator_cpu / s.seconds:.0f} "
                    f"| {s.quantile_ms(50):.2f} | {s.quantile_ms(99):.2f} "
                    f"| {s.quantile_ms(100):.1f} | {s.server_drops:,}/{s.generator_drops:,} "
                    f"| {s.late_ticks} | {s.extra} |",
                    flush=True,
                )
                time.sleep(0.3)
    # Many sockets hide overload from the loss figure: each holds 256 packets, 5 s of one
    # leg, so a saturated server shows first as delay (and as media clock ticks skipped).
    lossless = [n for n, s in relayed if s.loss < LOSS_LIMIT]
    keeping_up = [n for n, s in relayed if s.loss < LOSS_LIMIT and s.quantile_ms(99) < RTT_LIMIT_MS]
    print(
        f"\nBridged calls ({'+'.join(codec_sets[0])}) with loss < 0.1%: up to "
        f"{max(lossless, default=0)}; with the round trip's p99 also under {RTT_LIMIT_MS:g} ms: "
        f"up to {max(keeping_up, default=0)} (steps: {', '.join(map(str, args.calls))})."
    )


# -- part 1: where a packet's time goes -----------------------------------------------


def breakdown(server: ServerProcess, count: int) -> None:
    print("\n## Per-packet cost of the pieces, timed in the server process\n")
    print("| piece | ns per packet |")
    print("|---|---:|")
    for piece, ns in server.call("breakdown", count).items():
        print(f"| {piece} | {ns:,.0f} |", flush=True)


# -- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="breakdown,throughput,calls", help="which, in order")
    parser.add_argument("--quick", action="store_true", help="short steps: under a minute")
    parser.add_argument("--step-seconds", type=float, default=1.5, help="throughput step length")
    parser.add_argument("--start-rate", type=float, default=40_000, help="first offered pps")
    parser.add_argument("--factor", type=float, default=1.4, help="rate growth per step")
    parser.add_argument("--max-rate", type=float, default=400_000, help="highest offered pps")
    parser.add_argument("--refine", type=int, default=3, help="bisection steps after the ramp")
    parser.add_argument(
        "--calls", default="100,250,500,750,1000,1250", help="bridged calls per step"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per step")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured start of a step")
    parser.add_argument("--codecs", choices=("same", "transcode", "both"), default="same")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the bare echo at the same load as each calls step")  # fmt: skip
    parser.add_argument("--slots", type=int, default=1, help="send batches per 20 ms tick")
    parser.add_argument("--sockets", type=int, default=16, help="generator sockets")
    parser.add_argument("--ports", default="30000-39999", help="server RTP port range")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--generator-cpu", type=int, default=1)
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="SCHED_FIFO for the server and the generator (root): other programs on a shared "
        "machine then cannot delay them (niceness does not work across sessions' autogroups)",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server into DIR")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    args = parser.parse_args()
    if args.quick:
        args.step_seconds, args.start_rate, args.factor, args.refine = 0.8, 80_000, 1.8, 1
        args.calls, args.seconds, args.warmup = "500", 3.0, 0.5
    args.calls = [int(c) for c in args.calls.split(",") if c]
    low, high = (int(p) for p in args.ports.split("-"))

    if args.realtime:
        # The server process inherits it. Bounded: every step ends by itself, and the kernel
        # keeps 5% of each second for everything else (sched_rt_runtime_us).
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except (OSError, AttributeError) as exc:
            print(f"--realtime: not allowed here ({exc}); going on with normal scheduling")
            args.realtime = False
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    pinned = len(cpus) >= 2 and {args.server_cpu, args.generator_cpu} <= cpus
    server = ServerProcess(args.server_cpu if pinned else None, (low, high))
    if pinned:
        os.sched_setaffinity(0, {args.generator_cpu})
    import uvloop

    print(
        f"# RTP relay benchmark: {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, uvloop {getattr(uvloop, '__version__', '?')}; "
        + (
            f"server pinned to CPU {args.server_cpu}, generator to CPU {args.generator_cpu}; "
            if pinned
            else "not pinned; "
        )
        + ("SCHED_FIFO; " if args.realtime else "normal scheduling; ")
        + f"load average at start {os.getloadavg()[0]:.2f}"
    )
    profile = Profiler(args.profile, args.native)
    started = time.monotonic()
    try:
        for part in args.parts.split(","):
            if part == "breakdown":
                breakdown(server, 50_000 if args.quick else 200_000)
            elif part == "throughput":
                throughput(server, args, profile)
            elif part == "calls":
                bridged_calls(server, args, profile)
            else:
                raise SystemExit(f"--parts: unknown part {part!r} (breakdown, throughput, calls)")
    finally:
        server.stop()
    if CONTENDED:
        print(
            f"\nOther programs held the server's core more than 10% of the time in "
            f"{len(CONTENDED)} step(s) ({', '.join(sorted(set(CONTENDED)))}): their figures "
            "measure that machine's load too (see 'server waited %'). "
            + ("" if args.realtime else "--realtime (as root) keeps them out.")
        )
    print(
        f"\n(took {time.monotonic() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
