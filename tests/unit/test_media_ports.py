"""RTP port allocation: even ports, round-robin, busy ports skipped, exhaustion."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from mediaserver.media.ports import NoFreePort, PortAllocator
from tests.support.net import HOST, free_port_block


@pytest.fixture
async def transports() -> AsyncIterator[list[asyncio.DatagramTransport]]:
    """Transports bound during a test, closed at its end."""
    opened: list[asyncio.DatagramTransport] = []
    yield opened
    for transport in opened:
        transport.close()


async def bind(allocator: PortAllocator, opened: list[asyncio.DatagramTransport]) -> int:
    transport, protocol, port = await allocator.bind(HOST, asyncio.DatagramProtocol)
    opened.append(transport)
    assert isinstance(protocol, asyncio.DatagramProtocol)
    assert transport.get_extra_info("sockname") == (HOST, port)
    return port


def test_only_even_ports_with_their_odd_neighbour_in_range() -> None:
    # RFC 3550 11: RTP on an even port, RTCP on the odd one above, both inside the range.
    assert PortAllocator(20001, 20009)._ports == [20002, 20004, 20006, 20008]
    assert PortAllocator(20000, 20008)._ports == [20000, 20002, 20004, 20006]
    allocator = PortAllocator(20000, 29999)
    assert allocator.capacity == 5000
    assert allocator.in_use == 0


async def test_ports_go_round_robin_and_come_back_after_release(
    transports: list[asyncio.DatagramTransport],
) -> None:
    base = free_port_block(8, even=True)
    allocator = PortAllocator(base, base + 7)  # 4 ports: base, +2, +4, +6
    assert allocator.capacity == 4
    first = await bind(allocator, transports)
    second = await bind(allocator, transports)
    assert (first, second) == (base, base + 2)
    assert allocator.in_use == 2

    transports.pop(0).close()
    await asyncio.sleep(0)  # asyncio closes the socket on the next loop iteration
    allocator.release(first)
    assert allocator.in_use == 1
    # A port just released is not handed out again at once: late packets of the old call.
    assert await bind(allocator, transports) == base + 4
    assert await bind(allocator, transports) == base + 6
    assert await bind(allocator, transports) == base  # round the range, free again
    assert allocator.in_use == 4
    with pytest.raises(NoFreePort, match=f"no free RTP port in {base}-{base + 7}"):
        await bind(allocator, transports)
    assert allocator.in_use == 4


async def test_a_port_held_by_another_socket_is_skipped(
    transports: list[asyncio.DatagramTransport],
) -> None:
    base = free_port_block(6, even=True)
    allocator = PortAllocator(base, base + 5)  # base, +2, +4
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind((HOST, base + 2))
        assert await bind(allocator, transports) == base
        assert await bind(allocator, transports) == base + 4
        assert allocator.in_use == 2
        with pytest.raises(NoFreePort):
            await bind(allocator, transports)
    # Once the other program lets go, the port is used.
    assert await bind(allocator, transports) == base + 2
    assert allocator.in_use == 3


async def test_a_one_port_range_is_exhausted_by_one_call(
    transports: list[asyncio.DatagramTransport],
) -> None:
    base = free_port_block(2, even=True)
    allocator = PortAllocator(base, base + 1)
    assert allocator.capacity == 1
    assert await bind(allocator, transports) == base
    with pytest.raises(NoFreePort):
        await bind(allocator, transports)
    transports.pop().close()
    await asyncio.sleep(0)  # asyncio closes the socket on the next loop iteration
    allocator.release(base)
    assert await bind(allocator, transports) == base


async def test_a_range_without_an_even_port_pair_is_always_full() -> None:
    allocator = PortAllocator(20001, 20002)
    assert allocator.capacity == 0
    with pytest.raises(NoFreePort, match="no free RTP port in 20001-20002"):
        await allocator.bind(HOST, asyncio.DatagramProtocol)


def test_releasing_an_unknown_port_changes_nothing() -> None:
    allocator = PortAllocator(20000, 20009)
    allocator.release(20002)
    allocator.release(1)
    assert allocator.in_use == 0


async def test_a_late_release_by_a_former_holder_frees_nothing(
    transports: list[asyncio.DatagramTransport],
) -> None:
    """Releasing twice is harmless: the second release of a port that went to
    another call meanwhile must not take it from that call."""
    base = free_port_block(2, even=True)
    allocator = PortAllocator(base, base + 1)
    transport, first, port = await allocator.bind(HOST, asyncio.DatagramProtocol)
    allocator.release(port, first)
    transport.close()
    await asyncio.sleep(0)
    transport, second, again = await allocator.bind(HOST, asyncio.DatagramProtocol)
    transports.append(transport)
    assert again == port
    allocator.release(port, first)  # the first call's cleanup, run late
    assert allocator.in_use == 1
    allocator.release(port, second)
    assert allocator.in_use == 0
