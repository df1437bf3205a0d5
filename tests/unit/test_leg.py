"""An RTP leg on real UDP sockets (127.0.0.1): latching, echo, playback, DTMF, hold, close.

A leg is opened with the SDP's address, as the server does; packets from there
latch at once (source learning itself: test_latching.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest

from mediaserver.media.clock import PTIME, MediaClock
from mediaserver.media.dtmf import tone_event_packets
from mediaserver.media.g711 import PCMA, PCMU, Codec, silence_payload, ulaw_decode
from mediaserver.media.latching import STREAM_PACKETS, LearnMode
from mediaserver.media.leg import Playback, RtpLeg
from mediaserver.media.pcm import FRAME_SAMPLES, Pcm
from mediaserver.media.ports import PortAllocator
from mediaserver.media.rtp import RtpPacket, build_rtp, is_rtcp, parse_rtp
from tests.support.net import HOST, free_port_block

TE_PT = 101
PEER_SSRC = 0x1234ABCD


class Peer:
    """A plain UDP socket playing the other end of the call."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.addr: tuple[str, int] = self.sock.getsockname()
        self.seq = 1000
        self.ts = 50000

    def send(self, leg: RtpLeg, data: bytes) -> None:
        self.sock.sendto(data, (HOST, leg.local_port))

    def send_audio(
        self,
        leg: RtpLeg,
        payload: bytes,
        pt: int = 0,
        *,
        marker: bool = False,
        ssrc: int = PEER_SSRC,
    ) -> tuple[int, int]:
        """Send one RTP packet; return its sequence number and timestamp."""
        sent = (self.seq, self.ts)
        self.send(leg, build_rtp(pt, self.seq, self.ts, ssrc, payload, marker))
        self.seq += 1
        self.ts += len(payload)
        return sent

    async def recv(self, timeout: float = 1.0) -> RtpPacket:
        loop = asyncio.get_running_loop()
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 2048), timeout)
        return parse_rtp(data)

    async def collect(self, seconds: float) -> list[tuple[float, RtpPacket]]:
        """Everything received for ``seconds``, with the loop time of arrival."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        got: list[tuple[float, RtpPacket]] = []
        while (left := end - loop.time()) > 0:
            try:
                packet = await self.recv(left)
            except TimeoutError:
                break
            got.append((loop.time(), packet))
        return got

    def drain(self) -> int:
        count = 0
        while True:
            try:
                self.sock.recv(2048)
            except BlockingIOError:
                return count
            count += 1


@pytest.fixture
async def clock() -> AsyncIterator[MediaClock]:
    clock = MediaClock()
    yield clock
    clock.stop()


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.sock.close()


@pytest.fixture
def peer(peers: list[Peer]) -> Peer:
    made = Peer()
    peers.append(made)
    return made


@pytest.fixture
def other(peers: list[Peer]) -> Peer:
    made = Peer()
    peers.append(made)
    return made


class Legs:
    """Binds legs through a PortAllocator, as the server does, and closes them after."""

    def __init__(self, clock: MediaClock) -> None:
        base = free_port_block(8, even=True)
        self.ports = PortAllocator(base, base + 7)
        self.clock = clock
        self.digits: list[str] = []
        self.opened: list[RtpLeg] = []

    async def open(
        self, remote: tuple[str, int] | None = None, codec: Codec = PCMU, te_pt: int | None = TE_PT
    ) -> RtpLeg:
        def factory() -> RtpLeg:
            return RtpLeg(
                self.clock,
                codec,
                payload_type=codec.payload_type,
                telephone_event_pt=te_pt,
                remote=remote,
                on_digit=self.digits.append,
            )

        transport, leg, port = await self.ports.bind(HOST, factory)
        leg.local_port = port
        assert leg.transport is transport
        self.opened.append(leg)
        return leg


@pytest.fixture
async def legs(clock: MediaClock) -> AsyncIterator[Legs]:
    made = Legs(clock)
    yield made
    for leg in made.opened:
        leg.close()


async def until(condition: object, timeout: float = 2.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


def tone(seconds: float, hz: float = 440.0) -> Pcm:
    t = np.arange(round(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


AUDIO = bytes(range(0x20, 0x20 + 160))  # any 160-byte PCMU payload


# -- receiving ----------------------------------------------------------------------


async def test_the_sdp_address_latches_at_once_and_others_are_refused(
    legs: Legs, peer: Peer, other: Peer
) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.set_echo(True)
    peer.send_audio(leg, AUDIO)
    await until(lambda: leg.stats["packets_in"] == 1)
    assert (await peer.recv()).payload == AUDIO
    other.send_audio(leg, AUDIO, ssrc=0x66)  # not the latched stream: refused
    other.send_audio(leg, AUDIO, ssrc=0x66)
    await until(lambda: leg.stats["rtp_refused_source"] == 2)
    assert leg.stats["packets_in"] == 1 and leg.remote == peer.addr
    await asyncio.sleep(0.05)
    assert other.drain() == 0


async def test_a_nat_peer_is_learnt_from_a_stream(legs: Legs, peer: Peer, other: Peer) -> None:
    sdp = Peer()  # where the SDP said the peer is; its packets come from elsewhere (NAT)
    try:
        leg = await legs.open(remote=sdp.addr)
        leg.set_echo(True)
        for _ in range(STREAM_PACKETS - 1):
            peer.send_audio(leg, AUDIO)
        await until(lambda: leg.stats["rtp_learning"] == STREAM_PACKETS - 1)
        assert leg.stats["packets_in"] == 0 and leg.remote == sdp.addr  # not yet
        peer.send_audio(leg, AUDIO)  # the stream is long enough: latched
        await until(lambda: leg.stats["packets_in"] == 1)
        assert leg.remote == peer.addr
        assert (await peer.recv()).payload == AUDIO  # answered where the packets come from

        other.send_audio(leg, AUDIO, ssrc=0x66)
        other.send_audio(leg, AUDIO, ssrc=0x66)
        await until(lambda: leg.stats["rtp_refused_source"] == 2)
        assert leg.stats["packets_in"] == 1 and leg.remote == peer.addr
        peer.send_audio(leg, AUDIO)
        await until(lambda: leg.stats["packets_in"] == 2)
        assert (await peer.recv()).payload == AUDIO
        await asyncio.sleep(0.05)
        assert other.drain() == 0 and sdp.drain() == 0
    finally:
        sdp.sock.close()


async def test_nothing_goes_to_an_unreachable_sdp_address_before_the_stream(
    legs: Legs, peer: Peer
) -> None:
    """SDP on a private address that is not the signalling host (a NAT's inside, here
    another loopback address): media waits for the peer's stream, then goes there."""
    inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inside.bind(("127.0.0.2", 0))
    inside.setblocking(False)
    try:
        leg = await legs.open(remote=inside.getsockname())
        assert leg.remote == inside.getsockname()  # the signalling host is not known yet
        leg.signalling_from(HOST)
        assert leg.remote is None
        leg.start()
        await asyncio.sleep(4 * PTIME)
        for _ in range(STREAM_PACKETS):
            peer.send_audio(leg, AUDIO)
        await until(lambda: leg.remote == peer.addr)
        assert len(await peer.collect(3 * PTIME)) >= 2
        with pytest.raises(BlockingIOError):
            inside.recv(2048)
        leg.learn_sources(LearnMode.STRICT)  # strict: the SDP's address, whatever it is
        leg.update_remote(("127.0.0.2", 4000), PCMU, PCMU.payload_type, TE_PT)
        assert leg.remote == ("127.0.0.2", 4000)
    finally:
        inside.close()


