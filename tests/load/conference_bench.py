"""Conference tick cost on the 20 ms media clock, for N participants on real UDP legs.

For each size, N :class:`RtpLeg` are bound on 127.0.0.1 (half PCMU, half
PCMA, all sending to one sink socket), join one :class:`Conference`, and are
fed one RTP packet of noisy audio each per tick through
``datagram_received`` (the jitter-buffer push, not timed). What is timed is
one media tick as the clock runs it: every member's ``on_tick``, i.e. the
room's (pop N jitter buffers, mix, encode per codec, send N packets) and
each leg's own (nothing to send while the room feeds it). Two cases:

* ``rfc4733``: participants negotiated telephone-event: no in-band DTMF;
* ``in-band``: none did, so the in-band DTMF scanner also reads every
  participant's decoded frame (one batched detector run per tick).

Printed: mean, median and 99th percentile in microseconds, and the mean's
share of the 20 ms tick. Not part of the pass/fail suite.

    .venv/bin/python -m tests.load.conference_bench --ticks 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import time

import numpy as np

from mediaserver.media.clock import MediaClock, Ticked
from mediaserver.media.conference import Conference, Member
from mediaserver.media.g711 import PCMA, PCMU
from mediaserver.media.leg import RtpLeg
from mediaserver.media.pcm import FRAME_SAMPLES
from mediaserver.media.rtp import build_rtp

SIZES = (3, 10, 25, 50, 100, 200)
TICK_US = 20_000.0


class BenchClock(MediaClock):
    """Ticked by the benchmark, not by a timer."""

    def add(self, member: Ticked) -> None:
        self._members[member] = None

    def tick(self, now: float) -> None:
        self.ticks += 1
        for member in list(self._members):
            member.on_tick(now)


async def measure(participants: int, ticks: int, inband: bool) -> np.ndarray:
    loop = asyncio.get_running_loop()
    clock = BenchClock()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    target = sink.getsockname()
    legs: list[RtpLeg] = []
    for index in range(participants):
        codec = PCMU if index % 2 == 0 else PCMA
        leg = RtpLeg(
            clock,
            codec,
            payload_type=codec.payload_type,
            telephone_event_pt=None if inband else 101,
            remote=target,
            on_digit=lambda key: None,
        )
        await loop.create_datagram_endpoint(lambda leg=leg: leg, local_addr=("127.0.0.1", 0))  # type: ignore[misc]
        leg.start()
        legs.append(leg)
    room = Conference("bench", clock)
    for index, leg in enumerate(legs):
        room.join(Member(leg, f"c{index}", beep_on_enter=False, beep_on_exit=False))
    rng = np.random.default_rng(participants)
    bank = [
        [codec.encode(np.clip(rng.normal(0, 2000, FRAME_SAMPLES), -32768, 32767).astype(np.int16))
         for codec in (PCMU, PCMA)]
        for _ in range(16)
    ]  # fmt: skip
    peer = ("127.0.0.1", 9)
    costs = np.empty(ticks)
    gc.disable()
    try:
        for tick in range(ticks + 50):
            for index, leg in enumerate(legs):
                payload = bank[tick % 16][index % 2]
                packet = build_rtp(
                    leg.payload_type, tick, tick * FRAME_SAMPLES, 1000 + index, payload
                )
                leg.datagram_received(packet, peer)
            start = time.perf_counter_ns()
            clock.tick(loop.time())
            if tick >= 50:  # warm-up: the jitter buffers settle
                costs[tick - 50] = (time.perf_counter_ns() - start) / 1000.0
            while True:  # keep the sink's buffer from filling
                try:
                    sink.recv(2048)
                except BlockingIOError:
                    break
    finally:
        gc.enable()
        room.end("left")
        for leg in legs:
            leg.close()
        sink.close()
    return costs


def summary(costs: np.ndarray) -> str:
    return (
        f"{costs.mean():>8.1f} {np.median(costs):>8.1f} {np.percentile(costs, 99):>8.1f}"
        f" {100 * costs.mean() / TICK_US:>6.2f}%"
    )


async def run(ticks: int) -> None:
    print("conference: one 20 ms media tick with N participants (us)")
    head = f"{'mean':>8} {'p50':>8} {'p99':>8} {'tick%':>7}"
    print(f"{'N':>5}  {'rfc4733':<35} {'in-band':<35}")
    print(f"{'':>5}  {head}   {head}")
    for participants in SIZES:
        plain = await measure(participants, ticks, inband=False)
        inband = await measure(participants, ticks, inband=True)
        per = plain.mean() / participants
        line = f"{participants:>5}  {summary(plain)}   {summary(inband)}"
        print(f"{line}   ({per:.1f} us/participant)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000, help="ticks measured per size")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args.ticks))
    except ImportError:
        asyncio.run(run(args.ticks))


if __name__ == "__main__":
    main()
