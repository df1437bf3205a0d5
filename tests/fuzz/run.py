"""Long fuzzing runs: ``scripts/fuzz --minutes 10`` (``python -m tests.fuzz.run``).

Each target of :mod:`tests.fuzz.targets`, plus the HTTP API
(:mod:`tests.fuzz.api`) and the SIP endpoint (:mod:`tests.fuzz.sip_server`)
of a server started on 127.0.0.1, gets an equal share of the time. Within its
share a target runs rounds of hypothesis examples with fresh randomness and
no example database; a failing round is shrunk by hypothesis and printed
(the minimal input and its traceback), then the run goes on. At the end one
line per target gives the inputs tried, the failures and their distinct
causes; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.fuzz.targets import TARGETS, Target

_LOGGED_TRACEBACK = re.compile(r'File \\"([^"\\]+)\\", line (\d+)')
ROUND_EXAMPLES = 500  # per round; the time is checked between rounds
SERVER_ROUND_EXAMPLES = 50  # a started server answers in milliseconds, not microseconds
SERVER_TARGETS = ("http-api", "sip-server")


@dataclass
class Tally:
    name: str
    inputs: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # distinct causes: type and place


def fuzz(target: Target, seconds: float, tally: Tally) -> None:
    """Run ``target`` for ``seconds``, counting inputs and recording each distinct failure."""

    def one(value: Any) -> None:
        tally.inputs += 1
        target.check(value)

    probe: Callable[[], None] = settings(
        max_examples=SERVER_ROUND_EXAMPLES if target.name in SERVER_TARGETS else ROUND_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(given(target.inputs)(one))
    end = time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < end:
        try:
            probe()
        except Exception as exc:  # a failure hypothesis has shrunk: print it, go on
            causes = [c for c in _causes(exc) if c not in tally.failures]
            if causes:
                tally.failures.extend(causes)
                print(f"--- {target.name}: FAILURE {', '.join(causes)}", flush=True)
                traceback.print_exception(exc, file=sys.stdout)
    tally.seconds = time.monotonic() - start


def _causes(exc: BaseException) -> list[str]:
    """Each distinct failure as its type and the project line it came from."""
    if isinstance(exc, BaseExceptionGroup):  # hypothesis found several at once
        return [cause for sub in exc.exceptions for cause in _causes(sub)]
    logged = _LOGGED_TRACEBACK.findall(str(exc))
    if logged:
        # A server-side error from the log: the place it was raised tells causes apart.
        where = [m for m in logged if "/mediaserver/" in m[0]] or logged
        name = str(exc).rsplit("\\n", 1)[-1].split(":", 1)[0].strip('"} ')
        path = " from ".join(f"{Path(f).name}:{line}" for f, line in reversed(where[-3:]))
        return [f"{name} at {path} (in the server)"]
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "/mediaserver/" in f.filename] or frames
    where = f"{Path(own[-1].filename).name}:{own[-1].lineno}" if own else "?"
    return [f"{type(exc).__name__} at {where}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total time (default 10)")
    parser.add_argument(
        "--target",
        action="append",
        choices=[*sorted(TARGETS), *SERVER_TARGETS],
        help="only these targets (repeatable); default all",
    )
    args = parser.parse_args(argv)
    # kill PID: unwind, so the servers started for the server targets are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = args.target or [*TARGETS, *SERVER_TARGETS]
    share = args.minutes * 60 / len(names)
    tallies: list[Tally] = []
    for name in names:
        tally = Tally(name)
        tallies.append(tally)
        print(f"=== {name}: {share:.0f} s", flush=True)
        if name in SERVER_TARGETS:
            _fuzz_server(name, share, tally)
        else:
            fuzz(TARGETS[name], share, tally)
        print(f"    {tally.inputs} inputs, {len(tally.failures)} failure(s)", flush=True)
    print()
    print(f"{'target':<16}{'seconds':>9}{'inputs':>10}{'failures':>10}")
    for t in tallies:
        print(f"{t.name:<16}{t.seconds:>9.0f}{t.inputs:>10}{len(t.failures):>10}")
        for cause in t.failures:
            print(f"    {cause}")
    total = sum(t.inputs for t in tallies)
    print(f"{'total':<16}{sum(t.seconds for t in tallies):>9.0f}{total:>10}"
          f"{sum(len(t.failures) for t in tallies):>10}")  # fmt: skip
    return 1 if any(t.failures for t in tallies) else 0


def _fuzz_server(name: str, seconds: float, tally: Tally) -> None:
    """A target that needs ``mediaserver run`` on 127.0.0.1."""
    from tests.fuzz.api import api_target
    from tests.fuzz.sip_server import sip_server_target, start_sip_server
    from tests.integration.conftest import start_server

    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        if name == "http-api":
            server = start_server(Path(tmp), log_level="info")
            target = api_target(server)
        else:
            server = start_sip_server(Path(tmp))
            target = sip_server_target(server)
        try:
            fuzz(target, seconds, tally)
        finally:
            code = server.stop()
            if code != 0:
                tally.failures.append(f"server exited with {code}")
                print(server.log_text()[-5000:])


if __name__ == "__main__":
    sys.exit(main())
