"""Digest authentication: header syntax, responses, client state, server checks
(RFC 2617, RFC 7616, RFC 8760, RFC 3261 22).

Known answers come from the RFC examples (RFC 2617 3.5, RFC 2069 2.4, RFC 7616
3.9.1) and from SIP requests whose responses were computed with coreutils
``md5sum``/``sha256sum`` and ``openssl dgst -sha512-256``; :func:`reference` is an
independent hashlib transcription of RFC 7616 3.4 that every algorithm is
checked against.
"""

from __future__ import annotations

import contextlib
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.sip.auth_client import MAX_CLIENT_REALMS, ClientAuthState
from mediaserver.sip.auth_server import (
    NC_WINDOW,
    AuthReason,
    DigestAuthenticator,
    same_request_uri,
)
from mediaserver.sip.digest import (
    SUPPORTED_ALGORITHMS,
    Challenge,
    Credentials,
    DigestError,
    answer_challenge,
    authorization_header,
    best_challenges,
    canonical_algorithm,
    challenges_from,
    credentials_from,
    digest_response,
    parse_auth_items,
    parse_challenges,
    quote,
)
from mediaserver.sip.message import Request, Response, make_response, parse_message

# ---------------------------------------------------------------------------
# An independent reference: RFC 7616 3.4.1-3.4.3 written out with hashlib


def _h(algorithm: str, data: bytes) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    if base == "MD5":
        return hashlib.md5(data).hexdigest()
    if base == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    assert base == "SHA-512-256"
    return hashlib.new("sha512_256", data).hexdigest()


def reference(
    algorithm: str,
    user: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    cnonce: str,
    nc: str,
    qop: str | None,
    body: bytes = b"",
) -> str:
    a1 = f"{user}:{realm}:{password}".encode()
    ha1 = _h(algorithm, a1)
    if algorithm.lower().endswith("-sess"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}".encode()
    if qop == "auth-int":
        a2 += b":" + _h(algorithm, body).encode()
    ha2 = _h(algorithm, a2)
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}".encode())
    return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


# ---------------------------------------------------------------------------
# Known answers from the RFCs

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_section_3_5_example() -> None:
    (challenge,) = parse_challenges(RFC2617_CHALLENGE)
    assert challenge.algorithm == "MD5"  # absent means MD5
    assert challenge.qop == ("auth", "auth-int")
    creds = answer_challenge(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    assert creds.response == "6629fae49393a05397450978507c4ef1"
    text = str(creds)
    assert "qop=auth, nc=00000001" in text
    assert 'cnonce="0a4f113b"' in text
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in text
    assert 'uri="/dir/index.html"' in text


def test_rfc2617_authorization_header_parses() -> None:
    header = (
        'Digest username="Mufasa",\n realm="testrealm@host.com",\n'
        ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\n uri="/dir/index.html",\n'
        ' qop=auth,\n nc=00000001,\n cnonce="0a4f113b",\n'
        ' response="6629fae49393a05397450978507c4ef1",\n'
        ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    ).replace("\n", "")
    creds = Credentials.parse(header)
    assert (creds.username, creds.nc, creds.cnonce, creds.qop) == ("Mufasa", 1, "0a4f113b", "auth")
    expected = reference(
        "MD5",
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "GET",
        creds.uri,
        creds.nonce,
        "0a4f113b",
        "00000001",
        "auth",
    )
    assert creds.response == expected == "6629fae49393a05397450978507c4ef1"


def test_rfc2069_form_without_qop() -> None:
    """RFC 2069 2.4 (kept by RFC 2617 3.2.2.1): no qop, response = H(HA1:nonce:HA2)."""
    challenge = Challenge(realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093")
    creds = answer_challenge(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="CircleOfLife",
    )
    assert creds.response == "1949323746fe6a43ef61f9606e7febea"
    assert creds.qop is None and creds.nc is None and creds.cnonce is None
    assert "nc=" not in str(creds) and "cnonce" not in str(creds)


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm: str, expected: str) -> None:
    text = (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    (challenge,) = parse_challenges(text)
    creds = answer_challenge(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    assert creds.response == expected
    assert creds.qop == "auth"  # auth preferred over auth-int when both are offered
    assert f"algorithm={algorithm}," in str(creds)
    independent = reference(
        algorithm,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "GET",
        "/dir/index.html",
        RFC7616_NONCE,
        RFC7616_CNONCE,
        "00000001",
        "auth",
    )
    assert independent == expected


def test_rfc7616_both_challenges_in_one_header_pick_sha256() -> None:
    both = ", ".join(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={a}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
        for a in ("MD5", "SHA-256")
    )
    challenges = parse_challenges(both)
    assert [c.algorithm for c in challenges] == ["MD5", "SHA-256"]
    assert [c.algorithm for c in best_challenges(challenges)] == ["SHA-256"]


# ---------------------------------------------------------------------------
# SIP known answers (coreutils md5sum / sha256sum, openssl dgst -sha512-256)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "3c5f1b2c38e1fb910247af6b65581fd1"),
        ("SHA-256", "fdcd17efce88f44d12764a267fc72e656cde2cebbcc5e1ff41e101a662265df1"),
        ("SHA-512-256", "4479752fae3fccb583e77eaa2b4de7973d87da639c7107f763c181f57d5fa9f6"),
    ],
)
def test_sip_register_known_answers(algorithm: str, expected: str) -> None:
    challenge = Challenge(realm="mediaserver", nonce="abc123", algorithm=algorithm, qop=("auth",))
    creds = answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:127.0.0.1",
        username="alice",
        password="wonderland",
        cnonce="0a4f113b",
    )
    assert creds.response == expected


def test_sip_invite_sha256_sess_auth_int_known_answer() -> None:
    challenge = Challenge(
        realm="mediaserver", nonce="abc123", algorithm="SHA-256-sess", qop=("auth-int",)
    )
    creds = answer_challenge(
        challenge,
        method="INVITE",
        uri="sip:echo@127.0.0.1",
        username="alice",
        password="wonderland",
        body=b"v=0\r\n",
        cnonce="0a4f113b",
        nc=2,
    )
    assert creds.response == "e1125fe1a9947ee66c849fc31297311276ade57e85c056f1601b37c6ad884c9e"
    assert (creds.qop, creds.nc, creds.algorithm) == ("auth-int", 2, "SHA-256-sess")


