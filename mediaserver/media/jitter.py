"""The jitter buffer of a decoded G.711 leg: packets in at network times, frames out on the clock.

Theory of operation
-------------------
Packets arrive when the network delivers them: late, early, reordered, duplicated or
never. The media clock wants exactly one 20 ms frame (160 samples at 8 kHz) every tick.
``JitterBuffer`` sits in between and is sans-I/O: ``push`` takes each RTP packet with its
arrival time, ``pop`` is called once per tick with the current time (both from the same
clock, e.g. the event loop's) and always returns 160 samples: received audio, a
concealment of missing audio, or silence.

Storage. Payloads stay encoded until they are played; each is cut into 10 ms units
(80 bytes of G.711) keyed by RTP timestamp, so packets of any multiple of 10 ms (10, 20,
30, 60 ms ...) fill the same grid and every pop joins the two units of one 20 ms frame
and decodes them with the codec's ``decode``. Timestamps are kept on an unwrapped line:
each one is placed relative to the playout point with ``rtp.ts_delta``, so the 2**32 wrap
never shows; sequence numbers only serve to spot duplicates, in a ring indexed by the
number modulo 128, which the 16-bit wrap cannot disturb. Only units from the
playout point up to the maximum delay plus one frame (and half a frame of rounding) are
stored; a packet beyond that moves the playout point on and the oldest audio is dropped
(``dropped_overflow``). So memory is bounded: nine units at the default 60 ms.

Playout point and delay. ``P`` is the timestamp of the next frame to play; every pop moves
it one frame on. The delay is measured against the network: each packet's transit,
``arrival * 8000 - (timestamp + duration)``, differs from its one-way delay by a constant
(the offset between the two clocks), so the smallest transit among the last 50 packets
stands for the path's base delay. ``now * 8000 - base`` is then the newest timestamp that
can have arrived, and the delay (``current_delay_ms``) is how far ``P`` runs behind it.
A frame is on time when the delay covers its packet's duration (rounded up to whole
frames: a frame straddling two packets needs the later one) plus that packet's extra
delay over the base. As ``P`` moves in whole frames from wherever the tick falls, every
limit on the delay holds to the nearest tick (within half a frame).

Adaptive depth. The target delay is that duration plus three times the interarrival
jitter J of RFC 3550 A.8 (J follows |D|, the change in transit between consecutive
packets, with gain 1/16), or plus the extra delay of a packet that came too late, if
more (that claim halves every second); never below one frame, nor above ``max_delay_ms``
(the config's ``rtp.jitter_buffer_ms``) unless a single packet is longer. The buffer
grows quickly and shrinks slowly:

* grow: when the frame to play is missing and either nothing after it has come (an
  underrun: the packet is late rather than lost) or the delay is below the target, ``P``
  waits a tick (``stretches``): a concealment frame plays and the missing packet still
  plays when it comes, one frame later; never past the maximum delay;
* shrink: when the delay is at least a frame above the target, one frame is dropped
  (``shrinks``), at most one every half second: a quiet frame (a pause in speech), or any
  frame if the delay is two frames over the target; and one frame every tick, quiet or
  not, while the delay is over the maximum (the buffer runs long);
* at a talkspurt's start or any new timeline, ``P`` is placed at once so that the first
  packet meets the target delay (the ticks before it are silence).

Resynchronisation (``resyncs``): a new SSRC; a timestamp more than a second away from
``P`` (a sender that restarted its clock), or 25 packets in a row too late (one that
went back less than that); a marker bit (RFC 3551 4.1: the first packet of a talkspurt)
after a gap in the timestamps or while the buffer has run dry. Each starts a new
timeline: stored units are dropped and ``P`` is placed for the target delay. Packets of
the SSRC just replaced that still trickle in for half a second are ignored
(``stale_ssrc``).

Loss. A frame still missing when its turn comes is concealed: the last frame played,
6 dB quieter for each repeat (a one-bit right shift), for up to three frames, then
silence. Such frames count as ``concealed``, or as ``silence`` once nothing has arrived
for 200 ms and nothing later is held (the source has paused: silence suppression, hold,
the end of the call). When only half a frame came (10 ms packets, one lost), the other
half is concealed the same way (``half_concealed``). Duplicates (by sequence number, or
audio already held) and late packets (their time has been played out) are dropped and
counted (``duplicates``, ``late``); so are payloads that are not whole 10 ms of G.711
(``bad_payload``).

Cost. A push is a few integer operations and one dict insert per 10 ms unit; a pop is
two dict look-ups and one table decode of 160 bytes; nothing loops over samples.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable

import numpy as np

from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.rtp import RtpPacket, ts_delta

__all__ = ["JitterBuffer"]

CLOCK_RATE = 8000  # G.711 (RFC 3551 4.5.14)
_UNIT = 80  # storage grain: 10 ms, the G.711 packet size granularity (RFC 3551 4.5)
# The delay moves in whole frames from wherever the tick falls, so it keeps to the maximum
# to the nearest tick: up to half a frame over (plus a sample against rounding).
_ROUNDING = FRAME_SAMPLES // 2 + 1
_FADE_FRAMES = 3  # concealment repeats before silence
_TRANSIT_WINDOW = 50  # packets over which the base transit is the minimum (1 s at 20 ms)
_JITTER_GAIN = 1 / 16  # RFC 3550 A.8
_JITTER_MARGIN = 3.0  # target = duration + 3 J
_SHRINK_SPACING = 25  # ticks between ordinary shrinks: 0.5 s
_RESYNC_SAMPLES = CLOCK_RATE  # a timestamp a second away from P is a new timeline
_STALE_SSRC_SECONDS = 0.5
_SEQUENCE_MEMORY = 128  # sequence numbers remembered for duplicate detection
_QUIET_PEAK = 300  # a frame whose peak is below this (about -43 dBm0) may be dropped
_LATE_DECAY = 0.5 ** (1 / 50)  # a late packet's claim on the target halves every second
_PAUSE_SECONDS = 0.2  # no packet for this long and nothing buffered: the source paused
_LATE_RESYNC = 25  # this many late packets in a row: the sender's timestamps went back


class JitterBuffer:
    """Reorders, de-duplicates and times one leg's received G.711 audio for the media clock."""

    def __init__(
        self,
        decode: Callable[[bytes], Pcm],
        max_delay_ms: int = 60,
        *,
        width: int = 1,
        rate_factor: int = 1,
    ) -> None:
        """``width``: payload bytes per 8 kHz timestamp unit, 1 for G.711; 4 for
        G.722 and Opus, held decoded as 16 kHz 16-bit PCM (``media/wideband.py``),
        whose frames are then ``rate_factor`` (2) times 160 samples long."""
        if max_delay_ms < FRAME_SAMPLES * 1000 // CLOCK_RATE:
            raise ValueError(f"max_delay_ms must be at least 20 (one frame), got {max_delay_ms}")
        self.decode = decode
        self.width = width
        self.frame_samples = FRAME_SAMPLES * rate_factor  # what pop returns
        self.max_delay_ms = max_delay_ms
        self.stats: Counter[str] = Counter()
        self._max_delay = max_delay_ms * CLOCK_RATE // 1000
        self._units: dict[int, bytes] = {}
        self._playout: int | None = None  # P, on the unwrapped timestamp line
        self._playout_ts = 0  # P as an RTP timestamp, the anchor for unwrapping
        self._start = 0  # unwrapped timestamp of the timeline's first packet
        self._newest_end = 0  # end of the newest unit stored or played on this timeline
        self._ssrc: int | None = None
        self._previous_ssrc: int | None = None
        self._ssrc_changed_at = -math.inf
        self._seen = [-1] * _SEQUENCE_MEMORY  # recent sequence numbers, by slot
        self._packet_samples = FRAME_SAMPLES  # duration of the latest packet
        self._jitter = 0.0  # RFC 3550 A.8 J, in timestamp units
        self._last_transit: float | None = None
        self._transits: deque[tuple[int, float]] = deque()  # (packet count, transit), rising
        self._packets = 0
        self._since_shrink = 0
        self._last = np.zeros(self.frame_samples, dtype=np.int16)  # last frame played
        self._concealing = 0  # consecutive frames concealed
        self._delay = 0.0  # delay measured at the last pop, in timestamp units
        self._last_arrival = -math.inf
        self._late_extra = 0.0  # extra delay of recent late packets, decaying
        self._late_run = 0  # consecutive late packets

    # -- measures ---------------------------------------------------------------------

    @property
    def jitter_ms(self) -> float:
        """The interarrival jitter estimate (RFC 3550 A.8), in milliseconds."""
        return self._jitter * 1000 / CLOCK_RATE

    @property
    def target_delay_ms(self) -> float:
        """The delay the buffer aims for now, in milliseconds."""
        return self._target() * 1000 / CLOCK_RATE

    @property
    def current_delay_ms(self) -> float:
        """The delay at the last pop: how far playout ran behind the newest audio possible."""
        return self._delay * 1000 / CLOCK_RATE

    @property
    def depth(self) -> int:
        """Stored 10 ms units (encoded audio waiting to be played)."""
        return len(self._units)

    def _duration(self) -> int:
        # A frame straddling two packets needs the later one: round up to whole frames.
        return -(-self._packet_samples // FRAME_SAMPLES) * FRAME_SAMPLES

    def _ceiling(self) -> int:
        # One packet longer than the configured maximum must still fit.
        return max(self._max_delay, self._duration())

    def _capacity(self) -> int:
        # The deepest the delay may be (the ceiling, to the nearest tick) and the 20 ms
        # that pass between two ticks: beyond that, stored audio can only be stale.
        return self._ceiling() + _ROUNDING + FRAME_SAMPLES

    def _target(self) -> int:
        wanted = self._duration() + max(_JITTER_MARGIN * self._jitter, self._late_extra)
        return max(FRAME_SAMPLES, min(round(wanted), self._ceiling()))

    # -- input ------------------------------------------------------------------------

    def push(self, packet: RtpPacket, arrival: float) -> None:
        """Take one received RTP packet of this leg's codec, still encoded."""
        stats = self.stats
        payload = packet.payload
        width = self.width
        size = len(payload) // width
        if size == 0 or len(payload) % (_UNIT * width):
            stats["bad_payload"] += 1  # only whole 10 ms of G.711 (RFC 3551 4.5.14)
            return
        stats["pushed"] += 1
        self._last_arrival = arrival
        if packet.ssrc != self._ssrc:
            if (
                packet.ssrc == self._previous_ssrc
                and arrival - self._ssrc_changed_at < _STALE_SSRC_SECONDS
            ):
                stats["stale_ssrc"] += 1  # the old source's stragglers, after a switch
                return
            if self._ssrc is not None:
                self._previous_ssrc, self._ssrc_changed_at = self._ssrc, arrival
            self._ssrc = packet.ssrc
            self._resync(packet, arrival)
            return
        playout = self._playout
        assert playout is not None  # set with the SSRC
        if self._is_duplicate(packet.sequence):
            stats["duplicates"] += 1
            return
        start = playout + ts_delta(packet.timestamp, self._playout_ts)
        if abs(start - playout) > _RESYNC_SAMPLES:
            self._resync(packet, arrival)  # the sender's clock jumped
            return
        end = start + size
        newest = self._newest_end
        if packet.marker and start >= newest and (start > newest or self._concealing):
            self._resync(packet, arrival)  # RFC 3551 4.1: a talkspurt starts, after a pause
            return
        offset = (start - self._start) % _UNIT
        if offset:
            # Off the 10 ms grid (a sender's odd timestamp step): snap to the nearest unit.
            stats["realigned"] += 1
            start += -offset if offset < _UNIT // 2 else _UNIT - offset
            end = start + size
        transit = self._measure(start + size, arrival, size)
        if end <= playout:
            stats["late"] += 1  # its time has been played out already
            # Grow at once: the target covers this packet's extra delay for a while.
            self._late_extra = max(self._late_extra, transit - self._transits[0][1])
            self._late_run += 1
            if self._late_run >= _LATE_RESYNC:
                self._resync(packet, arrival)  # the sender's timeline fell behind for good
            return
        self._late_run = 0
        overflow = end - playout - self._capacity()
        if overflow > 0:
            playout = self._advance_for(overflow)
        units = self._units
        fresh = False
        for offset in range(0, size, _UNIT):
            key = start + offset
            if key >= playout and key not in units:
                units[key] = payload[offset * width : (offset + _UNIT) * width]
                fresh = True
        if not fresh:
            stats["duplicates"] += 1  # the same audio under another sequence number
        self._newest_end = max(self._newest_end, end)

    def _is_duplicate(self, sequence: int) -> bool:
        # A ring indexed by the 16-bit number itself: 65535 and 0 are just two slots, so
        # the wrap needs no arithmetic, and each slot is reused every 128 packets.
        slot = sequence % _SEQUENCE_MEMORY
        if self._seen[slot] == sequence:
            return True
        self._seen[slot] = sequence
        return False

    def _measure(self, end: int, arrival: float, size: int) -> float:
        """Update the base transit and the RFC 3550 A.8 jitter with one packet; its transit."""
        transit = arrival * CLOCK_RATE - end
        last = self._last_transit
        if last is not None:
            # RFC 3550 A.8: J += (|D(i-1, i)| - J) / 16.
            self._jitter += (abs(transit - last) - self._jitter) * _JITTER_GAIN
        self._last_transit = transit
        self._packet_samples = size
        self._packets += 1
        transits = self._transits
        while transits and transits[-1][1] >= transit:
            transits.pop()
        transits.append((self._packets, transit))
        if transits[0][0] <= self._packets - _TRANSIT_WINDOW:
            transits.popleft()
        return transit

    def _resync(self, packet: RtpPacket, arrival: float) -> None:
        """Start a new timeline at ``packet``, placing P to meet the target delay."""
        if self._playout is not None:
            self.stats["resyncs"] += 1
        self._units.clear()
        self._seen = [-1] * _SEQUENCE_MEMORY
        self._is_duplicate(packet.sequence)
        self._transits.clear()
        self._last_transit = None
        self._late_run = 0
        self._late_extra = 0.0  # measured against the old timeline
        width = self.width
        size = len(packet.payload) // width
        start = packet.timestamp  # the new line's origin: unwrapped = wire value
        self._start = start
        self._newest_end = start + size
        self._measure(start + size, arrival, size)
        lead = max(0, -(-(self._target() - size) // FRAME_SAMPLES))
        self._playout = start - lead * FRAME_SAMPLES
        self._playout_ts = (packet.timestamp - lead * FRAME_SAMPLES) & 0xFFFFFFFF
        self._since_shrink = 0
        for offset in range(0, size, _UNIT):
            self._units[start + offset] = packet.payload[offset * width : (offset + _UNIT) * width]

    def _advance_for(self, overflow: int) -> int:
        """Move P on by whole frames to make room for ``overflow`` more samples."""
        frames = -(-overflow // FRAME_SAMPLES)
        playout = self._playout
        assert playout is not None
        units = self._units
        for _ in range(frames):
            dropped = units.pop(playout, None) is not None
            dropped = units.pop(playout + _UNIT, None) is not None or dropped
            if dropped:
                self.stats["dropped_overflow"] += 1
            playout += FRAME_SAMPLES
        self._set_playout(playout)
        return playout

    def _set_playout(self, playout: int) -> None:
        assert self._playout is not None
        self._playout_ts = (self._playout_ts + playout - self._playout) & 0xFFFFFFFF
        self._playout = playout

    # -- output -----------------------------------------------------------------------

    def pop(self, now: float) -> Pcm:
        """The next 20 ms frame to play: always exactly ``frame_samples`` (160) samples."""
        stats = self.stats
        playout = self._playout
        if playout is None:
            stats["silence"] += 1
            return np.zeros(self.frame_samples, dtype=np.int16)
        delay = now * CLOCK_RATE - self._transits[0][1] - playout
        target = self._target()
        ceiling = self._ceiling()
        self._since_shrink += 1
        self._late_extra *= _LATE_DECAY
        if self._should_shrink(playout, delay, target, ceiling):
            stats["shrinks"] += 1
            self._units.pop(playout, None)
            self._units.pop(playout + _UNIT, None)
            playout += FRAME_SAMPLES
            self._set_playout(playout)
            self._since_shrink = 0
            delay -= FRAME_SAMPLES
        self._delay = delay
        stats["current_delay_ms"] = max(0, round(delay * 1000 / CLOCK_RATE))
        if playout < self._start:
            # Lead-in of a new timeline: the delay being built up, not a loss.
            stats["silence"] += 1
            self._set_playout(playout + FRAME_SAMPLES)
            return np.zeros(self.frame_samples, dtype=np.int16)
        units = self._units
        first = units.get(playout)
        second = units.get(playout + _UNIT)
        if first is not None and second is not None:
            del units[playout], units[playout + _UNIT]
            frame = self.decode(first + second)
            return self._played(frame, playout)
        later = self._newest_end > playout + FRAME_SAMPLES
        if (not later or delay < target) and delay + FRAME_SAMPLES <= ceiling + _ROUNDING:
            # Late rather than lost (nothing after it has come either), or the jitter calls
            # for more delay: wait a tick for it, growing the delay by a frame.
            stats["stretches"] += 1
            return self._conceal(later, now)
        if first is None and second is None:
            self._set_playout(playout + FRAME_SAMPLES)
            return self._conceal(later, now)
        # Half a frame came (10 ms packets, one lost): conceal only the missing half.
        stats["half_concealed"] += 1
        frame = np.right_shift(self._last, 1)
        half = self.frame_samples // 2
        if first is not None:
            del units[playout]
            frame[:half] = self.decode(first)
        if second is not None:
            del units[playout + _UNIT]
            frame[half:] = self.decode(second)
        return self._played(frame, playout)

    def _played(self, frame: Pcm, playout: int) -> Pcm:
        self.stats["played"] += 1
        self._set_playout(playout + FRAME_SAMPLES)
        self._last = frame.copy()  # the caller may change the frame it gets
        self._concealing = 0
        return frame

    def _conceal(self, later: bool, now: float) -> Pcm:
        """A frame for missing audio: the last one, 6 dB quieter per repeat, then silence."""
        self._concealing += 1
        if later or now - self._last_arrival <= _PAUSE_SECONDS:
            self.stats["concealed"] += 1
        else:
            self.stats["silence"] += 1  # the source has paused (silence suppression, hold, end)
        if self._concealing > _FADE_FRAMES:
            return np.zeros(self.frame_samples, dtype=np.int16)
        # -6 dB per repeat: each repeat halves the last frame again.
        return np.right_shift(self._last, self._concealing)

    def _should_shrink(self, playout: int, delay: float, target: int, ceiling: int) -> bool:
        """Whether to drop the frame at ``playout`` to bring the delay down by one frame."""
        if delay - FRAME_SAMPLES < target or playout < self._start or self._newest_end <= playout:
            return False  # not a frame too long, in the lead-in, or nothing left to play
        if delay > ceiling + _ROUNDING:
            return True  # the buffer runs long: one frame per tick, heard or not
        if self._since_shrink < _SHRINK_SPACING:
            return False  # shrink slowly
        # Two frames over target: drop any frame; one frame over: wait for a pause.
        return delay - FRAME_SAMPLES >= target + FRAME_SAMPLES or self._is_quiet(playout)

    def _is_quiet(self, playout: int) -> bool:
        """Whether the frame at ``playout`` is there and near-silent: dropping it goes unheard."""
        first = self._units.get(playout)
        second = self._units.get(playout + _UNIT)
        if first is None or second is None:
            return False  # a loss is concealed, not skipped: the loss counts stay true
        audio = self.decode(first + second)
        return int(np.max(np.abs(audio.astype(np.int32)))) < _QUIET_PEAK
