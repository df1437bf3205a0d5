"""The Digest authentication scheme: header grammar, challenges, credentials and the
response computation (RFC 7235 2.1, RFC 2617, RFC 7616, RFC 8760, RFC 3261 22).

Theory of operation
-------------------
Header text. A challenge (``WWW-Authenticate`` in a 401, ``Proxy-Authenticate``
in a 407) and its answer (``Authorization`` / ``Proxy-Authorization``) are an
auth scheme followed by ``name=value`` parameters, values being tokens or
quoted strings with backslash escapes. One header value may carry several
challenges (RFC 7235 4.1), so :func:`parse_challenges` scans the text and
starts a new challenge wherever a token is not followed by ``=``.
:class:`Challenge` and :class:`Credentials` hold the parsed values and format
back with ``str()``; parameter names are case-insensitive, unknown ones are
kept for the round trip.

Computing a response. :func:`digest_response` is RFC 7616 3.4.1 for MD5,
SHA-256 and SHA-512-256 and their ``-sess`` variants, with ``qop=auth``,
``qop=auth-int`` or no qop at all (the RFC 2069 form old servers still send).
:func:`answer_challenge` turns one challenge into credentials.

Both sides build on this: :mod:`mediaserver.sip.auth_client` answers
challenges (trunks), :mod:`mediaserver.sip.auth_server` issues and checks them
(our users). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mediaserver.sip.message import Request, Response


class DigestError(ValueError):
    """A malformed authentication header, or a challenge that cannot be answered."""


# RFC 7616 6.1 (the IANA registry) and RFC 8760 2.1: algorithm name -> hash, strongest last.
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
if "sha512_256" in hashlib.algorithms_available:  # OpenSSL builds without it exist
    _HASHES["SHA-512-256"] = lambda data: hashlib.new("sha512_256", data).hexdigest()

SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(
    name for base in _HASHES for name in (base, f"{base}-sess")
)
_STRENGTH = {name: rank for rank, base in enumerate(_HASHES) for name in (base, f"{base}-sess")}

HEADER_NAMES = {
    # proxy? -> (challenge header, credentials header, status): RFC 3261 22.2 and 22.3
    False: ("WWW-Authenticate", "Authorization", 401),
    True: ("Proxy-Authenticate", "Proxy-Authorization", 407),
}


def canonical_algorithm(name: str) -> str:
    """``md5-SESS`` -> ``MD5-sess``: algorithm names compare case-insensitively (RFC 7616 3.3)."""
    upper = name.strip().upper()
    if upper.endswith("-SESS"):
        return upper[:-5] + "-sess"
    return upper


# ---------------------------------------------------------------------------
# Header syntax (RFC 7235 2.1, RFC 3261 25.1 quoted-string)

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_WHITESPACE = " \t"


def quote(value: str) -> str:
    """A quoted-string, with ``\\`` and ``"`` escaped (RFC 3261 25.1 quoted-pair)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str = _WHITESPACE) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1
        return self.pos > start

    def match(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def quoted(self) -> str:
        out: list[str] = []
        self.pos += 1  # the opening quote
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])  # RFC 3261 25.1 quoted-pair
                self.pos += 2
                continue
            self.pos += 1
            if ch == '"':
                return "".join(out)
            out.append(ch)
        raise DigestError("unterminated quoted string")

    def fail(self, what: str) -> DigestError:
        return DigestError(f"{what} at column {self.pos + 1} of {self.text[:80]!r}")