@pytest.mark.parametrize("algorithm", SUPPORTED_ALGORITHMS)
@pytest.mark.parametrize("qop", ["auth", "auth-int", None])
def test_every_algorithm_matches_the_reference(algorithm: str, qop: str | None) -> None:
    challenge = Challenge(
        realm="sip.example.net", nonce="n0nce", algorithm=algorithm, qop=(qop,) if qop else ()
    )
    creds = answer_challenge(
        challenge,
        method="INVITE",
        uri="sip:+33199001234@sip.example.net;user=phone",
        username="1001",
        password="s3cr:et",
        body=b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
        cnonce="c0ffee",
        nc=0x1F,
    )
    expected = reference(
        algorithm,
        "1001",
        "sip.example.net",
        "s3cr:et",
        "INVITE",
        "sip:+33199001234@sip.example.net;user=phone",
        "n0nce",
        "c0ffee",
        "0000001f",
        qop,
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
    )
    assert creds.response == expected
    assert len(creds.response) == (32 if algorithm.startswith("MD5") else 64)
    if qop:
        assert "nc=0000001f" in str(creds)
    # -sess needs the cnonce in A1 even without qop (RFC 2617 3.2.2.2)
    assert (creds.cnonce is not None) == (qop is not None or algorithm.endswith("-sess"))


def test_userhash_hides_the_username_but_a1_uses_it() -> None:
    challenge = Challenge(realm="r", nonce="n", algorithm="SHA-256", qop=("auth",), userhash=True)
    creds = answer_challenge(
        challenge, method="REGISTER", uri="sip:r", username="alice", password="pw", cnonce="c"
    )
    assert creds.username == hashlib.sha256(b"alice:r").hexdigest()
    assert creds.userhash and "userhash=true" in str(creds)
    assert creds.response == reference(
        "SHA-256", "alice", "r", "pw", "REGISTER", "sip:r", "n", "c", "00000001", "auth"
    )


def test_utf8_credentials_hash_as_utf8() -> None:
    challenge = Challenge(realm="r", nonce="n", qop=("auth",))
    creds = answer_challenge(
        challenge, method="REGISTER", uri="sip:r", username="jäsøn", password="pâss", cnonce="c"
    )
    assert creds.response == reference(
        "MD5", "jäsøn", "r", "pâss", "REGISTER", "sip:r", "n", "c", "00000001", "auth"
    )


def test_cnonce_generated_when_not_given() -> None:
    challenge = Challenge(realm="r", nonce="n", qop=("auth",))
    first = answer_challenge(challenge, method="M", uri="sip:r", username="u", password="p")
    second = answer_challenge(challenge, method="M", uri="sip:r", username="u", password="p")
    assert first.cnonce and second.cnonce and first.cnonce != second.cnonce
    assert first.response != second.response


@pytest.mark.parametrize(
    ("challenge", "problem"),
    [
        (Challenge(realm="r", nonce="n", algorithm="SHA-1"), "algorithm"),
        (Challenge(realm="r", nonce="n", algorithm="MD5", qop=("auth-conf",)), "qop"),
    ],
)
def test_unanswerable_challenges(challenge: Challenge, problem: str) -> None:
    assert not challenge.supported
    with pytest.raises(DigestError, match=problem):
        answer_challenge(challenge, method="M", uri="sip:r", username="u", password="p")


@pytest.mark.parametrize("nc", [0, -1, 2**32])
def test_nonce_count_range(nc: int) -> None:
    challenge = Challenge(realm="r", nonce="n", qop=("auth",))
    with pytest.raises(DigestError):
        answer_challenge(challenge, method="M", uri="sip:r", username="u", password="p", nc=nc)


def test_digest_response_argument_checks() -> None:
    with pytest.raises(DigestError, match="unsupported"):
        digest_response(
            algorithm="SHA-1", username="u", realm="r", password="p", method="M", uri="u", nonce="n"
        )
    with pytest.raises(DigestError, match="cnonce"):
        digest_response(
            algorithm="MD5-sess", username="u", realm="r", password="p", method="M", uri="u",
            nonce="n",
        )  # fmt: skip
    with pytest.raises(DigestError):
        digest_response(
            algorithm="MD5", username="u", realm="r", password="p", method="M", uri="u",
            nonce="n", qop="auth",
        )  # fmt: skip


def test_canonical_algorithm_names() -> None:
    assert canonical_algorithm("md5") == "MD5"
    assert canonical_algorithm(" sha-256-SESS ") == "SHA-256-sess"
    assert canonical_algorithm("Sha-512-256") == "SHA-512-256"
    assert SUPPORTED_ALGORITHMS[:4] == ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")


# ---------------------------------------------------------------------------
# Header syntax


def test_parameter_names_and_algorithm_are_case_insensitive() -> None:
    (c,) = parse_challenges(
        'DIGEST REALM="Example", NONCE="abc", Algorithm=sha-256, QOP="AUTH", Stale=true, '
        'OPAQUE="o", UserHash=TRUE, Domain="sip:a sip:b", charset=UTF-8'
    )
    assert (c.realm, c.nonce, c.algorithm, c.qop) == ("Example", "abc", "SHA-256", ("auth",))
    assert c.stale and c.userhash
    assert (c.opaque, c.domain, c.charset) == ("o", "sip:a sip:b", "UTF-8")


def test_values_keep_their_case_and_escapes() -> None:
    (c,) = parse_challenges(r'Digest realm="A \"quoted\" \\ Realm, with commas", nonce="N=="')
    assert c.realm == 'A "quoted" \\ Realm, with commas'
    assert c.nonce == "N=="
    again = parse_challenges(str(c))
    assert again == [c]


def test_whitespace_and_empty_list_elements_are_tolerated() -> None:
    (c,) = parse_challenges('  Digest   realm = "r" ,, ,nonce\t=\t"n",algorithm=MD5  ')
    assert (c.realm, c.nonce, c.algorithm) == ("r", "n", "MD5")


