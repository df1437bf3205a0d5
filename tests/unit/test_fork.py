"""Media forking: the destinations (parsed and checked), STREP headers, a forked RTP leg
on real UDP sockets (127.0.0.1), and fork@v1 against a fake call.

Leg tests compare the forked datagrams byte for byte with what the leg received
and what the peer received, including a bridge, whose relay leaves its fast path
while either leg is forked."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from test_leg import AUDIO, HOST, PEER_SSRC, Legs, Peer, until
from test_runner_fakes import run_actions, scenario_text

from mediaserver.actions.scenario import load_scenario_text
from mediaserver.media.clock import MediaClock
from mediaserver.media.fork import (
    STREP_HEADER_SIZE,
    ForkError,
    ForkTargets,
    MediaFork,
    check_family,
    fork_targets,
    leg_id_bytes,
    parse_address,
    strep_header,
)
from mediaserver.media.leg import RtpLeg
from mediaserver.media.rtp import build_rtp, parse_rtp
from mediaserver.yamlsource import ProblemsError

LEG_ID = b"call0001" + bytes(8)

# -- destinations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("udp:127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (" UDP:192.0.2.1:65535 ", ("192.0.2.1", 65535)),
        ("udp:[::1]:9000", ("::1", 9000)),
        ("[2001:db8::1]:1", ("2001:db8::1", 1)),
    ],
)
def test_destinations_with_or_without_the_udp_scheme(text: str, address: tuple[str, int]) -> None:
    assert parse_address("rx", text) == address


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("udp:example.com:9000", "rx: 'example.com' is not an IP address"),
        ("udp:127.0.0.300:9000", "rx: '127.0.0.300' is not an IP address"),
        ("udp:127.0.0.1:0", "rx: the port must be a number 1-65535, got '0'"),
        ("udp:127.0.0.1:65536", "rx: the port must be a number 1-65535, got '65536'"),
        ("127.0.0.1:abc", "rx: the port must be a number 1-65535, got 'abc'"),
        ("127.0.0.1:", "rx: the port must be a number 1-65535, got ''"),
        ("tcp:127.0.0.1:9000", "rx: 'tcp' is not supported: forked media goes over udp"),
        ("rtp:127.0.0.1:9000", "rx: 'rtp' is not supported"),
        ("127.0.0.1", "rx: expected udp:IP:PORT or IP:PORT"),
        ("::1:9000", "rx: expected udp:IP:PORT or IP:PORT"),
        ("", "rx: expected udp:IP:PORT or IP:PORT"),
        ("udp:224.0.0.1:9000", "rx: 224.0.0.1 is a multicast address; a fork goes to one receiver"),
        ("udp:[ff02::1]:9000", "rx: ff02::1 is a multicast address"),
        ("udp:255.255.255.255:9000", "rx: 255.255.255.255 is the broadcast address"),
        ("0.0.0.0:9000", "rx: 0.0.0.0 is the unspecified address"),
        ("[::]:9000", "rx: :: is the unspecified address"),
    ],
)
def test_bad_destinations_are_refused_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(ForkError) as caught:
        parse_address("rx", text)
    assert str(caught.value).startswith(problem), str(caught.value)
    assert caught.value.field == "rx"


def test_a_request_is_target_or_rx_and_tx() -> None:
    assert fork_targets(target="udp:127.0.0.1:9000") == ForkTargets(target=("127.0.0.1", 9000))
    both = fork_targets(rx="127.0.0.1:9000", tx="udp:127.0.0.1:9001", stream_type="decrypted")
    assert (both.rx, both.tx, both.target) == (("127.0.0.1", 9000), ("127.0.0.1", 9001), None)
    assert fork_targets(tx="127.0.0.1:9001", rx="").addresses() == [("tx", ("127.0.0.1", 9001))]
    cases = [
        ({"target": "udp:127.0.0.1:1", "rx": "127.0.0.1:2"}, "target: give either target, or"),
        ({}, "target: give target (both directions), or rx and/or tx"),
        ({"rx": "", "tx": None}, "target: give target"),
        ({"rx": "127.0.0.1:2", "stream_type": "decrypted"}, "stream_type: decrypted needs both"),
        ({"target": "udp:127.0.0.1:1", "stream_type": "srtp"}, "stream_type: expected raw or"),
        ({"tx": "udp:localhost:9000"}, "tx: 'localhost' is not an IP address"),
        ({"target": "tcp:127.0.0.1:9000"}, "target: 'tcp' is not supported"),
    ]
    for fields, problem in cases:
        with pytest.raises(ForkError) as caught:
            fork_targets(**fields)  # type: ignore[arg-type]
        assert str(caught.value).startswith(problem), (fields, str(caught.value))


def test_the_address_family_must_be_the_sockets() -> None:
    check_family(fork_targets(rx="127.0.0.1:9", tx="127.0.0.2:9"), ipv6_socket=False)
    check_family(fork_targets(target="[::1]:9"), ipv6_socket=True)
    with pytest.raises(ForkError, match=r"^tx: ::1 is IPv6 but the call's RTP socket is IPv4"):
        check_family(fork_targets(rx="127.0.0.1:9", tx="[::1]:9"), ipv6_socket=False)
    with pytest.raises(ForkError, match=r"^target: 127.0.0.1 is IPv4 but .* is IPv6"):
        check_family(fork_targets(target="127.0.0.1:9"), ipv6_socket=True)


# -- STREP -------------------------------------------------------------------------------


def test_strep_header_layout() -> None:
    """Telnyx fork_start: 0b11, version 0001, L, D; the header length (24); 6 reserved
    bytes; the 16-byte call leg id."""
    leg_id = uuid.UUID("428c31b6-7af4-4bcb-b7f5-5013ef9657c1")
    a_in = strep_header(b_leg=False, sent=False, call_leg_id=leg_id.bytes)
    b_out = strep_header(b_leg=True, sent=True, call_leg_id=leg_id.bytes)
    assert len(a_in) == STREP_HEADER_SIZE == 24
    assert a_in[0] == 0b11_0001_0_0 and b_out[0] == 0b11_0001_1_1
    assert strep_header(b_leg=False, sent=True, call_leg_id=bytes(16))[0] == 0b11_0001_0_1
    assert a_in[1] == 24 and a_in[2:8] == bytes(6)
    assert a_in[8:] == b_out[8:] == leg_id.bytes


def test_call_leg_ids_are_16_bytes() -> None:
    text = "428c31b6-7af4-4bcb-b7f5-5013ef9657c1"
    assert leg_id_bytes(text) == uuid.UUID(text).bytes
    assert leg_id_bytes("k3d9x0qa") == b"k3d9x0qa" + bytes(8)
    with pytest.raises(ValueError, match="over 16 bytes"):
        leg_id_bytes("x" * 17)


def test_a_fork_copies_each_direction_where_asked() -> None:
    out: list[tuple[bytes, tuple[str, int]]] = []
    rx, tx = ("127.0.0.1", 1), ("127.0.0.1", 2)
    fork = MediaFork(ForkTargets(rx=rx, tx=tx), lambda d, a: out.append((d, a)), call_leg_id=LEG_ID)
    fork.received(b"in")
    fork.sent(b"out")
    assert out == [(b"in", rx), (b"out", tx)]
    out.clear()
    only_rx = MediaFork(ForkTargets(rx=rx), lambda d, a: out.append((d, a)), call_leg_id=LEG_ID)
    only_rx.sent(b"out")
    assert out == [] and only_rx.sent_copies == 0
    one = ("127.0.0.1", 3)
    leg_id = LEG_ID
    both = MediaFork(ForkTargets(target=one), lambda d, a: out.append((d, a)), call_leg_id=leg_id)
    both.received(b"in")
    both.sent(b"out")
    assert out == [
        (strep_header(b_leg=False, sent=False, call_leg_id=leg_id) + b"in", one),
        (strep_header(b_leg=False, sent=True, call_leg_id=leg_id) + b"out", one),
    ]
    assert (both.received_copies, both.sent_copies) == (1, 1)


# -- a forked leg on real sockets ----------------------------------------------------------


class Receiver:
    """A fork's destination: a UDP socket on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.addr: tuple[str, int] = self.sock.getsockname()
        self.spec = f"udp:{self.addr[0]}:{self.addr[1]}"

    async def take(self, count: int, timeout: float = 2.0) -> list[bytes]:
        loop = asyncio.get_running_loop()
        return [
            (await asyncio.wait_for(loop.sock_recvfrom(self.sock, 2048), timeout))[0]
            for _ in range(count)
        ]

    def pending(self) -> list[bytes]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(2048))
            except BlockingIOError:
                return got


