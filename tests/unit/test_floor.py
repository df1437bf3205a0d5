"""FloorTracker: the loudest talker takes the floor after HOLD_TICKS ticks in a row."""

from __future__ import annotations

from mediaserver.media.floor import FloorTracker


def feed(tracker: FloorTracker[str], levels: dict[str, float], ticks: int) -> list[str | None]:
    return [tracker.update(levels) for _ in range(ticks)]


def test_the_loudest_takes_the_floor_after_the_hold_time_and_keeps_it() -> None:
    tracker: FloorTracker[str] = FloorTracker(threshold_dbfs=-40.0, hold_ticks=3)
    assert feed(tracker, {"a": -20.0, "b": -30.0}, 4) == [None, None, "a", None]
    assert tracker.holder == "a"
    # Silence leaves the floor where it is.
    assert feed(tracker, {"a": -60.0, "b": -70.0}, 5) == [None] * 5
    assert tracker.holder == "a"


def test_a_short_burst_does_not_move_the_floor() -> None:
    tracker: FloorTracker[str] = FloorTracker(threshold_dbfs=-40.0, hold_ticks=3)
    feed(tracker, {"a": -20.0}, 3)
    assert feed(tracker, {"a": -20.0, "b": -10.0}, 2) == [None, None]
    assert feed(tracker, {"a": -20.0, "b": -30.0}, 1) == [None]  # the count starts over
    assert feed(tracker, {"a": -20.0, "b": -10.0}, 3) == [None, None, "b"]


def test_nobody_above_the_threshold_takes_it_and_a_leaver_loses_it() -> None:
    tracker: FloorTracker[str] = FloorTracker(threshold_dbfs=-40.0, hold_ticks=2)
    assert feed(tracker, {"a": -45.0}, 5) == [None] * 5
    assert feed(tracker, {}, 2) == [None, None]
    feed(tracker, {"a": -20.0}, 2)
    tracker.forget("a")
    assert tracker.holder is None
    assert feed(tracker, {"a": -20.0}, 2) == [None, "a"]
