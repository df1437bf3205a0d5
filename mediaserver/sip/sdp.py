"""SDP session descriptions (RFC 8866, was RFC 4566): the model, parsing and serializing.

Theory of operation
-------------------
An SDP body is a list of ``<type>=<value>`` lines: a session section, then one
section per ``m=`` line. :meth:`SessionDescription.parse` reads it into plain
dataclasses and keeps everything it does not interpret (unknown attributes,
unknown line types), so :meth:`SessionDescription.serialize` writes it back in
the RFC 8866 order with CRLF line ends. Parsing is tolerant of how bodies are
written (LF-only line ends, trailing blanks, lines out of order inside a
section) and strict about what the media path depends on (version, origin,
ports, addresses, payload types, rtpmap/ptime/rtcp values): those raise
:class:`SdpError` naming the 1-based line at fault.

What to offer and how to answer is :mod:`mediaserver.sip.offer_answer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_SINGLE_SESSION_LINES = "vosiuczk"  # RFC 8866 5: at most once per session section
_SINGLE_MEDIA_LINES = "ick"
_SESSION_ONLY_LINES = "vosueptrz"  # RFC 8866 5: these never appear after the first m=


class SdpError(ValueError):
    """A malformed or unusable SDP body; ``line`` is 1-based, None when not one line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass
class Origin:
    """The o= line: who made the session and which version of it this is (RFC 8866 5.2)."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    net_type: str = "IN"
    addr_type: str = "IP4"
    address: str = "127.0.0.1"


@dataclass
class Connection:
    """A c= line (RFC 8866 5.7); ``address`` as written, with any multicast /ttl suffix."""

    address: str
    addr_type: str = "IP4"
    net_type: str = "IN"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]


@dataclass
class Bandwidth:
    """A b=<type>:<kilobits per second> line (RFC 8866 5.8)."""

    bwtype: str
    value: int


@dataclass
class Timing:
    """A t= line and the r= lines that follow it (RFC 8866 5.9, 5.10)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass
class Attribute:
    """An a=<name>[:<value>] line; ``value`` is None for a property attribute like a=sendrecv."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


class RtpMap(NamedTuple):
    """An a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>] (RFC 8866 6.6)."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int = 1


class RtcpAddress(NamedTuple):
    """An RFC 3605 a=rtcp value: the RTCP port and, when given, its address."""

    port: int
    address: str | None = None


def _first(attributes: Sequence[Attribute], name: str) -> Attribute | None:
    return next((a for a in attributes if a.name == name), None)


@dataclass
class MediaDescription:
    """One m= section. ``session_attributes`` is bound by the enclosing SessionDescription."""

    media: str
    port: int
    protocol: str
    formats: list[str]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    encryption_key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    session_attributes: list[Attribute] = field(default_factory=list, compare=False, repr=False)

    def attribute(self, name: str) -> str | None:
        """The value of the first media-level attribute called ``name`` ("" for a flag)."""
        found = _first(self.attributes, name)
        return None if found is None else (found.value or "")

    def rtpmaps(self) -> dict[int, RtpMap]:
        """The well-formed a=rtpmap lines of this stream by payload type. A malformed
        one only makes its own format unusable (RFC 4475 3.1.1.3's body has
        ``a=rtpmap:31 LPC`` on a video stream we decline anyway)."""
        maps: dict[int, RtpMap] = {}
        for attribute in self.attributes:
            if attribute.name == "rtpmap":
                try:
                    rtpmap = _parse_rtpmap(attribute.value or "")
                except SdpError:
                    continue
                maps[rtpmap.payload_type] = rtpmap
        return maps

    def fmtp(self, payload_type: int) -> str | None:
        """The format parameters of an a=fmtp:<payload type> line (RFC 8866 6.15)."""
        for a in self.attributes:
            if a.name == "fmtp" and a.value is not None:
                fmt, _, params = a.value.partition(" ")
                if fmt == str(payload_type):
                    return params.strip()
        return None

    @property
    def direction(self) -> str:
        # RFC 8866 6.7: a media-level direction overrides the session level; default sendrecv
        for attributes in (self.attributes, self.session_attributes):
            found = next((a.name for a in attributes if a.name in DIRECTIONS), None)
            if found is not None:
                return found
        return "sendrecv"

    @property
    def ptime(self) -> int | None:
        """The a=ptime packetization in milliseconds (RFC 8866 6.4), media level first."""
        found = _first(self.attributes, "ptime") or _first(self.session_attributes, "ptime")
        return None if found is None else _parse_ptime(found.value or "")

    @property
    def rtcp(self) -> RtcpAddress | None:
        """The RFC 3605 a=rtcp port and address; None means RTP port + 1 (RFC 3550 11)."""
        found = _first(self.attributes, "rtcp")
        return None if found is None else _parse_rtcp(found.value or "")

    def is_rtp(self) -> bool:
        return "RTP/" in self.protocol.upper()


