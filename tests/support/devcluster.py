"""``scripts/cluster up|down|status``: Kamailio and N mediaserver nodes on loopback.

For development and trying things out (docs/deploy.md, "Several nodes"):
``up`` writes one config per node (``DIR/node-a/config.yaml``, ...: the routes
of configs/default.yaml, the node's ports, ``node.name``, Kamailio's address
trusted), starts the nodes and Kamailio with the shipped config
(deploy/kamailio/kamailio.cfg) in the background, prints where each piece
listens and keeps what it started in ``DIR/cluster.json``; ``down`` stops
exactly those processes; ``status`` tells which still run.

Each node keeps its data (SQLite, recordings, API key) in its own folder
unless ``--database URL`` points them all at one database (PostgreSQL,
``postgresql://user@host/db``, once the server supports it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import REPO, Kamailio, Node, kamailio_missing, options_status
from tests.support.net import HOST, is_free
from tests.support.postgres import PostgresCluster

DEFAULT_DIR = Path("/tmp/mediaserver-cluster")
STATE = "cluster.json"


def node_names(count: int) -> list[str]:
    return [f"node-{chr(ord('a') + i)}" for i in range(count)]


def node_config(
    name: str, sip_port: int, http_port: int, rtp: tuple[int, int], database: str | None
) -> dict[str, Any]:
    """A node's config: configs/default.yaml's routes and scenarios on loopback ports."""
    default = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    config: dict[str, Any] = {
        "node": {"name": name},
        "sip": {
            "listen": [f"udp:{HOST}:{sip_port}", f"tcp:{HOST}:{sip_port}"],
            # Kamailio's address: its calls are not rate-limited as one flooding source.
            "trusted_networks": ["127.0.0.0/8"],
        },
        "rtp": {"ports": f"{rtp[0]}-{rtp[1]}"},
        "http": {"listen": f"{HOST}:{http_port}"},
        "scenarios_dir": str(REPO / "configs" / "scenarios"),
        "routes": default["routes"],
    }
    if database:
        config["storage"] = {"database": database}
    return config


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pid: int, marker: str) -> bool:
    """Whether ``pid`` still runs the command we started (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def _wait_listening(stdout: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    """The node's ``listening`` line (and its ``api-key`` line on a first start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = stdout.read_text() if stdout.exists() else ""
        if "listening " in text:
            return text
        if process.poll() is not None:
            break
        time.sleep(0.1)
    log = stdout.parent / "server.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:]) if log.exists() else ""
    raise RuntimeError(f"the node did not start ({log}):\n{tail}")


def up(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if (folder / STATE).exists():
        print(f"cluster: {folder / STATE} exists: run scripts/cluster down first", file=sys.stderr)
        return 1
    if (missing := kamailio_missing()) is not None:
        print(f"cluster: {missing}", file=sys.stderr)
        return 1
    names = node_names(args.nodes)
    sip_ports = [args.sip_port + 2 + 2 * i for i in range(args.nodes)]
    http_ports = [args.http_port + i for i in range(args.nodes)]
    busy = [p for p in [args.sip_port, *sip_ports] if not is_free(p, "both")]
    busy += [p for p in http_ports if not is_free(p, "tcp")]
    if busy:
        print(f"cluster: ports in use: {busy}; choose others (--sip-port, --http-port)")
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"nodes": [], "kamailio": None}
    try:
        if args.postgres:  # a throw-away PostgreSQL the nodes share (Debian's package)
            # In a temporary folder: the postgres user must reach it (DIR may be root's).
            postgres = PostgresCluster()
            state["postgres"] = {"folder": str(postgres.folder), "port": postgres.port}
            _save(folder, state)
            postgres.start()
            args.database = postgres.create_database("mediaserver")
        for i, name in enumerate(names):
            low = args.rtp_port + args.rtp_count * i
            node_dir = folder / name
            node_dir.mkdir(exist_ok=True)
            config = node_dir / "config.yaml"
            config.write_text(
                yaml.safe_dump(
                    node_config(
                        name,
                        sip_ports[i],
                        http_ports[i],
                        (low, low + args.rtp_count - 1),
                        args.database,
                    ),
                    sort_keys=False,
                )
            )
            stdout = node_dir / "stdout.log"
            with stdout.open("wb") as out, (node_dir / "server.log").open("wb") as err:
                process = subprocess.Popen(
                    [sys.executable, "-m", "mediaserver", "run", "--config", str(config),
                     "--data-dir", str(node_dir), "--log-format", "json"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=REPO,
                    start_new_session=True,  # outlives this command
                )  # fmt: skip
            state["nodes"].append(
                {"name": name, "pid": process.pid, "sip_port": sip_ports[i],
                 "http_port": http_ports[i], "dir": str(node_dir)}
            )  # fmt: skip
            _save(folder, state)
            _wait_listening(stdout, process, 30.0)
        proxy = Kamailio(
            folder / "kamailio",
            [Node(name, port) for name, port in zip(names, sip_ports, strict=True)],
            port=args.sip_port,
            ping_interval=args.ping_interval,
            children=4,
        ).start()
        assert proxy.process is not None
        state["kamailio"] = {"pid": proxy.process.pid, "port": proxy.port}
        _save(folder, state)
    except RuntimeError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        down(args)
        return 1
    proxy_at = f"{HOST}:{args.sip_port}"
    print(f"kamailio  sip udp+tcp {proxy_at}  (call through it: sip:echo@{proxy_at})")
    print(f"          log {folder / 'kamailio' / 'kamailio.log'}")
    for node in state["nodes"]:
        key = _api_key(Path(node["dir"]))
        print(
            f"{node['name']}    sip {HOST}:{node['sip_port']}  api http://{HOST}:{node['http_port']}"
            f"  key {key}  probe {options_status(HOST, node['sip_port'])}"
        )
        print(f"          log {node['dir']}/server.log")
    print(f"database  {args.database or 'SQLite, one per node (DIR/node-x/data/mediaserver.db)'}")
    print(f"stop with: scripts/cluster down --dir {folder}")
    return 0


def _api_key(node_dir: Path) -> str:
    key_file = node_dir / "data" / "api-key"
    return key_file.read_text().strip() if key_file.exists() else "?"


def _save(folder: Path, state: dict[str, Any]) -> None:
    (folder / STATE).write_text(json.dumps(state, indent=2) + "\n")


def _processes(state: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(name, pid, command marker) of what ``up`` started."""
    out = [(n["name"], n["pid"], "mediaserver") for n in state["nodes"]]
    if state.get("kamailio"):
        out.append(("kamailio", state["kamailio"]["pid"], "kamailio"))
    return out


def down(args: argparse.Namespace) -> int:
    path = args.dir / STATE
    if not path.exists():
        print(f"cluster: nothing to stop ({path} not found)")
        return 0
    state = json.loads(path.read_text())
    for name, pid, marker in reversed(_processes(state)):
        if not (_alive(pid) and _ours(pid, marker)):
            continue
        os.kill(pid, signal.SIGTERM)  # nodes drain their calls, Kamailio stops its children
        deadline = time.monotonic() + 35
        while _alive(pid) and _ours(pid, marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid) and _ours(pid, marker):
            os.kill(pid, signal.SIGKILL)
        print(f"stopped {name} (pid {pid})")
    if postgres := state.get("postgres"):
        PostgresCluster.running(Path(postgres["folder"]), postgres["port"]).stop()
        print(f"stopped postgres (port {postgres['port']}, its folder removed)")
    path.unlink()
    return 0


def status(args: argparse.Namespace) -> int:
    path = args.dir / STATE
    if not path.exists():
        print("no cluster")
        return 1
    state = json.loads(path.read_text())
    for name, pid, marker in _processes(state):
        running = _alive(pid) and _ours(pid, marker)
        print(f"{name}: {'running' if running else 'stopped'} (pid {pid})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start Kamailio and the nodes in the background")
    start.add_argument("--nodes", type=int, default=2, help="how many nodes (%(default)s)")
    start.add_argument("--sip-port", type=int, default=5060, help="Kamailio's port; nodes "
                       "take the next even ones (%(default)s: nodes 5062, 5064, ...)")  # fmt: skip
    start.add_argument("--http-port", type=int, default=8081, help="first node's API port")
    start.add_argument("--rtp-port", type=int, default=30000, help="first node's RTP range "
                       "start; each node takes --rtp-count ports (%(default)s)")  # fmt: skip
    start.add_argument("--rtp-count", type=int, default=1000,
                       help="RTP ports per node (%(default)s)")  # fmt: skip
    start.add_argument("--database", help="storage.database of every node, e.g. postgresql:"
                       "//mediaserver@127.0.0.1/mediaserver (default: SQLite each)")  # fmt: skip
    start.add_argument("--postgres", action="store_true", help="start a PostgreSQL cluster (in a "
                       "temporary folder) the nodes share; down stops and removes it")  # fmt: skip
    start.add_argument("--ping-interval", type=int, default=2,
                       help="seconds between Kamailio's OPTIONS probes (%(default)s)")  # fmt: skip
    stop = commands.add_parser("down", help="stop what `up` started")
    show = commands.add_parser("status", help="which of the started processes run")
    for sub in (start, stop, show):
        sub.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state and data folder "
                         "(%(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "up":
        if not 1 <= args.nodes <= 26:
            parser.error("--nodes: 1 to 26")
        return up(args)
    return down(args) if args.command == "down" else status(args)


if __name__ == "__main__":
    sys.exit(main())