def test_unquoted_token_values_are_accepted() -> None:
    (c,) = parse_challenges("Digest realm=example.com, nonce=abc, qop=auth, stale=FALSE")
    assert (c.realm, c.nonce, c.qop, c.stale) == ("example.com", "abc", ("auth",), False)


def test_several_challenges_and_other_schemes() -> None:
    text = (
        'Basic realm="web", Negotiate abc==, Digest realm="a", nonce="1", algorithm=SHA-256, '
        'Bearer, Digest realm="a", nonce="2"'
    )
    items = parse_auth_items(text)
    assert [i.scheme for i in items] == ["Basic", "Negotiate", "Digest", "Bearer", "Digest"]
    assert items[1].token68 == "abc=="
    challenges = parse_challenges(text)
    assert [(c.nonce, c.algorithm) for c in challenges] == [("1", "SHA-256"), ("2", "MD5")]


def test_unknown_parameters_survive_a_round_trip() -> None:
    (c,) = parse_challenges('Digest realm="r", nonce="n", X-Vendor=thing, other="a,b"')
    assert c.extra == (("x-vendor", "thing"), ("other", "a,b"))
    assert parse_challenges(str(c)) == [c]


def test_challenge_formatting() -> None:
    c = Challenge(realm="r", nonce="n", algorithm="SHA-256", qop=("auth",), stale=True)
    assert str(c) == 'Digest realm="r", nonce="n", stale=TRUE, algorithm=SHA-256, qop="auth"'


def test_credentials_formatting() -> None:
    creds = Credentials(
        username='a"b',
        realm="r",
        nonce="n",
        uri="sip:x",
        response="ff",
        algorithm="SHA-256",
        cnonce="c",
        nc=10,
        qop="auth",
    )
    assert str(creds) == (
        'Digest username="a\\"b", realm="r", nonce="n", uri="sip:x", response="ff", '
        'algorithm=SHA-256, cnonce="c", qop=auth, nc=0000000a'
    )
    assert Credentials.parse(str(creds)) == creds
    assert authorization_header(creds) == ("Authorization", str(creds))
    proxied = Credentials.parse(str(creds), proxy=True)
    assert authorization_header(proxied)[0] == "Proxy-Authorization"


def test_quote() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.parametrize(
    "text",
    [
        'Digest realm="unterminated',
        "Digest realm",
        "Digest realm=",
        'Digest realm="a" nonce="b"',
        'Digest realm="a", realm="b", nonce="c"',
        'Digest nonce="x"',
        'Digest realm="x"',
        '=Digest realm="x"',
        'Digest,realm="x", nonce="n"',
        'Digestrealm="x"',
        'Digest realm="x", nonce="n", =3',
        'Digest realm="x", nonce="n", "quoted"=3',
        "Digest abc==",
    ],
)
def test_malformed_challenges(text: str) -> None:
    with pytest.raises(DigestError):
        parse_challenges(text)


@pytest.mark.parametrize(
    "text",
    [
        'Digest username="u", realm="r", nonce="n", uri="sip:x"',  # no response
        'Digest username="u", realm="r", nonce="n", response="f"',  # no uri
        'Digest username="u", realm="r", nonce="n", uri="u", response="f", qop=auth, nc=00000001',
        'Digest username="u", realm="r", nonce="n", uri="u", response="f", qop=auth, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="u", response="f", qop=auth, cnonce="c", '
        "nc=1",
        'Digest username="u", realm="r", nonce="n", uri="u", response="f", qop=auth, cnonce="c", '
        "nc=0000000g",
        "Basic dXNlcjpwYXNz",
        'Digest username="u", realm="r", nonce="n", uri="u", response="f", Digest username="v"',
        'Digest username="u", realm="r", nonce="n", uri="u", response="f", nc=000000001',
    ],
)
def test_malformed_credentials(text: str) -> None:
    with pytest.raises(DigestError):
        Credentials.parse(text)


def test_challenges_from_a_response_reads_every_line() -> None:
    response = Response(status=401)
    response.headers.add("WWW-Authenticate", 'Digest realm="a", nonce="1", algorithm=SHA-256')
    response.headers.add("WWW-Authenticate", 'Digest realm="a", nonce="2", algorithm=MD5')
    response.headers.add("WWW-Authenticate", "Digest realm=broken=")  # skipped
    response.headers.add("Proxy-Authenticate", 'Digest realm="p", nonce="3"')
    found = challenges_from(response)
    assert [(c.nonce, c.proxy) for c in found] == [("1", False), ("2", False), ("3", True)]


def test_credentials_from_skips_unreadable_lines() -> None:
    request = Request(method="INVITE", uri="sip:x")
    request.headers.add("Authorization", "Digest nonsense")
    request.headers.add(
        "Authorization", 'Digest username="u", realm="r", nonce="n", uri="sip:x", response="ab"'
    )
    assert [c.username for c in credentials_from(request, "Authorization")] == ["u"]


def test_best_challenges_pick_the_strongest_per_realm_and_header() -> None:
    offered = [
        Challenge(realm="a", nonce="1", algorithm="MD5"),
        Challenge(realm="a", nonce="2", algorithm="SHA-256"),
        Challenge(realm="a", nonce="3", algorithm="SHA-256-sess"),  # as strong: first wins
        Challenge(realm="b", nonce="4", algorithm="SHA-1"),  # unknown: skipped
        Challenge(realm="b", nonce="5", algorithm="MD5"),
        Challenge(realm="a", nonce="6", algorithm="MD5", proxy=True),
    ]
    assert [c.nonce for c in best_challenges(offered)] == ["2", "5", "6"]
    assert best_challenges([Challenge(realm="a", nonce="1", algorithm="SHA-1")]) == []


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=30)
_token = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,12}", fullmatch=True)


