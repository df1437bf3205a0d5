"""Call Control conferences, queues and recordings through the official Telnyx SDK.

Real peers: baresip callers parked by a ``call-control:`` route, answered and
commanded with the SDK; a ``WebPeer`` is the application's webhook URL (and
serves the audio files the commands name). What each caller heard is
analysed: in a conference every caller sends its own tone and must hear the
others' and not its own, nor a muted or held one's.
"""

from __future__ import annotations

import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import telnyx

from tests.integration.callcontrol_events import event_of, verified, wait_event
from tests.integration.conftest import ServerProcess, start_server
from tests.integration.webpeer import WebPeer
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

TONES = {"a": 500.0, "b": 900.0, "c": 1300.0}
LOUDNESS = {"a": 0.4, "b": 0.3, "c": 0.2}  # A has the floor, then B while A is muted
PLAYED_HZ = 2000.0
SETTLE_S = 3.0  # how long each state lasts before what the callers heard is read
WINDOW_S = 1.5  # the last seconds of each state that are analysed

# The payload fields of each event in seed 002 (the CallControl webhook schemas);
# ``media_name`` is left out: it is there only when a media_name started the audio.
_CALL = {"call_control_id", "call_leg_id", "call_session_id", "client_state", "connection_id"}
SEED_FIELDS: dict[str, set[str]] = {
    "conference.created": _CALL | {"conference_id", "occurred_at"},
    "conference.ended": _CALL | {"conference_id", "occurred_at", "reason"},
    "conference.participant.joined": _CALL | {"conference_id"},
    "conference.participant.left": _CALL | {"conference_id"},
    "conference.participant.playback.started": _CALL
    | {"conference_id", "creator_call_session_id", "media_url", "occurred_at"},
    "conference.participant.playback.ended": _CALL
    | {"conference_id", "creator_call_session_id", "media_url", "occurred_at"},
    "conference.participant.speak.started": _CALL
    | {"conference_id", "creator_call_session_id", "occurred_at"},
    "conference.participant.speak.ended": _CALL
    | {"conference_id", "creator_call_session_id", "occurred_at"},
    "conference.playback.started": {
        "conference_id",
        "connection_id",
        "creator_call_session_id",
        "media_url",
        "occurred_at",
    },
    "conference.playback.ended": {
        "conference_id",
        "connection_id",
        "creator_call_session_id",
        "media_url",
        "occurred_at",
    },
    "conference.speak.started": {
        "conference_id",
        "connection_id",
        "creator_call_session_id",
        "occurred_at",
    },
    "conference.speak.ended": {
        "conference_id",
        "connection_id",
        "creator_call_session_id",
        "occurred_at",
    },
    "conference.recording.saved": {
        "call_control_id",
        "channels",
        "conference_id",
        "connection_id",
        "format",
        "public_recording_urls",
        "recording_ended_at",
        "recording_id",
        "recording_started_at",
        "recording_urls",
    },
    "conference.floor.changed": _CALL | {"conference_id", "occurred_at"},
    "call.enqueued": _CALL | {"current_position", "queue"},
    "call.left.queue": _CALL | {"queue", "reason"},
}


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebPeer]:
    with WebPeer() as web:
        yield web


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hooks: WebPeer) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("ccconf")
    routes = {"cc": f'"call-control:{hooks.url("/hooks")}"', "agent": "agent"}
    proc = start_server(tmp, routes=routes)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=server.api_key, base_url=f"{server.api_url}/telnyx/v2")


def events(web: WebPeer) -> list[dict[str, Any]]:
    return [event_of(r) for r in web.received("/hooks")]


def park_and_answer(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, phone: Baresip
) -> str:
    """Dial the call-control route from ``phone``, answer it with the SDK: its id."""
    phone.dial(server.uri("cc"))
    initiated = wait_event(hooks, "call.initiated", **{"from": phone.user})
    ccid: str = initiated["payload"]["call_control_id"]
    client.calls.actions.answer(ccid)
    phone.wait_established(timeout=10)
    return ccid


