"""API keys: where they come from and how a request proves it has one (SPEC sections 2, 5).

Keys are the config's ``http.api_keys``. When that list is empty, the server
uses the key kept in ``<data dir>/data/api-key``; on the very first start
there is none, so one is generated (:func:`secrets.token_urlsafe`, 256 bits),
written there with mode 0600 and printed once on stdout as ``api-key KEY``,
before the ``listening`` line. Later starts read the file and print nothing.

A request presents a key in any one of three ways, all accepted everywhere:
``Authorization: Bearer KEY``, ``X-API-Key: KEY``, or HTTP Basic with the key
as the password (any user name). When a request presents keys in several
ways, every one must be right: a wrong key (or an ``Authorization`` header
in another scheme) is never excused by a right key next to it. Keys are
compared in constant time. Anything else gets 401 with a JSON error and a
``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBasic, HTTPBearer
from fastapi.security import HTTPBasicCredentials as BasicCredentials

from mediaserver.api.models import ApiError
from mediaserver.config import Config
from mediaserver.log import get_logger
from mediaserver.private_files import write_private

log = get_logger("api")

KEY_FILE = Path("data") / "api-key"
KEY_BYTES = 32
CHALLENGE = 'Bearer realm="mediaserver", Basic realm="mediaserver"'


def key_file(config: Config) -> Path:
    """Where a generated key is kept: ``<data dir>/data/api-key``."""
    return config.storage_path(KEY_FILE)


def read_key_file(path: Path) -> str | None:
    """The key kept in ``path``; None when there is none (missing or empty file)."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return key or None


def api_keys(config: Config) -> tuple[str, ...]:
    """The keys the API accepts: the configured ones, else the kept (or a new) one."""
    if config.http.api_keys:
        return config.http.api_keys
    path = key_file(config)
    key = read_key_file(path)
    if key is not None:
        return (key,)
    key = secrets.token_urlsafe(KEY_BYTES)
    write_private(path, key + "\n")
    print(f"api-key {key}", flush=True)
    log.warning("generated an API key (printed once on stdout)", path=str(path))
    return (key,)


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")
_basic = HTTPBasic(auto_error=False, description="HTTP Basic, the key as the password")


def key_label(key: str, names: Mapping[str, str]) -> str:
    """What logs call a key: its configured name, else ``key-`` and 8 hex digits of its
    SHA-256 (tells keys apart, reveals nothing usable); never the key itself."""
    name = names.get(key)
    if name is not None:
        return name
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


class KeyCheck:
    """The dependency every API route has: one of the keys, or 401.

    The label of the key a request used (:func:`key_label`) is left in
    ``request.state.api_key`` for the access log."""

    def __init__(self, keys: tuple[str, ...], names: Mapping[str, str] | None = None) -> None:
        if not keys:
            raise ValueError("at least one API key is needed")
        self._keys = tuple(k.encode("utf-8") for k in keys)
        self._labels = tuple(key_label(k, names or {}) for k in keys)

    def accepts(self, presented: str | None) -> bool:
        return self.label_of(presented) is not None

    def label_of(self, presented: str | None) -> str | None:
        """The label of the key ``presented`` is, None when it is none of them."""
        if not presented:
            return None
        given = presented.encode("utf-8", "surrogateescape")
        # Every key is compared, so timing does not tell which one (or whether any) matched.
        found: str | None = None
        for key, label in zip(self._keys, self._labels, strict=True):
            if hmac.compare_digest(given, key):
                found = label
        return found

    def verify(self, presented: list[str], unreadable: bool) -> str | None:
        """The label of the key when every key presented is right, else None."""
        labels = [self.label_of(p) for p in presented]
        if presented and not unreadable and all(labels):
            return labels[0]
        return None

    def check(
        self,
        request: Request,
        bearer: HTTPAuthorizationCredentials | None,
        header: str | None,
        basic: BasicCredentials | None,
    ) -> None:
        presented = [
            p
            for p in (
                bearer.credentials if bearer is not None else None,
                header,
                basic.password if basic is not None else None,
            )
            if p is not None
        ]
        # An Authorization header in another scheme (Digest, garbage) is a wrong credential.
        unreadable = "authorization" in request.headers and bearer is None and basic is None
        # Every key presented must be right: a wrong one next to a right one is refused.
        label = self.verify(presented, unreadable)
        if label is not None:
            request.state.api_key = label
            return
        given = bool(presented) or unreadable
        raise ApiError(
            401,
            "unauthorized",
            "wrong API key"
            if given
            else "an API key is required: "
            "Authorization: Bearer KEY, X-API-Key: KEY or HTTP Basic with the key as password",
            "authorization",
            headers={"WWW-Authenticate": CHALLENGE},
        )


def presented_keys(headers: Mapping[str, str], query_key: str | None) -> tuple[list[str], bool]:
    """The keys a WebSocket handshake presents (the same three headers, or ``?key=``, since
    browsers cannot set headers on a WebSocket), and whether an Authorization header is
    unreadable (another scheme, bad Base64)."""
    presented: list[str] = []
    unreadable = False
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            presented.append(value.strip())
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                unreadable = True
            else:
                _, colon, password = decoded.partition(":")
                unreadable = not colon
                presented.append(password)
        else:
            unreadable = True
    header = headers.get("x-api-key")
    if header is not None:
        presented.append(header)
    if query_key is not None:
        presented.append(query_key)
    return presented, unreadable


def _key_check(request: Request) -> KeyCheck:
    check: KeyCheck = request.app.state.key_check
    return check


async def require_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
    basic: Annotated[BasicCredentials | None, Depends(_basic)],
) -> None:
    _key_check(request).check(request, bearer, header, basic)


async def require_key_off_loopback(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
    basic: Annotated[BasicCredentials | None, Depends(_basic)],
) -> None:
    """``/metrics``: free for scrapers on the same machine, keyed for anyone else."""
    if request.client is not None and is_loopback(request.client.host):
        return
    _key_check(request).check(request, bearer, header, basic)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