@given(
    realm=_text,
    nonce=_text,
    opaque=st.none() | _text,
    algorithm=st.sampled_from(SUPPORTED_ALGORITHMS),
    qop=st.lists(st.sampled_from(["auth", "auth-int"]), unique=True, max_size=2),
    stale=st.booleans(),
    extra=st.dictionaries(_token.map(lambda t: "x-" + t.lower()), _text, max_size=3),
)
@settings(max_examples=200)
def test_challenge_round_trip(
    realm: str,
    nonce: str,
    opaque: str | None,
    algorithm: str,
    qop: list[str],
    stale: bool,
    extra: dict[str, str],
) -> None:
    c = Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=algorithm,
        qop=tuple(qop),
        opaque=opaque,
        stale=stale,
        extra=tuple(extra.items()),
    )
    assert parse_challenges(str(c)) == [c]
    assert parse_challenges(f"{c}, {c}") == [c, c]


@given(
    username=_text,
    uri=_text,
    response=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    nc=st.integers(0, 2**32 - 1),
    cnonce=_text,
)
def test_credentials_round_trip(
    username: str, uri: str, response: str, nc: int, cnonce: str
) -> None:
    creds = Credentials(
        username=username,
        realm="r",
        nonce="n",
        uri=uri,
        response=response,
        cnonce=cnonce,
        nc=nc,
        qop="auth",
    )
    assert Credentials.parse(str(creds)) == creds


@given(st.text(max_size=80))
def test_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(DigestError):
        parse_challenges(text)
    with contextlib.suppress(DigestError):
        Credentials.parse(text)


# ---------------------------------------------------------------------------
# Requests and responses for the client and server tests


def make_request(
    method: str = "REGISTER",
    uri: str = "sip:127.0.0.1",
    body: bytes = b"",
    cseq: int = 1,
) -> Request:
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKtest\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=abc\r\n"
        "To: <sip:alice@127.0.0.1>\r\n"
        "Call-ID: call-1@127.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    request = parse_message(text)
    assert isinstance(request, Request)
    return request


def challenge_401(*values: str, status: int = 401) -> Response:
    request = make_request()
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return make_response(request, status, extra=[(name, v) for v in values])


def ok_response(request: Request) -> Response:
    return make_response(request, 200)


def nc_of(request: Request, header: str = "Authorization") -> int | None:
    (creds,) = credentials_from(request, header)
    return creds.nc


# ---------------------------------------------------------------------------
# Client state


def test_client_answers_then_preauthorises_with_rising_nonce_count() -> None:
    client = ClientAuthState("alice", "wonderland")
    first = make_request()
    client.authorize(first)
    assert "Authorization" not in first.headers  # nothing known yet
    resp = challenge_401('Digest realm="r", nonce="n1", algorithm=SHA-256, qop="auth"')
    assert client.handle_response(first, resp) is True
    assert client.realms == [(False, "r")]

    retry = make_request(cseq=2)
    client.authorize(retry, cnonce="c")
    (creds,) = credentials_from(retry, "Authorization")
    assert (creds.nonce, creds.nc, creds.algorithm, creds.qop) == ("n1", 1, "SHA-256", "auth")
    assert creds.response == reference(
        "SHA-256", "alice", "r", "wonderland", "REGISTER", "sip:127.0.0.1", "n1", "c",
        "00000001", "auth",
    )  # fmt: skip
    assert client.handle_response(retry, ok_response(retry)) is False

    for expected in (2, 3, 4):
        later = make_request(method="OPTIONS", uri="sip:echo@127.0.0.1", cseq=expected + 1)
        client.authorize(later)
        assert nc_of(later) == expected
        assert client.handle_response(later, ok_response(later)) is False
    assert client.nonce_count("r") == 4


def test_client_authorize_replaces_old_credentials() -> None:
    client = ClientAuthState("alice", "pw")
    request = make_request()
    client.handle_response(request, challenge_401('Digest realm="r", nonce="n", qop="auth"'))
    client.authorize(request)
    client.authorize(request)
    assert len(request.headers.get_all("Authorization")) == 1
    assert nc_of(request) == 2


def test_client_stale_nonce_retries_with_the_new_one() -> None:
    client = ClientAuthState("alice", "pw")
    r1 = make_request()
    client.handle_response(r1, challenge_401('Digest realm="r", nonce="old", qop="auth"'))
    r2 = make_request(cseq=2)
    client.authorize(r2)
    client.handle_response(r2, ok_response(r2))
    r3 = make_request(cseq=3)
    client.authorize(r3)
    assert nc_of(r3) == 2
    stale = challenge_401('Digest realm="r", nonce="new", qop="auth", stale=TRUE')
    assert client.handle_response(r3, stale) is True
    r4 = make_request(cseq=4)
    client.authorize(r4)
    (creds,) = credentials_from(r4, "Authorization")
    assert (creds.nonce, creds.nc) == ("new", 1)


def test_client_stale_right_after_a_challenge_still_retries() -> None:
    client = ClientAuthState("alice", "pw")
    r1 = make_request()
    client.handle_response(r1, challenge_401('Digest realm="r", nonce="a", qop="auth"'))
    r2 = make_request(cseq=2)
    client.authorize(r2)
    stale = challenge_401('Digest realm="r", nonce="b", qop="auth", stale=true')
    assert client.handle_response(r2, stale) is True


def test_client_gives_up_when_fresh_credentials_are_refused() -> None:
    client = ClientAuthState("alice", "wrong")
    r1 = make_request()
    assert client.handle_response(r1, challenge_401('Digest realm="r", nonce="a", qop="auth"'))
    r2 = make_request(cseq=2)
    client.authorize(r2)
    # RFC 3261 22.2: a new non-stale challenge after our answer: the password is wrong
    assert client.handle_response(r2, challenge_401('Digest realm="r", nonce="b"')) is False
    assert client.realms == []
    r3 = make_request(cseq=3)
    client.authorize(r3)
    assert "Authorization" not in r3.headers


def test_client_gives_up_when_one_of_two_realms_refused_it() -> None:
    client = ClientAuthState("alice", "wrong")
    r1 = make_request()
    assert client.handle_response(r1, challenge_401('Digest realm="a", nonce="1", qop="auth"'))
    r2 = make_request(cseq=2)
    client.authorize(r2)
    again = challenge_401(
        'Digest realm="a", nonce="2", qop="auth"', 'Digest realm="b", nonce="3", qop="auth"'
    )
    assert client.handle_response(r2, again) is False
    assert client.realms == [(False, "b")]


