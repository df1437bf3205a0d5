"""The server side of digest authentication: challenging callers and checking their
credentials (RFC 3261 22.4, RFC 7616, RFC 8760 2.3).

Theory of operation
-------------------
:class:`DigestAuthenticator` issues nonces that verify without server
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
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mediaserver.sip.digest import (
    HEADER_NAMES,
    SUPPORTED_ALGORITHMS,
    Challenge,
    Credentials,
    DigestError,
    canonical_algorithm,
    digest_response,
    parse_auth_items,
)
from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.uri import SipSyntaxError, parse_uri


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
        unknown = [a for a in self.algorithms if a not in SUPPORTED_ALGORITHMS]
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
