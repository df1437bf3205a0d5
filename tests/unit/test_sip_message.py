"""SIP message parsing, validation and serialisation (RFC 3261 7, 8.1.1, 8.2, 18.3, 20, 25).

Every message here is written for this suite. The "torture" cases are modelled on
the descriptions in RFC 4475 section 3 (valid-but-weird and invalid messages),
and each test says what that section expects an element to do.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediaserver.sip.message import (
    COMPACT_FORMS,
    MAX_HEADER_COUNT,
    MAX_HEADER_SIZE,
    MAX_MESSAGE_SIZE,
    REASON_PHRASES,
    SINGLE_HEADERS,
    Headers,
    Message,
    Request,
    Response,
    SipParseError,
    canonical_name,
    header_key,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_cseq,
    parse_message,
    request_problem,
    response_problem,
    split_head,
)
from mediaserver.sip.uri import AbsoluteUri, NameAddress, SipSyntaxError, SipUri

# ---------------------------------------------------------------------------
# Building messages


def crlf(*lines: str, body: bytes = b"") -> bytes:
    """A message from its head lines, CRLF line ends, and a raw body."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request_lines(
    method: str = "INVITE",
    uri: str = "sip:bob@biloxi.example.com",
    *,
    cseq_method: str | None = None,
    drop: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The head of a well-formed request; ``drop`` removes headers by name."""
    headers = [
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        f"CSeq: 314159 {cseq_method or method}",
        "Contact: <sip:alice@pc33.atlanta.example.com>",
    ]
    kept = [h for h in headers if h.split(":", 1)[0] not in drop]
    return [f"{method} {uri} SIP/2.0", *kept, *extra]


def request_bytes(method: str = "INVITE", body: bytes = b"", **kwargs: object) -> bytes:
    lines = request_lines(method, **kwargs)  # type: ignore[arg-type]
    return crlf(*lines, f"Content-Length: {len(body)}", body=body)


def parse_request(data: bytes, **kwargs: bool) -> Request:
    msg = parse_message(data, **kwargs)
    assert isinstance(msg, Request)
    return msg


def parse_response(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def parse_error(data: bytes, *, datagram: bool = True) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data, datagram=datagram)
    return info.value


def problem_of(*lines: str, body: bytes = b"") -> tuple[int, str] | None:
    return request_problem(parse_request(crlf(*lines, f"Content-Length: {len(body)}", body=body)))


RESPONSE_HEAD = [
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1",
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
]

# ---------------------------------------------------------------------------
# Valid requests and responses

METHODS = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
    "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
]  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_every_common_method_parses_and_passes_inspection(method: str) -> None:
    req = parse_request(request_bytes(method))
    assert req.method == method
    assert req.uri == "sip:bob@biloxi.example.com"
    assert req.version == "SIP/2.0"
    assert req.cseq == (314159, method)
    assert req.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert req.from_.tag == "1928301774"
    assert req.from_.display_name == "Alice"
    assert req.to.tag is None
    assert str(req.to.uri) == "sip:bob@biloxi.example.com"
    assert req.top_via.branch == "z9hG4bK776asdhds"
    assert req.body == b""
    assert request_problem(req) is None


def test_request_uri_is_parsed_on_demand() -> None:
    req = parse_request(request_bytes(uri="sip:bob@biloxi.example.com:5070;transport=tcp"))
    uri = req.request_uri
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host, uri.port, uri.transport) == (
        "bob",
        "biloxi.example.com",
        5070,
        "tcp",
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [(100, "Trying"), (180, "Ringing"), (183, "Session Progress"), (200, "OK"),
     (202, "Accepted"), (302, "Moved Temporarily"), (401, "Unauthorized"),
     (404, "Not Found"), (407, "Proxy Authentication Required"), (486, "Busy Here"),
     (487, "Request Terminated"), (500, "Server Internal Error"),
     (503, "Service Unavailable"), (603, "Decline"), (699, "Whatever It Is")],
)  # fmt: skip
def test_responses_parse_with_status_and_reason(status: int, reason: str) -> None:
    resp = parse_response(crlf(f"SIP/2.0 {status} {reason}", *RESPONSE_HEAD, "Content-Length: 0"))
    assert (resp.status, resp.reason, resp.version) == (status, reason, "SIP/2.0")
    assert resp.to.tag == "a6c85cf"
    assert resp.top_via.params["received"] == "192.0.2.1"
    assert response_problem(resp) is None


def test_sip_version_is_case_insensitive_and_normalised() -> None:
    # RFC 3261 7.1: "The SIP-Version string is case-insensitive".
    resp = parse_response(crlf("sip/2.0 200 OK", *RESPONSE_HEAD))
    assert resp.version == "SIP/2.0"
    lines = request_lines()
    lines[0] = "INVITE sip:bob@biloxi.example.com Sip/2.0"
    req = parse_request(crlf(*lines))
    assert req.version == "SIP/2.0"
    assert request_problem(req) is None


# ---------------------------------------------------------------------------
# Header names: compact forms and case


def test_compact_forms_include_the_rfc_3261_set() -> None:
    # RFC 3261 7.3.3 and 20: the ten compact forms of the base specification.
    base = {"i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
            "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
            "v": "Via"}  # fmt: skip
    assert base.items() <= COMPACT_FORMS.items()


@pytest.mark.parametrize(("short", "long"), sorted(COMPACT_FORMS.items()))
def test_each_compact_form_is_looked_up_by_either_name(short: str, long: str) -> None:
    headers = Headers([(short, "value-1")])
    assert [name for name, _ in headers] == [long]  # stored under the long name
    for name in (short, short.upper(), long, long.lower(), long.upper()):
        assert headers.get(name) == "value-1"
        assert name in headers
    assert header_key(short) == long.lower()
    assert canonical_name(short) == long


def test_a_request_written_only_in_compact_forms() -> None:
    lines = [
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "v: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9",
        "f: <sip:alice@atlanta.example.com>;tag=9fxced76sl",
        "t: <sip:bob@biloxi.example.com>",
        "i: 3848276298220188511@atlanta.example.com",
        "CSeq: 1 INVITE",
        "m: <sip:alice@client.atlanta.example.com;transport=tcp>",
        "c: application/sdp",
        "e: gzip",
        "s: lunch",
        "k: 100rel, timer",
        "o: presence",
        "u: dialog",
        "r: <sip:carol@chicago.example.com>",
        "b: <sip:alice@atlanta.example.com>",
        "x: 1800;refresher=uac",
        "a: *;audio",
        "j: *;video",
        "d: proxy",
        "y: eyJhbGciOiJFUzI1NiJ9.e30.c2ln;info=<https://cert.example.org/p.cer>",
        "l: 4",
    ]
    req = parse_request(crlf(*lines, body=b"v=0\n"))
    assert request_problem(req) is None
    assert req.body == b"v=0\n"
    assert req.content_type == "application/sdp"
    assert req.headers.get_list("Supported") == ["100rel", "timer"]
    stored = {name for name, _ in req.headers}
    assert set(COMPACT_FORMS.values()) <= stored  # every compact form was expanded
    assert not stored & set(COMPACT_FORMS)


def test_header_names_in_any_case() -> None:
    lines = [
        "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
        "VIA: SIP/2.0/UDP h.example.com;branch=z9hG4bKa",
        "fRoM: <sip:alice@atlanta.example.com>;tag=1",
        "to: <sip:bob@biloxi.example.com>",
        "cAlL-iD: mixed-case-1",
        "cseq: 7 OPTIONS",
        "MAX-FORWARDS: 70",
        "x-custom-HEADER: kept as written",
        "CONTENT-length: 0",
    ]
    req = parse_request(crlf(*lines))
    assert request_problem(req) is None
    assert req.call_id == "mixed-case-1"
    assert req.cseq == (7, "OPTIONS")
    names = [name for name, _ in req.headers]
    assert names[:6] == ["Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"]
    assert "x-custom-HEADER" in names  # unknown names keep their spelling
    assert req.headers.get("X-Custom-Header") == "kept as written"


def test_whitespace_between_header_name_and_colon() -> None:
    # RFC 3261 7.3.1: "HCOLON = *( SP / HTAB ) ":" SWS".
    req = parse_request(crlf(*request_lines(extra=("Subject \t :  \t hello  ",))))
    assert req.headers.get("Subject") == "hello"


# ---------------------------------------------------------------------------
# Folding (RFC 3261 7.3.1)


def test_continuation_lines_with_sp_and_htab_fold_to_one_space() -> None:
    extra = ("Subject: Lunch on", "   Friday", "\tat noon", " \t  in the park")
    req = parse_request(crlf(*request_lines(extra=extra)))
    assert req.headers.get("Subject") == "Lunch on Friday at noon in the park"


def test_folding_after_the_colon_and_inside_structured_headers() -> None:
    lines = [
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "Via:",
        "  SIP/2.0/UDP",
        "\tpc33.atlanta.example.com",
        " ;branch=z9hG4bKfold",
        "To:",
        " <sip:bob@biloxi.example.com>",
        "From: <sip:alice@atlanta.example.com>",
        "  ;tag=77",
        "Call-ID: fold-1",
        "CSeq: 1",
        "  INVITE",
    ]
    req = parse_request(crlf(*lines))
    assert req.headers.get("Via") == "SIP/2.0/UDP pc33.atlanta.example.com ;branch=z9hG4bKfold"
    assert req.headers.get("To") == "<sip:bob@biloxi.example.com>"  # no leading space
    assert req.top_via.host == "pc33.atlanta.example.com"
    assert req.top_via.branch == "z9hG4bKfold"
    assert req.from_.tag == "77"
    assert req.cseq == (1, "INVITE")
    assert request_problem(req) is None


def test_whitespace_only_continuation_adds_nothing() -> None:
    req = parse_request(crlf(*request_lines(extra=("Subject: hi", "   ", "\t"))))
    assert req.headers.get("Subject") == "hi"


# ---------------------------------------------------------------------------
# Via lists (RFC 3261 7.3.1, 20.42)


def test_via_lines_and_comma_separated_vias_keep_their_order() -> None:
    lines = request_lines(drop=("Via",))
    lines[1:1] = [
        "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bK1, SIP/2.0/TCP second.example.com:5080"
        ";branch=z9hG4bK2",
        "v: SIP/2.0/TLS third.example.com;branch=z9hG4bK3",
        "Via: SIP/2.0/UDP [2001:db8::4]:5062;branch=z9hG4bK4;received=2001:db8::99;rport=5999",
    ]
    req = parse_request(crlf(*lines))
    assert len(req.headers.get_all("Via")) == 3
    assert len(req.headers.get_list("Via")) == 4
    vias = req.vias
    assert [v.branch for v in vias] == [f"z9hG4bK{i}" for i in range(1, 5)]
    assert [v.transport for v in vias] == ["UDP", "TCP", "TLS", "UDP"]
    assert vias[1].sent_by == ("second.example.com", 5080)
    assert vias[2].sent_by == ("third.example.com", 5061)  # RFC 3261 18.2.2: TLS default
    assert vias[3].sent_by == ("2001:db8::4", 5062)
    assert vias[3].params["received"] == "2001:db8::99"
    assert req.top_via.host == "first.example.com"
    assert request_problem(req) is None


def test_missing_via_value_is_reported() -> None:
    lines = request_lines(drop=("Via",), extra=("Via:",))
    assert problem_of(*lines) == (400, "Missing Via header")
    with pytest.raises(SipSyntaxError):
        _ = parse_request(crlf(*lines)).top_via


# ---------------------------------------------------------------------------
# Display names (RFC 3261 20.10, 25.1)


@pytest.mark.parametrize(
    ("header", "display"),
    [
        ('"Smith, John" <sip:john@example.com>;tag=1', "Smith, John"),
        ('"The \\"Boss\\"" <sip:boss@example.com>;tag=1', 'The "Boss"'),
        ('"a <b> c; d=e" <sip:abc@example.com>;tag=1', "a <b> c; d=e"),
        ('"back\\\\" <sip:slash@example.com>;tag=1', "back\\"),
        ('"" <sip:empty@example.com>;tag=1', ""),
        ("Plain Name <sip:plain@example.com>;tag=1", "Plain Name"),
        ("<sip:nobody@example.com>;tag=1", None),
        ("sip:addrspec@example.com;tag=1", None),
    ],
)
def test_display_names(header: str, display: str | None) -> None:
    lines = request_lines(drop=("From",), extra=(f"From: {header}",))
    req = parse_request(crlf(*lines))
    assert req.from_.display_name == display
    assert req.from_.tag == "1"
    assert request_problem(req) is None


def test_comma_inside_a_quoted_display_name_does_not_split_a_list() -> None:
    extra = ('Contact: "Doe, Jane" <sip:jane@a.example.com>, <sip:jane@b.example.com>;q=0.5',)
    req = parse_request(crlf(*request_lines(drop=("Contact",), extra=extra)))
    assert req.headers.get_list("Contact") == [
        '"Doe, Jane" <sip:jane@a.example.com>',
        "<sip:jane@b.example.com>;q=0.5",
    ]


# ---------------------------------------------------------------------------
# URIs in messages


def test_ipv6_request_uri_via_and_contact() -> None:
    lines = request_lines(uri="sip:bob@[2001:db8::10]:5070;transport=tcp", drop=("Via",))
    lines.insert(1, "Via: SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKv6")
    req = parse_request(crlf(*lines))
    uri = req.request_uri
    assert isinstance(uri, SipUri)
    assert (uri.host, uri.port, uri.transport) == ("[2001:db8::10]", 5070, "tcp")
    assert req.top_via.sent_by == ("2001:db8::1", 5060)
    assert request_problem(req) is None


def test_request_uri_with_escapes_password_params_and_headers() -> None:
    uri_text = "sip:alice%40home:secret@atlanta.example.com;maddr=239.255.255.1;lr?subject=hi"
    req = parse_request(request_bytes(uri=uri_text))
    uri = req.request_uri
    assert isinstance(uri, SipUri)
    assert uri.user == "alice%40home"
    assert uri.user_unescaped == "alice@home"
    assert uri.password == "secret"
    assert uri.params == {"maddr": "239.255.255.1", "lr": None}
    assert uri.headers == "subject=hi"
    assert request_problem(req) is None


def test_tel_uri_in_request_uri_and_to() -> None:
    lines = request_lines(uri="tel:+1-201-555-0123;phone-context=example.com", drop=("To",))
    lines.append("To: <tel:+1-201-555-0123>")
    req = parse_request(crlf(*lines))
    uri = req.request_uri
    assert isinstance(uri, AbsoluteUri)
    assert uri.scheme == "tel"
    assert uri.user_unescaped == "+1-201-555-0123"
    assert isinstance(req.to.uri, AbsoluteUri)
    assert request_problem(req) is None


# ---------------------------------------------------------------------------
# Line ends, leading CRLFs, bodies (RFC 3261 7.5, 18.3)


def test_lf_only_line_ends() -> None:
    body = b"v=0\r\n\r\no=-\r\n"  # a CRLFCRLF in the body must not move the head's end
    data = ("\n".join(request_lines()) + f"\nContent-Length: {len(body)}\n\n").encode() + body
    req = parse_request(data)
    assert req.body == body
    assert request_problem(req) is None


def test_mixed_line_ends() -> None:
    data = b"OPTIONS sip:b@example.com SIP/2.0\r\nCall-ID: m1\nCSeq: 1 OPTIONS\r\n\nbody"
    req = parse_request(data)
    assert req.call_id == "m1"
    assert req.cseq == (1, "OPTIONS")
    assert req.body == b"body"


def test_leading_crlfs_are_ignored() -> None:
    req = parse_request(b"\r\n\r\n\n\r\n" + request_bytes())
    assert req.method == "INVITE"
    assert request_problem(req) is None


def test_body_sized_by_content_length() -> None:
    body = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\n\r\nbinary\x00\xff\r\n\r\n"
    req = parse_request(request_bytes(body=body))
    assert req.body == body


def test_datagram_without_content_length_takes_the_rest() -> None:
    # RFC 3261 18.3: over UDP without Content-Length the body ends with the datagram.
    req = parse_request(crlf(*request_lines(), body=b"all of\r\n\r\nthis"))
    assert req.body == b"all of\r\n\r\nthis"
    assert request_problem(req) is None


def test_datagram_bytes_after_the_body_are_ignored() -> None:
    # RFC 3261 18.3: octets beyond Content-Length in a datagram are discarded.
    req = parse_request(crlf(*request_lines(), "Content-Length: 4", body=b"bodyEXTRA\r\n\r\n"))
    assert req.body == b"body"
    req = parse_request(crlf(*request_lines(), "Content-Length: 0", body=b"junk"))
    assert req.body == b""


def test_stream_messages_need_content_length() -> None:
    # RFC 3261 18.3 and 20.14: Content-Length MUST be used over stream transports.
    req = parse_request(request_bytes(body=b"abc"), datagram=False)
    assert req.body == b"abc"
    err = parse_error(crlf(*request_lines()), datagram=False)
    assert (err.status, err.reason) == (400, "Missing Content-Length header")
    assert isinstance(err.partial, Request) and err.partial.call_id


def test_content_length_with_leading_zeros_and_spaces() -> None:
    req = parse_request(crlf(*request_lines(), "Content-Length:   0004  ", body=b"abcdef"))
    assert req.body == b"abcd"


# ---------------------------------------------------------------------------
# Serialisation


def test_round_trip_keeps_start_line_headers_and_body() -> None:
    body = b"v=0\r\ns=-\r\n"
    original = parse_request(request_bytes(body=body, extra=("Subject: x, y; z",)))
    again = parse_request(original.encode())
    assert again.start_line() == original.start_line()
    assert list(again.headers) == list(original.headers)
    assert again.body == body


def test_encode_always_writes_the_right_content_length() -> None:
    req = parse_request(request_bytes(body=b"abc"))
    req.headers.add("l", "999")  # stale or duplicated values are never written
    req.body = b"longer body"
    data = req.encode()
    assert data.count(b"Content-Length") == 1
    assert b"\r\nContent-Length: 11\r\n\r\nlonger body" in data
    assert parse_request(data).body == b"longer body"


def test_encode_response_with_empty_reason() -> None:
    resp = Response(status=100, reason="", headers=Headers([("Call-ID", "x")]))
    data = resp.encode()
    assert data.startswith(b"SIP/2.0 100 \r\n")
    assert parse_response(data).reason == ""


def test_encode_of_a_message_built_in_code() -> None:
    req = Request(method="OPTIONS", uri="sip:bob@example.com")
    req.headers.add("Via", f"SIP/2.0/UDP host.example.com;branch={new_branch()}")
    req.headers.add("From", f"<sip:alice@example.com>;tag={new_tag()}")
    req.headers.add("To", "<sip:bob@example.com>")
    req.headers.add("Call-ID", new_call_id("host.example.com"))
    req.headers.add("CSeq", "1 OPTIONS")
    assert request_problem(parse_request(req.encode())) is None
    assert req.top_via.branch and req.top_via.branch.startswith("z9hG4bK")
    assert req.call_id.endswith("@host.example.com")


# ---------------------------------------------------------------------------
# Headers API


def test_headers_get_and_get_all_and_contains() -> None:
    h = Headers([("Via", "a"), ("To", "t"), ("v", "b"), ("X-Thing", "1")])
    assert h.get("via") == "a"
    assert h.get_all("VIA") == ["a", "b"]
    assert h.get("Missing") is None
    assert h.get("Missing", "dflt") == "dflt"
    assert h.get_all("Missing") == []
    assert "t" in h and "TO" in h and "x-thing" in h
    assert "From" not in h
    assert 42 not in h
    assert len(h) == 4


def test_headers_get_list_splits_commas_outside_quotes_and_brackets() -> None:
    h = Headers([("Allow", "INVITE, ACK ,BYE"), ("Allow", " OPTIONS,,"), ("Allow", "")])
    assert h.get_list("allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]
    h = Headers([("Route", '<sip:p1.example.com;lr>, "x,y" <sip:p2.example.com;a=b,c>')])
    assert h.get_list("Route") == ["<sip:p1.example.com;lr>", '"x,y" <sip:p2.example.com;a=b,c>']


def test_headers_set_replaces_every_line_in_place_of_the_first() -> None:
    h = Headers([("Via", "1"), ("To", "t"), ("v", "2"), ("From", "f"), ("Via", "3")])
    h.set("VIA", "new")
    assert list(h) == [("Via", "new"), ("To", "t"), ("From", "f")]
    h.set("Subject", "added at the end")
    assert list(h)[-1] == ("Subject", "added at the end")
    h.set("s", "short name replaces")
    assert h.get_all("Subject") == ["short name replaces"]


def test_headers_add_prepend_remove() -> None:
    h = Headers()
    h.add("v", "2")
    h.prepend("Via", "1")
    h.add("t", "to")
    assert list(h) == [("Via", "1"), ("Via", "2"), ("To", "to")]
    h.remove("VIA")
    assert list(h) == [("To", "to")]
    h.remove("Not-There")
    assert list(h) == [("To", "to")]


def test_headers_copy_is_independent() -> None:
    h = Headers([("Via", "1")])
    clone = h.copy()
    clone.add("Via", "2")
    clone.set("To", "t")
    assert list(h) == [("Via", "1")]
    assert list(clone) == [("Via", "1"), ("Via", "2"), ("To", "t")]


def test_canonical_names() -> None:
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("CSEQ") == "CSeq"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-Unknown") == "X-Unknown"
    assert header_key("I") == "call-id"
    assert header_key("z") == "z"  # not a compact form


def test_message_properties_on_missing_headers() -> None:
    msg = Message()
    assert msg.call_id == ""
    assert msg.content_type == ""
    with pytest.raises(SipSyntaxError):
        _ = msg.cseq
    with pytest.raises(SipSyntaxError):
        _ = msg.top_via
    assert msg.vias == []


def test_content_type_is_lowercased_without_parameters() -> None:
    msg = Message(headers=Headers([("c", " Application/SDP ; charset=utf-8")]))
    assert msg.content_type == "application/sdp"


# ---------------------------------------------------------------------------
# parse_cseq


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1 INVITE", (1, "INVITE")), ("0009   ACK", (9, "ACK")), ("0 BYE", (0, "BYE")),
     (f"{2**31 - 1} X", (2**31 - 1, "X")), ("5\tOPTIONS", (5, "OPTIONS"))],
)  # fmt: skip
def test_parse_cseq(value: str, expected: tuple[int, str]) -> None:
    assert parse_cseq(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "1", "INVITE", "1 INVITE extra", "-1 INVITE", "x INVITE", f"{2**31} INVITE",
     "1 INV@TE", "\u00b2 INVITE", "\u0663 INVITE", "1.5 INVITE"],
)  # fmt: skip
def test_parse_cseq_rejects(value: str) -> None:
    with pytest.raises(SipSyntaxError):
        parse_cseq(value)


# ---------------------------------------------------------------------------
# Malformed messages: SipParseError


def test_empty_datagram() -> None:
    for data in (b"", b"\r\n", b"\r\n\r\n\r\n"):
        err = parse_error(data)
        assert (err.status, err.reason, err.partial) == (400, "Empty message", None)


def test_truncated_message_without_blank_line() -> None:
    data = request_bytes()[:-4]
    err = parse_error(data)
    assert (err.status, err.reason, err.partial) == (400, "No empty line after the headers", None)


def test_garbage_text_still_yields_a_partial_request() -> None:
    err = parse_error(b"hello there\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bKg\r\n\r\n")
    assert err.status == 400
    assert err.reason == "Bad request line 'hello there'"
    assert isinstance(err.partial, Request)
    assert err.partial.top_via.branch == "z9hG4bKg"  # enough to address the 400


def test_binary_junk() -> None:
    err = parse_error(bytes(range(256)))  # holds "\n\x0b\x0c\r": no blank line
    assert err.reason == "No empty line after the headers"
    err = parse_error(b"\xff\xfe\x00\x01junk\r\n\r\n\x00")
    assert (err.status, err.reason, err.partial) == (400, "Headers are not UTF-8", None)


def test_non_utf8_header_bytes() -> None:
    data = request_bytes(extra=("Subject: caf\xe9",)).replace(b"caf\xc3\xa9", b"caf\xe9")
    assert b"caf\xe9" in data
    err = parse_error(data)
    assert (err.status, err.reason) == (400, "Headers are not UTF-8")


def test_utf8_header_values_are_fine() -> None:
    req = parse_request(request_bytes(extra=("Subject: café ☎ 电话",)))
    assert req.headers.get("Subject") == "café ☎ 电话"


def test_content_length_larger_than_the_body() -> None:
    data = crlf(*request_lines(), "Content-Length: 20", body=b"short")
    err = parse_error(data)
    assert (err.status, err.reason) == (400, "Content-Length larger than the body")
    assert isinstance(err.partial, Request)
    assert err.partial.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    err = parse_error(data, datagram=False)
    assert (err.status, err.reason) == (400, "Truncated body")


@pytest.mark.parametrize(
    "value", ["abc", "-5", "+5", "5, 5", "5 6", "0x10", "\u00b2", "\u0663", "", "1e3", "5.0"]
)
def test_bad_content_length(value: str) -> None:
    err = parse_error(crlf(*request_lines(), f"Content-Length: {value}", body=b"12345"))
    assert (err.status, err.reason) == (400, "Bad Content-Length")
    assert isinstance(err.partial, Request) and err.partial.method == "INVITE"


def test_numbers_longer_than_int_accepts() -> None:
    # Python refuses int() on more than 4300 digits; the limits still answer 400.
    huge = "9" * 5000
    err = parse_error(crlf(*request_lines(), f"Content-Length: {huge}", body=b"x"))
    assert (err.status, err.reason) == (400, "Content-Length larger than the body")
    req = parse_request(crlf(*request_lines(), f"Content-Length: {'0' * 5000}4", body=b"abcd"))
    assert req.body == b"abcd"
    cseq = request_lines(drop=("CSeq",), extra=(f"CSeq: {huge} INVITE",))
    assert problem_of(*cseq) == (400, "Bad CSeq header: CSeq number out of range")
    cseq = request_lines(drop=("CSeq",), extra=(f"CSeq: {'0' * 5000}7 INVITE",))
    assert parse_request(crlf(*cseq)).cseq == (7, "INVITE")
    mf = request_lines(drop=("Max-Forwards",), extra=(f"Max-Forwards: {huge}",))
    assert problem_of(*mf) == (400, "Bad Max-Forwards")


def test_header_line_without_colon() -> None:
    lines = request_lines()
    lines.insert(4, "This line has no colon")
    err = parse_error(crlf(*lines))
    assert (err.status, err.reason) == (400, "Malformed header line 5")
    assert isinstance(err.partial, Request)
    assert err.partial.headers.get("Via")  # the headers before it are kept for the 400
    assert err.partial.headers.get("To")


@pytest.mark.parametrize("line", [": no name", "Bad Name: x", "Call@ID: x", "Ünï: x", "[x]: y"])
def test_header_names_must_be_tokens(line: str) -> None:
    lines = request_lines()
    lines.insert(2, line)
    err = parse_error(crlf(*lines))
    assert err.reason == "Malformed header line 3"


def test_continuation_line_before_any_header() -> None:
    err = parse_error(b"INVITE sip:bob@example.com SIP/2.0\r\n folded: start\r\n\r\n")
    assert (err.status, err.reason, err.partial) == (
        400,
        "Continuation line 2 before any header",
        None,
    )


def test_bare_cr_inside_a_header_is_refused() -> None:
    # A lone CR could end the line for a peer when the header is copied into a response.
    data = request_bytes().replace(b"tag=1928301774", b"tag=19\rInjected: yes")
    err = parse_error(data)
    assert err.reason == "Bare CR in header line 5"
    assert isinstance(err.partial, Request) and err.partial.headers.get("Via")


def test_header_value_too_long() -> None:
    ok = parse_request(request_bytes(extra=("Subject: " + "a" * MAX_HEADER_SIZE,)))
    assert len(ok.headers.get("Subject") or "") == MAX_HEADER_SIZE
    err = parse_error(request_bytes(extra=("Subject: " + "a" * 60_000,)))
    assert (err.status, err.reason) == (400, "Header Subject too long")
    assert isinstance(err.partial, Request)
    assert "Subject" not in err.partial.headers and err.partial.headers.get("Via")


def test_folded_header_growing_too_long() -> None:
    extra = ("s: start", *(" " + "b" * 1000 for _ in range(20)))
    err = parse_error(request_bytes(extra=extra))
    assert err.reason == "Header Subject too long"


def test_64_kb_header_value_is_a_message_too_large() -> None:
    # A 64 KB value cannot fit in MAX_MESSAGE_SIZE, so the size limit answers first.
    err = parse_error(request_bytes(extra=("Subject: " + "a" * 65536,)))
    assert (err.status, err.reason) == (513, "Message too large")


def test_header_count_limit() -> None:
    base = len(request_lines()) - 1 + 1  # headers in request_lines() plus Content-Length
    fill = MAX_HEADER_COUNT - base
    ok = parse_request(request_bytes(extra=tuple(f"X-H{i}: {i}" for i in range(fill))))
    assert len(ok.headers) == MAX_HEADER_COUNT
    err = parse_error(request_bytes(extra=tuple(f"X-H{i}: {i}" for i in range(fill + 1))))
    assert (err.status, err.reason) == (400, "Too many headers")
    assert isinstance(err.partial, Request) and err.partial.headers.get("Via")


def test_message_too_large_answers_513_with_a_partial() -> None:
    body = b"x" * MAX_MESSAGE_SIZE
    err = parse_error(request_bytes(body=body))
    assert (err.status, err.reason) == (513, "Message too large")
    assert isinstance(err.partial, Request)
    assert err.partial.top_via.branch == "z9hG4bK776asdhds"  # RFC 3261 21.5.14 can be sent
    room = MAX_MESSAGE_SIZE - len(request_bytes(body=b"x" * 10_000)) + 10_000
    exact = request_bytes(body=b"x" * room)
    assert len(exact) == MAX_MESSAGE_SIZE
    assert len(parse_request(exact).body) == room
    assert parse_error(exact + b"y").status == 513  # trailing bytes count towards the size


def test_message_too_large_without_readable_headers() -> None:
    err = parse_error(b"A" * (MAX_MESSAGE_SIZE + 1))
    assert (err.status, err.partial) == (513, None)


@pytest.mark.parametrize(
    "line",
    ["SIP/2.0 OK", "SIP/2.0 20 OK", "SIP/2.0 2000 OK", "SIP/2.0  200 OK", "SIP/2.0 200",
     "SIP/2.0 099 Too Low", "SIP/2.0 700 Too High", "SIP/2.0 999 Way Too High",
     "SIP/2.0 \u0662\u0660\u0660 OK", "SIP/ 200 OK", "SIP/2.0 -20 OK"],
)  # fmt: skip
def test_bad_status_lines(line: str) -> None:
    err = parse_error(crlf(line, *RESPONSE_HEAD))
    assert err.status == 400
    assert err.reason.startswith("Bad status line")
    assert err.partial is None  # responses are never answered


@pytest.mark.parametrize(
    "line",
    ["INVITE sip:bob@example.com", "INVITE sip:bob@example.com SIP/2.0 extra",
     "INV@TE sip:bob@example.com SIP/2.0", "INVITE sip:bob@example.com SIP/two",
     " INVITE sip:bob@example.com SIP/2.0", "INVITE", "INVITE sip:bob@example.com SIP2.0"],
)  # fmt: skip
def test_bad_request_lines_keep_a_partial(line: str) -> None:
    lines = request_lines()
    lines[0] = line
    err = parse_error(crlf(*lines))
    assert err.status == 400
    assert err.reason.startswith("Bad request line")
    assert isinstance(err.partial, Request)
    assert err.partial.method == ""
    assert err.partial.top_via.branch == "z9hG4bK776asdhds"


# ---------------------------------------------------------------------------
# Malformed requests: request_problem (RFC 3261 8.1.1, 8.2.2)


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(name: str) -> None:
    assert problem_of(*request_lines(drop=(name,))) == (400, f"Missing {name} header")


def test_max_forwards_is_optional_for_a_uas() -> None:
    assert problem_of(*request_lines(drop=("Max-Forwards",))) is None


def test_cseq_method_mismatch() -> None:
    assert problem_of(*request_lines("OPTIONS", cseq_method="INVITE")) == (
        400,
        "CSeq method does not match the request method",
    )
    # Methods are case-sensitive (RFC 3261 7.1).
    assert problem_of(*request_lines("INVITE", cseq_method="invite")) == (
        400,
        "CSeq method does not match the request method",
    )


@pytest.mark.parametrize(
    ("value", "detail"),
    [(f"{2**31} INVITE", "CSeq number out of range"),
     ("36893488147419103232 INVITE", "CSeq number out of range"),
     ("one INVITE", "bad CSeq 'one INVITE'"), ("1", "bad CSeq '1'"),
     ("\u00b2 INVITE", "bad CSeq '\u00b2 INVITE'")],
)  # fmt: skip
def test_bad_cseq(value: str, detail: str) -> None:
    lines = request_lines(drop=("CSeq",), extra=(f"CSeq: {value}",))
    assert problem_of(*lines) == (400, f"Bad CSeq header: {detail}")


def test_largest_cseq_is_accepted() -> None:
    lines = request_lines(drop=("CSeq",), extra=(f"CSeq: {2**31 - 1} INVITE",))
    assert problem_of(*lines) is None


@pytest.mark.parametrize("value", ["abc", "256", "-1", "1.5", "", "\u00b2", "\u0665", "70 70"])
def test_bad_max_forwards(value: str) -> None:
    lines = request_lines(drop=("Max-Forwards",), extra=(f"Max-Forwards: {value}",))
    assert problem_of(*lines) == (400, "Bad Max-Forwards")


@pytest.mark.parametrize("value", ["0", "255", "0068"])
def test_good_max_forwards(value: str) -> None:
    lines = request_lines(drop=("Max-Forwards",), extra=(f"Max-Forwards: {value}",))
    assert problem_of(*lines) is None


@pytest.mark.parametrize("version", ["SIP/7.0", "SIP/1.0", "SIP/2.1", "HTTP/1.1"])
def test_unsupported_version_is_505(version: str) -> None:
    lines = request_lines()
    lines[0] = f"INVITE sip:bob@biloxi.example.com {version}"
    assert problem_of(*lines) == (505, f"Version Not Supported ({version})")


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [("http://www.example.com/", "http"), ("mailto:bob@example.com", "mailto"),
     ("nobodyKnowsThisScheme:totallyopaquecontent", "nobodyKnowsThisScheme"),
     ("soap.beep://192.0.2.103:3002", "soap.beep"), ("urn:service:sos", "urn")],
)  # fmt: skip
def test_unsupported_uri_scheme_is_416(uri: str, scheme: str) -> None:
    # RFC 3261 8.2.2.1: a scheme the UAS does not support gets 416.
    # The reason quotes the scheme as written, at most 40 characters of it.
    assert problem_of(*request_lines(uri=uri)) == (416, f"Unsupported URI Scheme ({scheme[:40]})")


@pytest.mark.parametrize(
    "uri",
    ["<sip:bob@example.com>", "sip:", "sip:@example.com", "sip:bob@example.com:99999",
     "sip:bob@example.com:0", "sip:bob@exa!mple.com", "sip:bob@[2001:db8::1",
     "sip:bob@2001:db8::1", "noscheme", ":nothing", "sip:bob@example.com;=x"],
)  # fmt: skip
def test_malformed_request_uri(uri: str) -> None:
    assert problem_of(*request_lines(uri=uri)) == (400, "Bad Request-URI")


@pytest.mark.parametrize(
    ("name", "values"),
    [("Call-ID", ("a@h", "b@h")), ("CSeq", ("1 INVITE", "2 INVITE")),
     ("To", ("<sip:bob@a.example.com>", "<sip:carol@b.example.com>")),
     ("From", ("<sip:a@x.example.com>;tag=1", "<sip:b@y.example.com>;tag=2")),
     ("Max-Forwards", ("70", "69"))],
)  # fmt: skip
def test_conflicting_single_value_headers(name: str, values: tuple[str, str]) -> None:
    first, second = values
    lines = request_lines(drop=(name,), extra=(f"{name}: {first}", f"{name}: {second}"))
    assert problem_of(*lines) == (400, f"Multiple {name} headers")


def test_conflicting_content_lengths() -> None:
    req = parse_request(crlf(*request_lines(), "Content-Length: 0", "l: 3", body=b"abc"))
    assert req.body == b""  # the first value frames the datagram, as the framer does
    assert request_problem(req) == (400, "Multiple Content-Length headers")


def test_repeated_identical_single_value_headers_are_tolerated() -> None:
    lines = request_lines(extra=("Call-ID: a84b4c76e66710@pc33.atlanta.example.com",))
    assert problem_of(*lines) is None


def test_conflicts_are_reported_in_a_stable_order() -> None:
    # Several conflicts: the first in RFC 3261 8.1.1 order (Call-ID before CSeq ...).
    lines = request_lines(extra=("Max-Forwards: 1", "CSeq: 2 INVITE", "Call-ID: other"))
    assert problem_of(*lines) == (400, "Multiple Call-ID headers")


@pytest.mark.parametrize("value", ["", "two words", "tab\there"])
def test_bad_call_id(value: str) -> None:
    lines = request_lines(drop=("Call-ID",), extra=(f"Call-ID: {value}",))
    assert problem_of(*lines) == (400, "Bad Call-ID")


def test_unterminated_quoted_display_name() -> None:
    lines = request_lines(drop=("To",), extra=('To: "Mr. J. User <sip:j.user@example.com>',))
    status, reason = problem_of(*lines) or (0, "")
    assert status == 400
    assert reason.startswith("Bad To header: unterminated quoted string")


@pytest.mark.parametrize(
    ("name", "value"),
    [("From", "<sip:alice@example.com"), ("From", "<sip:alice@example.com> junk;tag=1"),
     ("To", '"Bob" junk <sip:bob@example.com>'), ("To", "http//nowhere"),
     ("From", "<sip:alice@example.com>;tag=1;=bad")],
)  # fmt: skip
def test_bad_from_or_to(name: str, value: str) -> None:
    lines = request_lines(drop=(name,), extra=(f"{name}: {value}",))
    status, reason = problem_of(*lines) or (0, "")
    assert status == 400
    assert reason.startswith(f"Bad {name} header: ")


@pytest.mark.parametrize(
    "value",
    ["SIP/2.0 host.example.com", "SIP/3.0/UDP host.example.com", "SIP/2.0/UDP",
     "SIP/2.0/UDP host.example.com:70000", "garbage", "SIP/2.0/UDP h;branch=1, ;"],
)  # fmt: skip
def test_bad_via(value: str) -> None:
    lines = request_lines(drop=("Via",), extra=(f"Via: {value}",))
    status, reason = problem_of(*lines) or (0, "")
    assert status == 400
    assert reason.startswith("Bad Via header: ")


def test_response_problems() -> None:
    ok = parse_response(crlf("SIP/2.0 200 OK", *RESPONSE_HEAD))
    assert response_problem(ok) is None
    missing = parse_response(crlf("SIP/2.0 200 OK", *RESPONSE_HEAD[1:]))
    assert response_problem(missing) == "Missing Via header"
    head = [h for h in RESPONSE_HEAD if not h.startswith("CSeq")]
    bad = parse_response(crlf("SIP/2.0 200 OK", *head, "CSeq: 99999999999 INVITE"))
    assert response_problem(bad) == "Bad CSeq header: CSeq number out of range"


# ---------------------------------------------------------------------------
# RFC 4475 3.1.1: valid messages a parser must accept (written for this suite)


def test_torture_whitespace_folding_and_case_everywhere() -> None:
    # Modelled on RFC 4475 3.1.1.1: unusual LWS around colons, semicolons and "=",
    # folding inside values, leading zeros, escaped quotes, unknown headers.
    body = b"v=0\r\no=fold 1 1 IN IP4 192.0.2.7\r\ns=-\r\n"
    lines = [
        "INVITE sip:carol@chicago.example.com;unknownparam SIP/2.0",
        "TO :",
        " sip:carol@chicago.example.com ;   tag    = 88xyz",
        'from   : "Fold \\\\ \\"Tester\\""   <sip:fold@example.org>',
        "  ;",
        "  tag = 4711a",
        "MaX-fOrWaRdS: 0042",
        "Call-ID: torture.ws.8u2@192.0.2.7",
        "Content-Length   : " + str(len(body)),
        "cseq: 0012",
        "  INVITE",
        "Via  : SIP  /   2.0",
        " /UDP",
        "    192.0.2.8;branch=z9hG4bKws1",
        "s :",
        "OddHeader:   odd value",
        " continued odd value",
        "EmptyishHeader: ;;,,;;,;",
        "Content-Type: application/sdp",
        "Route:",
        " <sip:route.example.com;lr;unknownwith=value;unknown-no-value>",
        "v:  SIP  / 2.0  / TCP     spin.example.com   ;",
        "  branch  =   z9hG4bKws2  ,",
        " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
        " z9hG4bKws3",
        'm:"Quoted \\"\\"" <sip:fold@example.org> ; newparam =',
        "      newvalue ;",
        "  secondparam ; q = 0.33",
    ]
    req = parse_request(crlf(*lines, body=body))
    assert request_problem(req) is None
    assert req.cseq == (12, "INVITE")
    assert req.to.tag == "88xyz"
    assert str(req.to.uri) == "sip:carol@chicago.example.com"
    assert req.from_.display_name == 'Fold \\ "Tester"'
    assert req.from_.tag == "4711a"
    assert [v.branch for v in req.vias] == ["z9hG4bKws1", "z9hG4bKws2", "z9hG4bKws3"]
    assert [v.host for v in req.vias] == ["192.0.2.8", "spin.example.com", "192.168.255.111"]
    assert req.headers.get("Subject") == ""
    assert req.headers.get("OddHeader") == "odd value continued odd value"
    assert req.headers.get("EmptyishHeader") == ";;,,;;,;"
    assert req.body == body
    contact = req.headers.get_list("Contact")
    assert len(contact) == 1
    m = NameAddress.parse(contact[0])
    assert m.display_name == 'Quoted ""'
    assert m.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}


def test_torture_wide_range_of_valid_characters() -> None:
    # Modelled on RFC 4475 3.1.1.2: every token character in the method, a user part
    # full of user-unreserved characters ("?" included) and a password, word
    # characters in the Call-ID, quoted-pairs of control characters in a display name.
    method = "!odd-Method0123456789_*+`.%also'~"
    uri = "sip:1_odd.URI~(yes!really)&isn't+it$/odd?,/;;*:&pass+word=1,ok!*$~_.(x)@example.com"
    lines = [
        f"{method} {uri} SIP/2.0",
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
        'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_odd.URI~(yes!really)@example.com>',
        "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
        '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439";tag=_token~1\'+`*%!-.',
        "Call-ID: odd.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
        f"CSeq: 139122385 {method}",
        "Max-Forwards: 255",
        "extensionHeader-!.%*+_`'~: \ufeff\u5927\u505c\u96fb",
        "Content-Length: 0",
    ]
    req = parse_request(crlf(*lines))
    assert req.method == method
    assert request_problem(req) is None
    ruri = req.request_uri
    assert isinstance(ruri, SipUri)
    assert ruri.host == "example.com"
    assert ruri.user == "1_odd.URI~(yes!really)&isn't+it$/odd?,/;;*"
    assert ruri.password == "&pass+word=1,ok!*$~_.(x)"
    assert req.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert req.from_.tag == "_token~1'+`*%!-."
    assert req.call_id == "odd.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert req.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert req.headers.get("extensionheader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


def test_torture_valid_percent_escapes() -> None:
    # Modelled on RFC 4475 3.1.1.3 and 3.1.1.4: escapes in user parts, parameter
    # names and values, including an escaped NUL.
    lines = request_lines(
        "OPTIONS",
        uri="sip:sips%3Auser%40example.com@example.net",
        drop=("To", "Contact"),
        extra=(
            "To: sip:null-%00-null@example.com",
            "Contact: <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
        ),
    )
    req = parse_request(crlf(*lines))
    assert request_problem(req) is None
    ruri = req.request_uri
    assert isinstance(ruri, SipUri)
    assert ruri.host == "example.net"
    assert ruri.user_unescaped == "sips:user@example.com"
    to_uri = req.to.uri
    assert isinstance(to_uri, SipUri) and to_uri.user_unescaped == "null-\x00-null"
    contact = NameAddress.parse(req.headers.get("Contact") or "")
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}


def test_torture_percent_that_is_not_an_escape() -> None:
    # Modelled on RFC 4475 3.1.1.5: "%" is a token character, so "RE%47IST%45R" is a
    # method of its own (not REGISTER) and "%Z%45" is a display name as written.
    lines = request_lines("RE%47IST%45R", uri="sip:registrar.example.com", drop=("To",))
    lines.append('To: "%Z%45" <sip:resource@example.com>')
    req = parse_request(crlf(*lines))
    assert req.method == "RE%47IST%45R"
    assert req.to.display_name == "%Z%45"
    assert request_problem(req) is None


def test_torture_no_lws_between_display_name_and_bracket() -> None:
    # Modelled on RFC 4475 3.1.1.6.
    lines = request_lines(drop=("From",), extra=("From: caller<sip:caller@example.com>;tag=323",))
    req = parse_request(crlf(*lines))
    assert req.from_.display_name == "caller"
    assert req.from_.tag == "323"
    assert request_problem(req) is None


def test_torture_long_values() -> None:
    # Modelled on RFC 4475 3.1.1.7: long display names, tags, Call-IDs, many Vias.
    long = "x" * 3000
    vias = tuple(f"Via: SIP/2.0/TCP relay{i}.example.com;branch=z9hG4bK{i}{long[:50]}"
                 for i in range(40))  # fmt: skip
    lines = request_lines(
        uri=f"sip:{'u' * 2000}@example.com",
        drop=("To", "Call-ID"),
        extra=(
            f'To: "{long}" <sip:bob@example.com>;tag={"t" * 1000}',
            f"Call-ID: {'c' * 2000}@example.com",
            f"X-Unknown-Long: {long}",
            *vias,
        ),
    )
    req = parse_request(crlf(*lines))
    assert request_problem(req) is None
    assert req.to.display_name == long
    assert len(req.vias) == 41
    assert len(req.call_id) == 2012


def test_torture_extra_message_in_the_same_datagram() -> None:
    # Modelled on RFC 4475 3.1.1.8: the first message is processed, the rest ignored.
    first = request_bytes("REGISTER", uri="sip:example.com")
    second = request_bytes("INVITE", body=b"v=0\r\n")
    req = parse_request(first + second)
    assert req.method == "REGISTER"
    assert req.body == b""


def test_torture_semicolon_in_the_user_part() -> None:
    # Modelled on RFC 4475 3.1.1.9: ";" belongs to the user part before "@".
    req = parse_request(request_bytes("OPTIONS", uri="sip:user;par=u%40example.net@example.com"))
    uri = req.request_uri
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", {})
    assert request_problem(req) is None


def test_torture_varied_and_unknown_transports() -> None:
    # Modelled on RFC 4475 3.1.1.10.
    lines = request_lines("OPTIONS", drop=("Via",))
    lines[1:1] = [
        "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
        "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bK1",
        "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2",
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bK3",
        "Via: SIP/2.0/tcp t5.example.com;branch=z9hG4bK4",
    ]
    req = parse_request(crlf(*lines))
    assert [v.transport for v in req.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert request_problem(req) is None


def test_torture_multipart_body_with_binary_parts() -> None:
    # Modelled on RFC 4475 3.1.1.11: the body is opaque bytes, blank lines included.
    body = (
        b"--boundary42\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n"
        b"--boundary42\r\nContent-Type: application/octet-stream\r\n\r\n"
        + bytes(range(256))
        + b"\r\n--boundary42--\r\n"
    )
    lines = request_lines(extra=("Content-Type: multipart/mixed;boundary=boundary42",))
    req = parse_request(crlf(*lines, f"Content-Length: {len(body)}", body=body))
    assert req.body == body
    assert req.content_type == "multipart/mixed"
    assert parse_request(req.encode()).body == body


def test_torture_unusual_and_empty_reason_phrases() -> None:
    # Modelled on RFC 4475 3.1.1.12 and 3.1.1.13.
    reason = "= 2**3 * 5**2 \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e"
    resp = parse_response(crlf(f"SIP/2.0 200 {reason}", *RESPONSE_HEAD))
    assert resp.reason == reason
    resp = parse_response(crlf("SIP/2.0 100 ", *RESPONSE_HEAD))
    assert (resp.status, resp.reason) == (100, "")
    assert response_problem(resp) is None


def test_torture_rfc_2543_request_without_branch_tag_or_max_forwards() -> None:
    # Modelled on RFC 4475 3.4.1: older syntax must still be accepted.
    lines = [
        "INVITE sip:UserB@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.15",
        "From: <sip:UserA@example.com>",
        "To: <sip:UserB@example.com>",
        "Call-ID: 31415@c.example.com",
        "CSeq: 1 INVITE",
    ]
    req = parse_request(crlf(*lines))
    assert request_problem(req) is None
    assert req.top_via.branch is None
    assert req.from_.tag is None


def test_torture_unknown_schemes_in_headers_are_accepted() -> None:
    # Modelled on RFC 4475 3.3.4: only the Request-URI scheme matters for 416.
    lines = request_lines(
        "OPTIONS",
        drop=("From", "Contact"),
        extra=("From: <http://www.example.com>;tag=3234233", "Contact: <name:John_Smith>"),
    )
    req = parse_request(crlf(*lines))
    assert request_problem(req) is None
    assert isinstance(req.from_.uri, AbsoluteUri) and req.from_.uri.scheme == "http"


# ---------------------------------------------------------------------------
# RFC 4475 3.1.2 and 3.3: invalid messages (written for this suite)


def test_torture_extraneous_separators_in_via() -> None:
    # Modelled on RFC 4475 3.1.2.1: empty Via values between commas -> 400.
    lines = request_lines(drop=("Via",), extra=("Via: SIP/2.0/UDP 192.0.2.15;;,;,,",))
    status, reason = problem_of(*lines) or (0, "")
    assert (status, reason.startswith("Bad Via header")) == (400, True)


def test_torture_content_length_larger_than_datagram() -> None:
    # Modelled on RFC 4475 3.1.2.2: respond 400 over UDP, so a partial is kept.
    err = parse_error(crlf(*request_lines(), "Content-Length: 9999", body=b"v=0\r\n"))
    assert err.status == 400 and isinstance(err.partial, Request)


def test_torture_negative_content_length() -> None:
    # Modelled on RFC 4475 3.1.2.3.
    err = parse_error(crlf(*request_lines(), "Content-Length: -999", body=b"v=0\r\n"))
    assert (err.status, err.reason) == (400, "Bad Content-Length")


def test_torture_overlarge_scalars_in_a_request() -> None:
    # Modelled on RFC 4475 3.1.2.4: each out-of-range value alone earns a 400.
    cseq = request_lines(drop=("CSeq",), extra=("CSeq: 36893488147419103232 REGISTER",))
    assert problem_of(*cseq) == (400, "Bad CSeq header: CSeq number out of range")
    mf = request_lines(drop=("Max-Forwards",), extra=("Max-Forwards: 300",))
    assert problem_of(*mf) == (400, "Bad Max-Forwards")


def test_torture_overlarge_scalars_in_a_response() -> None:
    # Modelled on RFC 4475 3.1.2.5: the response is dropped.
    head = [h for h in RESPONSE_HEAD if not h.startswith("CSeq")]
    resp = parse_response(
        crlf(
            "SIP/2.0 503 Service Unavailable",
            *head,
            "CSeq: 36893488147419103232 INVITE",
            "Retry-After: 949302838503028349304023988",
        )
    )
    assert response_problem(resp) == "Bad CSeq header: CSeq number out of range"


def test_torture_angle_brackets_around_request_uri() -> None:
    # Modelled on RFC 4475 3.1.2.7.
    assert problem_of(*request_lines(uri="<sip:bob@example.com>")) == (400, "Bad Request-URI")


@pytest.mark.parametrize(
    "line",
    ["INVITE sip:bob@example.com; lr SIP/2.0",  # RFC 4475 3.1.2.8: LWS in the URI
     "INVITE  sip:bob@example.com  SIP/2.0",  # 3.1.2.9: several SP (rejecting is allowed)
     "OPTIONS sip:bob@example.com SIP/2.0  ",  # 3.1.2.10: trailing SP (rejecting is allowed)
     "INVITE sip:bob@example.com SIP/2.0\t"],
)  # fmt: skip
def test_torture_malformed_request_line_whitespace(line: str) -> None:
    lines = request_lines()
    lines[0] = line
    err = parse_error(crlf(*lines))
    assert err.reason.startswith("Bad request line")
    assert isinstance(err.partial, Request)  # so the 400 can be sent


def test_torture_escaped_headers_in_request_uri_are_tolerated() -> None:
    # RFC 4475 3.1.2.11 allows a 400 or ignoring the headers; this UAS ignores them.
    uri = "sip:bob@example.com?Route=%3Csip:example.com%3E"
    req = parse_request(request_bytes(uri=uri))
    assert request_problem(req) is None
    ruri = req.request_uri
    assert isinstance(ruri, SipUri) and ruri.headers == "Route=%3Csip:example.com%3E"


def test_torture_liberal_acceptance_of_allowed_oddities() -> None:
    # RFC 4475 3.1.2.12 (bad Date zone), 3.1.2.13 (Contact with "?" outside <>),
    # 3.1.2.14 (spaces inside <>), 3.1.2.15 (unquoted display name with ","):
    # rejecting is allowed, so is being liberal; this parser is liberal.
    lines = request_lines(
        drop=("From", "To", "Contact"),
        extra=(
            "Date: Fri, 01 Jan 2010 16:00:00 EST",
            "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "To: < sip:t.watson@example.org >",
            "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        ),
    )
    req = parse_request(crlf(*lines))
    assert request_problem(req) is None
    assert str(req.to.uri) == "sip:t.watson@example.org"
    assert req.from_.display_name == "Bell, Alexander"


def test_torture_unterminated_quote_in_display_name() -> None:
    # Modelled on RFC 4475 3.1.2.6: respond 400.
    lines = request_lines(drop=("To",), extra=('To: "Mr. J. User <sip:j.user@example.com>',))
    status, _ = problem_of(*lines) or (0, "")
    assert status == 400


def test_torture_invalid_sip_version() -> None:
    # Modelled on RFC 4475 3.1.2.16: respond 505.
    lines = request_lines("OPTIONS")
    lines[0] = "OPTIONS sip:t.watson@example.org SIP/7.0"
    assert problem_of(*lines) == (505, "Version Not Supported (SIP/7.0)")


def test_torture_method_mismatches() -> None:
    # Modelled on RFC 4475 3.1.2.17 and 3.1.2.18: 400 even for an unknown method.
    mismatch = (400, "CSeq method does not match the request method")
    assert problem_of(*request_lines("OPTIONS", cseq_method="INVITE")) == mismatch
    assert problem_of(*request_lines("NEWMETHOD", cseq_method="INVITE")) == (
        400,
        "CSeq method does not match the request method",
    )


def test_torture_overlarge_response_code() -> None:
    # Modelled on RFC 4475 3.1.2.19: must not break the receiver; the response is dropped.
    err = parse_error(crlf("SIP/2.0 4294967301 better not break the receiver", *RESPONSE_HEAD))
    assert err.reason.startswith("Bad status line")


def test_torture_missing_required_headers() -> None:
    # Modelled on RFC 4475 3.3.1: no Call-ID, From or To -> 400.
    lines = request_lines(drop=("Call-ID", "From", "To"))
    status, reason = problem_of(*lines) or (0, "")
    assert status == 400 and reason.startswith("Missing")


def test_torture_multiple_values_in_single_value_fields() -> None:
    # Modelled on RFC 4475 3.3.8: several Call-ID, To, From, Max-Forwards, CSeq -> 400.
    lines = [
        "INVITE sip:user@company.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKmulti",
        "Max-Forwards: 70",
        "CSeq: 5 INVITE",
        "Call-ID: multi.98asdh@192.0.2.1",
        "CSeq: 59 INVITE",
        "Call-ID: multi.98asdh@192.0.2.2",
        "From: sip:caller@example.com;tag=3413415",
        "To: sip:user@example.com",
        "To: sip:other@example.net",
        "From: sip:caller@example.net;tag=2923420123",
        "Max-Forwards: 5",
    ]
    assert problem_of(*lines) == (400, "Multiple Call-ID headers")


def test_torture_multiple_content_length_values() -> None:
    # Modelled on RFC 4475 3.3.9: conflicting Content-Length values -> 400.
    lines = [*request_lines(), "Content-Length: 5", "l: 10"]
    req = parse_request(crlf(*lines, body=b"12345"))
    assert req.body == b"12345"  # the first value frames the datagram
    assert request_problem(req) == (400, "Multiple Content-Length headers")


# ---------------------------------------------------------------------------
# make_response (RFC 3261 8.2.6)


def invite_with(*extra: str, to: str = "Bob <sip:bob@biloxi.example.com>") -> Request:
    lines = request_lines(drop=("Via", "To"), extra=(f"To: {to}", *extra))
    lines[1:1] = [
        "Via: SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK2, SIP/2.0/UDP proxy1.example.com"
        ";branch=z9hG4bK1",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK0;received=192.0.2.1",
    ]
    return parse_request(crlf(*lines))


def test_response_copies_vias_in_order_and_from_call_id_cseq() -> None:
    req = invite_with()
    resp = make_response(req, 486, to_tag="abc")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert [v.branch for v in resp.vias] == ["z9hG4bK2", "z9hG4bK1", "z9hG4bK0"]
    for name in ("From", "Call-ID", "CSeq"):
        assert resp.headers.get(name) == req.headers.get(name)
    assert (resp.status, resp.reason) == (486, "Busy Here")
    assert "Contact" not in resp.headers and "Max-Forwards" not in resp.headers
    again = parse_response(resp.encode())
    assert response_problem(again) is None
    assert again.to.tag == "abc"


def test_to_tag_added_only_when_absent() -> None:
    resp = make_response(invite_with(), 200, to_tag="ours")
    assert resp.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=ours"
    assert str(resp.to.uri) == "sip:bob@biloxi.example.com"
    tagged = invite_with(to="<sip:bob@biloxi.example.com>;tag=theirs")
    resp = make_response(tagged, 200, to_tag="ours")
    assert resp.headers.get("To") == "<sip:bob@biloxi.example.com>;tag=theirs"
    assert make_response(invite_with(), 200).to.tag is None  # no tag offered


def test_to_tag_on_an_addr_spec_to() -> None:
    resp = make_response(invite_with(to="sip:bob@biloxi.example.com"), 180, to_tag="t1")
    assert resp.to.tag == "t1"
    assert str(resp.to.uri) == "sip:bob@biloxi.example.com"


def test_no_to_tag_on_100_trying() -> None:
    resp = make_response(invite_with(), 100, to_tag="ours")
    assert resp.to.tag is None
    assert resp.reason == "Trying"


def test_timestamp_copied_into_100_only() -> None:
    # RFC 3261 8.2.6.1: a 100 Trying carries the request's Timestamp.
    req = invite_with("Timestamp: 54.21 0.3")
    assert make_response(req, 100).headers.get("Timestamp") == "54.21 0.3"
    assert "Timestamp" not in make_response(req, 180, to_tag="x").headers
    assert "Timestamp" not in make_response(invite_with(), 100).headers


def test_reason_phrases_extra_headers_and_body() -> None:
    req = invite_with()
    assert make_response(req, 404).reason == "Not Found"
    assert make_response(req, 404, "Nobody Here").reason == "Nobody Here"
    assert make_response(req, 499).reason == "Unknown"
    assert set(REASON_PHRASES) >= {100, 180, 200, 400, 404, 416, 481, 486, 487, 505, 513}
    resp = make_response(req, 200, to_tag="x", extra=[("Contact", "<sip:me@h>")], body=b"v=0\r\n")
    assert resp.headers.get("Contact") == "<sip:me@h>"
    data = resp.encode()
    assert b"Content-Length: 5\r\n\r\nv=0\r\n" in data


def test_response_to_a_partial_message() -> None:
    err = parse_error(crlf(*request_lines(), "Content-Length: 99", body=b"x"))
    assert err.partial is not None
    resp = make_response(err.partial, err.status, err.reason)
    assert (resp.status, resp.reason) == (400, "Content-Length larger than the body")
    assert resp.top_via.branch == "z9hG4bK776asdhds"
    assert resp.call_id == "a84b4c76e66710@pc33.atlanta.example.com"


def test_response_when_to_is_unparsable_keeps_it_as_is() -> None:
    resp = make_response(invite_with(to="<broken"), 400, to_tag="x")
    assert resp.headers.get("To") == "<broken"


def test_single_headers_constant() -> None:
    assert {"call-id", "cseq", "from", "to", "max-forwards", "content-length"} == SINGLE_HEADERS


def test_split_head() -> None:
    assert split_head(b"A\r\nB\r\n\r\nbody") == (b"A\r\nB", b"body")
    assert split_head(b"A\nB\n\nbody\r\n\r\n") == (b"A\nB", b"body\r\n\r\n")
    assert split_head(b"A\r\nB\n\r\nbody") == (b"A\r\nB", b"body")
    assert split_head(b"A\r\nB\r\n") is None


# ---------------------------------------------------------------------------
# Properties

_MUTATION_SEEDS = [
    request_bytes(body=b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"),
    crlf("SIP/2.0 180 Ringing", *RESPONSE_HEAD, "Content-Length: 0"),
    crlf(*request_lines("REGISTER", uri="sip:[2001:db8::1]:5060"), "l: 0"),
]


def _check_total(data: bytes) -> None:
    """Parsing either succeeds or raises SipParseError; what parses can be inspected
    and answered without any other exception."""
    for datagram in (True, False):
        try:
            msg = parse_message(data, datagram=datagram)
        except SipParseError as exc:
            assert exc.status in (400, 513)
            assert exc.reason and "\r" not in exc.reason and "\n" not in exc.reason
            if exc.partial is not None:
                make_response(exc.partial, exc.status, exc.reason, to_tag="t")
            continue
        if isinstance(msg, Request):
            request_problem(msg)
            make_response(msg, 200, to_tag="t").encode()
        else:
            response_problem(msg)
        msg.encode()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_sip_parse_error(data: bytes) -> None:
    _check_total(data)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_sip_parse_error(text: str) -> None:
    _check_total(text.encode())
    _check_total(b"OPTIONS sip:a@b SIP/2.0\r\n" + text.encode())


# Bytes that matter to the grammar, digits Python reads as numbers ("²", "٣"), and a
# digit run longer than int() accepts.
_INSERTS = [b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b";", b",", b'"', b"<", b">", b"\\",
            b"@", b"\x00", b"\xff", b"\xc2\xb2", b"\xd9\xa3", b"%", b"?", b"9" * 4400]  # fmt: skip


# Put in front of a header value, where numbers and quoted strings are read.
_VALUE_INSERTS = [b"9" * 4400, b"\xc2\xb2", b"\xd9\xa3", b"0", b"-", b"\t", b'"', b"<"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_MUTATION_SEEDS)))
    if draw(st.booleans()):
        starts = [i + 2 for i in range(len(data) - 1) if data[i : i + 2] == b": "]
        at = draw(st.sampled_from(starts))
        data[at:at] = draw(st.sampled_from(_VALUE_INSERTS))
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(_INSERTS)) * draw(st.integers(1, 3))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            end = pos + draw(st.integers(1, 40))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_only_raise_sip_parse_error(data: bytes) -> None:
    _check_total(data)


_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
_token = st.text(_TOKEN_CHARS, min_size=1, max_size=12)
_value = st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=40).map(
    lambda s: s.strip(" \t")
)


@st.composite
def valid_messages(draw: st.DrawFn) -> Request | Response:
    headers = Headers()
    for _ in range(draw(st.integers(0, 12))):
        name = draw(_token.filter(lambda n: header_key(n) != "content-length"))
        headers.add(name, draw(_value))
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        method = draw(_token)
        user = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/%", max_size=10))
        uri = f"sip:{user + '@' if user else ''}example.com"
        return Request(method=method, uri=uri, headers=headers, body=body)
    reason = draw(_value)
    return Response(status=draw(st.integers(100, 699)), reason=reason, headers=headers, body=body)


@settings(max_examples=300)
@given(valid_messages(), st.booleans())
def test_generated_messages_round_trip(msg: Request | Response, datagram: bool) -> None:
    data = msg.encode()
    again = parse_message(data, datagram=datagram)
    assert type(again) is type(msg)
    assert again.start_line() == msg.start_line()
    written = [h for h in again.headers if h[0] != "Content-Length"]
    assert written == list(msg.headers)
    assert again.body == msg.body
    assert again.headers.get("Content-Length") == str(len(msg.body))
    assert again.encode() == data


@pytest.mark.parametrize(
    "header",
    ["Require", "Proxy-Require", "Contact", "Record-Route", "Route"],
)  # fmt: skip
def test_a_list_header_with_an_unterminated_quote_is_a_400(header: str) -> None:
    """Found by fuzzing: `Require: "x` raised out of the user agent (500) instead of a 400."""
    lines = request_lines(drop=("Contact",), extra=(f'{header}: a, "unterminated',))
    assert problem_of(*lines) == (400, f"Bad {header} header: unterminated quoted string")


@pytest.mark.parametrize("header", ["Contact", "Record-Route"])
@pytest.mark.parametrize("value", ["\x00sip:fuzz@127.0.0.1:5070>", "<sip:a@>", "not a uri"])
def test_a_contact_or_record_route_that_is_not_an_address_is_a_400(header: str, value: str) -> None:
    """Found by fuzzing: the dialog parsed them during call set-up (an internal error)."""
    lines = request_lines(drop=("Contact",), extra=(f"{header}: {value}",))
    status, reason = problem_of(*lines) or (0, "")
    assert (status, reason.split(":")[0]) == (400, f"Bad {header} header")


def test_contact_star_is_left_to_the_registrar() -> None:
    lines = request_lines("REGISTER", drop=("Contact",), extra=("Contact: *", "Expires: 0"))
    assert problem_of(*lines) is None
