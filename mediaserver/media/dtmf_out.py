"""Keys the server sends (``send-dtmf@v1``): as RFC 4733 events or as in-band tones.

Theory of operation: a key string holds DTMF keys (``0-9``, ``*``, ``#``,
``A-D``) and pauses (``w`` = 0.5 s, ``W`` = 1 s). Each key sounds for
``duration`` seconds and is followed by :data:`GAP_SECONDS` of quiet, so
"11" is two presses (ITU-T Q.24 wants at least 40 ms between presses).

* When the peer negotiated telephone-event, :func:`event_steps` turns the
  string into one step per 20 ms media tick for
  :meth:`RtpLeg.send_dtmf <mediaserver.media.leg.RtpLeg.send_dtmf>`: the
  event's packets from :func:`~mediaserver.media.dtmf.tone_event_packets`
  (updates every 20 ms, the end packet at ``duration``, repeated twice more
  on the next ticks as RFC 4733 2.5.1.4 asks), then ticks of ordinary audio
  for the rest of the gap and for the pauses. While a key's packets go out
  the leg sends no audio, so no audio packet shares the event's time.
* Otherwise :func:`inband_audio` renders the same timeline as sound: each
  key the sum of its two Q.23 frequencies at :data:`INBAND_LEVEL_DBFS` per
  tone, played like any prompt.

Both timelines last ``len(keys) * (duration + gap) + pauses``, to the 20 ms tick.
"""

from __future__ import annotations

import numpy as np

from mediaserver.media.clock import PTIME
from mediaserver.media.dtmf import EVENT_KEYS, tone_event_packets
from mediaserver.media.dtmf import MAX_DURATION as MAX_EVENT_TICKS
from mediaserver.media.inband import dtmf_key_frequencies
from mediaserver.media.leg import DtmfStep
from mediaserver.media.pcm import Pcm
from mediaserver.media.tones import silence, tone

PAUSES = {"w": 0.5, "W": 1.0}
"""Pause characters and their length in seconds."""

GAP_SECONDS = 0.1
"""Quiet after each key."""

INBAND_LEVEL_DBFS = -10.0
"""Each tone of an in-band key: about -7 dBm0, inside Q.24's accepted levels."""

MIN_DURATION = 0.04
"""Q.24: a tone of 40 ms must be recognised; shorter ones may not be."""

MAX_DURATION = 5.0

_GAP_TICKS = round(GAP_SECONDS / PTIME)
_END_REPEATS = 2  # RFC 4733 2.5.1.4: the end packet goes out three times in all


def check_keys(keys: str) -> str:
    """``keys`` if every character is a DTMF key or a pause; ``ValueError`` naming
    the first that is not."""
    if not keys:
        raise ValueError("no keys to send")
    for char in keys:
        if char not in EVENT_KEYS and char not in PAUSES:
            raise ValueError(
                f"{char!r} is not a DTMF key or a pause "
                "(use 0-9, *, #, A-D, w for 0.5 s, W for 1 s)"
            )
    return keys


def _check_duration(duration: float) -> None:
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(f"duration must be {MIN_DURATION} to {MAX_DURATION} s, got {duration}")


def event_steps(keys: str, duration: float, clock_rate: int = 8000) -> list[DtmfStep]:
    """One :data:`DtmfStep` per 20 ms tick for ``keys`` sent as telephone-events
    at ``clock_rate`` (the leg's telephone-event clock: 48000 beside Opus). At
    48000 the 16-bit duration field ends at 1.36 s, so longer keys are cut there
    (RFC 4733 2.5.1.3 would need segments)."""
    check_keys(keys)
    _check_duration(duration)
    duration = min(duration, MAX_EVENT_TICKS / clock_rate)
    steps: list[DtmfStep] = []
    for char in keys:
        if char in PAUSES:
            steps.extend([None] * round(PAUSES[char] / PTIME))
            continue
        steps.extend(tone_event_packets(char, round(duration * 1000), clock_rate))
        # The end packet's two repeats already took two ticks of the gap.
        steps.extend([None] * max(0, _GAP_TICKS - _END_REPEATS))
    return steps


def inband_audio(keys: str, duration: float) -> Pcm:
    """``keys`` as sound: dual tones, gaps and pauses, 8 kHz."""
    check_keys(keys)
    _check_duration(duration)
    pieces: list[Pcm] = []
    for char in keys:
        if char in PAUSES:
            pieces.append(silence(PAUSES[char]))
            continue
        pieces.append(tone(dtmf_key_frequencies(char), duration, INBAND_LEVEL_DBFS))
        pieces.append(silence(GAP_SECONDS))
    return np.concatenate(pieces)


def timeline_seconds(keys: str, duration: float) -> float:
    """How long sending ``keys`` takes, either way."""
    check_keys(keys)
    return sum(PAUSES.get(char, duration + GAP_SECONDS) for char in keys)