@pytest.fixture
async def clock() -> AsyncIterator[MediaClock]:
    clock = MediaClock()
    yield clock
    clock.stop()


@pytest.fixture
async def legs(clock: MediaClock) -> AsyncIterator[Legs]:
    made = Legs(clock)
    yield made
    for leg in made.opened:
        leg.close()


@pytest.fixture
def sockets() -> list[Peer | Receiver]:
    return []


@pytest.fixture
def peer(sockets: list[Peer | Receiver]) -> Peer:
    sockets.append(made := Peer())
    return made


@pytest.fixture
def other(sockets: list[Peer | Receiver]) -> Peer:
    sockets.append(made := Peer())
    return made


@pytest.fixture
def receivers(sockets: list[Peer | Receiver]) -> list[Receiver]:
    made = [Receiver() for _ in range(3)]
    sockets.extend(made)
    return made


def fork_of(leg: RtpLeg, **fields: str) -> MediaFork:
    assert leg.transport is not None
    return MediaFork(fork_targets(**fields), leg.transport.sendto, call_leg_id=LEG_ID)


async def test_an_echo_is_forked_both_ways_byte_for_byte(
    legs: Legs, peer: Peer, receivers: list[Receiver]
) -> None:
    rx, tx, _ = receivers
    leg = await legs.open(remote=peer.addr)
    leg.set_echo(True)
    assert leg.start_fork(fork_of(leg, rx=rx.spec, tx=tx.spec)) is None
    sent = [build_rtp(0, 100 + i, 160 * i, PEER_SSRC, bytes([i]) * 160) for i in range(5)]
    for data in sent:
        peer.send(leg, data)
    loop = asyncio.get_running_loop()
    echoed = [(await asyncio.wait_for(loop.sock_recv(peer.sock, 2048), 2)) for _ in sent]
    assert await rx.take(5) == sent  # what the peer sent, as it arrived
    assert await tx.take(5) == echoed  # what the peer got, as it was sent
    assert [parse_rtp(d).payload for d in echoed] == [parse_rtp(d).payload for d in sent]
    fork = leg.stop_fork()
    assert fork is not None and (fork.received_copies, fork.sent_copies) == (5, 5)
    assert fork.stop_reason == "stopped"
    assert (leg.stats["forked_rx"], leg.stats["forked_tx"]) == (5, 5)
    peer.send_audio(leg, AUDIO)
    await asyncio.wait_for(loop.sock_recv(peer.sock, 2048), 2)  # still echoed...
    await asyncio.sleep(0.05)
    assert rx.pending() == [] and tx.pending() == []  # ...but no longer forked
    assert leg.stop_fork() is None