async def test_rtcp_from_another_host_is_refused(legs: Legs, peer: Peer) -> None:
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.2", 0))  # another loopback address: another host
    try:
        leg = await legs.open(remote=peer.addr)
        receiver_report = bytes([0x80, 201, 0, 1]) + PEER_SSRC.to_bytes(4, "big")
        intruder.sendto(receiver_report, (HOST, leg.local_port))  # multiplexed (RFC 5761)
        intruder.sendto(receiver_report, (HOST, leg.local_port + 1))  # on the RTCP port
        await until(lambda: leg.stats["rtcp_refused_source"] == 1)
        ok = await leg.open_rtcp(HOST, leg.local_port + 1)
        intruder.sendto(receiver_report, (HOST, leg.local_port + 1))
        await until(lambda: leg.stats["rtcp_refused_source"] == 1 + ok)
        peer.send(leg, receiver_report)
        await until(lambda: leg.stats["rtcp_in"] == 1)
        assert leg.snapshot()["rtcp_in"] == 1
    finally:
        intruder.close()


async def test_malformed_packets_are_counted_and_dropped(legs: Legs, peer: Peer) -> None:
    leg = await legs.open()
    leg.set_echo(True)
    peer.send(leg, b"\x80\x00\x01")  # shorter than an RTP header
    peer.send(leg, b"\x40" + bytes(171))  # RTP version 1
    peer.send(leg, b"\x8f" + bytes(20))  # 15 CSRCs announced, none there
    await until(lambda: leg.stats["malformed"] == 3)
    assert leg.stats["packets_in"] == 0
    assert leg.remote is None  # a bad packet latches nothing
    await asyncio.sleep(0.03)
    assert peer.drain() == 0


