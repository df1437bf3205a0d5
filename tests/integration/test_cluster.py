"""Two nodes behind Kamailio (deploy/kamailio/kamailio.cfg, as shipped; docs/deploy.md).

sipp places calls through Kamailio: both nodes take them (each node's
``mediaserver_calls_started_total``); one node killed with SIGKILL while it
holds calls: new calls go to the survivor and none fails; restarted on its own
data, the node closes the calls it held as interrupted and takes calls again.
Three callers of one conference room meet on one node and hear each other.
A webhook created through one node receives every event of both once (each
post claimed in the shared database), a number a config reload of both nodes
assigns once, and a post a killed node left in retry from the survivor once
its lease (``node.lease``) ran out.

The nodes share one PostgreSQL database (a throw-away cluster of Debian's
PostgreSQL, tests/support/postgres.py, or ``MEDIASERVER_TEST_PG_URL``), as a
deployment of several nodes does (docs/deploy.md): the records of calls taken
by either node are listed through both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.integration.conftest import REPO, ServerProcess, reload, start_server
from tests.integration.webpeer import Request, WebPeer
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.cluster import (
    KAMAILIO_CFG,
    Kamailio,
    Node,
    kamailio_missing,
    options_status,
)
from tests.support.net import free_port, free_port_block, is_free
from tests.support.postgres import PostgresCluster
from tests.support.sipp import SippBackground, run_sipp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(kamailio_missing() is not None, reason=kamailio_missing() or ""),
]

PG_URL = os.environ.get("MEDIASERVER_TEST_PG_URL", "")  # else a throw-away cluster
SCENARIOS = Path(__file__).parent / "scenarios"
PING_INTERVAL = 1  # seconds between Kamailio's OPTIONS probes (10 in the shipped config)
FR_TIMER_MS = 2000  # how long a node has to answer before Kamailio tries the next one (as shipped)
LEASE = 2  # seconds a node's claim on a webhook post holds without renewal (30 by default)
CONFERENCE = """\
branches:
  inbound-call:
    actions:
      - action: conference@v1
        params: {name: "room"}
      - action: hangup@v1
"""
RING_ALICE = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {targets: ["alice"], timeout: 10}
      - action: hangup@v1
"""
QUEUE = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: queue@v1
        params: {name: sales, hold_audio: ringback, max_wait: 30}
        result: $queued
      - action: log@v1
        params: {message: "queue: ${queued}"}
      - action: hangup@v1
"""
AGENT = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: queue@v1
        params: {name: sales, command: bridge-next}
        result: $took
      - action: log@v1
        params: {message: "agent: ${took}"}
      - action: hangup@v1
"""
ROUTES = {
    "echo": "echo",
    "conf-7": "conf",
    "alice": "ring-alice",
    "call-alice": "ring-alice",  # any node's scenario dialing alice (not routed by her name)
    "queue-sales": "queue-sales",
    "agent-sales": "agent-sales",
}
USERS = "users:\n  - {username: alice, password: wonderland}\n"
TONES = {"a": 500.0, "b": 900.0, "c": 1300.0}


