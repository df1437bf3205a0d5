"""SIP messages: parsing, validation and serialisation (RFC 3261 sections 7, 8.2, 20, 25).

Theory of operation
-------------------
:func:`parse_message` turns one message's bytes into a :class:`Request` or
:class:`Response`. It handles what RFC 3261 section 7 asks of a parser:
leading CRLFs, header names in any case and in their compact forms (7.3.3),
folded header lines (7.3.1), and a body sized by Content-Length (18.3).
Headers are stored as written (in order, values as strings) and parsed into
structured values (:class:`~mediaserver.sip.uri.Via`,
:class:`~mediaserver.sip.uri.NameAddress`, CSeq) only when asked for.

Syntax errors raise :class:`SipParseError` carrying a reason phrase that names
the problem and, when the headers were readable, the partially parsed message,
so the transport can still answer ``400`` (RFC 3261 8.2.2 asks for that) with
the right Via, Call-ID and CSeq. :func:`request_problem` then applies the
semantic checks of RFC 3261 8.1.1 and 8.2.2 (mandatory headers, CSeq, version,
URI scheme) and returns the status and reason to answer with.

Serialisation always writes a Content-Length that matches the body.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from mediaserver.sip.uri import (
    BRANCH_COOKIE,
    NameAddress,
    SipSyntaxError,
    Uri,
    Via,
    is_token,
    parse_uri,
    split_quoted,
)

SIP_VERSION = "SIP/2.0"

# Limits against hostile input; a real SIP message is a few kilobytes.
MAX_MESSAGE_SIZE = 65535
MAX_HEADER_COUNT = 256
MAX_HEADER_SIZE = 16384

# RFC 3261 7.3.3 and the extensions that define compact forms.
COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",  # RFC 6665
    "u": "Allow-Events",  # RFC 6665
    "r": "Refer-To",  # RFC 3515
    "b": "Referred-By",  # RFC 3892
    "x": "Session-Expires",  # RFC 4028
    "a": "Accept-Contact",  # RFC 3841
    "j": "Reject-Contact",  # RFC 3841
    "d": "Request-Disposition",  # RFC 3841
    "y": "Identity",  # RFC 8224
}

_CANONICAL = {
    name.lower(): name
    for name in (
        *COMPACT_FORMS.values(),
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Authentication-Info", "Authorization", "CSeq", "Call-Info", "Content-Disposition",
        "Content-Language", "Date", "Error-Info", "Expires", "In-Reply-To", "Max-Forwards",
        "MIME-Version", "Min-Expires", "Min-SE", "Organization", "Priority",
        "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
        "Record-Route", "Reply-To", "Require", "Retry-After", "Route", "RSeq", "Server",
        "Timestamp", "Unsupported", "User-Agent", "Warning", "WWW-Authenticate",
        "P-Asserted-Identity", "Privacy", "Path", "Diversion",
    )
}  # fmt: skip

# Headers whose value is a comma-separated list (RFC 3261 7.3.1); others may contain commas.
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Allow-Events", "Content-Encoding", "In-Reply-To", "Path", "Warning",
    )
)  # fmt: skip

# RFC 3261 8.1.1 and 20: headers that may appear only once (checked in this order).
_SINGLE_ORDER = ("call-id", "cseq", "from", "to", "max-forwards", "content-length")
SINGLE_HEADERS = frozenset(_SINGLE_ORDER)
# RFC 3261 7.3.1: comma-separated headers the server splits (quoted commas kept).
# List headers a request cannot do without once it is read: malformed, they get a 400
# here. Allow, Supported and Accept are read leniently where they are used (a malformed
# one reads as absent), so they pass.
_SPLIT_HEADERS = ("Require", "Proxy-Require", "Contact", "Record-Route", "Route")
_ADDRESS_HEADERS = ("Contact", "Record-Route")

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}  # fmt: skip


def _number(text: str) -> int | None:
    """The value of ``1*DIGIT`` (RFC 3261 25.1: ASCII only, where ``str.isdigit`` also
    takes "²" and "٣"), or None. Values past 10**18 are clamped: they only need to
    compare as too large, and ``int()`` refuses strings over 4300 digits."""
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0")
    return int(significant or "0") if len(significant) <= 18 else 10**18


def header_key(name: str) -> str:
    """The case-insensitive lookup key of a header name, compact forms expanded."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower].lower()
    return lower


