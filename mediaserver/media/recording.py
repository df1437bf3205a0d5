"""Recording a call's media on the clock: both sides of a call, or a message.

Theory of operation: a :class:`CallRecording` is a media-clock member that,
each tick, writes one frame to a :class:`~mediaserver.media.recorder.Recorder`:

* ``left``: what the caller's leg received (its decoded frame,
  :meth:`RtpLeg.received_frame`), so the recording *listens* to the leg;
* ``right``: what the caller heard from the server that tick
  (:meth:`RtpLeg.sent_frame`): prompts, a conference's mix, or the bridged
  party's audio during ``dial@v1``. A bridged leg is relayed undecoded, so
  the recording also listens to whichever leg feeds the caller, following it
  when the bridge starts or ends.

``mono`` recordings mix both sides into one channel; ``dual`` keeps the
caller on the left and the other party on the right.

The rate (:func:`recording_rate`) is chosen when the recording starts: 16 kHz
when every leg it records negotiated a wideband codec (G.722, Opus: the caller,
and the leg bridged to it if any), so the band above 4 kHz is kept; 8 kHz
otherwise, the G.711 path unchanged. At 16 kHz, each side is the leg's 16 kHz
frame (:meth:`RtpLeg.received_wide_frame`), or its 8 kHz frame interpolated
when there is none (a prompt, a conference's mix, a G.711 leg bridged later). Frames reach the file
within a second (the recorder's buffer), so a crash loses at most that.

A :class:`MessageRecording` (voicemail) records the caller only and ends the
message by itself: after ``silence_timeout`` seconds of silence (the energy
of the caller's decoded frames, :class:`SilenceDetector`), or at
``max_length``. Silence is held back rather than written: it reaches the file
only when the caller speaks again, so the message keeps its pauses but not
the trailing silence that ended it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

import numpy as np

from mediaserver.log import get_logger
from mediaserver.media.clock import PTIME, MediaClock
from mediaserver.media.pcm import SAMPLE_RATE, WIDE_RATE, Pcm
from mediaserver.media.recorder import Recorder, RecordingInfo
from mediaserver.media.resample import Interpolator

log = get_logger("media")

SILENCE_DBFS = -45.0
"""A frame whose RMS level is below this (0 dBFS: a full-scale square wave) is
silence: well above G.711's idle noise and comfort noise (-60 dBFS and below),
well below quiet speech (-35 to -25 dBFS)."""


class RecordedLeg(Protocol):
    """What a recording needs of a leg (:class:`~mediaserver.media.leg.RtpLeg`)."""

    @property
    def fed_by(self) -> RecordedLeg | None: ...

    @property
    def wideband(self) -> bool: ...

    def listen(self, owner: object) -> None: ...

    def unlisten(self, owner: object) -> None: ...

    def received_frame(self) -> Pcm: ...

    def sent_frame(self) -> Pcm: ...

    def received_wide_frame(self) -> Pcm | None: ...

    def sent_wide_frame(self) -> Pcm | None: ...


def recording_rate(leg: RecordedLeg, *, other_side: bool = True) -> int:
    """16 kHz when every leg recorded is wideband: ``leg`` and, recording the other
    side, the leg relayed to it (a bridge); else 8 kHz."""
    feeder = leg.fed_by if other_side else None
    legs = (leg,) if feeder is None or feeder is leg else (leg, feeder)
    return WIDE_RATE if all(each.wideband for each in legs) else SAMPLE_RATE


class _Widened:
    """One side of a 16 kHz recording: the 16 kHz frame when the leg has one, else
    the 8 kHz frame interpolated (its filter keeping its history across ticks)."""

    def __init__(self) -> None:
        self._up = Interpolator(WIDE_RATE // SAMPLE_RATE)

    def __call__(self, wide: Pcm | None, narrow: Pcm) -> Pcm:
        return wide if wide is not None else self._up(narrow)


def frame_dbfs(frame: Pcm) -> float:
    """RMS level of ``frame`` in dBFS (-inf for digital silence)."""
    if not len(frame):
        return -math.inf
    power = float(np.dot(frame.astype(np.float64), frame.astype(np.float64))) / len(frame)
    if power <= 0.0:
        return -math.inf
    return 10.0 * math.log10(power / 32768.0**2)


class SilenceDetector:
    """Counts the silence at the end of what it was fed; pure, one frame at a time."""

    def __init__(self, timeout: float, threshold_dbfs: float = SILENCE_DBFS) -> None:
        self.timeout = timeout
        self.threshold_dbfs = threshold_dbfs
        self.silent_seconds = 0.0
        self.heard = False  # anything louder than the threshold so far

    def feed(self, frame: Pcm, seconds: float = PTIME) -> bool:
        """Take one frame; True when it is silence."""
        if frame_dbfs(frame) < self.threshold_dbfs:
            self.silent_seconds += seconds
            return True
        self.silent_seconds = 0.0
        self.heard = True
        return False

    @property
    def timed_out(self) -> bool:
        # Half a tick of slack: sums of 0.02 are not exact in binary.
        return self.silent_seconds >= self.timeout - PTIME / 2


class CallRecording:
    """Writes a call's two sides on the media clock (module docstring)."""

    def __init__(
        self, clock: MediaClock, leg: RecordedLeg, recorder: Recorder, *, other_side: bool = True
    ) -> None:
        self.clock = clock
        self.leg = leg
        self.recorder = recorder
        self.other_side = other_side
        self.failed: str | None = None
        self._feeder: RecordedLeg | None = None
        self._finished: asyncio.Task[RecordingInfo] | None = None
        wide = recorder.sample_rate == WIDE_RATE
        self._left_wide = _Widened() if wide else None
        self._right_wide = _Widened() if wide else None
        leg.listen(self)
        clock.add(self)

    @property
    def duration(self) -> float:
        return self.recorder.duration_s

    @property
    def paused(self) -> bool:
        return self.recorder.paused

    @property
    def stopped(self) -> bool:
        return self._finished is not None

    def on_tick(self, now: float) -> None:
        if self._left_wide is not None:
            self._write_wide()
            return
        left = self.leg.received_frame()
        right = None
        if self.other_side:
            self._follow_feeder()
            right = self.leg.sent_frame()
        self._write(left, right)

    def _write_wide(self) -> None:
        """:meth:`on_tick` of a 16 kHz recording."""
        left = self._caller()[1]
        right = None
        widened = self._right_wide
        if self.other_side and widened is not None:
            self._follow_feeder()
            leg = self.leg
            right = widened(leg.sent_wide_frame(), leg.sent_frame())
        self._write(left, right)

    def _caller(self) -> tuple[Pcm, Pcm]:
        """This tick's frame from the caller: at 8 kHz, and at the recording's rate."""
        leg, widened = self.leg, self._left_wide
        narrow = leg.received_frame()
        if widened is None:
            return narrow, narrow
        return narrow, widened(leg.received_wide_frame(), narrow)

    def _write(self, left: Pcm, right: Pcm | None = None) -> None:
        try:
            self.recorder.write(left, right)
        except OSError as exc:
            # A full disk, say: stop writing (what is on disk stays valid), keep the call.
            self.failed = str(exc)
            self.clock.remove(self)
            log.error("recording write failed", path=str(self.recorder.path), reason=str(exc))

    def _follow_feeder(self) -> None:
        """Listen to the leg relayed to the caller (a bridge), so it is decoded."""
        feeder = self.leg.fed_by
        if feeder is self.leg:
            feeder = None  # echo: the caller's own audio, decoded already
        if feeder is not self._feeder:
            if self._feeder is not None:
                self._feeder.unlisten(self)
            if feeder is not None:
                feeder.listen(self)
            self._feeder = feeder

    def pause(self) -> None:
        self.recorder.pause()

    def resume(self) -> None:
        self.recorder.resume()

    def stop(self) -> asyncio.Task[RecordingInfo]:
        """Stop writing now; the task finishes the file (fsync, encode) off the loop.
        Calling it again returns the same task."""
        if self._finished is None:
            self.clock.remove(self)
            self.leg.unlisten(self)
            if self._feeder is not None:
                self._feeder.unlisten(self)
                self._feeder = None
            self._finished = asyncio.get_running_loop().create_task(self.recorder.aclose())
        return self._finished


