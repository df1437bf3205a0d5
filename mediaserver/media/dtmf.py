"""RFC 4733 telephone-events: the payload codec, a DTMF receiver and a DTMF sender.

Theory of operation
-------------------
An RFC 4733 event is not one packet but a series: the sender repeats the
4-byte payload (event code, end bit, volume, duration so far) every packet
interval while the key is held, every packet carrying the RTP timestamp of
the event's start, then sends the final packet, with the end bit, three
times. Packets get lost, duplicated and reordered, so the receiver's job is
to turn that series into "key X was pressed" exactly once.

``DtmfReceiver`` is sans-I/O: the media leg feeds it each telephone-event
payload with its RTP timestamp and the current time, and it returns the
digits that became known; ``next_deadline``/``poll`` drive the one timer it
needs. The event's identity is its RTP timestamp. With ``latest`` the
timestamp of the newest event seen, a packet is

* older than ``latest``: a late packet of an event already dealt with, ignored;
* equal to ``latest``: the same event; its first end packet reports the digit,
  anything after that (the retransmitted end packets) is ignored;
* newer than ``latest``: a new event; if the previous one never got an end
  packet (all three lost), it is reported now.

An event that stops getting packets without any end packet is reported
``timeout`` seconds after its last packet. So a pressed key is reported once,
whichever packets arrive. Timestamps compare modulo 2**32, so wrap-around is
harmless. Events above 15 (flash, tones) are not DTMF and are ignored and
counted; malformed payloads are dropped and counted.

``tone_event_packets`` is the sending side: the payloads for one digit, to be
sent one per packet interval with the same RTP timestamp.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mediaserver.media.rtp import ts_delta

__all__ = [
    "EVENT_KEYS",
    "MAX_DURATION",
    "DtmfDigit",
    "DtmfReceiver",
    "TelephoneEvent",
    "decode_event",
    "encode_event",
    "key_to_event",
    "tone_event_packets",
]

# RFC 4733 3.2: DTMF event codes 0-15, in code order.
EVENT_KEYS = "0123456789*#ABCD"
# RFC 4733 2.3.5: the duration field is 16 bits, in timestamp units.
MAX_DURATION = 0xFFFF

# RFC 4733 2.3: event (8 bits), E|R|volume (1+1+6 bits), duration (16 bits).
_PAYLOAD = struct.Struct("!BBH")
_END_BIT = 0x80
_VOLUME_MASK = 0x3F
# How long a finished event's timestamp is remembered to reject its late packets; after that a
# timestamp jump backwards (new SSRC, re-INVITE) is taken as a new event rather than ignored.
_STALE_MEMORY = 2.0


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One decoded telephone-event payload (RFC 4733 2.3)."""

    event: int
    end: bool
    volume: int
    duration: int


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A key press received from the peer, reported once."""

    key: str
    duration_ms: int


def encode_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    """Build a telephone-event payload; volume is in -dBm0 (0-63), duration in clock ticks."""
    if not 0 <= event <= 0xFF:
        raise ValueError(f"event must be 0-255, got {event}")
    if not 0 <= volume <= _VOLUME_MASK:
        raise ValueError(f"volume must be 0-63 (-dBm0), got {volume}")
    if not 0 <= duration <= MAX_DURATION:
        raise ValueError(f"duration must be 0-{MAX_DURATION} timestamp units, got {duration}")
    # RFC 4733 2.3.3: the R bit is reserved and sent as zero.
    return _PAYLOAD.pack(event, (_END_BIT if end else 0) | volume, duration)


def decode_event(payload: bytes) -> TelephoneEvent:
    """Decode a 4-byte telephone-event payload; ValueError on any other length."""
    if len(payload) != _PAYLOAD.size:
        raise ValueError(f"telephone-event payload is {_PAYLOAD.size} bytes, got {len(payload)}")
    event, flags, duration = _PAYLOAD.unpack(payload)
    # RFC 4733 2.3.3: the receiver ignores the R bit (0x40).
    return TelephoneEvent(event, bool(flags & _END_BIT), flags & _VOLUME_MASK, duration)


def key_to_event(key: str) -> int:
    """The event code of a DTMF key: ``0-9``, ``*``, ``#``, ``A-D`` (``a-d`` accepted)."""
    code = EVENT_KEYS.find(key.upper()) if len(key) == 1 else -1
    if code < 0:
        raise ValueError(f"not a DTMF key: {key!r}; keys are 0-9, *, #, A-D")
    return code


@dataclass(slots=True)
class _ReceivedEvent:
    """The event being received, not yet reported."""

    event: int
    earlier_segments: int  # duration of a long event's previous segments (RFC 4733 2.5.1.3)
    duration: int  # largest duration field seen in the current segment
    last_packet: float


