"""The REFER rules of calls/transfer.py: what a REFER or NOTIFY from the peer gets.

The call and its endpoint are small stand-ins that record the responses; the
SIP messages are real, parsed from text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

import pytest

from mediaserver.calls import transfer
from mediaserver.calls.base import Call
from mediaserver.calls.bridge import Bridge
from mediaserver.sip.message import Request, Response, parse_message
from mediaserver.sip.transaction import ServerTransaction


def request(method: str, *headers: str, body: str = "") -> Request:
    lines = [
        f"{method} sip:ms@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc",
        "From: <sip:b@127.0.0.1>;tag=1",
        "To: <sip:ms@127.0.0.1>;tag=2",
        "Call-ID: xfer-1",
        f"CSeq: 2 {method}",
        *headers,
        f"Content-Length: {len(body)}",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
    assert isinstance(message, Request)
    return message


class Endpoint:
    def __init__(self) -> None:
        self.responses: list[Response] = []

    def respond(self, tx: object, response: Response) -> None:
        self.responses.append(response)


class StandIn:
    """What on_refer and on_notify use of a call."""

    def __init__(self) -> None:
        self.endpoint = Endpoint()
        self.refer_updates: Any = None
        self.scheduled: list[Coroutine[Any, Any, None]] = []

    def schedule(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        self.scheduled.append(coroutine)
        coroutine.close()
        return asyncio.get_running_loop().create_future()

    @property
    def status(self) -> int:
        [response] = self.endpoint.responses
        return response.status


class BridgeStandIn:
    def __init__(self, callee: StandIn) -> None:
        self.callee = callee
        self.transfer: asyncio.Future[None] | None = None


TX = cast(ServerTransaction, None)


def refer(call: StandIn, bridge: BridgeStandIn | None, *headers: str) -> None:
    transfer.on_refer(cast(Call, call), cast(Bridge | None, bridge), TX, request("REFER", *headers))


async def test_a_refer_from_the_callee_of_a_bridge_is_accepted_once_at_a_time() -> None:
    callee = StandIn()
    bridge = BridgeStandIn(callee)
    refer(callee, bridge, "Refer-To: <sip:c@127.0.0.1:5080>")
    assert callee.status == 202
    assert len(callee.scheduled) == 1  # the transfer runs on: call the target, NOTIFY
    assert bridge.transfer is not None
    callee.endpoint.responses.clear()
    refer(callee, bridge, "Refer-To: <sip:d@127.0.0.1:5080>")
    assert callee.status == 491  # the first is under way
    assert len(callee.scheduled) == 1


@pytest.mark.parametrize(
    ("in_bridge", "refer_to", "status"),
    [
        (False, "Refer-To: <sip:c@127.0.0.1>", 603),  # no bridge to put the target in
        (True, "Refer-To: not a uri", 400),
        (True, "X-Other: 1", 400),  # no Refer-To at all
        (True, "Refer-To: <sip:c@127.0.0.1?Replaces=abc%3Bto-tag%3D1>", 501),  # attended
    ],
)
def test_refers_that_cannot_be_served(in_bridge: bool, refer_to: str, status: int) -> None:
    callee = StandIn()
    refer(callee, BridgeStandIn(callee) if in_bridge else None, refer_to)
    assert callee.status == status
    assert callee.scheduled == []


def test_the_caller_of_a_bridge_cannot_refer() -> None:
    caller, callee = StandIn(), StandIn()
    refer(caller, BridgeStandIn(callee), "Refer-To: <sip:c@127.0.0.1>")
    assert caller.status == 603


@pytest.mark.parametrize(
    ("headers", "body", "status", "progress"),
    [
        (
            ("Event: refer", "Content-Type: message/sipfrag;version=2.0"),
            "SIP/2.0 180 Ringing\r\n",
            200,
            [180],
        ),
        (
            ("o: refer;id=2", "Content-Type: message/sipfrag"),
            "SIP/2.0 486 Busy Here\r\n",
            200,
            [486],
        ),
        (("Event: refer", "Content-Type: text/plain"), "SIP/2.0 200 OK\r\n", 200, []),
        (("Event: refer", "Content-Type: message/sipfrag"), "garbage", 200, []),
        (("Event: presence",), "", 489, []),
        ((), "", 489, []),
    ],
)
def test_notify_reports_the_progress_of_our_refer(
    headers: tuple[str, ...], body: str, status: int, progress: list[int]
) -> None:
    call = StandIn()
    call.refer_updates = asyncio.Queue()
    transfer.on_notify(cast(Call, call), TX, request("NOTIFY", *headers, body=body))
    assert call.status == status
    got = []
    while not call.refer_updates.empty():
        got.append(call.refer_updates.get_nowait())
    assert got == progress
