"""An RTP leg: one call's media socket and what flows through it.

Inbound packets are handled in ``datagram_received``: the header is parsed,
the sender is latched as the peer (symmetric RTP), telephone-events go to the
RFC 4733 receiver, and in echo mode audio is sent straight back with our own
SSRC, sequence and timestamps, never decoded. Outbound audio is paced by the
shared :class:`~mediaserver.media.clock.MediaClock`: each 20 ms tick sends
the next frame of what is playing, or an encoded silence frame while the call
is answered and idle, so the peer's jitter buffer always has a steady stream.

Bad packets (truncated, wrong version, unknown payload types, foreign
sources) are dropped and counted in :attr:`RtpLeg.stats`; nothing received
can raise out of this module. RFC 3550 statistics (loss, jitter, round-trip
time) are kept in :attr:`RtpLeg.rtp_stats` and reported over RTCP by the
leg's :class:`~mediaserver.media.reports.ReportChannel`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from mediaserver.media.clock import MediaClock
from mediaserver.media.dtmf import DtmfReceiver
from mediaserver.media.g711 import Codec, silence_payload, transcode_table
from mediaserver.media.pcm import Pcm
from mediaserver.media.reports import ReportChannel
from mediaserver.media.rtp import RtpError, build_rtp, is_rtcp, parse_rtp
from mediaserver.media.stats import LegStats

CNAME = "mediaserver"
# Counters the RFC 3550 statistics keep too: the snapshot takes theirs.
_COUNTED_BY_STATS = frozenset(("packets_in", "packets_out", "bytes_in", "rtcp_in"))

FRAME_SAMPLES = 160  # 20 ms at 8 kHz


class Playback:
    """One piece of audio being sent, frame by frame, on the media clock."""

    def __init__(self, audio: Pcm) -> None:
        self.audio = audio
        self.position = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def next_frame(self) -> Pcm | None:
        if self.position >= len(self.audio):
            return None
        frame = self.audio[self.position : self.position + FRAME_SAMPLES]
        self.position += FRAME_SAMPLES
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), np.int16)])
        return frame

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class RtpLeg(asyncio.DatagramProtocol):
    """The media side of one call."""

    def __init__(
        self,
        clock: MediaClock,
        codec: Codec,
        *,
        payload_type: int,
        telephone_event_pt: int | None,
        remote: tuple[str, int] | None,
        on_digit: Callable[[str], None],
    ) -> None:
        self.clock = clock
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.remote = remote
        self.on_digit = on_digit
        self.transport: asyncio.DatagramTransport | None = None
        self.local_port = 0
        self.stats: Counter[str] = Counter()
        self.sending = False
        # Where received audio goes without decoding: another leg (a bridge) or this
        # leg itself (echo); and which leg feeds us, while the clock sends nothing here.
        self.relay: RtpLeg | None = None
        self.fed_by: RtpLeg | None = None
        self._relayed_event: tuple[int, int] | None = None  # (their event ts, our event ts)
        self._latched = False
        self._peer: tuple[str, int] | None = None  # the latched source: packets from elsewhere drop
        self._hold = False  # the peer asked for no media (null address): latch but never send
        self._remote_ssrc: int | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._marker = True
        self._playback: Playback | None = None
        self._dtmf = DtmfReceiver()
        self._silence = silence_payload(codec)
        self.rtp_stats = LegStats(self._ssrc)
        self.reports = ReportChannel(self.rtp_stats, CNAME, lambda: self.remote)

    async def open_rtcp(self, host: str, port: int) -> bool:
        """Bind the RTCP socket (RTP port + 1); False when it is taken."""
        return await self.reports.open(host, port)

    # -- asyncio ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        stats = self.stats
        if is_rtcp(data):
            stats["rtcp_in"] += 1
            self.reports.receive(data)  # RFC 5761: RTCP multiplexed on the RTP port
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            stats["malformed"] += 1
            return
        if not self._latched:
            # Symmetric RTP: answer to where the peer's packets come from, not only the SDP.
            self._peer = (addr[0], addr[1])
            self._latched = True
            self._remote_ssrc = packet.ssrc
            if not self._hold:
                self.remote = self._peer
        elif addr != self._peer:
            stats["foreign"] += 1
            return
        stats["packets_in"] += 1
        stats["bytes_in"] += len(packet.payload)
        self.rtp_stats.on_rtp_received(packet, time.time())
        pt = packet.payload_type
        relay = self.relay
        if pt == self.telephone_event_pt:
            loop_time = asyncio.get_running_loop().time()
            for digit in self._dtmf.handle_packet(packet.timestamp, packet.payload, loop_time):
                stats["dtmf_in"] += 1
                self.on_digit(digit.key)
            if relay is not None and relay is not self:
                relay.relay_event(packet.timestamp, packet.payload)
            return
        if pt != self.payload_type:
            stats["unknown_payload_type"] += 1
            return
        if packet.ssrc != self._remote_ssrc:
            self._remote_ssrc = packet.ssrc
            stats["ssrc_changes"] += 1
        if relay is not None:
            relay.relay_audio(packet.payload, self.codec)

    def error_received(self, exc: Exception) -> None:
        self.stats["send_errors"] += 1

    # -- sending -------------------------------------------------------------

    def _send(self, payload: bytes, samples: int) -> None:
        if self.transport is None or self.remote is None:
            return
        data = build_rtp(self.payload_type, self._seq, self._ts, self._ssrc, payload, self._marker)
        self.rtp_stats.on_rtp_sent(self._ts, len(payload), time.time())
        self._marker = False
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + samples) & 0xFFFFFFFF
        self.transport.sendto(data, self.remote)
        self.stats["packets_out"] += 1

    def start(self) -> None:
        """Start sending: the call is answered (or has early media)."""
        if not self.sending:
            self.sending = True
            self.clock.add(self)
            self.reports.start()

    def on_tick(self, now: float) -> None:
        if self._dtmf.next_deadline() is not None:
            for digit in self._dtmf.poll(now):
                self.stats["dtmf_in"] += 1
                self.on_digit(digit.key)
        if self.fed_by is not None or not self.sending:
            return
        playback = self._playback
        if playback is not None:
            frame = playback.next_frame()
            if frame is not None:
                self._send(self.codec.encode(frame), FRAME_SAMPLES)
                return
            self._playback = None
            playback.finish()
        self._send(self._silence, FRAME_SAMPLES)

    def play(self, audio: Pcm) -> Playback:
        """Queue audio to send, replacing whatever was playing."""
        self.stop_playback()
        self._playback = Playback(audio)
        self.start()
        return self._playback

    def stop_playback(self) -> None:
        if self._playback is not None:
            self._playback.finish()
            self._playback = None

    @property
    def echo(self) -> bool:
        return self.relay is self

    def set_echo(self, on: bool) -> None:
        self.relay_to(self if on else None)

    def relay_to(self, target: RtpLeg | None) -> None:
        """Send what this leg receives out of ``target`` (this leg itself: echo),
        instead of whatever ``target`` played; None ends the relay."""
        previous = self.relay
        if previous is not None and previous.fed_by is self:
            previous.fed_by = None
            previous._marker = True
        self.relay = target
        if target is not None:
            target.stop_playback()
            target.fed_by = self
            target._marker = True  # a new talkspurt starts (RFC 3551 4.1)

    def relay_audio(self, payload: bytes, codec: Codec) -> None:
        """Send another leg's (or our own) received payload, translated byte by
        byte when the codecs differ; our SSRC, sequence and timestamps go out."""
        table = transcode_table(codec, self.codec)
        if table is not None:
            payload = payload.translate(table)
            self.stats["transcoded"] += 1
        self._send(payload, len(payload))

    def relay_event(self, timestamp: int, payload: bytes) -> None:
        """Forward an RFC 4733 packet from the other leg, re-timestamped: every
        packet of one event carries the event's start time (RFC 4733 2.5.1.2),
        mapped onto our own timeline."""
        if self.telephone_event_pt is None or self.transport is None or self.remote is None:
            return  # the peer did not negotiate telephone-event
        first = self._relayed_event is None or self._relayed_event[0] != timestamp
        if first:
            self._relayed_event = (timestamp, self._ts)
        assert self._relayed_event is not None
        ours = self._relayed_event[1]
        data = build_rtp(self.telephone_event_pt, self._seq, ours, self._ssrc, payload, first)
        self.rtp_stats.on_rtp_sent(ours, len(payload), time.time())
        self._seq = (self._seq + 1) & 0xFFFF
        if len(payload) >= 4 and payload[1] & 0x80:
            # End of event: audio resumes after the event's duration (RFC 4733 2.5.1.3).
            duration = int.from_bytes(payload[2:4], "big")
            self._ts = (ours + duration) & 0xFFFFFFFF
        self.transport.sendto(data, self.remote)
        self.stats["dtmf_relayed"] += 1

    def update_remote(
        self, remote: tuple[str, int], codec: Codec, payload_type: int, te_pt: int | None
    ) -> None:
        """A re-INVITE or delayed answer changed the peer's media description."""
        if remote[0] in ("0.0.0.0", "::"):
            # RFC 3264 8.4: a null address means "do not send to me" (hold), even if the
            # peer goes on sending to us, so its packets must not latch a destination again.
            self.remote = None
            self._hold = True
        elif remote != self.remote or self._hold:
            self.remote = remote
            self._hold = False
            self._latched = False
        self.codec = codec
        self.payload_type = payload_type
        self.telephone_event_pt = te_pt
        self._silence = silence_payload(codec)

    def close(self) -> None:
        self.stop_playback()
        self.clock.remove(self)
        self.sending = False
        self.relay_to(None)
        if self.fed_by is not None and self.fed_by.relay is self:
            self.fed_by.relay_to(None)
        self.reports.close()
        if self.transport is not None:
            self.transport.close()

    def snapshot(self) -> dict[str, Any]:
        """Per-leg figures for logs and the call record: our counters of what was
        dropped or relayed, and the RFC 3550 statistics (loss, jitter, RTT)."""
        own = {k: v for k, v in self.stats.items() if k not in _COUNTED_BY_STATS}
        return {
            **self.rtp_stats.snapshot(),
            **own,
            "rtcp_malformed": self.reports.malformed,
            "dtmf_dropped": self._dtmf.dropped,
        }
