"""The `mediaserver` command (SPEC section 1): version, check, and run refusing bad configs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from mediaserver import __version__, cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "configs" / "scenarios"

BAD_SCENARIO = """\
name: bad
branches:
  inbound-call:
    actions:
      - action: nosuch@v1
      - action: answer@v1
        params: {colour: red}
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # `run` configures structlog to print to the (captured) stderr; undo it for later tests.
    yield
    structlog.reset_defaults()


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make starting a server fail the test: a refused config must start nothing."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server was started")

    monkeypatch.setattr(cli, "Server", refuse)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out == f"mediaserver {__version__}\n"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_check_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    assert cli.main(["check", *files]) == 0
    assert capsys.readouterr().out == f"{len(files)} scenario file(s) valid\n"


def test_check_prints_every_problem_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "bad.yaml", BAD_SCENARIO)
    broken = write(tmp_path / "broken.yaml", "name: [x\n")
    missing = tmp_path / "missing.yaml"
    good = EXAMPLES / "echo.yaml"
    assert cli.main(["check", str(bad), str(good), str(broken), str(missing)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}:5:17: unknown action 'nosuch@v1'",
        f"{bad}:7:18: answer@v1 has no parameter 'colour'; it takes ring",
        f"{broken}:2:1: YAML syntax error: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)",
        f"{missing}:1:1: cannot read file: No such file or directory",
    ]


def test_check_config_checks_the_config_and_its_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows").mkdir()
    for name in ("echo", "ivr"):
        shutil.copy(EXAMPLES / f"{name}.yaml", tmp_path / "flows" / f"{name}.yaml")
    config = write(tmp_path / "server.yaml", "scenarios_dir: flows\nroutes:\n  echo: echo\n")
    assert cli.main(["check", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "2 scenario file(s) valid\n"

    bad = write(tmp_path / "flows" / "bad.yml", BAD_SCENARIO)
    assert cli.main(["check", "--config", str(config)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}:5:17: unknown action 'nosuch@v1'",
        f"{bad}:7:18: answer@v1 has no parameter 'colour'; it takes ring",
    ]


def test_check_config_reports_config_problems_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "server.yaml", "sip:\n  colour: red\n")
    bad = write(tmp_path / "other" / "bad.yaml", BAD_SCENARIO)
    assert cli.main(["check", "--config", str(config), str(bad)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{config}:2:3: unknown key sip.colour "
        "(known: digest_algorithms, listen, public_address, realm, "
        "tls, trusted_networks, user_agent)",
        f"{bad}:5:17: unknown action 'nosuch@v1'",
        f"{bad}:7:18: answer@v1 has no parameter 'colour'; it takes ring",
    ]


def test_check_without_arguments_checks_the_default_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert cli.main(["check"]) == 0
    count = len(list(EXAMPLES.glob("*.y*ml")))
    assert capsys.readouterr().out == f"{count} scenario file(s) valid\n"


def test_run_refuses_a_bad_config_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    config = write(
        tmp_path / "server.yaml",
        "sip:\n  listen: [udp]\nrtp:\n  codecs: [G729]\nroutes:\n  echo: nowhere\n",
    )
    assert cli.main(["run", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "mediaserver: refusing to start, the config has errors:",
        f"{config}:2:12: sip.listen[0]: expected TRANSPORT:HOST:PORT such as "
        "udp:0.0.0.0:5060, got 'udp'",
        f"{config}:4:11: rtp.codecs: unknown codec 'G729' (supported: PCMU, PCMA, G722, opus)",
        f"{config}:6:9: routes.echo: no scenario 'nowhere' in {tmp_path}/scenarios",
    ]


def test_run_refuses_a_missing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    missing = tmp_path / "absent.yaml"
    assert cli.main(["run", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}:1:1: cannot read file" in err
    assert "write one with `mediaserver init DIR`" in err  # where a pip user starts


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sip-port", "70000"], "expected a port number 0-65535, got 70000"),
        (["--rtp-ports", "9-8"], "range 9-8 must lie within 1024-65535, low below high"),
        (["--http-port", "-5"], "expected a port number 0-65535, got -5"),
    ],
)
def test_run_refuses_bad_flag_values(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    assert cli.main(["run", "--config", str(REPO / "configs" / "default.yaml"), *flags]) == 2
    assert capsys.readouterr().err == f"mediaserver: bad command-line value: {message}\n"


def test_the_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "mediaserver"
    assert script.exists(), "install the package (pip install -e .) to get the console script"
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    done = subprocess.run(
        [str(script), "check", *files], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert (done.returncode, done.stdout) == (0, f"{len(files)} scenario file(s) valid\n")
    bad = write(tmp_path / "bad.yaml", BAD_SCENARIO)
    done = subprocess.run(
        [str(script), "check", str(bad)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == f"{bad}:5:17: unknown action 'nosuch@v1'"
