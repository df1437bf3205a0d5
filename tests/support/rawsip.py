"""A bare SIP peer over UDP or TCP for protocol-level tests.

It sends exactly the bytes a test writes (well-formed or deliberately broken)
and reads responses with its own small parser, independent of the server's,
so a test can assert the status line and headers the server really sent.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import socket
import time
from dataclasses import dataclass, field

SDP_OFFER = (
    "v=0\r\n"
    "o=probe 1 1 IN IP4 127.0.0.1\r\n"
    "s=probe\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP {formats}\r\n"
    "{rtpmaps}"
)


def sdp_offer(port: int = 49170, codecs: str = "0 101", host: str = "127.0.0.1") -> str:
    """An audio offer; ``host`` is the c= address (a NAT'd phone writes its private one)."""
    maps = {"0": "PCMU/8000", "8": "PCMA/8000", "18": "G729/8000", "101": "telephone-event/8000"}
    lines = "".join(f"a=rtpmap:{pt} {maps[pt]}\r\n" for pt in codecs.split() if pt in maps)
    offer = SDP_OFFER.format(port=port, formats=codecs, rtpmaps=lines)
    return offer.replace("c=IN IP4 127.0.0.1", f"c=IN IP4 {host}")


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def to_tag(self) -> str | None:
        m = re.search(r";\s*tag=([^;\s>]+)", self.header("to") or "")
        return m.group(1) if m else None


COMPACT = {
    "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
    "c": "content-type",
}  # fmt: skip


def parse_reply(data: bytes) -> Reply | None:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not m:
        return None
    reply = Reply(int(m.group(1)), m.group(2), body=body)
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        reply.headers.setdefault(COMPACT.get(key, key), []).append(value.strip())
    return reply


class SipProbe:
    """One UDP socket on 127.0.0.1 talking to the server."""

    _counter = itertools.count(1)

    def __init__(self, server_port: int, transport: str = "udp", bind: str = "127.0.0.1") -> None:
        self.server = ("127.0.0.1", server_port)
        self.transport = transport
        self.host = bind
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((bind, 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=5)
        self.port = self.sock.getsockname()[1]
        self._buffer = b""
        self.requests: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if self.transport == "udp":
            self.sock.sendto(raw, self.server)
        else:
            self.sock.sendall(raw)

    def build(
        self,
        method: str,
        user: str = "echo",
        *,
        headers: list[str] | None = None,
        body: str = "",
        call_id: str | None = None,
        cseq: int = 1,
        branch: str | None = None,
        from_tag: str = "probe1",
        to_tag: str | None = None,
        cseq_method: str | None = None,
    ) -> str:
        """A well-formed request; tests alter it to make it malformed."""
        n = next(self._counter)
        call_id = call_id or f"probe-{n}-{secrets.token_hex(4)}"
        branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
        host, port = self.server
        to = f"<sip:{user}@{host}:{port}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [
            f"{method} sip:{user}@{host}:{port} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} {self.host}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:probe@127.0.0.1:{self.port}>;tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
            f"Contact: <sip:probe@127.0.0.1:{self.port}>",
            *(headers or []),
        ]
        if body and not any(h.lower().startswith("content-type") for h in headers or []):
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def _read(self, deadline: float) -> bytes | None:
        """The next message's bytes, or None at the deadline."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if self.transport == "udp":
                return self.sock.recvfrom(65535)[0]
            return self._read_tcp_message()
        except TimeoutError:
            return None

    def recv(self, timeout: float = 3.0) -> Reply | None:
        """The next response (requests from the server are kept aside), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self._read(deadline)
            if data is None:
                return None
            reply = parse_reply(data)
            if reply is not None:
                return reply
            self.requests.append(data)
        return None

    def recv_request(self, timeout: float = 5.0) -> bytes | None:
        """The next request the server sends (e.g. BYE), raw; responses are skipped."""
        if self.requests:
            return self.requests.pop(0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self._read(deadline)
            if data is None:
                return None
            if parse_reply(data) is None:
                return data
        return None

    def _read_tcp_message(self) -> bytes:
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65535)
            if not chunk:
                raise TimeoutError("connection closed")
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        while len(rest) < length:
            chunk = self.sock.recv(65535)
            if not chunk:
                break
            rest += chunk
        self._buffer = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]

    def final_for(self, call_id: str, timeout: float = 5.0) -> Reply:
        """The first final response of the call ``call_id``; others (late
        retransmissions to earlier requests) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recv(max(0.0, deadline - time.monotonic()))
            assert reply is not None, f"no final response for {call_id}"
            if reply.status >= 200 and reply.header("call-id") == call_id:
                return reply

    def ack(self, invite: str, reply: Reply) -> None:
        """ACK a non-2xx final response to ``invite`` (RFC 3261 17.1.1.3: same branch,
        the response's To, CSeq method ACK), so the server stops retransmitting it."""
        head = invite.split("\r\n\r\n", 1)[0].split("\r\n")
        uri = head[0].split(" ")[1]
        keep = ("via:", "from:", "call-id:", "max-forwards:")
        lines = [f"ACK {uri} SIP/2.0", *(h for h in head[1:] if h.lower().startswith(keep))]
        cseq = next(h for h in head if h.lower().startswith("cseq:")).split()[1]
        lines += [f"To: {reply.header('to')}", f"CSeq: {cseq} ACK", "Content-Length: 0"]
        self.send("\r\n".join(lines) + "\r\n\r\n")

    def expect_final(self, timeout: float = 5.0) -> Reply:
        """Skip provisional responses; return the first final one."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recv(max(0.0, deadline - time.monotonic()))
            assert reply is not None, "no final response from the server"
            if reply.status >= 200:
                return reply


def digest_authorization(challenge: str, user: str, password: str, method: str, uri: str) -> str:
    """The credentials answering a ``Digest`` challenge (MD5, qop=auth; RFC 2617 3.2.2)."""
    params = {
        name: quoted or bare
        for name, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge)
    }

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    realm, nonce, cnonce, nc = params["realm"], params["nonce"], secrets.token_hex(8), "00000001"
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    value = (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
    )
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return value
