"""A py-spy profile of a benchmark's server process during chosen steps.

:class:`Profiler` runs ``py-spy record`` (raw format) on a process for the
length of a step and prints the busiest functions and source lines as
Markdown tables. Without ``--native``, py-spy samples without stopping the
process (``--nonblocking``), so the step's own figures stay close to an
unprofiled run; time spent in C code (uvloop, system calls) is then charged
to the Python line that called it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


class Profiler:
    """Runs ``py-spy record`` on the server during chosen steps and prints the hot frames."""

    def __init__(self, folder: str | None, native: bool) -> None:
        self.folder = Path(folder) if folder else None
        self.native = native
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.exe = exe if Path(exe).exists() else None

    @contextlib.contextmanager
    def during(self, pid: int, name: str, seconds: float, delay: float = 0.0) -> Iterator[None]:
        if self.folder is None or self.exe is None:
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        output = self.folder / f"{name.replace(' ', '_').replace('>', '')}.txt"
        command = [self.exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw"]
        command += ["--duration", str(max(1, int(seconds))), "--output", str(output)]
        # Native stacks (uvloop's and the kernel calls under it) need py-spy to stop the process.
        command += ["--native"] if self.native else ["--nonblocking"]
        output.unlink(missing_ok=True)
        process: subprocess.Popen[bytes] | None = None

        def start() -> None:
            nonlocal process
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        timer = None
        if delay:
            timer = threading.Timer(delay, start)
            timer.start()
        else:
            start()
        try:
            yield
        finally:
            if timer is not None:
                timer.join()
            if process is not None:
                try:
                    process.wait(timeout=seconds + 30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if output.exists():
                print_profile(output, name)
            elif process is not None and process.stderr is not None:
                print(f"\npy-spy failed: {process.stderr.read().decode(errors='replace')[-300:]}")


def print_profile(path: Path, name: str, top: int = 16) -> None:
    """Share of the samples per function (self and inclusive) and per source line (self),
    from py-spy's raw output (one line per stack: frames joined by ';', then a count)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    total = 0
    for record in path.read_text().splitlines():
        stack, _, count_text = record.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        functions = [_function(frame) for frame in frames]
        total += count
        own[functions[-1]] += count
        lines[_line(frames[-1])] += count
        for function in set(functions):
            inclusive[function] += count
    print(f"\npy-spy, {name}: {total} samples (busy time only), saved in {path}\n")
    print("| function | self % | total % |")
    print("|---|---:|---:|")
    for function, count in own.most_common(top):
        print(
            f"| {function} | {100 * count / total:.1f} | {100 * inclusive[function] / total:.1f} |"
        )
    print("\n| source line | self % |")
    print("|---|---:|")
    for line, count in lines.most_common(top):
        print(f"| {line} | {100 * count / total:.1f} |")
    print()


def _function(frame: str) -> str:
    """``name (path/to/file.py:12)`` -> ``name (file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].rsplit(':', 1)[0].rstrip(')')})"


def _line(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].rstrip(')')})"