def heard(
    phones: dict[str, Baresip], tones: dict[str, float] = TONES
) -> dict[str, dict[str, float]]:
    """What each phone heard over the last WINDOW_S seconds: the power of each tone."""
    out: dict[str, dict[str, float]] = {}
    for name, phone in phones.items():
        samples, rate = phone.recorded_audio()
        window = samples[-int(WINDOW_S * rate) :]
        out[name] = {other: audio.goertzel_power(window, rate, hz) for other, hz in tones.items()}
        out[name]["played"] = audio.goertzel_power(window, rate, PLAYED_HZ)
    return out


def check(
    powers: dict[str, dict[str, float]], listener: str, hears: str, silent: list[str]
) -> None:
    """``listener`` hears each of ``hears`` and none of ``silent`` (1000 times weaker)."""
    got = powers[listener]
    loud = [got[name] for name in hears]
    for name in hears:
        assert got[name] > 1e-3, f"{listener} did not hear {name}: {got}"
    for name in silent:
        assert got[name] < 1e-3 * min(loud), f"{listener} heard {name}: {got}"


def settle() -> None:
    time.sleep(SETTLE_S)


def tone_wav(path: Path, hz: float, seconds: float) -> bytes:
    return audio.make_tone_wav(path, hz, seconds, amplitude=0.3).read_bytes()


