"""SIP URIs and the structured header values built on them (RFC 3261 sections 19, 20, 25).

Values here are parsed from header text on demand and serialise back with
``str()``. Parsing is strict about what the server relies on (scheme, host,
port, tags, branches) and lenient about the rest, which is kept as written.
Errors raise :class:`SipSyntaxError` with a message naming what is wrong; the
message layer turns that into a ``400`` reason phrase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

Params = dict[str, str | None]
"""Ordered ``;name=value`` parameters; a flag parameter (``;lr``) maps to None."""


class SipSyntaxError(ValueError):
    """A header value or URI that does not follow the RFC 3261 grammar."""


# RFC 3261 25.1: token characters.
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(text: str) -> bool:
    return bool(_TOKEN.fullmatch(text))


def split_quoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes and angle brackets."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1  # RFC 3261 25.1 quoted-pair
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise SipSyntaxError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def parse_params(text: str) -> Params:
    """Parse ``;a=1;b;c="x y"`` (the leading ``;`` optional). Names are lower-cased."""
    params: Params = {}
    for raw in split_quoted(text, ";"):
        raw = raw.strip()
        if not raw:
            continue
        name, eq, value = raw.partition("=")
        name = name.strip().lower()
        if not is_token(name):
            raise SipSyntaxError(f"bad parameter name {name!r}")
        params[name] = value.strip() if eq else None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


# RFC 3261 25.1: port = 1*DIGIT, and DIGIT is ASCII only (a bare \d would accept "٥٠٦٠").
_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?::([0-9]{1,5}))?")


def parse_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` with IPv6 references in brackets (RFC 3261 25.1 hostport)."""
    m = _HOSTPORT.fullmatch(text.strip())
    if not m:
        raise SipSyntaxError(f"bad host {text!r}")
    host, port = m.group(1), m.group(2)
    if port is not None and not 0 < int(port) < 65536:
        raise SipSyntaxError(f"bad port {port!r}")
    return host, int(port) if port else None


def format_hostport(host: str, port: int | None) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


