"""RFC 4475 torture messages sent to a running server, each answer checked, then leaks.

Every message of RFC 4475 that a UAS can receive is written out below, by
section, as the RFC describes it (3.1.1 valid, 3.1.2 invalid, 3.2 transaction
layer, 3.3 application layer, 3.4 backwards compatibility), and sent over a
plain UDP socket to a :class:`~mediaserver.server.Server` running in this
process with shortened timers. Each case names the answers the RFC allows
(a set where it allows several) and, for a 400, a pattern its reason must
match. Valid INVITEs are carried through the whole call flow (ACK, BYE) and
REGISTERs through the digest challenge, so nothing is left half-done.

The last test of the UDP run waits for the transaction timers and checks
that nothing leaked (transactions, calls, UA tasks, RTP ports), that a
normal call still works, and that nothing leaks after it either. A separate
TCP run sends a handful of the messages through one connection, several in
one write and one in small pieces, to exercise stream framing.

Two changes are made to every message so that everything stays on this
machine: the top Via's sent-by gets our socket's port (written ``${port}``;
RFC 3261 18.2.2 sends responses to it), and when a call may be answered the
SDP's audio goes to a local sink instead of the RFC's TEST-NET addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio

from mediaserver.config import load_config, with_overrides
from mediaserver.server import Server
from mediaserver.sip.timers import TimerConfig
from tests.support.net import free_port_block
from tests.support.rawsip import Reply, parse_reply, sdp_offer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMERS = TimerConfig(t1=0.02, t2=0.16, t4=0.1)  # Timers J, H and L: 64*T1 = 1.28 s
PASSWORDS = {"j.user": "jpass", "user": "upass", "watson": "wpass", "null-\x00-null": "npass"}
QUIET = 0.4  # how long to listen for an answer that must not come
LEAK_WAIT = 6.0  # longest a finished exchange may keep state (Timers J/L 1.28 s, with slack)

CONFIG = """\
sip:
  listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
  user_agent: mediaserver-torture
  trusted_networks: ["127.0.0.0/8"]
rtp:
  ports: {low}-{high}
http:
  listen: 127.0.0.1:0
scenarios_dir: {scenarios}
users:
  - {{username: j.user, password: jpass}}
  - {{username: user, password: upass}}
  - {{username: watson, password: wpass}}
  - {{username: "null-\\0-null", password: npass}}  # RFC 4475 3.1.1.4: the AOR has a NUL
routes:  # the users the RFC's INVITEs call; anything else falls back to echo
  vivekg: echo
  user: echo
  j.user: echo
  joe: echo
  UserB: echo
  "sips:user@example.com": echo  # RFC 4475 3.1.1.3: the escaped user part, unescaped
  "*": echo
"""


# -- the server -------------------------------------------------------------------------


class Sink(asyncio.DatagramProtocol):
    """Where the calls' RTP goes: a local socket that drops it."""


@dataclass
class Rig:
    server: Server
    sip_port: int
    rtp_sink: int


@contextlib.asynccontextmanager
async def running_server(tmp: Path) -> AsyncIterator[Rig]:
    low = free_port_block(40, "udp", even=True)
    config_path = tmp / "config.yaml"
    config_path.write_text(
        CONFIG.format(low=low, high=low + 39, scenarios=REPO / "configs" / "scenarios")
    )
    config = with_overrides(load_config(config_path), data_dir=tmp / "data")
    server = Server(config, timers=TIMERS)
    await server.start()
    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    try:
        yield Rig(server, server.endpoint.bound[0].port, sink.get_extra_info("sockname")[1])
    finally:
        sink.close()
        await server.shutdown(0.0)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """One server for the whole UDP run, so the leak check sees what the run left."""
    async with running_server(tmp_path_factory.mktemp("torture")) as started:
        yield started


def leftovers(server: Server) -> dict[str, object]:
    """What the server still holds; empty when every exchange has been forgotten."""
    layer = server.endpoint.layer
    found: dict[str, object] = {}
    if len(layer):
        found["transactions"] = dict(layer.counts())
    if server.switch.calls:
        found["calls"] = list(server.switch.calls)
    if server.switch._tasks:
        found["switch tasks"] = len(server.switch._tasks)
    if server.ports.in_use:
        found["rtp ports"] = server.ports.in_use
    if server.endpoint.connections:
        found["tcp connections"] = list(server.endpoint.connections)
    return found


async def assert_nothing_left(server: Server) -> None:
    """Wait out the shortened transaction timers, then nothing may be left."""
    deadline = asyncio.get_running_loop().time() + LEAK_WAIT
    while leftovers(server) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert leftovers(server) == {}


# -- bare SIP peers -----------------------------------------------------------------------


class Peer:
    """A bare SIP peer: sends the bytes it is given, reads whole messages."""

    transport_name = "UDP"  # what our Via says
    port = 0

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def message(self, timeout: float) -> bytes | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    async def reply(self, timeout: float = 3.0) -> Reply | None:
        """The next response; requests from the server are not expected here."""
        data = await self.message(timeout)
        if data is None:
            return None
        reply = parse_reply(data)
        assert reply is not None, f"the server sent a request: {data[:200]!r}"
        return reply

    async def final(self, timeout: float = 5.0) -> tuple[list[Reply], Reply]:
        """The provisional responses, then the final one."""
        provisional: list[Reply] = []
        while True:
            reply = await self.reply(timeout)
            assert reply is not None, f"no final response; provisional: {provisional}"
            if reply.status >= 200:
                return provisional, reply
            provisional.append(reply)

    async def silence(self, wait: float = QUIET) -> None:
        data = await self.message(wait)
        assert data is None, f"expected no answer, got {data[:300]!r}"


