"""G.711 against the sox reference vectors in codecs/g711/ (see codecs/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from mediaserver.media.g711 import (
    CODECS,
    PCMA,
    PCMU,
    Codec,
    alaw_decode,
    alaw_encode,
    silence_payload,
    ulaw_decode,
    ulaw_encode,
)

VECTORS = Path(__file__).parents[2] / "codecs" / "g711"

Encoder = Callable[[NDArray[np.int16]], bytes]
Decoder = Callable[[bytes], NDArray[np.int16]]


def _s16(name: str) -> NDArray[np.int16]:
    return np.frombuffer((VECTORS / name).read_bytes(), dtype="<i2").astype(np.int16)


@pytest.fixture(scope="module")
def ramp() -> NDArray[np.int16]:
    samples = _s16("ramp.s16")
    # The input file itself: every int16 value once, in order.
    assert np.array_equal(samples, np.arange(-32768, 32768, dtype=np.int16))
    return samples


@pytest.fixture(scope="module")
def codes() -> bytes:
    data = (VECTORS / "codes.u8").read_bytes()
    assert data == bytes(range(256))
    return data


@pytest.mark.parametrize(
    ("encode", "reference"), [(ulaw_encode, "ramp.ulaw"), (alaw_encode, "ramp.alaw")]
)
def test_encode_matches_sox_for_every_sample(
    ramp: NDArray[np.int16], encode: Encoder, reference: str
) -> None:
    expected = np.frombuffer((VECTORS / reference).read_bytes(), dtype=np.uint8)
    got = np.frombuffer(encode(ramp), dtype=np.uint8)
    assert len(got) == 65536
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, f"first mismatching samples: {ramp[mismatches[:8]].tolist()}"


@pytest.mark.parametrize(
    ("decode", "reference"), [(ulaw_decode, "codes-ulaw.s16"), (alaw_decode, "codes-alaw.s16")]
)
def test_decode_matches_sox_for_every_code(codes: bytes, decode: Decoder, reference: str) -> None:
    got = decode(codes)
    assert got.dtype == np.int16
    assert got.tolist() == _s16(reference).tolist()


@pytest.mark.parametrize(
    ("decode", "step", "peak"), [(ulaw_decode, 4, 32124), (alaw_decode, 8, 32256)]
)
def test_decode_values_are_g711_reconstruction_levels(
    codes: bytes, decode: Decoder, step: int, peak: int
) -> None:
    values = decode(codes).astype(np.int32)
    assert np.all(values % step == 0)
    assert values.max() == peak
    assert values.min() == -peak
    # Mu-law has two zero codes (+0 and -0), so 255 distinct levels; A-law has 256.
    assert len(np.unique(values)) == (255 if step == 4 else 256)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_round_trip_is_stable(codes: bytes, encode: Encoder, decode: Decoder) -> None:
    # A reconstruction level encodes back to a code with the same level.
    levels = decode(codes)
    assert decode(encode(levels)).tolist() == levels.tolist()


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_encoding_is_monotonic(ramp: NDArray[np.int16], encode: Encoder, decode: Decoder) -> None:
    levels = decode(encode(ramp)).astype(np.int32)
    assert np.all(np.diff(levels) >= 0)


def test_known_codes() -> None:
    samples = np.array([0, 32767, -32768, -1, -2, -3], dtype=np.int16)
    # Mu-law zero is 0xFF (all bits inverted), the extremes 0x80 and 0x00; sox rounds -1 and
    # -2 to zero (a truncating encoder gives 0x7F) and -3 to -1 (0x7E).
    assert ulaw_encode(samples) == bytes([0xFF, 0x80, 0x00, 0xFF, 0xFF, 0x7E])
    # A-law zero is 0xD5 (sign bit set, even bits inverted), the extremes 0xAA and 0x2A.
    assert alaw_encode(samples) == bytes([0xD5, 0xAA, 0x2A, 0xD5, 0xD5, 0xD5])


def test_encode_accepts_strided_views() -> None:
    stereo = np.arange(-3200, 3200, 10, dtype=np.int16).reshape(-1, 2)
    left = stereo[:, 0]
    assert ulaw_encode(left) == ulaw_encode(left.copy())
    assert alaw_encode(left) == alaw_encode(left.copy())


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.dtype(">i2")])
def test_encode_refuses_other_sample_types(dtype: np.dtype[np.generic]) -> None:
    wrong = np.zeros(4, dtype=dtype)
    with pytest.raises(TypeError):
        ulaw_encode(wrong)
    with pytest.raises(TypeError):
        alaw_encode(wrong)


def test_decode_returns_a_writable_copy() -> None:
    pcm = ulaw_decode(b"\x00\x80")
    pcm[0] = 1  # must not touch the shared table
    assert ulaw_decode(b"\x00\x80").tolist() == [-32124, 32124]


def test_empty_frames() -> None:
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert alaw_decode(b"").size == 0


def test_codec_registry() -> None:
    assert CODECS == {"PCMU": PCMU, "PCMA": PCMA}
    assert (PCMU.payload_type, PCMU.clock_rate) == (0, 8000)
    assert (PCMA.payload_type, PCMA.clock_rate) == (8, 8000)
    assert PCMU.encode is ulaw_encode and PCMU.decode is ulaw_decode
    assert PCMA.encode is alaw_encode and PCMA.decode is alaw_decode


# A-law has no zero level: its silence code decodes to the smallest step, +8.
@pytest.mark.parametrize(("codec", "byte", "level"), [(PCMU, 0xFF, 0), (PCMA, 0xD5, 8)])
def test_silence_payload(codec: Codec, byte: int, level: int) -> None:
    frame = silence_payload(codec)
    assert frame == bytes([byte]) * 160
    assert codec.decode(frame).tolist() == [level] * 160
    assert silence_payload(codec, 80) == bytes([byte]) * 80
    assert silence_payload(codec) is frame  # cached: built once per codec and size


def test_silence_payload_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError):
        silence_payload(PCMU, -1)
