"""Reloading on SIGHUP (mediaserver/reload.py, Server.reload): what changed, all or nothing.

The server here is built and given its store but never listens: reload only
touches the library, the router, the access policy and the webhook targets.
Calls in progress are covered by tests/integration/test_reload.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import structlog

from mediaserver.config import Config, NodeConfig, UserConfig, load_config
from mediaserver.reload import compare, compare_names, reload_once
from mediaserver.server import Server
from mediaserver.store import Store

ECHO = "name: echo\nbranches:\n  inbound-call:\n    actions:\n      - action: answer@v1\n"
BYE = "name: bye\nbranches:\n  inbound-call:\n    actions:\n      - action: hangup@v1\n"
NO_INBOUND = "name: x\nbranches:\n  api-initiated:\n    actions:\n      - action: hangup@v1\n"


def write_config(folder: Path, routes: str = "  echo: echo\n", extra: str = "") -> Path:
    path = folder / "config.yaml"
    path.write_text(f"data_dir: .\nroutes:\n{routes}{extra}", encoding="utf-8")
    return path


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "echo.yaml").write_text(ECHO)
    (tmp_path / "scenarios" / "bye.yaml").write_text(BYE)
    server = Server(load_config(write_config(tmp_path)))
    server.store = await Store.open(tmp_path / "ms.db")
    await server.library.sync(server.store)
    yield server
    await server.store.close()


def test_compare_names() -> None:
    changes = compare_names({"a": 1, "b": 2, "c": 3}, {"b": 2, "c": 4, "d": 5})
    assert (changes.added, changes.changed, changes.removed) == (("d",), ("c",), ("a",))
    assert not compare_names({"a": 1}, {"a": 1})


def test_compare_tells_what_a_restart_would_need(tmp_path: Path) -> None:
    old = load_config(write_config(tmp_path, routes="  {}\n"))
    new = replace(
        old,
        routes={"9": "bye"},
        users=(UserConfig("alice", "pw"),),
        http=replace(old.http, port=9090),
    )
    changes = compare(old, new, {"echo": "1"}, {"echo": "2", "bye": "3"})
    assert changes.log_fields() == {
        "scenarios_added": ["bye"],
        "scenarios_changed": ["echo"],
        "routes_added": ["9"],
        "users_added": ["alice"],
    }
    assert changes.restart_needed == ("http",)
    renamed = compare(old, replace(old, node=NodeConfig("node-z")), {}, {})
    assert renamed.restart_needed == ("node",)  # logs, the API and records name it from start
    unchanged = compare(old, old, {"echo": "1"}, {"echo": "1"})
    assert not unchanged and unchanged.restart_needed == ()


async def test_reload_applies_files_routes_and_users(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    assert "REGISTER" not in server.ua.allowed_methods  # no users yet
    old_bye = server.library.get("bye")
    (folder / "bye.yaml").unlink()
    (folder / "echo.yaml").write_text(ECHO.replace("answer@v1", "hangup@v1"))
    (folder / "new.yaml").write_text(BYE.replace("name: bye", "name: new"))
    users = "users:\n  - {username: alice, password: pw}\n"
    new = load_config(write_config(tmp_path, "  echo: echo\n  '7': new\n", users))
    changes = await server.reload(new)
    assert changes.log_fields() == {
        "scenarios_added": ["new"],
        "scenarios_changed": ["echo"],
        "scenarios_removed": ["bye"],
        "routes_added": ["7"],
        "users_added": ["alice"],
    }
    assert old_bye is not None and server.library.get("bye") is None
    echo = server.library.get("echo")
    assert echo is not None and echo.branches["inbound-call"].actions[0].name == "hangup"
    assert server.router("7") == "new" and server.library.store_id("new")
    assert server.access.users == {"alice": "pw"}
    assert "REGISTER" in server.ua.allowed_methods  # the first user turns it on
    assert server.config.routes == new.routes and server.config.users == new.users
    assert server.store is not None
    stored = await server.store.scenarios.search(name="echo")
    assert "hangup@v1" in stored.hits[0].source  # the store follows the file


async def test_a_reload_with_any_error_applies_nothing(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    before = (server.library.get("echo"), dict(server.router.routes))
    (folder / "echo.yaml").write_text(ECHO.replace("answer@v1", "hangup@v1"))  # valid
    (folder / "x.yaml").write_text(NO_INBOUND)
    new = load_config(write_config(tmp_path, "  echo: echo\n  '8': x\n"))
    with pytest.raises(Exception) as info:
        await server.reload(new)
    assert f"{folder / 'x.yaml'}:1:1: scenario 'x' is routed to but has no inbound-call" in str(
        info.value
    )
    assert (server.library.get("echo"), server.router.routes) == before


async def test_a_file_named_like_an_api_scenario_is_refused(server: Server, tmp_path: Path) -> None:
    assert server.store is not None
    record = await server.store.scenarios.create("mine", BYE.replace("name: bye", "name: mine"))
    server.library.put("mine", record.id, server.library.validate("mine", record.source))
    (tmp_path / "scenarios" / "mine.yaml").write_text(BYE.replace("name: bye", "name: mine"))
    config = load_config(write_config(tmp_path))
    with pytest.raises(Exception, match="a scenario created through the API has that name"):
        await server.reload(config)
    assert server.library.get("mine") is not None  # the API one stays


async def test_reload_once_logs_config_and_scenario_errors_together(
    server: Server, tmp_path: Path
) -> None:
    (tmp_path / "scenarios" / "bad.yaml").write_text("name: bad\nbranches: [\n")
    config = write_config(tmp_path, "  echo: nowhere\n")
    with structlog.testing.capture_logs() as logs:
        assert await reload_once(server, lambda: load_config(config)) is None
    (refused,) = [r for r in logs if str(r["event"]).startswith("reload refused")]
    errors = "\n".join(refused["errors"])
    assert f"{config}:3:" in errors and "nowhere" in errors
    assert f"{tmp_path / 'scenarios' / 'bad.yaml'}:" in errors
    assert server.router.routes == {"echo": "echo"}


async def test_reload_once_warns_of_sections_needing_a_restart(
    server: Server, tmp_path: Path
) -> None:
    config = write_config(tmp_path, extra="rtp:\n  ports: 30000-30100\n")

    def load() -> Config:
        return load_config(config)

    with structlog.testing.capture_logs() as logs:
        changes = await reload_once(server, load)
    assert changes is not None and not changes
    events = {str(r["event"]): r for r in logs}
    restart = [r for e, r in events.items() if "only after a restart" in e]
    assert restart and restart[0]["sections"] == ["rtp"]
    assert "reloaded: no change to scenarios, routes, users or webhooks" in events