class MessageRecording(CallRecording):
    """A voicemail: the caller only, ended by silence or length (module docstring).

    :attr:`ended` resolves with ``"silence"`` or ``"max_length"`` when the
    recording ends itself; the owner stops it for other reasons (a key, a
    hang-up) and then calls :meth:`stop`.
    """

    def __init__(
        self,
        clock: MediaClock,
        leg: RecordedLeg,
        recorder: Recorder,
        *,
        max_length: float,
        silence_timeout: float,
        threshold_dbfs: float = SILENCE_DBFS,
    ) -> None:
        self.max_length = max_length
        self.silence = SilenceDetector(silence_timeout, threshold_dbfs)
        self.elapsed = 0.0
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._held: list[Pcm] = []  # silence not written yet
        super().__init__(clock, leg, recorder, other_side=False)

    def on_tick(self, now: float) -> None:
        if self.ended.done():
            return
        heard, frame = self._caller()
        self.elapsed += PTIME
        if self.silence.feed(heard):
            self._held.append(frame)
        else:
            for held in self._held:
                self._write(held)
            self._held.clear()
            self._write(frame)
        if self.silence.timed_out:
            self._end("silence")
        elif self.elapsed >= self.max_length - PTIME / 2:
            self._end("max_length")

    def _end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    def stop(self) -> asyncio.Task[RecordingInfo]:
        self._held.clear()  # trailing silence is not part of the message
        self._end("stopped")
        return super().stop()
