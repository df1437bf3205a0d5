"""The `mediaserver` command (SPEC section 1)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import structlog

from mediaserver import __version__
from mediaserver.actions.check import check_files
from mediaserver.api.auth import KEY_FILE, read_key_file
from mediaserver.api.auth import key_file as api_key_file
from mediaserver.callcontrol.keys import BANNER as SIGNING_BANNER
from mediaserver.callcontrol.keys import KEY_FILE as SIGNING_KEY_FILE
from mediaserver.callcontrol.keys import (
    KeyFileError,
    public_key_b64,
    read_signing_key,
)
from mediaserver.callcontrol.keys import key_file as signing_key_file
from mediaserver.config import Config, load_config, with_overrides
from mediaserver.log import configure_logging, get_logger
from mediaserver.reload import serve_reloads
from mediaserver.server import Server
from mediaserver.starter import StarterError, write_starter
from mediaserver.yamlsource import ProblemsError

DEFAULT_CONFIG = "configs/default.yaml"
DEFAULT_SERVER = "http://127.0.0.1:8080"
KEY_ENV = "MEDIASERVER_API_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediaserver", description="A self-hosted programmable voice server."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the server in the foreground (SIGHUP reloads scenarios and routes)"
    )
    run.add_argument("--config", default=DEFAULT_CONFIG, help="config file (%(default)s)")
    run.add_argument("--sip-port", type=int, help="port of every sip.listen entry (0: pick one)")
    run.add_argument("--http-port", type=int, help="port of http.listen")
    run.add_argument("--rtp-ports", metavar="A-B", help="RTP port range, e.g. 20000-29999")
    run.add_argument(
        "--data-dir",
        help="folder relative storage paths resolve against: DIR/data/... by default (.)",
    )
    run.add_argument(
        "--node-name", help="node.name: this server's name among several (the host name)"
    )
    run.add_argument("--log-format", choices=["console", "json"], default="console")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    run.add_argument(
        "--drain", type=float, default=30.0, help="seconds live calls may go on after SIGTERM"
    )

    check = commands.add_parser("check", help="validate scenario files")
    check.add_argument("files", nargs="*", metavar="FILE", help="scenario files")
    check.add_argument("--config", help="also validate this config file and its scenarios")

    call = commands.add_parser("call", help="place an outbound call through a running server")
    call.add_argument("target", metavar="TARGET", help="SIP URI, registered user or number to call")
    call.add_argument("--scenario", required=True, help="scenario name (its api-initiated branch)")
    call.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="$NAME=VALUE",
        help="a variable for the run (VALUE as JSON, else text); repeat for more",
    )
    _client_options(call)
    calls = commands.add_parser("calls", help="list the live calls of a running server")
    _client_options(calls)

    init = commands.add_parser(
        "init", help="write a starter config, the example scenarios and a data folder"
    )
    init.add_argument("folder", metavar="DIR", help="folder to write into (made if missing)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.add_argument(
        "--data-dir", help="put the data folder here instead of DIR (e.g. /var/lib/mediaserver)"
    )

    keys = commands.add_parser(
        "keys",
        help="print the API key(s) and the public key that verifies Call Control webhooks",
    )
    keys.add_argument(
        "--data-dir", help="the server's data dir (.; with --config, replaces its data_dir)"
    )
    keys.add_argument("--config", help="the server's config file (its http.api_keys and paths)")

    commands.add_parser("version", help="print the version")
    return parser


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=DEFAULT_SERVER, help="API URL (%(default)s)")
    parser.add_argument("--api-key", help=f"API key (default: ${KEY_ENV}, else the data dir's)")
    parser.add_argument(
        "--data-dir", default=".", help="the server's data dir, for data/api-key (%(default)s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"mediaserver {__version__}")
        return 0
    if args.command == "check":
        return _check(args.files, args.config)
    if args.command == "init":
        return _init(Path(args.folder), args.force, args.data_dir)
    if args.command == "keys":
        return _keys(args.config, args.data_dir)
    if args.command in ("call", "calls"):
        try:
            return _call(args) if args.command == "call" else _calls(args)
        except ClientError as exc:
            print(f"mediaserver: {exc}", file=sys.stderr)
            return 1
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
    errors = [problem for problem in problems if not problem.warning]
    if not errors:
        warned = f", {len(problems)} warning(s)" if problems else ""
        print(f"{len(files)} scenario file(s) valid{warned}")
    return 1 if errors else 0


def _init(folder: Path, force: bool, data_dir: str | None) -> int:
    try:
        written = write_starter(
            folder, force=force, data_dir=Path(data_dir) if data_dir is not None else None
        )
    except StarterError as exc:
        print(f"mediaserver init: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written.config}")
    for path in written.scenarios:
        print(f"wrote {path}")
    print(f"made {written.data}{os.sep}")
    print(f"next: mediaserver run --config {shlex.quote(str(written.config))}")
    return 0


def _keys(config_path: str | None, data_dir: str | None) -> int:
    """Print what exists (`api-key KEY`, `callcontrol-public-key BASE64`); create nothing:
    the server makes both on its first start. Exit 1 when either is missing."""
    configured: tuple[str, ...] = ()
    if config_path is not None:
        try:
            config = with_overrides(load_config(config_path), data_dir=data_dir)
        except ProblemsError as exc:
            print(f"mediaserver keys: the config has errors:\n{exc}", file=sys.stderr)
            return 2
        configured = config.http.api_keys
        api_key_path, signing_path = api_key_file(config), signing_key_file(config)
    else:
        folder = Path(data_dir if data_dir is not None else ".")
        api_key_path, signing_path = folder / KEY_FILE, folder / SIGNING_KEY_FILE
    missing = False
    kept = read_key_file(api_key_path)
    api_keys = configured or ((kept,) if kept is not None else ())
    for key in api_keys:
        print(f"api-key {key}")
    if not api_keys:
        missing = True
        print(
            f"mediaserver keys: no API key in {api_key_path}: start the server once"
            " (mediaserver run) to generate it, or list keys in http.api_keys"
            " (pass that config with --config)",
            file=sys.stderr,
        )
    try:
        signing = read_signing_key(signing_path)
    except KeyFileError as exc:
        print(f"mediaserver keys: {exc}", file=sys.stderr)
        return 1
    if signing is not None:
        print(f"{SIGNING_BANNER} {public_key_b64(signing)}")
    else:
        missing = True
        print(
            f"mediaserver keys: no Call Control key pair in {signing_path}: start the server"
            " once (mediaserver run) with this data dir to generate it",
            file=sys.stderr,
        )
    return 1 if missing else 0


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, args.log_level)
    log = get_logger("cli")

    def load() -> Config:
        return with_overrides(
            load_config(args.config),
            sip_port=args.sip_port,
            http_port=args.http_port,
            rtp_ports=args.rtp_ports,
            data_dir=args.data_dir,
            node_name=args.node_name,
        )

    try:
        config = load()
    except ProblemsError as exc:
        print(f"mediaserver: refusing to start, the config has errors:\n{exc}", file=sys.stderr)
        if not Path(args.config).exists():  # e.g. a pip install run outside the repository
            hint = "write one with `mediaserver init DIR`, then pass --config DIR/config.yaml"
            print(hint, file=sys.stderr)
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
        return asyncio.run(_serve(config, args.drain, load))
    except ProblemsError as exc:
        print(f"mediaserver: refusing to start, scenarios have errors:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mediaserver: cannot start: {exc}", file=sys.stderr)
        return 1


async def _serve(config: Config, drain: float, load: Callable[[], Config]) -> int:
    """Serve until SIGTERM/SIGINT; ``load`` reads the config again for SIGHUP."""
    log = get_logger("cli")
    stop = asyncio.Event()
    force = asyncio.Event()
    reload_wanted = asyncio.Event()  # a SIGHUP during start-up is served once started

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
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
    # Every line from here on (the tasks started below copy this context) names the node.
    structlog.contextvars.bind_contextvars(node=config.node.name)
    server = Server(config)
    listening = await server.start()
    print(listening, flush=True)
    log.info("started", version=__version__, config=str(config.path))
    reloads = asyncio.create_task(serve_reloads(server, reload_wanted, load))
    await stop.wait()
    reloads.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reloads  # a reload cut short must not write to a store being closed
    await server.shutdown(drain, force)
    return 0


# -- talking to a running server (SPEC section 1: `call`, `calls`) -----------------------


class ClientError(Exception):
    """What a client command reports on stderr before exiting with 1."""


def _client(args: argparse.Namespace) -> httpx.Client:
    key = args.api_key or os.environ.get(KEY_ENV) or read_key_file(Path(args.data_dir) / KEY_FILE)
    if not key:
        raise ClientError(
            f"no API key: pass --api-key, set ${KEY_ENV}, or run from the server's data dir"
        )
    return httpx.Client(
        base_url=args.server, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    )


def _api(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """One API request; its JSON answer, or ClientError with the server's message."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach the server at {client.base_url}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_error:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ClientError(error.get("message") or f"HTTP {response.status_code}")
    return body


