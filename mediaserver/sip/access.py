"""Who may call the server, and who may make it dial out (SPEC section 2).

An initial INVITE is admitted when it comes from a trusted network
(``sip.trusted_networks``: loopback in the default configuration), from a
configured trunk's address, or carries digest credentials of one of the
``users:`` (RFC 3261 22.3: a proxy-style 407 challenge, since we act as the
users' server). Everything else is refused: 407 when users are configured
(so a softphone can answer the challenge), 403 otherwise. Admitted callers
are trusted: they may make the server dial out, which no unauthenticated
caller can ever do.

REGISTER is authenticated the same way with a 401 challenge (RFC 3261 10.3
step 1). The decision is pure: the caller sends the response this module
builds.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from mediaserver.sip.auth_server import AuthReason, DigestAuthenticator
from mediaserver.sip.message import Request, Response, make_response, new_tag


@dataclass(frozen=True)
class Admission:
    """A caller let in: how we know them."""

    via: str  # "network", "trunk" or "user"
    name: str | None = None  # the trunk's or the user's name


Decision = Admission | Response
"""Either the caller is admitted, or this response refuses or challenges them."""


class AccessPolicy:
    def __init__(
        self,
        *,
        trusted_networks: Sequence[IPv4Network | IPv6Network] = (),
        users: Mapping[str, str] | None = None,
        realm: str = "mediaserver",
        algorithms: Sequence[str] = ("MD5",),
    ) -> None:
        self.trusted_networks = tuple(trusted_networks)
        self.users = dict(users or {})
        self.trunk_addresses: dict[str, str] = {}  # IP address -> trunk name
        self.authenticator = DigestAuthenticator(
            realm, secrets.token_bytes(32), algorithms=tuple(algorithms)
        )

    @property
    def has_users(self) -> bool:
        return bool(self.users)

    def is_trusted_network(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_networks)

    def admit_call(self, request: Request, host: str, now: float) -> Decision:
        """Decide on an initial INVITE (or MESSAGE) from ``host``."""
        if self.is_trusted_network(host):
            return Admission("network")
        trunk = self.trunk_addresses.get(host)
        if trunk is not None:
            return Admission("trunk", trunk)
        if not self.users:
            return make_response(request, 403, "Forbidden (unknown caller)", to_tag=new_tag())
        return self._digest(request, now, proxy=True)

    def admit_register(self, request: Request, now: float) -> Decision:
        """Decide on a REGISTER: a user proving who they are (401 challenge)."""
        return self._digest(request, now, proxy=False)

    def _digest(self, request: Request, now: float, *, proxy: bool) -> Decision:
        header = "Proxy-Authorization" if proxy else "Authorization"
        result = self.authenticator.verify(request, header, self.users.get, now)
        if result.ok:
            return Admission("user", result.user)
        if result.reason in (AuthReason.MISSING, AuthReason.STALE_NONCE, AuthReason.REPLAYED,
                             AuthReason.BAD_NONCE):  # fmt: skip
            # RFC 3261 22.2: (re)challenge; stale=TRUE tells the client its password was right.
            return self.authenticator.challenge_response(
                request, now, proxy=proxy, stale=result.stale, to_tag=new_tag()
            )
        reason = {
            AuthReason.UNKNOWN_USER: "Forbidden (wrong user or password)",
            AuthReason.WRONG_RESPONSE: "Forbidden (wrong user or password)",
            AuthReason.BAD_URI: "Bad Request (digest uri differs from the Request-URI)",
            AuthReason.UNSUPPORTED_ALGORITHM: "Forbidden (unsupported digest algorithm)",
            AuthReason.MALFORMED: "Bad Request (malformed credentials)",
        }.get(result.reason, "Forbidden")
        status = 400 if reason.startswith("Bad Request") else 403
        return make_response(request, status, reason, to_tag=new_tag())
