"""The client side of digest authentication: answering challenges for our requests
(RFC 3261 22.2 and 22.3, RFC 7616), as trunks and outbound calls need.

Theory of operation
-------------------
:class:`ClientAuthState` keeps, per realm, the last challenge and its nonce
count, so that every later request is pre-authorised (RFC 3261 22.3) with
``nc`` counting up. Fed each final response with the request it answered,
it says whether to send the request again: yes when a realm asked for the
first time, when the nonce went stale (``stale=TRUE``: same password, new
nonce), or when a nonce that had already worked was forgotten by the server;
no when freshly computed credentials were refused (RFC 3261 22.2: a wrong
password is not retried). The computation itself is
:func:`mediaserver.sip.digest.answer_challenge`.

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaserver.sip.digest import (
    Challenge,
    Credentials,
    answer_challenge,
    authorization_header,
    best_challenges,
    challenges_from,
    credentials_from,
)
from mediaserver.sip.message import Request, Response

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