async def test_refused_sources_are_not_forked(
    legs: Legs, peer: Peer, other: Peer, receivers: list[Receiver]
) -> None:
    rx = receivers[0]
    leg = await legs.open(remote=peer.addr)
    leg.start_fork(fork_of(leg, rx=rx.spec))
    other.send_audio(leg, b"\x01" * 160)  # a stranger: refused by latching
    mine = build_rtp(0, 7, 0, PEER_SSRC, b"\x02" * 160)
    peer.send(leg, mine)
    assert await rx.take(1) == [mine]
    await asyncio.sleep(0.05)
    assert rx.pending() == []
    assert leg.stats["rtp_refused_source"] + leg.stats["rtp_learning"] == 1  # on probation


async def test_played_audio_and_silence_are_forked_as_sent(
    legs: Legs, peer: Peer, receivers: list[Receiver]
) -> None:
    target = receivers[0]
    leg = await legs.open(remote=peer.addr)
    leg.start_fork(fork_of(leg, target=target.spec))
    leg.start()  # silence every 20 ms
    loop = asyncio.get_running_loop()
    got = [await asyncio.wait_for(loop.sock_recv(peer.sock, 2048), 2) for _ in range(3)]
    copies = await target.take(3)
    header = strep_header(b_leg=False, sent=True, call_leg_id=LEG_ID)
    assert copies == [header + data for data in got]
    peer.send(leg, received := build_rtp(0, 1, 0, PEER_SSRC, AUDIO))
    await until(lambda: leg.stats["packets_in"] == 1)
    inbound = strep_header(b_leg=False, sent=False, call_leg_id=LEG_ID)
    assert inbound + received in await target.take(4)


