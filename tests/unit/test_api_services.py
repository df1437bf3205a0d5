"""The API's routes go through the runs and catalog services (mediaserver/api/deps.py).

Checked with ``ast`` on every module of ``mediaserver/api/`` that serves
requests: none reaches the user agent, the scenario library or the router,
and none writes scenarios or numbers to the store itself, so the store, the
library and the router cannot be changed one without the others from the
API. ``metrics.py`` is left out: it only reads the user agent's counters
when scraped.
"""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "mediaserver" / "api"

# Attributes of the server the routes must not reach: the services own them.
HIDDEN = {"ua", "library", "router", "start_run", "cancel_run", "inject_actions", "find_call"}
# Store writes only the catalog makes: (table, method).
CATALOG_WRITES = {
    ("scenarios", "create"),
    ("scenarios", "update"),
    ("scenarios", "delete"),
    ("numbers", "attach"),
    ("numbers", "detach"),
}


def offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if node.attr in HIDDEN and _is_server(owner):
            found.append(f"line {node.lineno}: server.{node.attr}")
        if isinstance(owner, ast.Attribute) and (owner.attr, node.attr) in CATALOG_WRITES:
            found.append(f"line {node.lineno}: .{owner.attr}.{node.attr}")
    return sorted(found, key=lambda line: int(line.split(":")[0].split()[1]))


def _is_server(node: ast.expr) -> bool:
    """``server`` or ``server_of(request)``."""
    if isinstance(node, ast.Name):
        return node.id == "server"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "server_of"
    )


def test_the_check_finds_what_it_forbids() -> None:
    source = (
        "server.ua.active_calls\n"
        "server_of(request).router.attach(n, s)\n"
        "store_of(request).numbers.detach(n, s)\n"
        "server.library.put(a, b, c)\n"
    )
    assert offences(source) == [
        "line 1: server.ua",
        "line 2: server.router",
        "line 3: .numbers.detach",
        "line 4: server.library",
    ]
    assert offences("runs_of(request).find_call(c)\nstore_of(request).scenarios.search()\n") == []


def test_api_modules_use_the_services() -> None:
    found = {
        path.name: offences(path.read_text(encoding="utf-8"))
        for path in sorted(API.glob("*.py"))
        if path.name not in ("deps.py", "metrics.py")
    }
    assert {name: lines for name, lines in found.items() if lines} == {}