class DtmfReceiver:
    """Turns received telephone-event payloads into digits, each reported exactly once."""

    def __init__(self, clock_rate: int = 8000, timeout: float = 0.5) -> None:
        if clock_rate <= 0 or timeout <= 0:
            raise ValueError("clock_rate and timeout must be positive")
        self.clock_rate = clock_rate
        self.timeout = timeout
        self.dropped = 0  # malformed payloads
        self.ignored = 0  # well-formed events that are not DTMF (codes above 15)
        self._current: _ReceivedEvent | None = None
        self._latest: int | None = None  # timestamp of the newest event (or segment) seen
        self._latest_seen = 0.0
        self._memory = max(_STALE_MEMORY, 2 * timeout)

    def next_deadline(self) -> float | None:
        """When ``poll`` must next be called, or None when no event is pending."""
        if self._current is None:
            return None
        return self._current.last_packet + self.timeout

    def poll(self, now: float) -> list[DtmfDigit]:
        """Report the pending event if it got no packet for ``timeout`` (all end packets lost)."""
        current = self._current
        if current is not None and now >= current.last_packet + self.timeout:
            return [self._finish(current)]
        return []

    def handle_packet(self, timestamp: int, payload: bytes, now: float) -> list[DtmfDigit]:
        """Take one telephone-event payload and its RTP timestamp; return the digits now known."""
        digits = self.poll(now)
        try:
            packet = decode_event(payload)
        except ValueError:
            self.dropped += 1
            return digits
        if packet.event >= len(EVENT_KEYS):
            self.ignored += 1
            return digits

        current = self._current
        latest = self._latest
        if latest is not None and now - self._latest_seen <= self._memory:
            delta = ts_delta(timestamp, latest)
            if delta < 0:
                return digits  # a late packet of an event already reported or replaced
            if delta == 0:
                self._latest_seen = now
                if current is None:
                    return digits  # RFC 4733 2.5.1.4: the end packet is sent three times
                current.duration = max(current.duration, packet.duration)
                current.last_packet = now
                if packet.end:
                    digits.append(self._finish(current))
                return digits
            if current is not None and self._continues(current, packet, delta):
                current.earlier_segments += delta
                current.duration = packet.duration
                current.last_packet = now
                self._latest, self._latest_seen = timestamp, now
                if packet.end:
                    digits.append(self._finish(current))
                return digits
        if current is not None:
            # RFC 4733 2.5.1.2: a new timestamp is a new event, so the previous one has ended.
            digits.append(self._finish(current))
        current = _ReceivedEvent(packet.event, 0, packet.duration, now)
        self._current = current
        self._latest, self._latest_seen = timestamp, now
        if packet.end:
            # Only end packets arrived (the start was lost): the event is already complete.
            digits.append(self._finish(current))
        return digits

    def _continues(self, current: _ReceivedEvent, packet: TelephoneEvent, delta: int) -> bool:
        # RFC 4733 2.5.1.3: an event longer than the 16-bit duration goes on in a new segment
        # whose timestamp is where the previous, nearly full segment stopped.
        nearly_full = current.duration >= MAX_DURATION - self.clock_rate // 5
        return (
            packet.event == current.event
            and nearly_full
            and current.duration <= delta <= MAX_DURATION
        )

    def _finish(self, current: _ReceivedEvent) -> DtmfDigit:
        self._current = None
        ticks = current.earlier_segments + current.duration
        return DtmfDigit(EVENT_KEYS[current.event], ticks * 1000 // self.clock_rate)


def tone_event_packets(
    key: str,
    duration_ms: int,
    clock_rate: int = 8000,
    packet_ms: int = 20,
    volume: int = 10,
) -> list[tuple[bytes, bool]]:
    """The telephone-event payloads for one digit, each with its RTP marker flag.

    Send them one every ``packet_ms``, all with the RTP timestamp of the tone's
    start. The last three are the same end packet. Durations above
    ``MAX_DURATION`` ticks (8.19 s at 8 kHz) would need segments and are refused.
    """
    event = key_to_event(key)
    total = round(duration_ms * clock_rate / 1000)
    step = packet_ms * clock_rate // 1000
    if not 0 < total <= MAX_DURATION:
        raise ValueError(f"duration must be 1 ms to {MAX_DURATION * 1000 // clock_rate} ms")
    if step <= 0:
        raise ValueError(f"packet_ms must be at least one clock tick, got {packet_ms}")
    # RFC 4733 2.5.1.2: each update carries the duration of the event so far.
    payloads = [encode_event(event, False, volume, sent) for sent in range(step, total, step)]
    # RFC 4733 2.5.1.4: the final packet, with the full duration, is sent three times.
    payloads += [encode_event(event, True, volume, total)] * 3
    # RFC 4733 2.2.2: the marker bit flags the first packet of an event only.
    return [(payload, index == 0) for index, payload in enumerate(payloads)]
