"""Conference mixing: every participant hears everyone but themselves (N-1).

Theory of operation
-------------------
A :class:`Mixer` keeps one *slot* per participant: a row in a few NumPy
arrays sized for the conference (input frames, flags, limiter gains). Adding
a participant takes the lowest free slot, removing one frees it for reuse;
the arrays grow by doubling only when every slot is taken, so no tick ever
allocates per participant or reallocates the conference. Only the slots up
to the highest one in use are touched per tick.

The owner (the conference) calls :meth:`Mixer.mix` once per 20 ms tick of
the media clock with the decoded frame of each participant that delivered
audio (a missing participant is silence). The whole conference is then a
handful of array operations over an ``(n, 160)`` block, whatever ``n``:

1. contributions ``c[i] = frame[i]`` for participants that talk (not muted,
   not held), 0 otherwise, widened to int32;
2. ``total = sum(c)`` (int32 holds 65535 full-scale participants, so the
   sum cannot wrap);
3. ``out[i] = total - c[i]`` (N-1: each hears all but themselves), zeroed
   for participants that do not hear the conference (deaf, held);
4. audio added on top: broadcast injections (enter/exit beeps,
   announcements) to everyone who hears the conference, personal injections
   to one participant, and hold audio to held participants and to a lone
   participant;
5. the full mix (``total`` plus broadcasts) is row 0 of the same block: it is
   what a conference recording writes;
6. conversion to int16 through a per-row peak limiter (below).

Clipping: sums are exact in int32 and converted to int16 unchanged while
they fit, so small known inputs give exact integer results. A row whose peak
would exceed full scale is scaled down for that tick by exactly the gain
that brings its peak to full scale (attack within the tick: never clipped,
never wrapped); the gain then recovers at ``RELEASE_DB_PER_S`` towards 1,
ramped linearly across each frame so recovery makes no steps. Each listener
and the full mix have their own gain, so one listener's loud mix does not
turn down another's. A final clip only absorbs float rounding. Compared
with hard clipping after the sum (FreeSWITCH's choice), this keeps the
waveform's shape when many people talk at once; the cost is a float pass
over the rows that are over full scale or recovering, and none otherwise.

Muted participants are left out of the sum but still hear; deaf ones are
heard but hear only what is injected for them; held ones neither talk nor
hear the conference and get the hold audio instead. ``alone`` is true while
exactly one participant is not held: that participant hears the hold audio
too (music while waiting for others). Everyone on hold hears the same loop
at the same point (one frame per tick, whatever their number); it starts
from the beginning whenever it becomes audible after nobody heard it.

A conference drives it from the media clock, one call per tick (the leg
method is illustrative)::

    result = mixer.mix({leg: frame for leg, frame in decoded_frames_of_this_tick})
    for leg in legs:
        leg.send_pcm(result[leg])        # each leg encodes with its own codec
    recorder.write(result.full_mix)      # a recording of the conference

with ``mixer.inject(None, enter_beep())`` when someone joins and
``mixer.hold_audio`` set from the conference's ``hold_audio``.

Codecs are the legs' business: the mixer sees 8 kHz int16 PCM only, so
PCMU and PCMA participants (or wideband legs resampled by their leg) mix
together. The mixer does no I/O and knows no clock: it is a pure function of
its inputs and its state, tested tick by tick.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from mediaserver.media.clock import PTIME
from mediaserver.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm, frame_at
from mediaserver.media.tones import tone

__all__ = [
    "FRAME_SAMPLES",
    "ConferenceFull",
    "Injection",
    "MixResult",
    "Mixer",
    "Participant",
    "enter_beep",
    "exit_beep",
]

K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound=np.generic)


FULL_SCALE = 32767
"""Largest positive int16 sample; the limiter aims the peak at this."""

MAX_PARTICIPANTS = 65535
"""Above this an int32 sum of full-scale frames could wrap (65536 * 32768 = 2**31)."""

RELEASE_DB_PER_S = 20.0
"""How fast a limited mix comes back to full level: from -20 dB in one second."""

_RELEASE_PER_TICK = 10.0 ** (RELEASE_DB_PER_S * PTIME / 20.0)
_INITIAL_CAPACITY = 16

Int32Rows = npt.NDArray[np.int32]
Mask = npt.NDArray[np.bool_]


class ConferenceFull(Exception):
    """The conference already has ``max_participants`` participants."""


@dataclass(frozen=True, slots=True)
class Participant(Generic[K]):
    """What the mixer knows about one participant (a snapshot)."""

    key: K
    slot: int
    muted: bool
    deaf: bool
    held: bool


class Injection:
    """Audio mixed into the conference from the next tick on: a beep, an
    announcement, hold music. :attr:`finished` turns true after its last
    frame (never, for a loop, until :meth:`cancel`)."""

    __slots__ = ("_cancelled", "audio", "loop", "position")

    def __init__(self, audio: Pcm, *, loop: bool = False) -> None:
        self.audio = audio
        self.loop = loop and len(audio) > 0
        self.position = 0
        self._cancelled = False

    @property
    def finished(self) -> bool:
        return self._cancelled or (not self.loop and self.position >= len(self.audio))

    def cancel(self) -> None:
        """Stop playing from the next tick on."""
        self._cancelled = True

    def rewind(self) -> None:
        self.position = 0

    def add_next_frame(self, row: npt.NDArray[np.int32]) -> None:
        """Add the next frame (silence-padded at the end) to ``row`` and advance."""
        if not self.finished:
            frame, self.position = frame_at(self.audio, self.position, loop=self.loop)
            row += frame


class MixResult(Mapping[K, Pcm]):
    """One tick's audio: ``result[key]`` is what ``key`` hears, and
    :attr:`full_mix` what a recording of the conference hears.

    The arrays are new each tick, so they may be kept or sent later.
    :attr:`outputs` has one row per slot (``result.outputs[slot]``), for
    owners that encode every participant's frame in one NumPy call.
    """

    __slots__ = ("_rows", "_slots")

    def __init__(self, rows: npt.NDArray[np.int16], slots: Mapping[K, int]) -> None:
        self._rows = rows
        self._slots = slots

    @property
    def full_mix(self) -> Pcm:
        """Everyone who talks plus broadcast injections (what a recording hears)."""
        mix: Pcm = self._rows[0]
        return mix

    @property
    def outputs(self) -> npt.NDArray[np.int16]:
        """What each slot hears, ``(slots, 160)``; free slots hear silence."""
        return self._rows[1:]

    def __getitem__(self, key: K) -> Pcm:
        heard: Pcm = self._rows[self._slots[key] + 1]
        return heard

    def __iter__(self) -> Iterator[K]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)


class Mixer(Generic[K]):
    """N-1 mixing of one conference, one :meth:`mix` call per media tick.

    Participants are known by any hashable key (a call id, a leg). The
    mixer is not thread-safe and does no I/O; see the module docstring.
    """

    def __init__(self, max_participants: int = 256, *, hold_audio: Pcm | None = None) -> None:
        if not 1 <= max_participants <= MAX_PARTICIPANTS:
            raise ValueError(
                f"max_participants must be between 1 and {MAX_PARTICIPANTS}, got {max_participants}"
            )
        self.max_participants = max_participants
        self.ticks = 0
        self.ignored_frames = 0
        """Frames handed to :meth:`mix` for keys not in the conference (dropped)."""
        self._slots: dict[K, int] = {}
        self._keys: list[K | None] = []
        self._free: list[int] = []
        self._high = 0
        self._capacity = 0
        self._inputs = np.zeros((0, FRAME_SAMPLES), np.int16)
        self._wide = np.zeros((1, FRAME_SAMPLES), np.int32)
        self._gain = np.ones(1, np.float64)
        self._active = np.zeros(0, np.bool_)
        self._muted = np.zeros(0, np.bool_)
        self._deaf = np.zeros(0, np.bool_)
        self._held = np.zeros(0, np.bool_)
        self._talks = np.zeros(0, np.bool_)
        self._hears = np.zeros(0, np.bool_)
        self._hears_hold = np.zeros(0, np.bool_)
        # Rows (below the highest slot in use) whose input is dropped / whose output is zeroed.
        self._silent_rows = np.zeros(0, np.intp)
        self._unhearing_rows = np.zeros(0, np.intp)
        self._injections: list[tuple[int | None, Injection]] = []
        self._hold: Injection | None = None
        self._hold_was_heard = False
        # Gain ramp across one frame: sample k gets start + (end - start) * (k + 1) / 160.
        self._ramp = np.arange(1, FRAME_SAMPLES + 1, dtype=np.float64) / FRAME_SAMPLES
        self._grow(min(_INITIAL_CAPACITY, max_participants))
        self.hold_audio = hold_audio

    # ------------------------------------------------------------ getters

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def __iter__(self) -> Iterator[K]:
        return iter(self._slots)

    @property
    def alone(self) -> bool:
        """Exactly one participant is not held: they have nobody to hear."""
        return int(np.count_nonzero(self._active & ~self._held)) == 1

    @property
    def hold_audio(self) -> Pcm | None:
        """Looped to held participants and to a lone participant; None for silence."""
        return None if self._hold is None else self._hold.audio

    @hold_audio.setter
    def hold_audio(self, audio: Pcm | None) -> None:
        self._hold = None if audio is None or len(audio) == 0 else Injection(audio, loop=True)
        self._hold_was_heard = False

    def slot(self, key: K) -> int:
        """The row of ``key`` in :attr:`MixResult.outputs`; KeyError if absent."""
        return self._slots[key]

    def participant(self, key: K) -> Participant[K]:
        slot = self._slots[key]
        return Participant(
            key, slot, bool(self._muted[slot]), bool(self._deaf[slot]), bool(self._held[slot])
        )

    # ------------------------------------------------------------ mutators

    def add(self, key: K, *, muted: bool = False, deaf: bool = False, held: bool = False) -> int:
        """Add a participant and return its slot. ``ValueError`` if ``key`` is
        already in, :class:`ConferenceFull` at ``max_participants``."""
        if key in self._slots:
            raise ValueError(f"participant {key!r} is already in the conference")
        if len(self._slots) >= self.max_participants:
            raise ConferenceFull(f"the conference is full ({self.max_participants} participants)")
        if self._free:
            slot = heapq.heappop(self._free)
        else:
            slot = self._high
            if slot >= self._capacity:
                self._grow(min(2 * self._capacity, self.max_participants))
            self._high += 1
        self._keys[slot] = key
        self._active[slot] = True
        # Copy on write: a MixResult handed out earlier keeps the mapping it was made with.
        self._slots = {**self._slots, key: slot}
        self._muted[slot] = muted
        self._deaf[slot] = deaf
        self._held[slot] = held
        self._gain[slot + 1] = 1.0
        self._inputs[slot] = 0
        self._refresh()
        return slot

    def remove(self, key: K) -> None:
        """Remove a participant (no-op if absent) and cancel what was injected for it."""
        slot = self._slots.get(key)
        if slot is None:
            return
        slots = dict(self._slots)
        del slots[key]
        self._slots = slots
        self._keys[slot] = None
        self._active[slot] = False
        self._muted[slot] = self._deaf[slot] = self._held[slot] = False
        self._gain[slot + 1] = 1.0
        for target, injection in self._injections:
            if target == slot:
                injection.cancel()
        self._injections = [(t, i) for t, i in self._injections if not i.finished]
        heapq.heappush(self._free, slot)
        # Keep the rows touched per tick to the highest slot in use.
        while self._high and self._keys[self._high - 1] is None:
            self._high -= 1
        self._free = [s for s in self._free if s < self._high]
        heapq.heapify(self._free)
        self._refresh()

    def set_muted(self, key: K, muted: bool) -> None:
        """A muted participant is left out of the mix but still hears it."""
        self._muted[self._slots[key]] = muted
        self._refresh()

    def set_deaf(self, key: K, deaf: bool) -> None:
        """A deaf participant is heard but hears only its own injections."""
        self._deaf[self._slots[key]] = deaf
        self._refresh()

    def set_held(self, key: K, held: bool) -> None:
        """A held participant neither talks nor hears the conference: it hears
        the hold audio (and its own injections)."""
        self._held[self._slots[key]] = held
        self._refresh()

    def inject(self, key: K | None, audio: Pcm, *, loop: bool = False) -> Injection:
        """Mix ``audio`` into what ``key`` hears, or into what everyone hears
        (and the recording) when ``key`` is None, from the next tick on.
        Several injections play at once, summed. KeyError for an unknown key."""
        slot = None if key is None else self._slots[key]
        injection = Injection(audio, loop=loop)
        if not injection.finished:
            self._injections.append((slot, injection))
        return injection

    # ------------------------------------------------------------ the tick

    def mix(self, inputs: Mapping[K, Pcm]) -> MixResult[K]:
        """Mix one tick: ``inputs`` holds the 160-sample frame of each
        participant that delivered audio (shorter frames are padded with
        silence, longer ones cut); frames of unknown keys are ignored."""
        n = self._high
        frames = self._inputs
        for key, pcm in inputs.items():
            slot = self._slots.get(key)
            if slot is None:
                self.ignored_frames += 1
                continue
            if len(pcm) == FRAME_SAMPLES:
                frames[slot] = pcm
            else:
                take = min(len(pcm), FRAME_SAMPLES)
                frames[slot, :take] = pcm[:take]
        wide = self._wide[: n + 1]
        total, each = wide[0], wide[1:]
        np.copyto(each, frames[:n])
        # Muted and held participants are few: zero their rows rather than mask them all.
        if self._silent_rows.size:
            each[self._silent_rows] = 0
        each.sum(axis=0, dtype=np.int32, out=total)
        np.subtract(total, each, out=each)
        if self._unhearing_rows.size:
            each[self._unhearing_rows] = 0
        self._add_injections(total, each)
        rows = self._limit(wide)
        frames[:n] = 0
        self.ticks += 1
        return MixResult(rows, self._slots)

    def _add_injections(self, total: Int32Rows, each: Int32Rows) -> None:
        if self._injections:
            broadcast = np.zeros(FRAME_SAMPLES, np.int32)
            any_broadcast = False
            for slot, injection in self._injections:
                if slot is None:
                    injection.add_next_frame(broadcast)
                    any_broadcast = True
                else:
                    injection.add_next_frame(each[slot])
            if any_broadcast:
                total += broadcast
                np.add(each, broadcast, out=each, where=self._hears[: len(each), None])
            self._injections = [(s, i) for s, i in self._injections if not i.finished]
        hold_listeners = self._hears_hold[: len(each)]
        heard = self._hold is not None and bool(hold_listeners.any())
        if heard and self._hold is not None:
            if not self._hold_was_heard:
                # Whoever starts hearing the hold audio after a gap hears it from the start.
                self._hold.rewind()
            music = np.zeros(FRAME_SAMPLES, np.int32)
            self._hold.add_next_frame(music)
            np.add(each, music, out=each, where=hold_listeners[:, None])
        self._hold_was_heard = heard

    def _limit(self, wide: Int32Rows) -> npt.NDArray[np.int16]:
        """int32 rows to int16 through each row's peak limiter (module docstring)."""
        gain = self._gain[: len(wide)]
        high = wide.max(axis=1)
        low = wide.min(axis=1)
        hot = (high > FULL_SCALE) | (low < -FULL_SCALE - 1) | (gain < 1.0)
        if not hot.any():
            return wide.astype(np.int16)
        every = bool(hot.all())
        index = slice(None) if every else np.flatnonzero(hot)
        # The gain that brings this tick's peak exactly to full scale, on either side.
        fit = np.minimum(
            FULL_SCALE / np.maximum(high[index], 1), (FULL_SCALE + 1) / np.maximum(-low[index], 1)
        )
        before = gain[index]
        after = np.minimum(np.minimum(fit, 1.0), before * _RELEASE_PER_TICK)
        gain[index] = after
        # Attack at once for the whole frame; release ramps from the old gain to the new one.
        rising = after > before
        if rising.any():
            start = np.where(rising, before, after)
            envelope = (start[:, None] + (after - start)[:, None] * self._ramp).astype(np.float32)
        else:
            envelope = after[:, None].astype(np.float32)
        # float32 holds sums of up to 512 full-scale frames exactly, and is 1e-7 off beyond.
        limited = np.multiply(wide[index], envelope, dtype=np.float32)
        np.rint(limited, out=limited)
        # The gains above keep every sample in range: this only guards against a wrap.
        np.clip(limited, -FULL_SCALE - 1, FULL_SCALE, out=limited)
        if every:
            rows: npt.NDArray[np.int16] = limited.astype(np.int16)
            return rows
        rows = wide.astype(np.int16)
        rows[index] = limited
        return rows

    # ------------------------------------------------------------ internals

    def _refresh(self) -> None:
        """Recompute the per-slot masks the tick uses (on changes, never per tick)."""
        active, held = self._active, self._held
        np.logical_and(active, ~(self._muted | held), out=self._talks)
        np.logical_and(active, ~(self._deaf | held), out=self._hears)
        waiting = active & ~held
        lone = waiting & ~self._deaf if np.count_nonzero(waiting) == 1 else False
        np.logical_or(active & held, lone, out=self._hears_hold)
        self._silent_rows = np.flatnonzero(~self._talks[: self._high])
        self._unhearing_rows = np.flatnonzero(~self._hears[: self._high])

    def _grow(self, capacity: int) -> None:
        old = self._capacity
        self._inputs = _grown(self._inputs, capacity)
        self._wide = _grown(self._wide, capacity + 1)
        self._gain = _grown(self._gain, capacity + 1, fill=1.0)
        self._active = _grown(self._active, capacity)
        self._muted = _grown(self._muted, capacity)
        self._deaf = _grown(self._deaf, capacity)
        self._held = _grown(self._held, capacity)
        self._talks = _grown(self._talks, capacity)
        self._hears = _grown(self._hears, capacity)
        self._hears_hold = _grown(self._hears_hold, capacity)
        self._keys.extend([None] * (capacity - old))
        self._capacity = capacity


