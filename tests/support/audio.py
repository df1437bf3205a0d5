"""Audio helpers for assertions on what a test peer heard.

Conventions:
- Samples are float64 NumPy arrays in [-1, 1], mono.
- Levels are dBFS of the RMS, where an RMS of 1.0 is 0 dBFS: a full-scale
  sine is -3 dBFS, silence is floored at -120 dBFS.
- Frequencies are measured with the Goertzel algorithm (one DFT term at an
  exact frequency), so no FFT-bin rounding is involved.

Input files for peers (``make_*_wav``) are 16-bit PCM mono WAV, 8 kHz by
default: what baresip's ``aufile`` source and G.711 want.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

Samples = npt.NDArray[np.float64]

SILENCE_DBFS = -120.0

# ITU-T Q.23: rows (low group) and columns (high group).
DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
DTMF_FREQS: dict[str, tuple[float, float]] = {
    key: (DTMF_ROWS[r], DTMF_COLS[c])
    for r, row in enumerate(DTMF_KEYS)
    for c, key in enumerate(row)
}


# ---------------------------------------------------------------- reading


def _read_unfinished_wav(path: Path) -> tuple[Samples, int]:
    """Read a PCM WAV whose header sizes were never filled in.

    baresip's sndfile module writes the RIFF/data sizes only when the call
    ends, so while a call runs its WAVs claim 0 frames: read the fmt chunk
    and take everything after the data chunk header as samples.
    """
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    channels = rate = bits = fmt_tag = 0
    while pos + 8 <= len(raw):
        chunk_id = raw[pos : pos + 4]
        size = struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt_tag, channels, rate = struct.unpack("<HHI", raw[body : body + 8])
            bits = struct.unpack("<H", raw[body + 14 : body + 16])[0]
        elif chunk_id == b"data":
            if fmt_tag != 1 or bits != 16 or channels < 1:
                raise ValueError(f"{path}: only 16-bit PCM is supported here")
            data = raw[body:]
            usable = len(data) - len(data) % (2 * channels)
            ints = np.frombuffer(data[:usable], dtype="<i2").astype(np.float64) / 32768.0
            return to_mono(ints.reshape(-1, channels)), rate
        pos = body + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def to_mono(samples: npt.ArrayLike) -> Samples:
    """Average the channels of a (frames, channels) array; 1-D stays as is."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr.mean(axis=1)
    return arr


def read_mono(path: str | Path) -> tuple[Samples, int]:
    """Samples (float64 in [-1, 1], channels averaged) and sample rate of a file.

    Works on WAVs still being written (header sizes not yet filled in).
    """
    path = Path(path)
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        return _read_unfinished_wav(path)
    if len(data) == 0 and path.stat().st_size > 44:
        return _read_unfinished_wav(path)
    return to_mono(data), int(rate)


