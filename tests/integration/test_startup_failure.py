"""A server that cannot start says why and exits: a taken SIP or HTTP port makes
``mediaserver run`` (the quick start's command, default config) exit non-zero
within seconds, naming the port, the cause and the flag that picks another,
with nothing left running (the database and its thread closed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, _rtp_range

pytestmark = pytest.mark.integration

EXIT_WITHIN = 30  # seconds: generous under load; the defect was a hang for ever


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A copy of the repository's configs: the server runs there as ./scripts/run does."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    return tmp_path


@pytest.fixture
def held_udp() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def held_tcp() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def run_server(layout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mediaserver run --config configs/default.yaml ARGS``; killed (and the test
    failed) when it has not exited within :data:`EXIT_WITHIN` seconds."""
    low, high = _rtp_range()
    command = [sys.executable, "-m", "mediaserver", "run", "--config", "configs/default.yaml",
               "--rtp-ports", f"{low}-{high}", *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, cwd=layout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the server did not exit within {EXIT_WITHIN} s:\n{out}\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_taken_sip_port_names_the_port_and_the_flag(layout: Path, held_udp: int) -> None:
    done = run_server(layout, "--sip-port", str(held_udp), "--http-port", "0")
    assert done.returncode == 1, done.stderr
    assert "listening" not in done.stdout
    message = done.stderr.strip().splitlines()[-1]
    assert message == (
        f"mediaserver: cannot start: SIP port udp:0.0.0.0:{held_udp} is in use"
        " (another server running?); choose another with --sip-port N"
    )


def test_taken_http_port_names_the_port_and_the_flag(layout: Path, held_tcp: int) -> None:
    done = run_server(layout, "--sip-port", "0", "--http-port", str(held_tcp))
    assert done.returncode == 1, done.stderr
    assert "listening" not in done.stdout
    message = done.stderr.strip().splitlines()[-1]
    assert message == (
        f"mediaserver: cannot start: HTTP port 127.0.0.1:{held_tcp} is in use"
        " (another server running?); choose another with --http-port N"
    )
