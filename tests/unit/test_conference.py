"""Conference rooms with fake legs: who hears whom, the roles, the codecs, the recording."""

from __future__ import annotations

import numpy as np
import pytest
from media_fakes import ManualClock

from mediaserver.media.conference import Conference, ConferenceFull, Member
from mediaserver.media.g711 import PCMA, PCMU, Codec
from mediaserver.media.leg import SILENT_FRAME
from mediaserver.media.mixer import enter_beep
from mediaserver.media.pcm import Pcm


class FakeLeg:
    """A participant that always says ``level`` and keeps what it is sent."""

    def __init__(self, name: str, level: int, codec: Codec = PCMU) -> None:
        self.name = name
        self.level = level
        self.codec = codec
        self.mixed_by: object | None = None
        self.listeners: set[object] = set()
        self.payloads: list[bytes] = []
        self.stopped_playback = 0
        self.reads = 0

    def __repr__(self) -> str:
        return self.name

    def listen(self, owner: object) -> None:
        self.listeners.add(owner)

    def unlisten(self, owner: object) -> None:
        self.listeners.discard(owner)

    def received_frame(self) -> Pcm:
        self.reads += 1
        return np.full(160, self.level, np.int16)

    def send_payload(self, payload: bytes) -> None:
        self.payloads.append(payload)

    def stop_playback(self) -> None:
        self.stopped_playback += 1

    def last_heard(self) -> Pcm:
        return self.codec.decode(self.payloads[-1])


class Recorded:
    def __init__(self) -> None:
        self.frames: list[Pcm] = []

    def write(self, left: Pcm, right: Pcm | None = None) -> None:
        self.frames.append(left.copy())


async def room_with(*legs: FakeLeg, **kwargs: object) -> tuple[Conference, ManualClock]:
    clock = ManualClock()
    room = Conference("sales", clock)
    for leg in legs:
        room.join(Member(leg, leg.name, beep_on_enter=False, beep_on_exit=False, **kwargs))  # type: ignore[arg-type]
    return room, clock


async def test_each_hears_the_others_encoded_with_its_own_codec() -> None:
    a, b, c = FakeLeg("a", 1000), FakeLeg("b", 2000), FakeLeg("c", 4000, PCMA)
    room, clock = await room_with(a, b, c)
    assert all(leg.mixed_by is room and room in leg.listeners for leg in (a, b, c))
    assert all(leg.stopped_playback == 1 for leg in (a, b, c))
    clock.step()
    for leg, others in ((a, 6000), (b, 5000), (c, 3000)):
        assert len(leg.payloads) == 1 and len(leg.payloads[0]) == 160
        assert leg.last_heard() == pytest.approx(np.full(160, others), rel=0.03)
    assert a.payloads[0] == PCMU.encode(np.full(160, 6000, np.int16))
    assert c.payloads[0] == PCMA.encode(np.full(160, 3000, np.int16))
    assert [leg.reads for leg in (a, b, c)] == [1, 1, 1]


async def test_the_mix_is_made_once_per_tick_whoever_asks_first() -> None:
    a, b = FakeLeg("a", 1000), FakeLeg("b", 2000)
    room, clock = await room_with(a, b)
    clock.ticks += 1
    heard = room.heard_by(a)  # a recording of a's call runs before the room
    assert np.shares_memory(room.heard_by(a), heard) and heard[0] == 2000
    room.on_tick(0.0)
    assert a.reads == b.reads == 1
    assert room.heard_by(FakeLeg("stranger", 0)) is SILENT_FRAME


async def test_muted_participants_are_not_heard_but_hear() -> None:
    a, b = FakeLeg("a", 1000), FakeLeg("b", 2000)
    room, clock = await room_with(a, b)
    room.set_muted(a, True)
    clock.step()
    assert not b.last_heard().any()
    assert a.last_heard()[0] == pytest.approx(2000, rel=0.03)


async def test_waiting_for_the_moderator_then_released() -> None:
    music = np.full(800, 300, np.int16)
    clock = ManualClock()
    room = Conference("board", clock)
    a, b, m = FakeLeg("a", 1000), FakeLeg("b", 2000), FakeLeg("m", 4000)
    for leg in (a, b):
        room.join(
            Member(leg, leg.name, wait_for_moderator=True, beep_on_enter=False), hold_audio=music
        )
    assert room.members[a].waiting and room.members[b].waiting and not room.moderator_present
    clock.step()
    for leg in (a, b):  # held: hold music only, nobody heard
        assert leg.last_heard()[0] == pytest.approx(300, abs=8)
    room.join(Member(m, "m", moderator=True, beep_on_enter=False))
    assert not room.members[a].waiting and not room.members[b].waiting
    clock.step()
    assert a.last_heard()[0] == pytest.approx(6000, rel=0.03)
    assert m.last_heard()[0] == pytest.approx(3000, rel=0.03)