@dataclass(frozen=True)
class AuthItem:
    """One scheme with its parameters (names lower-cased) or token68, as read."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


def parse_auth_items(text: str) -> list[AuthItem]:
    """Every challenge or credential in one header value (RFC 7235 2.1 and 4.1)."""
    s = _Scanner(text)
    items: list[AuthItem] = []
    while True:
        s.skip(_WHITESPACE + ",")
        if s.at_end():
            return items
        scheme = s.match(_TOKEN)
        if scheme is None:
            raise s.fail("expected an auth scheme")
        s.skip()  # a token runs up to the space, so what follows is never glued to it
        if s.at_end() or s.peek() == ",":
            items.append(AuthItem(scheme))
            continue
        start = s.pos
        token68 = s.match(_TOKEN68)
        s.skip()
        if token68 is not None and (s.at_end() or s.peek() == ","):
            items.append(AuthItem(scheme, token68=token68))
            continue
        s.pos = start
        items.append(AuthItem(scheme, _parse_params(s)))


def _parse_params(s: _Scanner) -> dict[str, str]:
    params: dict[str, str] = {}
    while True:
        name = s.match(_TOKEN)
        if name is None:
            raise s.fail("expected a parameter name")
        s.skip()
        if s.peek() != "=":
            raise s.fail(f"expected '=' after {name!r}")
        s.pos += 1
        s.skip()
        value = s.quoted() if s.peek() == '"' else s.match(_TOKEN)
        if value is None:
            raise s.fail(f"expected a value for {name!r}")
        key = name.lower()
        if key in params:
            # RFC 7235 2.1: each parameter name MUST only occur once per challenge.
            raise s.fail(f"duplicate parameter {name!r}")
        params[key] = value
        s.skip()
        if s.at_end():
            return params
        if s.peek() != ",":
            raise s.fail("expected ',' between parameters")
        s.skip(_WHITESPACE + ",")
        if s.at_end():
            return params
        # A token then "=" continues this item; a token then anything else starts the next.
        resume = s.pos
        s.match(_TOKEN)
        s.skip()
        is_param = s.peek() == "="
        s.pos = resume
        if not is_param:
            return params


# Parameters written as tokens; all others are quoted (RFC 3261 25.1, RFC 7616 3.3 and 3.4).
# qop is a quoted list in a challenge (qop-options) and a bare token in credentials.
_CHALLENGE_TOKENS = frozenset(("algorithm", "stale", "userhash", "charset"))
_CREDENTIAL_TOKENS = frozenset(("algorithm", "nc", "qop", "userhash"))


def _format(scheme: str, params: Iterable[tuple[str, str | None]], tokens: frozenset[str]) -> str:
    parts = []
    for name, value in params:
        if value is None:
            continue
        is_token = name in tokens and _TOKEN.fullmatch(value) is not None
        parts.append(f"{name}={value if is_token else quote(value)}")
    return f"{scheme} " + ", ".join(parts)


def _extras(params: dict[str, str], known: frozenset[str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in params.items() if k not in known)


def _require(params: dict[str, str], names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in params]
    if missing:
        raise DigestError(f"{what} without {', '.join(missing)}")


# ---------------------------------------------------------------------------
# Challenges

_CHALLENGE_PARAMS = frozenset(
    ("realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain", "userhash", "charset")
)


@dataclass(frozen=True)
class Challenge:
    """A Digest challenge (RFC 7616 3.3). ``proxy`` says it came in Proxy-Authenticate."""

    realm: str
    nonce: str
    algorithm: str = "MD5"  # RFC 7616 3.3: MD5 when absent
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    charset: str | None = None
    proxy: bool = False
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_item(cls, item: AuthItem, *, proxy: bool = False) -> Challenge:
        if item.scheme.lower() != "digest":
            raise DigestError(f"not a Digest challenge: {item.scheme[:20]!r}")
        p = item.params
        _require(p, ("realm", "nonce"), "Digest challenge")
        return cls(
            realm=p["realm"],
            nonce=p["nonce"],
            algorithm=canonical_algorithm(p.get("algorithm", "MD5")),
            qop=tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()),
            opaque=p.get("opaque"),
            stale=p.get("stale", "").lower() == "true",
            domain=p.get("domain"),
            userhash=p.get("userhash", "").lower() == "true",
            charset=p.get("charset"),
            proxy=proxy,
            extra=_extras(p, _CHALLENGE_PARAMS),
        )

    @property
    def supported(self) -> bool:
        """Whether :func:`answer_challenge` can answer it (algorithm and qop known)."""
        return self.algorithm in _STRENGTH and (not self.qop or _pick_qop(self.qop) is not None)

    def __str__(self) -> str:
        return _format(
            "Digest",
            [
                ("realm", self.realm),
                ("domain", self.domain),
                ("nonce", self.nonce),
                ("opaque", self.opaque),
                ("stale", "TRUE" if self.stale else None),
                ("algorithm", self.algorithm),
                # RFC 3261 25.1 qop-options: always a quoted list
                ("qop", ",".join(self.qop) if self.qop else None),
                ("charset", self.charset),
                ("userhash", "true" if self.userhash else None),
                *self.extra,
            ],
            _CHALLENGE_TOKENS,
        )


def parse_challenges(text: str, *, proxy: bool = False) -> list[Challenge]:
    """The Digest challenges in one header value; other schemes are skipped."""
    return [
        Challenge.from_item(item, proxy=proxy)
        for item in parse_auth_items(text)
        if item.scheme.lower() == "digest"
    ]


def challenges_from(response: Response) -> list[Challenge]:
    """Every Digest challenge of a 401 or 407, in order; unreadable lines are skipped."""
    out: list[Challenge] = []
    for proxy in (False, True):
        for value in response.headers.get_all(HEADER_NAMES[proxy][0]):
            try:
                out.extend(parse_challenges(value, proxy=proxy))
            except DigestError:
                continue  # RFC 3261 8.1.3.5: answer what can be answered
    return out


def best_challenges(challenges: Iterable[Challenge]) -> list[Challenge]:
    """One challenge per (header, realm): the strongest algorithm we support, the first
    offered on a tie (RFC 8760 2.4; RFC 7616 3.7: prefer the most secure)."""
    best: dict[tuple[bool, str], Challenge] = {}
    for challenge in challenges:
        if not challenge.supported:
            continue
        key = (challenge.proxy, challenge.realm)
        held = best.get(key)
        if held is None or _STRENGTH[challenge.algorithm] > _STRENGTH[held.algorithm]:
            best[key] = challenge
    return list(best.values())


def _pick_qop(offered: Sequence[str]) -> str | None:
    # RFC 8760 2.2: qop is required; "auth" is what SIP requests need (bodies may be rewritten)
    for qop in ("auth", "auth-int"):
        if qop in offered:
            return qop
    return None


# ---------------------------------------------------------------------------
# Credentials

_CREDENTIAL_PARAMS = frozenset(
    ("username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop",
     "nc", "userhash")
)  # fmt: skip
_NC = re.compile(r"[0-9A-Fa-f]{8}")


@dataclass(frozen=True)
class Credentials:
    """A Digest answer (RFC 7616 3.4). ``proxy`` selects Proxy-Authorization."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: int | None = None
    qop: str | None = None
    opaque: str | None = None
    userhash: bool = False
    proxy: bool = False
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str, *, proxy: bool = False) -> Credentials:
        items = parse_auth_items(text)
        if len(items) != 1 or items[0].scheme.lower() != "digest" or items[0].token68:
            raise DigestError(f"not one Digest credential: {text[:80]!r}")
        p = items[0].params
        _require(p, ("username", "realm", "nonce", "uri", "response"), "Digest credentials")
        nc: int | None = None
        if "nc" in p:
            # RFC 7616 3.4: nc is exactly 8 hexadecimal digits
            if not _NC.fullmatch(p["nc"]):
                raise DigestError(f"bad nonce count {p['nc'][:20]!r}")
            nc = int(p["nc"], 16)
        qop = p["qop"].lower() if "qop" in p else None
        if qop is not None and (nc is None or "cnonce" not in p):
            # RFC 7616 3.4: with qop, cnonce and nc MUST be sent
            raise DigestError("qop without cnonce and nc")
        return cls(
            username=p["username"],
            realm=p["realm"],
            nonce=p["nonce"],
            uri=p["uri"],
            response=p["response"].lower(),
            algorithm=canonical_algorithm(p.get("algorithm", "MD5")),
            cnonce=p.get("cnonce"),
            nc=nc,
            qop=qop,
            opaque=p.get("opaque"),
            userhash=p.get("userhash", "").lower() == "true",
            proxy=proxy,
            extra=_extras(p, _CREDENTIAL_PARAMS),
        )

    def __str__(self) -> str:
        return _format(
            "Digest",
            [
                ("username", self.username),
                ("realm", self.realm),
                ("nonce", self.nonce),
                ("uri", self.uri),
                ("response", self.response),
                ("algorithm", self.algorithm),
                ("cnonce", self.cnonce),
                ("opaque", self.opaque),
                ("qop", self.qop),  # RFC 3261 25.1 message-qop: a bare token
                ("nc", f"{self.nc:08x}" if self.nc is not None else None),
                ("userhash", "true" if self.userhash else None),
                *self.extra,
            ],
            _CREDENTIAL_TOKENS,
        )


