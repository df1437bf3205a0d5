"""Run sipp (3.6.1) as a SIP peer: a UAC placing calls, or a UAS in the background.

Every run binds to 127.0.0.1 only, on ports picked at run time (SIP with
``-p``, media with ``-mp`` and its +2 video twin, the control socket with
``-cp``/``-ci``), reads no stdin, stops after ``calls`` calls (``-m``) and
after ``timeout`` seconds at the latest (``-timeout ... -timeout_error``,
with a hard kill a few seconds later), so a run can never hang a test.

    result = run_sipp("127.0.0.1:5060", scenario="uac", service="echo", calls=5, rate=10)
    result.assert_ok(calls=5)

    with SippBackground(scenario="uas", calls=1) as uas:      # or: async with
        ...dial uas.uri from the server or a softphone...
        result = uas.wait(timeout=10)

Scenarios: a built-in name (``uac``, ``uas``, ``regexp``, ``branchc``,
``branchs``), the name of a file in tests/integration/sipp/ without
``.xml`` (``dtmf_2833``, ``uac_bye_from_server``, ``uas_answer_then_bye``),
or a path to any XML file.

Statistics come from the ``-trace_stat`` CSV (cumulative ``(C)`` columns of
its last line); the SIP messages of the run (``-trace_msg``) and its error
log (``-trace_err``) are read back into the result for assertion messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict, Unpack

from tests.support.net import HOST, free_port, free_port_block, wait_until_bound
from tests.support.peer import PeerProcess

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "integration" / "sipp"
BUILTIN_SCENARIOS = frozenset(
    {"uac", "uas", "regexp", "branchc", "branchs", "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B"}
)
PCAP_DIR = Path("/usr/share/sip-tester")

Transport = Literal["u1", "un", "t1", "tn"]


class SippOptions(TypedDict, total=False):
    """Keyword options shared by :func:`run_sipp`, :func:`run_sipp_async` and
    :class:`SippBackground` (see :func:`run_sipp` for their meaning)."""

    calls: int
    rate: float | None
    rate_period_ms: int | None
    concurrency: int | None
    local_port: int | None
    transport: Transport
    service: str | None
    media_port: int | None
    rtp_echo: bool
    duration_ms: int | None
    variables: Mapping[str, object] | None
    keys: Mapping[str, object] | None
    inject_csv: str | Path | None
    recv_timeout_ms: int | None
    timeout: float
    extra: Sequence[str]


# Seconds between our own deadline and sipp's -timeout before we kill it.
_KILL_GRACE = 5.0


def scenario_path(name: str | Path) -> Path:
    """Path of a scenario from tests/integration/sipp/ by name, or of an XML file."""
    path = Path(name)
    if path.suffix == ".xml":
        if not path.is_file():
            raise FileNotFoundError(f"sipp scenario not found: {path}")
        return path
    candidate = SCENARIO_DIR / f"{name}.xml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.xml")))
        raise FileNotFoundError(
            f"no sipp scenario {name!r}: use a built-in ({', '.join(sorted(BUILTIN_SCENARIOS))}),"
            f" one of tests/integration/sipp/ ({known}), or a path to an .xml file"
        )
    return candidate


@dataclass
class SippCommand:
    """A ready-to-run sipp command line and the ports it will use."""

    args: list[str]
    workdir: Path
    local_port: int
    media_port: int
    control_port: int
    transport: Transport
    service: str
    timeout: float

    @property
    def uri(self) -> str:
        """SIP URI of this sipp instance (for a UAS: what to dial)."""
        suffix = ";transport=tcp" if self.transport.startswith("t") else ""
        return f"sip:{self.service}@{HOST}:{self.local_port}{suffix}"

    @property
    def stats_file(self) -> Path:
        return self.workdir / "stats.csv"

    @property
    def messages_file(self) -> Path:
        return self.workdir / "messages.log"

    @property
    def errors_file(self) -> Path:
        return self.workdir / "errors.log"

    @property
    def screen_file(self) -> Path:
        return self.workdir / "screen.log"

    @property
    def logs_file(self) -> Path:
        return self.workdir / "logs.log"


def sipp_command(
    target: str | None = None,
    *,
    scenario: str | Path = "uac",
    calls: int = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    concurrency: int | None = None,
    local_port: int | None = None,
    transport: Transport = "u1",
    service: str | None = None,
    media_port: int | None = None,
    rtp_echo: bool = False,
    duration_ms: int | None = None,
    variables: Mapping[str, object] | None = None,
    keys: Mapping[str, object] | None = None,
    inject_csv: str | Path | None = None,
    recv_timeout_ms: int | None = None,
    timeout: float = 30.0,
    extra: Sequence[str] = (),
    workdir: str | Path,
) -> SippCommand:
    """Build the sipp command line (see :func:`run_sipp` for the parameters)."""
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester; ./scripts/setup)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tcp = transport.startswith("t")
    if local_port is None:
        local_port = free_port("tcp" if tcp else "udp")
    if media_port is None:
        # sipp binds -mp for audio and -mp + 2 for video.
        media_port = free_port_block(4, "udp", even=True)
    control_port = free_port("udp")
    service = service or "service"

    args = ["sipp"]
    if target:
        args.append(target)
    scenario_name = str(scenario)
    if scenario_name in BUILTIN_SCENARIOS:
        args += ["-sn", scenario_name]
    else:
        args += ["-sf", str(scenario_path(scenario).resolve())]
    args += [
        "-i", HOST,
        "-p", str(local_port),
        "-t", transport,
        "-mi", HOST,
        "-mp", str(media_port),
        "-ci", HOST,
        "-cp", str(control_port),
        "-s", service,
        "-m", str(calls),
        "-nostdin",
        "-timeout", f"{max(1, math.ceil(timeout))}s",
        "-timeout_error",
        "-trace_stat", "-stf", "stats.csv",
        "-trace_screen", "-screen_file", "screen.log",
        "-trace_msg", "-message_file", "messages.log",
        "-trace_err", "-error_file", "errors.log",
        "-trace_logs", "-log_file", "logs.log",
    ]  # fmt: skip
    if rate is not None:
        args += ["-r", f"{rate:g}"]
    if rate_period_ms is not None:
        args += ["-rp", str(rate_period_ms)]
    if concurrency is not None:
        args += ["-l", str(concurrency)]
    if rtp_echo:
        args.append("-rtp_echo")
    if duration_ms is not None:
        args += ["-d", str(duration_ms)]
    if recv_timeout_ms is not None:
        args += ["-recv_timeout", str(recv_timeout_ms)]
    if inject_csv is not None:
        args += ["-inf", str(Path(inject_csv).resolve())]
    for name, value in (variables or {}).items():
        args += ["-set", name, str(value)]
    for name, value in (keys or {}).items():
        args += ["-key", name, str(value)]
    args += list(extra)
    return SippCommand(
        args=args,
        workdir=workdir,
        local_port=local_port,
        media_port=media_port,
        control_port=control_port,
        transport=transport,
        service=service,
        timeout=timeout,
    )


# ---------------------------------------------------------------- results


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def parse_stat_csv(text: str) -> dict[str, str]:
    """Last line of a ``-trace_stat`` CSV as {column: value} (empty if none)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    rows = list(csv.reader(io.StringIO("\n".join([lines[0], lines[-1]])), delimiter=";"))
    return {k: v for k, v in zip(rows[0], rows[1], strict=False) if k}


