"""Deployment: `mediaserver init` then `mediaserver run` on what it wrote, the wheel
carrying the examples, and the files of deploy/ (the container and the systemd unit).

The container image is not built here (no container engine runs on the test
machine): its Containerfile is only checked for what the image must do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mediaserver.config import load_config
from tests.integration.conftest import REPO, ServerProcess, _rtp_range, wait_for_banner
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "configs"
DEPLOY = REPO / "deploy"
PYTHON = sys.executable


def mediaserver(
    *args: str, cwd: Path, pythonpath: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m mediaserver ARGS`` with the code found on ``pythonpath``."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [PYTHON, "-m", "mediaserver", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def launch(config: Path, cwd: Path, log_path: Path, *args: str) -> ServerProcess:
    """``mediaserver run --config CONFIG`` from ``cwd``; waits for its start-up line."""
    low, high = _rtp_range()
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [PYTHON, "-m", "mediaserver", "run", "--config", str(config), "--sip-port", "0",
         "--http-port", "0", "--rtp-ports", f"{low}-{high}", "--log-format", "json", "--drain",
         "2", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
    )  # fmt: skip
    return wait_for_banner(process, config.parent, log_path)


def test_init_then_run_serves_calls(tmp_path: Path) -> None:
    folder = tmp_path / "voice"
    elsewhere = tmp_path / "elsewhere"  # run from another folder: data must still go to voice/
    elsewhere.mkdir()
    result = mediaserver("init", str(folder), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    config = folder / "config.yaml"
    assert f"next: mediaserver run --config {config}" in result.stdout
    written = sorted(p.name for p in (folder / "scenarios").iterdir())
    assert written == sorted(p.name for p in (EXAMPLES / "scenarios").glob("*.yaml"))
    assert (folder / "data").is_dir()

    checked = mediaserver("check", "--config", str(config), cwd=elsewhere)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(written)} scenario file(s) valid" in checked.stdout

    # The one edit: tests bind to 127.0.0.1 only, the starter listens on every interface.
    config.write_text(
        config.read_text().replace(
            '"udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"', '"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"'
        )
    )
    server = launch(config, elsewhere, tmp_path / "server.log")
    try:
        with Baresip(max_call_s=30) as phone:
            phone.dial(server.uri("welcome"))
            phone.wait_established(timeout=10)
            assert phone.wait_closed(timeout=25) == "Connection reset by peer"
            heard, rate = phone.recorded_audio()
        assert audio.speech_seconds(heard, rate) > 2.0, "the welcome prompt was not heard"
    finally:
        assert server.stop() == 0, server.log_text()[-3000:]
    # The data folder of the starter config, whatever the working folder was.
    assert (folder / "data" / "mediaserver.db").is_file()
    assert (folder / "data" / "api-key").is_file()
    assert not (elsewhere / "data").exists()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "voice"
    assert mediaserver("init", str(folder), cwd=tmp_path).returncode == 0
    config = folder / "config.yaml"
    config.write_text(config.read_text() + "# my change\n")
    again = mediaserver("init", str(folder), cwd=tmp_path)
    assert again.returncode == 1
    assert f"{config}" in again.stderr and "--force" in again.stderr
    assert config.read_text().endswith("# my change\n")  # nothing was written
    forced = mediaserver("init", str(folder), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "# my change" not in config.read_text()


def test_the_wheel_carries_the_examples_for_init(tmp_path: Path) -> None:
    """Build the wheel offline, install it alone, and init from its package data."""
    built = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist"), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("mediaserver-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"mediaserver/examples/default.yaml"} | {
        f"mediaserver/examples/scenarios/{p.name}" for p in (EXAMPLES / "scenarios").glob("*.yaml")
    }
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if n.startswith("configs/")], "configs/ must not be top-level"

    site = tmp_path / "site"
    subprocess.run(
        [PYTHON, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # Without the repository: the installed package's starter must come from its own data.
    result = mediaserver("init", str(tmp_path / "voice"), cwd=tmp_path, pythonpath=site)
    assert result.returncode == 0, result.stderr
    for example in (EXAMPLES / "scenarios").glob("*.yaml"):
        assert (tmp_path / "voice" / "scenarios" / example.name).read_text() == example.read_text()
    config = load_config(tmp_path / "voice" / "config.yaml")
    assert config.data_dir == tmp_path / "voice"
    assert config.scenarios_dir == tmp_path / "voice" / "scenarios"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    unit = (DEPLOY / "mediaserver.service").read_text()
    for line in (
        "User=mediaserver",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mediaserver",
        "LimitNOFILE=65536",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, re.MULTILINE), f"unit lacks {line}"
    (exec_start,) = re.findall(r"^ExecStart=(\S+) run (.*)$", unit, re.MULTILINE)
    # verify checks that ExecStart's program exists: stand a script in for the venv's.
    program = tmp_path / "mediaserver"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    copy = tmp_path / "mediaserver.service"
    copy.write_text(unit.replace(f"ExecStart={exec_start[0]} ", f"ExecStart={program} "))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    # Unknown keys and bad values are only warnings: any output at all fails.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The arguments it runs with are ones `mediaserver run` takes.
    args = exec_start[1].split()
    assert args[:2] == ["--config", "/etc/mediaserver/config.yaml"]
    from mediaserver.cli import _parser

    _parser().parse_args(["run", *args])


def test_the_containerfile_has_what_the_image_needs() -> None:
    """Not a build: the instructions the image depends on are there."""
    text = (DEPLOY / "Containerfile").read_text()
    instructions = re.sub(r"\\\n", " ", text)
    final = instructions.split("\nFROM ")[-1]  # the last stage is the image
    assert re.match(r"debian:\S+-slim\b", final)
    packages = re.search(r"apt-get install -y --no-install-recommends ([^&]+)", final)
    assert packages and {"espeak-ng", "sox", "libsndfile1"} <= set(packages.group(1).split())
    assert re.search(r"pip install .*\.whl", final)
    user = re.search(r"^USER (\S+)$", final, re.MULTILINE)
    assert user and user.group(1) not in ("root", "0")
    exposed = set(" ".join(re.findall(r"^EXPOSE (.+)$", final, re.MULTILINE)).split())
    assert {"5060/udp", "5060/tcp", "8080/tcp"} <= exposed
    assert any(re.fullmatch(r"\d+-\d+/udp", port) for port in exposed), "no RTP range"
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    assert "COPY deploy/entrypoint.sh" in final
    first_start = r'if \[ ! -f "\$config" \]; then\s+mediaserver init /etc/mediaserver'
    assert re.search(first_start, entrypoint)
    assert 'exec mediaserver run --config "$config"' in entrypoint
    assert os.access(DEPLOY / "entrypoint.sh", os.X_OK)
    assert subprocess.run(["sh", "-n", str(DEPLOY / "entrypoint.sh")]).returncode == 0