async def test_stun_keepalives_are_counted_apart_and_ignored(legs: Legs, peer: Peer) -> None:
    """Linphone sends STUN binding requests to the media ports (RFC 7983 7): no media,
    not malformed, nothing latched, no answer."""
    leg = await legs.open()
    leg.set_echo(True)
    binding = bytes.fromhex("000100002112a442") + bytes(12)
    peer.send(leg, binding)
    peer.send(leg, binding)
    await until(lambda: leg.stats["stun_in"] == 2)
    assert leg.stats["malformed"] == 0 and leg.stats["packets_in"] == 0
    assert leg.remote is None
    leg.reports.receive(binding)  # the same on the RTCP port
    snapshot = leg.snapshot()
    assert snapshot["stun_in"] == 3 and snapshot["rtcp_malformed"] == 0
    await asyncio.sleep(0.03)
    assert peer.drain() == 0


async def test_unknown_payload_types_are_counted_and_not_echoed(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.set_echo(True)
    peer.send_audio(leg, AUDIO, pt=PCMA.payload_type)  # not the negotiated codec
    peer.send_audio(leg, bytes(24), pt=13)  # comfort noise, not negotiated either
    await until(lambda: leg.stats["unknown_payload_type"] == 2)
    assert leg.stats["packets_in"] == 2
    await asyncio.sleep(0.03)
    assert peer.drain() == 0


async def test_rtcp_is_counted_and_not_taken_for_rtp(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    # RFC 3550 6.4.2: a receiver report with no report block (PT 201), 8 bytes.
    receiver_report = bytes([0x80, 201, 0, 1]) + PEER_SSRC.to_bytes(4, "big")
    peer.send(leg, receiver_report)
    peer.send(leg, receiver_report)
    await until(lambda: leg.stats["rtcp_in"] == 2)
    assert leg.stats["packets_in"] == 0 and leg.stats["malformed"] == 0
    assert leg.latch.peer is None


async def test_rtcp_muxed_goes_out_on_the_rtp_port(legs: Legs, peer: Peer) -> None:
    """RFC 5761 4: with rtcp-mux agreed, our reports reach the peer's RTP address."""
    leg = await legs.open(remote=peer.addr)
    leg.multiplex_rtcp()
    leg.reports._report()  # what the report timer does
    loop = asyncio.get_running_loop()
    data, _ = await asyncio.wait_for(loop.sock_recvfrom(peer.sock, 2048), 1.0)
    assert is_rtcp(data) and data[1] in (200, 201)  # a sender or receiver report
    assert leg.snapshot()["rtcp_out"] == 1


# -- echo ---------------------------------------------------------------------------


async def test_echo_sends_the_payload_back_with_our_own_stream(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.set_echo(True)
    # 20, 30, 20, 10 and 20 ms packets: our timestamps advance by the samples of each.
    sizes = [160, 240, 160, 80, 160]
    payloads = [bytes([i + 1]) * size for i, size in enumerate(sizes)]
    for payload in payloads:
        peer.send_audio(leg, payload, marker=payload == payloads[0])
    echoed = [await peer.recv() for _ in payloads]
    assert [p.payload for p in echoed] == payloads
    assert {p.payload_type for p in echoed} == {PCMU.payload_type}
    ssrcs = {p.ssrc for p in echoed}
    assert len(ssrcs) == 1 and ssrcs != {PEER_SSRC}
    first = echoed[0]
    assert [p.sequence for p in echoed] == [(first.sequence + i) & 0xFFFF for i in range(5)]
    offsets = [0, 160, 400, 560, 640]
    assert [p.timestamp for p in echoed] == [(first.timestamp + o) & 0xFFFFFFFF for o in offsets]
    # RFC 3551 4.1: the marker starts a talkspurt: the first echoed packet only.
    assert [p.marker for p in echoed] == [True, False, False, False, False]
    assert leg.stats["packets_out"] == 5


async def test_echo_keeps_one_stream_with_the_frames_sent_before(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.start()
    sent = await peer.collect(3 * PTIME)
    leg.set_echo(True)
    count = leg.stats["packets_out"]
    sent += await peer.collect(3 * PTIME)
    assert len(sent) == count  # nothing more is sent on the clock while echoing
    before = sent[-1][1]
    peer.send_audio(leg, AUDIO)
    echoed = await peer.recv()
    assert echoed.ssrc == before.ssrc
    assert echoed.sequence == (before.sequence + 1) & 0xFFFF
    assert echoed.timestamp == (before.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
    assert echoed.marker


# -- playback and silence -----------------------------------------------------------


async def test_playback_sends_20ms_frames_paced_by_the_clock(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    audio = tone(0.41)  # 20.5 frames: the last one is padded with silence
    loop = asyncio.get_running_loop()
    started = loop.time()
    playback = leg.play(audio)
    assert leg.sending
    got = await peer.collect(0.6)
    await asyncio.wait_for(playback.done, 0.1)
    packets = [p for _, p in got]
    frames = [p.payload for p in packets[:21]]
    assert all(len(f) == FRAME_SAMPLES for f in frames)
    decoded = np.concatenate([ulaw_decode(f) for f in frames])
    expected = ulaw_decode(PCMU.encode(np.concatenate([audio, np.zeros(80, np.int16)])))
    assert np.array_equal(decoded, expected)
    # Paced: one frame per tick, not a burst (21 frames span 20 ticks = 0.4 s).
    times = [t for t, _ in got]
    assert times[20] - times[0] == pytest.approx(20 * PTIME, abs=0.03)
    assert times[0] - started == pytest.approx(PTIME, abs=0.02)
    # Then silence, still on the clock, as one continuous stream.
    assert len(packets) >= 26
    assert all(p.payload == silence_payload(PCMU) for p in packets[21:])
    assert [p.sequence for p in packets] == [
        (packets[0].sequence + i) & 0xFFFF for i in range(len(packets))
    ]
    assert [p.timestamp for p in packets] == [
        (packets[0].timestamp + 160 * i) & 0xFFFFFFFF for i in range(len(packets))
    ]
    assert [p.marker for p in packets[:2]] == [True, False]


async def test_nothing_is_sent_before_start_then_silence_every_20ms(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    assert await peer.collect(4 * PTIME) == []
    leg.start()
    leg.start()  # twice is once
    got = await peer.collect(0.5)
    assert 22 <= len(got) <= 27
    assert {p.payload for _, p in got} == {silence_payload(PCMU)}
    assert {p.payload_type for _, p in got} == {PCMU.payload_type}
    assert len(legs.clock) == 1


async def test_a_new_playback_replaces_the_current_one(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    first = leg.play(tone(2.0))
    await peer.collect(3 * PTIME)
    second = leg.play(np.full(FRAME_SAMPLES * 2, 1000, np.int16))
    assert first.done.done()  # the replaced playback is finished for whoever awaits it
    await asyncio.wait_for(second.done, 0.5)
    leg.stop_playback()
    assert second.done.done()


@pytest.mark.parametrize("length", [FRAME_SAMPLES * 3, 410, 100, 1])
async def test_a_looped_playback_has_no_seam(length: int) -> None:
    """Frames of a looped piece are the piece repeated end to end, never padded,
    whatever its length (a whole number of frames, a fraction, less than one)."""
    audio = np.arange(1, length + 1, dtype=np.int16)
    playback = Playback(audio, loop=True)
    frames = [playback.next_frame() for _ in range(12)]
    sent = np.concatenate([f for f in frames if f is not None])
    assert len(sent) == 12 * FRAME_SAMPLES
    assert np.array_equal(sent, np.resize(audio, 12 * FRAME_SAMPLES))
    assert not playback.completed and not playback.done.done()


async def test_a_looped_playback_plays_until_stopped(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    looped = leg.play(np.full(FRAME_SAMPLES // 2, 2000, np.int16), loop=True)
    got = await peer.collect(0.3)
    assert len(got) >= 10
    assert {p.payload for _, p in got} == {PCMU.encode(np.full(FRAME_SAMPLES, 2000, np.int16))}
    assert not looped.done.done()
    leg.stop_playback()
    assert looped.done.done() and not looped.completed


# -- DTMF ---------------------------------------------------------------------------


async def send_digit(peer: Peer, leg: RtpLeg, key: str, *, ends: bool = True) -> None:
    """The RFC 4733 packets of one key, 20 ms apart, all with the tone's start timestamp."""
    start = peer.ts
    packets = tone_event_packets(key, 100)
    if not ends:
        packets = [p for p in packets if not p[0][1] & 0x80]
    for payload, marker in packets:
        peer.send(leg, build_rtp(TE_PT, peer.seq, start, PEER_SSRC, payload, marker))
        peer.seq += 1
        await asyncio.sleep(0.005)
    peer.ts += 1600


async def test_rfc4733_digits_are_reported_once(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    await send_digit(peer, leg, "5")  # 4 updates and the end packet three times
    await until(lambda: leg.stats["packets_in"] == 7)
    assert legs.digits == ["5"]
    await send_digit(peer, leg, "#")
    await send_digit(peer, leg, "5")
    await until(lambda: leg.stats["packets_in"] == 21)
    assert legs.digits == ["5", "#", "5"]
    assert leg.stats["dtmf_in"] == 3
    assert leg.stats["unknown_payload_type"] == 0


async def test_a_digit_whose_end_packets_are_lost_is_reported_on_the_clock(
    legs: Legs, peer: Peer
) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.start()
    await send_digit(peer, leg, "7", ends=False)
    assert legs.digits == []
    await until(lambda: legs.digits == ["7"], timeout=2.0)  # after the receiver's timeout


async def test_telephone_events_are_ignored_when_not_negotiated(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr, te_pt=None)
    await send_digit(peer, leg, "1")
    await until(lambda: leg.stats["unknown_payload_type"] == 7)
    assert legs.digits == []


# -- hold, re-INVITE, close ---------------------------------------------------------


async def test_a_null_address_puts_the_peer_on_hold(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.start()
    assert len(await peer.collect(3 * PTIME)) >= 2
    # RFC 3264 8.4: c=0.0.0.0 in a re-INVITE: send nothing, even if the peer goes on sending.
    leg.update_remote(("0.0.0.0", peer.addr[1]), PCMU, PCMU.payload_type, TE_PT)
    await asyncio.sleep(PTIME)
    peer.drain()
    for _ in range(3):
        peer.send_audio(leg, AUDIO)
        await asyncio.sleep(PTIME)
    assert await peer.collect(4 * PTIME) == []
    assert leg.remote is None
    assert leg.stats["packets_in"] == 3  # what the peer sends on hold is still received
    assert leg.stats["rtp_refused_source"] == 0

    # Off hold: a real address again, and the stream resumes.
    leg.update_remote(peer.addr, PCMU, PCMU.payload_type, TE_PT)
    assert len(await peer.collect(3 * PTIME)) >= 2


async def test_update_remote_moves_the_stream_and_changes_codec(
    legs: Legs, peer: Peer, other: Peer
) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.start()
    await peer.collect(2 * PTIME)
    leg.update_remote(other.addr, PCMA, PCMA.payload_type, 96)
    await asyncio.sleep(PTIME)
    peer.drain()
    got = [p for _, p in await other.collect(4 * PTIME)]
    assert len(got) >= 3
    assert {p.payload_type for p in got} == {PCMA.payload_type}
    assert {p.payload for p in got} == {silence_payload(PCMA)}
    assert peer.drain() == 0
    # The new address latches again: the first packet's source becomes the peer.
    other.send_audio(leg, AUDIO, pt=PCMA.payload_type)
    await until(lambda: leg.stats["packets_in"] == 1)
    assert leg.remote == other.addr


async def test_close_stops_everything(legs: Legs, peer: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    playback = leg.play(tone(2.0))
    await peer.collect(2 * PTIME)
    leg.close()
    assert playback.done.done()
    assert not leg.sending
    assert len(legs.clock) == 0
    assert leg.transport is not None and leg.transport.is_closing()
    await asyncio.sleep(PTIME)
    peer.drain()
    assert await peer.collect(4 * PTIME) == []
    # The port is closed: nothing arrives any more.
    peer.send_audio(leg, AUDIO)
    await asyncio.sleep(0.02)
    assert leg.stats["packets_in"] == 0


async def test_snapshot_counts_everything(legs: Legs, peer: Peer, other: Peer) -> None:
    leg = await legs.open(remote=peer.addr)
    leg.set_echo(True)
    peer.send_audio(leg, AUDIO)
    peer.send_audio(leg, AUDIO)
    other.send_audio(leg, AUDIO, ssrc=0x66)
    peer.send(leg, b"\x00")
    peer.send(leg, bytes([0x80, 200]) + bytes(26))  # a sender report
    peer.send(leg, build_rtp(TE_PT, peer.seq, peer.ts, PEER_SSRC, b"\x01\x02\x03"))  # 3 bytes
    peer.send(leg, build_rtp(0, peer.seq + 1, peer.ts, 0x55, AUDIO))  # the peer restarted
    await until(lambda: leg.stats["packets_in"] == 4)
    await until(lambda: leg.stats["packets_out"] == 3)
    snapshot = leg.snapshot()
    assert {k: snapshot[k] for k in ("packets_in", "bytes_in", "packets_out")} == {
        "packets_in": 4,
        "bytes_in": 3 * 160 + 3,
        "packets_out": 3,
    }
    assert snapshot["rtp_refused_source"] == 1
    assert snapshot["malformed"] == 1
    assert snapshot["rtcp_malformed"] == 1  # the 28-byte "sender report" has a bad length
    assert snapshot["ssrc_changes"] == 1
    assert snapshot["dtmf_dropped"] == 1
    assert snapshot["lost"] == 0 and snapshot["jitter_ms"] is not None
