"""A sans-I/O SIP registrar: REGISTER in, bindings and a response out (RFC 3261 10.3).

Theory of operation
-------------------
The registrar is the location service of the ``users:`` softphones. Its only
state is, per user name (the address-of-record's user part), a list of
:class:`Binding`: a Contact URI the phone can be reached at, until when, and
what the REGISTER that made it looked like (Call-ID and CSeq for ordering,
the transport address it came from for NAT traversal, q, User-Agent, and the
RFC 5626 instance-id and reg-id, stored only).

:meth:`Registrar.handle_register` follows the steps of RFC 3261 10.3 after
authentication, which the caller has done (``user`` is who the credentials
proved; registering someone else's address is refused with 403):

* no Contact: a query, answered with the current bindings;
* ``Contact: *``: allowed only alone and with ``Expires: 0`` (else 400);
  removes every binding, unless one of them saw a later request from the
  same Call-ID (step 6);
* otherwise each Contact's lifetime is its ``expires`` parameter, else the
  Expires header, else the default (a malformed value counts as 3600,
  10.2.1.1); 0 removes the binding, a positive value under the minimum
  rejects the whole request with 423 and Min-Expires, and anything above the
  maximum is shortened (step 7);
* a binding already held for the same URI (19.1.4 comparison) is updated
  only by a request with a different Call-ID or a higher CSeq; otherwise the
  request is out of order and fails (step 7), with the 500 that step 7 names
  for a request whose updates cannot all be committed.

Before those steps, a Require the registrar does not support gets 420 (step
2), a To that names no SIP user 404 and another user's address 403 (steps 3
and 4), and more contacts in one request than a user may hold 403.

Changes are computed on a copy and committed only when every contact
succeeded, so a failed REGISTER leaves nothing half-done. The outcome carries
the status and the headers to put in the response: for a 200, one Contact
per current binding with the seconds it has left (step 8).

Expired bindings are removed lazily by :meth:`Registrar.lookup` and by
:meth:`Registrar.expire`, which the server calls at :meth:`Registrar.next_expiry`.
Memory is bounded: a user keeps at most ``max_bindings_per_user`` bindings
(the least recently refreshed make way), and past ``max_bindings`` in all a
new binding is refused with 503. Times are float seconds passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote

from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.uri import (
    AbsoluteUri,
    NameAddress,
    Params,
    SipSyntaxError,
    SipUri,
    Uri,
    format_params,
    parse_uri,
)

SourceT = TypeVar("SourceT")

# This registrar understands no option tag a REGISTER could Require (RFC 3261 8.2.2.3).
SUPPORTED_OPTIONS: frozenset[str] = frozenset()

_REG_ID = re.compile(r"[0-9]{1,10}")  # RFC 5626 4.1: 1*DIGIT
MALFORMED_EXPIRES = 3600  # RFC 3261 10.2.1.1: what a malformed expiry stands for
MAX_EXPIRES_VALUE = 2**32 - 1  # RFC 3261 10.2.1.1: larger values may be taken as this
_QVALUE = re.compile(r"(0(\.[0-9]{0,3})?|1(\.0{0,3})?)")  # RFC 3261 25.1 qvalue
DEFAULT_Q = 1.0  # a Contact without q ranks with the most preferred


@dataclass(frozen=True)
class Binding(Generic[SourceT]):
    """One registered contact of a user (RFC 3261 10.3, RFC 5626 6)."""

    user: str
    contact: str  # the Contact URI, as registered
    params: Params = field(hash=False)  # the Contact's other parameters, echoed in the 200
    source: SourceT  # where the REGISTER came from: the address to reach the phone behind NAT
    transport: str  # the transport of the REGISTER (Via), lower case
    expires_at: float
    refreshed_at: float
    call_id: str
    cseq: int
    q: float = DEFAULT_Q
    user_agent: str | None = None
    instance_id: str | None = None  # RFC 5626 +sip.instance, without quotes
    reg_id: int | None = None  # RFC 5626 reg-id

    def remaining(self, now: float) -> int:
        """Whole seconds left, rounded up so a live binding never shows 0."""
        return max(0, math.ceil(self.expires_at - now))

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

    def contact_value(self, now: float) -> str:
        """The Contact header value listing this binding in a 200 (RFC 3261 10.3 step 8)."""
        return f"<{self.contact}>{format_params(self.params)};expires={self.remaining(now)}"


@dataclass(frozen=True)
class RegisterOutcome(Generic[SourceT]):
    """What to answer a REGISTER with: status, reason and the headers to add."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    bindings: list[Binding[SourceT]] = field(default_factory=list)  # current, after the request

    @property
    def ok(self) -> bool:
        return self.status == 200

    def response(self, request: Request, *, to_tag: str | None = None) -> Response:
        return make_response(request, self.status, self.reason, to_tag=to_tag, extra=self.headers)


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


