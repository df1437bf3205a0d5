"""SIP dialogs, UAS side (RFC 3261 section 12): creation, checks and requests inside them."""

from __future__ import annotations

import pytest

from mediaserver.sip.dialog import Dialog, DialogState
from mediaserver.sip.message import Request, parse_message, request_problem
from mediaserver.sip.uri import NameAddress, SipUri, Via

CALL_ID = "a84b4c76e66710@pc33.atlanta.example.com"
LOCAL_TAG = "314159xyz"
VIA = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8")


def invite(
    *,
    contact: str | None = "<sip:alice@pc33.atlanta.example.com>",
    record_route: tuple[str, ...] = ("<sip:p2.example.com;lr>, <sip:p1.example.com;lr>",),
    cseq: int = 314159,
) -> Request:
    """An incoming INVITE as the wire would bring it (RFC 3261 24.2, F1 with two proxies)."""
    lines = [
        "INVITE sip:bob@192.0.2.4 SIP/2.0",
        "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK-p1",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 68",
        "To: Bob <sip:bob@biloxi.example.com>",
        'From: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774',
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} INVITE",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines += [f"Record-Route: {value}" for value in record_route]
    lines += ["Content-Length: 0", "", ""]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def in_dialog(
    method: str, cseq: int, *, contact: str | None = None, extra: tuple[str, ...] = ()
) -> Request:
    """A request the caller sends inside the dialog."""
    lines = [
        f"{method} sip:bob@192.0.2.4 SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK-" + method.lower(),
        "Max-Forwards: 70",
        f"To: Bob <sip:bob@biloxi.example.com>;tag={LOCAL_TAG}",
        'From: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774',
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} {method}",
        *extra,
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines += ["Content-Length: 0", "", ""]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def dialog(**kwargs: object) -> Dialog:
    return Dialog.from_invite(invite(**kwargs), LOCAL_TAG)  # type: ignore[arg-type]


# -- creation (RFC 3261 12.1.1) -----------------------------------------------------------


def test_from_invite_takes_the_tags_parties_target_routes_and_cseq() -> None:
    d = dialog()
    assert d.call_id == CALL_ID
    assert (d.local_tag, d.remote_tag) == (LOCAL_TAG, "1928301774")
    assert d.id == (CALL_ID, LOCAL_TAG, "1928301774")
    # The parties are the To (us) and From (them) without their tags.
    assert d.local_party == '"Bob" <sip:bob@biloxi.example.com>'
    assert d.remote_party == '"Alice A." <sip:alice@atlanta.example.com>'
    assert d.remote_target == "sip:alice@pc33.atlanta.example.com"
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert (d.remote_cseq, d.local_cseq) == (314159, 0)
    assert d.state is DialogState.EARLY


def test_the_route_set_keeps_record_route_order_across_header_lines() -> None:
    d = dialog(record_route=("<sip:p3.example.com;lr>", "<sip:p2;lr>, <sip:p1;lr;transport=tcp>"))
    assert d.route_set == ["<sip:p3.example.com;lr>", "<sip:p2;lr>", "<sip:p1;lr;transport=tcp>"]
    assert dialog(record_route=()).route_set == []


def test_the_remote_target_is_the_contact_uri_without_header_parameters() -> None:
    d = dialog(contact='"Alice" <sip:alice@198.51.100.7:5062;transport=tcp>;expires=60')
    assert d.remote_target == "sip:alice@198.51.100.7:5062;transport=tcp"


def test_without_a_contact_the_remote_target_is_the_from_uri() -> None:
    assert dialog(contact=None).remote_target == "sip:alice@atlanta.example.com"


def test_confirm_and_terminate() -> None:
    d = dialog()
    d.confirm()
    assert d.state is DialogState.CONFIRMED
    d.terminate()
    assert d.state is DialogState.TERMINATED
    d.confirm()  # a terminated dialog stays terminated
    assert d.state is DialogState.TERMINATED


# -- requests from the peer (RFC 3261 12.2.2) ---------------------------------------------


def test_requests_with_higher_or_equal_cseq_are_accepted_and_remembered() -> None:
    d = dialog()
    assert d.check_request(in_dialog("INFO", 314160)) is None
    assert d.remote_cseq == 314160
    assert d.check_request(in_dialog("BYE", 314170)) is None  # gaps are fine
    assert d.remote_cseq == 314170


def test_a_lower_cseq_is_refused_with_500() -> None:
    d = dialog()
    assert d.check_request(in_dialog("INFO", 314160)) is None
    response = d.check_request(in_dialog("BYE", 314150))
    assert response is not None
    assert (response.status, response.reason) == (500, "CSeq out of order")
    assert response.headers.get("CSeq") == "314150 BYE"
    assert response.call_id == CALL_ID
    assert d.remote_cseq == 314160  # a refused request does not move the counter


def test_ack_and_cancel_are_not_counted() -> None:
    d = dialog()
    assert d.check_request(in_dialog("INFO", 314165)) is None
    # The ACK and CANCEL of the INVITE carry its (now lower) CSeq, and are fine.
    assert d.check_request(in_dialog("ACK", 314159)) is None
    assert d.check_request(in_dialog("CANCEL", 314159)) is None
    assert d.check_request(in_dialog("ACK", 999999)) is None
    assert d.remote_cseq == 314165


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_a_target_refresh_updates_the_remote_target(method: str) -> None:
    d = dialog()
    request = in_dialog(method, 314160, contact="<sip:alice@203.0.113.9:5070;transport=tcp>")
    assert d.check_request(request) is None
    assert d.remote_target == "sip:alice@203.0.113.9:5070;transport=tcp"