def test_client_retries_when_a_proven_nonce_is_forgotten() -> None:
    client = ClientAuthState("alice", "pw")
    r1 = make_request()
    client.handle_response(r1, challenge_401('Digest realm="r", nonce="a", qop="auth"'))
    r2 = make_request(cseq=2)
    client.authorize(r2)
    client.handle_response(r2, make_response(r2, 404))  # authenticated, just not found
    r3 = make_request(cseq=3)
    client.authorize(r3)
    # the server restarted and forgot "a": a non-stale challenge, but "a" had worked
    assert client.handle_response(r3, challenge_401('Digest realm="r", nonce="b"')) is True
    r4 = make_request(cseq=4)
    client.authorize(r4)
    assert credentials_from(r4, "Authorization")[0].nonce == "b"


def test_client_handles_401_and_407_realms_together() -> None:
    client = ClientAuthState("1001", "secret")
    r1 = make_request(method="INVITE", uri="sip:+33199001234@sip.example.net")
    proxy = challenge_401('Digest realm="proxy", nonce="p", qop="auth"', status=407)
    assert client.handle_response(r1, proxy) is True
    r2 = make_request(method="INVITE", uri="sip:+33199001234@sip.example.net", cseq=2)
    client.authorize(r2)
    assert nc_of(r2, "Proxy-Authorization") == 1
    assert "Authorization" not in r2.headers
    www = challenge_401('Digest realm="uas", nonce="u", qop="auth"')
    assert client.handle_response(r2, www) is True
    r3 = make_request(method="INVITE", uri="sip:+33199001234@sip.example.net", cseq=3)
    client.authorize(r3)
    assert nc_of(r3, "Proxy-Authorization") == 2
    assert nc_of(r3, "Authorization") == 1
    assert sorted(client.realms) == [(False, "uas"), (True, "proxy")]


def test_client_prefers_sha256_among_offers() -> None:
    client = ClientAuthState("alice", "pw")
    r1 = make_request()
    resp = challenge_401(
        'Digest realm="r", nonce="m", algorithm=MD5, qop="auth"',
        'Digest realm="r", nonce="s", algorithm=SHA-256, qop="auth"',
    )
    assert client.handle_response(r1, resp)
    r2 = make_request(cseq=2)
    client.authorize(r2)
    (creds,) = credentials_from(r2, "Authorization")
    assert (creds.algorithm, creds.nonce) == ("SHA-256", "s")


def test_client_without_usable_challenge_does_not_retry() -> None:
    client = ClientAuthState("alice", "pw")
    r1 = make_request()
    unknown_algorithm = challenge_401('Digest realm="r", nonce="n", algorithm=X')
    assert client.handle_response(r1, unknown_algorithm) is False
    assert client.handle_response(r1, challenge_401('Basic realm="r"')) is False
    assert client.handle_response(r1, challenge_401()) is False
    assert client.handle_response(r1, make_response(r1, 403)) is False


def test_client_remembers_a_bounded_number_of_realms() -> None:
    client = ClientAuthState("alice", "pw")
    r1 = make_request()
    values = [f'Digest realm="r{i}", nonce="n"' for i in range(MAX_CLIENT_REALMS + 5)]
    client.handle_response(r1, challenge_401(*values))
    assert len(client.realms) == MAX_CLIENT_REALMS
    client.forget()
    assert client.realms == []


# ---------------------------------------------------------------------------
# Server

SECRET = b"0123456789abcdef0123456789abcdef"
USERS = {"alice": "wonderland", "bob": "builder"}


def server(**kwargs: object) -> DigestAuthenticator:
    return DigestAuthenticator("mediaserver", SECRET, **kwargs)  # type: ignore[arg-type]


def signed(
    auth: DigestAuthenticator,
    now: float,
    *,
    algorithm: str = "SHA-256",
    username: str = "alice",
    password: str = "wonderland",
    request: Request | None = None,
    uri: str | None = None,
    nc: int = 1,
    header: str = "Authorization",
) -> Request:
    """A request carrying an answer to one of ``auth``'s challenges."""
    request = request or make_request()
    challenges = [c for v in auth.challenge(now) for c in parse_challenges(v)]
    (challenge,) = [c for c in challenges if c.algorithm == algorithm]
    creds = answer_challenge(
        challenge,
        method=request.method,
        uri=uri or request.uri,
        username=username,
        password=password,
        body=request.body,
        nc=nc,
    )
    request.headers.add(header, str(creds))
    return request


def test_server_challenges_sha256_first_then_md5() -> None:
    values = server().challenge(1000.0)
    challenges = [c for v in values for c in parse_challenges(v)]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert all(c.realm == "mediaserver" and c.qop == ("auth",) for c in challenges)
    assert all(not c.stale for c in challenges)
    assert challenges[0].nonce != challenges[1].nonce
    assert all('qop="auth"' in v for v in values)
    stale = [c for v in server().challenge(1000.0, stale=True) for c in parse_challenges(v)]
    assert all(c.stale for c in stale)


def test_server_challenge_response() -> None:
    request = make_request()
    resp = server().challenge_response(request, 5.0, to_tag="t1")
    assert resp.status == 401
    assert len(resp.headers.get_all("WWW-Authenticate")) == 2
    assert resp.to.tag == "t1"
    proxy = server(algorithms=("MD5",)).challenge_response(request, 5.0, proxy=True, stale=True)
    assert proxy.status == 407
    (value,) = proxy.headers.get_all("Proxy-Authenticate")
    assert "stale=TRUE" in value and "algorithm=MD5" in value


def test_server_offer_can_be_narrowed_per_response() -> None:
    """For phones that give up on the first unknown algorithm (old libre/baresip)."""
    auth = server()
    (value,) = auth.challenge(0.0, algorithms=("md5",))
    assert "algorithm=MD5" in value
    resp = auth.challenge_response(make_request(), 0.0, algorithms=("MD5",))
    assert len(resp.headers.get_all("WWW-Authenticate")) == 1
    with pytest.raises(ValueError):
        server(algorithms=("SHA-256",)).challenge(0.0, algorithms=("MD5",))
    with pytest.raises(ValueError):
        auth.challenge(0.0, algorithms=())


