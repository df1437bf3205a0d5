"""The `mediaserver` command (SPEC section 1)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from mediaserver import __version__
from mediaserver.actions.check import check_files
from mediaserver.config import Config, load_config, with_overrides
from mediaserver.log import configure_logging, get_logger
from mediaserver.server import Server
from mediaserver.yamlsource import ProblemsError

DEFAULT_CONFIG = "configs/default.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediaserver", description="A self-hosted programmable voice server."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the server in the foreground")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="config file (%(default)s)")
    run.add_argument("--sip-port", type=int, help="port of every sip.listen entry (0: pick one)")
    run.add_argument("--http-port", type=int, help="port of http.listen")
    run.add_argument("--rtp-ports", metavar="A-B", help="RTP port range, e.g. 20000-29999")
    run.add_argument("--data-dir", help="folder that relative storage paths resolve against")
    run.add_argument("--log-format", choices=["console", "json"], default="console")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    run.add_argument(
        "--drain", type=float, default=30.0, help="seconds live calls may go on after SIGTERM"
    )

    check = commands.add_parser("check", help="validate scenario files")
    check.add_argument("files", nargs="*", metavar="FILE", help="scenario files")
    check.add_argument("--config", help="also validate this config file and its scenarios")

    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"mediaserver {__version__}")
        return 0
    if args.command == "check":
        return _check(args.files, args.config)
    return _run(args)


def _check(files: list[str], config_path: str | None) -> int:
    problems = []
    if config_path is None and not files:
        config_path = DEFAULT_CONFIG
    if config_path is not None:
        try:
            config = load_config(config_path)
        except ProblemsError as exc:
            problems.extend(exc.problems)
        else:
            folder = config.scenarios_dir
            files = [*files, *(str(p) for p in sorted(folder.glob("*.y*ml")))]
    problems.extend(check_files([Path(f) for f in files]))
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(files)} scenario file(s) valid")
    return 1 if problems else 0


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, args.log_level)
    log = get_logger("cli")
    try:
        config = with_overrides(
            load_config(args.config),
            sip_port=args.sip_port,
            http_port=args.http_port,
            rtp_ports=args.rtp_ports,
            data_dir=args.data_dir,
        )
    except ProblemsError as exc:
        print(f"mediaserver: refusing to start, the config has errors:\n{exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"mediaserver: bad command-line value: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        log.warning("uvloop not available; using the default event loop")
    try:
        return asyncio.run(_serve(config, args.drain))
    except ProblemsError as exc:
        print(f"mediaserver: refusing to start, scenarios have errors:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mediaserver: cannot start: {exc}", file=sys.stderr)
        return 1


async def _serve(config: Config, drain: float) -> int:
    log = get_logger("cli")
    stop = asyncio.Event()
    force = asyncio.Event()

    def on_signal(name: str) -> None:
        if stop.is_set():
            log.info("second signal: hanging up now", signal=name)
            force.set()
        else:
            log.info("shutting down", signal=name)
            stop.set()

    # Handlers first: a signal right after the start-up line must stop us cleanly.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    server = Server(config)
    listening = await server.start()
    print(listening, flush=True)
    log.info("started", version=__version__, config=str(config.path))
    await stop.wait()
    await server.shutdown(drain, force)
    return 0
