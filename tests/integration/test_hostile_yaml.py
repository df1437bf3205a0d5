"""Hostile scenario YAML against the real server and the real `mediaserver check`.

Explicit tags with values they refuse, 300 nested brackets, a self-containing
alias and a "billion laughs" (7 levels of 10 aliases, under 500 bytes) each
get a 422 naming the line through ``POST /api/scenarios`` and a
``FILE:LINE:COL`` line from ``mediaserver check``, without the server's peak
memory growing; a bomb already in the store (saved by an older version) is
refused at start-up instead of being expanded again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import REPO, ServerProcess, start_server

pytestmark = pytest.mark.integration

ROUTES = {"echo": "echo", "*": "echo"}
BRANCHES = "branches:\n  inbound-call:\n    actions:\n      - action: answer@v1\n"


def laughs(levels: int = 7) -> str:
    """Each anchor names a list of ten aliases of the one before: 10**levels values in all."""
    lines = ["variables:", "  $a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"  $a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n" + BRANCHES


# name -> (script, line of the problem, words the message must contain)
CASES = {
    "int": ("variables:\n  $n: !!int abc\n" + BRANCHES, 2, "!!int"),
    "float": ("variables:\n  $n: !!float .\n" + BRANCHES, 2, "!!float"),
    "timestamp": ("variables:\n  $n: !!timestamp 2001-13-45\n" + BRANCHES, 2, "!!timestamp"),
    "bool": ("variables:\n  $n: !!bool\n" + BRANCHES, 2, "!!bool"),
    "nesting": ("variables:\n  $n: " + "[" * 300 + "]" * 300 + "\n" + BRANCHES, 2, "nested"),
    "loop": ("variables:\n  $n: &n {k: *n}\n" + BRANCHES, 2, "loop"),
    "laughs": (laughs(), 6, "aliases"),
}


def peak_memory_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("yaml"), routes=ROUTES)
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


def test_the_bomb_is_small() -> None:
    assert len(laughs().encode()) < 500


@pytest.mark.parametrize("case", sorted(CASES))
def test_api_answers_422_with_the_line(server: ServerProcess, case: str) -> None:
    script, line, words = CASES[case]
    before = peak_memory_kb(server.process.pid)
    response = httpx.post(
        f"{server.api_url}/api/scenarios",
        json={"name": f"hostile-{case}", "script": script},
        headers={"X-API-Key": server.api_key},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    detail = body["details"][0]
    assert detail["line"] == line and detail["column"] >= 1, body
    assert words in detail["message"], body
    assert f"line {line}" in body["message"]
    # Refused before anything was built: the server's peak memory barely moves.
    assert peak_memory_kb(server.process.pid) - before < 40_000
    # And nothing was stored.
    names = httpx.get(
        f"{server.api_url}/api/scenarios",
        params={"name": "hostile"},
        headers={"X-API-Key": server.api_key},
    ).json()
    assert names["hits"] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_prints_file_line_column(tmp_path: Path, case: str) -> None:
    script, line, words = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(script)
    done = subprocess.run(
        [sys.executable, "-m", "mediaserver", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"{path}:{line}:"), done.stdout
    assert words in first


def test_a_stored_bomb_is_not_expanded_at_start(tmp_path: Path) -> None:
    """A bomb saved before the limits existed: the next start refuses it, with its line."""
    proc = start_server(tmp_path, routes=ROUTES)
    assert proc.stop() == 0
    database = tmp_path / "data" / "mediaserver.db"
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO scenarios (id, name, source, origin, created_at, updated_at) "
            "VALUES ('bomb0001', 'bomb', ?, 'api', 0, 0)",
            (laughs(),),
        )
    proc = start_server(tmp_path, routes=ROUTES)
    try:
        refused = proc.log_records("stored scenario no longer valid")
        assert [r["scenario"] for r in refused] == ["bomb"]
        assert "bomb.yaml:6:" in refused[0]["errors"]
        assert peak_memory_kb(proc.process.pid) < 200_000
        # The server answers while the bomb stays in the store, unusable.
        response = asyncio.run(_get(proc, "/api/scenarios"))
        assert response.status_code == 200
        assert "bomb" in [s["name"] for s in response.json()["hits"]]
    finally:
        assert proc.stop() == 0


async def _get(proc: ServerProcess, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=proc.api_url, headers={"X-API-Key": proc.api_key}, timeout=10
    ) as client:
        return await client.get(path)