def test_nonces_carry_their_time_and_are_sealed() -> None:
    auth = server()
    nonce = auth.new_nonce(1234.5678)
    assert auth.nonce_issued(nonce) == pytest.approx(1234.567)
    assert auth.new_nonce(1234.5678) != nonce  # salted
    assert re.fullmatch(r"[A-Za-z0-9_-]+", nonce)
    other_secret = DigestAuthenticator("mediaserver", b"another secret")
    other_realm = DigestAuthenticator("elsewhere", SECRET)
    assert other_secret.nonce_issued(nonce) is None
    assert other_realm.nonce_issued(nonce) is None
    flipped = nonce[:5] + ("A" if nonce[5] != "A" else "B") + nonce[6:]
    assert auth.nonce_issued(flipped) is None
    for junk in ("", "abc", "!!!!", nonce + "AA", nonce + "=", " " + nonce, "é" * 43):
        assert auth.nonce_issued(junk) is None


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_server_accepts_good_credentials(algorithm: str) -> None:
    auth = server()
    request = signed(auth, 100.0, algorithm=algorithm)
    result = auth.verify(request, "Authorization", USERS.get, 101.0)
    assert result.ok and result.reason is AuthReason.OK
    assert (result.user, result.algorithm) == ("alice", algorithm)
    assert not result.stale
    assert auth.tracked_nonces == 1


def test_server_accepts_proxy_authorization() -> None:
    auth = server()
    request = signed(auth, 100.0, header="Proxy-Authorization")
    assert auth.verify(request, "Proxy-Authorization", USERS.get, 100.0).ok
    assert auth.verify(request, "Authorization", USERS.get, 100.0).reason is AuthReason.MISSING


def test_server_wrong_password() -> None:
    auth = server()
    request = signed(auth, 100.0, password="guess")
    result = auth.verify(request, "Authorization", USERS.get, 100.0)
    assert result.reason is AuthReason.WRONG_RESPONSE and not result.ok and not result.stale
    assert auth.tracked_nonces == 0  # failures leave no state behind


def test_server_unknown_user() -> None:
    auth = server()
    request = signed(auth, 100.0, username="mallory")
    result = auth.verify(request, "Authorization", USERS.get, 100.0)
    assert result.reason is AuthReason.UNKNOWN_USER
    assert result.user == "mallory"


def test_server_non_ascii_response_is_just_wrong() -> None:
    auth = server()
    request = make_request()
    nonce = auth.new_nonce(0.0)
    request.headers.add(
        "Authorization",
        f'Digest username="alice", realm="mediaserver", nonce="{nonce}", uri="sip:127.0.0.1", '
        'response="é", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"',
    )
    assert auth.verify(request, "Authorization", USERS.get, 0.0).reason is (
        AuthReason.WRONG_RESPONSE
    )


_header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=120,
)


@given(
    value=st.one_of(
        _header_text,
        st.builds(
            lambda nonce, nc, rest: (
                f'Digest username="alice", realm="mediaserver", nonce="{nonce}", '
                f'uri="sip:127.0.0.1", response="{rest}", qop=auth, nc={nc}, cnonce="x"'
            ),
            st.sampled_from([server().new_nonce(0.0), "", "AAAA"]) | _header_text,
            st.from_regex(r"[0-9a-fA-F]{8}", fullmatch=True) | _header_text,
            _header_text,
        ),
    )
)
@settings(max_examples=200)
def test_server_verify_never_crashes(value: str) -> None:
    request = make_request()
    request.headers.add("Authorization", value)
    result = server().verify(request, "Authorization", USERS.get, 0.0)
    assert not result.ok


def test_server_missing_and_foreign_realm() -> None:
    auth = server()
    assert auth.verify(make_request(), "Authorization", USERS.get, 0).reason is AuthReason.MISSING
    foreign = make_request()
    creds = answer_challenge(
        Challenge(realm="other", nonce=auth.new_nonce(0), qop=("auth",)),
        method="REGISTER",
        uri=foreign.uri,
        username="alice",
        password="wonderland",
    )
    foreign.headers.add("Authorization", str(creds))
    foreign.headers.add("Authorization", "Basic YWxpY2U6d29uZGVybGFuZA==")
    assert auth.verify(foreign, "Authorization", USERS.get, 0).reason is AuthReason.MISSING


@pytest.mark.parametrize(
    "value",
    [
        'Digest username="alice", realm="mediaserver"',
        "Digest realm=",
        'Digest username="alice", realm="mediaserver", nonce="n", uri="sip:127.0.0.1", '
        'response="00", qop=auth, nc=xyz, cnonce="c"',
    ],
)
def test_server_malformed_header(value: str) -> None:
    request = make_request()
    request.headers.add("Authorization", value)
    result = server().verify(request, "Authorization", USERS.get, 0)
    assert result.reason is AuthReason.MALFORMED
    assert result.detail


def test_server_requires_qop() -> None:
    """RFC 8760 2.2: qop is mandatory; without it there is no nonce count to protect."""
    auth = server()
    request = make_request()
    nonce = auth.new_nonce(0)
    creds = answer_challenge(
        Challenge(realm="mediaserver", nonce=nonce, algorithm="SHA-256"),
        method="REGISTER",
        uri=request.uri,
        username="alice",
        password="wonderland",
    )
    request.headers.add("Authorization", str(creds))
    result = auth.verify(request, "Authorization", USERS.get, 0)
    assert result.reason is AuthReason.MALFORMED and "qop" in result.detail


def test_server_refuses_userhash_it_did_not_offer() -> None:
    auth = server()
    request = make_request()
    challenge = Challenge(
        realm="mediaserver", nonce=auth.new_nonce(0), algorithm="SHA-256", qop=("auth",),
        userhash=True,
    )  # fmt: skip
    creds = answer_challenge(
        challenge, method="REGISTER", uri=request.uri, username="alice", password="wonderland"
    )
    request.headers.add("Authorization", str(creds))
    assert auth.verify(request, "Authorization", USERS.get, 0).reason is AuthReason.MALFORMED


