"""SIP digest authentication, both sides (RFC 3261 22, RFC 2617, RFC 7616, RFC 8760).

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

Client. :func:`answer_challenge` turns one challenge into credentials.
:class:`ClientAuthState` keeps, per realm, the last challenge and its nonce
count, so that every later request is pre-authorised (RFC 3261 22.3) with
``nc`` counting up. Fed each final response with the request it answered,
it says whether to send the request again: yes when a realm asked for the
first time, when the nonce went stale (``stale=TRUE``: same password, new
nonce), or when a nonce that had already worked was forgotten by the server;
no when freshly computed credentials were refused (RFC 3261 22.2: a wrong
password is not retried).

Server. :class:`DigestAuthenticator` issues nonces that verify without server
state: a millisecond timestamp and random salt, sealed with an HMAC of the
secret and the realm. :meth:`DigestAuthenticator.verify` checks the header
in this order: syntax, realm, algorithm, nonce seal, digest uri against the
Request-URI, user, response, nonce age, then nonce count. Staleness is judged
only after the response proved the password, so ``stale=TRUE`` never tells a
guesser anything. The only state is, per nonce that has authenticated a
request, the highest ``nc`` seen and a window of the ones just below it, so a
replay fails while requests that overtake each other on UDP still pass; that
table is bounded, and a nonce dropped from it before its time counts as stale.
Challenges offer SHA-256 then MD5 by default (RFC 8760 2.3). Some stacks give
up on the whole response when one challenge has an algorithm they do not know
(baresip 1.0 on libre does, MD5 offered or not), so the offer can be narrowed
per response.

Nothing here does I/O: times are passed in as float seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.uri import SipSyntaxError, parse_uri


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


# ---------------------------------------------------------------------------
# Client state

MAX_CLIENT_REALMS = 8  # a hostile server cannot make the client remember more


@dataclass
class _RealmState:
    challenge: Challenge
    nc: int = 0
    proven: bool = False  # a request authorised with this nonce got past authentication


class ClientAuthState:
    """One account's digest state towards one peer: the last challenge per realm and
    its nonce count. Use: :meth:`authorize` before sending a request, then
    :meth:`handle_response` with its final response; when that returns True, send
    the request again (new CSeq, RFC 3261 22.2) after another :meth:`authorize`.
    Requests that are never resubmitted (ACK, CANCEL) should not go through here:
    they would move the nonce count for nothing."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._realms: dict[tuple[bool, str], _RealmState] = {}

    @property
    def realms(self) -> list[tuple[bool, str]]:
        """(proxy, realm) for every remembered challenge."""
        return list(self._realms)

    def nonce_count(self, realm: str, *, proxy: bool = False) -> int:
        """How many requests have been authorised with the realm's current nonce."""
        state = self._realms.get((proxy, realm))
        return state.nc if state else 0

    def forget(self) -> None:
        self._realms.clear()

    def credentials(
        self, method: str, uri: str, body: bytes = b"", *, cnonce: str | None = None
    ) -> list[Credentials]:
        """Fresh credentials for every remembered realm, each nonce count moved on."""
        out = []
        for state in self._realms.values():
            state.nc += 1  # RFC 7616 3.4: one more request with this nonce
            out.append(
                answer_challenge(
                    state.challenge,
                    method=method,
                    uri=uri,
                    username=self.username,
                    password=self._password,
                    body=body,
                    cnonce=cnonce,
                    nc=state.nc,
                )
            )
        return out

    def authorize(self, request: Request, *, cnonce: str | None = None) -> None:
        """Replace the request's credentials with fresh ones for every known realm."""
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        for creds in self.credentials(request.method, request.uri, request.body, cnonce=cnonce):
            request.headers.add(*authorization_header(creds))

    def handle_response(self, request: Request, response: Response) -> bool:
        """Learn from the final response to ``request``; True when it should be resent."""
        sent = {
            (c.proxy, c.realm): c.nonce
            for name in ("Authorization", "Proxy-Authorization")
            for c in credentials_from(request, name)
        }
        if response.status not in (401, 407):
            for key, nonce in sent.items():
                state = self._realms.get(key)
                if state is not None and state.challenge.nonce == nonce:
                    state.proven = True
            return False
        proxy = response.status == 407
        offered = [c for c in challenges_from(response) if c.proxy == proxy]
        chosen = best_challenges(offered)
        if not chosen:
            return False
        retry = True
        for challenge in chosen:
            key = (challenge.proxy, challenge.realm)
            state = self._realms.get(key)
            used = sent.get(key)
            refused = (
                not challenge.stale
                and used is not None
                and state is not None
                and state.challenge.nonce == used
                and not state.proven
            )
            if refused:
                # RFC 3261 22.2: credentials made for a fresh challenge were refused
                del self._realms[key]
                retry = False
            elif key in self._realms or len(self._realms) < MAX_CLIENT_REALMS:
                # RFC 7616 3.3 stale=TRUE, a first challenge, or a server that forgot a
                # nonce that worked: answer the new nonce with the same password
                self._realms[key] = _RealmState(challenge)
        return retry and any((c.proxy, c.realm) in self._realms for c in chosen)


