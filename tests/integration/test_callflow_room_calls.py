"""Voxology CONFERENCE and QUEUE options with real calls: a local application
(:class:`~tests.integration.test_callflow_calls.FlowApp`) answers each caller
by its number, baresip phones place the calls and send their own tones, and
what they hear (and the keys they receive) is checked.

* CONFERENCE: ``on_enter_alone``, ``$numConferenceParticipants`` in a
  WEBHOOK, ``send_dtmf``/``receive_dtmf`` between participants, and
  ``hold_on_exit`` putting those left on hold (they stop hearing each other).
* QUEUE: ``max_calls`` full running ``on_enter_error_max_calls``, and
  ``poll`` releasing the waiting caller, whose flow goes on.
* QUEUE ``async``: an offer that lets the flow go on (a PAUSE), taken by an
  agent's ``poll_connect``, whose next request tells whom it bridged.
* TRANSFER: the seed's "Async Transfer" example: the caller is bridged to
  the target while its COLLECT waits; the key ends the COLLECT and
  ``event: stop`` hangs the target up; the flow goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.test_callflow_calls import FlowApp, by_type, fields
from tests.integration.webpeer import Request
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.sipp import SippBackground

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"

TONES = {"alice": 500.0, "bob": 900.0, "carol": 1300.0, "dave": 700.0}


@pytest.fixture(scope="module")
def app() -> Iterator[FlowApp]:
    flow_app = FlowApp()
    yield flow_app
    flow_app.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app: FlowApp) -> Iterator[ServerProcess]:
    routes = {
        "voxroom": f'"callflow:{app.url("/room")}"',
        "voxqueue": f'"callflow:{app.url("/queue")}"',
        "voxtransfer": f'"callflow:{app.url("/transfer")}"',
        "voxagent": f'"callflow:{app.url("/agent")}"',
        "voxringing": f'"callflow:{app.url("/ringing")}"',
    }
    proc = start_server(tmp_path_factory.mktemp("rooms"), routes=routes)
    yield proc
    code = proc.stop()
    assert code == 0, f"server exited with {code}\n{proc.log_text()[-5000:]}"


def phone(tmp_path: Path, name: str) -> Baresip:
    wav = audio.make_tone_wav(tmp_path / f"{name}.wav", TONES[name], 90.0, amplitude=0.3)
    return Baresip(user=name, input_wav=wav, max_call_s=90, workdir=tmp_path / name)


def hears(phone: Baresip, who: str, seconds: float = 1.5) -> float:
    """Power of ``who``'s tone in the last ``seconds`` ``phone`` heard."""
    samples, rate = phone.recorded_audio()
    return audio.goertzel_power(samples[-int(seconds * rate) :], rate, TONES[who])


def wait_records(server: ServerProcess, event: str, count: int, timeout: float = 15) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.log_records(event)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {event!r} records: {server.log_records(event)}")


def hooks(app: FlowApp, path: str, event: str) -> list[dict[str, Any]]:
    return [b for _, b in app.calls(path) if b.get("is_webhook") and b.get("event_name") == event]


def wait_hooks(app: FlowApp, path: str, event: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = hooks(app, path, event)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} {event!r} webhooks: {hooks(app, path, event)}")


# -- CONFERENCE ---------------------------------------------------------------------------------


def webhook(event: str, data: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"event_name": event}
    if data is not None:
        params["webhook_data"] = data
    return {"type": "WEBHOOK", "params": params}


COUNT = "({n: $numConferenceParticipants})"
ROOM_PARAMS: dict[str, dict[str, Any]] = {
    # alice passes her keys on and, leaving on *, puts the room on hold.
    "alice": {"send_dtmf": True, "hold_on_exit": True, "exit_on_key": "*"},
    "bob": {"receive_dtmf": True},
    "carol": {},
}