def test_server_replayed_nonce_count() -> None:
    auth = server()
    request = signed(auth, 100.0)
    assert auth.verify(request, "Authorization", USERS.get, 100.0).ok
    replay = auth.verify(request, "Authorization", USERS.get, 101.0)
    assert replay.reason is AuthReason.REPLAYED
    assert replay.stale  # re-challenge with stale=TRUE: a real client recovers quietly


def test_server_nonce_counts_may_rise_and_arrive_out_of_order_once() -> None:
    auth = server()
    nonce_request = signed(auth, 0.0)
    (creds,) = credentials_from(nonce_request, "Authorization")
    challenge = Challenge(
        realm="mediaserver", nonce=creds.nonce, algorithm="SHA-256", qop=("auth",)
    )

    def use(nc: int) -> AuthReason:
        request = make_request(cseq=nc)
        answer = answer_challenge(
            challenge,
            method="REGISTER",
            uri=request.uri,
            username="alice",
            password="wonderland",
            nc=nc,
        )
        request.headers.add("Authorization", str(answer))
        return auth.verify(request, "Authorization", USERS.get, 1.0).reason

    assert use(1) is AuthReason.OK
    assert use(3) is AuthReason.OK
    assert use(2) is AuthReason.OK  # overtaken on UDP: still fresh
    assert use(2) is AuthReason.REPLAYED
    assert use(3) is AuthReason.REPLAYED
    assert use(1) is AuthReason.REPLAYED
    assert use(3 + NC_WINDOW) is AuthReason.OK
    assert use(4) is AuthReason.OK  # just inside the window, never seen
    assert use(3) is AuthReason.REPLAYED  # fell out of the window: refused
    assert use(3 + NC_WINDOW) is AuthReason.REPLAYED


def test_server_stale_nonce_only_with_the_right_password() -> None:
    auth = server(nonce_lifetime=300.0)
    request = signed(auth, 100.0)
    result = auth.verify(request, "Authorization", USERS.get, 400.5)
    assert result.reason is AuthReason.STALE_NONCE and result.stale
    wrong = signed(auth, 100.0, password="guess")
    assert auth.verify(wrong, "Authorization", USERS.get, 400.5).reason is (
        AuthReason.WRONG_RESPONSE
    )
    fresh = signed(auth, 100.0)
    assert auth.verify(fresh, "Authorization", USERS.get, 399.0).ok


def test_server_forged_and_future_nonces() -> None:
    auth = server()
    forger = DigestAuthenticator("mediaserver", b"guessed secret")
    forged = signed(forger, 100.0)
    assert auth.verify(forged, "Authorization", USERS.get, 100.0).reason is AuthReason.BAD_NONCE
    future = signed(auth, 1000.0)
    assert auth.verify(future, "Authorization", USERS.get, 100.0).reason is AuthReason.BAD_NONCE
    made_up = make_request()
    creds = answer_challenge(
        Challenge(realm="mediaserver", nonce="made-up", algorithm="SHA-256", qop=("auth",)),
        method="REGISTER",
        uri=made_up.uri,
        username="alice",
        password="wonderland",
    )
    made_up.headers.add("Authorization", str(creds))
    assert auth.verify(made_up, "Authorization", USERS.get, 0).reason is AuthReason.BAD_NONCE


def test_server_digest_uri_must_be_the_request_uri() -> None:
    auth = server()
    other = signed(auth, 0.0, uri="sip:elsewhere.example.com")
    result = auth.verify(other, "Authorization", USERS.get, 0.0)
    assert result.reason is AuthReason.BAD_URI
    # scheme and host compare case-insensitively
    request = make_request(uri="sip:Echo@Example.COM;transport=udp")
    cased = signed(auth, 0.0, request=request, uri="SIP:Echo@example.com;transport=udp")
    assert auth.verify(cased, "Authorization", USERS.get, 0.0).ok


def test_same_request_uri() -> None:
    assert same_request_uri("sip:a@b", "sip:a@b")
    assert same_request_uri("sip:a@B.example", "SIP:a@b.EXAMPLE")
    assert not same_request_uri("sip:A@b", "sip:a@b")  # the user part is case-sensitive
    assert not same_request_uri("sip:a@b", "sip:a@b:5060")
    assert not same_request_uri("sip:a@b", "tel:+331")
    assert not same_request_uri("not a uri", "sip:a@b")


def test_server_credentials_bind_the_method_and_body() -> None:
    auth = server()
    invite = signed(auth, 0.0, request=make_request(method="INVITE", uri="sip:echo@127.0.0.1"))
    bye = make_request(method="BYE", uri="sip:echo@127.0.0.1")
    for value in invite.headers.get_all("Authorization"):
        bye.headers.add("Authorization", value)
    assert auth.verify(bye, "Authorization", USERS.get, 0.0).reason is AuthReason.WRONG_RESPONSE


def test_server_checks_auth_int_body() -> None:
    auth = server()
    request = make_request(method="MESSAGE", uri="sip:bob@127.0.0.1", body=b"hello")
    challenge = Challenge(
        realm="mediaserver", nonce=auth.new_nonce(0), algorithm="SHA-256", qop=("auth-int",)
    )
    creds = answer_challenge(
        challenge,
        method="MESSAGE",
        uri=request.uri,
        username="bob",
        password="builder",
        body=request.body,
    )
    request.headers.add("Authorization", str(creds))
    assert auth.verify(request, "Authorization", USERS.get, 0).ok
    request.body = b"HELLO"
    auth2 = server()
    assert auth2.verify(request, "Authorization", USERS.get, 0).reason is (
        AuthReason.WRONG_RESPONSE
    )


def test_server_algorithm_policy() -> None:
    sha_only = server(algorithms=("SHA-256",))
    assert len(sha_only.challenge(0)) == 1
    md5 = signed(server(), 0.0, algorithm="MD5")
    result = sha_only.verify(md5, "Authorization", USERS.get, 0.0)
    assert result.reason is AuthReason.UNSUPPORTED_ALGORITHM
    # with both credentials present, the one we accept is used
    both = signed(server(), 0.0, algorithm="MD5")
    signed(sha_only, 0.0, request=both)
    assert sha_only.verify(both, "Authorization", USERS.get, 0.0).ok


