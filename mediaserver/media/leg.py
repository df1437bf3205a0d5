"""An RTP leg: one call's media socket and what flows through it.

Inbound packets are handled in ``datagram_received``: the header is parsed,
the sender is latched as the peer (symmetric RTP), telephone-events go to the
RFC 4733 receiver, and in echo mode audio is sent straight back with our own
SSRC, sequence and timestamps, never decoded. Outbound audio is paced by the
shared :class:`~mediaserver.media.clock.MediaClock`: each 20 ms tick sends
the next frame of what is playing, or an encoded silence frame while the call
is answered and idle, so the peer's jitter buffer always has a steady stream.

Decoding is on demand (DESIGN "decode only what must be mixed, recorded or
analysed"). A leg decodes only while something *listens* to it
(:meth:`RtpLeg.listen`: a recording, a conference, a voicemail, in-band DTMF
detection): its audio packets then also go into a
:class:`~mediaserver.media.jitter.JitterBuffer` (a dict insert in
``datagram_received``), and :meth:`RtpLeg.received_frame` yields exactly one
decoded 160-sample frame per media-clock tick: the first caller in a tick pops
the buffer, later callers of the same tick get the same frame (cached by the
clock's tick number), so the order in which clock members run does not
matter. What the leg sends is known per tick the same way
(:meth:`RtpLeg.sent_frame`), which is what the other side of a recording
hears. Legs that only relay or play never decode. A G.722 or Opus leg
decodes to 16 kHz and keeps that frame too (:meth:`RtpLeg.received_wide_frame`),
so a recording of wideband legs keeps their band; its 8 kHz frame is
decimated from it.

DTMF: RFC 4733 telephone-events when the peer negotiated them; otherwise, while
the leg is the call's own (not relaying its audio to a bridge or an echo),
in-band detection on its decoded audio
(:class:`~mediaserver.media.scanner.InbandDtmfScanner`). Never both, so a key
arrives once. Outgoing keys are queued with :meth:`RtpLeg.send_dtmf` and sent
one packet per tick on the telephone-event payload type, with no audio packet
while an event is on the wire.

Bad packets (truncated, wrong version, unknown payload types) are dropped
and counted in :attr:`RtpLeg.stats`; nothing received can raise out of this
module. Which source is heard, and where our media goes before the peer's
stream is known, is decided by the leg's
:class:`~mediaserver.media.latching.SourceLatch`, asked only about packets
that do not come from the latched source, so the per-packet check stays one
address comparison; what it refuses is counted (``rtp_refused_source``,
``rtcp_refused_source``). RFC 3550 statistics (loss, jitter, round-trip
time) are kept in :attr:`RtpLeg.rtp_stats` and reported over RTCP by the
leg's :class:`~mediaserver.media.reports.ReportChannel`.

Forking (:mod:`mediaserver.media.fork`): while :attr:`RtpLeg.fork` is set,
each RTP packet accepted from the peer and each one sent to it is also handed
to the fork, which copies it to its targets. A forked leg, and a leg relaying
to one, leave the relay's fast path (as while decoding), so that path never
checks for a fork.

Relay workers (:mod:`mediaserver.media.relay_workers`): a leg whose whole
job is the fast path (:meth:`RtpLeg.relays_only`) may be carried by a worker
process for a while (:meth:`RtpLeg.leave`, :meth:`RtpLeg.resume`); meanwhile
:attr:`RtpLeg.away` is set, the leg has no transport and is off the clock,
and anything done to it recalls it first.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import numpy as np

from mediaserver.media.clock import MediaClock
from mediaserver.media.codecs import FrameCoder, coder_for, wide_decoder_for
from mediaserver.media.dtls import (
    DtlsHandshake,
    DtlsSession,
    digest_of,
    dtls_identity,
    is_dtls,
)
from mediaserver.media.dtmf import DtmfReceiver
from mediaserver.media.fork import MediaFork
from mediaserver.media.g711 import Codec, silence_payload, transcode_table
from mediaserver.media.ice import IceLite
from mediaserver.media.jitter import JitterBuffer
from mediaserver.media.latching import LearnMode, SourceLatch, Verdict
from mediaserver.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, WIDE_RATE, Pcm, frame_at
from mediaserver.media.relay_state import RelayEnd
from mediaserver.media.reports import ReportChannel
from mediaserver.media.resample import Decimator
from mediaserver.media.rtp import RtpError, build_rtp, is_rtcp, is_stun, parse_rtp
from mediaserver.media.scanner import scanner_for
from mediaserver.media.srtp import SecureTransport, SilentTransport, SrtpChannel
from mediaserver.media.stats import LegStats
from mediaserver.media.wide_audio import COMPANIONS
from mediaserver.media.wideband import DecodedArrivals, WideEncoder, linear_decode

CNAME = "mediaserver"
_FIXED_HEADER = struct.Struct("!HII")  # sequence, timestamp, SSRC at offset 2 (RFC 3550 5.1)
_RTP_HEADER = struct.Struct("!BBHII")  # the whole fixed header, version 2 and no extras
# Counters the RFC 3550 statistics keep too: the snapshot takes theirs.
_COUNTED_BY_STATS = frozenset(("packets_in", "packets_out", "bytes_in", "rtcp_in"))

SILENT_FRAME: Pcm = np.zeros(FRAME_SAMPLES, np.int16)
SILENT_FRAME.flags.writeable = False

DtmfStep = tuple[bytes, bool] | None
"""One tick of an outgoing key sequence: a telephone-event payload and whether it
starts an event (RFC 4733 2.5.1.1: the event's first packet), or None for a tick
of ordinary audio (a pause between keys)."""


class Mixing(Protocol):
    """What feeds a leg mixed audio instead of its own (a conference)."""

    def heard_by(self, leg: RtpLeg) -> Pcm:
        """The frame ``leg`` hears this tick."""
        ...


class Away(Protocol):
    """A relay worker carrying this leg's bridge (media/relay_workers.py)."""

    def recall(self) -> None:
        """Bring the bridge back to the main process (soon: it is a message away)."""

    async def returned(self) -> None:
        """Done once the leg is back (at once when it is)."""


class RelayPool(Protocol):
    """The relay workers a leg's pure bridge may be handed to."""

    def consider(self, leg: RtpLeg) -> None:
        """``leg`` now relays on the fast path: a candidate for a worker."""


class Playback:
    """One piece of audio being sent, frame by frame, on the media clock; with
    ``loop``, over and over without a seam until stopped. ``wide``: the same
    audio at 16 kHz (``media/wide_audio.py``), for a wideband leg to send."""

    def __init__(self, audio: Pcm, *, loop: bool = False, wide: Pcm | None = None) -> None:
        self.audio = audio
        self.wide = wide
        self.wide_frame: Pcm | None = None  # the frame next_frame gave, at 16 kHz
        self.loop = loop and len(audio) > 0
        self.position = 0
        self.completed = False  # played to its end (not stopped or replaced)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def next_frame(self) -> Pcm | None:
        if self.position >= len(self.audio) and not self.loop:
            return None
        start = self.position
        frame, self.position = frame_at(self.audio, start, loop=self.loop)
        if self.wide is not None:
            ratio = WIDE_RATE // SAMPLE_RATE
            self.wide_frame = frame_at(
                self.wide, start * ratio, loop=self.loop, samples=FRAME_SAMPLES * ratio
            )[0]
        if self.position >= len(self.audio) and not self.loop:
            self.completed = True
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
        learn_source: LearnMode = LearnMode.STREAM,
    ) -> None:
        self.clock = clock
        self.codec = codec
        self.coder: FrameCoder = coder_for(codec)  # what our own audio is encoded with
        self._wide_coder = _wide_encoder(codec, self.coder)  # 16 kHz prompts: G.722, Opus
        self._relay_coder: FrameCoder | None = None  # decodes what we relay to another codec
        self._relay_pending: Pcm = SILENT_FRAME[:0]  # relay_pcm's part of a frame
        self._arrivals: DecodedArrivals | None = None  # Opus decoded before the jitter buffer
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.telephone_event_clock = 8000  # its rtpmap rate (RFC 4733 2.1; update_remote)
        self.remote = remote
        self.on_digit = on_digit
        self.transport: asyncio.DatagramTransport | None = None
        self.local_port = 0
        self.events: Counter[str] = Counter()  # rare happenings: drops, DTMF, transcoding
        self.packets_in = 0  # the hot counters are plain integers (the relay's fast path)
        self.bytes_in = 0
        self.packets_out = 0
        self.transcoded = 0  # packets translated PCMU <-> PCMA on their way to the relay
        # The relay's fast path: set while this leg relays without decoding (see relay_to).
        self._fast_target: RtpLeg | None = None
        self._relay_table: bytes | None = None
        self.sending = False
        # Where received audio goes without decoding: another leg (a bridge) or this
        # leg itself (echo); and which leg feeds us, while the clock sends nothing here.
        self.relay: RtpLeg | None = None
        self.fed_by: RtpLeg | None = None
        self._relayed_event: tuple[int, int] | None = None  # (their event ts, our event ts)
        # Who may be heard (media/latching.py); _peer mirrors its latched source for the
        # fast path's one comparison.
        self.latch = SourceLatch(
            learn_source,
            expected=remote,
            payload_types=_payload_types(payload_type, telephone_event_pt),
        )
        self._peer: tuple[str, int] | None = None
        self._hold = False  # the peer asked for no media (null address): latch but never send
        self._remote_ssrc: int | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._marker = True
        self._playback: Playback | None = None
        self._dtmf = DtmfReceiver()
        self._silence = _silence_for(codec)
        self.rtp_stats = LegStats(self._ssrc)
        self.reports = ReportChannel(
            self.rtp_stats, CNAME, lambda: self.remote, self.latch.allows_rtcp
        )
        # Decoded media (module docstring): who listens, the buffer, this tick's frames.
        self.jitter_buffer_ms = 60
        self.mixed_by: Mixing | None = None  # a conference sends for us meanwhile
        self._listeners: set[object] = set()
        self._jitter: JitterBuffer | None = None
        self._heard: Pcm = SILENT_FRAME
        self._heard_wide: Pcm | None = None  # the same frame at 16 kHz (a wideband leg)
        self._narrowing: Decimator | None = None  # 16 to 8 kHz, while a wideband leg decodes
        self._heard_tick = -1
        self._own: Pcm | None = None  # what our playback sends this tick; None: silence
        self._own_wide: Pcm | None = None  # the same at 16 kHz, when the prompt has it
        self._own_tick = -1
        self._inband = False  # registered with the in-band DTMF scanner
        self._dtmf_out: deque[DtmfStep] = deque()
        self._dtmf_done: asyncio.Future[None] | None = None
        self._event_ts = 0
        self.fork: MediaFork | None = None  # copies of our RTP (start_fork); None: no cost
        self.srtp: SrtpChannel | None = None  # SRTP keys (secure); None: plain RTP
        self.dtls: DtlsSession | None = None  # a DTLS-SRTP handshake (start_dtls)
        self.dtls_failure: str | None = None  # why it failed: the leg stays silent
        self.ice: IceLite | None = None  # answers ICE checks (a WebRTC peer's leg)
        self._socket: asyncio.DatagramTransport | None = None  # under a SecureTransport
        # Relay workers (media/relay_workers.py): who may carry our pure bridge, and
        # the one carrying it now (our socket is then theirs, and we send nothing).
        self.relay_pool: RelayPool | None = None
        self.away: Away | None = None
        self.closed = False
        # Relayed to us while our socket comes back from a worker (the other leg's
        # may be back first): sent once it is.
        self._arriving: list[bytes] | None = None

    async def open_rtcp(self, host: str, port: int) -> bool:
        """Bind the RTCP socket (RTP port + 1); False when it is taken."""
        return await self.reports.open(host, port)

    # -- asyncio ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check.
        self.transport = self._socket = cast(asyncio.DatagramTransport, transport)
        arriving, self._arriving = self._arriving, None
        for payload in arriving or ():
            self._relay_send(payload, time.time())

    def secure(self, channel: SrtpChannel | None) -> None:
        """Send and receive SRTP with ``channel``'s keys from now on (None: plain
        RTP again). Everything sent goes through the channel: relayed audio,
        playback, DTMF, RTCP; what arrives is authenticated and decrypted first,
        so a packet that is not the peer's is dropped before it can latch."""
        self._recall()
        current = self.srtp
        if channel is not None and current is not None and current.same_keys(channel):
            return  # a re-INVITE kept the keys: keep the sessions (and their replay windows)
        if channel is None and self.dtls is not None:
            self.dtls.close()  # renegotiated to plain RTP: the handshake is over
            self.dtls = None
        self.srtp = channel
        if self._socket is not None:
            self.transport = (
                self._socket if channel is None else SecureTransport(self._socket, channel)
            )
        self.reports.secure(channel)

    def start_dtls(self, *, active: bool, peer_fingerprint: str) -> None:
        """Agree SRTP keys by DTLS on this leg's socket (RFC 5764): nothing is sent
        or heard until the handshake gives them; a failure silences the leg for
        good (counted in ``dtls_failed``). A renegotiation naming the same peer
        certificate keeps the association."""
        self._recall()
        current = self.dtls
        if current is not None and current.handshake.peer_digest == digest_of(peer_fingerprint):
            return
        if current is not None:
            current.close()
        if self._socket is None:
            return
        socket = self._socket
        self.srtp = None
        self.transport = SilentTransport(socket)
        self.reports.silence()

        def send(datagram: bytes) -> None:
            if self.remote is not None:
                socket.sendto(datagram, self.remote)

        handshake = DtlsHandshake(dtls_identity(), active=active, peer_fingerprint=peer_fingerprint)
        self.dtls = DtlsSession(handshake, send, self._dtls_keys, self._dtls_failed)
        self.dtls.start()

    def _dtls_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        dtls = self.dtls
        assert dtls is not None
        if is_stun(data):
            self._stun(data, addr)
            return
        if not is_dtls(data):
            self.events["dtls_pending_drop"] += 1  # media before the keys: not heard
            return
        if self.remote is None:
            # Passive with no address to send to yet: answer where the handshake comes
            # from. Never move an address we have: a forged record must not steer it.
            self.remote = addr
        dtls.receive(data)

    def _dtls_keys(self, suite: str, local: bytes, remote: bytes) -> None:
        self.events["dtls_done"] += 1
        self.secure(SrtpChannel(suite, local=local, remote=remote))

    def _dtls_failed(self, reason: str) -> None:
        self.events["dtls_failed"] += 1
        self.dtls_failure = reason

    @property
    def stats(self) -> Counter[str]:
        """Every counter of the leg (a copy)."""
        counts = Counter(self.events)
        for name in ("packets_in", "bytes_in", "packets_out", "transcoded"):
            if value := getattr(self, name):
                counts[name] = value
        latch = self.latch
        for name, value in (
            ("rtp_refused_source", latch.refused),
            ("rtp_learning", latch.probation),
            ("rtcp_refused_source", latch.refused_rtcp),
        ):
            if value:
                counts[name] = value
        return counts

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.dtls is not None and (is_dtls(data) or self.srtp is None):
            self._dtls_datagram(data, addr)
            return
        if self.srtp is not None and not is_stun(data):
            plain = self.srtp.unprotect(data)
            if plain is None:
                self.events["srtp_refused"] += 1
                return
            data = plain
        # Fast path, the bulk of a bridge's traffic: a plain audio packet (RTP
        # version 2, no padding, extension or CSRC: first byte 0x80, RFC 3550 5.1)
        # from the latched peer, relayed without decoding. One header unpack, no
        # packet object, the translation table chosen when the relay was set up.
        target = self._fast_target
        if (
            target is not None
            and addr == self._peer
            and len(data) > 12
            and data[0] == 0x80
            and data[1] & 0x7F == self.payload_type
        ):
            sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data, 2)
            if ssrc == self._remote_ssrc:
                payload = data[12:]
                size = len(payload)
                now = time.time()
                self.packets_in += 1
                self.bytes_in += size
                self.rtp_stats.bytes_in += size
                self.rtp_stats.receiver.update(sequence, timestamp, now, ssrc)
                table = self._relay_table
                if table is not None:
                    payload = payload.translate(table)
                    self.transcoded += 1
                target._relay_send(payload, now)
                return
        self._receive(data, addr)

    def _relay_send(self, payload: bytes, now: float) -> None:
        """:meth:`_send` inlined for the relay's fast path (same header, counters
        and sender statistics, without the calls); never used while we are forked
        (see :meth:`_refresh_fast_path`)."""
        transport, remote = self.transport, self.remote
        if transport is None or remote is None:
            if self._arriving is not None:  # coming home: our socket is a moment away
                self._arriving.append(payload)
            return
        sequence, timestamp = self._seq, self._ts
        second = self.payload_type | 0x80 if self._marker else self.payload_type
        transport.sendto(
            _RTP_HEADER.pack(0x80, second, sequence, timestamp, self._ssrc) + payload, remote
        )
        self._marker = False
        self._seq = (sequence + 1) & 0xFFFF
        self._ts = (timestamp + len(payload)) & 0xFFFFFFFF
        self.packets_out += 1
        sender = self.rtp_stats.sender  # SenderStats.on_sent, inline
        sender.packets += 1
        sender.octets += len(payload)
        sender.last_rtp_timestamp = timestamp
        sender.last_sent_at = now

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        """Every packet the fast path does not take: parse, check, dispatch."""
        stats = self.events
        if is_stun(data):  # RFC 7983 7
            self._stun(data, addr)
            return
        if is_rtcp(data):
            if addr != self._peer and not self.latch.allows_rtcp(addr):
                return  # counted by the latch
            stats["rtcp_in"] += 1
            self.reports.receive(data)  # RFC 5761: RTCP multiplexed on the RTP port
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            stats["malformed"] += 1
            return
        if addr != self._peer:
            verdict = self.latch.judge(
                addr, packet.sequence, packet.ssrc, packet.payload_type, time.monotonic()
            )
            if verdict is not Verdict.LEARN:
                return  # refused or still on probation: counted by the latch
            # Symmetric RTP: answer to where the peer's packets come from, not only the SDP.
            self._peer = self.latch.peer
            self._remote_ssrc = packet.ssrc
            self._aim()
        fork = self.fork
        if fork is not None:
            fork.received(data)
        self.packets_in += 1
        self.bytes_in += len(packet.payload)
        self.rtp_stats.on_rtp_received(packet, time.time())
        pt = packet.payload_type
        relay = self.relay
        if pt == self.telephone_event_pt:
            loop_time = asyncio.get_running_loop().time()
            for digit in self._dtmf.handle_packet(packet.timestamp, packet.payload, loop_time):
                stats["dtmf_in"] += 1
                self.on_digit(digit.key)
            if relay is not None and relay is not self:
                relay.relay_event(packet.timestamp, packet.payload, self.telephone_event_clock)
            return
        if pt != self.payload_type:
            stats["unknown_payload_type"] += 1
            return
        if packet.ssrc != self._remote_ssrc:
            self._remote_ssrc = self.latch.peer_ssrc = packet.ssrc
            stats["ssrc_changes"] += 1
        jitter = self._jitter
        if jitter is not None:
            arrivals = self._arrivals
            jitter.push(
                packet if arrivals is None else arrivals.convert(packet),
                asyncio.get_running_loop().time(),
            )
        if relay is not None:
            relay_coder = self._relay_coder
            if relay_coder is None:
                relay.relay_audio(packet.payload, self.codec)
            else:
                relay.relay_pcm(relay_coder.decode(packet.payload))

    def multiplex_rtcp(self) -> None:
        """Send our RTCP on the RTP port (RFC 5761 4: rtcp-mux agreed), through the
        leg's transport, so SRTCP when the leg is secure."""

        self._recall()

        def send(report: bytes) -> None:
            if self.transport is not None and self.remote is not None:
                self.transport.sendto(report, self.remote)

        self.reports.muxed = send

    def answer_ice(self, ice: IceLite) -> None:
        """Be an ICE-lite agent (a browser's leg, media/ice.py): media goes nowhere
        until an authenticated check says where, whatever the SDP's address."""
        self._recall()
        self.ice = ice
        self._hold = False
        self.latch.expected = None
        self._peer = None
        self._aim()

    def _stun(self, data: bytes, addr: tuple[str, int]) -> None:
        """A NAT keep-alive (no answer) or, on an ICE-lite leg, a connectivity check:
        answered, in clear (RFC 7983), and its source made the peer when it says so."""
        self.events["stun_in"] += 1
        ice = self.ice
        if ice is None or self._socket is None:
            return
        answer = ice.answer(data, addr)
        if answer.response is None:
            self.events["stun_refused"] += 1
            return
        self._socket.sendto(answer.response, addr)
        if answer.selects and addr != self._peer:
            self.latch.confirm(addr)
            self._peer = addr
            self._aim()

    def error_received(self, exc: Exception) -> None:
        self.events["send_errors"] += 1

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
        self.packets_out += 1
        if self.fork is not None:
            self.fork.sent(data)

    def send_payload(self, payload: bytes) -> None:
        """Send one 20 ms frame already encoded with our codec (a conference's mix)."""
        self._send(payload, self.codec.frame_ticks)

    def send_frame(self, frame: Pcm) -> None:
        """Send one 20 ms frame of 8 kHz audio, encoded by our own coder."""
        self._send(self.coder.encode(frame), self.codec.frame_ticks)

    def start(self) -> None:
        """Start sending: the call is answered (or has early media)."""
        if not self.sending:
            self.sending = True
            self.clock.add(self)
            self.reports.start()
            self._refresh_inband()

    def on_tick(self, now: float) -> None:
        if self._dtmf.next_deadline() is not None:
            for digit in self._dtmf.poll(now):
                self.events["dtmf_in"] += 1
                self.on_digit(digit.key)
        if self._dtmf_out and self._next_dtmf_step():
            return  # a telephone-event went out in place of this tick's audio
        if self.fed_by is not None or self.mixed_by is not None or not self.sending:
            return
        frame = self._own_frame()
        silence = self._silence
        if frame is None and silence is not None:
            self._send(silence, FRAME_SAMPLES)
        elif self._own_wide is not None and self._wide_coder is not None:
            self._send(self._wide_coder.encode_wide(self._own_wide), self.codec.frame_ticks)
        else:
            # a stateful codec encodes its silence too: its decoder follows our encoder
            self._send(
                self.coder.encode(SILENT_FRAME if frame is None else frame),
                self.codec.frame_ticks,
            )

    def _own_frame(self) -> Pcm | None:
        """What our playback sends this tick (None: silence), advanced once per tick."""
        tick = self.clock.ticks
        if self._own_tick != tick:
            self._own_tick = tick
            self._own = self._own_wide = None
            playback = self._playback
            if playback is not None:
                self._own = playback.next_frame()
                if self._own is None:
                    self._playback = None
                    playback.finish()
                elif playback.wide is not None:
                    self._own_wide = playback.wide_frame
        return self._own

    def play(self, audio: Pcm, *, loop: bool = False) -> Playback:
        """Queue audio to send, replacing whatever was playing; with ``loop``, it
        plays until stopped. A G.722 or Opus leg sends the audio's 16 kHz version
        when its source has one (``media/wide_audio.py``)."""
        self._recall()
        self.stop_playback()
        wide = COMPANIONS.wide_of(audio) if self._wide_coder is not None else None
        self._playback = Playback(audio, loop=loop, wide=wide)
        self.start()
        return self._playback

    def stop_playback(self) -> None:
        if self._playback is not None:
            self._playback.finish()
            self._playback = None

    @property
    def playing(self) -> Playback | None:
        """The audio being sent now, if any."""
        return self._playback

    # -- decoded media -------------------------------------------------------

    @property
    def decoding(self) -> bool:
        return self._jitter is not None

    @property
    def wideband(self) -> bool:
        """Whether the negotiated codec carries audio above 4 kHz (G.722, Opus)."""
        return self.codec.wideband

    def listen(self, owner: object) -> None:
        """Decode what this leg receives for ``owner`` (a recording, a conference,
        in-band DTMF detection) until :meth:`unlisten`."""
        if self._jitter is None:
            self._jitter = self._new_jitter()
            self._heard_tick = -1
            self._refresh_fast_path()  # decoding: packets must reach the jitter buffer
        self._listeners.add(owner)

    def _new_jitter(self) -> JitterBuffer:
        """The jitter buffer of decoded media: G.711 held encoded and decoded by its
        tables; G.722 and Opus decoded as they arrive by a decoder of their own
        (``DecodedArrivals``) and held as 16 kHz 16-bit PCM, since the buffer may decode a
        frame twice (to find a quiet one to drop) and a stateful decoder must
        see each packet once."""
        codec = self.codec
        if not codec.wideband:
            self._arrivals = None
            self._narrowing = None
            return JitterBuffer(codec.decode, self.jitter_buffer_ms)
        # Held at 16 kHz, the band a recording of wideband legs keeps; the 8 kHz
        # frame everyone else takes is decimated from it once per tick.
        self._arrivals = DecodedArrivals(
            wide_decoder_for(codec), codec.frame_ticks // FRAME_SAMPLES
        )
        self._narrowing = Decimator(WIDE_RATE // SAMPLE_RATE)
        return JitterBuffer(linear_decode, self.jitter_buffer_ms, width=4, rate_factor=2)

    def unlisten(self, owner: object) -> None:
        self._listeners.discard(owner)
        if not self._listeners:
            self._retire_jitter()  # nobody listens: received audio is no longer decoded

    def _retire_jitter(self) -> None:
        """Drop the jitter buffer, keeping its counts in :attr:`stats` (``jb_*``)."""
        jitter, self._jitter = self._jitter, None
        if jitter is not None:
            for name, count in jitter.stats.items():
                if name != "current_delay_ms":
                    self.events[f"jb_{name}"] += count
            self._refresh_fast_path()

    def received_frame(self) -> Pcm:
        """This tick's decoded frame of what the peer sent (silence while not
        decoding). Popped from the jitter buffer by the first caller of the tick;
        the frame is shared, so callers must not change it."""
        tick = self.clock.ticks
        if self._heard_tick != tick:
            self._heard_tick = tick
            jitter = self._jitter
            if jitter is None:
                self._heard, self._heard_wide = SILENT_FRAME, None
            else:
                frame = jitter.pop(asyncio.get_running_loop().time())
                narrowing = self._narrowing
                if narrowing is None:
                    self._heard, self._heard_wide = frame, None
                else:
                    self._heard, self._heard_wide = narrowing(frame), frame
        return self._heard

    def received_wide_frame(self) -> Pcm | None:
        """This tick's frame of :meth:`received_frame` at 16 kHz (320 samples) while
        a wideband leg decodes; None otherwise (there is only the 8 kHz one)."""
        self.received_frame()
        return self._heard_wide

    def sent_wide_frame(self) -> Pcm | None:
        """:meth:`sent_frame` at 16 kHz when what the peer hears this tick has it:
        a wideband leg's audio relayed to us (a bridge), or a prompt with a 16 kHz
        version; None otherwise."""
        if self.mixed_by is not None:
            return None
        feeder = self.fed_by
        if feeder is not None:
            return feeder.received_wide_frame()
        if not self.sending:
            return None
        self._own_frame()
        return self._own_wide

    def sent_frame(self) -> Pcm:
        """What the peer hears from us this tick: a conference's mix for us, the
        audio of the leg relayed to us (decoded only if someone listens to that
        leg), or our own playback; silence otherwise."""
        if self.mixed_by is not None:
            return self.mixed_by.heard_by(self)
        feeder = self.fed_by
        if feeder is not None:
            return feeder.received_frame()
        if not self.sending:
            return SILENT_FRAME
        frame = self._own_frame()
        return SILENT_FRAME if frame is None else frame

    def _refresh_inband(self) -> None:
        """In-band DTMF detection runs while the peer has no telephone-event and the
        leg's audio is the call's own (not relayed to a bridge or echoed back)."""
        wanted = self.sending and self.telephone_event_pt is None and self.relay is None
        if wanted != self._inband:
            self._inband = wanted
            scanner = scanner_for(self.clock)
            if wanted:
                scanner.watch(self)
            else:
                scanner.unwatch(self)

    # -- sending DTMF ----------------------------------------------------------

    def send_dtmf(self, steps: Sequence[DtmfStep]) -> asyncio.Future[None]:
        """Send telephone-events (RFC 4733), one step per tick (see
        :data:`DtmfStep`); the future is done after the last step. Replaces a
        sequence still being sent. Needs a negotiated telephone-event type."""
        if self.telephone_event_pt is None:
            raise ValueError("the peer did not negotiate telephone-event")
        self._recall()
        self._finish_dtmf()
        self._dtmf_out = deque(steps)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._dtmf_done = done
        if not self._dtmf_out:
            self._finish_dtmf()
        self.start()
        return done

    def stop_dtmf(self) -> None:
        """Drop the keys not sent yet (the future of :meth:`send_dtmf` resolves)."""
        self._finish_dtmf()

    def _next_dtmf_step(self) -> bool:
        """Take one step of the key sequence; True when it sent a telephone-event."""
        step = self._dtmf_out.popleft()
        if not self._dtmf_out:
            self._finish_dtmf()
        if step is None:
            return False
        payload, first = step
        if first:
            self._event_ts = self._ts  # RFC 4733 2.5.1.2: every packet carries the start time
        pt = self.telephone_event_pt
        if pt is not None and self.transport is not None and self.remote is not None:
            data = build_rtp(pt, self._seq, self._event_ts, self._ssrc, payload, first)
            self.rtp_stats.on_rtp_sent(self._event_ts, len(payload), time.time())
            self.transport.sendto(data, self.remote)
            self._seq = (self._seq + 1) & 0xFFFF
            self.events["dtmf_out"] += 1
            if self.fork is not None:
                self.fork.sent(data)
        # The media timeline goes on: audio after the event carries the time it is sent.
        self._ts = (self._ts + self.codec.frame_ticks) & 0xFFFFFFFF
        return True

    def _finish_dtmf(self) -> None:
        self._dtmf_out.clear()
        done, self._dtmf_done = self._dtmf_done, None
        if done is not None and not done.done():
            done.set_result(None)

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
        self._refresh_inband()
        self._refresh_fast_path()

    def _refresh_fast_path(self) -> None:
        """Whether received audio takes the relay's fast path, and through which
        translation table: decided when the relay, a codec or decoding changes,
        not per packet. Forking (either leg) leaves it too: the fast path checks
        for no fork, and the slow path hands the fork each packet."""
        self._recall()
        target = self.relay
        forked = self.fork is not None or (target is not None and target.fork is not None)
        # Another codec that no byte table translates (G.722 or Opus on one side):
        # decoded here, encoded by the target (relay_pcm), off the fast path.
        source, wanted = self.codec, None if target is None else target.codec
        transcoding = (
            wanted is not None and wanted != source and (source.stateful or wanted.stateful)
        )
        if transcoding and self._relay_coder is None:
            self._relay_coder = coder_for(source)
        elif not transcoding:
            self._relay_coder = None
        # The fast path steps timestamps by payload length: G.711 and G.722 only.
        if target is None or self._jitter is not None or forked or transcoding:
            self._fast_target = None
            return
        if source.duration is not len:
            self._fast_target = None
            return
        self._fast_target = target
        self._relay_table = transcode_table(source, target.codec)
        if self.relay_pool is not None:
            self.relay_pool.consider(self)

    # -- forking ---------------------------------------------------------------

    def start_fork(self, fork: MediaFork) -> MediaFork | None:
        """Copy our RTP through ``fork`` from now on (media/fork.py), in place of the
        fork running, which is returned stopped (``replaced``)."""
        previous = self.stop_fork("replaced")
        self.fork = fork
        self._refresh_forked_paths()
        return previous

    def stop_fork(self, reason: str = "stopped") -> MediaFork | None:
        """Stop copying; the fork that was running, its ``stop_reason`` set (its
        copies counted in :attr:`stats` as ``forked_rx`` and ``forked_tx``), or None."""
        fork, self.fork = self.fork, None
        if fork is not None:
            fork.stop_reason = reason
            self.events["forked_rx"] += fork.received_copies
            self.events["forked_tx"] += fork.sent_copies
            self._refresh_forked_paths()
        return fork

    def _refresh_forked_paths(self) -> None:
        """What we receive, and what the leg feeding us relays, take the fast path
        only while neither leg is forked."""
        self._refresh_fast_path()
        if self.fed_by is not None:
            self.fed_by._refresh_fast_path()

    def relay_audio(self, payload: bytes, codec: Codec) -> None:
        """Send another leg's (or our own) received payload, translated byte by
        byte when the codecs differ; our SSRC, sequence and timestamps go out."""
        table = transcode_table(codec, self.codec)
        if table is not None:
            payload = payload.translate(table)
            self.transcoded += 1
        self._send(payload, codec.duration(payload))

    def relay_pcm(self, pcm: Pcm) -> None:
        """Send another leg's decoded audio (8 kHz, any length) in our codec: a
        bridge between codecs no byte table translates (G.722 caller, PCMU callee).
        Sent in 20 ms frames, one packet each (libavcodec's encoders take fixed
        frames: a 30 ms carrier packet would otherwise come out as a packet and a
        half); the rest waits for the next packet."""
        pending = self._relay_pending
        if len(pending):
            pcm = np.concatenate([pending, pcm])
        whole = len(pcm) - len(pcm) % FRAME_SAMPLES
        self._relay_pending = pcm[whole:]
        for start in range(0, whole, FRAME_SAMPLES):
            self.transcoded += 1
            self._send(
                self.coder.encode(pcm[start : start + FRAME_SAMPLES]), self.codec.frame_ticks
            )

    def relay_event(self, timestamp: int, payload: bytes, clock_rate: int = 8000) -> None:
        """Forward an RFC 4733 packet from the other leg, re-timestamped: every
        packet of one event carries the event's start time (RFC 4733 2.5.1.2),
        mapped onto our own timeline; its duration, counted at the other leg's
        ``clock_rate``, is rescaled to ours (an Opus leg's events run at 48000)."""
        if self.telephone_event_pt is None or self.transport is None or self.remote is None:
            return  # the peer did not negotiate telephone-event
        ours_rate = self.telephone_event_clock
        if clock_rate != ours_rate and len(payload) >= 4:
            ticks = min(int.from_bytes(payload[2:4], "big") * ours_rate // clock_rate, 0xFFFF)
            payload = payload[:2] + ticks.to_bytes(2, "big") + payload[4:]
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
            if ours_rate != self.codec.clock_rate:  # baresip's /8000 events beside opus
                duration = duration * self.codec.clock_rate // ours_rate
            self._ts = (ours + duration) & 0xFFFFFFFF
        self.transport.sendto(data, self.remote)
        self.events["dtmf_relayed"] += 1
        if self.fork is not None:
            self.fork.sent(data)

    def update_remote(
        self,
        remote: tuple[str, int],
        codec: Codec,
        payload_type: int,
        te_pt: int | None,
        *,
        hold: bool = False,
        event_clock: int = 8000,
    ) -> None:
        """A re-INVITE or delayed answer changed the peer's media description;
        ``hold``: the peer does not want to receive (sendonly or inactive);
        ``event_clock``: the rtpmap rate of ``te_pt``."""
        if hold or remote[0] in ("0.0.0.0", "::"):
            # RFC 3264 8.4: a null address means "do not send to me" (hold), even if the
            # peer goes on sending to us, so its packets must not latch a destination again.
            self._hold = True
        else:
            self._hold = False
            if self.latch.expect(remote):
                self._peer = None  # a new address: its source is learnt again
        self._aim()
        self.latch.payload_types = _payload_types(payload_type, te_pt)
        changed = codec != self.codec
        self.codec = codec
        if changed:
            self.coder = coder_for(codec)
            self._wide_coder = _wide_encoder(codec, self.coder)
            self._relay_coder = None
            if self._jitter is not None:
                self._retire_jitter()
                self._jitter = self._new_jitter()
        self.payload_type = payload_type
        self.telephone_event_pt = te_pt
        if event_clock != self.telephone_event_clock:
            self.telephone_event_clock = event_clock
            self._dtmf = DtmfReceiver(event_clock)
        self._silence = _silence_for(codec)
        self._refresh_inband()
        self._refresh_fast_path()
        if self.fed_by is not None:
            self.fed_by._refresh_fast_path()  # its translation table targets our codec

    def learn_sources(self, mode: LearnMode) -> None:
        """Which sources may be learnt (``rtp.learn_source``)."""
        self.latch.mode = mode
        self._aim()

    def signalling_from(self, host: str) -> None:
        """The host the call's SIP comes from or goes to: a NAT'd peer's media comes
        from there too (see :class:`~mediaserver.media.latching.SourceLatch`)."""
        self.latch.signalling_host = host
        self._aim()

    def _aim(self) -> None:
        """Where our RTP goes: nowhere on hold; the latched source (symmetric RTP);
        else the SDP's address, unless it is a NAT's private side we cannot reach."""
        self._recall()
        if self._hold:
            self.remote = None
        elif self._peer is not None:
            self.remote = self._peer
        else:
            self.remote = None if self.latch.waits_for_source else self.latch.expected

    def close(self) -> None:
        self.closed = True
        self._recall()
        self.stop_fork("hangup")
        self.stop_playback()
        self._finish_dtmf()
        self.clock.remove(self)
        self.sending = False
        self._refresh_inband()
        self._listeners.clear()
        self._retire_jitter()
        self.relay_to(None)
        if self.fed_by is not None and self.fed_by.relay is self:
            self.fed_by.relay_to(None)
        self.reports.close()
        if self.dtls is not None:
            self.dtls.close()
        if self.transport is not None:
            self.transport.close()

    # -- relay workers (media/relay_workers.py) --------------------------------------

    def relays_only(self) -> bool:
        """Whether all this leg does is relay plain RTP from its latched peer to
        another leg (or back to itself), nothing decoded, played, forked, detected
        or encrypted: what a relay worker can carry for it."""
        return (
            self.away is None
            and not self.closed
            and self._fast_target is not None
            and self.sending
            and self.transport is not None
            and self.transport is self._socket
            and self.srtp is None
            and self.dtls is None
            and self.ice is None
            and self.reports.muxed is None
            and self.fork is None
            and self._jitter is None
            and self._playback is None
            and not self._dtmf_out
            and not self._inband
            and self.mixed_by is None
            and (
                (self._peer is not None and self._remote_ssrc is not None)
                or self.latch.latches_on_sight  # no media yet: the worker latches it
            )
            and self.remote is not None
            and self._dtmf.next_deadline() is None
        )

    @property
    def relay_target(self) -> RtpLeg | None:
        """The leg our packets go out of on the fast path (None: not relaying so)."""
        return self._fast_target

    def leave(self, away: Away, target: int) -> tuple[RelayEnd, socket.socket]:
        """Hand our relay to a worker (``away``): our state as it is now, and a
        duplicate of our socket, which the main process keeps (not reading it)
        while the worker reads its own copy; the leg sends nothing meanwhile.
        ``target``: the worker's index of the leg we relay to."""
        assert self.remote is not None and self._socket is not None
        stats = self.rtp_stats
        end = RelayEnd(
            target=target,
            peer=self._peer,
            expected=self.latch.expected,
            remote=self.remote,
            payload_type=self.payload_type,
            clock_rate=stats.clock_rate,
            remote_ssrc=self._remote_ssrc,
            ssrc=self._ssrc,
            sequence=self._seq,
            timestamp=self._ts,
            marker=self._marker,
            table=self._relay_table,
            packets_in=self.packets_in,
            bytes_in=self.bytes_in,
            packets_out=self.packets_out,
            transcoded=self.transcoded,
            reception=stats.receiver.reception(),
            sending=stats.sender.sending(),
            stats_bytes_in=stats.bytes_in,
        )
        own = self._socket.get_extra_info("socket")
        kept = socket.socket(fileno=os.dup(own.fileno()))
        self._socket.close()
        self.transport = self._socket = None
        self.away = away
        self.clock.remove(self)  # nothing to send on the clock while relayed elsewhere
        return end, kept

    def take_figures(self, end: RelayEnd) -> None:
        """The counters and statistics a worker reached carrying us."""
        self.packets_in, self.bytes_in = end.packets_in, end.bytes_in
        self.packets_out, self.transcoded = end.packets_out, end.transcoded
        stats = self.rtp_stats
        stats.receiver.adopt_reception(end.reception)
        stats.sender.adopt_sending(end.sending)
        stats.bytes_in = end.stats_bytes_in

    def resume(self, end: RelayEnd) -> None:
        """Back from a worker: its figures, and our header where it left it."""
        self.take_figures(end)
        self._seq, self._ts, self._marker = end.sequence, end.timestamp, end.marker
        self.away = None
        if self._peer is None and end.peer is not None and end.remote_ssrc is not None:
            self.latch.latch_to(end.peer, end.remote_ssrc)  # the worker saw its first packet
            self._peer, self._remote_ssrc = end.peer, end.remote_ssrc
            self._aim()
        self._arriving = None if self.closed else []
        if self.sending:
            self.clock.add(self)

    async def home(self) -> None:
        """Wait until a worker carrying us has given us back (final figures)."""
        if self.away is not None:
            await self.away.returned()

    def _recall(self) -> None:
        if self.away is not None:
            self.away.recall()

    def snapshot(self) -> dict[str, Any]:
        """Per-leg figures for logs and the call record: our counters of what was
        dropped or relayed, and the RFC 3550 statistics (loss, jitter, RTT)."""
        own = {k: v for k, v in self.stats.items() if k not in _COUNTED_BY_STATS}
        if self._jitter is not None:  # a buffer still in use: its counts so far too
            for name, count in self._jitter.stats.items():
                if name != "current_delay_ms":
                    own[f"jb_{name}"] = own.get(f"jb_{name}", 0) + count
        if self.reports.stun:
            own["stun_in"] = own.get("stun_in", 0) + self.reports.stun
        return {
            **self.rtp_stats.snapshot(),
            **own,
            "rtp_refused_source": self.latch.refused,
            "rtcp_refused_source": self.latch.refused_rtcp,
            "rtcp_malformed": self.reports.malformed,
            "dtmf_dropped": self._dtmf.dropped,
        }


def _wide_encoder(codec: Codec, coder: FrameCoder) -> WideEncoder | None:
    """The coder as a 16 kHz encoder for a G.722 or Opus leg; None for G.711."""
    return cast(WideEncoder, coder) if codec.wideband else None


def _silence_for(codec: Codec) -> bytes | None:
    """G.711's silence frame, encoded once; None for a stateful codec, whose
    coder encodes each silent frame (its decoder on the far side follows it)."""
    return None if codec.stateful else silence_payload(codec)


def _payload_types(payload_type: int, telephone_event_pt: int | None) -> frozenset[int]:
    """The payload types a learnt stream may carry: the negotiated ones."""
    if telephone_event_pt is None:
        return frozenset((payload_type,))
    return frozenset((payload_type, telephone_event_pt))