def room_app(request: Request) -> tuple[int, Any]:
    body = fields(request)
    who = body.get("caller_no")
    if body.get("type") == "init_call":
        conference = {
            "type": "CONFERENCE",
            "params": {"name": "team", **ROOM_PARAMS[str(who)]},
            "events": {
                "on_enter_alone": [webhook("alone")],
                "on_enter": [webhook("entered", COUNT)],
            },
        }
        return 200, {"actions": [conference]}
    if body.get("type") == "live_call" and not body.get("is_webhook"):
        # Out of the room: how many are left, then good bye.
        return 200, [webhook("left", COUNT), {"type": "HANGUP"}]
    return 200, {}


def test_conference_counts_passes_keys_and_holds_the_room_when_alice_leaves(
    server: ServerProcess, app: FlowApp, tmp_path: Path
) -> None:
    app.responders["/room"] = room_app
    phones: dict[str, Baresip] = {}
    try:
        for count, name in enumerate(("alice", "bob", "carol"), start=1):
            phones[name] = phone(tmp_path, name).start()
            phones[name].dial(server.uri("voxroom"))
            phones[name].wait_established(timeout=10)
            wait_records(server, "conference joined", count)
        alice, bob, carol = phones["alice"], phones["bob"], phones["carol"]
        entered = wait_hooks(app, "/room", "entered", 3)
        assert [(h["caller_no"], h["webhook_data"]) for h in entered] == [
            ("alice", {"n": "1"}),
            ("bob", {"n": "2"}),
            ("carol", {"n": "3"}),
        ]
        assert [h["caller_no"] for h in hooks(app, "/room", "alone")] == ["alice"]

        time.sleep(2.5)
        together = hears(bob, "carol")
        assert together > 1e-3 and hears(carol, "bob") > 1e-3

        alice.send_dtmf("5")  # send_dtmf: bob (receive_dtmf) gets it, carol does not
        bob.wait_dtmf("5", timeout=10)
        wait_records(server, "conference key passed on", 1)

        alice.send_dtmf("*")  # exit_on_key, and hold_on_exit
        (left,) = wait_records(server, "conference left", 1)
        assert left["outcome"] == "key"
        wait_records(server, "conference on hold", 1)
        (gone,) = wait_hooks(app, "/room", "left", 1)
        assert gone["caller_no"] == "alice" and gone["webhook_data"] == {"n": "2"}
        time.sleep(2.5)
        held = hears(bob, "carol")
        assert held < 0.01 * together, (held, together)  # on hold: not each other
        assert hears(carol, "bob") < 0.01 * together
        assert carol.received_dtmf() == ""
        for name in ("bob", "carol"):
            phones[name].hangup()
            phones[name].wait_closed(timeout=10)
    finally:
        for each in phones.values():
            each.close()


# -- QUEUE --------------------------------------------------------------------------------------

SAY_FULL = {"type": "SAY", "params": {"text": "I'm sorry. The queue is full."}}


def queue_app(request: Request) -> tuple[int, Any]:
    body = fields(request)
    who = body.get("caller_no")
    if body.get("type") == "init_call" and who == "dave":  # the agent: let the caller go
        poll = {"type": "QUEUE", "params": {"name": "low-priority", "event": "poll"},
                "events": {"on_enter_error": [webhook("nobody")]}}  # fmt: skip
        return 200, [poll, webhook("polled"), {"type": "PAUSE", "params": {"seconds": 30}}]
    if body.get("type") == "init_call":
        # seeds/003, QUEUE "Example Response // Advance", with max_calls 1 and webhooks.
        queue = {
            "type": "QUEUE",
            "params": {"name": "low-priority", "event": "offer", "max_calls": 1},
            "events": {
                "on_enter": [webhook("entered")],
                "on_enter_error_max_calls": [webhook("full"), SAY_FULL],
            },
        }
        return 200, {"actions": [queue]}
    if body.get("type") == "live_call" and not body.get("is_webhook"):
        return 200, [webhook("after"), {"type": "HANGUP"}]
    return 200, {}


