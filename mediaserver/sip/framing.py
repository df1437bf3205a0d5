"""Finding message boundaries in a SIP byte stream (RFC 3261 18.3, RFC 5626 3.5.1).

Over TCP one ``recv`` may hold part of a message, or several messages. The
:class:`StreamFramer` is fed bytes as they arrive and hands back whole
messages: the headers end at the first empty line and the body is exactly
Content-Length bytes long. Between messages, a CRLFCRLF "ping" is a
keep-alive the peer expects answered with CRLF (RFC 5626 3.5.1).

It is sans-I/O: no sockets, so every split and merge is a unit test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mediaserver.sip.message import BLANK_LINE, MAX_MESSAGE_SIZE

_PING = b"\r\n\r\n"


def _content_length(head: bytes) -> int:
    """The first Content-Length (or compact ``l``) value in a head, as the parser reads
    it: folded lines joined (RFC 3261 7.3.1). Absent or unreadable counts as 0."""
    lines = re.split(rb"\r?\n", head)[1:]  # after the start line
    for i, line in enumerate(lines):
        name, colon, value = line.partition(b":")
        if not colon or name.rstrip(b" \t").lower() not in (b"content-length", b"l"):
            continue
        for more in lines[i + 1 :]:
            if more[:1] not in (b" ", b"\t"):
                break
            value += b" " + more
        value = value.strip(b" \t")
        if not value.isdigit():
            return 0
        digits = value.lstrip(b"0")
        # Longer than any allowed size: int() would refuse over 4300 digits anyway.
        return int(digits or b"0") if len(digits) <= 18 else 10**18
    # RFC 3261 18.3: Content-Length is mandatory over streams; without it (or when it
    # is unreadable) assume no body so the parser can answer 400 and the stream stays in sync.
    return 0


class FramingError(Exception):
    """The stream cannot be framed any more; the connection should be closed."""


@dataclass(frozen=True)
class KeepAlive:
    """A CRLFCRLF ping between messages; answer with a single CRLF."""


class StreamFramer:
    """Splits a byte stream into SIP messages."""

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_message_size
        self._scanned = 0  # where to resume looking for the end of the headers
        self._pending: tuple[int, int] | None = None  # (head end, body length) once known

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        """Add received bytes; return the complete messages (and pings) now available."""
        self._buffer += data
        out: list[bytes | KeepAlive] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> bytes | KeepAlive | None:
        buf = self._buffer
        if self._pending is None:
            found = self._find_head()
            if not isinstance(found, tuple):
                return found
            self._pending = found
        head_end, length = self._pending
        if len(buf) < head_end + length:
            return None
        message = bytes(buf[: head_end + length])
        del buf[: head_end + length]
        self._scanned = 0
        self._pending = None
        return message

    def _find_head(self) -> tuple[int, int] | KeepAlive | None:
        """Where the next message's headers end and how long its body is; or a ping."""
        buf = self._buffer
        while buf and buf[0] in b"\r\n":
            if buf.startswith(_PING):
                del buf[:4]
                self._scanned = 0
                return KeepAlive()
            if _PING.startswith(buf):
                return None  # maybe the start of a ping; wait for more
            # RFC 3261 7.5: stray CRLFs before a start line are ignored.
            del buf[: 2 if buf.startswith(b"\r\n") else 1]
            self._scanned = 0
        m = BLANK_LINE.search(buf, max(0, self._scanned - 3))
        if m is None:
            if len(buf) > self._max:
                raise FramingError("headers exceed the maximum message size")
            self._scanned = len(buf)
            return None
        length = _content_length(bytes(buf[: m.start()]))
        if m.end() + length > self._max:
            raise FramingError("message exceeds the maximum message size")
        return m.end(), length

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)
