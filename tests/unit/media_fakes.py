"""Test doubles for decoded-media tests: a clock ticked by hand, a transport that keeps
what is sent, and RTP packets of audio for a leg's ``datagram_received``."""

from __future__ import annotations

from typing import Any

import numpy as np

from mediaserver.media.clock import MediaClock, Ticked
from mediaserver.media.g711 import PCMU, Codec
from mediaserver.media.leg import RtpLeg
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.rtp import RtpPacket, build_rtp, parse_rtp

PEER = ("127.0.0.1", 40000)
TE_PT = 101


class ManualClock(MediaClock):
    """A media clock whose ticks are run by the test, members in insertion order."""

    def add(self, member: Ticked) -> None:
        self._members[member] = None

    def members(self) -> list[Ticked]:
        return list(self._members)

    def step(self, now: float = 0.0, *, reverse: bool = False) -> None:
        self.ticks += 1
        members = list(self._members)
        for member in reversed(members) if reverse else members:
            member.on_tick(now)


class CapturingTransport:
    """What a leg sends, parsed."""

    def __init__(self) -> None:
        self.sent: list[RtpPacket] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append(parse_rtp(data))

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def take(self) -> list[RtpPacket]:
        sent, self.sent = self.sent, []
        return sent


def make_leg(
    clock: MediaClock, codec: Codec = PCMU, te_pt: int | None = TE_PT
) -> tuple[RtpLeg, CapturingTransport, list[str]]:
    digits: list[str] = []
    leg = RtpLeg(
        clock,
        codec,
        payload_type=codec.payload_type,
        telephone_event_pt=te_pt,
        remote=PEER,
        on_digit=digits.append,
    )
    transport = CapturingTransport()
    leg.connection_made(transport)  # type: ignore[arg-type]
    return leg, transport, digits


class RtpSource:
    """The peer's audio stream: one packet per 20 ms frame."""

    def __init__(self, codec: Codec = PCMU, ssrc: int = 0x5EED) -> None:
        self.codec = codec
        self.ssrc = ssrc
        self.seq = 100
        self.ts = 8000

    def packet(self, frame: Pcm) -> bytes:
        data = build_rtp(
            self.codec.payload_type, self.seq, self.ts, self.ssrc, self.codec.encode(frame)
        )
        self.seq += 1
        self.ts += len(frame)
        return data

    def send(self, leg: RtpLeg, frame: Pcm) -> None:
        leg.datagram_received(self.packet(frame), PEER)


def sine(hz: float | tuple[float, ...], seconds: float, peak: float = 8000.0) -> Pcm:
    freqs = (hz,) if isinstance(hz, float | int) else hz
    t = np.arange(round(seconds * 8000)) / 8000
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) * peak / len(freqs)
    return np.round(wave).astype(np.int16)


def frames(audio: Pcm) -> list[Pcm]:
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio), FRAME_SAMPLES)]
