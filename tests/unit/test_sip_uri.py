"""SIP URIs, name-addresses, Via values and parameters (RFC 3261 19.1, 20.10, 20.42, 25.1)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.sip.uri import (
    BRANCH_COOKIE,
    AbsoluteUri,
    NameAddress,
    SipSyntaxError,
    SipUri,
    Via,
    format_hostport,
    format_params,
    is_token,
    parse_hostport,
    parse_params,
    parse_uri,
    split_quoted,
)

# ---------------------------------------------------------------------------
# Tokens, parameters, host and port


@pytest.mark.parametrize("text", ["INVITE", "a", "z9hG4bK-.!%*_+`'~", "0123"])
def test_tokens(text: str) -> None:
    assert is_token(text)


@pytest.mark.parametrize("text", ["", "a b", "a\n", "a:b", "a@b", "é", "a;b", '"a"', "a\t"])
def test_not_tokens(text: str) -> None:
    assert not is_token(text)


def test_split_quoted_respects_quotes_escapes_and_brackets() -> None:
    assert split_quoted("a,b , c", ",") == ["a", "b ", " c"]
    assert split_quoted('"x,y" <sip:a;b=c,d>, e', ",") == ['"x,y" <sip:a;b=c,d>', " e"]
    assert split_quoted(r'"a\",b", c', ",") == [r'"a\",b"', " c"]
    assert split_quoted(r'"a\\", b', ",") == [r'"a\\"', " b"]
    assert split_quoted("", ",") == [""]
    with pytest.raises(SipSyntaxError, match="unterminated quoted string"):
        split_quoted('"open, never closed', ",")


def test_parse_params() -> None:
    assert parse_params(';lr;Transport=TCP;q = 0.5 ;;x="a;b"') == {
        "lr": None,
        "transport": "TCP",  # names are lower-cased, values kept
        "q": "0.5",
        "x": '"a;b"',
    }
    assert parse_params("") == {}
    assert parse_params("tag=1") == {"tag": "1"}
    assert parse_params("empty=") == {"empty": ""}


@pytest.mark.parametrize("text", [";=x", ";a b=1", ";a@b", ';"q"=1'])
def test_parse_params_rejects_bad_names(text: str) -> None:
    with pytest.raises(SipSyntaxError, match="bad parameter name"):
        parse_params(text)


def test_format_params() -> None:
    assert format_params({"lr": None, "branch": "z9hG4bK1", "e": ""}) == ";lr;branch=z9hG4bK1;e="
    assert format_params({}) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [("example.com", ("example.com", None)), ("example.com:5060", ("example.com", 5060)),
     (" 192.0.2.1:1 ", ("192.0.2.1", 1)), ("[2001:db8::1]", ("[2001:db8::1]", None)),
     ("[::ffff:192.0.2.1]:65535", ("[::ffff:192.0.2.1]", 65535)), ("h_1-x.", ("h_1-x.", None))],
)  # fmt: skip
def test_parse_hostport(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "example.com:", "example.com:0", "example.com:65536", "example.com:123456",
     "example.com:x", "2001:db8::1", "[2001:db8::1", "[zz::1]", "exa mple.com", "a@b",
     "example.com:\u0665\u0660\u0666\u0660"],
)  # fmt: skip
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(SipSyntaxError):
        parse_hostport(text)


def test_format_hostport_brackets_bare_ipv6() -> None:
    assert format_hostport("2001:db8::1", 5060) == "[2001:db8::1]:5060"
    assert format_hostport("[2001:db8::1]", None) == "[2001:db8::1]"
    assert format_hostport("example.com", None) == "example.com"


# ---------------------------------------------------------------------------
# SIP URIs (RFC 3261 19.1)


def test_sip_uri_all_parts() -> None:
    uri = SipUri.parse("sips:alice:secret@atlanta.example.com:5061;transport=TCP;lr?subject=x&p=1")
    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert uri.password == "secret"
    assert uri.host == "atlanta.example.com"
    assert uri.port == 5061
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tls"  # sips: is TLS over TCP (RFC 5630 3.1.3)
    assert uri.headers == "subject=x&p=1"
    assert str(uri) == "sips:alice:secret@atlanta.example.com:5061;transport=TCP;lr?subject=x&p=1"


def test_sip_uri_host_only_and_defaults() -> None:
    uri = SipUri.parse("SIP:Example.COM")
    assert (uri.scheme, uri.host, uri.user, uri.port, uri.params, uri.headers) == (
        "sip",
        "Example.COM",
        None,
        None,
        {},
        "",
    )
    assert uri.transport == "udp"
    assert uri.user_unescaped is None
    assert str(uri) == "sip:Example.COM"


def test_sip_uri_ipv6() -> None:
    uri = SipUri.parse("sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::11]")
    assert (uri.host, uri.port) == ("[2001:db8::10]", 5070)
    assert uri.params == {"maddr": "[2001:db8::11]"}
    assert str(uri) == "sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::11]"


def test_sip_uri_escapes_are_kept_and_decoded_on_demand() -> None:
    uri = SipUri.parse("sip:alice%40home%20office@example.com")
    assert uri.user == "alice%40home%20office"
    assert uri.user_unescaped == "alice@home office"
    assert str(uri) == "sip:alice%40home%20office@example.com"
    assert SipUri.parse("sip:%00@example.com").user_unescaped == "\x00"


def test_sip_uri_telephone_subscriber_user() -> None:
    uri = SipUri.parse("sip:+1-212-555-1212;phone-context=example.com@gw.example.com;user=phone")
    assert uri.user == "+1-212-555-1212;phone-context=example.com"
    assert uri.host == "gw.example.com"
    assert uri.params == {"user": "phone"}


def test_question_mark_in_the_user_part() -> None:
    # RFC 3261 25.1: "?" is user-unreserved (RFC 4475 3.1.1.2 uses it).
    uri = SipUri.parse("sip:what?now@example.com")
    assert (uri.user, uri.host, uri.headers) == ("what?now", "example.com", "")
    uri = SipUri.parse("sip:what?now@example.com?h=v")
    assert (uri.user, uri.host, uri.headers) == ("what?now", "example.com", "h=v")


def test_escaped_at_in_headers_leaves_the_user_alone() -> None:
    uri = SipUri.parse("sip:bob@example.com?Replaces=abc%40host%3Bto-tag%3D1")
    assert (uri.user, uri.host) == ("bob", "example.com")
    assert uri.headers == "Replaces=abc%40host%3Bto-tag%3D1"
    uri = SipUri.parse("sip:example.com?subject=hello")
    assert (uri.user, uri.host, uri.headers) == (None, "example.com", "subject=hello")


def test_sip_uri_empty_password_is_dropped() -> None:
    uri = SipUri.parse("sip:alice:@example.com")
    assert (uri.user, uri.password) == ("alice", None)


@pytest.mark.parametrize(
    "text",
    ["sip:", "sip:@example.com", ":@example.com", "sip::pw@example.com", "sip:a@", "tel:+1",
     "http://example.com", "sipx:a@b", "sip", "sip:a@b:99999", "sip:a@b;=1", "sip:a b@c",
     "sip:a@exa mple.com", "sip:a@b;x=1 2", "sip:a@b?h=1\t2"],
)  # fmt: skip
def test_sip_uri_rejects(text: str) -> None:
    with pytest.raises(SipSyntaxError):
        SipUri.parse(text)


# ---------------------------------------------------------------------------
# Any URI


def test_parse_uri_dispatches_on_scheme() -> None:
    assert isinstance(parse_uri(" sips:a@b "), SipUri)
    tel = parse_uri("TEL:+33-1-23-45-67-89;ext=12")
    assert isinstance(tel, AbsoluteUri)
    assert (tel.scheme, tel.opaque) == ("tel", "+33-1-23-45-67-89;ext=12")
    assert tel.user_unescaped == "+33-1-23-45-67-89"
    assert str(tel) == "tel:+33-1-23-45-67-89;ext=12"
    urn = parse_uri("urn:service:sos")
    assert isinstance(urn, AbsoluteUri) and urn.user_unescaped is None
    assert isinstance(parse_uri("soap.beep://192.0.2.103:3002"), AbsoluteUri)


@pytest.mark.parametrize(
    "text", ["", "nocolon", ":x", "1abc:x", "http:", "ht tp:x", "http:a b", "tel:+1\t2", "<sip:a>"]
)
def test_parse_uri_rejects(text: str) -> None:
    with pytest.raises(SipSyntaxError):
        parse_uri(text)


# ---------------------------------------------------------------------------
# Name-addresses (RFC 3261 20.10)


def test_name_address_with_quoted_display_and_params() -> None:
    na = NameAddress.parse('  "Alice \\"Al\\" Smith, Jr." <sip:alice@example.com;lr>;tag=9 ; x  ')
    assert na.display_name == 'Alice "Al" Smith, Jr.'
    assert str(na.uri) == "sip:alice@example.com;lr"
    assert na.params == {"tag": "9", "x": None}
    assert na.tag == "9"
    assert str(na) == '"Alice \\"Al\\" Smith, Jr." <sip:alice@example.com;lr>;tag=9;x'


def test_name_address_escaped_backslash_before_closing_quote() -> None:
    na = NameAddress.parse('"C:\\\\dir\\\\" <sip:c@example.com>')
    assert na.display_name == "C:\\dir\\"
    assert NameAddress.parse(str(na)).display_name == "C:\\dir\\"


def test_name_address_brackets_inside_quotes() -> None:
    na = NameAddress.parse('"<sip:fake@evil.example.com>" <sip:real@example.com>')
    assert na.display_name == "<sip:fake@evil.example.com>"
    assert str(na.uri) == "sip:real@example.com"


def test_name_address_addr_spec_params_belong_to_the_header() -> None:
    # RFC 3261 20.10: without <>, ";" parameters are header parameters.
    na = NameAddress.parse("sip:bob@example.com;tag=abc;transport=tcp")
    assert str(na.uri) == "sip:bob@example.com"
    assert na.params == {"tag": "abc", "transport": "tcp"}
    assert na.display_name is None
    assert str(na) == "<sip:bob@example.com>;tag=abc;transport=tcp"


def test_name_address_quote_inside_params_of_addr_spec() -> None:
    na = NameAddress.parse('sip:bob@example.com;x="a<b"')
    assert na.params == {"x": '"a<b"'}


def test_name_address_unquoted_display_and_no_space() -> None:
    assert NameAddress.parse("Bob Smith <sip:b@example.com>").display_name == "Bob Smith"
    assert NameAddress.parse("bob<sip:b@example.com>").display_name == "bob"
    assert NameAddress.parse("<tel:+1234>").uri == AbsoluteUri("tel", "+1234")


@pytest.mark.parametrize(
    ("text", "message"),
    [('"Mr. J. User <sip:j.user@example.com>', "unterminated quoted string"),
     ('"open \\" <sip:a@b>', "unterminated quoted string"),
     ("<sip:alice@example.com", "unbalanced <>"),
     ("<sip:a@b> junk", "after <uri>"), ("<sip:a@b> , <sip:c@d>", "after <uri>"),
     ('"a"b <sip:a@b>', "bad display name"), ('"a" "b" <sip:a@b>', "bad display name"),
     ("", "not a URI"), ("Bob sip:b@example.com", "not a URI"),
     ("<sip:a@b>;=1", "bad parameter name")],
)  # fmt: skip
def test_name_address_rejects(text: str, message: str) -> None:
    with pytest.raises(SipSyntaxError, match=message):
        NameAddress.parse(text)


# ---------------------------------------------------------------------------
# Via (RFC 3261 20.42)


def test_via_parse_and_str() -> None:
    via = Via.parse(
        "SIP/2.0/udp pc33.example.com:5066;branch=z9hG4bKnashds8;rport;received=1.2.3.4"
    )
    assert via.transport == "UDP"
    assert (via.host, via.port) == ("pc33.example.com", 5066)
    assert via.branch == "z9hG4bKnashds8"
    assert via.params == {"branch": "z9hG4bKnashds8", "rport": None, "received": "1.2.3.4"}
    assert via.sent_by == ("pc33.example.com", 5066)
    assert (
        str(via) == "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bKnashds8;rport;received=1.2.3.4"
    )


def test_via_whitespace_everywhere() -> None:
    via = Via.parse("  SIP  /  2.0 /\tTCP   host.example.com  :  5070  ;  branch = z9hG4bKx ")
    assert (via.transport, via.host, via.port, via.branch) == (
        "TCP",
        "host.example.com",
        5070,
        "z9hG4bKx",
    )


def test_via_default_ports_and_ipv6() -> None:
    assert Via.parse("SIP/2.0/UDP h").sent_by == ("h", 5060)
    assert Via.parse("SIP/2.0/TCP h").sent_by == ("h", 5060)
    assert Via.parse("SIP/2.0/TLS h").sent_by == ("h", 5061)
    v6 = Via.parse("SIP/2.0/UDP [2001:db8::9]:5080;branch=z9hG4bK1")
    assert v6.sent_by == ("2001:db8::9", 5080)
    assert str(v6) == "SIP/2.0/UDP [2001:db8::9]:5080;branch=z9hG4bK1"
    assert Via("UDP", "2001:db8::9", 5080).sent_by == ("2001:db8::9", 5080)
    assert str(Via("UDP", "2001:db8::9")) == "SIP/2.0/UDP [2001:db8::9]"


def test_via_without_branch() -> None:
    assert Via.parse("SIP/2.0/UDP 192.0.2.15").branch is None  # RFC 2543 peers


@pytest.mark.parametrize(
    "text",
    ["", "SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDPhost", "SIP/2.0/U-P h",
     "SIP/2.0/UDP h:0", "SIP/2.0/UDP h;;=x", "SIP/2.0/UDP h i", "HTTP/1.1/TCP h"],
)  # fmt: skip
def test_via_rejects(text: str) -> None:
    with pytest.raises(SipSyntaxError):
        Via.parse(text)


def test_branch_cookie() -> None:
    assert BRANCH_COOKIE == "z9hG4bK"  # RFC 3261 8.1.1.7


# ---------------------------------------------------------------------------
# Properties

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_label = st.text(_ALNUM + "-", min_size=1, max_size=10)
_hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_user = st.text(_ALNUM + "-_.!~*'()&=+$,;?/" + "%", min_size=1, max_size=16)
_password = st.text(_ALNUM + "-_.!~*'()&=+$,", min_size=1, max_size=8)
_param_names = st.text(_ALNUM + "-.!%*_+`'~", min_size=1, max_size=8).map(str.lower)
_param_values = st.one_of(st.none(), st.text(_ALNUM + "-_.!~*'()[]/:&+$", max_size=8))
_params = st.dictionaries(_param_names, _param_values, max_size=4)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    user = draw(st.none() | _user)
    return SipUri(
        host=draw(_hosts),
        user=user,
        password=draw(_password) if user is not None and draw(st.booleans()) else None,
        port=draw(st.none() | st.integers(1, 65535)),
        scheme=draw(st.sampled_from(["sip", "sips"])),
        params=draw(_params),
        headers=draw(st.text(_ALNUM + "=&%-_.", max_size=12)),
    )


@settings(max_examples=300)
@given(sip_uris())
def test_sip_uris_round_trip(uri: SipUri) -> None:
    assert SipUri.parse(str(uri)) == uri
    assert parse_uri(str(uri)) == uri


_display = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=20
)


@settings(max_examples=300)
@given(sip_uris(), _display, _params)
def test_name_addresses_round_trip(
    uri: SipUri, display: str, params: dict[str, str | None]
) -> None:
    na = NameAddress(uri=uri, display_name=display or None, params=params)
    again = NameAddress.parse(str(na))
    assert again.uri == uri
    assert again.params == params
    if display.strip(" \t"):
        assert again.display_name == display  # quoted, so kept exactly


@settings(max_examples=200)
@given(
    st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]),
    _hosts,
    st.none() | st.integers(1, 65535),
    _params,
)
def test_vias_round_trip(
    transport: str, host: str, port: int | None, params: dict[str, str | None]
) -> None:
    via = Via(transport, host, port, params)
    assert Via.parse(str(via)) == via


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_uri_parsers_only_raise_sip_syntax_error(text: str) -> None:
    for parse in (SipUri.parse, parse_uri, NameAddress.parse, Via.parse, parse_params):
        with contextlib.suppress(SipSyntaxError):
            parse(text)


def test_via_keeps_any_version_so_the_request_can_get_505() -> None:
    """RFC 3261 20.42: the version is a token; a SIP/7.0 peer must still be answerable."""
    via = Via.parse("SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw")
    assert (via.version, via.transport, via.host) == ("7.0", "UDP", "c.example.com")
    assert str(via).startswith("SIP/7.0/UDP c.example.com")
    assert Via.parse("SIP/2.0/TCP h").version == "2.0"