@dataclass
class ClusterNode:
    """A node of the cluster: fixed ports and data folder, so a restart is the same node."""

    name: str
    folder: Path
    sip_port: int
    rtp: tuple[int, int]
    database: str
    server: ServerProcess | None = None

    def start(self, scenarios: Path) -> ServerProcess:
        extra = USERS + f"storage:\n  database: {self.database}\n" + f"node:\n  lease: {LEASE}\n"
        self.server = start_server(
            self.folder,
            routes=ROUTES,
            scenarios=scenarios,
            rtp_range=self.rtp,
            log_level="info",
            extra_config=extra,
            extra_args=["--sip-port", str(self.sip_port), "--node-name", self.name],
        )
        return self.server

    @property
    def live(self) -> ServerProcess:
        assert self.server is not None, f"{self.name} is not running"
        return self.server

    def api(self) -> httpx.Client:
        server = self.live
        return httpx.Client(
            base_url=server.api_url,
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=10.0,
        )

    def calls_started(self) -> int:
        """Inbound calls this process took since it started (its Prometheus counter)."""
        with self.api() as api:
            text = api.get("/metrics").text
        m = re.search(r'^mediaserver_calls_started_total\{direction="inbound"\} (\S+)$', text, re.M)
        return int(float(m.group(1))) if m else 0

    def live_calls(self) -> list[dict[str, Any]]:
        with self.api() as api:
            hits: list[dict[str, Any]] = api.get("/api/calls", params={"limit": 100}).json()["hits"]
        return hits

    def records(self, **filters: str) -> list[dict[str, Any]]:
        with self.api() as api:
            body = api.get("/api/cdrs", params={"limit": 100, **filters}).json()
        hits: list[dict[str, Any]] = body["hits"]
        return hits


@dataclass
class Cluster:
    proxy: Kamailio
    nodes: list[ClusterNode]
    scenarios: Path

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not met in {timeout} s: {what}")


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    """The PostgreSQL database both nodes use."""
    if PG_URL:
        yield PG_URL
        return
    with PostgresCluster() as postgres:
        yield postgres.create_database("cluster")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, shared_database: str) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    scenarios = root / "scenarios"
    scenarios.mkdir()
    shutil.copy(SCENARIOS / "echo.yaml", scenarios / "echo.yaml")
    (scenarios / "conf.yaml").write_text(CONFERENCE)
    (scenarios / "ring-alice.yaml").write_text(RING_ALICE)
    (scenarios / "queue-sales.yaml").write_text(QUEUE)
    (scenarios / "agent-sales.yaml").write_text(AGENT)
    nodes = []
    for name in ("node-a", "node-b"):
        low = free_port_block(200, "udp", even=True)
        nodes.append(
            ClusterNode(name, root / name, free_port("both"), (low, low + 199), shared_database)
        )
    for node in nodes:
        node.start(scenarios)
    proxy = Kamailio(
        root / "kamailio",
        [Node(n.name, n.sip_port) for n in nodes],
        ping_interval=PING_INTERVAL,
        fr_timer_ms=FR_TIMER_MS,
    )
    try:
        proxy.start()
        yield Cluster(proxy, nodes, scenarios)
    finally:
        proxy.close()
        for node in nodes:
            if node.server is not None and node.server.process.poll() is None:
                node.server.stop()


def place_calls(cluster: Cluster, tmp: Path, calls: int, rate: int = 25) -> None:
    """``calls`` short echo calls through Kamailio; every one must succeed."""
    result = run_sipp(
        cluster.proxy.address, scenario="uac_proxied", service="echo", calls=calls,
        rate=rate, concurrency=20, duration_ms=300, timeout=60, workdir=tmp,
    )  # fmt: skip
    result.assert_ok(calls=calls)


def test_the_nodes_answer_kamailios_probes(cluster: Cluster) -> None:
    # Kamailio takes a node out unless OPTIONS gets a 2xx (ds_ping_reply_codes class=2).
    for node in cluster.nodes:
        assert options_status("127.0.0.1", node.sip_port) == 200
    with cluster.node("node-a").api() as api:
        assert api.get("/api/ping").json()["node"] == "node-a"
    # Every line a node logs names it (node.name, here from --node-name).
    for node in cluster.nodes:
        records = node.live.log_records()
        assert records and all(r.get("node") == node.name for r in records), node.name


