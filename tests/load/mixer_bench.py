"""Conference mixer and recorder costs on the 20 ms media clock.

Prints, for conferences of 2 to 200 participants, the cost of one
:meth:`Mixer.mix` tick (mean and 99th percentile, microseconds) in two
cases: three people talking and the rest sending line noise (the sums fit
in int16: the exact integer path), and everyone loud (every listener's
limiter at work, the worst case). The share of the 20 ms tick is the loud
case's mean. Then, for each
recording format and channel layout, the cost of one 20 ms
:meth:`Recorder.write` (its buffer copy, plus the file write and header
patch once per second, amortised) and of closing a minute of audio (fsync,
and the encode for FLAC/OGG, which ``aclose`` runs in an executor). Not part
of the pass/fail suite: the figures are for docs/PERFORMANCE.md.

    .venv/bin/python -m tests.load.mixer_bench --ticks 3000
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mediaserver.media.mixer import Mixer
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.recorder import Recorder

SIZES = (2, 5, 10, 25, 50, 100, 200)
TICK_US = 20_000.0


def timed(action: Callable[[], object], count: int) -> np.ndarray:
    """Microseconds taken by each of ``count`` calls of ``action``."""
    costs = np.empty(count)
    gc.disable()  # a collection inside one call is not the cost of that call
    try:
        for i in range(count):
            start = time.perf_counter_ns()
            action()
            costs[i] = (time.perf_counter_ns() - start) / 1000.0
    finally:
        gc.enable()
    return costs


def summary(costs: np.ndarray) -> str:
    """Mean, median and 99th percentile, in microseconds."""
    return f"{costs.mean():>7.1f} {np.median(costs):>7.1f} {np.percentile(costs, 99):>7.1f}"


def mixer_costs(participants: int, levels: np.ndarray, ticks: int) -> np.ndarray:
    """Tick costs with participant ``i`` sending noise of standard deviation ``levels[i]``."""
    rng = np.random.default_rng(participants)
    mixer: Mixer[int] = Mixer(max_participants=max(SIZES))
    for key in range(participants):
        mixer.add(key)
    # 64 distinct frames per participant, cycled: real audio, not one cached frame.
    noise = rng.normal(0.0, 1.0, (64, participants, FRAME_SAMPLES)) * levels[:, None]
    bank = np.clip(noise, -32768, 32767)
    frames = [{k: row[k] for k in range(participants)} for row in bank.astype(np.int16)]
    tick = iter(range(1 << 62))

    def one_tick() -> None:
        mixer.mix(frames[next(tick) % len(frames)])

    timed(one_tick, 100)  # warm-up
    return timed(one_tick, ticks)


def recorder_costs(folder: Path, fmt: str, channels: str, seconds: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(1)
    left: Pcm = rng.normal(0, 3000, seconds * 8000).astype(np.int16)
    right: Pcm = rng.normal(0, 3000, seconds * 8000).astype(np.int16)
    recorder = Recorder(folder / f"bench-{channels}.{fmt}", channels=channels)  # type: ignore[arg-type]
    frame = iter(range(0, len(left), FRAME_SAMPLES))

    def one_write() -> None:
        start = next(frame)
        if channels == "dual":
            recorder.write(
                left[start : start + FRAME_SAMPLES], right[start : start + FRAME_SAMPLES]
            )
        else:
            recorder.write(left[start : start + FRAME_SAMPLES])

    costs = timed(one_write, len(left) // FRAME_SAMPLES)
    start = time.perf_counter()
    recorder.close()
    return costs, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3000, help="mixer ticks per measurement")
    parser.add_argument("--seconds", type=int, default=60, help="audio per recording")
    args = parser.parse_args()

    print("mixer: one 20 ms tick (us)")
    print("  talk: 3 talkers at speech level, the rest line noise (the exact integer path)")
    print("  loud: everyone at -4 dBFS (every listener's limiter at work: the worst case)")
    print(f"{'':>5} {'talk':>23}   {'loud':>23}")
    stats = f"{'mean':>7} {'p50':>7} {'p99':>7}"
    print(f"{'N':>5} {stats}   {stats} {'tick%':>6}")
    for participants in SIZES:
        talk_levels = np.full(participants, 30.0)
        talk_levels[:3] = 3000.0
        talk = mixer_costs(participants, talk_levels, args.ticks)
        loud = mixer_costs(participants, np.full(participants, 20000.0), args.ticks)
        share = 100 * loud.mean() / TICK_US
        print(f"{participants:>5} {summary(talk)}   {summary(loud)} {share:>5.2f}%")

    print(f"\nrecorder: one 20 ms write (us), {args.seconds} s of audio per file")
    print(f"{'format':>7} {'channels':>8} {stats} {'max':>7} {'close ms':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("wav", "flac", "ogg"):
            for channels in ("mono", "dual"):
                costs, close_s = recorder_costs(Path(tmp), fmt, channels, args.seconds)
                print(
                    f"{fmt:>7} {channels:>8} {summary(costs)}"
                    f" {costs.max():>7.1f} {close_s * 1000:>9.1f}"
                )


if __name__ == "__main__":
    main()
