"""A conference room: its members, their roles, and the mix sent on every tick.

Theory of operation
-------------------
A :class:`Conference` is one room, known by name, shared by every call that
joins it. Its membership rules are plain bookkeeping (no I/O, testable with
fake legs); its audio is one media-clock member:

Each tick, :meth:`Conference.on_tick` takes every member leg's decoded frame
(:meth:`RtpLeg.received_frame`, popped once per tick whoever asks first),
runs the :class:`~mediaserver.media.mixer.Mixer` (N-1 sums as NumPy over all
members at once), encodes the mixer's output rows with one G.711 table
lookup per codec (members on PCMU and PCMA share a room), and sends each
member its 160 bytes. Member legs send nothing of their own meanwhile
(``leg.mixed_by``), and a recording of one member's call hears what the room
sent it through :meth:`Conference.heard_by`. The mix is computed once per
tick, lazily, so it does not matter whether the room or a recording runs
first. A recording of the room writes the full mix (everyone who talks, plus
beeps), or two channels: one member's voice apart, and the rest of the mix.

Roles, per member:

* ``muted``: heard by nobody (still hears); toggled with :meth:`set_muted`.
* held (:meth:`set_held`, for the API): hears the hold audio, is not heard.
* ``moderator``: releases members who wait for a moderator.
* ``wait_for_moderator``: until a moderator is in, the member is *held*:
  neither heard nor hearing, it gets the hold audio.
* ``end_on_exit``: when this member leaves, every other member's outcome is
  ``ended`` and the room empties.
* ``hold_on_exit``: when this member leaves, the room goes *on hold*: every
  member left waits (as for a moderator) until a moderator joins.
* ``send_dtmf`` / ``receive_dtmf``: keys a sender presses are passed on to
  every receiver (:meth:`Conference.dtmf_receivers`; the call sends them).
* ``beep_on_enter`` / ``beep_on_exit``: a short two-note beep tells the
  others.

While ``on_floor`` is set, the room also tracks who has the floor (the
loudest member who may be heard, once loudest for 300 ms:
:class:`~mediaserver.media.floor.FloorTracker`) and tells it who takes it.

The hold audio (music or a tone) plays, looped, to held members and to a
member alone in the room. The room's hold audio is set by the first member
who brings one. A member's :attr:`Member.outcome` resolves with how its stay
ended; the room removes itself (``on_empty``) when the last member leaves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mediaserver.log import get_logger
from mediaserver.media.clock import MediaClock
from mediaserver.media.floor import FLOOR_DBFS, FloorTracker
from mediaserver.media.g711 import Codec
from mediaserver.media.leg import SILENT_FRAME
from mediaserver.media.mixer import ConferenceFull, Mixer, MixResult, enter_beep, exit_beep
from mediaserver.media.pcm import Pcm
from mediaserver.media.recording import frame_dbfs

__all__ = ["ROOM_CAPACITY", "Conference", "ConferenceFull", "ConferenceLeg", "Member"]

ROOM_CAPACITY = 1000
"""Most members one room can hold, whatever ``max_participants`` says."""

FRAME_BYTES = 160  # one 20 ms G.711 frame

log = get_logger("media")


class ConferenceLeg(Protocol):
    """What a room needs of a member's leg (:class:`~mediaserver.media.leg.RtpLeg`)."""

    codec: Codec
    mixed_by: Any

    def __hash__(self) -> int: ...

    def listen(self, owner: object) -> None: ...

    def unlisten(self, owner: object) -> None: ...

    def received_frame(self) -> Pcm: ...

    def send_payload(self, payload: bytes) -> None: ...

    def send_frame(self, frame: Pcm) -> None: ...

    def stop_playback(self) -> None: ...


class MixWriter(Protocol):
    """Where the room's full mix is recorded (a :class:`~mediaserver.media.recorder.Recorder`)."""

    def write(self, left: Pcm, right: Pcm | None = None) -> None: ...