def canonical_name(name: str) -> str:
    """The long form of a header name, with the usual capitalisation."""
    return _CANONICAL.get(header_key(name), name)


class Headers:
    """Ordered SIP headers, looked up case-insensitively and by compact form."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items or ():
            self.add(name, value)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(header_key(n) == key for n, _ in self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header."""
        key = header_key(name)
        for n, v in self._items:
            if header_key(n) == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every line's value for a header, in order."""
        key = header_key(name)
        return [v for n, v in self._items if header_key(n) == key]

    def get_list(self, name: str, *, lenient: bool = False) -> list[str]:
        """The elements of a list header across all its lines (RFC 3261 7.3.1).
        A malformed value (an unterminated quote) raises SipSyntaxError, or with
        ``lenient`` reads as no value at all: for headers a request can do without."""
        out: list[str] = []
        for value in self.get_all(name):
            try:
                parts = split_quoted(value, ",")
            except SipSyntaxError:
                if lenient:
                    return []
                raise  # the caller names the header: "Bad Require header: ..."
            out.extend(part.strip() for part in parts if part.strip())
        return out

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of a header with one, where the first one was."""
        key = header_key(name)
        for i, (n, _) in enumerate(self._items):
            if header_key(n) == key:
                self._items[i] = (canonical_name(name), value)
                self._items[i + 1 :] = [
                    item for item in self._items[i + 1 :] if header_key(item[0]) != key
                ]
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = header_key(name)
        self._items = [item for item in self._items if header_key(item[0]) != key]

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        return clone


@dataclass
class Message:
    """What requests and responses share: headers and a body."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return (self.headers.get("Call-ID") or "").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) from CSeq; raises SipSyntaxError when malformed."""
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def from_(self) -> NameAddress:
        return NameAddress.parse(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddress:
        return NameAddress.parse(self.headers.get("To") or "")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_list("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_list("Via")
        if not values:
            raise SipSyntaxError("no Via header")
        return Via.parse(values[0])

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters ("" when absent)."""
        value = self.headers.get("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()

    def start_line(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        """Serialise, with a Content-Length that matches the body (RFC 3261 20.14)."""
        lines = [self.start_line()]
        lines.extend(f"{n}: {v}" for n, v in self.headers if header_key(n) != "content-length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Request(Message):
    method: str = "OPTIONS"
    uri: str = ""
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    @property
    def request_uri(self) -> Uri:
        return parse_uri(self.uri)


@dataclass
class Response(Message):
    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


class SipParseError(ValueError):
    """A message that cannot be parsed. ``reason`` is fit for a 400 reason phrase;
    ``partial`` holds what could be read, when enough to address a response."""

    def __init__(self, reason: str, partial: Message | None = None, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
        self.status = status


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    number = _number(parts[0]) if len(parts) == 2 else None
    if number is None:
        raise SipSyntaxError(f"bad CSeq {value[:60]!r}")
    # RFC 3261 8.1.1.5: the sequence number is less than 2**31.
    if number >= 2**31:
        raise SipSyntaxError("CSeq number out of range")
    if not is_token(parts[1]):
        raise SipSyntaxError(f"bad CSeq method {parts[1][:30]!r}")
    return number, parts[1]


# RFC 3261 7.1: the SIP-Version is case-insensitive; DIGIT is ASCII only.
_STATUS_LINE = re.compile(r"SIP/([0-9]+\.[0-9]+) ([0-9]{3}) ([^\r]*)", re.I)
_REQUEST_LINE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) (\S+) ([A-Za-z]+/[0-9]+\.[0-9]+)")

# The empty line ending the headers; bare LF line ends are tolerated, even mixed with CRLF.
BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split at the first empty line after the headers; None when there is none."""
    m = BLANK_LINE.search(data)
    if m is None:
        return None
    return data[: m.start()], data[m.end() :]


def parse_message(data: bytes, *, datagram: bool = True) -> Request | Response:
    """Parse one message. For datagrams a Content-Length larger than what arrived
    is an error and anything after the body is ignored (RFC 3261 18.3). With
    ``datagram=False`` (bytes framed from a stream) Content-Length is required."""
    if len(data) > MAX_MESSAGE_SIZE:
        # RFC 3261 21.5.14: answer 513, addressed from the headers when they fit.
        partial: Message | None
        try:
            partial, _ = _parse_head(data[:MAX_MESSAGE_SIZE])
        except SipParseError as exc:
            partial = exc.partial
        raise SipParseError("Message too large", partial=partial, status=513)
    msg, body = _parse_head(data)

    length_text = msg.headers.get("Content-Length")
    if length_text is None:
        if not datagram:
            # RFC 3261 18.3 and 20.14: Content-Length MUST be used over streams.
            raise SipParseError("Missing Content-Length header", partial=msg)
        # RFC 3261 18.3: over UDP, without Content-Length the body runs to the datagram's end.
        msg.body = body
        return msg
    length = _number(length_text.strip(" \t"))
    if length is None:
        raise SipParseError("Bad Content-Length", partial=msg)
    if length > len(body):
        if datagram:
            raise SipParseError("Content-Length larger than the body", partial=msg)
        raise SipParseError("Truncated body", partial=msg)
    msg.body = body[:length]
    return msg


def _parse_head(data: bytes) -> tuple[Request | Response, bytes]:
    """The message with its start line and headers read, and the bytes after them."""
    data = data.lstrip(b"\r\n")  # RFC 3261 7.5: ignore CRLFs before the start line
    if not data:
        raise SipParseError("Empty message")
    parts = split_head(data)
    if parts is None:
        raise SipParseError("No empty line after the headers")
    head, body = parts
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("Headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    start, header_lines = lines[0], lines[1:]

    msg = _parse_start_line(start)
    _parse_headers(header_lines, msg)
    return msg, body


def _parse_start_line(start: str) -> Request | Response:
    if start[:4].upper() == "SIP/":
        m = _STATUS_LINE.fullmatch(start)
        # RFC 3261 7.2: Status-Code is 3DIGIT; 21: classes 1xx to 6xx.
        if not m or not 100 <= int(m.group(2)) <= 699:
            raise SipParseError(f"Bad status line {start[:60]!r}")
        return Response(status=int(m.group(2)), reason=m.group(3), version=f"SIP/{m.group(1)}")
    m = _REQUEST_LINE.fullmatch(start)
    if not m:
        # Still read the headers so a 400 can be addressed to the sender.
        return Request(method="", uri=start)
    return Request(method=m.group(1), uri=m.group(2), version=m.group(3).upper())


def _parse_headers(lines: list[str], msg: Request | Response) -> None:
    items: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=2):
        if "\r" in line:
            # RFC 3261 7: CR only ends a line with LF; a bare CR could split a copied header.
            msg.headers = Headers(items)
            raise SipParseError(f"Bare CR in header line {number}", partial=msg)
        if line[:1] in (" ", "\t"):
            if not items:
                raise SipParseError(f"Continuation line {number} before any header")
            name, value = items[-1]
            folded = line.strip(" \t")
            # RFC 3261 7.3.1: a fold and the whitespace around it stand for one SP.
            items[-1] = (name, f"{value} {folded}" if value and folded else value or folded)
        else:
            name, colon, value = line.partition(":")
            name = name.rstrip(" \t")
            if not colon or not is_token(name):
                msg.headers = Headers(items)
                raise SipParseError(f"Malformed header line {number}", partial=msg)
            items.append((name, value.strip(" \t")))  # RFC 3261 25.1: LWS is SP and HTAB
        if len(items[-1][1]) > MAX_HEADER_SIZE:
            msg.headers = Headers(items[:-1])
            raise SipParseError(f"Header {canonical_name(items[-1][0])} too long", partial=msg)
        if len(items) > MAX_HEADER_COUNT:
            msg.headers = Headers(items)
            raise SipParseError("Too many headers", partial=msg)
    msg.headers = Headers(items)
    if isinstance(msg, Request) and not msg.method:
        raise SipParseError(f"Bad request line {msg.uri[:60]!r}", partial=msg)


def request_problem(req: Request) -> tuple[int, str] | None:
    """The status and reason to refuse a request with, or None when it is well formed
    (RFC 3261 8.1.1 mandatory headers, 8.2.2 request inspection)."""
    if req.version != SIP_VERSION:
        return 505, f"Version Not Supported ({req.version[:20]})"
    problem = _header_problem(req)
    if problem:
        return 400, problem
    _, method = req.cseq
    if method != req.method:
        return 400, "CSeq method does not match the request method"
    max_forwards = req.headers.get("Max-Forwards")
    hops = _number(max_forwards.strip(" \t")) if max_forwards is not None else 0
    # RFC 3261 20.22: Max-Forwards is an integer in the range 0-255.
    if hops is None or hops > 255:
        return 400, "Bad Max-Forwards"
    try:
        uri = req.request_uri
    except SipSyntaxError:
        return 400, "Bad Request-URI"
    if uri.scheme not in ("sip", "sips", "tel"):
        written = req.uri.split(":", 1)[0]  # as the peer wrote it
        return 416, f"Unsupported URI Scheme ({written[:40]})"
    return None


def response_problem(resp: Response) -> str | None:
    """Why a response must be dropped, or None when it is well formed."""
    return _header_problem(resp)


def _header_problem(msg: Message) -> str | None:
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in msg.headers:
            return f"Missing {name} header"
    for key in _SINGLE_ORDER:
        values = msg.headers.get_all(key)
        if len(values) > 1 and len(set(values)) > 1:
            return f"Multiple {canonical_name(key)} headers"
    if not msg.call_id or any(ch.isspace() for ch in msg.call_id):
        return "Bad Call-ID"
    checks = (("CSeq", lambda: msg.cseq), ("From", lambda: msg.from_), ("To", lambda: msg.to))
    for name, check in checks:
        try:
            check()
        except SipSyntaxError as exc:
            return f"Bad {name} header: {exc}"[:120]
    for name in _SPLIT_HEADERS:
        try:
            values = msg.headers.get_list(name)
            if name in _ADDRESS_HEADERS:
                # The dialog reads them when the call is set up (RFC 3261 12.1.1), too late
                # for a 400; "Contact: *" is the registrar's to judge (RFC 3261 10.2.2).
                for value in values:
                    if value != "*":
                        NameAddress.parse(value)
        except SipSyntaxError as exc:
            # Found by fuzzing: these are split where they are read, too late for a 400.
            return f"Bad {name} header: {exc}"[:120]
    try:
        vias = msg.vias
    except SipSyntaxError as exc:
        return f"Bad Via header: {exc}"[:120]
    if not vias:
        return "Missing Via header"
    for via in vias:
        if via.version != "2.0":
            return f"Bad Via header: SIP version {via.version[:10]}"
    return None


def make_response(
    req: Request | Message,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    """A response to ``req`` per RFC 3261 8.2.6.2: Via, From, Call-ID and CSeq copied,
    To copied with our tag added when it has none (never on 100 Trying), and for
    responses that set up a dialog the Record-Route values too (12.1.1)."""
    headers = Headers()
    for via in req.headers.get_all("Via"):
        headers.add("Via", via)  # RFC 3261 8.2.6.2: every Via, in order
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = req.headers.get(name)
        if value is not None:
            headers.add(name, value)
    if to_tag and status > 100 and "To" in headers:
        try:
            to = NameAddress.parse(headers.get("To") or "")
        except SipSyntaxError:
            to = None
        if to is not None and to.tag is None:
            headers.set("To", f"{headers.get('To')};tag={to_tag}")
    if isinstance(req, Request) and req.method == "INVITE" and 100 < status < 300:
        for route in req.headers.get_all("Record-Route"):
            headers.add("Record-Route", route)
    if status == 100 and "Timestamp" in req.headers:
        headers.add("Timestamp", req.headers.get("Timestamp") or "")  # RFC 3261 8.2.6.1
    for name, value in extra or ():
        headers.add(name, value)
    return Response(
        status=status,
        reason=reason or REASON_PHRASES.get(status, "Unknown"),
        headers=headers,
        body=body,
    )


def new_branch() -> str:
    """A fresh RFC 3261 branch id (8.1.1.7: starts with the magic cookie)."""
    return BRANCH_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"
