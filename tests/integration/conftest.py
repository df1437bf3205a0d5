"""A real mediaserver process for integration tests.

The server runs as a subprocess (``python -m mediaserver run``) on ports it
picks itself (``--sip-port 0 --http-port 0``); the fixture reads them from
the start-up line. The HTTP API takes :data:`TEST_API_KEY` (or, with
``api_key=None``, the key the server generates and prints). Its log goes to
a file that is printed when a test fails, so a failing call can be read
line by line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "configs" / "scenarios"

CONFIG_TEMPLATE = """\
sip:
  listen: {listen}
  user_agent: mediaserver-test
  trusted_networks: {trusted}
rtp:
  ports: {rtp_low}-{rtp_high}
  codecs: {codecs}
{rtp_extra}http:
  api_keys: {api_keys}
{http_extra}scenarios_dir: {scenarios}
routes:
{routes}
"""

DEFAULT_ROUTES = {"echo": "echo", "ivr": "ivr", "welcome": "welcome", "*": "welcome"}
TEST_API_KEY = "test-api-key-0123456789"


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    sip_port: int
    data_dir: Path
    log_path: Path
    http_port: int = 0
    api_key: str = ""
    public_key: str = ""  # printed on the first start in a data dir only
    tls_port: int = 0  # when the config listens on tls:127.0.0.1:0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def uri(self, user: str, transport: str = "udp") -> str:
        suffix = "" if transport == "udp" else f";transport={transport}"
        port = self.tls_port if transport == "tls" else self.sip_port
        return f"sip:{user}@127.0.0.1:{port}{suffix}"

    @property
    def target(self) -> str:
        """host:port for sipp."""
        return f"127.0.0.1:{self.sip_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self, event: str | None = None) -> list[dict[str, Any]]:
        """The server's JSON log lines; only those whose event is ``event`` when given."""
        out = []
        for line in self.log_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if event is None or record.get("event") == event:
                out.append(record)
        return out

    def scenario_logs(self, prefix: str) -> list[str]:
        """The messages ``log@v1`` wrote that start with ``prefix``, oldest first."""
        return [
            str(r["event"])
            for r in self.log_records()
            if r.get("scenario_log") and str(r.get("event", "")).startswith(prefix)
        ]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    tmp: Path,
    *,
    routes: dict[str, str] | None = None,
    codecs: str = "[PCMU, PCMA]",
    scenarios: Path = SCENARIOS,
    rtp_range: tuple[int, int] | None = None,
    extra_args: list[str] | None = None,
    log_level: str = "debug",
    trusted: list[str] | None = None,
    extra_config: str = "",
    api_key: str | None = TEST_API_KEY,
    http_extra: str = "",
    listen: str = '["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]',
    rtp_extra: str = "  relay_workers: 1\n",
) -> ServerProcess:
    """Start a server with its own config and data folder under ``tmp``;
    ``http_extra``, ``rtp_extra``: more lines of the ``http`` and ``rtp`` sections
    (indented two spaces; the ``rtp`` default gives every test server one relay
    worker, not one per core: each bridge still goes through a worker, and the
    suite starts half as many processes);
    ``listen``: ``sip.listen`` (a YAML list)."""
    tmp.mkdir(parents=True, exist_ok=True)
    low, high = rtp_range or _rtp_range()
    route_lines = "\n".join(f'  "{k}": {v}' for k, v in (routes or DEFAULT_ROUTES).items())
    config = tmp / "config.yaml"
    config.write_text(
        CONFIG_TEMPLATE.format(
            rtp_low=low,
            rtp_high=high,
            codecs=codecs,
            scenarios=scenarios,
            routes=route_lines,
            api_keys=f'["{api_key}"]' if api_key is not None else "[]",
            http_extra=http_extra,
            rtp_extra=rtp_extra,
            listen=listen,
            trusted="["
            + ", ".join(f'"{n}"' for n in (["127.0.0.0/8"] if trusted is None else trusted))
            + "]",
        )
        + extra_config
    )
    log_path = tmp / "server.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mediaserver", "run", "--config", str(config),
         "--data-dir", str(tmp), "--sip-port", "0", "--http-port", "0", "--log-level", log_level,
         "--log-format", "json", "--drain", "2", *(extra_args or [])],
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        cwd=REPO,
    )  # fmt: skip
    return wait_for_banner(process, tmp, log_path, api_key=api_key or "")


def wait_for_banner(
    process: subprocess.Popen[str],
    data_dir: Path,
    log_path: Path,
    *,
    api_key: str = "",
    sip_host: str = "127.0.0.1",
) -> ServerProcess:
    """Read a starting server's stdout up to its ``listening`` line (and the
    ``api-key`` and ``callcontrol-public-key`` lines of a first start); the server, or a
    RuntimeError with its log."""
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    key = api_key
    public_key = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("api-key "):
            key = line.split()[1]
        if line.startswith("callcontrol-public-key "):
            public_key = line.split()[1]
        if line.startswith("listening ") or (not line and process.poll() is not None):
            break
    sip = re.search(rf"sip=udp:{re.escape(sip_host)}:(\d+)", line)
    http = re.search(r"http=127\.0\.0\.1:(\d+)", line)
    if not sip or not http:
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}\n{log_path.read_text()}")
    tls = re.search(rf"tls:{re.escape(sip_host)}:(\d+)", line)
    return ServerProcess(
        process,
        int(sip.group(1)),
        data_dir,
        log_path,
        int(http.group(1)),
        key,
        public_key,
        int(tls.group(1)) if tls else 0,
    )


_next_range = [40000 + (os.getpid() % 50) * 400]


def _rtp_range() -> tuple[int, int]:
    """A distinct RTP range per server so parallel servers never share ports."""
    low = _next_range[0]
    _next_range[0] = 40000 + (low - 40000 + 400) % 20000
    return low, low + 399


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for every test of a module, on the default routes."""
    proc = start_server(tmp_path_factory.mktemp("server"))
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        proc = item.funcargs.get("server") if hasattr(item, "funcargs") else None
        if isinstance(proc, ServerProcess):
            report.sections.append(("server log (tail)", proc.log_text()[-8000:]))


def add_route(server: ServerProcess, line: str) -> None:
    """Append a route line under ``routes:`` (the last section of the test config)."""
    config = server.data_dir / "config.yaml"
    config.write_text(config.read_text().rstrip("\n") + f"\n{line}\n")


def reload(server: ServerProcess, prefix: str, timeout: float = 15.0) -> dict[str, Any]:
    """Send SIGHUP; the server's next log record whose event starts with ``prefix``."""
    before = len(server.log_records())
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in server.log_records()[before:]:
            if str(record.get("event", "")).startswith(prefix):
                return record
        assert server.alive(), f"the server died on SIGHUP\n{server.log_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no {prefix!r} log line after SIGHUP\n{server.log_text()[-3000:]}")
