"""ICE-lite on an RTP leg (RFC 8445 2.5): answering a browser's connectivity checks.

A WebRTC peer (RFC 8835) sends media only to an address that answered its
STUN connectivity checks, authenticated with the credentials each side put
in its SDP (``a=ice-ufrag``, ``a=ice-pwd``). A lite agent gathers nothing
and checks nothing: it has one host candidate (the leg's port), answers the
checks it receives (RFC 8445 7.3), and sends media where the checks come
from. The full agent (the browser) is controlling and nominates the pair
(``USE-CANDIDATE``). Sans-I/O: :meth:`IceLite.answer` takes a datagram and
returns the response to send and whether the source is now the peer.

Only a check carrying our user name fragment and a MESSAGE-INTEGRITY made
with our password (RFC 8489 14.5, HMAC-SHA1) is answered, and only such a
check may move the leg's media: the password travels in the signalling,
never on the media path, so nobody else can steer the media (RFC 8445 17).
STUN encoding and decoding is aioice's (aiortc's ICE library), imported on
the first check: it brings dnspython along (about 7 MB), which a server that
never sees a browser does not need.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aioice import stun

# RFC 8839 5.4: ice-char is ALPHA / DIGIT / "+" / "/"; at least 4 and 22 characters.
_ICE_CHARS = string.ascii_letters + string.digits + "+/"
UFRAG_LENGTH = 8
PWD_LENGTH = 24


def _ice_string(length: int) -> str:
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(length))


@dataclass(frozen=True)
class IceCredentials:
    """One side's ``a=ice-ufrag`` and ``a=ice-pwd`` (RFC 8839 5.4)."""

    ufrag: str
    pwd: str

    @classmethod
    def new(cls) -> IceCredentials:
        return cls(_ice_string(UFRAG_LENGTH), _ice_string(PWD_LENGTH))


@dataclass(frozen=True)
class CheckAnswer:
    """What to do with a STUN datagram: the response to send (None: drop it),
    and whether its source is the peer's media address now."""

    response: bytes | None
    selects: bool = False


DROP = CheckAnswer(None)


class IceLite:
    """The checks of one leg: ours are ``local``; ``remote_ufrag`` is the peer's
    (the second half of the USERNAME it sends, RFC 8445 7.2.2)."""

    def __init__(self, local: IceCredentials, remote_ufrag: str | None = None) -> None:
        self.local = local
        self.remote_ufrag = remote_ufrag
        self.nominated: tuple[str, int] | None = None
        self.checks = 0  # answered
        self.refused = 0  # not a request of ours, wrong credentials, malformed

    def answer(self, data: bytes, addr: tuple[str, int]) -> CheckAnswer:
        """Answer a connectivity check from ``addr`` (RFC 8445 7.3.1)."""
        from aioice import stun  # lazy: see the module docstring

        try:
            request = stun.parse_message(data)
        except ValueError:
            self.refused += 1
            return DROP
        if (
            request.message_method != stun.Method.BINDING
            or request.message_class != stun.Class.REQUEST
            or not self._ours(request)
        ):
            self.refused += 1
            return DROP
        self.checks += 1
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
        )
        # RFC 8489 14.2: the address the request came from, as the peer's reflexive one.
        response.attributes["XOR-MAPPED-ADDRESS"] = addr
        response.add_message_integrity(self.local.pwd.encode())  # and FINGERPRINT
        # RFC 8445 7.3.1.5: a nominated pair carries the media; until one is, the
        # latest valid check's address does (a lite agent has no pairs of its own).
        nominates = "USE-CANDIDATE" in request.attributes
        if nominates:
            self.nominated = addr
        selects = nominates or self.nominated is None
        return CheckAnswer(bytes(response), selects)

    def _ours(self, request: stun.Message) -> bool:
        """RFC 8445 7.3: USERNAME is ``our-ufrag:their-ufrag`` and the request is
        signed with our password; the FINGERPRINT (checked by the parser when
        present) is mandatory in ICE (RFC 8445 7.1.2)."""
        username = request.attributes.get("USERNAME")
        if not isinstance(username, str) or "FINGERPRINT" not in request.attributes:
            return False
        ours, _, theirs = username.partition(":")
        if ours != self.local.ufrag or (self.remote_ufrag and theirs != self.remote_ufrag):
            return False
        return request.check_message_integrity(self.local.pwd.encode())