def test_a_full_queue_refuses_the_second_caller_and_a_poll_releases_the_first(
    server: ServerProcess, app: FlowApp, tmp_path: Path
) -> None:
    app.responders["/queue"] = queue_app
    with (
        phone(tmp_path, "alice") as alice,
        phone(tmp_path, "bob") as bob,
        phone(tmp_path, "dave") as dave,
    ):
        alice.dial(server.uri("voxqueue"))
        alice.wait_established(timeout=10)
        wait_hooks(app, "/queue", "entered", 1)
        wait_records(server, "queued", 1)

        bob.dial(server.uri("voxqueue"))  # max_calls 1: alice waits already
        bob.wait_established(timeout=10)
        (full,) = wait_hooks(app, "/queue", "full", 1)
        assert full["caller_no"] == "bob"
        # The handler's SAY, then the flow asks again: bob's live_call ends his call.
        assert bob.wait_closed(timeout=20) == "Connection reset by peer"
        assert [h["caller_no"] for h in hooks(app, "/queue", "entered")] == ["alice"]
        bob_heard, rate = bob.recorded_audio()
        assert audio.speech_seconds(bob_heard, rate) > 1.0  # "The queue is full."

        dave.dial(server.uri("voxqueue"))  # poll: alice leaves the queue, her flow goes on
        dave.wait_established(timeout=10)
        (polled,) = wait_hooks(app, "/queue", "polled", 1)
        assert polled["caller_no"] == "dave"
        after = wait_hooks(app, "/queue", "after", 2)
        assert sorted(h["caller_no"] for h in after) == ["alice", "bob"]
        assert alice.wait_closed(timeout=20) == "Connection reset by peer"
        assert hooks(app, "/queue", "nobody") == []
        dave.hangup()
        dave.wait_closed(timeout=10)


def agent_app(request: Request) -> tuple[int, Any]:
    body = fields(request)
    kind, who = body.get("type"), body.get("caller_no")
    if kind == "init_call" and who == "alice":  # the caller: in line, and on with her flow
        offer = {"type": "QUEUE", "params": {"name": "support", "async": True},
                 "events": {"on_enter": [webhook("queued")]}}  # fmt: skip
        return 200, [offer, webhook("after offer"), {"type": "PAUSE", "params": {"seconds": 60}}]
    if kind == "init_call":  # the agent
        take = {"type": "QUEUE", "params": {"name": "support", "event": "poll_connect"},
                "events": {"on_enter_error": [webhook("nobody")]}}  # fmt: skip
        return 200, [take]
    if kind == "live_call" and not body.get("is_webhook"):
        return 200, [{"type": "HANGUP"}]
    return 200, {}


def test_an_async_offer_goes_on_until_an_agent_s_poll_connect_takes_it(
    server: ServerProcess, app: FlowApp, tmp_path: Path
) -> None:
    app.responders["/agent"] = agent_app
    with phone(tmp_path, "alice") as alice, phone(tmp_path, "dave") as dave:
        alice.dial(server.uri("voxagent"))
        alice.wait_established(timeout=10)
        wait_hooks(app, "/agent", "queued", 1)
        wait_hooks(app, "/agent", "after offer", 1)  # async: her flow went on

        dave.dial(server.uri("voxagent"))
        dave.wait_established(timeout=10)
        wait_records(server, "queue call taken", 1)
        time.sleep(2.5)
        assert hears(alice, "dave") > 1e-3 and hears(dave, "alice") > 1e-3
        alice.hangup()  # the bridge ends: the agent's flow goes on
        alice.wait_closed(timeout=10)
        assert dave.wait_closed(timeout=20) == "Connection reset by peer"
    (live,) = [b for _, b in app.calls("/agent")
               if b["type"] == "live_call" and not b["is_webhook"]]  # fmt: skip
    assert live["caller_no"] == "dave"
    (alice_init,) = [b for _, b in app.calls("/agent")
                     if b["type"] == "init_call" and b["caller_no"] == "alice"]  # fmt: skip
    assert live["last_queue_poll_connect_call"] == {"id": alice_init["call_id"], "no": "alice"}
    assert hooks(app, "/agent", "nobody") == []


# -- TRANSFER -----------------------------------------------------------------------------------