@dataclass
class SessionDescription:
    """A whole SDP body (RFC 8866 5).

    Media sections inherit the session-level attributes (direction, ptime): the
    constructor and :meth:`parse` bind them; a stream appended to ``media`` later
    inherits nothing until ``__post_init__`` runs again.
    """

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[Timing] = field(default_factory=lambda: [Timing()])
    media: list[MediaDescription] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    time_zones: str | None = None
    encryption_key: str | None = None
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0

    def __post_init__(self) -> None:
        for m in self.media:
            m.session_attributes = self.attributes

    def attribute(self, name: str) -> str | None:
        found = _first(self.attributes, name)
        return None if found is None else (found.value or "")

    def connection_for(self, media: MediaDescription) -> Connection | None:
        # RFC 8866 5.7: a media-level c= overrides the session-level one
        return media.connection or self.connection

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        return _parse(_lines(text))

    def serialize(self) -> str:
        # RFC 8866 5: v o s i u e p c b t r z k a, then each m i c b k a
        out = [f"v={self.version}", f"o={_origin(self.origin)}", f"s={self.session_name}"]
        out += _optional("i", self.information) + _optional("u", self.uri)
        out += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        out += _optional("c", _connection(self.connection))
        out += [f"b={b.bwtype}:{b.value}" for b in self.bandwidths]
        for t in self.timing:
            out += [f"t={t.start} {t.stop}"] + [f"r={r}" for r in t.repeats]
        out += _optional("z", self.time_zones) + _optional("k", self.encryption_key)
        out += [f"{kind}={value}" for kind, value in self.other_lines]
        out += [f"a={a}" for a in self.attributes]
        for m in self.media:
            port = m.port if m.port_count is None else f"{m.port}/{m.port_count}"
            out.append(" ".join(["m=" + m.media, str(port), m.protocol, *m.formats]))
            out += _optional("i", m.information)
            out += _optional("c", _connection(m.connection))
            out += [f"b={b.bwtype}:{b.value}" for b in m.bandwidths]
            out += _optional("k", m.encryption_key)
            out += [f"{kind}={value}" for kind, value in m.other_lines]
            out += [f"a={a}" for a in m.attributes]
        return "\r\n".join(out) + "\r\n"


def _optional(kind: str, value: str | None) -> list[str]:
    return [] if value is None else [f"{kind}={value}"]


def _origin(o: Origin) -> str:
    return f"{o.username} {o.session_id} {o.session_version} {o.net_type} {o.addr_type} {o.address}"


def _connection(c: Connection | None) -> str | None:
    return None if c is None else f"{c.net_type} {c.addr_type} {c.address}"


# --- parsing -------------------------------------------------------------------------------

Line = tuple[int, str, str]  # (1-based line number, type letter, value)


def _lines(text: str | bytes) -> list[Line]:
    if isinstance(text, bytes):
        try:
            body = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = text.count(b"\n", 0, exc.start) + 1
            raise SdpError(f"the body is not UTF-8 (byte 0x{text[exc.start]:02x})", at) from None
    else:
        body = text
    lines: list[Line] = []
    # RFC 8866 5: CRLF ends lines, but parsers should also accept a bare LF
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpError(f"expected '<letter>=<value>', got {line[:40]!r}", number)
        lines.append((number, line[0], line[2:]))
    return lines