@dataclass(eq=False)
class Member:
    """One member of a room."""

    leg: ConferenceLeg
    call_id: str
    moderator: bool = False
    wait_for_moderator: bool = False
    end_on_exit: bool = False
    hold_on_exit: bool = False
    send_dtmf: bool = False
    receive_dtmf: bool = False
    beep_on_enter: bool = True
    beep_on_exit: bool = True
    muted: bool = False
    waiting: bool = False
    held: bool = False  # put on hold by the API: hears the hold audio, is not heard
    joined_at: float = field(default_factory=time.time)
    outcome: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Conference:
    """One room (module docstring)."""

    def __init__(
        self,
        name: str,
        clock: MediaClock,
        *,
        on_empty: Callable[[Conference], None] | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.on_empty = on_empty
        self.created_at = time.time()
        self.mixer: Mixer[ConferenceLeg] = Mixer(max_participants=ROOM_CAPACITY)
        self.members: dict[ConferenceLeg, Member] = {}
        self.recording_id: str | None = None
        self._recorder: MixWriter | None = None
        self._on_recording_done: Callable[[], object] | None = None
        self._groups: list[tuple[Codec, list[int], list[ConferenceLeg]]] = []
        self._mixed: MixResult[ConferenceLeg] | None = None
        self._mixed_tick = -1
        self.on_floor: Callable[[ConferenceLeg], None] | None = None
        """Told who takes the floor (:mod:`~mediaserver.media.floor`); None: not tracked."""
        self._floor: FloorTracker[ConferenceLeg] = FloorTracker()
        self._frames: dict[ConferenceLeg, Pcm] = {}
        self._recorded_apart: ConferenceLeg | None = None
        self.on_hold = False
        """Put on hold by a ``hold_on_exit`` member leaving, until a moderator joins."""

    # ------------------------------------------------------------ getters

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, leg: object) -> bool:
        return leg in self.members

    @property
    def moderator_present(self) -> bool:
        return any(member.moderator for member in self.members.values())

    def would_wait(self, moderator: bool, wait_for_moderator: bool) -> bool:
        """Whether a member joining now with these roles would wait on hold."""
        if moderator:
            return False
        return self.on_hold or (wait_for_moderator and not self.moderator_present)

    def dtmf_receivers(self, leg: ConferenceLeg) -> list[ConferenceLeg]:
        """The members a key pressed by ``leg`` goes to: none unless ``leg`` sends
        keys, else every other member who receives them."""
        sender = self.members.get(leg)
        if sender is None or not sender.send_dtmf:
            return []
        return [other for other, m in self.members.items() if other is not leg and m.receive_dtmf]

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def snapshot(self) -> dict[str, Any]:
        """The room as the API shows it."""
        return {
            "name": self.name,
            "created_at": int(self.created_at * 1000),
            "recording": self.recording_id,
            "participants": [
                {
                    "call_id": m.call_id,
                    "muted": m.muted,
                    "moderator": m.moderator,
                    "waiting": m.waiting,
                    "held": m.held,
                    "joined_at": int(m.joined_at * 1000),
                    "talking": self._talking(m),
                }
                for m in self.members.values()
            ],
        }

    def _talking(self, member: Member) -> bool:
        """Whether ``member`` is heard saying something in the last tick's frame: measured
        only when the room is read (the API), never in the tick."""
        if member.muted or member.held or member.waiting:
            return False
        frame = self._frames.get(member.leg)
        return frame is not None and frame_dbfs(frame) >= FLOOR_DBFS

    # ------------------------------------------------------------ membership

    def join(
        self, member: Member, *, max_participants: int | None = None, hold_audio: Pcm | None = None
    ) -> Member:
        """Add ``member``; :class:`ConferenceFull` when the room already has
        ``max_participants`` members (or :data:`ROOM_CAPACITY`)."""
        limit = min(max_participants or ROOM_CAPACITY, ROOM_CAPACITY)
        if len(self.members) >= limit:
            raise ConferenceFull(f"conference {self.name!r} is full ({limit} participants)")
        leg = member.leg
        if leg in self.members:
            raise ValueError(f"this call is already in conference {self.name!r}")
        if hold_audio is not None and self.mixer.hold_audio is None:
            self.mixer.hold_audio = hold_audio
        member.waiting = self.would_wait(member.moderator, member.wait_for_moderator)
        leg.stop_playback()
        leg.listen(self)
        leg.mixed_by = self
        self.mixer.add(leg, muted=member.muted, held=member.waiting)
        self.members[leg] = member
        if member.moderator:
            self.on_hold = False
            self._release_waiting()
        if member.beep_on_enter:
            self.mixer.inject(None, enter_beep())
        self._regroup()
        self.clock.add(self)
        return member

    def leave(self, leg: ConferenceLeg, outcome: str) -> None:
        """Remove ``leg``'s member (no-op if absent); its outcome becomes ``outcome``."""
        member = self.members.pop(leg, None)
        if member is None:
            return
        self._floor.forget(leg)
        self.mixer.remove(leg)
        if leg.mixed_by is self:
            leg.mixed_by = None
        leg.unlisten(self)
        if not member.outcome.done():
            member.outcome.set_result(outcome)
        if member.beep_on_exit and self.members:
            self.mixer.inject(None, exit_beep())
        self._regroup()
        if member.end_on_exit:
            self.end("ended")
        elif not self.members:
            self._emptied()
        elif member.hold_on_exit:
            self._hold_everyone()

    def end(self, outcome: str = "ended") -> None:
        """Everyone leaves with ``outcome``."""
        for leg in list(self.members):
            member = self.members.pop(leg)
            self.mixer.remove(leg)
            if leg.mixed_by is self:
                leg.mixed_by = None
            leg.unlisten(self)
            if not member.outcome.done():
                member.outcome.set_result(outcome)
        self._regroup()
        self._emptied()

    def set_muted(self, leg: ConferenceLeg, muted: bool) -> None:
        member = self.members[leg]
        member.muted = muted
        self.mixer.set_muted(leg, muted)

    def set_held(self, leg: ConferenceLeg, held: bool) -> None:
        """Hold (the hold audio, neither hearing nor heard) or unhold a member."""
        member = self.members[leg]
        member.held = held
        self.mixer.set_held(leg, held or member.waiting)

    def record(
        self,
        recorder: MixWriter,
        recording_id: str,
        on_done: Callable[[], object],
        *,
        apart: ConferenceLeg | None = None,
    ) -> bool:
        """Record the full mix from the next tick until the room empties, when
        ``on_done`` is called; False if the room is recorded already. With ``apart``,
        two channels: what that member says, and the rest of the mix."""
        if self._recorder is not None:
            return False
        self._recorder = recorder
        self._recorded_apart = apart
        self.recording_id = recording_id
        self._on_recording_done = on_done
        return True

    def stop_recording(self) -> bool:
        """Stop recording the room now (the room goes on); False if it was not recorded."""
        done, self._on_recording_done = self._on_recording_done, None
        recorded = self._recorder is not None
        self._recorder = None
        self.recording_id = None
        if done is not None:
            done()
        return recorded

    def _hold_everyone(self) -> None:
        """Voxology ``hold_on_exit``: "all other participants will be put on hold",
        waiting as for a moderator (a ``start_on_join`` participant) to join."""
        self.on_hold = True
        for leg, member in self.members.items():
            member.waiting = True
            self.mixer.set_held(leg, True)
        log.info("conference on hold", conference=self.name, participants=len(self.members))

    def _release_waiting(self) -> None:
        for leg, member in self.members.items():
            if member.waiting:
                member.waiting = False
                self.mixer.set_held(leg, member.held)

    def _emptied(self) -> None:
        self.clock.remove(self)
        self._mixed = None
        done, self._on_recording_done = self._on_recording_done, None
        self._recorder = None
        if done is not None:
            done()
        if self.on_empty is not None:
            self.on_empty(self)

    def _regroup(self) -> None:
        """Members by codec with their mixer rows, for one encode per codec per tick."""
        groups: dict[object, tuple[Codec, list[int], list[ConferenceLeg]]] = {}
        for leg in self.members:
            # a stateful codec's members are encoded apart: the key is the leg itself
            key: object = leg if leg.codec.stateful else leg.codec
            _, slots, legs = groups.setdefault(key, (leg.codec, [], []))
            slots.append(self.mixer.slot(leg))
            legs.append(leg)
        self._groups = list(groups.values())

    # ------------------------------------------------------------ the tick

    def _mix(self) -> MixResult[ConferenceLeg] | None:
        tick = self.clock.ticks
        if self._mixed_tick != tick:
            self._mixed_tick = tick
            if not self.members:
                self._mixed = None
            else:
                frames = {leg: leg.received_frame() for leg in self.members}
                self._frames = frames
                self._mixed = self.mixer.mix(frames)
                if self.on_floor is not None:
                    self._track_floor(frames)
        return self._mixed

    def _track_floor(self, frames: dict[ConferenceLeg, Pcm]) -> None:
        levels = {
            leg: frame_dbfs(pcm)
            for leg, pcm in frames.items()
            if not (m := self.members[leg]).muted and not m.held and not m.waiting
        }
        holder = self._floor.update(levels)
        if holder is not None and self.on_floor is not None:
            try:
                self.on_floor(holder)
            except Exception:  # the clock would drop the room: only the news is lost
                log.exception("floor listener failed", conference=self.name)

    def heard_by(self, leg: ConferenceLeg) -> Pcm:
        """What ``leg`` hears from the room this tick."""
        mixed = self._mix()
        if mixed is None or leg not in self.members:
            return SILENT_FRAME
        return mixed[leg]

    def on_tick(self, now: float) -> None:
        mixed = self._mix()
        if mixed is None:
            return
        outputs = mixed.outputs
        for codec, slots, legs in self._groups:
            if codec.stateful:  # G.722, Opus: each member's own encoder (one per group)
                legs[0].send_frame(outputs[slots[0]])
                continue
            # One table lookup encodes every member on this codec.
            data = codec.encode(outputs[slots])
            for index, leg in enumerate(legs):
                leg.send_payload(data[index * FRAME_BYTES : (index + 1) * FRAME_BYTES])
        if self._recorder is not None:
            if self._recorded_apart is None:
                self._recorder.write(mixed.full_mix)
            else:
                self._recorder.write(*self._split(mixed.full_mix, self._recorded_apart))

    def _split(self, full_mix: Pcm, apart: ConferenceLeg) -> tuple[Pcm, Pcm]:
        """``apart``'s voice (if it may be heard) and the rest of the mix."""
        member = self.members.get(apart)
        frame = self._frames.get(apart)
        if member is None or frame is None or member.muted or member.held or member.waiting:
            return SILENT_FRAME, full_mix
        voice = np.zeros(FRAME_BYTES, np.int16)
        voice[: min(len(frame), FRAME_BYTES)] = frame[:FRAME_BYTES]
        rest = np.clip(full_mix.astype(np.int32) - voice, -32768, 32767).astype(np.int16)
        return voice, rest
