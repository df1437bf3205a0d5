"""`mediaserver run` on PostgreSQL storage (``storage.database: postgresql://...``).

One throw-away cluster for the module (:mod:`tests.support.postgres`), a fresh
database per test. A real call through sipp leaves its record in PostgreSQL,
found through the API; a server that cannot reach its database refuses to start
and names the setting. Two servers (nodes) on one database: a webhook and a
scenario created through one node's API hold on the other at once (LISTEN/NOTIFY,
:mod:`mediaserver.shared_state`), and each call event reaches the webhook once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import WebPeer
from tests.support.net import free_port
from tests.support.postgres import PostgresCluster
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as running:
        yield running


BEEP_AND_HANG_UP = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: play@v1
        params: {tone: beep}
      - action: hangup@v1
"""


def start_on(tmp: Path, url: str, node: str = "solo") -> ServerProcess:
    return start_server(
        tmp,
        routes={"echo": "echo"},
        scenarios=SCENARIOS,
        extra_config=f"storage:\n  database: {url}\nnode:\n  name: {node}\n",
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


def followed(server: ServerProcess, what: str) -> bool:
    """Whether ``server`` has re-read ``what`` after another node changed it."""
    return any(r.get("what") == what for r in server.log_records("re-read a change of the "
                                                                  "shared database"))  # fmt: skip


def test_two_nodes_share_scenarios_numbers_webhooks_and_records(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = cluster.create_database()
    number = "+33199007777"
    with WebPeer() as receiver:
        alpha = start_on(tmp_path / "alpha", url, "alpha")
        beta = start_on(tmp_path / "beta", url, "beta")
        try:
            with api(alpha) as on_alpha:
                hook = on_alpha.post(
                    "/api/webhooks", json={"endpoint": receiver.url("/events"),
                                           "events": ["v2.call.*"]},
                )  # fmt: skip
                assert hook.status_code == 201, hook.text
                created = on_alpha.post(
                    "/api/scenarios", json={"name": "beep", "script": BEEP_AND_HANG_UP}
                )
                assert created.status_code == 201, created.text
                sid = created.json()["sid"]
                attached = on_alpha.put(f"/api/scenarios/{sid}/numbers/{number}")
                assert attached.status_code == 200, attached.text
            # beta heard of all three changes through the database, not through alpha.
            wait_for(lambda: followed(beta, "webhooks"))
            wait_for(lambda: any(r.get("numbers") == 1 for r in beta.log_records("catalog read")))

            run_sipp(beta.target, scenario="uac_bye_from_server", service=number,
                     recv_timeout_ms=15000, workdir=tmp_path / "b").assert_ok(calls=1)  # fmt: skip
            run_sipp(alpha.target, scenario="uac", service="echo", duration_ms=300,
                     workdir=tmp_path / "alpha-call").assert_ok(calls=1)  # fmt: skip

            with api(alpha) as on_alpha, api(beta) as on_beta:
                for client in (on_alpha, on_beta):  # either node lists both calls
                    records = wait_for(lambda c=client: len(ended_records(c)) == 2
                                       and ended_records(c))  # fmt: skip
                    by_number = {r["number"]: r for r in records}
                    assert by_number[number]["scenario"] == {"sid": sid, "name": "beep"}
                    assert by_number["echo"]["scenario"]["name"] == "echo"
            callids = {r["callid"] for r in records}
            wait_for(lambda: len(receiver.received("/events")) >= 4)
        finally:
            assert alpha.stop() == 0, alpha.log_text()[-3000:]
            assert beta.stop() == 0, beta.log_text()[-3000:]
        # Both stopped (their webhook queues drained): nothing more can arrive.
        events = [r.json() for r in receiver.received("/events")]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == 4, ids  # each event once, from whichever node had it
    seen = {(e["type"], e["payload"]["callid"]) for e in events}
    assert seen == {
        (f"v2.call.inbound.{step}", callid) for step in ("started", "ended") for callid in callids
    }