# ---------------------------------------------------------------------------
# Server


class AuthReason(StrEnum):
    OK = "ok"
    MISSING = "missing"  # no credentials for our realm: challenge
    MALFORMED = "malformed"  # unreadable header: 400
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    BAD_NONCE = "bad nonce"  # not one of ours (forged, other secret, from the future)
    BAD_URI = "bad uri"  # RFC 2617 3.2.2.5: digest uri is not the Request-URI
    UNKNOWN_USER = "unknown user"
    WRONG_RESPONSE = "wrong response"
    STALE_NONCE = "stale nonce"  # right password, old nonce: challenge with stale=TRUE
    REPLAYED = "replayed nonce count"


@dataclass(frozen=True)
class AuthResult:
    reason: AuthReason
    user: str | None = None
    detail: str = ""
    algorithm: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is AuthReason.OK

    @property
    def stale(self) -> bool:
        """The password was right; the next challenge should carry stale=TRUE (RFC 7616 3.3)."""
        return self.reason in (AuthReason.STALE_NONCE, AuthReason.REPLAYED)


NC_WINDOW = 64  # nonce counts this far below the highest seen may still arrive once
_NONCE_FORMAT = struct.Struct(">q8s")  # issue time in milliseconds, salt
_MAC_SIZE = 16
CLOCK_SKEW = 5.0  # seconds a nonce may seem to come from the future


@dataclass
class _NonceUse:
    issued_ms: int
    highest: int
    seen: int  # bit i set: highest - i was used


