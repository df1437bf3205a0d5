"""In-band DTMF detection for every leg that needs it, in one batch per media tick.

A peer that did not negotiate telephone-event (RFC 4733) sends its keys as
tones in the audio. While such a leg is the call's own (not relayed to a
bridge), :meth:`RtpLeg._refresh_inband` asks the clock's
:class:`InbandDtmfScanner` to watch it: the scanner listens to the leg (so it
is decoded), and at each tick feeds the decoded frames of all watched legs to
:meth:`DtmfDetector.feed_many`, which runs one set of matrix products for all
of them. The cost per tick grows with the number of legs, not with one Python
detector run per leg. Each key found is reported once, through the leg's
``on_digit`` (the call's digit path).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from mediaserver.log import get_logger
from mediaserver.media.clock import MediaClock
from mediaserver.media.inband import DtmfDetector
from mediaserver.media.pcm import Pcm

log = get_logger("media")


class WatchedLeg(Protocol):
    """What the scanner needs of a leg (:class:`~mediaserver.media.leg.RtpLeg`)."""

    on_digit: Callable[[str], None]
    events: Counter[str]

    def listen(self, owner: object) -> None: ...

    def unlisten(self, owner: object) -> None: ...

    def received_frame(self) -> Pcm: ...


class InbandDtmfScanner:
    """A media-clock member running in-band DTMF detection on watched legs."""

    def __init__(self, clock: MediaClock) -> None:
        self.clock = clock
        self.keys_found = 0
        self._detectors: dict[WatchedLeg, DtmfDetector] = {}

    def __len__(self) -> int:
        return len(self._detectors)

    def __contains__(self, leg: object) -> bool:
        return leg in self._detectors

    def watch(self, leg: WatchedLeg) -> None:
        if leg in self._detectors:
            return
        self._detectors[leg] = DtmfDetector()
        leg.listen(self)
        self.clock.add(self)

    def unwatch(self, leg: WatchedLeg) -> None:
        if self._detectors.pop(leg, None) is None:
            return
        leg.unlisten(self)
        if not self._detectors:
            self.clock.remove(self)

    def on_tick(self, now: float) -> None:
        watched = list(self._detectors.items())
        if not watched:
            return
        frames = [leg.received_frame() for leg, _ in watched]
        found = DtmfDetector.feed_many([detector for _, detector in watched], frames)
        for (leg, _), keys in zip(watched, found, strict=True):
            for key in keys:
                self.keys_found += 1
                leg.events["dtmf_inband"] += 1
                try:
                    leg.on_digit(key)
                except Exception:
                    # One listener's bug must not stop detection for every other leg.
                    log.exception("in-band key delivery failed", key=key)


_SCANNERS: weakref.WeakKeyDictionary[MediaClock, InbandDtmfScanner] = weakref.WeakKeyDictionary()


def scanner_for(clock: MediaClock) -> InbandDtmfScanner:
    """The in-band DTMF scanner of ``clock`` (one per clock, made on first use)."""
    scanner = _SCANNERS.get(clock)
    if scanner is None:
        scanner = _SCANNERS[clock] = InbandDtmfScanner(clock)
    return scanner