class UdpPeer(Peer, asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._transport: asyncio.DatagramTransport | None = None
        self.server: tuple[str, int] = ("127.0.0.1", 0)

    @classmethod
    async def open(cls, server_port: int) -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        peer.server = ("127.0.0.1", server_port)
        peer.port = transport.get_extra_info("sockname")[1]
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait(data)

    def send(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.sendto(data, self.server)

    async def message(self, timeout: float) -> bytes | None:
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpPeer(Peer):
    transport_name = "TCP"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.port = writer.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, server_port: int) -> TcpPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def message(self, timeout: float) -> bytes | None:
        """One message framed by its Content-Length (RFC 3261 18.3)."""
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            return None
        m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
        body = await self.reader.readexactly(int(m.group(1))) if m else b""
        return head + body

    def close(self) -> None:
        self.writer.close()


# -- requests the peer writes itself --------------------------------------------------------


def branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def top_via(reply: Reply) -> str:
    return (reply.header("via") or "").split(",")[0].strip()


def contact_uri(reply: Reply) -> str:
    m = re.search(r"<([^>]+)>", reply.header("contact") or "")
    assert m, f"no Contact in the {reply.status}"
    return m.group(1)


def cseq_number(reply: Reply) -> int:
    return int((reply.header("cseq") or "0").split()[0])


def ack_for_failure(request_uri: str, reply: Reply) -> bytes:
    """The ACK of a non-2xx final response: same transaction (RFC 3261 17.1.1.3)."""
    lines = [
        f"ACK {request_uri} SIP/2.0",
        f"Via: {top_via(reply)}",
        "Max-Forwards: 70",
        f"From: {reply.header('from')}",
        f"To: {reply.header('to')}",
        f"Call-ID: {reply.header('call-id')}",
        f"CSeq: {cseq_number(reply)} ACK",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def in_dialog(method: str, peer: Peer, reply: Reply, cseq: int) -> bytes:
    """ACK for a 2xx, or BYE: a request within the dialog the 2xx set up (RFC 3261 12.2.1)."""
    lines = [
        f"{method} {contact_uri(reply)} SIP/2.0",
        f"Via: SIP/2.0/{peer.transport_name} 127.0.0.1:{peer.port};branch={branch()};rport",
        "Max-Forwards: 70",
        f"From: {reply.header('from')}",
        f"To: {reply.header('to')}",
        f"Call-ID: {reply.header('call-id')}",
        f"CSeq: {cseq} {method}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def finish_invite(peer: Peer, request_uri: str, final: Reply) -> None:
    """ACK the final response; hang up an answered call and check the BYE's 200."""
    if final.status >= 300:
        peer.send(ack_for_failure(request_uri, final))
        return
    number = cseq_number(final)
    ack = in_dialog("ACK", peer, final, number)
    peer.send(ack)
    peer.send(in_dialog("BYE", peer, final, number + 1))
    while True:
        _, reply = await peer.final()
        method = (reply.header("cseq") or "").split()[-1]
        if method != "INVITE":
            break
        # The 2xx was retransmitted before our ACK arrived: acknowledge it again
        # (RFC 3261 13.2.2.4); with T1 = 20 ms that happens on a busy machine.
        peer.send(ack)
    assert (reply.status, method) == (200, "BYE")


def normal_call(peer: Peer, rtp_port: int) -> bytes:
    sdp = sdp_offer(rtp_port)
    tag, call_id = secrets.token_hex(4), f"normal-{secrets.token_hex(6)}"
    lines = [
        "INVITE sip:echo@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{peer.transport_name} 127.0.0.1:{peer.port};branch={branch()};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@127.0.0.1>;tag={tag}",
        "To: <sip:echo@127.0.0.1>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:probe@127.0.0.1:{peer.port}>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(sdp)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + sdp).encode()


async def take_a_normal_call(peer: Peer, rtp_port: int) -> None:
    """INVITE -> 100, 200 -> ACK -> BYE -> 200 from a bare peer."""
    peer.send(normal_call(peer, rtp_port))
    provisional, final = await peer.final()
    assert [r.status for r in provisional][:1] == [100]
    assert final.status == 200, final
    await finish_invite(peer, "sip:echo@127.0.0.1", final)


# -- digest (RFC 2617 / 7616 with qop=auth), written from the RFC for the REGISTER retries --


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def authorization(challenge: str, user: str, method: str, uri: str) -> str:
    params = {
        name: quoted or bare
        for name, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge)
    }
    realm, nonce = params["realm"], params["nonce"]
    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = _md5(f"{user}:{realm}:{PASSWORDS[user]}")
    ha2 = _md5(f"{method}:{uri}")
    response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    quoted_user = user.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "\\\x00")
    value = (
        f'Digest username="{quoted_user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
    )
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return value


def with_credentials(sent: bytes, challenge: Reply, user: str) -> bytes:
    """The REGISTER again, answering the challenge: a new branch, the CSeq one
    higher, same Call-ID and From tag (RFC 3261 22.2 and 8.1.3.5)."""
    head, _, body = sent.partition(b"\r\n\r\n")
    text = head.decode()
    uri = text.split(" ", 2)[1]
    text = re.sub(r"branch=[^;,\s]+", f"branch={branch()}", text, count=1)
    text = re.sub(
        r"(?im)^(CSeq[ \t]*:[ \t]*)(\d+)", lambda m: f"{m[1]}{int(m[2]) + 1}", text, count=1
    )
    www = challenge.header("www-authenticate") or ""
    text += "\r\nAuthorization: " + authorization(www, user, "REGISTER", uri)
    return text.encode() + b"\r\n\r\n" + body


# -- the cases ----------------------------------------------------------------------------


@dataclass
class Exchange:
    """One case being run: what was sent and the final answer to it."""

    peer: Peer
    sent: bytes
    final: Reply


FollowUp = Callable[[Exchange], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    section: str
    name: str
    message: str | bytes  # the top Via says ${port} where our port goes
    answers: frozenset[int]  # the final statuses allowed; empty: no answer at all
    reason: str | None = None  # what a 400's reason phrase must name (a regex)
    media: bool = False  # may be answered: send its RTP to the local sink
    follow_up: FollowUp | None = None  # more checks or steps after the final answer
    exact_length: bool = True  # False where the Content-Length is what is tested

    @property
    def id(self) -> str:
        return f"{self.section} {self.name}"

    def render(self, port: int, rtp_sink: int) -> bytes:
        raw = self.message.encode() if isinstance(self.message, str) else self.message
        data = raw.replace(b"${port}", str(port).encode())
        return on_loopback(data, rtp_sink) if self.media else data


def on_loopback(data: bytes, rtp_port: int) -> bytes:
    """The SDP's audio sent to 127.0.0.1:rtp_port, and Content-Length fixed to match."""
    head, sep, body = data.partition(b"\r\n\r\n")
    body = re.sub(rb"c=IN IP4 [0-9.]+", b"c=IN IP4 127.0.0.1", body)
    body = re.sub(rb"m=audio [0-9]+", b"m=audio %d" % rtp_port, body)
    head = re.sub(
        rb"(?im)^((?:content-length|l)[ \t]*:[ \t]*)[0-9]+",
        lambda m: m[1] + str(len(body)).encode(),
        head,
    )
    return head + sep + body


def answers(*statuses: int) -> frozenset[int]:
    return frozenset(statuses)


DROPPED = frozenset[int]()


def sdp(address: str, connection: str | None = None) -> str:
    """The SDP body most RFC 4475 messages carry (150 octets with 9-character addresses)."""
    return (
        "v=0\r\n"
        f"o=mhandley 29739 7272939 IN IP4 {address}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {connection or address}\r\n"
        "t=0 0\r\n"
        "m=audio 49217 RTP/AVP 0 12\r\n"
        "m=video 3227 RTP/AVP 31\r\n"
        "a=rtpmap:31 LPC\r\n"
    )


# Follow-ups: what some cases check beyond the status.


async def nothing_more(exchange: Exchange) -> None:
    """RFC 4475 3.1.1.8: the INVITE after the REGISTER is noise and gets no answer."""
    await exchange.peer.silence()


async def unsupported_names_the_require_tags(exchange: Exchange) -> None:
    """RFC 4475 3.3.5 / RFC 3261 8.2.2.3: the 420 lists each Require tag; a UAS
    ignores Proxy-Require."""
    unsupported = exchange.final.header("unsupported") or ""
    tags = {tag.strip() for tag in unsupported.split(",")}
    assert tags == {"nothingSupportsThis", "nothingSupportsThisEither"}


async def accept_names_sdp(exchange: Exchange) -> None:
    """RFC 4475 3.3.6 / RFC 3261 8.2.3: the 415 says what the UAS accepts."""
    assert "application/sdp" in (exchange.final.header("accept") or "")


async def vias_copied_in_order(exchange: Exchange) -> None:
    """RFC 4475 3.1.1.10 / RFC 3261 8.2.6.2: every Via, whatever its transport, is
    copied into the response in order."""
    vias = [v for line in exchange.final.headers.get("via", []) for v in line.split(",")]
    sent = [re.findall(r"^\s*SIP/2\.0/(\w+) ([^:;\s]+)", v) for v in vias]
    transports = ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert sent == [[(t, f"t{n}.example.com")] for n, t in enumerate(transports, 1)], vias


async def challenge_is_digest(exchange: Exchange) -> None:
    """RFC 4475 3.3.7: a new challenge with a scheme the registrar understands."""
    assert (exchange.final.header("www-authenticate") or "").startswith("Digest ")


def registers(
    user: str, statuses: frozenset[int], contacts: tuple[str, ...] = (), reason: str = ""
) -> FollowUp:
    """Answer the 401 with ``user``'s credentials; the answer must be in ``statuses``,
    and a 200 must list each of ``contacts`` (regexes) among the bindings."""

    async def follow_up(exchange: Exchange) -> None:
        if exchange.final.status != 401:
            return  # refused outright, which the case allowed
        await challenge_is_digest(exchange)
        exchange.peer.send(with_credentials(exchange.sent, exchange.final, user))
        _, final = await exchange.peer.final()
        assert final.status in statuses, final
        if final.status == 400:
            assert re.search(reason, final.reason), final.reason
        if final.status == 200:
            bindings = final.headers.get("contact", [])
            for contact in contacts:
                assert any(re.fullmatch(contact, b) for b in bindings), (contact, bindings)

    return follow_up


CASES = [
    # RFC 4475 3.1.1: valid messages; the server must answer them sensibly.
    Case(
        "3.1.1.1",
        "A Short Tortuous INVITE",
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
        "TO :\r\n"
        " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n'
        "  ;\r\n"
        "  tag = 98asjd8\r\n"
        "MaX-fOrWaRdS: 0068\r\n"
        "Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
        "Content-Length   : 150\r\n"
        "cseq: 0009\r\n"
        "  INVITE\r\n"
        "Via  : SIP  /   2.0\r\n"
        " /UDP\r\n"
        "    192.0.2.2:${port};branch=390skdjuw\r\n"
        "s :\r\n"
        "NewFangledHeader:   newfangled value\r\n"
        " continued newfangled value\r\n"
        "UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
        "Content-Type: application/sdp\r\n"
        "Route:\r\n"
        " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
        "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
        "  branch  =   z9hG4bK9ikj8  ,\r\n"
        " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n"
        " z9hG4bK30239\r\n"
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n'
        "      newvalue ;\r\n"
        "  secondparam ; q = 0.33\r\n"
        "\r\n" + sdp("192.0.2.3", connection="192.0.2.4"),
        # The To tag makes it a request inside a dialog this UAS never had: 481
        # (RFC 3261 12.2.2), once the parser has coped with everything else.
        answers(481),
        media=True,
    ),
    Case(
        "3.1.1.2",
        "Wide Range of Valid Characters",
        "!interesting-Method0123456789_*+`.%indeed'~ "
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
        ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP host1.example.com:${port};branch=z9hG4bK-.!%66*_+`'~\r\n"
        'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" '
        "<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\r\n"
        "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>"
        ";fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.\r\n"
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
        "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
        "Max-Forwards: 255\r\n"
        "extensionHeader-!.%*+_`'~:\ufeff大停電\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        # An unknown method: 501 (RFC 3261 8.2.1).
        answers(501),
    ),
    Case(
        "3.1.1.3",
        "Valid Use of the % Escaping Mechanism",
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n"
        "To: sip:%75se%72@example.com\r\n"
        "From: <sip:I%20have%20spaces@example.net>;tag=938\r\n"
        "Max-Forwards: 87\r\n"
        "i: esc01.239409asdfakjkn23onasd0-3234\r\n"
        "CSeq: 234234 INVITE\r\n"
        "Via: SIP/2.0/UDP host5.example.net:${port};branch=z9hG4bKkdjuw\r\n"
        "C: application/sdp\r\n"
        "Contact:\r\n"
        "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.1"),
        # Routed on the unescaped user part "sips:user@example.com": a call.
        answers(200),
        media=True,
    ),
    Case(
        "3.1.1.4",
        "Escaped Nulls in URIs",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "To: sip:null-%00-null@example.com\r\n"
        "From: sip:null-%00-null@example.com;tag=839923423\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\r\n"
        "CSeq: 14398234 REGISTER\r\n"
        "Via: SIP/2.0/UDP host5.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Contact: <sip:%00@host5.example.com>\r\n"
        "Contact: <sip:%00%00@host5.example.com>\r\n"
        "L:0\r\n"
        "\r\n",
        # The registrar challenges (RFC 3261 10.3 step 3); with the credentials of
        # "null-\0-null" (the AOR not cut short at the NUL) both contacts are bound.
        answers(401),
        follow_up=registers(
            "null-\x00-null",
            answers(200),
            (r"<sip:%00@host5\.example\.com>;expires=\d+", r"<sip:%00%00@host5\.example\.com>.*"),
        ),
    ),
    Case(
        "3.1.1.5",
        "Use of % When It Is Not an Escape",
        "RE%47IST%45R sip:registrar.example.com SIP/2.0\r\n"
        'To: "%Z%45" <sip:resource@example.com>\r\n'
        'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23\r\n'
        "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\r\n"
        "Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209323\r\n"
        "CSeq: 29344 RE%47IST%45R\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:alias1@host1.example.com>\r\n"
        "C%6Fntact: <sip:alias2@host2.example.com>\r\n"
        "Contact: <sip:alias3@host3.example.com>\r\n"
        "l: 0\r\n"
        "\r\n",
        # RE%47IST%45R is not REGISTER but an unknown method: 501 (RFC 3261 8.2.1).
        answers(501),
    ),
    Case(
        "3.1.1.6",
        "Message with No LWS between Display Name and <",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: caller<sip:caller@example.com>;tag=323\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: lwsdisp.1234abcd@funky.example.com\r\n"
        "CSeq: 60 OPTIONS\r\n"
        "Via: SIP/2.0/UDP funky.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "l: 0\r\n"
        "\r\n",
        answers(200),
    ),
    Case(
        "3.1.1.7",
        "Long Values in Header Fields",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        f'To: "I have a user name of {"extreme" * 10} proportion"'
        f"<sip:user@example.com:6000;unknownparam1=very{'long' * 20}value;"
        f"longparam{'name' * 25}=shortvalue;very{'long' * 25}ParameterNameWithNoValue>\r\n"
        f"F: sip:{'amazinglylongcallername' * 5}@example.net;tag=12{'982' * 50}424"
        f";unknownheaderparam{'name' * 20}=unknowheaderparam{'value' * 15}"
        f";unknownValueless{'paramname' * 10}\r\n"
        f"Call-ID: longreq.one{'really' * 20}longcallid\r\n"
        "CSeq: 3882340 INVITE\r\n"
        f"Unknown-{'Long' * 20}-Name:unknown-{'long' * 20}-value;"
        f"unknown-{'long' * 20}-parameter-name =unknown-{'long' * 20}-parameter-value\r\n"
        "Via: SIP/2.0/TCP sip33.example.com:${port}\r\n"
        "v: SIP/2.0/TCP sip32.example.com\r\n"
        "V: SIP/2.0/TCP sip31.example.com\r\n"
        "Via: SIP/2.0/TCP sip30.example.com\r\n"
        "ViA: SIP/2.0/TCP sip29.example.com\r\n"
        "VIa: SIP/2.0/TCP sip28.example.com\r\n"
        "VIA: SIP/2.0/TCP sip27.example.com\r\n"
        "via: SIP/2.0/TCP sip26.example.com\r\n"
        "viA: SIP/2.0/TCP sip25.example.com\r\n"
        "vIa: SIP/2.0/TCP sip24.example.com\r\n"
        "vIA: SIP/2.0/TCP sip23.example.com\r\n"
        "V :  SIP/2.0/TCP sip22.example.com\r\n"
        "v :  SIP/2.0/TCP sip21.example.com\r\n"
        "V  : SIP/2.0/TCP sip20.example.com\r\n"
        "v  : SIP/2.0/TCP sip19.example.com\r\n"
        "Via : SIP/2.0/TCP sip18.example.com\r\n"
        "Via  : SIP/2.0/TCP sip17.example.com\r\n"
        + "".join(f"Via: SIP/2.0/TCP sip{n}.example.com\r\n" for n in range(16, 0, -1))
        + "Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;"
        f"branch=very{'long' * 50}branchvalue\r\n"
        "Max-Forwards: 70\r\n"
        f"Contact: <sip:{'amazinglylongcallername' * 5}@host5.example.net>\r\n"
        "Content-Type: application/sdp\r\n"
        "l: 150\r\n"
        "\r\n" + sdp("192.0.2.1"),
        answers(200),
        media=True,
    ),
    Case(
        "3.1.1.8",
        "Extra Trailing Octets in a UDP Datagram",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:j.user@example.com;tag=43251j3j324\r\n"
        "Max-Forwards: 8\r\n"
        "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\r\n"
        "Contact: sip:j.user@host.example.com\r\n"
        "CSeq: 8 REGISTER\r\n"
        "Via: SIP/2.0/UDP 192.0.2.125:${port};branch=z9hG4bKkdjuw23492\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
        "INVITE sip:joe@example.com SIP/2.0\r\n"
        "t: sip:joe@example.com\r\n"
        "From: sip:caller@example.net;tag=141334\r\n"
        "Max-Forwards: 8\r\n"
        "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\r\n"
        "CSeq: 8 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.15:${port};branch=z9hG4bKkdjuw380234\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.1"),
        # The REGISTER is handled (challenged); the INVITE after it is ignored.
        answers(401),
        follow_up=nothing_more,
        exact_length=False,
    ),
    Case(
        "3.1.1.9",
        "Semicolon-Separated Parameters in URI User Part",
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\r\n"
        "To: sip:j_user@example.com\r\n"
        "From: sip:caller@example.org;tag=33242\r\n"
        "Max-Forwards: 3\r\n"
        "Call-ID: semiuri.0ha0isndaksdj\r\n"
        "CSeq: 8 OPTIONS\r\n"
        "Accept: application/sdp, application/pkcs7-mime,\r\n"
        "        multipart/mixed, multipart/signed,\r\n"
        "        message/sip, message/sipfrag\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:${port};branch=z9hG4bKkdjuw\r\n"
        "l: 0\r\n"
        "\r\n",
        answers(200),
    ),
    Case(
        "3.1.1.10",
        "Varied and Unknown Transport Types",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: <sip:caller@example.com>;tag=323\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID:  transports.kijh4akdnaqjkwendsasfdj\r\n"
        "Accept: application/sdp\r\n"
        "CSeq: 60 OPTIONS\r\n"
        "Via: SIP/2.0/UDP t1.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\r\n"
        "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\r\n"
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\r\n"
        "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\r\n"
        "l: 0\r\n"
        "\r\n",
        answers(200),
        follow_up=vias_copied_in_order,
    ),
]


def multipart_message() -> bytes:
    """RFC 4475 3.1.1.11: a MESSAGE whose second body part is binary, NULs included.
    The binary part here is our own 256 octets (the RFC's is a PKCS#7 blob)."""
    body = (
        b"--7a9cbec02ceef655\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"Hello\r\n"
        b"--7a9cbec02ceef655\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n" + bytes(range(256)) + b"\r\n"
        b"--7a9cbec02ceef655--\r\n"
    )
    head = (
        "MESSAGE sip:kumiko@example.org SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"
        ";rport\r\n"
        "Max-Forwards: 70\r\n"
        "Route: <sip:127.0.0.1:5080>\r\n"
        f"Identity: {'c2lnbmF0dXJlIG9mIHRoZSBtZXNzYWdl' * 12}==\r\n"  # a stand-in
        "Identity-Info: <https://127.0.0.1:5080/cert>;alg=rsa-sha1\r\n"
        "To: <sip:kumiko@example.org>\r\n"
        "From: <sip:fluffy@example.com>;tag=2fb0dcc9\r\n"
        "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655\r\n"
        "Date: Sat, 15 Oct 2005 04:44:56 GMT\r\n"
        "User-Agent: SIPimp.org/0.2.5 (curses)\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


CASES += [
    Case(
        "3.1.1.11",
        "Multipart MIME Message",
        multipart_message(),
        # Well formed, so never 400: 405 where MESSAGE is not served, 415 for a
        # multipart body it cannot use, 2xx where it is taken (RFC 3261 8.2.1, 8.2.3).
        answers(200, 202, 405, 415),
    ),
    Case(
        "3.1.1.12",
        "Unusual Reason Phrase",
        "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое\r\n"
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n"
        "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\r\n"
        "CSeq: 35 INVITE\r\n"
        "From: sip:user@example.com;tag=11141343\r\n"
        "To: sip:user@example.edu;tag=2229\r\n"
        "Content-Length: 154\r\n"
        "Content-Type: application/sdp\r\n"
        "Contact: <sip:user@host198.example.com>\r\n"
        "\r\n" + sdp("192.0.2.198"),
        # A response to nothing we sent: dropped, never answered (RFC 3261 18.1.2).
        DROPPED,
    ),
    Case(
        "3.1.1.13",
        "Empty Reason Phrase",
        "SIP/2.0 100 \r\n"
        "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
        "Call-ID: noreason.asndj203insdf99223ndf\r\n"
        "CSeq: 35 INVITE\r\n"
        "From: <sip:user@example.com>;tag=39ansfi3\r\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\r\n"
        "Content-Length: 0\r\n"
        "Contact: <sip:user@host105.example.com>\r\n"
        "\r\n",
        DROPPED,
    ),
    # RFC 4475 3.1.2: invalid messages.
    Case(
        "3.1.2.1",
        "Extraneous Header Field Separators",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:caller@example.net;tag=134161461246\r\n"
        "Max-Forwards: 7\r\n"
        "Call-ID: badinv01.0ha0isndaksdjasdf3234nas\r\n"
        "CSeq: 8 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.15:${port};;,;,,\r\n"
        'Contact: "Joe" <sip:joe@example.org>;;;;\r\n'
        "Content-Length: 152\r\n"
        "Content-Type: application/sdp\r\n"
        "\r\n" + sdp("192.0.2.15"),
        answers(400),
        reason="Via",
    ),
    Case(
        "3.1.2.2",
        "Content Length Larger Than Message",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "Max-Forwards: 80\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:caller@example.net;tag=93942939o2\r\n"
        "Contact: <sip:caller@hungry.example.net>\r\n"
        "Call-ID: clerr.0ha0isndaksdjweiafasdk3\r\n"
        "CSeq: 8 INVITE\r\n"
        "Via: SIP/2.0/UDP host5.example.com:${port};branch=z9hG4bK-39234-23523\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 9999\r\n"
        "\r\n" + sdp("192.0.2.155"),
        # Over UDP the rest cannot arrive later: 400.
        answers(400),
        reason="Content-Length",
        exact_length=False,
    ),
    Case(
        "3.1.2.3",
        "Negative Content-Length",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "Max-Forwards: 254\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:caller@example.net;tag=32394234\r\n"
        "Call-ID: ncl.0ha0isndaksdj2193423r542w35\r\n"
        "CSeq: 0 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.53:${port};branch=z9hG4bKkdjuw\r\n"
        "Contact: <sip:caller@example53.example.net>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: -999\r\n"
        "\r\n" + sdp("192.0.2.53"),
        answers(400),
        reason="Content-Length",
        exact_length=False,
    ),
    Case(
        "3.1.2.4",
        "Request Scalar Fields with Overlarge Values",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP host129.example.com:${port};branch=z9hG4bK342sdfoi3\r\n"
        "To: <sip:user@example.com>\r\n"
        "From: <sip:user@example.com>;tag=239232jh3\r\n"
        "CSeq: 36893488147419103232 REGISTER\r\n"
        "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n"
        "Max-Forwards: 300\r\n"
        f"Expires: 1{'0' * 100}\r\n"
        "Contact: <sip:user@host129.example.com>\r\n"
        "  ;expires=280297596632815\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        # 400 because of the CSeq (Max-Forwards and the expiries alone could be tolerated).
        answers(400),
        reason="CSeq",
    ),
    Case(
        "3.1.2.5",
        "Response Scalar Fields with Overlarge Values",
        "SIP/2.0 503 Service Unavailable\r\n"
        "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\r\n"
        "To: <sip:user@example.com>\r\n"
        "From: <sip:other@example.net>;tag=2easdjfejw\r\n"
        "CSeq: 9292394834772304023312 OPTIONS\r\n"
        "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\r\n"
        "Retry-After: 949302838503028349304023988\r\n"
        'Warning: 1812 overture "In Progress"\r\n'
        "Content-Length: 0\r\n"
        "\r\n",
        # A response is never answered; this one is also malformed: dropped.
        DROPPED,
    ),
    Case(
        "3.1.2.6",
        "Unterminated Quoted String in Display Name",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        'To: "Mr. J. User <sip:j.user@example.com>\r\n'
        "From: sip:caller@example.net;tag=93334\r\n"
        "Max-Forwards: 10\r\n"
        "Call-ID: quotbal.aksdj\r\n"
        "Contact: <sip:caller@host59.example.net>\r\n"
        "CSeq: 8 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.59:${port};branch=z9hG4bKkdjuw39234\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 152\r\n"
        "\r\n" + sdp("192.0.2.15"),
        answers(400),
        reason=r"\bTo\b",
    ),
    Case(
        "3.1.2.7",
        "<> Enclosing Request-URI",
        "INVITE <sip:user@example.com> SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.net;tag=39291\r\n"
        "Max-Forwards: 23\r\n"
        "Call-ID: ltgtruri.1@192.0.2.5\r\n"
        "CSeq: 1 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.5:${port}\r\n"
        "Contact: <sip:caller@host5.example.net>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.5"),
        answers(400),
        reason="Request-URI|request line",
    ),
    Case(
        "3.1.2.8",
        "Malformed SIP Request-URI (embedded LWS)",
        "INVITE sip:user@example.com; lr SIP/2.0\r\n"
        "To: sip:user@example.com;tag=3xfe-9921883-z9f\r\n"
        "From: sip:caller@example.net;tag=231413434\r\n"
        "Max-Forwards: 5\r\n"
        "Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423\r\n"
        "CSeq: 2130706432 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:${port};branch=z9hG4bKkdjuw2395\r\n"
        "Contact: <sip:caller@host1.example.net>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.1"),
        answers(400),
        reason="Request-URI|request line",
    ),
    Case(
        "3.1.2.9",
        "Multiple SP Separating Request-Line Elements",
        "INVITE  sip:user@example.com  SIP/2.0\r\n"
        "Max-Forwards: 8\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.net;tag=8814\r\n"
        "Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\r\n"
        "CSeq: 1893884 INVITE\r\n"
        "Via: SIP/2.0/UDP host1.example.com:${port};branch=z9hG4bKkdjuw3923\r\n"
        "Contact: <sip:caller@host1.example.net>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.1"),
        answers(400),
        reason="Request-URI|request line",
    ),
    Case(
        "3.1.2.10",
        "SP Characters at End of Request-Line",
        "OPTIONS sip:remote-target@example.com SIP/2.0  \r\n"
        "Via: SIP/2.0/TCP host1.example.com:${port};branch=z9hG4bK299342093\r\n"
        "To: <sip:remote-target@example.com>\r\n"
        "From: <sip:local-resource@example.com>;tag=329429089\r\n"
        "Call-ID: trws.oicu34958239neffasdhr2345r\r\n"
        "Accept: application/sdp\r\n"
        "CSeq: 238923 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        # The RFC allows rejecting it as malformed (400) or ignoring the SPs (200).
        answers(400, 200),
        reason="request line",
    ),
    Case(
        "3.1.2.11",
        "Escaped Headers in SIP Request-URI",
        "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.net;tag=341518\r\n"
        "Max-Forwards: 7\r\n"
        "Contact: <sip:caller@host39923.example.net>\r\n"
        "Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\r\n"
        "CSeq: 149209342 INVITE\r\n"
        "Via: SIP/2.0/UDP host-of-the-hour.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.1"),
        # The RFC allows a 400 or ignoring the escaped headers (then it is a call).
        answers(400, 200),
        reason="Request-URI|header",
        media=True,
    ),
    Case(
        "3.1.2.12",
        "Invalid Time Zone in Date Header Field",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.net;tag=2234923\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\r\n"
        "CSeq: 1392934 INVITE\r\n"
        "Via: SIP/2.0/UDP host.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Date: Fri, 01 Jan 2010 16:00:00 EST\r\n"
        "Contact: <sip:caller@host5.example.net>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 150\r\n"
        "\r\n" + sdp("192.0.2.5"),
        # A 400 is allowed, but a UAS that does not use Date may ignore it (a call).
        answers(400, 200),
        reason="Date",
        media=True,
    ),
    Case(
        "3.1.2.13",
        "Failure to Enclose name-addr URI in <>",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:user@example.com;tag=998332\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Via: SIP/2.0/UDP 135.180.130.133:${port};branch=z9hG4bKkdjuw\r\n"
        "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\r\n"
        "l: 0\r\n"
        "\r\n",
        # 400 is reasonable; a liberal registrar may infer the <> (RFC 4475). Ours
        # challenges first (401), and the authenticated retry gets one of those two.
        answers(400, 401),
        reason="Contact",
        follow_up=registers(
            "user",
            answers(400, 200),
            (r"<sip:user@example\.com\?Route=%3Csip:sip\.example\.com%3E>.*",),
            reason="Contact",
        ),
    ),
    Case(
        "3.1.2.14",
        "Spaces within addr-spec",
        "OPTIONS sip:user@example.org SIP/2.0\r\n"
        "Via: SIP/2.0/UDP host4.example.com:${port};branch=z9hG4bKkdju43234\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423\r\n'
        'To: "Watson, Thomas" < sip:t.watson@example.org >\r\n'
        "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\r\n"
        "Accept: application/sdp\r\n"
        "CSeq: 3923239 OPTIONS\r\n"
        "l: 0\r\n"
        "\r\n",
        # Reasonable to reject with 400; a liberal element may ignore the spaces.
        answers(400, 200),
        reason=r"\bTo\b",
    ),
    Case(
        "3.1.2.15",
        "Non-token Characters in Display Name",
        "OPTIONS sip:t.watson@example.org SIP/2.0\r\n"
        "Via:     SIP/2.0/UDP c.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Max-Forwards:      70\r\n"
        "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\n"
        "To:      Watson, Thomas <sip:t.watson@example.org>\r\n"
        "Call-ID: baddn.31415@c.example.com\r\n"
        "Accept: application/sdp\r\n"
        "CSeq:    3923239 OPTIONS\r\n"
        "l: 0\r\n"
        "\r\n",
        # Reasonable always to reject with 400; a liberal element may treat the
        # display names as if quoted.
        answers(400, 200),
        reason=r"\b(From|To)\b",
    ),
    Case(
        "3.1.2.16",
        "Unknown Protocol Version",
        "OPTIONS sip:t.watson@example.org SIP/7.0\r\n"
        "Via:     SIP/7.0/UDP c.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Max-Forwards:     70\r\n"
        "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\n"
        "To:      T. Watson <sip:t.watson@example.org>\r\n"
        "Call-ID: badvers.31417@c.example.com\r\n"
        "CSeq:    1 OPTIONS\r\n"
        "l: 0\r\n"
        "\r\n",
        answers(505),
    ),
    Case(
        "3.1.2.17",
        "Start Line and CSeq Method Mismatch",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:caller@example.net;tag=34525\r\n"
        "Max-Forwards: 6\r\n"
        "Call-ID: mismatch01.dj0234sxdfl3\r\n"
        "CSeq: 8 INVITE\r\n"
        "Via: SIP/2.0/UDP host.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "l: 0\r\n"
        "\r\n",
        answers(400),
        reason="CSeq",
    ),
    Case(
        "3.1.2.18",
        "Unknown Method with CSeq Method Mismatch",
        "NEWMETHOD sip:user@example.com SIP/2.0\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:caller@example.net;tag=34525\r\n"
        "Max-Forwards: 6\r\n"
        "Call-ID: mismatch02.dj0234sxdfl3\r\n"
        "CSeq: 8 INVITE\r\n"
        "Contact: <sip:caller@host.example.net>\r\n"
        "Via: SIP/2.0/UDP host.example.net:${port};branch=z9hG4bKkdjuw\r\n"
        "Content-Type: application/sdp\r\n"
        "l: 138\r\n"
        "\r\n"
        "v=0\r\n"
        "o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
        "c=IN IP4 192.0.2.1\r\n"
        "m=audio 49217 RTP/AVP 0 12\r\n"
        "m=video 3227 RTP/AVP 31\r\n"
        "a=rtpmap:31 LPC\r\n",
        # 400 for the mismatch, not 501 for the unknown method.
        answers(400),
        reason="CSeq",
    ),
    Case(
        "3.1.2.19",
        "Overlarge Response Code",
        "SIP/2.0 4294967301 better not break the receiver\r\n"
        "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
        "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\r\n"
        "CSeq: 353494 INVITE\r\n"
        "From: <sip:user@example.com>;tag=39ansfi3\r\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\r\n"
        "Content-Length: 0\r\n"
        "Contact: <sip:user@host105.example.com>\r\n"
        "\r\n",
        DROPPED,
    ),
    # RFC 4475 3.2: transaction layer semantics.
    Case(
        "3.2.1",
        "Missing Transaction Identifier",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.org;tag=33242\r\n"
        "Max-Forwards: 3\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:${port};branch=z9hG4bK\r\n"
        "Accept: application/sdp\r\n"
        "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\r\n"
        "CSeq: 8 OPTIONS\r\n"
        "l: 0\r\n"
        "\r\n",
        # A 400 (statelessly) or falling back to RFC 2543 transaction matching.
        answers(400, 200),
        reason="branch|Via",
    ),
    # RFC 4475 3.3: application layer semantics.
    Case(
        "3.3.1",
        "Missing Required Header Fields",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "CSeq: 193942 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.95:${port};branch=z9hG4bKkdj.insuf\r\n"
        "Content-Type: application/sdp\r\n"
        "l: 152\r\n"
        "\r\n" + sdp("192.0.2.95"),
        answers(400),
        reason="Missing (Call-ID|From|To)",
    ),
    Case(
        "3.3.2",
        "Request-URI with Unknown Scheme",
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.net;tag=384\r\n"
        "Max-Forwards: 3\r\n"
        "Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34\r\n"
        "CSeq: 3923423 OPTIONS\r\n"
        "Via: SIP/2.0/TCP host9.example.com:${port};branch=z9hG4bKkdjuw39234\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        answers(416),
    ),
    Case(
        "3.3.3",
        "Request-URI with Known but Atypical Scheme",
        "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:caller@example.net;tag=384\r\n"
        "Max-Forwards: 3\r\n"
        "Call-ID: novelsc.asdfasser0q239nwsdfasdkl34\r\n"
        "CSeq: 3923423 OPTIONS\r\n"
        "Via: SIP/2.0/TCP host9.example.com:${port};branch=z9hG4bKkdjuw39234\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        answers(416),
    ),
    Case(
        "3.3.4",
        "Unknown URI Schemes in Header Fields",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "To: isbn:2983792873\r\n"
        "From: <http://www.example.com>;tag=3234233\r\n"
        "Call-ID: unksm2.daksdj@hyphenated-host.example.com\r\n"
        "CSeq: 234902 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        "Via: SIP/2.0/UDP 192.0.2.21:${port};branch=z9hG4bKkdjuw\r\n"
        "Contact: <name:John_Smith>\r\n"
        "l: 0\r\n"
        "\r\n",
        # Syntactically valid: the registrar challenges (401). Authenticated, the AOR
        # in To is no SIP URI: 400 says RFC 4475, and 404 is RFC 3261 10.3's answer
        # for an AOR that is not valid for the domain; either is accepted.
        answers(401),
        follow_up=registers("user", answers(400, 404), reason=r"\bTo\b"),
    ),
    Case(
        "3.3.5",
        "Proxy-Require and Require",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "To: sip:j_user@example.com\r\n"
        "From: sip:caller@example.net;tag=242etr\r\n"
        "Max-Forwards: 6\r\n"
        "Call-ID: bext01.0ha0isndaksdj\r\n"
        "Require: nothingSupportsThis, nothingSupportsThisEither\r\n"
        "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\r\n"
        "CSeq: 8 OPTIONS\r\n"
        "Via: SIP/2.0/TLS fold-and-staple.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        answers(420),
        follow_up=unsupported_names_the_require_tags,
    ),
    Case(
        "3.3.6",
        "Unknown Content-Type",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "Contact: <sip:caller@host5.example.net>\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:caller@example.net;tag=8392034\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: invut.0ha0isndaksdjadsfij34n23d\r\n"
        "CSeq: 235448 INVITE\r\n"
        "Via: SIP/2.0/UDP somehost.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Content-Type: application/unknownformat\r\n"
        "Content-Length: 40\r\n"
        "\r\n"
        "<audio>\r\n"
        ' <pcmu port="443"/>\r\n'
        "</audio>\r\n",
        answers(415),
        follow_up=accept_names_sdp,
    ),
    Case(
        "3.3.7",
        "Unknown Authorization Scheme",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "To: sip:j.user@example.com\r\n"
        "From: sip:j.user@example.com;tag=87321hj23128\r\n"
        "Max-Forwards: 8\r\n"
        "Call-ID: regaut01.0ha0isndaksdj\r\n"
        "CSeq: 9338 REGISTER\r\n"
        "Via: SIP/2.0/TCP 192.0.2.253:${port};branch=z9hG4bKkdjuw\r\n"
        "Authorization: NoOneKnowsThisScheme opaque-data=here\r\n"
        "Content-Length:0\r\n"
        "\r\n",
        # A registrar that authenticates answers 401 with a scheme it understands.
        answers(401),
        follow_up=challenge_is_digest,
    ),
    Case(
        "3.3.8",
        "Multiple Values in Single Value Required Fields",
        "INVITE sip:user@company.com SIP/2.0\r\n"
        "Contact: <sip:caller@host25.example.net>\r\n"
        "Via: SIP/2.0/UDP 192.0.2.25:${port};branch=z9hG4bKkdjuw\r\n"
        "Max-Forwards: 70\r\n"
        "CSeq: 5 INVITE\r\n"
        "Call-ID: multi01.98asdh@192.0.2.1\r\n"
        "CSeq: 59 INVITE\r\n"
        "Call-ID: multi01.98asdh@192.0.2.2\r\n"
        "From: sip:caller@example.com;tag=3413415\r\n"
        "To: sip:user@example.com\r\n"
        "To: sip:other@example.net\r\n"
        "From: sip:caller@example.net;tag=2923420123\r\n"
        "Content-Type: application/sdp\r\n"
        "l: 152\r\n"
        "Contact: <sip:caller@host36.example.net>\r\n"
        "Max-Forwards: 5\r\n"
        "\r\n" + sdp("192.0.2.25"),
        answers(400),
        reason="Multiple (Call-ID|CSeq|From|To|Max-Forwards)",
    ),
    Case(
        "3.3.9",
        "Multiple Content-Length Values",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP host5.example.net:${port};branch=z9hG4bK293423\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:other@example.net;tag=3923942\r\n"
        "Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf\r\n"
        "CSeq: 15932 OPTIONS\r\n"
        "Content-Length: 13\r\n"
        "Max-Forwards: 60\r\n"
        "Content-Length: 5\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "There's no way to know how many octets are supposed to be here.\r\n",
        answers(400),
        reason="Content-Length",
        exact_length=False,
    ),
    Case(
        "3.3.10",
        "200 OK Response with Broadcast Via Header Field Value",
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n"
        "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\r\n"
        "Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\r\n"
        "CSeq: 35 INVITE\r\n"
        "From: sip:user@example.com;tag=11141343\r\n"
        "To: sip:user@example.edu;tag=2229\r\n"
        "Content-Length: 154\r\n"
        "Content-Type: application/sdp\r\n"
        "Contact: <sip:user@host28.example.com>\r\n"
        "\r\n" + sdp("192.0.2.198"),
        # Matches no transaction of ours: dropped, nothing forwarded or answered.
        DROPPED,
    ),
    Case(
        "3.3.11",
        "Max-Forwards of Zero",
        "OPTIONS sip:user@example.com SIP/2.0\r\n"
        "Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas\r\n"
        "CSeq: 39234321 OPTIONS\r\n"
        "From: sip:caller@example.net;tag=3ghsd41\r\n"
        "To: sip:user@example.com\r\n"
        "Max-Forwards: 0\r\n"
        "Via: SIP/2.0/UDP host1.example.com:${port};branch=z9hG4bKkdjuw2349i\r\n"
        "l: 0\r\n"
        "\r\n",
        # An endpoint processes it as if Max-Forwards were positive (483 is a proxy's).
        answers(200),
    ),
    Case(
        "3.3.12",
        "REGISTER with a Contact Header Parameter",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP saturn.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Max-Forwards: 70\r\n"
        "From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\r\n"
        "To: sip:watson@example.com\r\n"
        "Call-ID: cparam01.70710@saturn.example.com\r\n"
        "CSeq: 2 REGISTER\r\n"
        "Contact: sip:+19725552222@gw1.example.net;unknownparam\r\n"
        "l: 0\r\n"
        "\r\n",
        # Succeeds (after the challenge) with unknownparam a contact-param, not a
        # url-param of the binding.
        answers(401),
        follow_up=registers(
            "watson", answers(200), (r"<sip:\+19725552222@gw1\.example\.net>;unknownparam;.*",)
        ),
    ),
    Case(
        "3.3.13",
        "REGISTER with a url-parameter",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP saturn.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "Max-Forwards: 70\r\n"
        "From: sip:watson@example.com;tag=838293\r\n"
        "To: sip:watson@example.com\r\n"
        "Call-ID: cparam02.70710@saturn.example.com\r\n"
        "CSeq: 3 REGISTER\r\n"
        "Contact: <sip:+19725552222@gw1.example.net;unknownparam>\r\n"
        "l: 0\r\n"
        "\r\n",
        # Succeeds with unknownparam a url-param of the bound URI.
        answers(401),
        follow_up=registers(
            "watson", answers(200), (r"<sip:\+19725552222@gw1\.example\.net;unknownparam>;.*",)
        ),
    ),
    Case(
        "3.3.14",
        "REGISTER with a URL Escaped Header",
        "REGISTER sip:example.com SIP/2.0\r\n"
        "To: sip:user@example.com\r\n"
        "From: sip:user@example.com;tag=8\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: regescrt.k345asrl3fdbv@192.0.2.1\r\n"
        "CSeq: 14398234 REGISTER\r\n"
        "Via: SIP/2.0/UDP host5.example.com:${port};branch=z9hG4bKkdjuw\r\n"
        "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\r\n"
        "L:0\r\n"
        "\r\n",
        # Succeeds; the binding keeps the escaped Route header in its URI.
        answers(401),
        follow_up=registers(
            "user",
            answers(200),
            (r"<sip:user@example\.com\?Route=%3Csip:sip\.example\.com%3E>.*",),
        ),
    ),
    Case(
        "3.3.15",
        "Unacceptable Accept Offering",
        "INVITE sip:user@example.com SIP/2.0\r\n"
        "To: sip:j_user@example.com\r\n"
        "Contact: <sip:caller@host15.example.net>\r\n"
        "From: sip:caller@example.net;tag=234\r\n"
        "Max-Forwards: 5\r\n"
        "Call-ID: sdp01.ndaksdj9342dasdd\r\n"
        "Accept: text/nobodyKnowsThis\r\n"
        "CSeq: 8 INVITE\r\n"
        "Via: SIP/2.0/UDP 192.0.2.15:${port};branch=z9hG4bKkdjuw\r\n"
        "Content-Length: 150\r\n"
        "Content-Type: application/sdp\r\n"
        "\r\n" + sdp("192.0.2.5"),
        # The answer could not carry SDP: 406 (with a Warning), or 400 since every
        # UA supporting INVITE must accept application/sdp.
        answers(406, 400),
        reason="Accept",
        media=True,
    ),
    # RFC 4475 3.4: backwards compatibility.
    Case(
        "3.4.1",
        "INVITE with RFC 2543 Syntax",
        "INVITE sip:UserB@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP iftgw.example.com:${port}\r\n"
        "From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n"
        "Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\r\n"
        "To: sip:+16505552222@ss1.example.net;user=phone\r\n"
        "Call-ID: inv2543.1717@ift.client.example.com\r\n"
        "CSeq: 56 INVITE\r\n"
        "Content-Type: application/sdp\r\n"
        "\r\n"
        "v=0\r\n"
        "o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
        "s=-\r\n"
        "c=IN IP4 192.0.2.5\r\n"
        "t=0 0\r\n"
        "m=audio 49217 RTP/AVP 0\r\n",
        # No branch, no From tag, no Content-Length, no Max-Forwards: still a call.
        answers(200),
        media=True,
    ),
]