def test_server_constructor_checks() -> None:
    with pytest.raises(ValueError, match="secret"):
        DigestAuthenticator("r", b"")
    with pytest.raises(ValueError, match="unsupported"):
        DigestAuthenticator("r", SECRET, algorithms=("SHA-1",))
    with pytest.raises(ValueError):
        DigestAuthenticator("r", SECRET, algorithms=())
    assert DigestAuthenticator("r", SECRET, algorithms=("md5-sess",)).algorithms == ("MD5-sess",)


def test_server_nonce_table_is_bounded_and_never_reopens_replays() -> None:
    auth = server(max_tracked_nonces=3)
    requests = [signed(auth, float(i)) for i in range(5)]
    for request in requests:
        assert auth.verify(request, "Authorization", USERS.get, 10.0).ok
    assert auth.tracked_nonces == 3
    # the two oldest were dropped: their replays must not pass
    for request in requests[:2]:
        result = auth.verify(request, "Authorization", USERS.get, 10.0)
        assert result.reason is AuthReason.STALE_NONCE
    for request in requests[2:]:
        assert auth.verify(request, "Authorization", USERS.get, 10.0).reason is (
            AuthReason.REPLAYED
        )
    newer = signed(auth, 11.0)
    assert auth.verify(newer, "Authorization", USERS.get, 11.0).ok


def test_server_forgets_nonces_once_they_are_stale() -> None:
    auth = server(nonce_lifetime=60.0)
    for i in range(4):
        assert auth.verify(signed(auth, float(i)), "Authorization", USERS.get, float(i)).ok
    assert auth.tracked_nonces == 4
    later = signed(auth, 100.0)
    assert auth.verify(later, "Authorization", USERS.get, 100.0).ok
    assert auth.tracked_nonces == 1


# ---------------------------------------------------------------------------
# End to end: the client state answering the server's challenges


def run_exchange(
    client: ClientAuthState,
    auth: DigestAuthenticator,
    request: Request,
    now: float,
    *,
    proxy: bool = False,
) -> tuple[int, int]:
    """Send ``request`` until the server accepts or the client gives up: (status, attempts)."""
    header = "Proxy-Authorization" if proxy else "Authorization"
    for attempt in range(1, 5):
        client.authorize(request)
        result = auth.verify(request, header, USERS.get, now)
        if result.ok:
            response = make_response(request, 200)
        else:
            response = auth.challenge_response(request, now, proxy=proxy, stale=result.stale)
        if not client.handle_response(request, response):
            return response.status, attempt
        cseq, method = request.cseq
        request.headers.set("CSeq", f"{cseq + 1} {method}")
    raise AssertionError("the client kept retrying")


def test_end_to_end_register_then_preauthorised_requests() -> None:
    auth = server()
    client = ClientAuthState("alice", "wonderland")
    assert run_exchange(client, auth, make_request(), 0.0) == (200, 2)
    # later requests go through at once, with rising nonce counts
    for i in range(2, 6):
        request = make_request(method="OPTIONS", uri="sip:echo@127.0.0.1")
        assert run_exchange(client, auth, request, float(i)) == (200, 1)
        assert nc_of(request) == i
    assert credentials_from(request, "Authorization")[0].algorithm == "SHA-256"


def test_end_to_end_stale_nonce_is_renewed_silently() -> None:
    auth = server(nonce_lifetime=60.0)
    client = ClientAuthState("alice", "wonderland")
    assert run_exchange(client, auth, make_request(), 0.0) == (200, 2)
    assert run_exchange(client, auth, make_request(), 61.0) == (200, 2)
    assert client.nonce_count("mediaserver") == 1


def test_end_to_end_server_restart_is_recovered() -> None:
    auth = server()
    client = ClientAuthState("alice", "wonderland")
    assert run_exchange(client, auth, make_request(), 0.0) == (200, 2)
    restarted = DigestAuthenticator("mediaserver", b"a new secret after restart")
    assert run_exchange(client, restarted, make_request(), 1.0) == (200, 2)


def test_end_to_end_wrong_password_stops_after_one_answer() -> None:
    auth = server()
    client = ClientAuthState("alice", "not the password")
    assert run_exchange(client, auth, make_request(), 0.0) == (401, 2)
    client_unknown = ClientAuthState("mallory", "x")
    assert run_exchange(client_unknown, auth, make_request(), 0.0) == (401, 2)


def test_end_to_end_proxy_challenge_md5_only() -> None:
    auth = server(algorithms=("MD5",))
    client = ClientAuthState("bob", "builder")
    request = make_request(method="INVITE", uri="sip:+33199001234@127.0.0.1", body=b"v=0\r\n")
    assert run_exchange(client, auth, request, 0.0, proxy=True) == (200, 2)
    assert nc_of(request, "Proxy-Authorization") == 1


@given(
    username=st.sampled_from(sorted(USERS)),
    method=st.sampled_from(["REGISTER", "INVITE", "OPTIONS", "MESSAGE"]),
    user_part=st.from_regex(r"[a-z0-9+]{1,10}", fullmatch=True),
    algorithm=st.sampled_from(["SHA-256", "MD5"]),
    wrong=st.booleans(),
)
@settings(max_examples=60)
def test_client_and_server_agree(
    username: str, method: str, user_part: str, algorithm: str, wrong: bool
) -> None:
    auth = server(algorithms=(algorithm,))
    password = USERS[username] + ("!" if wrong else "")
    request = make_request(method=method, uri=f"sip:{user_part}@127.0.0.1")
    request = signed(auth, 0.0, algorithm=algorithm, username=username, password=password,
                     request=request)  # fmt: skip
    result = auth.verify(request, "Authorization", USERS.get, 1.0)
    assert result.ok is not wrong
    assert result.reason is (AuthReason.WRONG_RESPONSE if wrong else AuthReason.OK)