class DigestAuthenticator:
    """Challenges and checks Digest credentials for one realm (RFC 3261 22.4, RFC 8760 2.3)."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        nonce_lifetime: float = 300.0,
        max_tracked_nonces: int = 10_000,
    ) -> None:
        if not secret:
            raise ValueError("the nonce secret must not be empty")
        self.algorithms = tuple(canonical_algorithm(a) for a in algorithms)
        unknown = [a for a in self.algorithms if a not in _STRENGTH]
        if unknown or not self.algorithms:
            raise ValueError(f"unsupported digest algorithms {unknown}; use {SUPPORTED_ALGORITHMS}")
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self.max_tracked_nonces = max_tracked_nonces
        self._secret = secret
        self._uses: OrderedDict[str, _NonceUse] = OrderedDict()
        self._forgotten_up_to_ms: int | None = None

    # -- nonces

    def _seal(self, raw: bytes) -> bytes:
        mac = hmac.new(self._secret, raw + self.realm.encode("utf-8"), hashlib.sha256)
        return mac.digest()[:_MAC_SIZE]

    def new_nonce(self, now: float) -> str:
        raw = _NONCE_FORMAT.pack(int(now * 1000), secrets.token_bytes(8))
        return self._encode(raw + self._seal(raw))

    @staticmethod
    def _encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def nonce_issued(self, nonce: str) -> float | None:
        """When one of our nonces was issued (seconds), or None for a forged one."""
        try:
            data = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(data) != _NONCE_FORMAT.size + _MAC_SIZE or self._encode(data) != nonce:
            return None  # one spelling per nonce: the replay table is keyed by the text
        raw, mac = data[: _NONCE_FORMAT.size], data[_NONCE_FORMAT.size :]
        if not hmac.compare_digest(mac, self._seal(raw)):
            return None
        issued_ms, _ = _NONCE_FORMAT.unpack(raw)
        return float(issued_ms) / 1000

    # -- challenges

    def challenge(
        self, now: float, stale: bool = False, *, algorithms: Sequence[str] | None = None
    ) -> list[str]:
        """Header values, one per algorithm, most preferred first (RFC 8760 2.3).
        ``algorithms`` narrows the offer for one response, say MD5 alone for a phone
        whose stack gives up on the first algorithm it does not know (libre before
        SHA-256 support does, even when MD5 is offered too)."""
        offer = self.algorithms
        if algorithms is not None:
            offer = tuple(canonical_algorithm(a) for a in algorithms)
            if not offer or not set(offer) <= set(self.algorithms):
                raise ValueError(f"can only offer some of {self.algorithms}, not {offer}")
        return [
            str(
                Challenge(
                    realm=self.realm,
                    nonce=self.new_nonce(now),
                    algorithm=algorithm,
                    qop=("auth",),  # RFC 8760 2.2: qop is mandatory
                    stale=stale,
                )
            )
            for algorithm in offer
        ]

    def challenge_response(
        self,
        request: Request,
        now: float,
        *,
        proxy: bool = False,
        stale: bool = False,
        to_tag: str | None = None,
        algorithms: Sequence[str] | None = None,
    ) -> Response:
        """A 401 (or 407 with ``proxy``) carrying fresh challenges (RFC 3261 22.1)."""
        header, _, status = HEADER_NAMES[proxy]
        extra = [(header, v) for v in self.challenge(now, stale, algorithms=algorithms)]
        return make_response(request, status, to_tag=to_tag, extra=extra)

    # -- verification

    def verify(
        self,
        request: Request,
        header_name: str,
        lookup_password: Callable[[str], str | None],
        now: float,
    ) -> AuthResult:
        """Check the request's ``header_name`` credentials for this realm."""
        values = request.headers.get_all(header_name)
        if not values:
            return AuthResult(AuthReason.MISSING)
        ours: list[Credentials] = []
        for value in values:
            try:
                items = parse_auth_items(value)
                if len(items) == 1 and items[0].scheme.lower() != "digest":
                    continue  # another scheme is not ours to judge
                creds = Credentials.parse(value)
            except DigestError as exc:
                return AuthResult(AuthReason.MALFORMED, detail=str(exc))
            if creds.realm == self.realm:
                ours.append(creds)
        if not ours:
            return AuthResult(AuthReason.MISSING, detail="no credentials for this realm")
        # RFC 8760 2.3: use the first credentials with an algorithm we accept
        usable = [c for c in ours if c.algorithm in self.algorithms]
        if not usable:
            return AuthResult(AuthReason.UNSUPPORTED_ALGORITHM, detail=ours[0].algorithm[:20])
        return self._check(request, usable[0], lookup_password, now)

    def _check(
        self,
        request: Request,
        creds: Credentials,
        lookup_password: Callable[[str], str | None],
        now: float,
    ) -> AuthResult:
        def fail(reason: AuthReason, detail: str = "") -> AuthResult:
            return AuthResult(reason, creds.username, detail, creds.algorithm)

        if creds.qop not in ("auth", "auth-int"):
            # RFC 8760 2.2 makes qop mandatory; without nc there is no replay protection
            return fail(AuthReason.MALFORMED, f"qop {creds.qop or 'missing'}")
        if creds.userhash:
            return fail(AuthReason.MALFORMED, "userhash was not offered")
        issued = self.nonce_issued(creds.nonce)
        if issued is None or issued > now + CLOCK_SKEW:
            return fail(AuthReason.BAD_NONCE)
        if not same_request_uri(creds.uri, request.uri):
            return fail(AuthReason.BAD_URI, f"{creds.uri[:60]} is not {request.uri[:60]}")
        password = lookup_password(creds.username)
        expected = digest_response(
            algorithm=creds.algorithm,
            username=creds.username,
            realm=self.realm,
            password="" if password is None else password,  # same work for unknown users
            method=request.method,
            uri=creds.uri,
            nonce=creds.nonce,
            cnonce=creds.cnonce,
            nc=creds.nc,
            qop=creds.qop,
            body=request.body,
        )
        if password is None:
            return fail(AuthReason.UNKNOWN_USER)
        # bytes: compare_digest refuses str with non-ASCII characters
        if not hmac.compare_digest(expected.encode(), creds.response.encode()):
            return fail(AuthReason.WRONG_RESPONSE)
        if now - issued > self.nonce_lifetime:
            return fail(AuthReason.STALE_NONCE)  # RFC 7616 3.3: stale only when the digest is valid
        assert creds.nc is not None  # Credentials.parse demands nc with qop
        verdict = self._count(creds.nonce, int(issued * 1000), creds.nc, now)
        if verdict is not None:
            return fail(verdict)
        return AuthResult(AuthReason.OK, creds.username, "", creds.algorithm)

    def _count(self, nonce: str, issued_ms: int, nc: int, now: float) -> AuthReason | None:
        """Record a use of ``nonce`` with count ``nc``; a reason when it must be refused."""
        self._prune(now)
        use = self._uses.get(nonce)
        if use is None:
            if self._forgotten_up_to_ms is not None and issued_ms <= self._forgotten_up_to_ms:
                return AuthReason.STALE_NONCE  # dropped from the table early: not trustworthy
            self._uses[nonce] = _NonceUse(issued_ms, nc, 1)
            while len(self._uses) > self.max_tracked_nonces:
                _, dropped = self._uses.popitem(last=False)
                floor = self._forgotten_up_to_ms
                self._forgotten_up_to_ms = max(dropped.issued_ms, floor or dropped.issued_ms)
            return None
        if nc > use.highest:
            shift = nc - use.highest
            use.seen = ((use.seen << shift) | 1) & ((1 << NC_WINDOW) - 1)
            use.highest = nc
            return None
        offset = use.highest - nc
        # RFC 7616 5.5: a count seen before, or too old to tell, is a replay
        if offset >= NC_WINDOW or use.seen & (1 << offset):
            return AuthReason.REPLAYED
        use.seen |= 1 << offset
        return None

    def _prune(self, now: float) -> None:
        # Entries come roughly in issue order; one issued early but first used late may
        # linger until the size bound drops it, which is harmless: it is stale anyway.
        horizon_ms = int((now - self.nonce_lifetime) * 1000)
        while self._uses:
            nonce, use = next(iter(self._uses.items()))
            if use.issued_ms >= horizon_ms:
                return
            del self._uses[nonce]

    @property
    def tracked_nonces(self) -> int:
        return len(self._uses)


def same_request_uri(digest_uri: str, request_uri: str) -> bool:
    """RFC 2617 3.2.2.5: the digest uri names the Request-URI; scheme and host compare
    case-insensitively, the rest exactly."""
    if digest_uri == request_uri:
        return True
    try:
        a, b = parse_uri(digest_uri), parse_uri(request_uri)
    except SipSyntaxError:
        return False
    if type(a) is not type(b):
        return False
    return _normalised(str(a)) == _normalised(str(b))


def _normalised(uri: str) -> str:
    scheme, _, rest = uri.partition(":")
    user, at, host = rest.rpartition("@")
    hostpart, sep, tail = host.partition(";")
    return f"{scheme.lower()}:{user}{at}{hostpart.lower()}{sep}{tail}"
