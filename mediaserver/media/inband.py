"""In-band DTMF detection: Goertzel filters on decoded audio, with ITU-T Q.24 acceptance rules.

Theory of operation
-------------------
A peer that does not send RFC 4733 telephone-events still sends its key presses, as the
two tones of ITU-T Q.23 (one of four "row" frequencies, 697-941 Hz, plus one of four
"column" frequencies, 1209-1633 Hz) inside the audio. ``DtmfDetector`` finds them in the
decoded 8 kHz PCM of a leg, one 20 ms frame per media tick, and reports each press once.

Analysis. Every 10 ms (80 samples) an analysis window of the last 20 ms (160 samples)
completes, so a 20 ms frame yields two windows. Each window is looked at in two ways,
both made of single-frequency DFT terms, which is what a Goertzel filter computes:

* the selective view: the whole window through a 160-sample Hamming window, at the 8
  DTMF frequencies and at their 8 second harmonics. A neighbouring row frequency (73 Hz
  away or more) comes out at least 17 dB down, the other group (268 Hz away or more)
  40 dB down. It names the winner of each group and measures the runner-up and the
  harmonics; as a first stage it also drops every window whose best row and column do
  not hold half its power, which is where nearly all speech stops;
* the segments, for the windows that pass: three overlapping 80-sample Hamming segments
  at 0, 5 and 10 ms into the window, at the 8 fundamentals. A tone at f0 + d turns by
  2*pi*d*T between segments T apart, so the phase step between the first and the last
  segment (10 ms) measures each tone's frequency to well under 1 Hz, and the steps
  between neighbours (5 ms, unambiguous within +-100 Hz) resolve which multiple of
  100 Hz the long step wrapped by. Their magnitudes give each tone's level (within
  0.5 dB anywhere inside the accepted band, as an 80-sample main lobe is broad) and show
  whether the tone is steady: a window only partly covered by a tone has unequal
  segments and is not counted, which is what makes the duration rule exact.

The DFT terms come from matrix products of 10 ms hops and 5 ms quarters with fixed
basis matrices, over every window of every leg at once (``feed_many``), never from a
Python loop over samples; a quiet frame costs one dot product.

A window is a *hit* for a key when every rule below holds. A press needs two consecutive
hit windows, and ends after four windows without it; it is reported once, when it ends
(as an RFC 4733 event is), or at once when another key has been held for two windows.

Acceptance rules
----------------
ITU-T Q.24 tabulates, per administration, "operate" limits (must be accepted) and
"non-operate" limits (must be rejected); in between a receiver may do either. We take
the values most administrations share there. Each of our thresholds sits in that
don't-care band, so both limits hold with the measurement error to spare:

=========================  ===============  ===============  =============================
rule                       accepted         rejected         threshold
=========================  ===============  ===============  =============================
frequency deviation        <= 1.5 %         >= 3.5 %         2.0 % of nominal
tone duration              >= 40 ms         <= 23 ms         2 steady 20 ms windows, 10 ms
                                                             apart (25-35 ms, by where
                                                             the tone falls)
interruption (bridged)     <= 10 ms                          under 4 windows missed
pause between presses      >= 40 ms                          4 windows missed
level of each tone         >= -30 dBm0      <= -35 dBm0      -33 dBm0
overload: peak of the      <= full scale    >= +1.2 dB over  +0.6 dB over full scale
pair (two -3 dBm0 tones)   (-3 dBm0 each)   (-1 dBm0 each)
twist, high over low       <= 4 dB          >= 6 dB          5 dB
twist, low over high       <= 8 dB          >= 10 dB         9 dB
=========================  ===============  ===============  =============================

* Frequency, duration, interruption, pause and twist are Q.24's common values: 1.5 % /
  3.5 %; 40 ms / 23 ms; interruptions up to 10 ms bridged; pauses from 40 ms honoured;
  twist +4 dB / -8 dB, i.e. the high group at most 4 dB above the low group and the low
  group at most 8 dB above the high group. The 2.0 % threshold sits nearer the accept
  limit than halfway because the speech harmonics that pass every other rule mostly
  lie 2-3.5 % off a DTMF frequency (measured on espeak-ng speech).
* Level: dBm0 maps to PCM through G.711's full-scale sine, +3.17 dBm0
  (``tones.DBM0_TO_DBFS``). The floor, -30 dBm0 per tone, is below the lowest operate
  levels Q.24 lists (around -25 dBm), for extra network loss, and far above its
  non-operate level (-55 dBm). At the top, two -3 dBm0 tones already peak at 98 % of
  full scale: G.711 cannot carry a louder pair undistorted, so a pair whose measured
  amplitudes add up to more than full scale (+0.6 dB for measurement error) has been
  clipped and is refused.

Talk-off (speech or music taken for a key) is kept out by what a key press has and a
voice does not. Q.24 gives no figures for these, so the numbers are ours, tuned on 29
minutes of espeak-ng speech (8 voices at 4 pitches, each at three levels: no key at
all) and on chords:

* energy concentration: the two tones carry at least 80 % of the window's power (a
  pure pair gives 100 %, a pair with white noise 10 dB below it about 90 %);
* runner-up: in each group the second strongest frequency at least 8 dB below the
  winner (a true tone 1.5 % off leaves its neighbour 12 dB or more below);
* second harmonic: the power at twice each tone's frequency at least 15 dB below the
  tone (voiced speech is a harmonic series). Skipped for the row tone where twice its
  frequency lies within 120 Hz of the column tone (2 x 697 Hz = 1394 Hz next to
  1336 Hz, for example): there the column tone itself fills that filter;
* steadiness: each tone's level in the three segments within 2 dB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from mediaserver.media.pcm import SAMPLE_RATE, Pcm
from mediaserver.media.tones import DBM0_TO_DBFS, FULL_SCALE

__all__ = [
    "COLUMN_HZ",
    "KEYPAD",
    "ROW_HZ",
    "DtmfDetector",
    "dtmf_key_frequencies",
]

# ITU-T Q.23 Figure 1: the low ("row") and high ("column") frequency groups and the keypad.
ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMN_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
_KEYS = "".join(KEYPAD)  # key index = 4 * row + column

_F64: TypeAlias = npt.NDArray[np.float64]

_HOP = 80  # a new analysis window every 10 ms
_WINDOW = 160  # each window spans 20 ms
_SEGMENT = 80  # three 10 ms segments per window ...
_SEGMENT_HOP = 40  # ... 5 ms apart

# Q.24: accept within 1.5 %, reject from 3.5 % (why 2.0 %: see the docstring).
_MAX_DEVIATION = 0.020
# Q.24 twist +4 dB / -8 dB, plus 1 dB for measurement error.
_MAX_HIGH_OVER_LOW_DB = 5.0
_MAX_LOW_OVER_HIGH_DB = 9.0
# Between the accepted -30 dBm0 and the rejected -35 dBm0 per tone.
_MIN_LEVEL_DBM0 = -33.0
# G.711 carries at most a full-scale peak; the pair's amplitudes may add up to 0.6 dB more.
_MAX_PEAK_DB = 0.6
# Talk-off guards (ours; see the docstring).
_MIN_CONCENTRATION = 0.80
_MIN_RUNNER_UP_DB = 8.0
_MIN_HARMONIC_DB = 15.0
_MAX_UNSTEADY_DB = 2.0
_HARMONIC_GUARD_HZ = 120.0
# First stage: the best row and column must hold this share of the power to look further.
_SCREEN_CONCENTRATION = 0.5
# Q.24 timing in 10 ms windows: two steady hit windows need 25-35 ms of tone (by where it
# falls), so 40 ms always gives them and 23 ms never; 4 missed windows end a press (a
# 40 ms pause always misses at least 5, a 10 ms interruption at most 3).
_MIN_HIT_WINDOWS = 2
_END_MISS_WINDOWS = 4


def _dft_basis(frequencies: _F64, shape: _F64) -> _F64:
    """The real matrix mapping a block to its windowed DFT terms: cosine columns, then sine.

    Column pair k gives the real and imaginary part of sum(x[n] w[n] e^(-j 2 pi f_k n / fs)),
    exactly what a Goertzel filter at f_k gives at the end of the block.
    """
    n = np.arange(len(shape), dtype=np.float64)[:, None]
    phase = 2.0 * np.pi * frequencies[None, :] * n / SAMPLE_RATE
    return np.concatenate([shape[:, None] * np.cos(phase), -shape[:, None] * np.sin(phase)], 1)


def _by_halves(basis: _F64) -> _F64:
    """``basis`` cut into its first and second half of rows, placed side by side.

    A block is two halves; multiplying every half-block once by this matrix and adding
    the left result of part h to the right result of part h + 1 gives block h. So
    overlapping blocks need neither strided copies nor repeated products.
    """
    top, bottom = np.split(basis, 2, axis=0)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=1))


_FREQUENCIES = np.array(ROW_HZ + COLUMN_HZ)
_TONES = len(_FREQUENCIES)
_PROBES = 2 * _TONES  # the fundamentals, then their second harmonics
_WINDOW_SHAPE = np.hamming(_WINDOW)
_SEGMENT_SHAPE = np.hamming(_SEGMENT)
_WINDOW_BASIS = _by_halves(
    _dft_basis(np.concatenate([_FREQUENCIES, 2 * _FREQUENCIES]), _WINDOW_SHAPE)
)
_SEGMENT_BASIS = _by_halves(_dft_basis(_FREQUENCIES, _SEGMENT_SHAPE))
for _basis in (_WINDOW_BASIS, _SEGMENT_BASIS):
    _basis.setflags(write=False)
# Peak amplitude of a sine from the magnitude of its windowed DFT term.
_WINDOW_GAIN = 2.0 / float(_WINDOW_SHAPE.sum())
_SEGMENT_GAIN = 2.0 / float(_SEGMENT_SHAPE.sum())
# Take away the nominal frequency's own turn between segments, leaving the deviation's.
_UNTURN_LONG = np.exp(-2j * np.pi * _FREQUENCIES * 2 * _SEGMENT_HOP / SAMPLE_RATE)
_UNTURN_SHORT = np.exp(-2j * np.pi * _FREQUENCIES * _SEGMENT_HOP / SAMPLE_RATE)
_HZ_PER_RADIAN_LONG = SAMPLE_RATE / (2.0 * np.pi * 2 * _SEGMENT_HOP)
_HZ_PER_RADIAN_SHORT = SAMPLE_RATE / (2.0 * np.pi * _SEGMENT_HOP)
_LONG_WRAP_HZ = SAMPLE_RATE / (2 * _SEGMENT_HOP)  # the long step reads the same every 100 Hz
_MAX_DEVIATION_HZ = _MAX_DEVIATION * _FREQUENCIES
_GROUP_START = np.array([0, 4])  # index of each group's first tone


def _from_db(db: float) -> float:
    return float(10.0 ** (db / 20.0))


# G.711: a full-scale sine is +3.17 dBm0.
_MIN_AMPLITUDE = FULL_SCALE * _from_db(_MIN_LEVEL_DBM0 + DBM0_TO_DBFS)
_MAX_PEAK = FULL_SCALE * _from_db(_MAX_PEAK_DB)
# Below this mean power no window holds two tones at the floor level: nothing to analyse.
_POWER_FLOOR = 0.5 * _MIN_AMPLITUDE**2
_HIGH_OVER_LOW = _from_db(_MAX_HIGH_OVER_LOW_DB)
_LOW_OVER_HIGH = _from_db(_MAX_LOW_OVER_HIGH_DB)
_RUNNER_UP_POWER = _from_db(-_MIN_RUNNER_UP_DB) ** 2
_HARMONIC_POWER = _from_db(-_MIN_HARMONIC_DB) ** 2
_UNSTEADY = _from_db(-_MAX_UNSTEADY_DB)
# (row, column): whether the row tone's harmonic filter is clear of the column tone.
_ROW_HARMONIC_CLEAR = (
    np.abs(2.0 * np.array(ROW_HZ)[:, None] - np.array(COLUMN_HZ)[None, :]) >= _HARMONIC_GUARD_HZ
)


def dtmf_key_frequencies(key: str) -> tuple[float, float]:
    """The (row, column) frequencies in Hz of a DTMF key ``0-9``, ``*``, ``#``, ``A-D``."""
    index = _KEYS.find(key.upper()) if len(key) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF key: {key!r}; keys are 0-9, *, #, A-D")
    return ROW_HZ[index // 4], COLUMN_HZ[index % 4]


def _classify(blocks: _F64) -> npt.NDArray[np.int8]:
    """The key index (0-15) heard in each analysis window, or -1.

    ``blocks`` is (legs, 80 + 80 * k) samples: the last 10 ms already seen, then k new
    10 ms hops; the result is (legs, k), one entry per 20 ms window ending at each hop.
    """
    legs, length = blocks.shape
    count = length // _HOP - 1
    keys = np.full((legs, count), -1, dtype=np.int8)
    if float(np.vdot(blocks, blocks)) < _POWER_FLOOR * _WINDOW:
        return keys  # quiet: no window of any leg can hold a key

    # First stage, every window: energy and the selective view.
    hops = blocks.reshape(legs, count + 1, _HOP)
    hop_energy = (hops * hops).sum(axis=2)
    power = (hop_energy[:, :-1] + hop_energy[:, 1:]) / _WINDOW
    halves = hops @ _WINDOW_BASIS
    terms = halves[:, :-1, : 2 * _PROBES] + halves[:, 1:, 2 * _PROBES :]
    spectrum = terms[..., :_PROBES] ** 2 + terms[..., _PROBES:] ** 2  # |DFT term|^2
    best = spectrum[..., :4].max(axis=-1) + spectrum[..., 4:_TONES].max(axis=-1)
    screened = (power >= _POWER_FLOOR) & (
        best * (0.5 * _WINDOW_GAIN**2) >= _SCREEN_CONCENTRATION * power
    )
    found = np.flatnonzero(screened)
    if found.size == 0:
        return keys

    # Second stage, on the screened windows only, flattened over legs and windows; the
    # winning row and column of each are its two "tones" (n, 2).
    spectrum = spectrum.reshape(-1, _PROBES)[found]
    power = power.reshape(-1)[found]
    each = np.arange(found.size)[:, None]
    groups = spectrum[:, :_TONES].reshape(-1, 2, 4)
    tones = groups.argmax(axis=2) + _GROUP_START
    ranked = np.sort(groups, axis=2)
    best, second = ranked[..., 3], ranked[..., 2]
    harmonic = spectrum[each, _TONES + tones]

    # The three segments of each window (at 0, 5 and 10 ms), from its four 5 ms quarters.
    leg, window = np.divmod(found, count)
    start = leg * length + window * _HOP
    samples = blocks.reshape(-1)[start[:, None] + np.arange(_WINDOW)]
    quarters = samples.reshape(-1, 4, _SEGMENT_HOP) @ _SEGMENT_BASIS
    parts = quarters[:, :-1, : 2 * _TONES] + quarters[:, 1:, 2 * _TONES :]
    segments = (parts[..., :_TONES] + 1j * parts[..., _TONES:])[each, :, tones]  # (n, 2, 3)
    first, middle, last = segments[..., 0], segments[..., 1], segments[..., 2]
    long_step = np.angle(last * first.conj() * _UNTURN_LONG[tones]) * _HZ_PER_RADIAN_LONG
    short_step = np.angle((middle * first.conj() + last * middle.conj()) * _UNTURN_SHORT[tones])
    wraps = np.rint((short_step * _HZ_PER_RADIAN_SHORT - long_step) / _LONG_WRAP_HZ)
    deviation = np.abs(long_step + wraps * _LONG_WRAP_HZ)
    amplitude = np.abs(segments) * _SEGMENT_GAIN
    level = amplitude.sum(axis=2) * (1 / 3)
    low, high = level[:, 0], level[:, 1]
    row, column = tones[:, 0], tones[:, 1] - 4
    hit = (
        (deviation <= _MAX_DEVIATION_HZ[tones]).all(axis=1)
        & (amplitude.min(axis=2) >= _UNSTEADY * amplitude.max(axis=2)).all(axis=1)
        & (second <= _RUNNER_UP_POWER * best).all(axis=1)
        & (level.min(axis=1) >= _MIN_AMPLITUDE)
        & (low + high <= _MAX_PEAK)
        & (high <= _HIGH_OVER_LOW * low)
        & (low <= _LOW_OVER_HIGH * high)
        & (low * low + high * high >= 2.0 * _MIN_CONCENTRATION * power)
        & (harmonic[:, 1] <= _HARMONIC_POWER * best[:, 1])
        & ((harmonic[:, 0] <= _HARMONIC_POWER * best[:, 0]) | ~_ROW_HARMONIC_CLEAR[row, column])
    )
    keys.reshape(-1)[found] = np.where(hit, 4 * row + column, -1)
    return keys


class DtmfDetector:
    """Finds DTMF key presses in one leg's decoded audio and reports each press once.

    Feed it the leg's 8 kHz PCM as it is decoded, a 20 ms frame per media tick (any
    length works; analysis runs on whole 10 ms hops). ``feed`` returns the keys whose
    press has just ended, in order.
    """

    def __init__(self) -> None:
        self.windows = 0  # analysis windows seen (one per 10 ms)
        self.hits = 0  # windows that held a key
        self._tail = np.zeros(_HOP, dtype=np.float64)  # the last 10 ms analysed
        self._pending = np.zeros(0, dtype=np.float64)  # samples short of a whole hop
        self._held = -1  # the key being pressed, once it qualified
        self._gap = 0  # windows since the held key was last heard
        self._candidate = -1  # a key heard, not yet for long enough
        self._run = 0  # consecutive windows of the candidate

    @property
    def pressed(self) -> str | None:
        """The key held down now (long enough to count, not yet reported), if any."""
        return _KEYS[self._held] if self._held >= 0 else None

    def feed(self, frame: Pcm) -> list[str]:
        """Analyse the leg's next audio; return the keys whose press just ended."""
        size = self._pending.size + len(frame)
        usable = size - size % _HOP
        blocks = np.empty(_HOP + usable, dtype=np.float64)
        blocks[:_HOP] = self._tail
        if self._pending.size or usable != len(frame):
            joined = np.concatenate([self._pending, np.asarray(frame, dtype=np.float64)])
            blocks[_HOP:] = joined[:usable]
            self._pending = joined[usable:]
        else:
            blocks[_HOP:] = frame
        if usable == 0:
            return []
        self._tail = blocks[-_HOP:]
        return self._advance(_classify(blocks[None, :])[0])

    @staticmethod
    def feed_many(detectors: Sequence[DtmfDetector], frames: Sequence[Pcm]) -> list[list[str]]:
        """``feed`` for several legs in one go: one set of matrix products for all of them.

        ``frames[i]`` goes to ``detectors[i]``; the result lists each detector's keys.
        Frames of unequal length (or not whole 10 ms hops) are fed one by one instead.
        """
        if len(detectors) != len(frames):
            raise ValueError(f"{len(detectors)} detectors but {len(frames)} frames")
        sizes = {len(frame) for frame in frames}
        if (
            len(sizes) != 1
            or next(iter(sizes)) % _HOP
            or any(detector._pending.size for detector in detectors)
        ):
            return [d.feed(f) for d, f in zip(detectors, frames, strict=True)]
        size = next(iter(sizes))
        if size == 0:
            return [[] for _ in detectors]
        blocks = np.empty((len(detectors), _HOP + size), dtype=np.float64)
        for index, (detector, frame) in enumerate(zip(detectors, frames, strict=True)):
            blocks[index, :_HOP] = detector._tail
            blocks[index, _HOP:] = frame
        found = _classify(blocks)
        out = []
        for index, detector in enumerate(detectors):
            detector._tail = blocks[index, -_HOP:]
            out.append(detector._advance(found[index]))
        return out

    def flush(self) -> list[str]:
        """The audio has ended: report a press still held, and start afresh."""
        held = self._held
        self.reset()
        return [_KEYS[held]] if held >= 0 else []

    def reset(self) -> None:
        """Forget the audio heard so far (the counters stay)."""
        self._tail = np.zeros(_HOP, dtype=np.float64)
        self._pending = np.zeros(0, dtype=np.float64)
        self._held, self._gap, self._candidate, self._run = -1, 0, -1, 0

    def _advance(self, keys: npt.NDArray[np.int8]) -> list[str]:
        ended: list[str] = []
        for key in keys.tolist():
            self.windows += 1
            if key >= 0:
                self.hits += 1
            done = self._step(key)
            if done is not None:
                ended.append(done)
        return ended

    def _step(self, key: int) -> str | None:
        """One window heard ``key`` (-1: none); return the key whose press ended, if any."""
        ended = None
        if self._held >= 0:
            if key == self._held:
                self._gap, self._candidate, self._run = 0, -1, 0
                return None
            self._gap += 1
            if self._gap >= _END_MISS_WINDOWS:
                # Q.24: a pause of 40 ms separates two presses.
                ended, self._held = _KEYS[self._held], -1
        if key < 0:
            self._candidate, self._run = -1, 0
        elif key == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = key, 1
        if self._run >= _MIN_HIT_WINDOWS:
            if self._held >= 0:
                # Another key, steady for as long as a press: the previous one has ended.
                ended = _KEYS[self._held]
            self._held, self._gap, self._candidate, self._run = self._candidate, 0, -1, 0
        return ended