def test_other_requests_and_refreshes_without_contact_keep_the_target() -> None:
    d = dialog()
    assert d.check_request(in_dialog("INFO", 314160, contact="<sip:elsewhere@x>")) is None
    assert d.check_request(in_dialog("INVITE", 314161)) is None
    assert d.remote_target == "sip:alice@pc33.atlanta.example.com"


def test_a_refresh_with_a_bad_contact_is_refused_with_400() -> None:
    d = dialog()
    response = d.check_request(in_dialog("INVITE", 314160, contact="<sip:alice@pc34.example.com"))
    assert response is not None and response.status == 400
    assert d.remote_target == "sip:alice@pc33.atlanta.example.com"


# -- our requests (RFC 3261 12.2.1.1) -----------------------------------------------------


def test_create_request_swaps_from_and_to_for_the_uas() -> None:
    d = dialog(record_route=())
    bye = d.create_request("BYE", VIA)
    assert bye.method == "BYE"
    assert bye.uri == "sip:alice@pc33.atlanta.example.com"
    from_ = NameAddress.parse(bye.headers.get("From") or "")
    to = NameAddress.parse(bye.headers.get("To") or "")
    assert (str(from_.uri), from_.tag) == ("sip:bob@biloxi.example.com", LOCAL_TAG)
    assert (str(to.uri), to.tag) == ("sip:alice@atlanta.example.com", "1928301774")
    assert to.display_name == "Alice A."
    assert bye.headers.get("Call-ID") == CALL_ID
    assert bye.headers.get("Via") == str(VIA)
    assert bye.headers.get("Max-Forwards") == "70"
    assert "Route" not in bye.headers and "Contact" not in bye.headers
    # What we build parses back and passes the checks every incoming request gets.
    parsed = parse_message(bye.encode())
    assert isinstance(parsed, Request) and request_problem(parsed) is None
    assert parsed.cseq == (1, "BYE")


def test_local_cseq_increments_except_for_ack() -> None:
    d = dialog(record_route=())
    assert d.create_request("INFO", VIA).headers.get("CSeq") == "1 INFO"
    reinvite = d.create_request("INVITE", VIA, contact="<sip:bob@192.0.2.4:5060>")
    assert reinvite.headers.get("CSeq") == "2 INVITE"
    assert reinvite.headers.get("Contact") == "<sip:bob@192.0.2.4:5060>"
    # RFC 3261 13.2.2.4: the ACK of a 2xx has the INVITE's sequence number.
    assert d.create_request("ACK", VIA).headers.get("CSeq") == "2 ACK"
    assert d.create_request("BYE", VIA).headers.get("CSeq") == "3 BYE"
    assert d.local_cseq == 3


def test_the_request_uri_follows_a_target_refresh() -> None:
    d = dialog(record_route=())
    d.check_request(in_dialog("INVITE", 314160, contact="<sip:alice@203.0.113.9>"))
    assert d.create_request("BYE", VIA).uri == "sip:alice@203.0.113.9"


def test_loose_routing_puts_the_route_set_in_route_headers() -> None:
    d = dialog()
    bye = d.create_request("BYE", VIA)
    assert bye.uri == "sip:alice@pc33.atlanta.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]


def test_strict_routing_puts_the_first_route_in_the_request_uri() -> None:
    # The example of RFC 3261 12.2.1.1.
    d = dialog(
        contact="<sip:user@remoteua>",
        record_route=("<sip:proxy1>, <sip:proxy2>, <sip:proxy3;lr>, <sip:proxy4>",),
    )
    bye = d.create_request("BYE", VIA)
    assert bye.uri == "sip:proxy1"
    assert bye.headers.get_all("Route") == [
        "<sip:proxy2>",
        "<sip:proxy3;lr>",
        "<sip:proxy4>",
        "<sip:user@remoteua>",
    ]


def test_strict_routing_strips_what_a_request_uri_may_not_carry() -> None:
    # RFC 3261 19.1.1 Table 1: no method parameter and no headers in a Request-URI.
    d = dialog(record_route=("<sip:proxy1;transport=tcp;method=INVITE?Subject=x>",))
    bye = d.create_request("BYE", VIA)
    assert bye.uri == "sip:proxy1;transport=tcp"
    assert bye.headers.get_all("Route") == ["<sip:alice@pc33.atlanta.example.com>"]


def test_next_hop_is_the_first_route_or_the_remote_target() -> None:
    hop = dialog().next_hop()
    assert isinstance(hop, SipUri) and hop.host == "p2.example.com" and "lr" in hop.params
    hop = dialog(record_route=(), contact="<sip:alice@198.51.100.7:5062;transport=tcp>").next_hop()
    assert isinstance(hop, SipUri)
    assert (hop.host, hop.port, hop.transport) == ("198.51.100.7", 5062, "tcp")
    strict = dialog(record_route=("<sip:proxy1:5070>, <sip:proxy2;lr>",)).next_hop()
    assert isinstance(strict, SipUri) and (strict.host, strict.port) == ("proxy1", 5070)
