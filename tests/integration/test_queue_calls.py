"""queue@v1 with real phones: callers wait in line, an agent takes them in order.

Callers run the example ``queue`` scenario (configs/scenarios), agents the
``agent`` one. Each phone sends its own tone: a caller waiting hears
ringback (440 + 480 Hz), then, once the agent takes it, the agent's tone,
and the agent the caller's. ``GET /api/queues`` shows who waits, in order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

HZ = {"first": 700.0, "second": 1500.0, "agent": 1100.0}
RINGBACK = (440.0, 480.0)
DIAL_TONE = (350.0, 440.0)

WAIT = """\
branches:
  inbound-call:
    actions:
      - action: queue@v1
        params: {name: support, hold_audio: dial, max_wait: 4}
        result: $queued
      - action: log@v1
        params: {message: "queue: ${queued}"}
      - action: say@v1
        params: {text: "Nobody could take your call."}
      - action: hangup@v1
"""


def phone(tmp_path: Path, name: str) -> Baresip:
    wav = audio.make_tone_wav(tmp_path / f"{name}.wav", HZ[name], 40.0, amplitude=0.4)
    return Baresip(user=name, input_wav=wav, max_call_s=60, workdir=tmp_path / name)


def queues(server: ServerProcess) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    response = httpx.get(f"{server.api_url}/api/queues", headers=headers, timeout=10)
    response.raise_for_status()
    hits: list[dict[str, Any]] = response.json()["hits"]
    return hits


def wait_waiting(server: ServerProcess, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = queues(server)
        if sum(q["waiting"] for q in found) == count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not {count} waiting after {timeout} s: {queues(server)}")


def callid_of(server: ServerProcess, user: str) -> str:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    calls = httpx.get(f"{server.api_url}/api/calls", headers=headers, timeout=10).json()["hits"]
    [call] = [c for c in calls if c["from"] == user]
    return str(call["id"])


def test_the_agent_takes_the_caller_who_waited_longest(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", routes={"queue": "queue", "agent": "agent"})
    try:
        with phone(tmp_path, "first") as first, phone(tmp_path, "second") as second:
            first.dial(server.uri("queue"))
            first.wait_established(timeout=10)
            wait_waiting(server, 1)
            second.dial(server.uri("queue"))
            second.wait_established(timeout=10)
            [line] = wait_waiting(server, 2)
            assert line["name"] == "support"
            assert line["callids"] == [callid_of(server, "first"), callid_of(server, "second")]
            time.sleep(2)
            waiting, rate = first.recorded_audio()
            with phone(tmp_path, "agent") as agent:
                agent.dial(server.uri("agent"))
                agent.wait_established(timeout=10)
                [line] = wait_waiting(server, 1)
                assert line["callids"] == [callid_of(server, "second")]
                time.sleep(3)
                first_heard, _ = first.recorded_audio()
                second_heard, _ = second.recorded_audio()
                agent_heard, agent_rate = agent.recorded_audio()
                agent.hangup()
                agent.wait_closed(timeout=10)
            # The first caller's run goes on after the agent hung up: it ends the call.
            assert first.wait_closed(timeout=20) == "Connection reset by peer"
            second.hangup()
            second.wait_closed(timeout=10)
            wait_waiting(server, 0)
            assert queues(server) == []
    finally:
        server.stop()
    assert audio.tone_present(waiting, rate, RINGBACK, 1.5), "no hold audio"
    last = slice(-2 * rate, None)
    assert audio.tone_present(first_heard[last], rate, HZ["agent"], 1.5), "caller missed the agent"
    assert audio.tone_present(agent_heard[last], agent_rate, HZ["first"], 1.5)
    assert not audio.tone_present(agent_heard, agent_rate, HZ["second"], 0.3)
    assert not audio.tone_present(second_heard, rate, HZ["agent"], 0.3), "second was bridged too"
    assert audio.tone_present(second_heard, rate, RINGBACK, 1.5), "second was not on hold"
    assert [r["event"] for r in server.log_records("queue: bridged")] == ["queue: bridged"]
    assert server.log_records("agent: bridged") == []  # the agent hung up: its run ended there


def test_a_caller_leaves_after_max_wait(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "wait.yaml").write_text(WAIT)
    server = start_server(tmp_path / "server", routes={"wait": "wait"}, scenarios=scenarios)
    try:
        with phone(tmp_path, "first") as first:
            first.dial(server.uri("wait"))
            first.wait_established(timeout=10)
            assert [q["waiting"] for q in wait_waiting(server, 1)] == [1]
            assert first.wait_closed(timeout=20) == "Connection reset by peer"
            heard, rate = audio.read_mono(first.recorded_wav)
        assert queues(server) == []
    finally:
        server.stop()
    assert server.log_records("queue: timeout")
    hold = audio.tone_seconds(heard, rate, DIAL_TONE)
    assert 3.5 <= hold <= 4.5, f"{hold} s of hold audio for a 4 s max_wait"
    assert audio.speech_seconds(heard, rate) > 0.5, "the scenario did not go on after the queue"


def test_an_agent_with_nobody_waiting_hears_so(tmp_path: Path) -> None:
    """A caller who hangs up while waiting leaves the queue: the agent finds it empty."""
    server = start_server(tmp_path / "server", routes={"queue": "queue", "agent": "agent"})
    try:
        with phone(tmp_path, "first") as first, phone(tmp_path, "agent") as agent:
            first.dial(server.uri("queue"))
            first.wait_established(timeout=10)
            wait_waiting(server, 1)
            first.hangup()
            first.wait_closed(timeout=10)
            wait_waiting(server, 0)
            agent.dial(server.uri("agent"))
            agent.wait_established(timeout=10)
            time.sleep(3)
            heard, rate = agent.recorded_audio()
            agent.hangup()
            agent.wait_closed(timeout=10)
    finally:
        server.stop()
    assert server.log_records("agent: empty")
    assert audio.speech_seconds(heard, rate) > 0.5, "the agent did not hear 'Nobody is waiting.'"
