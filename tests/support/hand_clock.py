"""A clock a test moves by hand, for what takes a ``clock=`` (the store, its
sessions): ``clock.now`` is the time, ``clock.advance(seconds)`` moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)


class HandClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