async def test_a_participant_alone_hears_the_hold_audio() -> None:
    clock = ManualClock()
    room = Conference("solo", clock)
    a = FakeLeg("a", 1000)
    room.join(Member(a, "a", beep_on_enter=False), hold_audio=np.full(160, 500, np.int16))
    clock.step()
    assert a.last_heard()[0] == pytest.approx(500, abs=8)


async def test_beeps_on_enter_and_exit_reach_the_others() -> None:
    clock = ManualClock()
    room = Conference("beeps", clock)
    a, b = FakeLeg("a", 0), FakeLeg("b", 0)
    room.join(Member(a, "a", beep_on_enter=False, beep_on_exit=False))
    clock.step()
    room.join(Member(b, "b"))  # beeps on enter and exit
    clock.step()
    assert np.array_equal(a.last_heard(), PCMU.decode(PCMU.encode(enter_beep()[:160])))
    for _ in range(20):
        clock.step()
    assert not a.last_heard().any()
    room.leave(b, "key")
    clock.step()
    assert a.last_heard().any()  # the exit beep


async def test_leaving_resolves_the_outcome_and_the_last_one_empties_the_room() -> None:
    emptied: list[Conference] = []
    clock = ManualClock()
    room = Conference("x", clock, on_empty=emptied.append)
    a, b = FakeLeg("a", 1), FakeLeg("b", 2)
    ma = room.join(Member(a, "a"))
    mb = room.join(Member(b, "b"))
    assert room in clock.members()
    room.leave(a, "key")
    assert ma.outcome.result() == "key" and a.mixed_by is None and room not in a.listeners
    assert not mb.outcome.done() and not emptied
    room.leave(a, "again")  # no-op
    room.leave(b, "hangup")
    assert mb.outcome.result() == "hangup"
    assert emptied == [room] and room not in clock.members()


async def test_end_on_exit_ends_the_room_for_everyone() -> None:
    clock = ManualClock()
    room = Conference("x", clock)
    host, a, b = FakeLeg("host", 1), FakeLeg("a", 2), FakeLeg("b", 3)
    room.join(Member(host, "host", moderator=True, end_on_exit=True))
    ma, mb = room.join(Member(a, "a")), room.join(Member(b, "b"))
    room.leave(host, "key")
    assert ma.outcome.result() == mb.outcome.result() == "ended"
    assert len(room) == 0 and a.mixed_by is None and b.mixed_by is None


async def test_a_full_room_refuses_more() -> None:
    a, b, c = FakeLeg("a", 1), FakeLeg("b", 2), FakeLeg("c", 3)
    room, _ = await room_with(a, b)
    with pytest.raises(ConferenceFull, match="full"):
        room.join(Member(c, "c"), max_participants=2)
    assert c.mixed_by is None and not c.listeners
    room.join(Member(c, "c"), max_participants=3)
    with pytest.raises(ValueError, match="already"):
        room.join(Member(c, "c"))


async def test_the_recording_gets_the_full_mix_until_the_room_empties() -> None:
    a, b = FakeLeg("a", 1000), FakeLeg("b", 2000)
    room, clock = await room_with(a, b)
    recorded = Recorded()
    done: list[bool] = []
    assert room.record(recorded, "rec00001", lambda: done.append(True))
    assert not room.record(Recorded(), "rec00002", lambda: None)
    clock.step()
    clock.step()
    assert [frame[0] for frame in recorded.frames] == [3000, 3000]
    assert room.snapshot()["recording"] == "rec00001"
    room.leave(a, "key")
    assert not done
    room.leave(b, "key")
    assert done == [True] and not room.recording


async def test_snapshot() -> None:
    a = FakeLeg("a", 1)
    room, _ = await room_with(a, muted=True)
    snap = room.snapshot()
    assert snap["name"] == "sales" and snap["participants"][0]["muted"] is True


async def test_the_snapshot_says_who_is_talking_now() -> None:
    loud, quiet, muted = FakeLeg("loud", 3000), FakeLeg("quiet", 3), FakeLeg("muted", 3000)
    clock = ManualClock()
    room = Conference("talk", clock)
    for leg in (loud, quiet, muted):
        room.join(Member(leg, leg.name, beep_on_enter=False, muted=leg is muted))
    assert [p["talking"] for p in room.snapshot()["participants"]] == [False] * 3  # no tick yet
    clock.step()
    talking = {p["call_id"]: p["talking"] for p in room.snapshot()["participants"]}
    assert talking == {"loud": True, "quiet": False, "muted": False}


