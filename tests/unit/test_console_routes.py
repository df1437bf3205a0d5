"""The console's routes on an app not listening: its files, its scenario check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mediaserver.api.app import create_app
from mediaserver.config import Config, HttpConfig
from mediaserver.console.assets import load_assets
from mediaserver.server import Server

REPO = Path(__file__).resolve().parents[2]
KEY = "console-unit-key"
BROKEN = """\
name: greeting
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: sya@v1
"""


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = Config(
        path=tmp_path / "config.yaml",
        http=HttpConfig("127.0.0.1", 0, (KEY,)),
        scenarios_dir=REPO / "configs" / "scenarios",
        data_dir=tmp_path,
    )
    app = create_app(Server(config))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    app.state.telemetry.loop_lag.stop()


def test_every_page_module_the_shell_imports_is_shipped() -> None:
    assets = load_assets()
    shell = assets["app.js"].body.decode()
    for line in shell.splitlines():
        if line.startswith("import ") and '"./' in line:
            assert line.split('"./')[1].split('"')[0] in assets, line
    assert assets["index.html"].media_type.startswith("text/html")


async def test_pages_are_served_with_a_policy_and_nothing_else_is(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/console/")
    assert page.status_code == 200 and 'src="app.js"' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert (await client.get("/console")).headers["location"] == "/console/"
    script = await client.get("/console/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    for path in ("/console/assets.py", "/console/..%2Froutes.py", "/console/%2e%2e"):
        missing = await client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["field"] == "file" or "no such endpoint" in missing.text


async def test_check_names_each_problem_at_its_line_and_saves_nothing(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"name": "greeting", "script": BROKEN}
    assert (await client.post("/api/scenarios/check", json=body)).status_code == 401
    answer = await client.post("/api/scenarios/check", json=body, headers=headers)
    assert answer.status_code == 200
    result = answer.json()
    assert result["ok"] is False
    assert [(p["line"], p["column"]) for p in result["problems"]] == [(6, 17)]
    assert "sya@v1" in result["problems"][0]["message"]
    fixed = {"name": "greeting", "script": BROKEN.replace("sya@v1", "hangup@v1")}
    good = await client.post("/api/scenarios/check", json=fixed, headers=headers)
    assert good.json() == {"ok": True, "problems": []}
    renamed = {"name": "other", "script": fixed["script"]}
    mismatch = (await client.post("/api/scenarios/check", json=renamed, headers=headers)).json()
    assert mismatch["ok"] is False and mismatch["problems"][0]["line"] == 1
