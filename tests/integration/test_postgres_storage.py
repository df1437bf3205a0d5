"""`mediaserver run` on PostgreSQL storage (``storage.database: postgresql://...``).

One throw-away cluster for the module (:mod:`tests.support.postgres`), a fresh
database per test. A real call through sipp leaves its record in PostgreSQL,
found through the API; a server that cannot reach its database refuses to start
and names the setting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.net import free_port
from tests.support.postgres import PostgresCluster
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as running:
        yield running


def start_on(tmp: Path, url: str) -> ServerProcess:
    return start_server(
        tmp,
        routes={"echo": "echo"},
        scenarios=SCENARIOS,
        extra_config=f"storage:\n  database: {url}\n",
    )


def api(server: ServerProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    return httpx.Client(base_url=server.api_url, headers=headers, timeout=15)


def wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def ended_records(client: httpx.Client) -> list[dict[str, Any]]:
    page = client.get("/api/cdrs", params={"status": "ended", "limit": 100}).json()
    hits: list[dict[str, Any]] = page["hits"]
    return hits


def test_a_call_is_recorded_in_postgresql_and_found_through_the_api(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = cluster.create_database()
    server = start_on(tmp_path / "server", url)
    try:
        run_sipp(server.target, scenario="uac", service="echo", duration_ms=500,
                 workdir=tmp_path / "sipp").assert_ok(calls=1)  # fmt: skip
        with api(server) as client:
            (record,) = wait_for(lambda: ended_records(client))
        assert (record["from"], record["number"]) == ("sipp", "echo")
        assert record["scenario"]["name"] == "echo" and record["sipStatus"] == 200
        database = url.rsplit("/", 1)[1]
        row = cluster.psql(f"SELECT status, run_id IS NOT NULL FROM calls WHERE id = "
                           f"'{record['callid']}'", database)  # fmt: skip
        assert row.strip() == "ended|t"
        assert not (tmp_path / "server" / "data" / "mediaserver.db").exists()
    finally:
        assert server.stop() == 0, server.log_text()[-3000:]


def test_an_unreachable_database_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    url = f"postgresql://ms:secret@127.0.0.1:{free_port('tcp')}/ms"
    with pytest.raises(RuntimeError) as refused:
        start_on(tmp_path / "server", url)
    message = str(refused.value)
    assert "storage.database: postgresql://ms:***@127.0.0.1:" in message
    assert "cannot reach the PostgreSQL server" in message
    assert "secret" not in message