def async_transfer(target: str) -> list[dict[str, Any]]:
    """seeds/003, TRANSFER, "Example Response // Async Transfer", to ``target``."""
    return [
        {"type": "TRANSFER", "params": {"no": target, "async": True}},
        {
            "type": "COLLECT",
            "params": {"num_digits": 1, "timeout": 3600000},
            "actions": [{"type": "SAY", "params": {"text": "Press any key to end the call."}}],
        },
        {"type": "TRANSFER", "params": {"event": "stop"}},
    ]


def test_the_seed_s_async_transfer_bridges_while_the_flow_collects_then_stops(
    server: ServerProcess, app: FlowApp, tmp_path: Path
) -> None:
    wav = audio.make_tone_wav(tmp_path / "bob.wav", TONES["bob"], 90.0, amplitude=0.3)
    bob = Baresip(user="bob", input_wav=wav, auto_answer=True, max_call_s=60,
                  workdir=tmp_path / "bob")  # fmt: skip
    after = [{"type": "SAY", "params": {"text": "The transfer has ended. Good bye."}},
             {"type": "HANGUP"}]  # fmt: skip
    with bob, phone(tmp_path, "alice") as alice:
        app.responders["/transfer"] = by_type(init_call=async_transfer(bob.sip_uri),
                                              live_call=after)  # fmt: skip
        alice.dial(server.uri("voxtransfer"))
        alice.wait_established(timeout=10)
        bob.wait_established(timeout=15)
        time.sleep(2.5)
        # Bridged while the flow's COLLECT waits: each hears the other.
        bridged = hears(alice, "bob")
        assert bridged > 1e-3 and hears(bob, "alice") > 1e-3
        assert [b["type"] for _, b in app.calls("/transfer")] == ["init_call"]

        alice.send_dtmf("5")  # ends the COLLECT; TRANSFER stop hangs bob up
        assert bob.wait_closed(timeout=15) == "Connection reset by peer"
        live = app.wait_for("/transfer", "live_call")
        assert live["key_presses"][0]["digits"] == "5"
        assert alice.wait_closed(timeout=20) == "Connection reset by peer"
        heard, rate = alice.recorded_audio()
    assert server.log_records("dial stopped")
    # "The transfer has ended. Good bye." after the bridge, without bob.
    assert audio.speech_seconds(heard[-4 * rate :], rate) > 1.0
    bob_after = audio.goertzel_power(heard[-1 * rate :], rate, TONES["bob"])
    assert bob_after < 0.01 * bridged, (bob_after, bridged)


def test_a_transfer_stop_cancels_an_async_transfer_still_ringing(
    server: ServerProcess, app: FlowApp, tmp_path: Path
) -> None:
    # The module's server logs the other tests' dials too: count from here.
    stopped_before = len(server.log_records("dial stopped"))
    ended_before = len(server.log_records("background dial ended"))
    with SippBackground(
        scenario=SIPP_DIR / "uas_ring_forever.xml", workdir=tmp_path / "uas"
    ) as uas:
        answer = [
            {"type": "TRANSFER", "params": {"no": uas.uri, "async": True}},
            {"type": "PAUSE", "params": {"seconds": 2}},
            {"type": "TRANSFER", "params": {"event": "stop"}},
            webhook("stopped"),
            {"type": "HANGUP"},
        ]
        app.responders["/ringing"] = by_type(init_call=answer)
        with phone(tmp_path, "carol") as carol:
            carol.dial(server.uri("voxringing"))
            carol.wait_established(timeout=10)
            wait_hooks(app, "/ringing", "stopped", 1)
            assert carol.wait_closed(timeout=20) == "Connection reset by peer"
        # The target rang until the stop: it got our CANCEL (its scenario requires it).
        uas.wait(timeout=15).assert_ok(calls=1)
    assert len(server.log_records("dial stopped")) == stopped_before + 1
    ended = wait_records(server, "background dial ended", ended_before + 1)[-1]
    assert ended["status"] != "answered", ended
