"""Keys the server sends: the per-tick schedule of RFC 4733 events and the in-band audio."""

from __future__ import annotations

import numpy as np
import pytest

from mediaserver.media.dtmf import decode_event
from mediaserver.media.dtmf_out import (
    GAP_SECONDS,
    check_keys,
    event_steps,
    inband_audio,
    timeline_seconds,
)
from mediaserver.media.inband import DtmfDetector, dtmf_key_frequencies


def test_keys_and_pauses_are_checked() -> None:
    assert check_keys("0123456789*#ABCDwW") == "0123456789*#ABCDwW"
    with pytest.raises(ValueError, match="'x' is not a DTMF key or a pause"):
        check_keys("12x")
    with pytest.raises(ValueError, match="no keys"):
        check_keys("")
    with pytest.raises(ValueError, match="duration"):
        event_steps("1", 0.01)


def test_each_key_is_its_events_then_the_gap_in_ticks() -> None:
    steps = event_steps("5", 0.1)
    assert len(steps) == round((0.1 + GAP_SECONDS) / 0.02)
    events = [step for step in steps if step is not None]
    assert [first for _, first in events] == [True] + [False] * 6
    decoded = [decode_event(payload) for payload, _ in events]
    assert {e.event for e in decoded} == {5}
    assert [e.end for e in decoded] == [False] * 4 + [True] * 3
    assert steps[7:] == [None, None, None]


@pytest.mark.parametrize(("keys", "seconds"), [("1w2", 0.9), ("W", 1.0), ("12", 0.4)])
def test_both_timelines_last_the_same(keys: str, seconds: float) -> None:
    assert timeline_seconds(keys, 0.1) == pytest.approx(seconds)
    assert len(event_steps(keys, 0.1)) * 0.02 == pytest.approx(seconds)
    assert len(inband_audio(keys, 0.1)) / 8000 == pytest.approx(seconds)


def test_a_long_key_has_more_updates() -> None:
    events = [step for step in event_steps("#", 0.5) if step is not None]
    assert decode_event(events[-1][0]).duration == 4000
    assert len(events) == 24 + 3


def test_in_band_keys_are_the_two_frequencies_at_a_safe_level() -> None:
    audio = inband_audio("9", 0.1)
    tone = audio[:800].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone))))
    freqs = np.fft.rfftfreq(len(tone), 1 / 8000)
    peaks = sorted(freqs[np.argsort(spectrum)[-2:]])
    row, column = dtmf_key_frequencies("9")
    assert peaks[0] == pytest.approx(row, abs=10) and peaks[1] == pytest.approx(column, abs=10)
    assert 10000 < np.max(np.abs(audio)) < 32767
    assert not audio[800:].any()  # the gap is silence


def test_the_in_band_audio_is_read_back_key_by_key() -> None:
    detector = DtmfDetector()
    audio = inband_audio("11w2", 0.05)
    keys = [key for i in range(0, len(audio), 160) for key in detector.feed(audio[i : i + 160])]
    assert "".join(keys + detector.flush()) == "112"