def _parse(lines: list[Line]) -> SessionDescription:
    if not lines:
        raise SdpError("the SDP body is empty")
    number, kind, value = lines[0]
    if kind != "v":
        raise SdpError(f"an SDP body must start with v=0, not {kind}=", number)
    if value != "0":
        raise SdpError(f"unsupported SDP version {value!r} (only v=0 exists)", number)
    starts = [i for i, (_, k, _) in enumerate(lines) if k == "m"] + [len(lines)]
    session = _parse_session(lines[: starts[0]])
    m_lines = [lines[i][0] for i in starts[:-1]]
    session.media = [_parse_media(lines[a:b]) for a, b in pairwise(starts)]
    for m, m_line in zip(session.media, m_lines, strict=True):
        m.session_attributes = session.attributes
        # RFC 8866 5.7: every stream needs a c=, its own or the session's
        if session.connection is None and m.connection is None:
            raise SdpError(f"m={m.media} has no c= line and there is no session-level c=", m_line)
    return session


def _check_once(seen: dict[str, int], kind: str, number: int, single: str) -> None:
    if kind in single:
        if kind in seen:
            raise SdpError(f"duplicate {kind}= line (first on line {seen[kind]})", number)
        seen[kind] = number


def _parse_session(lines: list[Line]) -> SessionDescription:
    sd = SessionDescription(timing=[])
    seen: dict[str, int] = {}
    for number, kind, value in lines:
        _check_once(seen, kind, number, _SINGLE_SESSION_LINES)
        if kind == "o":
            sd.origin = _parse_origin(value, number)
        elif kind == "s":
            sd.session_name = value
        elif kind == "i":
            sd.information = value
        elif kind == "u":
            sd.uri = value
        elif kind == "e":
            sd.emails.append(value)
        elif kind == "p":
            sd.phones.append(value)
        elif kind == "c":
            sd.connection = _parse_connection(value, number)
        elif kind == "b":
            sd.bandwidths.append(_parse_bandwidth(value, number))
        elif kind == "t":
            sd.timing.append(_parse_timing(value, number))
        elif kind == "r":
            if not sd.timing:  # RFC 8866 5.10: r= repeats the t= line above it
                raise SdpError("r= line without a t= line before it", number)
            sd.timing[-1].repeats.append(value)
        elif kind == "z":
            sd.time_zones = value
        elif kind == "k":
            sd.encryption_key = value
        elif kind == "a":
            attribute = _parse_attribute(value, number)
            if attribute.name == "ptime":
                # RFC 8866 6.4: a session-level ptime applies to every stream: check it now too.
                _check_media_attribute(attribute, number)
            sd.attributes.append(attribute)
        elif kind != "v":
            sd.other_lines.append((kind, value))  # RFC 8866 5: ignore unknown types, keep them
    end = lines[-1][0]
    for kind, what in (("o", "origin"), ("s", "session name"), ("t", "timing")):
        if kind not in seen and not (kind == "t" and sd.timing):
            raise SdpError(f"the session section (lines 1-{end}) has no {kind}= ({what}) line")
    return sd


def _parse_media(lines: list[Line]) -> MediaDescription:
    number, _, value = lines[0]
    m = _parse_m_line(value, number)
    seen: dict[str, int] = {}
    for number, kind, value in lines[1:]:
        _check_once(seen, kind, number, _SINGLE_MEDIA_LINES)
        if kind in _SESSION_ONLY_LINES:
            raise SdpError(f"{kind}= is a session-level line, not allowed after m=", number)
        if kind == "i":
            m.information = value
        elif kind == "c":
            m.connection = _parse_connection(value, number)
        elif kind == "b":
            m.bandwidths.append(_parse_bandwidth(value, number))
        elif kind == "k":
            m.encryption_key = value
        elif kind == "a":
            attribute = _parse_attribute(value, number)
            _check_media_attribute(attribute, number)
            m.attributes.append(attribute)
        else:
            m.other_lines.append((kind, value))
    return m


