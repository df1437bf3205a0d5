"""RFC 4733 telephone-events: payload codec, DtmfReceiver and tone_event_packets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.media.dtmf import (
    EVENT_KEYS,
    MAX_DURATION,
    DtmfDigit,
    DtmfReceiver,
    TelephoneEvent,
    decode_event,
    encode_event,
    key_to_event,
    tone_event_packets,
)

# --- payload codec -------------------------------------------------------------------------


def test_encode_layout() -> None:
    # Event 5, E bit, volume 10, duration 800 (0x0320).
    assert encode_event(5, True, 10, 800) == bytes([5, 0x8A, 0x03, 0x20])
    assert encode_event(11, False, 63, 0xFFFF) == bytes([11, 0x3F, 0xFF, 0xFF])


def test_decode_fields() -> None:
    assert decode_event(bytes([5, 0x8A, 0x03, 0x20])) == TelephoneEvent(5, True, 10, 800)
    assert decode_event(bytes([16, 0x00, 0x00, 0x00])) == TelephoneEvent(16, False, 0, 0)


def test_decode_ignores_reserved_bit() -> None:
    assert decode_event(bytes([1, 0xC7, 0, 160])) == TelephoneEvent(1, True, 7, 160)


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, MAX_DURATION))
def test_decode_inverts_encode(event: int, end: bool, volume: int, duration: int) -> None:
    assert decode_event(encode_event(event, end, volume, duration)) == TelephoneEvent(
        event, end, volume, duration
    )


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01\x80\x00", b"\x01\x80\x00\xa0\x00"])
def test_decode_refuses_bad_length(payload: bytes) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        decode_event(payload)


@pytest.mark.parametrize(
    ("event", "volume", "duration", "field"),
    [
        (-1, 0, 0, "event"),
        (256, 0, 0, "event"),
        (1, 64, 0, "volume"),
        (1, -1, 0, "volume"),
        (1, 0, 0x10000, "duration"),
        (1, 0, -1, "duration"),
    ],
)
def test_encode_refuses_out_of_range(event: int, volume: int, duration: int, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        encode_event(event, False, volume, duration)


def test_event_keys() -> None:
    # RFC 4733 3.2: 0-9 are themselves, then *, #, A, B, C, D.
    assert EVENT_KEYS == "0123456789*#ABCD"
    assert [key_to_event(key) for key in EVENT_KEYS] == list(range(16))
    assert key_to_event("*") == 10
    assert key_to_event("#") == 11
    assert key_to_event("d") == 15


@pytest.mark.parametrize("key", ["", "E", "w", "12", " ", "+"])
def test_key_to_event_refuses_non_keys(key: str) -> None:
    with pytest.raises(ValueError, match="not a DTMF key"):
        key_to_event(key)


# --- receiver ------------------------------------------------------------------------------


def update(event: int, duration: int, end: bool = False) -> bytes:
    return encode_event(event, end, 10, duration)


def press(
    receiver: DtmfReceiver,
    timestamp: int,
    event: int,
    start: float,
    updates: int = 4,
    ends: int = 3,
) -> list[DtmfDigit]:
    """Feed one key press sent every 20 ms: `updates` updates then `ends` end packets."""
    digits: list[DtmfDigit] = []
    now = start
    for n in range(1, updates + 1):
        digits += receiver.handle_packet(timestamp, update(event, 160 * n), now)
        now += 0.02
    for _ in range(ends):
        digits += receiver.handle_packet(timestamp, update(event, 160 * (updates + 1), True), now)
        now += 0.02
    return digits


def test_single_digit_with_three_end_packets_is_reported_once() -> None:
    receiver = DtmfReceiver()
    assert receiver.handle_packet(1000, update(5, 160), 0.00) == []
    assert receiver.handle_packet(1000, update(5, 320), 0.02) == []
    assert receiver.next_deadline() == pytest.approx(0.52)
    assert receiver.handle_packet(1000, update(5, 800, end=True), 0.04) == [DtmfDigit("5", 100)]
    assert receiver.handle_packet(1000, update(5, 800, end=True), 0.06) == []
    assert receiver.handle_packet(1000, update(5, 800, end=True), 0.08) == []
    assert receiver.next_deadline() is None
    assert receiver.poll(10.0) == []


def test_lost_end_packets_reported_on_next_event() -> None:
    receiver = DtmfReceiver()
    assert press(receiver, 1000, 1, start=0.0, updates=5, ends=0) == []
    # The next key's first packet proves the first key ended.
    assert receiver.handle_packet(3000, update(2, 160), 0.2) == [DtmfDigit("1", 100)]
    assert press(receiver, 3000, 2, start=0.22, updates=1) == [DtmfDigit("2", 40)]


def test_lost_end_packets_reported_on_timeout() -> None:
    receiver = DtmfReceiver(timeout=0.5)
    assert press(receiver, 1000, 9, start=0.0, updates=3, ends=0) == []
    deadline = receiver.next_deadline()
    assert deadline is not None
    assert deadline == pytest.approx(0.04 + 0.5)
    assert receiver.poll(0.5) == []
    assert receiver.poll(deadline) == [DtmfDigit("9", 60)]
    assert receiver.next_deadline() is None
    assert receiver.poll(deadline + 1) == []
    # A straggler of the same event after the timeout does not report it again.
    assert receiver.handle_packet(1000, update(9, 640, end=True), deadline + 0.1) == []


def test_timeout_is_applied_before_a_later_packet() -> None:
    receiver = DtmfReceiver(timeout=0.5)
    receiver.handle_packet(1000, update(3, 160), 0.0)
    # Nobody called poll; the next packet, 1 s later, flushes the old key before starting a new one.
    assert receiver.handle_packet(9000, update(4, 160), 1.0) == [DtmfDigit("3", 20)]
    assert receiver.handle_packet(9000, update(4, 320, end=True), 1.02) == [DtmfDigit("4", 40)]


def test_start_packets_lost_end_packet_reports() -> None:
    receiver = DtmfReceiver()
    assert press(receiver, 500, 0, start=0.0, updates=0, ends=3) == [DtmfDigit("0", 20)]
    assert receiver.dropped == 0


def test_reordered_updates_keep_the_longest_duration() -> None:
    receiver = DtmfReceiver()
    assert receiver.handle_packet(7000, update(6, 160), 0.00) == []
    assert receiver.handle_packet(7000, update(6, 480), 0.02) == []
    assert receiver.handle_packet(7000, update(6, 320), 0.04) == []
    assert receiver.poll(1.0) == [DtmfDigit("6", 60)]


def test_end_overtaking_updates() -> None:
    receiver = DtmfReceiver()
    assert receiver.handle_packet(7000, update(6, 160), 0.00) == []
    assert receiver.handle_packet(7000, update(6, 640, end=True), 0.02) == [DtmfDigit("6", 80)]
    # The update that was overtaken arrives after the digit was reported.
    assert receiver.handle_packet(7000, update(6, 480), 0.03) == []
    assert receiver.next_deadline() is None


def test_late_packet_of_previous_event_is_ignored() -> None:
    receiver = DtmfReceiver()
    assert press(receiver, 1000, 1, start=0.0, updates=2, ends=0) == []
    assert receiver.handle_packet(2000, update(2, 160), 0.1) == [DtmfDigit("1", 40)]
    # The end packet of "1" was only delayed, not lost: it must not report "1" again.
    assert receiver.handle_packet(1000, update(1, 480, end=True), 0.11) == []
    assert receiver.handle_packet(2000, update(2, 320, end=True), 0.12) == [DtmfDigit("2", 40)]
    assert receiver.handle_packet(1000, update(1, 480, end=True), 0.13) == []


def test_duplicated_start_packets() -> None:
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    for _ in range(3):
        digits += receiver.handle_packet(4000, update(8, 160), 0.0)
    digits += receiver.handle_packet(4000, update(8, 320, end=True), 0.02)
    digits += receiver.handle_packet(4000, update(8, 320, end=True), 0.04)
    assert digits == [DtmfDigit("8", 40)]


def test_same_key_twice_is_two_digits() -> None:
    receiver = DtmfReceiver()
    digits = press(receiver, 1000, 7, start=0.0) + press(receiver, 3000, 7, start=0.3)
    assert digits == [DtmfDigit("7", 100), DtmfDigit("7", 100)]


def test_timestamp_wrap_around() -> None:
    receiver = DtmfReceiver()
    first, second = 0xFFFFFF60, 0x00000040  # the second is 224 ticks later, across the wrap
    digits = press(receiver, first, 1, start=0.0)
    digits += press(receiver, second, 2, start=0.2)
    # With the wrap taken into account, the old timestamp is in the past: ignored.
    digits += receiver.handle_packet(first, update(1, 800, end=True), 0.4)
    assert digits == [DtmfDigit("1", 100), DtmfDigit("2", 100)]


def test_lost_end_across_wrap_reported_by_next_event() -> None:
    receiver = DtmfReceiver()
    press(receiver, 0xFFFFFFF0, 3, start=0.0, updates=2, ends=0)
    assert receiver.handle_packet(0x100, update(4, 160), 0.2) == [DtmfDigit("3", 40)]


def test_all_sixteen_keys() -> None:
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    for code, key in enumerate(EVENT_KEYS):
        digits += press(receiver, 1000 + 2000 * code, key_to_event(key), start=0.3 * code)
    assert [digit.key for digit in digits] == list(EVENT_KEYS)


def test_events_above_15_are_ignored() -> None:
    receiver = DtmfReceiver()
    receiver.handle_packet(1000, update(5, 160), 0.0)
    # Event 16 is hook flash (RFC 4733 3.2); 255 is unassigned: neither is a key.
    assert receiver.handle_packet(2000, update(16, 160), 0.01) == []
    assert receiver.handle_packet(2000, update(255, 320, end=True), 0.02) == []
    assert receiver.ignored == 2
    # The pending key is not disturbed by them.
    assert receiver.handle_packet(1000, update(5, 480, end=True), 0.04) == [DtmfDigit("5", 60)]


@pytest.mark.parametrize("payload", [b"", b"\x05", b"\x05\x8a\x03", b"\x05\x8a\x03\x20\x00"])
def test_truncated_payloads_are_counted(payload: bytes) -> None:
    receiver = DtmfReceiver()
    receiver.handle_packet(1000, update(5, 160), 0.0)
    assert receiver.handle_packet(1000, payload, 0.01) == []
    assert receiver.dropped == 1
    assert receiver.handle_packet(1000, update(5, 320, end=True), 0.02) == [DtmfDigit("5", 40)]


def test_dropped_payload_still_lets_the_timeout_fire() -> None:
    receiver = DtmfReceiver(timeout=0.5)
    receiver.handle_packet(1000, update(2, 160), 0.0)
    assert receiver.handle_packet(1000, b"\x00", 0.6) == [DtmfDigit("2", 20)]
    assert receiver.dropped == 1


def test_long_event_split_into_segments_is_one_digit() -> None:
    # RFC 4733 2.5.1.3: past 0xFFFF ticks the event goes on in a new segment at ts + 0xFFFF.
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    # Updates every 50 ms (400 ticks) until the duration field is full.
    for duration in [*range(400, MAX_DURATION, 400), MAX_DURATION]:
        digits += receiver.handle_packet(1000, update(0, duration), duration / 8000)
    assert digits == []
    second_segment = 1000 + MAX_DURATION
    digits += receiver.handle_packet(second_segment, update(0, 400), 8.24)
    assert digits == []
    digits += receiver.handle_packet(second_segment, update(0, 1600, end=True), 8.40)
    assert digits == [DtmfDigit("0", (MAX_DURATION + 1600) * 1000 // 8000)]
    # A retransmitted end of the first segment's timestamp is old: ignored.
    assert receiver.handle_packet(1000, update(0, MAX_DURATION), 8.41) == []


def test_new_press_of_same_key_after_short_event_is_not_a_segment() -> None:
    receiver = DtmfReceiver()
    receiver.handle_packet(1000, update(0, 800), 0.0)
    assert receiver.handle_packet(1000 + 1200, update(0, 160), 0.15) == [DtmfDigit("0", 100)]


def test_old_timestamps_are_forgotten_after_a_while() -> None:
    # After a long silence an earlier timestamp is a new stream (re-INVITE, new SSRC), not a
    # late packet: it must not be ignored forever.
    receiver = DtmfReceiver()
    assert press(receiver, 50000, 1, start=0.0) == [DtmfDigit("1", 100)]
    assert press(receiver, 1000, 2, start=1.0) == []
    assert press(receiver, 1000, 2, start=5.0) == [DtmfDigit("2", 100)]


def test_duration_uses_the_clock_rate() -> None:
    receiver = DtmfReceiver(clock_rate=16000)
    assert receiver.handle_packet(0, update(1, 1600, end=True), 0.0) == [DtmfDigit("1", 100)]


@pytest.mark.parametrize(("clock_rate", "timeout"), [(0, 0.5), (8000, 0.0), (8000, -1.0)])
def test_receiver_refuses_bad_settings(clock_rate: int, timeout: float) -> None:
    with pytest.raises(ValueError):
        DtmfReceiver(clock_rate=clock_rate, timeout=timeout)


# --- sender --------------------------------------------------------------------------------


def test_tone_event_packets_timing() -> None:
    packets = tone_event_packets("#", 100)
    events = [decode_event(payload) for payload, _ in packets]
    assert [event.duration for event in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [event.end for event in events] == [False] * 4 + [True] * 3
    assert {event.event for event in events} == {11}
    assert {event.volume for event in events} == {10}
    assert [marker for _, marker in packets] == [True] + [False] * 6
    # RFC 4733 2.5.1.4: the three end packets are identical.
    assert len({payload for payload, _ in packets[-3:]}) == 1


def test_tone_event_packets_uneven_duration() -> None:
    events = [decode_event(payload) for payload, _ in tone_event_packets("1", 70)]
    assert [event.duration for event in events] == [160, 320, 480, 560, 560, 560]


def test_tone_event_packets_shorter_than_one_packet() -> None:
    packets = tone_event_packets("A", 10)
    end = TelephoneEvent(12, True, 10, 80)
    assert [decode_event(payload) for payload, _ in packets] == [end] * 3
    assert [marker for _, marker in packets] == [True, False, False]


def test_tone_event_packets_other_rates() -> None:
    events = [
        decode_event(payload)
        for payload, _ in tone_event_packets("2", 60, clock_rate=16000, packet_ms=30, volume=5)
    ]
    assert [event.duration for event in events] == [480, 960, 960, 960]
    assert {event.volume for event in events} == {5}


@pytest.mark.parametrize(
    ("key", "duration_ms", "packet_ms"),
    [("E", 100, 20), ("1", 0, 20), ("1", 9000, 20), ("1", 100, 0)],
)
def test_tone_event_packets_refuses_bad_input(key: str, duration_ms: int, packet_ms: int) -> None:
    with pytest.raises(ValueError):
        tone_event_packets(key, duration_ms, packet_ms=packet_ms)


@pytest.mark.parametrize("key", list(EVENT_KEYS))
def test_sent_digit_is_received(key: str) -> None:
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    for n, (payload, _) in enumerate(tone_event_packets(key, 120)):
        digits += receiver.handle_packet(123456, payload, n * 0.02)
    assert digits == [DtmfDigit(key, 120)]


@given(
    key=st.sampled_from(EVENT_KEYS),
    duration_ms=st.integers(1, 2000),
    data=st.data(),
)
def test_any_surviving_subset_in_any_order_gives_the_digit_once(
    key: str, duration_ms: int, data: st.DataObject
) -> None:
    payloads = [payload for payload, _ in tone_event_packets(key, duration_ms)]
    # Loss, duplication and reordering: any non-empty multiset of the packets, shuffled.
    received = data.draw(
        st.lists(st.sampled_from(payloads), min_size=1, max_size=2 * len(payloads))
    )
    receiver = DtmfReceiver()
    digits: list[DtmfDigit] = []
    now = 0.0
    for payload in data.draw(st.permutations(received)):
        digits += receiver.handle_packet(0xFFFFFF00, payload, now)
        now += 0.02
    digits += receiver.poll(now + receiver.timeout)
    assert len(digits) == 1
    assert digits[0].key == key
    assert 0 < digits[0].duration_ms <= duration_ms
    assert receiver.next_deadline() is None