def _variables(items: list[str]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for item in items:
        name, equals, text = item.partition("=")
        if not equals or not name:
            raise ClientError(f"--var {item!r}: write $name=value")
        try:
            variables[name] = json.loads(text)
        except ValueError:
            variables[name] = text
    return variables


def _call(args: argparse.Namespace) -> int:
    variables = _variables(args.var)
    with _client(args) as client:
        sid = None
        offset = 0
        while sid is None:
            page = _api(
                client,
                "GET",
                "/api/scenarios",
                params={"name": args.scenario, "limit": 100, "offset": offset},
            )
            sid = next((h["sid"] for h in page["hits"] if h["name"] == args.scenario), None)
            if not page["hasMore"]:
                break
            offset += len(page["hits"])
        if sid is None:
            raise ClientError(f"no scenario named {args.scenario!r}")
        body = {"to": args.target, "variables": variables}
        started = _api(client, "POST", f"/api/scenarios/{sid}/start", json=body)
    print(started["runid"])
    return 0


def _calls(args: argparse.Namespace) -> int:
    hits: list[dict[str, Any]] = []
    with _client(args) as client:
        while True:
            page = _api(client, "GET", "/api/calls", params={"limit": 100, "offset": len(hits)})
            hits.extend(page["hits"])
            if not page["hasMore"] or not page["hits"]:
                break
    if not hits:
        print("no live calls")
        return 0
    rows = [("ID", "DIRECTION", "FROM", "TO", "SCENARIO", "STATE", "SECONDS")]
    for call in hits:
        rows.append(
            (
                call["id"],
                call["direction"],
                call["from"],
                call["to"],
                call["scenario"] or "-",
                call["state"],
                f"{call['duration']:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0