def test_the_shipped_config_checks_as_it_is() -> None:
    # What an operator copies to /etc/kamailio: valid without any -A setting.
    done = subprocess.run(
        ["kamailio", "-c", "-f", str(KAMAILIO_CFG)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and "config file ok" in done.stdout + done.stderr, done.stderr


def test_scripts_cluster_brings_a_cluster_up_and_down(tmp_path: Path) -> None:
    # A small RTP range: a long session has handed out many ports already.
    sip, http, rtp = free_port("both"), free_port("tcp"), free_port_block(100, "udp")
    assert is_free(sip + 2, "both"), "the node's port (Kamailio's + 2) is taken: rerun"
    env = {**os.environ, "PYTHON": sys.executable}
    state = tmp_path / "cluster"

    def cluster_script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / "scripts" / "cluster"), *args, "--dir", str(state)],
            capture_output=True, text=True, timeout=90, env=env, check=False,
        )  # fmt: skip

    up = cluster_script(
        "up", "--nodes", "1", "--sip-port", str(sip), "--http-port", str(http),
        "--rtp-port", str(rtp), "--rtp-count", "100", "--postgres",
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"kamailio  sip udp+tcp 127.0.0.1:{sip}" in up.stdout
        assert f"node-a    sip 127.0.0.1:{sip + 2}  api http://127.0.0.1:{http}" in up.stdout
        assert "probe 200" in up.stdout
        assert re.search(r"database  postgresql://\S+@127\.0\.0\.1:\d+/mediaserver", up.stdout)
        run_sipp(
            f"127.0.0.1:{sip}", scenario="uac_proxied", service="echo", calls=2,
            duration_ms=200, timeout=30, workdir=tmp_path / "sipp",
        ).assert_ok(calls=2)  # fmt: skip
        status = cluster_script("status")
        assert status.stdout.count(": running") == 2, status.stdout
    finally:
        down = cluster_script("down")
    assert down.returncode == 0 and "stopped node-a" in down.stdout, down.stdout + down.stderr
    assert "stopped postgres" in down.stdout
    assert cluster_script("status").stdout.strip() == "no cluster"
    assert is_free(sip, "both") and is_free(sip + 2, "both")


def test_calls_spread_over_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    before = {n.name: n.calls_started() for n in cluster.nodes}
    place_calls(cluster, tmp_path / "sipp", 200, rate=50)
    taken = {n.name: n.calls_started() - before[n.name] for n in cluster.nodes}
    assert sum(taken.values()) == 200, taken
    # Round robin: each node takes about half.
    assert min(taken.values()) >= 60, taken


def test_every_record_is_listed_through_either_node(cluster: Cluster, tmp_path: Path) -> None:
    since = datetime.now(UTC).isoformat()
    place_calls(cluster, tmp_path / "sipp", 40)
    filters = {"to": "echo", "startedAfter": since, "status": "ended"}
    # Records are written off the call path: wait until both nodes list all 40.
    for node in cluster.nodes:
        wait_for(lambda n=node: len(n.records(**filters)) == 40, what=f"40 on {node.name}")
    listed = [{r["callid"] for r in n.records(**filters)} for n in cluster.nodes]
    assert listed[0] == listed[1]


def test_a_call_is_acted_on_through_its_node_and_the_others_say_which(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Live calls are per node: node-b knows (from the shared records) that node-a
    holds the call and answers 421 naming it, for a hang-up and for injected
    actions; node-a hangs it up (sipp passes only if our BYE comes)."""
    a, b = cluster.nodes
    with SippBackground(
        f"127.0.0.1:{a.sip_port}", scenario="uac_bye_from_server", service="echo",
        recv_timeout_ms=30000, rtp_echo=True, timeout=40, workdir=tmp_path / "sipp",
    ) as caller:  # fmt: skip
        [call] = wait_for(lambda: a.live_calls() or None, what="the call on node-a")
        path = f"/api/calls/{call['id']}"
        with b.api() as api:
            # The record is written off the call path: wait until node-b can read it.
            wait_for(lambda: api.get(f"/api/cdrs/{call['id']}").status_code == 200)
            refused = [
                api.delete(path),
                api.post(f"{path}/actions", json={"actions": [{"action": "hangup@v1"}]}),
            ]
        for answer in refused:
            assert answer.status_code == 421, answer.text
            error = answer.json()["error"]
            assert error["code"] == "on_another_node" and "node-a" in error["message"]
        with a.api() as api:
            assert api.delete(path).status_code == 200
        caller.wait(timeout=20).assert_ok(calls=1)


def room_holders(cluster: Cluster, user: str, count: int) -> dict[str, list[dict[str, Any]]]:
    """Each node's live calls to ``user``, once there are ``count`` in all (else empty)."""
    found = {n.name: [c for c in n.live_calls() if c["to"] == user] for n in cluster.nodes}
    return found if sum(len(calls) for calls in found.values()) == count else {}


def test_callers_of_one_room_meet_on_one_node(cluster: Cluster, tmp_path: Path) -> None:
    phones: dict[str, Baresip] = {}
    heard: dict[str, npt.NDArray[np.float64]] = {}
    room = f"sip:conf-7@{cluster.proxy.address}"
    try:
        for name, hz in TONES.items():
            wav = audio.make_tone_wav(tmp_path / f"{name}.wav", hz, 20.0, amplitude=0.3)
            phone = Baresip(user=name, input_wav=wav, max_call_s=40, workdir=tmp_path / name)
            phones[name] = phone.start()
            phone.dial(room)
            phone.wait_established(timeout=10)
        holders = wait_for(lambda: room_holders(cluster, "conf-7", 3), what="3 in conf-7")
        # Round robin would have split three callers over two nodes: the hash kept them.
        assert sorted(len(calls) for calls in holders.values()) == [0, 3], holders
        (node,) = [name for name, calls in holders.items() if calls]
        assert {c["node"] for c in holders[node]} == {node}
        time.sleep(3.0)
        for name, phone in phones.items():
            samples, rate = phone.recorded_audio()
            heard[name] = samples[-2 * rate :]  # the last 2 s: all three in the room
        for phone in phones.values():
            phone.hangup()
            phone.wait_closed(timeout=10)
    finally:
        for phone in phones.values():
            phone.close()
    for name, samples in heard.items():
        got = {other: audio.goertzel_power(samples, 8000, hz) for other, hz in TONES.items()}
        others = [other for other in TONES if other != name]
        for other in others:
            assert got[other] > 1e-3, f"{name} did not hear {other}: {got}"
        assert got[name] < 1e-3 * min(got[other] for other in others), f"{name} heard itself"


def waiting_in(node: ClusterNode, queue: str) -> int:
    with node.api() as api:
        hits = api.get("/api/queues").json()["hits"]
    return sum(q["waiting"] for q in hits if q["name"] == queue)


def test_a_queue_caller_and_an_agent_meet_on_one_node(cluster: Cluster, tmp_path: Path) -> None:
    # Two calls in a row would go to different nodes in turn: the affinity joins them.
    with SippBackground(
        cluster.proxy.address, scenario="uac_proxied", service="queue-sales", calls=1,
        duration_ms=20000, timeout=40, workdir=tmp_path / "caller",
    ):  # fmt: skip
        node = wait_for(
            lambda: next((n for n in cluster.nodes if waiting_in(n, "sales") == 1), None),
            what="the caller waiting in sales",
        )
        agent = run_sipp(
            cluster.proxy.address, scenario="uac_proxied", service="agent-sales", calls=1,
            duration_ms=1000, timeout=30, workdir=tmp_path / "agent",
        )  # fmt: skip
        agent.assert_ok(calls=1)
        # The agent took the caller: the caller's queue@v1 ended "bridged" on that node.
        wait_for(lambda: node.live.log_records("queue: bridged"), what="queue: bridged")
    # (A queue lives in one process: "bridged" needs the agent on the caller's node.)
    assert [r["to"] for r in node.records(to="agent-sales")] == ["agent-sales"]
    assert waiting_in(node, "sales") == 0


def test_a_user_registered_through_kamailio_is_rung_from_its_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    # alice registers through Kamailio: one node holds her binding (digest checked there).
    with Baresip(
        user="alice", registrar=cluster.proxy.address, password="wonderland",
        auto_answer=True, max_call_s=30, workdir=tmp_path / "alice",
    ) as alice:  # fmt: skip
        alice.wait_registered(timeout=10)
        # A call to "alice" through Kamailio goes to her node (not round robin), whose
        # scenario dials her: through Kamailio again, where her REGISTER came from.
        for attempt in range(2):
            with SippBackground(
                cluster.proxy.address, scenario="uac_proxied", service="alice", calls=1,
                duration_ms=1000, timeout=30, workdir=tmp_path / f"caller-{attempt}",
            ) as caller:  # fmt: skip
                alice.wait_established(timeout=10)
                caller.wait(timeout=20).assert_ok(calls=1)
            alice.wait_closed(timeout=10)
    # Which node took each call (the records are shared: each node's own log says).
    rang = [
        n.name
        for n in cluster.nodes
        for r in n.live.log_records("call started")
        if r.get("called") == "alice" and r.get("direction") == "inbound"
    ]
    assert len(rang) == 2 and len(set(rang)) == 1, rang


def test_a_user_registered_on_one_node_is_dialed_from_the_other(
    cluster: Cluster, tmp_path: Path
) -> None:
    alice_tone, bob_tone = 500.0, 900.0
    alice_wav = audio.make_tone_wav(tmp_path / "alice.wav", alice_tone, 20.0, amplitude=0.3)
    bob_wav = audio.make_tone_wav(tmp_path / "bob.wav", bob_tone, 20.0, amplitude=0.3)
    with Baresip(
        user="alice", registrar=cluster.proxy.address, password="wonderland",
        auto_answer=True, input_wav=alice_wav, max_call_s=30, workdir=tmp_path / "alice",
    ) as alice:  # fmt: skip
        alice.wait_registered(timeout=10)
        # Kamailio sent her REGISTER to one node (a hash of her name)...
        (holder,) = [
            n
            for n in cluster.nodes
            if any(r.get("user") == "alice" for r in n.live.log_records("register"))
        ]
        (other,) = [n for n in cluster.nodes if n is not holder]
        # ...and a call on the other node whose scenario dials her reaches her: through
        # the shared bindings, sent where her REGISTER came from (Kamailio).
        with Baresip(
            user="bob", input_wav=bob_wav, max_call_s=30, workdir=tmp_path / "bob"
        ) as bob:  # fmt: skip
            bob.dial(f"sip:call-alice@127.0.0.1:{other.sip_port}")
            alice.wait_established(timeout=10)
            bob.wait_established(timeout=10)
            time.sleep(2.0)  # audio both ways
            bob.hangup()
            bob.wait_closed(timeout=10)
            alice.wait_closed(timeout=10)
            bob_heard, rate = bob.recorded_audio()
        alice_heard, _ = alice.recorded_audio()
    assert [r["to"] for r in other.records(to="call-alice")] == ["call-alice"]
    assert not holder.live.log_records("call started") or all(
        r.get("called") != "call-alice" for r in holder.live.log_records("call started")
    )
    for name, heard, want, own in (
        ("bob", bob_heard, alice_tone, bob_tone),
        ("alice", alice_heard, bob_tone, alice_tone),
    ):
        tail = heard[-rate:]
        got = audio.goertzel_power(tail, rate, want)
        assert got > 1e-3, f"{name} did not hear the other side: {got}"
        assert audio.goertzel_power(tail, rate, own) < got, f"{name} heard itself"


def test_a_killed_node_is_routed_around_and_recovers(cluster: Cluster, tmp_path: Path) -> None:
    survivor, victim = cluster.node("node-a"), cluster.node("node-b")
    victim_uri = f"sip:127.0.0.1:{victim.sip_port}"
    assert cluster.proxy.destinations() == {
        f"sip:127.0.0.1:{n.sip_port}": "AP" for n in cluster.nodes
    }
    # Calls that are still up when the node dies: round robin gives each node some.
    with SippBackground(
        cluster.proxy.address, scenario="uac_proxied", service="echo", calls=4, rate=20,
        duration_ms=60000, timeout=90, workdir=tmp_path / "held",
    ):  # fmt: skip
        held = wait_for(lambda: len(victim.live_calls()) >= 1 and victim.live_calls(), what="held")
        held_ids = {c["id"] for c in held}
        wait_for(lambda: len(survivor.live_calls()) + len(victim.live_calls()) == 4, what="4 up")

        survivor_held = {c["id"] for c in survivor.live_calls()}
        victim.live.process.kill()  # SIGKILL: no BYE, no record closed
        victim.live.process.wait()
        started = survivor.calls_started()
        # Right away, before Kamailio's probe notices: calls sent to the dead node get
        # no reply within FR_TIMER and fail over to the survivor; none may fail.
        place_calls(cluster, tmp_path / "after-kill", 30)
        assert "failing over" in cluster.proxy.log_text()
        # Within its probing interval (and the probe's FR_TIMER), Kamailio takes it out.
        wait_for(
            lambda: cluster.proxy.destinations()[victim_uri].startswith("I"),
            timeout=PING_INTERVAL + FR_TIMER_MS / 1000 + 5,
            what=f"{victim_uri} marked inactive",
        )
        place_calls(cluster, tmp_path / "after-probe", 30)
        assert survivor.calls_started() - started == 60

        # Restarted on its data: what it held is closed as interrupted.
        victim.start(cluster.scenarios)
        records = wait_for(
            lambda: (r := victim.records(status="interrupted")) and len(r) >= len(held_ids) and r,
            what="interrupted records",
        )
        assert held_ids <= {r["callid"] for r in records}
        # Only the restarted node's calls: the survivor's are still up (with a shared
        # database, recovery must not close another node's live calls).
        assert not survivor_held & {r["callid"] for r in records}
        assert {c["id"] for c in survivor.live_calls()} == survivor_held

        # Its probe answers again: Kamailio sends it calls again.
        wait_for(
            lambda: cluster.proxy.destinations()[victim_uri].startswith("A"),
            timeout=PING_INTERVAL + 10,
            what=f"{victim_uri} active again",
        )
        back = victim.calls_started()
        place_calls(cluster, tmp_path / "after-restart", 20)
        assert victim.calls_started() - back >= 5

        # The survivor's held calls end now (sipp answers the BYE), not at teardown.
        with survivor.api() as api:
            for call in survivor.live_calls():
                assert api.delete(f"/api/calls/{call['id']}").status_code == 200


# -- webhooks: each event once, whichever node publishes it and whichever dies --------------


def event_ids(web: WebPeer, path: str = "/events") -> Counter[str]:
    return Counter(str(r.json()["id"]) for r in web.received(path))


def of_type(event_type: str, **payload: str) -> Callable[[Request], bool]:
    def match(request: Request) -> bool:
        body = request.json()
        data = body.get("payload") or {}
        return bool(
            body.get("type") == event_type and all(data.get(k) == v for k, v in payload.items())
        )

    return match


def test_a_webhook_gets_each_event_once_and_a_dead_nodes_retries_from_the_survivor(
    cluster: Cluster, tmp_path: Path
) -> None:
    survivor, victim = cluster.node("node-a"), cluster.node("node-b")
    with WebPeer() as web:
        before = len(victim.live.log_records("re-read a change of the shared database"))
        with survivor.api() as api:
            created = api.post(
                "/api/webhooks",
                json={"endpoint": web.url("/events"), "events": ["v2.call.*", "v2.number.*"]},
            )
            assert created.status_code == 201, created.text
            scenarios = api.get("/api/scenarios", params={"name": "echo"}).json()["hits"]
            echo = next(s["sid"] for s in scenarios if s["name"] == "echo")
        # The other node reads the new webhook from the shared database.
        wait_for(
            lambda: (
                len(victim.live.log_records("re-read a change of the shared database")) > before
            ),
            what="node-b re-read the webhooks",
        )

        # Calls over both nodes: every event once (started and ended of each call).
        started = {n.name: n.calls_started() for n in cluster.nodes}
        place_calls(cluster, tmp_path / "calls", 10)
        assert all(n.calls_started() > started[n.name] for n in cluster.nodes)
        calls = wait_for(
            lambda: len(web.received("/events")) >= 20 and web.received("/events"),
            what="20 call events",
        )
        types = Counter(r.json()["type"] for r in calls)
        assert types == {"v2.call.inbound.started": 10, "v2.call.inbound.ended": 10}, types
        assert set(event_ids(web).values()) == {1}

        # A number both nodes' config reloads assign: one event for the cluster.
        for node in cluster.nodes:
            config = node.live.data_dir / "config.yaml"
            text = config.read_text().replace("routes:\n", 'routes:\n  "+33199001234": echo\n')
            config.write_text(text)
            reload(node.live, "reloaded")
        assigned = of_type("v2.number.assigned", e164="+33199001234")
        web.wait_for(assigned)
        # The node that found the event stored already says so, and does not post it.
        wait_for(
            lambda: [
                record
                for node in cluster.nodes
                for record in node.live.log_records("webhook event posted by another node")
                if record.get("event_type") == "v2.number.assigned"
            ],
            what="one node left the event to the other",
        )
        assert len([r for r in web.received("/events") if assigned(r)]) == 1

        # The receiver fails: a number attached through node-b is in retry there...
        web.answer("/events", 500, "down")
        mobile = "+33612345678"
        with victim.api() as api:
            attached = api.put(f"/api/numbers/{mobile}/scenario/{echo}")
            assert attached.status_code == 200, attached.text
        retried = of_type("v2.number.assigned", e164=mobile)
        first = web.wait_for(retried)
        event_id = first.json()["id"]

        def retrying() -> bool:  # node-b has the 500 back and logged it
            with survivor.api() as api:
                log = api.get("/api/webhooks/logs", params={"id": event_id}).json()
            return any(h["outcome"] == "retrying" for h in log["hits"])

        wait_for(retrying, what="node-b's attempt logged as retrying")
        # ...when node-b dies: the post's row is claimed by it, its lease running.
        victim.live.process.kill()
        victim.live.process.wait()
        killed = time.monotonic()
        web.answer("/events", 200, {})
        seen = len(web.requests)
        # The survivor takes it over once the lease ran out and delivers it.
        wait_for(
            lambda: any(retried(r) for r in web.requests[seen:]),
            timeout=LEASE + 30,
            what="the survivor posts node-b's event",
        )
        assert time.monotonic() - killed >= LEASE / 2  # not before node-b's lease ran out
        assert "webhook posts taken over from the database" in survivor.live.log_text()
        with survivor.api() as api:
            log = api.get("/api/webhooks/logs", params={"id": event_id, "order": "asc"})
        # The shared delivery log: node-b's failed attempts, then the survivor's delivery.
        outcomes = [h["outcome"] for h in log.json()["hits"]]
        assert outcomes[0] == "retrying" and outcomes[-1] == "delivered", outcomes
        assert outcomes.count("delivered") == 1, outcomes

        # node-b back on its data: nothing of its is left to post, so nothing twice.
        victim.start(cluster.scenarios)
        with victim.api() as api:
            assert api.get("/api/ping").status_code == 200
        accepted = [r for r in web.requests[seen:] if retried(r)]
        assert len(accepted) == 1, [r.json()["id"] for r in accepted]