def write_wav(path: str | Path, samples: npt.ArrayLike, rate: int = 8000) -> Path:
    """Write mono float samples as 16-bit PCM WAV (clipped to [-1, 1])."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    sf.write(str(path), arr, rate, subtype="PCM_16")
    return path


# ---------------------------------------------------------------- levels


def dbfs(samples: npt.ArrayLike) -> float:
    """RMS level of the whole signal in dBFS."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(arr * arr)))
    return max(SILENCE_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


def energy_envelope(samples: npt.ArrayLike, rate: int, window_s: float = 0.02) -> Samples:
    """RMS level in dBFS of each consecutive ``window_s`` window (last partial dropped)."""
    arr = np.asarray(samples, dtype=np.float64)
    n = max(1, round(window_s * rate))
    frames = len(arr) // n
    if frames == 0:
        return np.zeros(0)
    blocks = arr[: frames * n].reshape(frames, n)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    with np.errstate(divide="ignore"):
        levels = 20.0 * np.log10(rms)
    return np.asarray(np.maximum(levels, SILENCE_DBFS), dtype=np.float64)


def active_intervals(
    samples: npt.ArrayLike,
    rate: int,
    threshold_dbfs: float = -40.0,
    window_s: float = 0.02,
    merge_gap_s: float = 0.1,
) -> list[tuple[float, float]]:
    """(start_s, end_s) of the stretches louder than ``threshold_dbfs``.

    Stretches separated by less than ``merge_gap_s`` of quiet are merged
    (the pauses between words are not silences).
    """
    env = energy_envelope(samples, rate, window_s)
    loud = env > threshold_dbfs
    intervals: list[tuple[float, float]] = []
    start: int | None = None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            intervals.append((start * window_s, i * window_s))
            start = None
    if start is not None:
        intervals.append((start * window_s, len(loud) * window_s))
    merged: list[tuple[float, float]] = []
    for begin, end in intervals:
        if merged and begin - merged[-1][1] < merge_gap_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged


def active_seconds(
    samples: npt.ArrayLike,
    rate: int,
    threshold_dbfs: float = -40.0,
    window_s: float = 0.02,
) -> float:
    """Total time (s) of the windows louder than ``threshold_dbfs``."""
    env = energy_envelope(samples, rate, window_s)
    return float(np.count_nonzero(env > threshold_dbfs)) * window_s


def speech_seconds(
    samples: npt.ArrayLike,
    rate: int,
    threshold_dbfs: float = -40.0,
    window_s: float = 0.02,
) -> float:
    """Time (s) with speech-band energy above ``threshold_dbfs``.

    Like :func:`active_seconds` after removing what speech never carries
    and G.711 paths add (DC offset, hum below 200 Hz), so a quiet line with
    an offset or mains hum does not count as talking.
    """
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return 0.0
    spectrum = np.fft.rfft(arr)
    freqs = np.fft.rfftfreq(len(arr), 1.0 / rate)
    spectrum[(freqs < 200.0) | (freqs > 4000.0)] = 0
    band = np.fft.irfft(spectrum, n=len(arr))
    return active_seconds(band, rate, threshold_dbfs, window_s)


# ---------------------------------------------------------------- tones


def goertzel_power(samples: npt.ArrayLike, rate: int, freq: float) -> float:
    """Mean-square power of the ``freq`` component of ``samples``.

    Normalised so that a sine of amplitude A at ``freq`` gives A**2 / 2,
    its own mean square, whatever the length: compare it with
    ``mean(samples**2)`` to know which share of the energy is at ``freq``.
    """
    arr = np.asarray(samples, dtype=np.float64)
    n = len(arr)
    if n == 0:
        return 0.0
    phase = np.exp(-2j * np.pi * freq * np.arange(n) / rate)
    amplitude = 2.0 * abs(np.dot(arr, phase)) / n
    return float(amplitude * amplitude / 2.0)


def dominant_frequency(
    samples: npt.ArrayLike, rate: int, fmin: float = 50.0, fmax: float | None = None
) -> float:
    """Frequency (Hz) of the strongest spectral peak between ``fmin`` and ``fmax``.

    Hann window, 8x zero padding and a parabolic fit on the peak: good to
    about 1 Hz on a second of a clean tone.
    """
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size < 4:
        raise ValueError("need at least 4 samples")
    arr = arr - arr.mean()
    size = 8 * len(arr)
    mag = np.abs(np.fft.rfft(arr * np.hanning(len(arr)), n=size))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    top = rate / 2.0 if fmax is None else fmax
    mag[(freqs < fmin) | (freqs > top)] = 0
    k = int(np.argmax(mag))
    if 0 < k < len(mag) - 1 and mag[k] > 0:
        a, b, c = np.log(mag[k - 1 : k + 2] + 1e-300)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
        return float((k + shift) * rate / size)
    return float(freqs[k])


def _windows(arr: Samples, n: int, hop: int) -> list[Samples]:
    return [arr[i : i + n] for i in range(0, len(arr) - n + 1, hop)]


def tone_seconds(
    samples: npt.ArrayLike,
    rate: int,
    freqs: float | Sequence[float],
    *,
    window_s: float = 0.05,
    min_share: float = 0.6,
    min_dbfs: float = -45.0,
) -> float:
    """Longest unbroken stretch (s) where the tone ``freqs`` dominates.

    A window "has the tone" when it is louder than ``min_dbfs`` and the
    components at ``freqs`` (several for dual tones such as ringback
    440+480 Hz) carry at least ``min_share`` of its energy. Windows of 50 ms
    tell apart tones 40 Hz or more apart.
    """
    arr = np.asarray(samples, dtype=np.float64)
    targets = [float(freqs)] if isinstance(freqs, int | float) else [float(f) for f in freqs]
    n = max(8, round(window_s * rate))
    hop = max(1, n // 2)
    best = run = 0
    floor = 10.0 ** (min_dbfs / 10.0)
    for window in _windows(arr, n, hop):
        total = float(np.mean(window * window))
        share = sum(goertzel_power(window, rate, f) for f in targets) / total if total else 0.0
        if total > floor and share >= min_share:
            run += 1
            best = max(best, run)
        else:
            run = 0
    if best == 0:
        return 0.0
    return (n + (best - 1) * hop) / rate


def tone_present(
    samples: npt.ArrayLike,
    rate: int,
    freqs: float | Sequence[float],
    min_seconds: float,
    *,
    window_s: float = 0.05,
    min_share: float = 0.6,
    min_dbfs: float = -45.0,
) -> bool:
    """Whether the tone ``freqs`` is heard unbroken for at least ``min_seconds``."""
    found = tone_seconds(
        samples, rate, freqs, window_s=window_s, min_share=min_share, min_dbfs=min_dbfs
    )
    return found >= min_seconds


# ---------------------------------------------------------------- DTMF


def _dtmf_key(block: Samples, rate: int, min_dbfs: float, max_twist_db: float) -> str | None:
    """The DTMF key sounding in one block, or None."""
    total = float(np.mean(block * block))
    if total <= 10.0 ** (min_dbfs / 10.0):
        return None
    rows = [goertzel_power(block, rate, f) for f in DTMF_ROWS]
    cols = [goertzel_power(block, rate, f) for f in DTMF_COLS]
    r = int(np.argmax(rows))
    c = int(np.argmax(cols))
    row, col = rows[r], cols[c]
    # Both tones together carry most of the energy: rejects speech and noise.
    if row + col < 0.7 * total:
        return None
    # Twist: the two tones within max_twist_db of each other.
    if row <= 0 or col <= 0 or abs(10.0 * np.log10(row / col)) > max_twist_db:
        return None
    # The winner in each group clearly above the runner-up.
    others_r = sorted(rows)[-2]
    others_c = sorted(cols)[-2]
    if others_r > row * 0.25 or others_c > col * 0.25:
        return None
    return DTMF_KEYS[r][c]


def detect_dtmf(
    samples: npt.ArrayLike,
    rate: int,
    *,
    block_s: float = 0.03,
    min_blocks: int = 2,
    min_dbfs: float = -40.0,
    max_twist_db: float = 8.0,
) -> str:
    """The DTMF keys (``0-9*#A-D``) heard in ``samples``, in order.

    Goertzel on the eight DTMF frequencies over ``block_s`` blocks with a
    half-block hop. A key counts once it is seen in ``min_blocks``
    consecutive blocks (about 45 ms with the defaults) and again only after
    a block without it, so one long press is one key and "11" needs a gap.
    """
    arr = np.asarray(samples, dtype=np.float64)
    n = max(16, round(block_s * rate))
    hop = max(1, n // 2)
    keys: list[str] = []
    current: str | None = None
    count = 0
    reported = False
    for block in _windows(arr, n, hop):
        key = _dtmf_key(block, rate, min_dbfs, max_twist_db)
        if key is not None and key == current:
            count += 1
        else:
            current, count, reported = key, (1 if key else 0), False
        if current is not None and not reported and count >= min_blocks:
            keys.append(current)
            reported = True
    return "".join(keys)


# ---------------------------------------------------------------- making files


def tone(
    freqs: float | Sequence[float], seconds: float, rate: int = 8000, amplitude: float = 0.5
) -> Samples:
    """A sum of sines, ``amplitude`` being the peak of the sum."""
    targets = [float(freqs)] if isinstance(freqs, int | float) else [float(f) for f in freqs]
    t = np.arange(round(seconds * rate)) / rate
    out = np.zeros_like(t)
    for f in targets:
        out += np.sin(2 * np.pi * f * t)
    return np.asarray(out * (amplitude / max(1, len(targets))), dtype=np.float64)


def silence(seconds: float, rate: int = 8000) -> Samples:
    return np.zeros(round(seconds * rate))


def make_tone_wav(
    path: str | Path,
    freqs: float | Sequence[float],
    seconds: float,
    rate: int = 8000,
    *,
    amplitude: float = 0.5,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Path:
    """WAV of a tone (one or several frequencies), with optional silence around it."""
    samples = np.concatenate(
        [silence(lead_s, rate), tone(freqs, seconds, rate, amplitude), silence(tail_s, rate)]
    )
    return write_wav(path, samples, rate)


def make_silence_wav(path: str | Path, seconds: float, rate: int = 8000) -> Path:
    return write_wav(path, silence(seconds, rate), rate)


def dtmf_samples(
    digits: str,
    *,
    rate: int = 8000,
    tone_s: float = 0.1,
    gap_s: float = 0.1,
    amplitude: float = 0.5,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Samples:
    """In-band DTMF for ``digits`` (``,`` is a pause of ``tone_s + gap_s``)."""
    parts = [silence(lead_s, rate)]
    for d in digits.upper():
        if d == ",":
            parts.append(silence(tone_s + gap_s, rate))
            continue
        if d not in DTMF_FREQS:
            raise ValueError(f"not a DTMF key: {d!r} (use 0-9 * # A-D, or ',' for a pause)")
        parts.append(tone(DTMF_FREQS[d], tone_s, rate, amplitude))
        parts.append(silence(gap_s, rate))
    parts.append(silence(tail_s, rate))
    return np.concatenate(parts)


def make_dtmf_wav(
    path: str | Path,
    digits: str,
    *,
    rate: int = 8000,
    tone_s: float = 0.1,
    gap_s: float = 0.1,
    amplitude: float = 0.5,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Path:
    """WAV of in-band DTMF ``digits``: each tone ``tone_s`` then ``gap_s`` silence."""
    samples = dtmf_samples(
        digits,
        rate=rate,
        tone_s=tone_s,
        gap_s=gap_s,
        amplitude=amplitude,
        lead_s=lead_s,
        tail_s=tail_s,
    )
    return write_wav(path, samples, rate)


def _run_tool(args: list[str], timeout: float = 60.0) -> None:
    if shutil.which(args[0]) is None:
        raise RuntimeError(f"{args[0]} is not installed (Debian package: see scripts/setup)")
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")


def convert_wav(src: str | Path, dst: str | Path, rate: int = 8000) -> Path:
    """Any audio file sox reads -> 16-bit mono WAV at ``rate`` (sox does the resampling)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _run_tool(["sox", str(src), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed", str(dst)])
    return dst


def make_speech_wav(
    path: str | Path,
    text: str,
    *,
    rate: int = 8000,
    voice: str = "en-us",
    words_per_minute: int = 160,
) -> Path:
    """Speak ``text`` with espeak-ng into a 16-bit mono WAV at ``rate``."""
    with tempfile.TemporaryDirectory(prefix="speech-") as tmp:
        raw = Path(tmp) / "espeak.wav"
        _run_tool(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text])
        return convert_wav(raw, path, rate)


def pad_wav(src: str | Path, dst: str | Path, seconds: float, rate: int = 8000) -> Path:
    """Copy ``src`` to ``dst`` as mono 16-bit at ``rate``, then silence up to ``seconds``.

    Converts with sox when the rate differs. Never cuts: a longer input is
    kept whole.
    """
    samples, src_rate = read_mono(src)
    if src_rate != rate:
        with tempfile.TemporaryDirectory(prefix="pad-") as tmp:
            samples, _ = read_mono(convert_wav(src, Path(tmp) / "converted.wav", rate))
    missing = round(seconds * rate) - len(samples)
    if missing > 0:
        samples = np.concatenate([samples, np.zeros(missing)])
    return write_wav(dst, samples, rate)