def parse_screen_counts(text: str) -> dict[str, int]:
    """Cumulative counters of the last ``-trace_screen`` screen (fallback for the CSV)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 3 and cells[2].isdigit():
            counts[cells[0]] = int(cells[2])
    return counts


@dataclass
class SippResult:
    """What a sipp run did. ``ok`` means exit code 0 and no failed call."""

    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    stats: dict[str, str]
    successful: int
    failed: int
    created: int
    messages: str = ""
    errors: str = ""
    logs: str = ""
    local_port: int = 0
    media_port: int = 0
    timed_out: bool = False
    workdir: Path | None = None
    extra_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and not self.timed_out

    def counter(self, name: str) -> int:
        """A cumulative counter of the stats CSV, e.g. ``counter("Retransmissions")``."""
        value = self.stats.get(f"{name}(C)", "0") or "0"
        return int(float(value))

    def describe(self) -> str:
        """A summary for assertion messages: exit code, counts, errors, last messages."""
        tail = "\n".join(self.messages.splitlines()[-40:])
        return (
            f"sipp exit={self.exit_code} successful={self.successful} failed={self.failed}"
            f" created={self.created} timed_out={self.timed_out}\n"
            f"command: {' '.join(self.args)}\n"
            f"stderr: {self.stderr.strip()[-2000:]}\n"
            f"errors: {self.errors.strip()[-2000:]}\n"
            f"last messages:\n{tail}"
        )

    def assert_ok(self, calls: int | None = None) -> None:
        """Raise AssertionError (with :meth:`describe`) unless all went well."""
        good = self.ok and (calls is None or self.successful == calls)
        if not good:
            raise AssertionError(self.describe())


def _collect(
    command: SippCommand, exit_code: int, stdout: str, stderr: str, timed_out: bool
) -> SippResult:
    stats = parse_stat_csv(_read_text(command.stats_file))
    screen = parse_screen_counts(_read_text(command.screen_file))

    def count(csv_name: str, screen_name: str) -> int:
        value = stats.get(f"{csv_name}(C)")
        if value:
            return int(float(value))
        return screen.get(screen_name, 0)

    return SippResult(
        args=command.args,
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        stats=stats,
        successful=count("SuccessfulCall", "Successful call"),
        failed=count("FailedCall", "Failed call"),
        created=int(float(stats.get("TotalCallCreated", "0") or "0")),
        messages=_read_text(command.messages_file),
        errors=_read_text(command.errors_file),
        logs=_read_text(command.logs_file),
        local_port=command.local_port,
        media_port=command.media_port,
        timed_out=timed_out,
        workdir=command.workdir,
        extra_counts=screen,
    )


# ---------------------------------------------------------------- one-shot runs


def run_sipp(
    target: str | None = None,
    *,
    scenario: str | Path = "uac",
    calls: int = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    concurrency: int | None = None,
    local_port: int | None = None,
    transport: Transport = "u1",
    service: str | None = None,
    media_port: int | None = None,
    rtp_echo: bool = False,
    duration_ms: int | None = None,
    variables: Mapping[str, object] | None = None,
    keys: Mapping[str, object] | None = None,
    inject_csv: str | Path | None = None,
    recv_timeout_ms: int | None = None,
    timeout: float = 30.0,
    extra: Sequence[str] = (),
    workdir: str | Path | None = None,
) -> SippResult:
    """Run sipp to completion and return what happened.

    target: ``host:port`` to send to (None for a UAS that only answers).
    scenario: built-in name, name of a tests/integration/sipp/ file, or XML path.
    calls: ``-m``, stop after this many calls. rate: ``-r`` calls per second
    (per ``rate_period_ms``, ``-rp``). concurrency: ``-l``, max simultaneous calls.
    local_port / media_port: picked when None. transport: ``-t``.
    service: ``-s``, user part of the request URI (the number/user called).
    rtp_echo: ``-rtp_echo``, echo RTP received on the media port.
    duration_ms: ``-d``, length of ``<pause/>`` (the built-in uac's call length).
    variables: ``-set name value`` (scenario ``<Global>`` variables).
    keys: ``-key name value`` (``[name]`` in messages).
    inject_csv: ``-inf`` file. recv_timeout_ms: ``-recv_timeout``.
    timeout: seconds before sipp gives up (``-timeout``, ``-timeout_error``).
    extra: more arguments, appended as they are.
    workdir: where sipp runs and writes its logs (a temporary folder, removed
    afterwards, when None; give ``tmp_path`` to keep them for inspection).

    This call blocks. From an ``async`` test with the server on the same
    event loop, use :func:`run_sipp_async` instead.
    """
    with _workdir(workdir) as wd:
        command = sipp_command(
            target,
            scenario=scenario,
            calls=calls,
            rate=rate,
            rate_period_ms=rate_period_ms,
            concurrency=concurrency,
            local_port=local_port,
            transport=transport,
            service=service,
            media_port=media_port,
            rtp_echo=rtp_echo,
            duration_ms=duration_ms,
            variables=variables,
            keys=keys,
            inject_csv=inject_csv,
            recv_timeout_ms=recv_timeout_ms,
            timeout=timeout,
            extra=extra,
            workdir=wd,
        )
        proc = subprocess.Popen(
            command.args,
            cwd=command.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        timed_out = False
        try:
            stdout, stderr = proc.communicate(timeout=timeout + _KILL_GRACE)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            stdout, stderr = proc.communicate()
        finally:
            if proc.poll() is None:
                _kill(proc)
                proc.wait()
        return _collect(command, proc.returncode, stdout, stderr, timed_out)


async def run_sipp_async(
    target: str | None = None,
    *,
    scenario: str | Path = "uac",
    workdir: str | Path | None = None,
    **options: Unpack[SippOptions],
) -> SippResult:
    """:func:`run_sipp` without blocking the event loop (same parameters)."""
    async with SippBackground(
        target, scenario=scenario, workdir=workdir, wait_ready=False, **options
    ) as sipp:
        return await sipp.wait_async()


@contextlib.contextmanager
def _workdir(workdir: str | Path | None) -> Iterator[Path]:
    if workdir is not None:
        yield Path(workdir)
        return
    with tempfile.TemporaryDirectory(prefix="sipp-") as tmp:
        yield Path(tmp)


def _kill(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Kill sipp and anything it started (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------- background


class SippBackground(PeerProcess):
    """sipp running in the background (typically a UAS), killed at exit.

    Use as ``with`` or ``async with``. On entry sipp is started and we wait
    until its SIP port is bound; ``uri`` is what to dial. ``wait()`` (or
    ``await wait_async()``) waits for sipp to finish its ``calls`` and
    returns the :class:`SippResult`; leaving the block stops it if it is
    still running (soft stop with SIGUSR1, then SIGKILL) and removes the
    temporary work folder.

    Takes the same keyword arguments as :func:`run_sipp`; ``scenario``
    defaults to ``"uas"``.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        scenario: str | Path = "uas",
        workdir: str | Path | None = None,
        wait_ready: bool = True,
        ready_timeout: float = 5.0,
        **options: Unpack[SippOptions],
    ) -> None:
        self._target = target
        self._scenario = scenario
        self._options = options
        self._given_workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._wait_ready = wait_ready
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self.command: SippCommand | None = None
        self.result: SippResult | None = None

    # -- properties

    def _cmd(self) -> SippCommand:
        if self.command is None:
            raise RuntimeError("sipp is not started")
        return self.command

    @property
    def uri(self) -> str:
        return self._cmd().uri

    @property
    def local_port(self) -> int:
        return self._cmd().local_port

    @property
    def media_port(self) -> int:
        return self._cmd().media_port

    @property
    def address(self) -> str:
        """``127.0.0.1:port`` of this sipp's SIP socket."""
        return f"{HOST}:{self._cmd().local_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- life cycle

    def start(self) -> SippBackground:
        if self._given_workdir is not None:
            workdir = Path(self._given_workdir)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="sipp-")
            workdir = Path(self._tmp.name)
        try:
            self.command = sipp_command(
                self._target, scenario=self._scenario, workdir=workdir, **self._options
            )
            with (
                (workdir / "stdout.txt").open("w") as out,
                (workdir / "stderr.txt").open("w") as err,
            ):
                self._proc = subprocess.Popen(
                    self.command.args,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            self._started_at = time.monotonic()
            if self._wait_ready:
                self._wait_bound()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_bound(self) -> None:
        """Wait until sipp's SIP socket is bound (it is ready for calls)."""
        proc, command = self._proc, self._cmd()
        assert proc is not None
        kind: Literal["udp", "tcp"] = "tcp" if command.transport.startswith("t") else "udp"
        deadline = time.monotonic() + self._ready_timeout
        while True:
            code = proc.poll()
            if code is not None:
                if code != 0:
                    raise RuntimeError(f"sipp exited at start:\n{self._finish(False).describe()}")
                return
            try:
                wait_until_bound(command.local_port, kind, timeout=0.1)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def _finish(self, timed_out: bool) -> SippResult:
        proc = self._proc
        assert proc is not None and self.command is not None
        self.result = _collect(
            self.command,
            proc.returncode if proc.returncode is not None else -9,
            _read_text(self.command.workdir / "stdout.txt"),
            _read_text(self.command.workdir / "stderr.txt"),
            timed_out,
        )
        return self.result

    def _deadline_left(self) -> float:
        return self._cmd().timeout + _KILL_GRACE - (time.monotonic() - self._started_at)

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to exit by itself (its ``calls`` done or its own timeout)."""
        if self.result is not None:
            return self.result
        proc = self._proc
        if proc is None:
            raise RuntimeError("sipp is not started")
        limit = self._deadline_left() if timeout is None else timeout
        try:
            proc.wait(timeout=max(0.0, limit))
        except subprocess.TimeoutExpired:
            _kill(proc)
            proc.wait()
            return self._finish(True)
        return self._finish(False)

    async def wait_async(self, timeout: float | None = None) -> SippResult:
        """:meth:`wait` without blocking the event loop."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("sipp is not started")
        limit = self._deadline_left() if timeout is None else timeout
        end = time.monotonic() + max(0.0, limit)
        while proc.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.02)
        return self.wait(timeout=0 if proc.poll() is None else None)

    def stop(self, grace: float = 2.0) -> SippResult:
        """Stop sipp now: soft exit (SIGUSR1: no new calls), then kill after ``grace`` s."""
        if self.result is not None:
            return self.result
        proc = self._proc
        if proc is None:
            raise RuntimeError("sipp is not started")
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGUSR1)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.wait()
        return self._finish(False)

    def close(self) -> None:
        """Stop sipp if needed and remove the temporary work folder."""
        try:
            if self._proc is not None and self.result is None:
                self.stop(grace=1.0)
        finally:
            if self._proc is not None and self._proc.poll() is None:
                _kill(self._proc)
                self._proc.wait()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None


def assert_digest_is_right(messages: str, password: str) -> None:
    """Recompute the Proxy-Authorization response sipp received (RFC 2617 3.2.2)."""
    line = next(ln for ln in messages.splitlines() if ln.startswith("Proxy-Authorization:"))
    fields = dict(re.findall(r'(\w+)="?([^",]+)"?', line.split("Digest", 1)[1]))
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{fields['username']}:{fields['realm']}:{password}")
    ha2 = md5(f"INVITE:{fields['uri']}")
    expected = md5(
        f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}"
    )
    assert fields["response"] == expected, line