def _parse_origin(value: str, number: int) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(
            "o= line needs 6 fields (username sess-id sess-version nettype addrtype address), "
            f"got {len(parts)}",
            number,
        )
    username, sess_id, sess_version, net_type, addr_type, address = parts
    for name, digits in (("session id", sess_id), ("session version", sess_version)):
        if not digits.isascii() or not digits.isdigit():
            raise SdpError(f"o= line has a non-numeric {name} {digits!r}", number)
    return Origin(username, int(sess_id), int(sess_version), net_type, addr_type, address)


def _parse_connection(value: str, number: int) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError(
            f"c= line needs 'nettype addrtype address', got {value!r} "
            "(missing connection address?)",
            number,
        )
    return Connection(parts[2], parts[1], parts[0])


def _parse_bandwidth(value: str, number: int) -> Bandwidth:
    bwtype, colon, amount = value.partition(":")
    if not colon or not bwtype or not _is_number(amount):
        raise SdpError(f"b= line must be '<type>:<kbps>', got {value!r}", number)
    return Bandwidth(bwtype, int(amount))


def _parse_timing(value: str, number: int) -> Timing:
    parts = value.split()
    if len(parts) != 2 or not all(_is_number(p) for p in parts):
        raise SdpError(f"t= line must be '<start> <stop>' (two integers), got {value!r}", number)
    return Timing(int(parts[0]), int(parts[1]))


def _parse_attribute(value: str, number: int) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"a= line has no attribute name: {value!r}", number)
    return Attribute(name, rest if colon else None)


def _parse_m_line(value: str, number: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"m= line needs '<media> <port> <proto> <fmt> ...', got {value!r}", number)
    media, port_field, protocol, *formats = parts
    port_text, slash, count_text = port_field.partition("/")
    if not _is_number(port_text):
        raise SdpError(f"m= line has a non-numeric port {port_text!r}", number)
    if int(port_text) > 65535:
        raise SdpError(f"m= line has port {port_text} above 65535", number)
    if slash and (not _is_number(count_text) or int(count_text) == 0):
        raise SdpError(f"m= line has a bad port count {count_text!r}", number)
    m = MediaDescription(media, int(port_text), protocol, formats)
    m.port_count = int(count_text) if slash else None
    if m.is_rtp():
        for fmt in formats:  # RFC 3551 3: RTP formats are payload type numbers 0-127
            if not _is_number(fmt) or int(fmt) > 127:
                raise SdpError(f"m= line has a non-numeric payload type {fmt!r}", number)
    return m


def _check_media_attribute(attribute: Attribute, number: int) -> None:
    # parse the values the media path relies on now, while the line number is known
    try:
        if attribute.name == "ptime":
            _parse_ptime(attribute.value or "")
        elif attribute.name == "rtcp":
            _parse_rtcp(attribute.value or "")
    except SdpError as exc:
        raise SdpError(exc.message, number) from None


def _parse_rtpmap(value: str) -> RtpMap:
    pt, _, encoding = value.partition(" ")
    fields = encoding.strip().split("/")
    if (
        not _is_number(pt)
        or int(pt) > 127
        or len(fields) not in (2, 3)
        or not fields[0]
        or not all(_is_number(f) for f in fields[1:])
    ):
        raise SdpError(
            f"malformed a=rtpmap:{value} (expected '<payload type> <encoding>/<clock rate>"
            "[/<channels>]')"
        )
    channels = int(fields[2]) if len(fields) == 3 else 1
    return RtpMap(int(pt), fields[0], int(fields[1]), channels)


def _parse_ptime(value: str) -> int:
    try:
        ms = float(value)
    except ValueError:
        ms = 0.0
    if not 0 < ms < 10_000:
        raise SdpError(f"malformed a=ptime:{value} (expected milliseconds, e.g. 20)")
    return max(1, round(ms))


def _parse_rtcp(value: str) -> RtcpAddress:
    parts = value.split()
    if len(parts) not in (1, 4) or not _is_number(parts[0]) or int(parts[0]) > 65535:
        raise SdpError(f"malformed a=rtcp:{value} (RFC 3605: '<port> [IN IP4 <address>]')")
    return RtcpAddress(int(parts[0]), parts[3] if len(parts) == 4 else None)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