async def test_a_bridge_leaves_its_fast_path_while_either_leg_is_forked(
    legs: Legs, peer: Peer, other: Peer, receivers: list[Receiver]
) -> None:
    """A bridged call's tx is what its peer receives: the other party's audio, relayed."""
    rx, tx, _ = receivers
    caller = await legs.open(remote=peer.addr)
    callee = await legs.open(remote=other.addr)
    caller.relay_to(callee)
    callee.relay_to(caller)
    assert caller._fast_target is callee and callee._fast_target is caller
    # Fork the caller once bridged (the API's case): the callee's relay to it slows down too.
    caller.start_fork(fork_of(caller, rx=rx.spec, tx=tx.spec))
    assert caller._fast_target is None and callee._fast_target is None
    loop = asyncio.get_running_loop()
    from_callee = [build_rtp(0, 50 + i, 160 * i, 0xBEEF, bytes([0x40 + i]) * 160) for i in range(3)]
    for data in from_callee:
        other.send(callee, data)
    heard = [await asyncio.wait_for(loop.sock_recv(peer.sock, 2048), 2) for _ in from_callee]
    assert await tx.take(3) == heard  # the caller's peer got exactly these
    assert [parse_rtp(d).payload for d in heard] == [parse_rtp(d).payload for d in from_callee]
    from_caller = [build_rtp(0, 9 + i, 160 * i, PEER_SSRC, bytes([96 + i]) * 160) for i in range(3)]
    for data in from_caller:
        peer.send(caller, data)
    assert await rx.take(3) == from_caller
    for _ in from_caller:
        await asyncio.wait_for(loop.sock_recv(other.sock, 2048), 2)  # still relayed across
    caller.stop_fork()
    assert caller._fast_target is callee and callee._fast_target is caller
    # Forked before the bridge (fork@v1, then dial@v1): the relay set-up sees the fork.
    caller.relay_to(None)
    callee.relay_to(None)
    caller.start_fork(fork_of(caller, tx=tx.spec))
    caller.relay_to(callee)
    callee.relay_to(caller)
    assert caller._fast_target is None and callee._fast_target is None
    other.send(callee, late := build_rtp(0, 60, 1600, 0xBEEF, AUDIO))
    (copy,) = await tx.take(1)
    assert parse_rtp(copy).payload == AUDIO and parse_rtp(late).payload == AUDIO


async def test_a_new_fork_replaces_the_running_one_and_close_stops_it(
    legs: Legs, peer: Peer, receivers: list[Receiver]
) -> None:
    first, second, _ = receivers
    leg = await legs.open(remote=peer.addr)
    old = fork_of(leg, rx=first.spec)
    leg.start_fork(old)
    peer.send_audio(leg, AUDIO)
    assert len(await first.take(1)) == 1
    assert leg.start_fork(fork_of(leg, rx=second.spec)) is old
    assert old.stop_reason == "replaced"
    running = leg.fork
    peer.send_audio(leg, AUDIO)
    assert len(await second.take(1)) == 1
    leg.close()
    assert leg.fork is None and leg.stats["forked_rx"] == 2
    assert running is not None and running.stop_reason == "hangup"
    await asyncio.sleep(0.05)
    assert first.pending() == [] and second.pending() == []