# -- the UDP run ----------------------------------------------------------------------------


def request_uri(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode().split(" ")[1]


def check_answer(case: Case, final: Reply) -> None:
    assert final.status in case.answers, f"{final.status} {final.reason}"
    if final.status == 400 and case.reason:
        assert re.search(case.reason, final.reason), final.reason


async def run_case(case: Case, peer: Peer, rig: Rig) -> None:
    """Send the case's message and check the answer; carry an INVITE through."""
    sent = case.render(peer.port, rig.rtp_sink)
    peer.send(sent)
    if not case.answers:
        await peer.silence()
        return
    provisional, final = await peer.final()
    if sent.startswith(b"INVITE "):
        await finish_invite(peer, request_uri(sent), final)
        if final.status == 200:
            # RFC 3261 17.2.1: a call that takes time to answer is 100 Trying first.
            assert [r.status for r in provisional][:1] == [100]
    check_answer(case, final)
    if case.follow_up is not None:
        await case.follow_up(Exchange(peer, sent, final))


# Server bugs these cases show (strict: a fix makes the case pass, then drop it here).
XFAIL: dict[str, str] = {}  # server bugs found by this file; all fixed so far


def params(cases: list[Case]) -> list[object]:
    marks = {
        case.id: [pytest.mark.xfail(strict=True, reason=XFAIL[case.id])]
        for case in cases
        if case.id in XFAIL
    }
    return [pytest.param(case, id=case.id, marks=marks.get(case.id, [])) for case in cases]


def test_vectors_declare_the_length_of_their_body() -> None:
    """The vectors themselves: a Content-Length that is not what a case tests is right."""
    for case in CASES:
        data = case.render(5060, 49170)
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", head)
        if case.exact_length and m:
            assert int(m.group(1)) == len(body), case.id


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", params(CASES))
async def test_rfc4475_over_udp(case: Case, rig: Rig) -> None:
    peer = await UdpPeer.open(rig.sip_port)
    try:
        await run_case(case, peer, rig)
    finally:
        peer.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_after_the_udp_run_nothing_is_left_and_calls_still_work(rig: Rig) -> None:
    """Runs after every case above (same server): timers expire, nothing leaks."""
    await assert_nothing_left(rig.server)
    peer = await UdpPeer.open(rig.sip_port)
    try:
        await take_a_normal_call(peer, rig.rtp_sink)
    finally:
        peer.close()
    await assert_nothing_left(rig.server)


# -- the TCP run ------------------------------------------------------------------------------

CASE = {case.section: case for case in CASES}
PIPELINED = ("3.1.1.6", "3.1.1.5", "3.1.1.9", "3.3.5", "3.3.2", "3.1.2.18")


def call_id(case: Case) -> str:
    text = case.message if isinstance(case.message, str) else case.message.decode("latin-1")
    m = re.search(r"(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)", text)
    assert m, case.id
    return m.group(1)


async def send_in_pieces(peer: TcpPeer, data: bytes, size: int = 7) -> None:
    for start in range(0, len(data), size):
        peer.send(data[start : start + size])
        await peer.writer.drain()
        await asyncio.sleep(0)


@pytest.mark.asyncio(loop_scope="module")
async def test_rfc4475_over_tcp_framing(tmp_path: Path) -> None:
    """A handful of the messages through one TCP connection (RFC 3261 18.3: the
    Content-Length frames each one), then the same leak check as over UDP."""
    async with running_server(tmp_path) as rig:
        peer = await TcpPeer.open(rig.sip_port)
        try:
            # Several messages in one write, answered in order.
            peer.send(b"".join(CASE[s].render(peer.port, rig.rtp_sink) for s in PIPELINED))
            for section in PIPELINED:
                _, final = await peer.final()
                assert final.header("call-id") == call_id(CASE[section]), section
                check_answer(CASE[section], final)
            # 3.1.1.1 in small pieces, folded lines and "Content-Length   :" included.
            wsinv = CASE["3.1.1.1"].render(peer.port, rig.rtp_sink)
            await send_in_pieces(peer, wsinv)
            provisional, final = await peer.final()
            assert ([r.status for r in provisional], final.status) == ([100], 481)
            await finish_invite(peer, request_uri(wsinv), final)
            # 3.1.2.2 over a stream: the rest of the body may still come, so no answer.
            peer.send(CASE["3.1.2.2"].render(peer.port, rig.rtp_sink))
            await peer.silence()
        finally:
            peer.close()
        caller = await TcpPeer.open(rig.sip_port)
        try:
            await take_a_normal_call(caller, rig.rtp_sink)
        finally:
            caller.close()
        await assert_nothing_left(rig.server)
