"""The SIP user agent as a leaf: it serves SIP itself and passes calls up.

A fake endpoint records the responses, a fake :class:`CallHandler` records what
went up to the call layer; no socket and nothing of ``calls/`` is involved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from mediaserver.sip.access import AccessPolicy
from mediaserver.sip.dialog import Dialog
from mediaserver.sip.message import Request, Response, parse_message
from mediaserver.sip.transaction import ServerTransaction
from mediaserver.sip.transport import Peer, SipEndpoint
from mediaserver.sip.ua import UserAgent

PEER = Peer("127.0.0.1", 5062, "udp")


def request(method: str, *, to_tag: str = "", branch: str = "z9hG4bK1", extra: str = "") -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    text = (
        f"{method} sip:echo@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        f"To: <sip:echo@127.0.0.1>{tag}\r\n"
        "Call-ID: c1\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:alice@127.0.0.1:5062>\r\n"
        f"{extra}Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


@dataclass(eq=False)  # hashed by identity, like a transaction
class FakeTx:
    request: Request


class FakeLayer:
    def __init__(self) -> None:
        self.invites: dict[str, FakeTx] = {}

    def find_invite_for_cancel(self, cancel: Request) -> FakeTx | None:
        return self.invites.get(cancel.top_via.branch or "")


@dataclass
class FakeEndpoint:
    handler: Any = None
    screen: Any = None
    stats: Counter[str] = field(default_factory=Counter)
    layer: FakeLayer = field(default_factory=FakeLayer)
    sent: list[Response] = field(default_factory=list)

    def respond(self, tx: object, response: Response) -> None:
        self.sent.append(response)


@dataclass
class FakeCall:
    dialog: Dialog | None
    ended: bool = False
    byes: int = 0

    def on_ack(self, ack: Request) -> None: ...

    def on_stray_response(self, response: Response) -> None: ...

    def on_remote_bye(self) -> None:
        self.byes += 1


@dataclass
class FakeHandler:
    calls: dict[tuple[str, str], FakeCall] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    setting_up: set[object] = field(default_factory=set)

    def find_call(self, call_id: str, local_tag: str) -> FakeCall | None:
        return self.calls.get((call_id, local_tag))

    def on_invite(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        self.events.append(("invite", request.call_id))

    def on_in_dialog(self, call: FakeCall, tx: ServerTransaction, request: Request) -> None:
        self.events.append(("in-dialog", request.method))

    def on_message(self, tx: ServerTransaction, request: Request, source: Peer) -> None:
        self.events.append(("message", request.call_id))

    def is_setting_up(self, invite_tx: ServerTransaction) -> bool:
        return invite_tx in self.setting_up

    def on_cancel(self, invite_tx: ServerTransaction) -> None:
        self.events.append(("cancel", invite_tx.request.call_id))

    def on_ack_timeout(self, invite_tx: ServerTransaction) -> None:
        self.events.append(("ack-timeout", invite_tx.request.call_id))


def user_agent(
    handler: FakeHandler | None = None,
) -> tuple[UserAgent[FakeCall], FakeEndpoint, FakeHandler]:
    endpoint = FakeEndpoint()
    ua: UserAgent[FakeCall] = UserAgent(cast(SipEndpoint, endpoint), access=AccessPolicy())
    handler = handler or FakeHandler()
    ua.handler = handler
    return ua, endpoint, handler


def receive(ua: UserAgent[FakeCall], req: Request) -> FakeTx:
    tx = FakeTx(req)
    ua.on_request(cast(ServerTransaction, tx), req, PEER)
    return tx


def statuses(endpoint: FakeEndpoint) -> list[int]:
    return [response.status for response in endpoint.sent]


def test_an_initial_invite_goes_up_to_the_call_handler() -> None:
    ua, endpoint, handler = user_agent()
    receive(ua, request("INVITE"))
    assert handler.events == [("invite", "c1")]
    assert endpoint.sent == []  # the call layer answers


def test_a_merged_invite_gets_482_and_never_reaches_the_calls() -> None:
    ua, endpoint, handler = user_agent()
    first = request("INVITE", branch="z9hG4bKfirst")
    ua.merges.hold(first)  # the call layer holds it while the call is set up
    receive(ua, request("INVITE", branch="z9hG4bKother"))
    assert statuses(endpoint) == [482] and handler.events == []
    receive(ua, first)  # the same branch: a retransmission's path, not a merge
    assert handler.events == [("invite", "c1")]
    ua.merges.release(first)
    receive(ua, request("INVITE", branch="z9hG4bKother"))
    assert handler.events[-1] == ("invite", "c1")


def test_unknown_and_unserved_methods_never_reach_the_calls() -> None:
    ua, endpoint, handler = user_agent()
    receive(ua, request("FOO"))
    receive(ua, request("SUBSCRIBE"))
    receive(ua, request("REGISTER"))  # no users: not served
    assert statuses(endpoint) == [501, 405, 405]
    assert handler.events == []


def test_an_unsupported_required_extension_gets_420() -> None:
    ua, endpoint, _ = user_agent()
    receive(ua, request("INVITE", extra="Require: foo, timer\r\n"))
    assert statuses(endpoint) == [420]
    assert endpoint.sent[0].headers.get("Unsupported") == "foo"


def test_options_are_answered_here() -> None:
    ua, endpoint, handler = user_agent()
    receive(ua, request("OPTIONS"))
    assert statuses(endpoint) == [200] and handler.events == []
    assert "INVITE" in (endpoint.sent[0].headers.get("Allow") or "")


def test_requests_for_an_unknown_dialog_get_481() -> None:
    ua, endpoint, handler = user_agent()
    for method in ("BYE", "INFO", "UPDATE", "REFER", "INVITE"):
        receive(ua, request(method, to_tag="nobody"))
    assert statuses(endpoint) == [481] * 5 and handler.events == []


def test_requests_in_a_known_dialog_go_up_with_their_call() -> None:
    ua, endpoint, handler = user_agent()
    invite = request("INVITE")
    call = FakeCall(Dialog.from_invite(invite, "t1"))
    handler.calls["c1", "t1"] = call
    for method in ("INVITE", "UPDATE", "INFO", "PRACK", "REFER", "NOTIFY"):
        in_dialog = request(method, to_tag="t1")
        in_dialog.headers.set("CSeq", f"{len(handler.events) + 2} {method}")
        receive(ua, in_dialog)
    assert [method for _, method in handler.events] == [
        "INVITE", "UPDATE", "INFO", "PRACK", "REFER", "NOTIFY"
    ]  # fmt: skip
    bye = request("BYE", to_tag="t1")
    bye.headers.set("CSeq", "10 BYE")
    receive(ua, bye)
    assert statuses(endpoint) == [200] and call.byes == 1  # BYE is ended here


def test_a_cancel_goes_up_only_for_an_invite_being_set_up() -> None:
    ua, endpoint, handler = user_agent()
    invite_tx = FakeTx(request("INVITE"))
    endpoint.layer.invites["z9hG4bK1"] = invite_tx
    receive(ua, request("CANCEL"))
    assert statuses(endpoint) == [481] and handler.events == []
    handler.setting_up.add(invite_tx)
    receive(ua, request("CANCEL"))
    assert statuses(endpoint) == [481, 200]  # RFC 3261 9.2: 200 here, 487 by the call
    assert handler.events == [("cancel", "c1")]


def test_without_a_call_handler_invites_get_503() -> None:
    endpoint = FakeEndpoint()
    ua: UserAgent[FakeCall] = UserAgent(cast(SipEndpoint, endpoint), access=AccessPolicy())
    receive(ua, request("INVITE"))
    receive(ua, request("MESSAGE"))
    assert statuses(endpoint) == [503, 503]