# -- fork@v1 --------------------------------------------------------------------------------


def problems(actions: str) -> list[str]:
    try:
        load_scenario_text(scenario_text(actions), "t.yaml")
    except ProblemsError as exc:
        return [problem.message for problem in exc.problems]
    return []


def test_fork_action_checks_literal_destinations_when_loading() -> None:
    assert problems("- {action: fork@v1, params: {rx: 'udp:127.0.0.1:9', tx: '127.0.0.1:8'}}") == []
    assert problems("- {action: fork@v1, params: {target: 'udp:${$call.id}:9000'}}") == []
    assert problems("- {action: fork@v1, params: {stop: true}}") == []
    (bad_port,) = problems("- {action: fork@v1, params: {rx: 'udp:127.0.0.1:0'}}")
    assert "fork@v1: rx: the port must be a number 1-65535, got '0'" in bad_port
    (both,) = problems("- {action: fork@v1, params: {rx: '127.0.0.1:1', target: '127.0.0.1:2'}}")
    assert "give either target, or rx and tx, not both" in both
    (none,) = problems("- {action: fork@v1}")
    assert "give target (both directions), or rx and/or tx" in none
    (plain,) = problems("- {action: fork@v1, params: {rx: '127.0.0.1:1', stream_type: decrypted}}")
    assert "fork@v1: stream_type: decrypted needs both rx and tx (and no target)" in plain
    rx, tx = problems("- {action: fork@v1, params: {rx: 'tcp:127.0.0.1:9', tx: '127.0.0.1:0'}}")
    assert "fork@v1: rx: 'tcp' is not supported" in rx and "fork@v1: tx: the port" in tx
    (stop,) = problems("- {action: fork@v1, params: {stop: true, tx: '127.0.0.1:1'}}")
    assert "stop: true takes no rx, tx or target" in stop


async def test_fork_action_starts_replaces_and_stops() -> None:
    outcome, call, _ = await run_actions(
        """
        - {action: fork@v1, params: {rx: "udp:127.0.0.1:${$port}", tx: "127.0.0.1:9001"}}
        - {action: fork@v1, params: {target: "udp:127.0.0.1:9002"}}
        - {action: fork@v1, params: {stop: true}}
        """,
        header="variables:\n  $port: 9000\n",
    )
    assert outcome.status == "completed", outcome.error
    assert [e for _, e in call.events] == ["fork:rx,tx", "fork:target", "fork-stop"]


async def test_fork_action_failures_name_the_field() -> None:
    outcome, _, _ = await run_actions(
        "- {action: fork@v1, params: {rx: 'udp:${$host}:9000'}}",
        header="variables:\n  $host: example.com\n",
    )
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("fork@v1 at test.yaml:6: rx: 'example.com' is not an IP")
    outcome, _, _ = await run_actions("- {action: fork@v1, params: {stop: true}}")
    assert outcome.error == "fork@v1 at test.yaml:4: nothing to stop: the call is not forking"


async def test_a_fork_to_a_closed_port_costs_the_call_nothing(legs: Legs, peer: Peer) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind((HOST, 0))
    nobody = f"udp:{HOST}:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there now: the kernel answers ICMP port unreachable
    leg = await legs.open(remote=peer.addr)
    leg.set_echo(True)
    leg.start_fork(fork_of(leg, rx=nobody, tx=nobody))
    loop = asyncio.get_running_loop()
    for _ in range(20):
        peer.send_audio(leg, AUDIO)
        echoed = parse_rtp(await asyncio.wait_for(loop.sock_recv(peer.sock, 2048), 2))
        assert echoed.payload == AUDIO
    assert leg.fork is not None and leg.fork.received_copies == leg.fork.sent_copies == 20