async def test_a_held_member_hears_the_hold_audio_and_is_not_heard() -> None:
    clock = ManualClock()
    room = Conference("hold", clock)
    a, b, c = FakeLeg("a", 1000), FakeLeg("b", 2000), FakeLeg("c", 4000)
    music = np.full(160, 300, np.int16)
    for leg in (a, b, c):
        room.join(Member(leg, leg.name, beep_on_enter=False), hold_audio=music)
    room.set_held(a, True)
    clock.step()
    assert a.last_heard()[0] == pytest.approx(300, abs=8)
    assert b.last_heard()[0] == pytest.approx(4000, rel=0.03)
    room.set_held(a, False)
    clock.step()
    assert b.last_heard()[0] == pytest.approx(5000, rel=0.03)
    assert room.snapshot()["participants"][0]["held"] is False


async def test_the_floor_goes_to_the_loudest_member_who_may_be_heard() -> None:
    a, b = FakeLeg("a", 1000), FakeLeg("b", 8000)
    room, clock = await room_with(a, b)
    floors: list[object] = []
    room.on_floor = floors.append
    for _ in range(20):
        clock.step()
    assert floors == [b]
    room.set_muted(b, True)  # muted: no longer in the running
    for _ in range(20):
        clock.step()
    assert floors == [b, a]


async def test_a_recording_stops_while_the_room_goes_on() -> None:
    a, b = FakeLeg("a", 1000), FakeLeg("b", 2000)
    room, clock = await room_with(a, b)
    recorded = Recorded()
    done: list[bool] = []
    assert room.record(recorded, "rec1", lambda: done.append(True))
    clock.step()
    assert room.stop_recording() and done == [True] and not room.recording
    clock.step()
    assert len(recorded.frames) == 1 and len(room) == 2
    assert not room.stop_recording()


class RecordedTwo:
    def __init__(self) -> None:
        self.frames: list[tuple[Pcm, Pcm | None]] = []

    def write(self, left: Pcm, right: Pcm | None = None) -> None:
        self.frames.append((left.copy(), None if right is None else right.copy()))


async def test_a_two_channel_recording_has_one_member_apart_from_the_rest() -> None:
    a, b, c = FakeLeg("a", 1000), FakeLeg("b", 2000), FakeLeg("c", 300)
    room, clock = await room_with(a, b, c)
    recorded = RecordedTwo()
    assert room.record(recorded, "rec2", lambda: None, apart=a)
    clock.step()
    left, right = recorded.frames[-1]
    assert left[0] == 1000 and right is not None and right[0] == 2300
    room.set_muted(a, True)  # not heard: nothing of it on its channel
    clock.step()
    left, right = recorded.frames[-1]
    assert not left.any() and right is not None and right[0] == 2300


async def test_hold_on_exit_holds_everyone_left_until_a_moderator_joins() -> None:
    music = np.full(800, 300, np.int16)
    clock = ManualClock()
    room = Conference("hold", clock)
    a, b, c, m = (FakeLeg(name, level) for name, level in (("a", 1000), ("b", 2000),
                                                         ("c", 4000), ("m", 500)))  # fmt: skip
    room.join(Member(a, "a", hold_on_exit=True, beep_on_enter=False, beep_on_exit=False),
              hold_audio=music)  # fmt: skip
    for leg in (b, c):
        room.join(Member(leg, leg.name, beep_on_enter=False, beep_on_exit=False))
    clock.step()
    assert b.last_heard()[0] == pytest.approx(5000, rel=0.03)
    room.leave(a, "key")
    assert room.on_hold and room.members[b].waiting and room.members[c].waiting
    assert room.would_wait(False, False) and not room.would_wait(True, False)
    clock.step()
    for leg in (b, c):  # on hold: the hold audio, not each other
        assert leg.last_heard()[0] == pytest.approx(300, abs=8)
    room.join(Member(m, "m", moderator=True, beep_on_enter=False))
    assert not room.on_hold and not room.members[b].waiting
    clock.step()
    assert b.last_heard()[0] == pytest.approx(4500, rel=0.03)


async def test_keys_go_from_senders_to_receivers_only() -> None:
    a, b, c = FakeLeg("a", 1), FakeLeg("b", 2), FakeLeg("c", 3)
    clock = ManualClock()
    room = Conference("keys", clock)
    room.join(Member(a, "a", send_dtmf=True, receive_dtmf=True))
    room.join(Member(b, "b", receive_dtmf=True))
    room.join(Member(c, "c", send_dtmf=True))
    assert room.dtmf_receivers(a) == [b]  # not a itself, not c (does not receive)
    assert room.dtmf_receivers(b) == []  # b does not send
    assert room.dtmf_receivers(c) == [a, b]