def authorization_header(credentials: Credentials) -> tuple[str, str]:
    """The header to add to the retried request: Authorization after a 401,
    Proxy-Authorization after a 407 (RFC 3261 22.2, 22.3)."""
    return HEADER_NAMES[credentials.proxy][1], str(credentials)


def credentials_from(request: Request, header_name: str) -> list[Credentials]:
    """The readable Digest credentials in every line of ``header_name``."""
    proxy = header_name.lower() == "proxy-authorization"
    out: list[Credentials] = []
    for value in request.headers.get_all(header_name):
        try:
            out.append(Credentials.parse(value, proxy=proxy))
        except DigestError:
            continue
    return out


# ---------------------------------------------------------------------------
# The response computation (RFC 7616 3.4.1 to 3.4.3, RFC 2617 3.2.2)


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    cnonce: str | None = None,
    nc: int | None = None,
    qop: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value, as lower-case hex."""
    name = canonical_algorithm(algorithm)
    base = name.removesuffix("-sess")
    if base not in _HASHES:
        raise DigestError(f"unsupported algorithm {algorithm[:20]!r}")
    h = _HASHES[base]

    def hs(text: str) -> str:
        return h(text.encode("utf-8"))

    ha1 = hs(f"{username}:{realm}:{password}")
    if name.endswith("-sess"):
        if cnonce is None:
            raise DigestError(f"{name} needs a cnonce")
        ha1 = hs(f"{ha1}:{nonce}:{cnonce}")  # RFC 7616 3.4.2
    # RFC 7616 3.4.3: auth-int adds the hash of the body
    ha2 = hs(f"{method}:{uri}:{h(body)}") if qop == "auth-int" else hs(f"{method}:{uri}")
    if qop is None:
        return hs(f"{ha1}:{nonce}:{ha2}")  # RFC 2617 3.2.2.1: the RFC 2069 form
    if qop not in ("auth", "auth-int") or cnonce is None or nc is None:
        raise DigestError(f"qop={qop[:20]} needs cnonce and nc")
    return hs(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def new_cnonce() -> str:
    return secrets.token_hex(8)


def answer_challenge(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    body: bytes = b"",
    cnonce: str | None = None,
    nc: int = 1,
) -> Credentials:
    """Credentials answering ``challenge`` for a request (RFC 7616 3.4, RFC 3261 22.2)."""
    if challenge.algorithm not in _STRENGTH:
        raise DigestError(f"unsupported algorithm {challenge.algorithm[:20]!r}")
    qop = _pick_qop(challenge.qop) if challenge.qop else None
    if challenge.qop and qop is None:
        raise DigestError(f"unsupported qop {','.join(challenge.qop)[:40]!r}")
    if not 0 < nc < 2**32:
        raise DigestError("the nonce count is 1 to ffffffff")
    if cnonce is None and (qop is not None or challenge.algorithm.endswith("-sess")):
        cnonce = new_cnonce()
    response = digest_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        cnonce=cnonce,
        nc=nc if qop else None,
        qop=qop,
        body=body,
    )
    shown = username
    if challenge.userhash:
        # RFC 7616 3.4.4: the username travels hashed; A1 still uses the plain one
        shown = _HASHES[challenge.algorithm.removesuffix("-sess")](
            f"{username}:{challenge.realm}".encode()
        )
    return Credentials(
        username=shown,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop or challenge.algorithm.endswith("-sess") else None,
        nc=nc if qop else None,
        qop=qop,
        opaque=challenge.opaque,  # RFC 7616 3.4: returned unchanged
        userhash=challenge.userhash,
        proxy=challenge.proxy,
    )