@dataclass(frozen=True)
class _ContactRequest:
    uri: Uri
    text: str
    params: Params
    expires: int
    q: float
    instance_id: str | None
    reg_id: int | None


class Registrar(Generic[SourceT]):
    """Bindings of user names to contacts (RFC 3261 10.3). ``SourceT`` is whatever the
    transport uses to name a peer; the registrar only stores it."""

    def __init__(
        self,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_bindings_per_user: int = 10,
        max_bindings: int = 10_000,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if max_bindings_per_user < 1 or max_bindings < max_bindings_per_user:
            raise ValueError("need 1 <= max_bindings_per_user <= max_bindings")
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_bindings_per_user = max_bindings_per_user
        self.max_bindings = max_bindings
        self._bindings: dict[str, list[Binding[SourceT]]] = {}
        self._count = 0

    # -- getters

    def __len__(self) -> int:
        """Bindings held, expired ones included until the next :meth:`expire`."""
        return self._count

    def users(self) -> list[str]:
        return list(self._bindings)

    def __iter__(self) -> Iterator[Binding[SourceT]]:
        for bindings in self._bindings.values():
            yield from bindings

    def lookup(self, user: str, now: float) -> list[Binding[SourceT]]:
        """Where ``user`` can be reached: highest q first, then the most recently
        refreshed. Expired bindings are dropped on the way."""
        live = self._live(user, now)
        return sorted(live, key=lambda b: (-b.q, -b.refreshed_at))

    def next_expiry(self) -> float | None:
        """When the earliest binding expires: the time to call :meth:`expire`."""
        return min((b.expires_at for b in self), default=None)

    # -- mutators

    def expire(self, now: float) -> list[Binding[SourceT]]:
        """Remove every expired binding; returns what was removed."""
        removed: list[Binding[SourceT]] = []
        for user in list(self._bindings):
            before = self._bindings[user]
            removed.extend(b for b in before if b.expired(now))
            self._live(user, now)
        return removed

    def remove_user(self, user: str) -> None:
        """Forget a user's bindings (the user left the configuration)."""
        self._count -= len(self._bindings.pop(user, []))

    def handle_register(
        self, request: Request, user: str, source: SourceT, now: float
    ) -> RegisterOutcome[SourceT]:
        """Apply a REGISTER that authenticated as ``user`` (RFC 3261 10.3 steps 2 to 8)."""
        if request.method != "REGISTER":
            raise ValueError(f"not a REGISTER: {request.method}")
        try:
            bindings = self._apply(request, user, source, now)
        except _Refusal as refusal:
            current = self.lookup(user, now)
            return RegisterOutcome(refusal.status, refusal.reason, refusal.headers, current)
        self._commit(user, bindings)
        current = self.lookup(user, now)
        # RFC 3261 10.3 step 8: every current binding, each with its expires parameter
        headers = [("Contact", b.contact_value(now)) for b in current]
        return RegisterOutcome(200, "OK", headers, current)

    # -- the steps of RFC 3261 10.3

    def _apply(
        self, request: Request, user: str, source: SourceT, now: float
    ) -> list[Binding[SourceT]]:
        """The user's bindings after the request, or a refusal; nothing is changed here."""
        try:
            required = request.headers.get_list("Require")
        except SipSyntaxError as exc:
            raise _Refusal(400, f"Bad Require header: {exc}"[:120]) from None
        unsupported = [tag for tag in required if tag not in SUPPORTED_OPTIONS]
        if unsupported:
            # RFC 3261 10.3 step 2 and 8.2.2.3
            raise _Refusal(420, "Bad Extension", [("Unsupported", ", ".join(unsupported))])
        _check_address_of_record(request, user)
        try:
            cseq, _ = request.cseq
        except SipSyntaxError:
            raise _Refusal(400, "Bad CSeq") from None
        call_id = request.call_id
        current = self._live(user, now)
        try:
            contacts = request.headers.get_list("Contact")
        except SipSyntaxError as exc:
            raise _Refusal(400, f"Bad Contact: {exc}"[:120]) from None
        if not contacts:
            return current  # RFC 3261 10.3 step 5: a query
        header_expires = _header_expires(request)
        if "*" in contacts:
            return _remove_all(current, contacts, header_expires, call_id, cseq)
        wanted = [self._read_contact(text, header_expires) for text in contacts]
        if len(wanted) > self.max_bindings_per_user:
            raise _Refusal(403, f"Too many contacts (at most {self.max_bindings_per_user})")
        too_brief = [w for w in wanted if 0 < w.expires < self.min_expires]
        if too_brief:
            # RFC 3261 10.3 step 7: 423 with the minimum we accept
            raise _Refusal(423, "Interval Too Brief", [("Min-Expires", str(self.min_expires))])

        updated = list(current)
        user_agent = request.headers.get("User-Agent")
        transport = _transport(request)
        for index, want in enumerate(wanted):
            if any(same_uri(want.uri, other.uri) for other in wanted[:index]):
                raise _Refusal(400, "Duplicate Contact")
            held = next((b for b in updated if same_uri(want.uri, parse_uri(b.contact))), None)
            if held is not None:
                if held.call_id == call_id and cseq <= held.cseq:
                    # RFC 3261 10.3 step 7: same Call-ID, CSeq not higher: out of order
                    raise _Refusal(500, "Out of order REGISTER (CSeq not higher)")
                updated.remove(held)
            if want.expires == 0:
                continue  # RFC 3261 10.3 step 7: expires 0 removes the binding
            expires = min(want.expires, self.max_expires)
            binding = Binding(
                user=user,
                contact=want.text,
                params=want.params,
                source=source,
                transport=transport,
                expires_at=now + expires,
                refreshed_at=now,
                call_id=call_id,
                cseq=cseq,
                q=want.q,
                user_agent=user_agent,
                instance_id=want.instance_id,
                reg_id=want.reg_id,
            )
            updated.append(binding)
        return self._within_limits(current, updated, now)

    def _read_contact(self, text: str, header_expires: int | None) -> _ContactRequest:
        try:
            address = NameAddress.parse(text)
        except SipSyntaxError as exc:
            raise _Refusal(400, f"Bad Contact: {exc}"[:120]) from None
        params = dict(address.params)
        raw_expires = params.pop("expires", None)
        if raw_expires is not None:
            expires = _expires_value(raw_expires)
        elif header_expires is not None:
            expires = header_expires
        else:
            expires = self.default_expires  # RFC 3261 10.3 step 7: the registrar's default
        raw_q = params.get("q")
        if raw_q is not None and not _QVALUE.fullmatch(raw_q):
            raise _Refusal(400, f"Bad q value {raw_q[:10]!r}")
        instance = params.get("+sip.instance")
        reg_id = params.get("reg-id")
        if reg_id is not None and not _REG_ID.fullmatch(reg_id):
            raise _Refusal(400, "Bad reg-id")  # RFC 5626 4.1: 1*DIGIT
        return _ContactRequest(
            uri=address.uri,
            text=str(address.uri),
            params=params,
            expires=expires,
            q=float(raw_q) if raw_q is not None else DEFAULT_Q,
            instance_id=instance.strip('"') if instance else None,
            reg_id=int(reg_id) if reg_id is not None else None,
        )

    def _within_limits(
        self, current: list[Binding[SourceT]], updated: list[Binding[SourceT]], now: float
    ) -> list[Binding[SourceT]]:
        if len(updated) > self.max_bindings_per_user:
            # Phones that change address leave old bindings behind: the stalest make way.
            updated.sort(key=lambda b: b.refreshed_at)
            updated = updated[len(updated) - self.max_bindings_per_user :]
        if self._count - len(current) + len(updated) > self.max_bindings:
            self.expire(now)  # expired bindings of other users still count until removed
            if self._count - len(current) + len(updated) > self.max_bindings:
                raise _Refusal(503, "Registrar full")
        return updated

    def _commit(self, user: str, bindings: list[Binding[SourceT]]) -> None:
        self._count += len(bindings) - len(self._bindings.get(user, []))
        if bindings:
            self._bindings[user] = bindings
        else:
            self._bindings.pop(user, None)

    def _live(self, user: str, now: float) -> list[Binding[SourceT]]:
        held = self._bindings.get(user, [])
        live = [b for b in held if not b.expired(now)]
        if len(live) != len(held):
            self._commit(user, live)
        return list(live)


def _check_address_of_record(request: Request, user: str) -> None:
    """RFC 3261 10.3 steps 3 and 4: the To URI is the address-of-record; only its
    owner may change its bindings (no third-party registration here)."""
    try:
        to_uri = request.to.uri
    except SipSyntaxError:
        raise _Refusal(400, "Bad To header") from None
    if not isinstance(to_uri, SipUri) or to_uri.user is None:
        raise _Refusal(404, "Not Found (the To URI names no SIP user)")
    if to_uri.user_unescaped != user:
        raise _Refusal(403, "Forbidden (To does not name the authenticated user)")


def _header_expires(request: Request) -> int | None:
    value = request.headers.get("Expires")
    if value is None:
        return None
    return _expires_value(value)


def _expires_value(text: str) -> int:
    """delta-seconds (RFC 3261 25.1) read as RFC 3261 10.2.1.1 asks: malformed values
    (an RFC 2543 date, a negative number) mean 3600, huge ones 2**32-1."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        return MALFORMED_EXPIRES
    significant = digits.lstrip("0")
    if len(significant) > 10:
        return MAX_EXPIRES_VALUE  # and int() never sees a 4300-digit string
    return min(int(significant or "0"), MAX_EXPIRES_VALUE)


def _remove_all(
    current: list[Binding[SourceT]],
    contacts: list[str],
    header_expires: int | None,
    call_id: str,
    cseq: int,
) -> list[Binding[SourceT]]:
    """RFC 3261 10.3 step 6: ``Contact: *`` clears every binding."""
    if len(contacts) != 1 or header_expires != 0:
        raise _Refusal(400, "Contact * needs Expires: 0 and no other Contact")
    for binding in current:
        if binding.call_id == call_id and cseq <= binding.cseq:
            raise _Refusal(500, "Out of order REGISTER (CSeq not higher)")
    return []


def _transport(request: Request) -> str:
    try:
        return request.top_via.transport.lower()
    except SipSyntaxError:
        return "udp"


# RFC 3261 19.1.4: parameters that must match when either URI has them.
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def same_uri(a: Uri, b: Uri) -> bool:
    """URI equality of RFC 3261 19.1.4: user and password case-sensitive after
    unescaping, host case-insensitive, ports only equal when both given or both
    absent, user/ttl/method/maddr/transport parameters equal when either has them,
    other parameters equal when both have them, headers equal."""
    if isinstance(a, AbsoluteUri) or isinstance(b, AbsoluteUri):
        return str(a) == str(b)  # tel: and the like are no phone's contact: compared exactly
    if a.scheme != b.scheme or a.port != b.port or a.host.lower() != b.host.lower():
        return False
    if a.user_unescaped != b.user_unescaped:
        return False
    if (unquote(a.password) if a.password else None) != (
        unquote(b.password) if b.password else None
    ):
        return False
    for name in set(a.params) | set(b.params):
        in_both = name in a.params and name in b.params
        if not in_both and name in _SIGNIFICANT_PARAMS:
            return False
        if in_both and _param(a.params[name]) != _param(b.params[name]):
            return False
    return sorted(a.headers.split("&")) == sorted(b.headers.split("&"))


def _param(value: str | None) -> str | None:
    return unquote(value).lower() if value is not None else None