def test_three_callers_in_a_conference_muted_held_played_to_and_recorded(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    hooks.answer(
        "/played.wav",
        200,
        tone_wav(tmp_path / "played.wav", PLAYED_HZ, 1.5),
        content_type="audio/wav",
    )
    phones: dict[str, Baresip] = {}
    ids: dict[str, str] = {}
    try:
        for name, hz in TONES.items():
            wav = audio.make_tone_wav(tmp_path / f"{name}.wav", hz, 90.0, amplitude=LOUDNESS[name])
            phone = Baresip(user=name, input_wav=wav, max_call_s=120, workdir=tmp_path / name)
            phones[name] = phone.start()
            ids[name] = park_and_answer(server, hooks, client, phone)
        created = client.conferences.create(
            call_control_id=ids["a"], name="standup", client_state="YS1zdGF0ZQ=="
        )
        assert created.data is not None
        conf = created.data.id
        assert created.data.name == "standup" and created.data.status == "in_progress"
        wait_event(hooks, "conference.created", conference_id=conf)
        for name in ("b", "c"):
            client.conferences.actions.join(conf, call_control_id=ids[name])
        for name in ids:
            wait_event(
                hooks,
                "conference.participant.joined",
                conference_id=conf,
                call_control_id=ids[name],
            )
        client.conferences.actions.record_start(conf, format="wav", channels="dual")

        # Everyone hears the two others, never itself.
        settle()
        powers = heard(phones)
        check(powers, "a", hears="bc", silent=["a"])
        check(powers, "b", hears="ac", silent=["b"])
        check(powers, "c", hears="ab", silent=["c"])

        # Muted: A is heard by nobody, and still hears.
        client.conferences.actions.mute(conf, call_control_ids=[ids["a"]])
        settle()
        powers = heard(phones)
        check(powers, "a", hears="bc", silent=["a"])
        check(powers, "b", hears="c", silent=["a", "b"])
        check(powers, "c", hears="b", silent=["a", "c"])
        participants = client.conferences.list_participants(conf)
        muted = {p.call_control_id: p.muted for p in participants.data}
        assert muted == {ids["a"]: True, ids["b"]: False, ids["c"]: False}

        # Unmuted, and B on hold: B hears the hold audio, nothing of the room, and is
        # not heard.
        client.conferences.actions.unmute(conf, call_control_ids=[ids["a"]])
        client.conferences.actions.hold(
            conf, call_control_ids=[ids["b"]], audio_url=hooks.url("/played.wav")
        )
        settle()
        powers = heard(phones)
        check(powers, "a", hears="c", silent=["a", "b"])
        check(powers, "c", hears="a", silent=["b", "c"])
        assert max(powers["b"][n] for n in TONES) < 1e-5, powers["b"]
        assert powers["b"]["played"] > 1e-3, powers["b"]
        assert max(powers[n]["played"] for n in "ac") < 1e-5, powers
        held = client.conferences.list_participants(conf, filter={"on_hold": True})
        assert [p.call_control_id for p in held.data] == [ids["b"]]

        # Unheld: B is back.
        client.conferences.actions.unhold(conf, call_control_ids=[ids["b"]])
        settle()
        powers = heard(phones)
        check(powers, "b", hears="ac", silent=["b"])
        check(powers, "a", hears="bc", silent=["a"])

        # Audio played to the whole room is heard by everyone.
        client.conferences.actions.play(conf, audio_url=hooks.url("/played.wav"))
        wait_event(hooks, "conference.playback.started", conference_id=conf)
        time.sleep(1.0)
        powers = heard(phones)
        wait_event(hooks, "conference.playback.ended", conference_id=conf)
        for name in TONES:
            assert powers[name]["played"] > 1e-3, (name, powers[name])
        time.sleep(WINDOW_S)  # its end out of the next window

        # Audio played to C alone: C hears it, A does not.
        client.conferences.actions.play(
            conf, audio_url=hooks.url("/played.wav"), call_control_ids=[ids["c"]]
        )
        wait_event(hooks, "conference.participant.playback.started", call_control_id=ids["c"])
        time.sleep(1.0)
        powers = heard(phones)
        wait_event(hooks, "conference.participant.playback.ended", call_control_id=ids["c"])
        assert powers["c"]["played"] > 1e-3, powers["c"]
        assert powers["a"]["played"] < 1e-3 * powers["c"]["played"], powers["a"]

        # Everyone muted (an empty list is everyone), then speech to the room.
        client.conferences.actions.mute(conf)
        client.conferences.actions.speak(
            conf, payload="The meeting will end in five minutes.", voice="female", language="en-US"
        )
        wait_event(hooks, "conference.speak.started", conference_id=conf, timeout=20)
        wait_event(hooks, "conference.speak.ended", conference_id=conf, timeout=20)
        samples, rate = phones["b"].recorded_audio()
        assert audio.speech_seconds(samples[-3 * rate :], rate) > 1.0

        # Speech to C alone: C hears it, A does not.
        time.sleep(1.0)
        client.conferences.actions.speak(
            conf, payload="Only you can hear this.", voice="male", call_control_ids=[ids["c"]]
        )
        wait_event(hooks, "conference.participant.speak.started", call_control_id=ids["c"])
        wait_event(hooks, "conference.participant.speak.ended", call_control_id=ids["c"])
        told, rate = phones["c"].recorded_audio()
        untold, _ = phones["a"].recorded_audio()
        assert audio.speech_seconds(told[-2 * rate :], rate) > 0.5
        assert audio.speech_seconds(untold[-2 * rate :], rate) < 0.1

        client.conferences.actions.record_stop(conf)
        saved = wait_event(hooks, "conference.recording.saved", conference_id=conf)["payload"]

        # C leaves: its call goes on, parked; A and B hang up: the conference ends.
        client.conferences.actions.leave(conf, call_control_id=ids["c"])
        wait_event(hooks, "conference.participant.left", call_control_id=ids["c"])
        status = client.calls.retrieve_status(ids["c"])
        assert status.data is not None and status.data.is_alive
        client.calls.actions.hangup(ids["c"])
        for name in ("a", "b"):
            phones[name].hangup()
        ended = wait_event(hooks, "conference.ended", conference_id=conf)
        assert ended["payload"]["reason"] == "all_left"
        assert ended["payload"]["client_state"] == "YS1zdGF0ZQ=="
    finally:
        for phone in phones.values():
            phone.close()

    retrieved = client.conferences.retrieve(conf)
    assert retrieved.data is not None and retrieved.data.status == "completed"
    assert retrieved.data.end_reason == "all_left"

    # The recording holds the three callers, and /recordings shows it.
    recording = client.recordings.retrieve(saved["recording_id"])
    assert recording.data is not None
    assert recording.data.source == "conference"
    assert recording.data.conference_id == conf
    assert recording.data.download_urls is not None and recording.data.download_urls.wav
    assert recording.data.duration_millis is not None and recording.data.duration_millis > 10000
    listed = client.recordings.list(filter={"conference_id": conf})
    assert [r.id for r in listed.data] == [saved["recording_id"]]
    assert recording.data.channels == "dual"
    # Dual: the creator A on channel A, the rest of the room on channel B.
    (channel_a, channel_b), rate = read_stereo(
        server.data_dir / "data" / "recordings" / f"{saved['recording_id']}.wav"
    )
    start, end = int(0.5 * rate), int(2.5 * rate)
    on_a = {n: audio.goertzel_power(channel_a[start:end], rate, hz) for n, hz in TONES.items()}
    on_b = {n: audio.goertzel_power(channel_b[start:end], rate, hz) for n, hz in TONES.items()}
    assert on_a["a"] > 1e-3 and max(on_a["b"], on_a["c"]) < 1e-3 * on_a["a"], on_a
    assert min(on_b["b"], on_b["c"]) > 1e-3 and on_b["a"] < 1e-3 * on_b["c"], on_b

    seen = {e["event_type"] for e in events(hooks) if e["event_type"].startswith("conference.")}
    assert seen >= {
        "conference.created",
        "conference.participant.joined",
        "conference.participant.left",
        "conference.playback.started",
        "conference.playback.ended",
        "conference.participant.playback.started",
        "conference.participant.playback.ended",
        "conference.speak.started",
        "conference.speak.ended",
        "conference.participant.speak.started",
        "conference.participant.speak.ended",
        "conference.recording.saved",
        "conference.ended",
        "conference.floor.changed",
    }
    floors = [
        e["payload"]["call_control_id"]
        for e in events(hooks)
        if e["event_type"] == "conference.floor.changed" and e["payload"]["conference_id"] == conf
    ]
    assert floors[:2] == [ids["a"], ids["b"]]
    assert_seed_fields(hooks, server)


def read_stereo(path: Path) -> tuple[tuple[npt.NDArray[np.float64], ...], int]:
    """The two channels of a 16-bit stereo WAV, as floats in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getsampwidth() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        rate = wav.getframerate()
    both = frames.reshape(-1, 2).astype(np.float64) / 32768.0
    return (both[:, 0], both[:, 1]), rate


def assert_seed_fields(hooks: WebPeer, server: ServerProcess) -> None:
    """Every event the receiver got is signed (the SDK's ``webhooks.unwrap`` with the
    server's public key takes it) and has its payload fields of the seed."""
    for request in hooks.received("/hooks"):
        event = verified(request, server)
        wanted = SEED_FIELDS.get(event["event_type"])
        if wanted is not None:
            missing = wanted - set(event["payload"])
            assert not missing, f"{event['event_type']} lacks {sorted(missing)}"


def test_a_call_enqueued_listed_and_taken_out_again(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    with Baresip(user="waiting", max_call_s=60, workdir=tmp_path / "w") as phone:
        ccid = park_and_answer(server, hooks, client, phone)
        client.calls.actions.enqueue(ccid, queue_name="support", max_wait_time_secs=120)
        enqueued = wait_event(hooks, "call.enqueued", call_control_id=ccid)["payload"]
        assert (enqueued["queue"], enqueued["current_position"]) == ("support", 1)

        queue = client.queues.retrieve("support")
        assert queue.data is not None
        assert (queue.data.name, queue.data.current_size) == ("support", 1)
        calls = client.queues.calls.list("support")
        assert [(c.call_control_id, c.queue_position) for c in calls.data] == [(ccid, 1)]
        assert calls.data[0].queue_id == queue.data.id
        one = client.queues.calls.retrieve(ccid, queue_name="support")
        assert one.data is not None and one.data.from_ == "waiting"

        with pytest.raises(telnyx.UnprocessableEntityError) as busy:
            client.conferences.create(call_control_id=ccid, name="while-queued")
        assert busy.value.body["errors"][0]["source"]["pointer"] == "/call_control_id"  # type: ignore[index]

        client.calls.actions.leave_queue(ccid)
        left = wait_event(hooks, "call.left.queue", call_control_id=ccid)["payload"]
        assert (left["queue"], left["reason"]) == ("support", "leave")
        with pytest.raises(telnyx.NotFoundError):
            client.queues.retrieve("support")

        # Waiting longer than max_wait_time_secs takes the call out too.
        client.calls.actions.enqueue(ccid, queue_name="sales", max_wait_time_secs=1)
        timed_out = wait_event(hooks, "call.left.queue", call_control_id=ccid, queue="sales")
        assert timed_out["payload"]["reason"] == "timeout"
        with pytest.raises(telnyx.UnprocessableEntityError):
            client.calls.actions.leave_queue(ccid, command_id="out")  # in no queue now

        # The refused command's id was not used up: the same command applies later.
        client.calls.actions.enqueue(ccid, queue_name="billing")
        wait_event(hooks, "call.enqueued", call_control_id=ccid, queue="billing")
        client.calls.actions.leave_queue(ccid, command_id="out")
        out = wait_event(hooks, "call.left.queue", call_control_id=ccid, queue="billing")
        assert out["payload"]["reason"] == "leave"

        # A hang-up while waiting: reason hangup.
        client.calls.actions.enqueue(ccid, queue_name="returns")
        wait_event(hooks, "call.enqueued", call_control_id=ccid, queue="returns")
        phone.hangup()
        gone = wait_event(hooks, "call.left.queue", call_control_id=ccid, queue="returns")
        assert gone["payload"]["reason"] == "hangup"
    assert_seed_fields(hooks, server)


def test_a_scenario_agent_takes_a_controlled_call_from_the_queue(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    """Controlled calls wait in the queues of queue@v1: the example agent scenario
    (bridge-next from "support") takes one, and the two hear each other."""
    caller_wav = audio.make_tone_wav(tmp_path / "caller.wav", 700.0, 40.0, amplitude=0.3)
    agent_wav = audio.make_tone_wav(tmp_path / "agent.wav", 1100.0, 40.0, amplitude=0.3)
    with (
        Baresip(
            user="queued", input_wav=caller_wav, max_call_s=60, workdir=tmp_path / "q"
        ) as caller,
        Baresip(user="agent", input_wav=agent_wav, max_call_s=60, workdir=tmp_path / "a") as agent,
    ):
        ccid = park_and_answer(server, hooks, client, caller)
        client.calls.actions.enqueue(ccid, queue_name="support")
        wait_event(hooks, "call.enqueued", call_control_id=ccid, queue="support")
        agent.dial(server.uri("agent"))
        agent.wait_established(timeout=10)
        taken = wait_event(hooks, "call.left.queue", call_control_id=ccid, queue="support")
        assert taken["payload"]["reason"] == "bridged"
        settle()
        caller_heard, rate = caller.recorded_audio()
        agent_heard, _ = agent.recorded_audio()
        window = int(WINDOW_S * rate)
        assert audio.goertzel_power(caller_heard[-window:], rate, 1100.0) > 1e-3
        assert audio.goertzel_power(agent_heard[-window:], rate, 700.0) > 1e-3
        client.calls.actions.hangup(ccid)
        wait_event(hooks, "call.hangup", call_control_id=ccid)
        agent.hangup()


def test_bridge_with_a_queue_takes_its_first_call(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    caller_wav = audio.make_tone_wav(tmp_path / "caller.wav", 700.0, 40.0, amplitude=0.3)
    agent_wav = audio.make_tone_wav(tmp_path / "agent.wav", 1100.0, 40.0, amplitude=0.3)
    with (
        Baresip(
            user="inline", input_wav=caller_wav, max_call_s=60, workdir=tmp_path / "c"
        ) as caller,
        Baresip(user="taker", input_wav=agent_wav, max_call_s=60, workdir=tmp_path / "t") as taker,
    ):
        waiting = park_and_answer(server, hooks, client, caller)
        client.calls.actions.enqueue(waiting, queue_name="helpline")
        wait_event(hooks, "call.enqueued", call_control_id=waiting, queue="helpline")
        agent = park_and_answer(server, hooks, client, taker)
        # The SDK wants a call id with the queue: the queue's first call is taken instead.
        client.calls.actions.bridge(agent, call_control_id_to_bridge_with=agent, queue="helpline")
        left = wait_event(hooks, "call.left.queue", call_control_id=waiting, queue="helpline")
        assert left["payload"]["reason"] == "bridged"
        wait_event(hooks, "call.bridged", call_control_id=waiting)
        settle()
        caller_heard, rate = caller.recorded_audio()
        agent_heard, _ = taker.recorded_audio()
        window = int(WINDOW_S * rate)
        assert audio.goertzel_power(caller_heard[-window:], rate, 1100.0) > 1e-3
        assert audio.goertzel_power(agent_heard[-window:], rate, 700.0) > 1e-3
        kinds = [
            e["event_type"] for e in events(hooks) if e["payload"].get("call_control_id") == waiting
        ]
        assert kinds.index("call.left.queue") < kinds.index("call.bridged")
        with pytest.raises(telnyx.UnprocessableEntityError) as empty:
            client.calls.actions.bridge(
                agent, call_control_id_to_bridge_with=agent, queue="helpline"
            )
        assert empty.value.body["errors"][0]["source"]["pointer"] == "/queue"  # type: ignore[index]
        client.calls.actions.hangup(agent)
        wait_event(hooks, "call.hangup", call_control_id=waiting)


def test_a_call_recording_is_listed_in_recordings(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    wav = audio.make_tone_wav(tmp_path / "talk.wav", 700.0, 30.0, amplitude=0.3)
    with Baresip(user="recorded", input_wav=wav, max_call_s=60, workdir=tmp_path / "r") as phone:
        ccid = park_and_answer(server, hooks, client, phone)
        client.calls.actions.start_recording(ccid, format="wav", channels="single")
        time.sleep(2.0)
        client.calls.actions.stop_recording(ccid)
        saved = wait_event(hooks, "call.recording.saved", call_control_id=ccid)["payload"]
        client.calls.actions.hangup(ccid)
    rid = saved["recording_id"]
    found = {r.id: r for r in client.recordings.list(page_size=250).data}
    assert rid in found
    record = found[rid]
    assert record.source == "call" and record.status == "completed"
    assert record.call_control_id == ccid
    assert record.call_session_id is not None and record.call_leg_id is not None
    assert record.channels == "single"
    assert record.duration_millis is not None and 1500 <= record.duration_millis <= 4000
    assert record.download_urls is not None and record.download_urls.wav is not None
    assert record.download_urls.wav.endswith(f"/api/recordings/{rid}/file")
    assert record.recording_started_at is not None and record.recording_ended_at is not None

    later = client.recordings.list(filter={"created_at": {"gte": "2999-01-01T00:00:00Z"}})
    assert later.data == []
    with pytest.raises(telnyx.UnprocessableEntityError) as bad:
        client.recordings.list(filter={"created_at": {"lte": "yesterday"}})
    error = bad.value.body["errors"][0]  # type: ignore[index]
    assert error["source"]["parameter"] == "filter[created_at][lte]"
    with pytest.raises(telnyx.NotFoundError):
        client.recordings.retrieve("nosuchrec")


def test_waiting_until_started_dialled_participant_and_end_on_exit(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    tones = {"x": 500.0, "y": 900.0, "z": 1300.0}
    wavs = {
        name: audio.make_tone_wav(tmp_path / f"{name}.wav", hz, 60.0, amplitude=0.3)
        for name, hz in tones.items()
    }
    phones: dict[str, Baresip] = {}
    try:
        for name in tones:
            phone = Baresip(
                user=name, input_wav=wavs[name], max_call_s=90, workdir=tmp_path / name,
                auto_answer=name == "z",
            )  # fmt: skip
            phones[name] = phone.start()
        x = park_and_answer(server, hooks, client, phones["x"])
        created = client.conferences.create(
            call_control_id=x, name="board", start_conference_on_create=False
        ).data
        assert created is not None and created.status == "init"
        conf = created.id
        (waiting,) = client.conferences.list_participants(conf).data
        assert waiting.call_control_id == x and waiting.on_hold

        # Y starts the conference: X is let in.
        y = park_and_answer(server, hooks, client, phones["y"])
        client.conferences.actions.join(
            conf, call_control_id=y, start_conference_on_enter=True, end_conference_on_exit=True
        )
        started = client.conferences.retrieve(conf).data
        assert started is not None and started.status == "in_progress"
        assert not any(p.on_hold for p in client.conferences.list_participants(conf).data)

        # Z is dialled into the room (the SDK has no method for it: plain HTTP).
        answer = httpx.post(
            f"{server.api_url}/telnyx/v2/conferences/{conf}/actions/dial_participant",
            headers={"Authorization": f"Bearer {server.api_key}"},
            json={"call_control_id": x, "to": phones["z"].sip_uri, "from": "board"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        z = answer.json()["data"]["call_control_id"]
        wait_event(hooks, "conference.participant.joined", call_control_id=z)
        settle()
        powers = heard(phones, tones)
        check(powers, "x", hears="yz", silent=["x"])
        check(powers, "z", hears="xy", silent=["z"])

        # Y leaves: the conference ends, and the others are hung up.
        client.conferences.actions.leave(conf, call_control_id=y)
        ended = wait_event(hooks, "conference.ended", conference_id=conf)
        assert ended["payload"]["reason"] == "host_left"
        for ccid in (x, z):
            wait_event(hooks, "call.hangup", call_control_id=ccid)
        status = client.calls.retrieve_status(y)
        assert status.data is not None and status.data.is_alive
        client.calls.actions.hangup(y)
    finally:
        for phone in phones.values():
            phone.close()
    over = client.conferences.retrieve(conf).data
    assert over is not None and over.end_reason == "host_left"
    assert over.ended_by is not None and over.ended_by.call_control_id == y
    assert_seed_fields(hooks, server)


def test_unknown_conference_is_404_and_bad_bodies_are_422_naming_the_field(
    server: ServerProcess, hooks: WebPeer, client: telnyx.Telnyx, tmp_path: Path
) -> None:
    with pytest.raises(telnyx.NotFoundError) as missing:
        client.conferences.retrieve("no-such-conference")
    assert missing.value.body["errors"][0]["code"] == "10005"  # type: ignore[index]
    with pytest.raises(telnyx.NotFoundError):
        client.conferences.actions.mute("no-such-conference")
    with pytest.raises(telnyx.NotFoundError):
        client.conferences.list_participants("no-such-conference")

    def pointer(call: Callable[[], object]) -> str:
        with pytest.raises(telnyx.UnprocessableEntityError) as bad:
            call()
        found: str = bad.value.body["errors"][0]["source"]["pointer"]  # type: ignore[index]
        return found

    assert pointer(lambda: client.conferences.create(call_control_id="nosuchcall", name="x")) == (
        "/call_control_id"
    )
    with Baresip(user="lonely", max_call_s=60, workdir=tmp_path / "l") as phone:
        ccid = park_and_answer(server, hooks, client, phone)
        assert pointer(lambda: client.conferences.create(call_control_id=ccid, name="")) == "/name"
        conf = client.conferences.create(call_control_id=ccid, name="errors").data
        assert conf is not None
        assert (
            pointer(lambda: client.conferences.actions.record_start(conf.id, format="mp3"))
            == "/format"
        )
        assert (
            pointer(lambda: client.conferences.actions.mute(conf.id, call_control_ids=["stranger"]))
            == "/call_control_ids/0"
        )
        assert (
            pointer(
                lambda: client.conferences.actions.join(
                    conf.id, call_control_id=ccid, supervisor_role="whisper"
                )
            )
            == "/supervisor_role"
        )
        assert (
            pointer(lambda: client.conferences.actions.play(conf.id, audio_url="/etc/passwd"))
            == "/audio_url"
        )
        with pytest.raises(telnyx.UnprocessableEntityError) as busy:
            client.calls.actions.enqueue(ccid, queue_name="while-in-conference")
        assert busy.value.body["errors"][0]["code"] == "90015"  # type: ignore[index]
        # By name while it is live, as by id.
        by_name = client.conferences.retrieve("errors").data
        assert by_name is not None and by_name.id == conf.id
        named = client.conferences.list(filter={"name": "errors"}).data
        assert [c.id for c in named] == [conf.id]
        client.calls.actions.hangup(ccid)
        wait_event(hooks, "conference.ended", conference_id=conf.id)
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.conferences.actions.mute(conf.id)  # ended
