"""What SRTP adds to each relayed packet (an in-process micro-benchmark).

A relay between two SRTP legs authenticates and decrypts each packet as it
arrives (:meth:`SrtpChannel.unprotect`) and encrypts and signs it as it
leaves (:meth:`SrtpChannel.protect`); a bridge between an SRTP leg and a
plain one does one of the two. This times both on 20 ms PCMU packets (172
bytes) for each suite, in this process: it says where time goes, it is not
the server's capacity (see docs/PERFORMANCE.md for figures measured from
outside). Not part of the pass/fail suite.

    .venv/bin/python -m tests.load.srtp_bench --packets 200000
"""

from __future__ import annotations

import argparse
import gc
import time

from mediaserver.media.rtp import build_rtp
from mediaserver.media.srtp import SrtpChannel
from mediaserver.sip.sdes import SUITES


def measure(suite: str, packets: int) -> tuple[float, float]:
    """Nanoseconds per packet to protect, then to unprotect, ``packets`` packets."""
    key_a, key_b = bytes([1]) * SUITES[suite], bytes([2]) * SUITES[suite]
    sender = SrtpChannel(suite, local=key_a, remote=key_b)
    receiver = SrtpChannel(suite, local=key_b, remote=key_a)
    plain = [
        build_rtp(0, n & 0xFFFF, n * 160, 0x1234, b"\xff" * 160, False) for n in range(packets)
    ]
    gc.disable()
    try:
        start = time.perf_counter_ns()
        protected = [sender.protect(packet) for packet in plain]
        middle = time.perf_counter_ns()
        for packet in protected:
            receiver.unprotect(packet or b"")
        end = time.perf_counter_ns()
    finally:
        gc.enable()
    if receiver.refused:
        raise AssertionError(f"{receiver.refused} packets did not authenticate")
    return (middle - start) / packets, (end - middle) / packets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    print("| suite | protect ns/packet | unprotect ns/packet | both (SRTP to SRTP relay) |")
    print("|---|---:|---:|---:|")
    for suite in SUITES:
        protect, unprotect = measure(suite, args.packets)
        print(f"| {suite} | {protect:.0f} | {unprotect:.0f} | {protect + unprotect:.0f} |")


if __name__ == "__main__":
    main()