def _grown(array: npt.NDArray[S], rows: int, fill: float = 0) -> npt.NDArray[S]:
    """A copy of ``array`` with ``rows`` rows, the new ones set to ``fill``."""
    bigger = np.full((rows, *array.shape[1:]), fill, array.dtype)
    bigger[: len(array)] = array
    return bigger


# ---------------------------------------------------------------- beeps

BEEP_LEVEL_DBFS = -16.0
"""Quieter than the -13 dBFS record beep: it plays over people talking."""


@functools.cache
def enter_beep() -> Pcm:
    """Two rising 100 ms notes (660 then 880 Hz): someone joined. Read-only, shared."""
    return _read_only(_two_notes(660.0, 880.0))


@functools.cache
def exit_beep() -> Pcm:
    """Two falling 100 ms notes (880 then 660 Hz): someone left. Read-only, shared."""
    return _read_only(_two_notes(880.0, 660.0))


def _two_notes(first: float, second: float) -> Pcm:
    gap = np.zeros(round(0.03 * SAMPLE_RATE), np.int16)
    return np.concatenate(
        [tone([first], 0.1, BEEP_LEVEL_DBFS), gap, tone([second], 0.1, BEEP_LEVEL_DBFS)]
    )


def _read_only(pcm: Pcm) -> Pcm:
    pcm.flags.writeable = False
    return pcm