@dataclass
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 19.1)."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: Params = field(default_factory=dict)
    headers: str = ""

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipSyntaxError(f"not a SIP URI: {text[:80]!r}")
        if any(ch.isspace() for ch in rest):
            # RFC 3261 25.1: no LWS inside a SIP-URI (RFC 4475 3.1.2.14 allows a 400).
            raise SipSyntaxError(f"whitespace in URI {text[:80]!r}")
        end = rest.find("?") if "?" in rest else len(rest)
        at = rest.rfind("@", 0, end)
        if at < 0:
            # RFC 3261 25.1: "?" is user-unreserved, so it may sit in the user part
            # (RFC 4475 3.1.1.2); headers carry "@" only escaped, so an "@" ends userinfo.
            at = rest.find("@")
        hostpart, _, headers = rest[at + 1 :].partition("?")
        user: str | None = None
        password: str | None = None
        if at >= 0:
            user, _, pw = rest[:at].partition(":")
            password = pw or None
            if not user:
                raise SipSyntaxError(f"empty user part in {text[:80]!r}")
        hostport, _, paramtext = hostpart.partition(";")
        host, port = parse_hostport(hostport)
        return cls(
            host=host,
            user=user,
            password=password,
            port=port,
            scheme=scheme,
            params=parse_params(paramtext),
            headers=headers,
        )

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %-escapes decoded (RFC 3261 19.1.2)."""
        return unquote(self.user) if self.user is not None else None

    @property
    def transport(self) -> str:
        """How to reach the URI: ``tls`` for a ``sips:`` URI (RFC 5630 3.1.3: TLS
        whatever its ``transport`` says) or ``transport=tls``; otherwise the
        ``transport`` parameter, lower-cased, ``udp`` when absent."""
        if self.scheme == "sips":
            return "tls"
        value = self.params.get("transport")
        return value.lower() if value else "udp"

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password else "") + "@"
        text = f"{self.scheme}:{userinfo}{format_hostport(self.host, self.port)}"
        text += format_params(self.params)
        return text + (f"?{self.headers}" if self.headers else "")


@dataclass
class AbsoluteUri:
    """A non-SIP URI such as ``tel:+331...``, kept as written."""

    scheme: str
    opaque: str

    @property
    def user_unescaped(self) -> str | None:
        """For ``tel:`` URIs the number (RFC 3966), parameters removed."""
        return self.opaque.split(";", 1)[0] if self.scheme == "tel" else None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI; SIP and SIPS URIs are parsed fully."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme) or not rest:
        raise SipSyntaxError(f"not a URI: {text[:80]!r}")
    if scheme.lower() in ("sip", "sips"):
        return SipUri.parse(text)
    if any(ch.isspace() for ch in rest):
        raise SipSyntaxError(f"whitespace in URI {text[:80]!r}")
    return AbsoluteUri(scheme.lower(), rest)


@dataclass
class NameAddress:
    """``"Display" <uri>;params`` as used in From, To, Contact, Route (RFC 3261 20.10)."""

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        text = text.strip()
        display: str | None = None
        lt = _find_unquoted(text, "<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipSyntaxError(f"unbalanced <> in {text[:80]!r}")
            display = text[:lt].strip() or None
            if display and display.startswith('"'):
                # RFC 3261 25.1: a quoted display name is exactly one quoted-string.
                if _closing_quote(display) != len(display) - 1:
                    raise SipSyntaxError(f"bad display name {display[:80]!r}")
                display = re.sub(r"\\(.)", r"\1", display[1:-1], flags=re.S)
            uri = parse_uri(text[lt + 1 : gt])
            after = text[gt + 1 :].strip()
            # RFC 3261 20.10: only ;parameters may follow the closing ">".
            if after and not after.startswith(";"):
                raise SipSyntaxError(f"unexpected {after[:40]!r} after <uri>")
            params = parse_params(after)
        else:
            # RFC 3261 20.10: without <>, parameters after the URI belong to the header.
            uritext, _, paramtext = text.partition(";")
            uri = parse_uri(uritext)
            params = parse_params(paramtext)
        return cls(uri=uri, display_name=display, params=params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = ""
        if self.display_name:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _find_unquoted(text: str, ch: str) -> int:
    """Index of the first ``ch`` outside quoted-strings, or -1."""
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1  # RFC 3261 25.1 quoted-pair: the next character is literal
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ch:
            return i
        i += 1
    if quoted:
        raise SipSyntaxError(f"unterminated quoted string in {text[:80]!r}")
    return -1


def _closing_quote(text: str) -> int:
    """Index of the quote closing the quoted-string that opens ``text``, or -1."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2  # RFC 3261 25.1 quoted-pair
            continue
        if text[i] == '"':
            return i
        i += 1
    return -1


# RFC 3261 8.1.1.7: branch IDs of RFC 3261 elements start with this cookie.
BRANCH_COOKIE = "z9hG4bK"


@dataclass
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    version: str = "2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        text = text.strip()
        # RFC 3261 20.42: sent-protocol is name/version/transport, each a token; any
        # version parses, so a SIP/7.0 request can still be answered 505.
        m = re.match(
            r"^SIP\s*/\s*([A-Za-z0-9.\-!%*_+`'~]+)\s*/\s*([A-Za-z]+)\s+(.+)$", text, re.S | re.I
        )
        if not m:
            raise SipSyntaxError(f"bad Via {text[:80]!r}")
        sent_by, _, paramtext = m.group(3).partition(";")
        # RFC 3261 25.1: COLON = SWS ":" SWS, so space may surround the port's colon only.
        host, port = parse_hostport(re.sub(r"\s*:\s*", ":", sent_by.strip()))
        return cls(m.group(2).upper(), host, port, parse_params(paramtext), m.group(1))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        default = 5061 if self.transport == "TLS" else 5060
        return self.host.strip("[]"), self.port or default

    def __str__(self) -> str:
        return (
            f"SIP/{self.version}/{self.transport} {format_hostport(self.host, self.port)}"
            + format_params(self.params)
        )


def contact_transport(transport: str) -> str:
    """The URI parameter that makes a Contact reached over ``transport``
    (RFC 3261 19.1.1: none for UDP, the default)."""
    return "" if transport == "udp" else f";transport={transport}"
