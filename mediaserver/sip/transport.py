"""The asyncio side of SIP: sockets in, the sans-I/O cores in the middle.

:class:`SipEndpoint` owns the UDP sockets and the TCP and TLS listeners
(TLS is TCP with :mod:`ssl` underneath: the same framing, limits and idle
timeout; certificates in :mod:`mediaserver.sip.tls`). Bytes that arrive
are framed (TCP, TLS), parsed and checked; a request gets the ``received``
and ``rport`` parameters of RFC 3261 18.2.1 and RFC 3581, then goes to the
:class:`~mediaserver.sip.transaction.TransactionLayer`. Whatever the layer
then wants sent is sent, its events are delivered, and a single loop timer is
re-armed at the layer's next deadline. Everything protocol-shaped happens in
the cores; this module only moves bytes and wakes them up.

Malformed input never reaches the user agent: it is answered statelessly
(``400`` with a reason naming the problem, when there is a Via to answer to)
or dropped, and counted. Well-formed new requests then pass the ``screen``
the user agent installs (flood control, :mod:`mediaserver.sip.ratelimit`),
which may refuse them with one stateless 503 or drop them before the
transaction layer keeps any state for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, cast

from mediaserver.config import ListenAddress
from mediaserver.log import get_logger
from mediaserver.sip.framing import FramingError, KeepAlive, StreamFramer
from mediaserver.sip.message import (
    Request,
    Response,
    SipParseError,
    make_response,
    new_branch,
    parse_message,
    request_problem,
    response_problem,
)
from mediaserver.sip.ratelimit import Verdict
from mediaserver.sip.timers import TimerConfig
from mediaserver.sip.tls import ClientPolicy, client_policy
from mediaserver.sip.transaction import (
    Absorbed,
    ClientTransaction,
    New,
    Overloaded,
    ResponseReceived,
    ServerTransaction,
    StrayAck,
    Transaction,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from mediaserver.sip.uri import SipSyntaxError, Via

log = get_logger("sip")

TCP_IDLE_TIMEOUT = 600.0
TLS_HANDSHAKE_TIMEOUT = 10.0
UDP_SIZE_LIMIT = 1300  # RFC 3261 18.1.1


class ListenError(OSError):
    """A listen address could not be bound; ``errno`` is the socket's."""

    def __init__(self, address: ListenAddress, cause: OSError) -> None:
        # uvloop wraps the socket's error in one without an errno ("could not bind").
        inner = cause.__cause__ if cause.errno is None else cause
        root = inner if isinstance(inner, OSError) else cause
        super().__init__(root.errno, root.strerror or str(root))
        self.address = address


@dataclass(frozen=True)
class Peer:
    """Where a message came from or goes to. For TCP and TLS it names the connection."""

    transport: str  # "udp", "tcp" or "tls"
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


class RequestHandler(Protocol):
    """The user agent core, as the endpoint sees it."""

    def on_request(self, tx: ServerTransaction, request: Request, source: Peer) -> None: ...

    def on_ack(self, request: Request, source: Peer) -> None: ...

    def on_server_timeout(self, tx: ServerTransaction, timer: str) -> None: ...

    def on_stray_response(self, response: Response, source: Peer) -> None: ...


Screen = Callable[[Request, Peer], Verdict]
"""Looks at a request before any state is kept for it (flood control)."""


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.endpoint.receive(data, Peer("udp", addr[0], addr[1]), datagram=True)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error", error=str(exc))


class _TcpConnection(asyncio.Protocol):
    """One TCP or TLS connection, accepted or opened."""

    def __init__(self, endpoint: SipEndpoint, transport_name: str = "tcp") -> None:
        self.endpoint = endpoint
        self.transport_name = transport_name
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer(self.transport_name, host, port)
        self.endpoint.connections[self.peer] = self
        self._touch()

    def _touch(self) -> None:
        if self.idle:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(TCP_IDLE_TIMEOUT, self.close)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        self._touch()
        try:
            items = self.framer.feed(data)
        except FramingError as exc:
            self.endpoint.stats["malformed"] += 1
            log.info("closing connection", peer=str(self.peer), reason=str(exc))
            self.close()
            return
        for item in items:
            if isinstance(item, KeepAlive):
                self.transport.write(b"\r\n")  # RFC 5626 3.5.1 pong
            else:
                self.endpoint.receive(item, self.peer, datagram=False)

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport:
            self.transport.close()

    def drop(self) -> None:
        """Close at once and forget the connection now: nothing more may be sent on
        it (a TLS close waits for the peer's close_notify before connection_lost)."""
        if self.transport:
            self.transport.abort()
        if self.peer and self.endpoint.connections.get(self.peer) is self:
            del self.endpoint.connections[self.peer]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle:
            self.idle.cancel()
        if self.peer and self.endpoint.connections.get(self.peer) is self:
            del self.endpoint.connections[self.peer]


class SipEndpoint:
    """SIP over UDP, TCP and TLS, feeding a transaction layer and a request handler.

    ``max_transactions`` bounds memory, not call rate: over UDP a finished
    transaction lingers 32 s to absorb retransmissions (Timers J and L), so
    200 call set-ups a second keep about 13,000 transactions alive.
    """

    def __init__(
        self,
        listen: Sequence[ListenAddress],
        *,
        timers: TimerConfig | None = None,
        max_transactions: int = 100_000,
        tls_server: ssl.SSLContext | None = None,
        tls_ca_file: Path | None = None,
    ) -> None:
        """``tls_server``: what ``tls:`` listeners present; ``tls_ca_file``: the CAs
        a TLS peer with no policy of its own is checked against (else the system's)."""
        self.listen = list(listen)
        self.tls_server = tls_server
        self.tls_ca_file = tls_ca_file
        self.tls_policies: dict[tuple[str, int], ClientPolicy] = {}
        """How to check the server of each TLS address we connect to (trunks' own)."""
        self.layer = TransactionLayer(timers or TimerConfig(), max_transactions=max_transactions)
        self.handler: RequestHandler | None = None
        self.screen: Screen | None = None
        self.bound: list[ListenAddress] = []
        self.connections: dict[Peer, _TcpConnection] = {}
        self.stats: Counter[str] = Counter()
        self._udp: dict[str, _Udp] = {}
        self._servers: list[asyncio.Server] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending: dict[ClientTransaction, asyncio.Future[Response | None]] = {}
        self._watchers: dict[ClientTransaction, Callable[[Response], None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> list[ListenAddress]:
        """Bind every listen address; return them with the ports actually bound.
        ListenError names the address that could not be bound."""
        loop = self._loop = asyncio.get_running_loop()
        for address in self.listen:
            port = address.port
            shared = [a for a in self.bound if a.transport in ("udp", "tcp")]
            if port == 0 and shared and address.transport != "tls":
                port = shared[0].port  # "pick a free one": same port for UDP and TCP
            try:
                if address.transport == "udp":
                    transport, protocol = await loop.create_datagram_endpoint(
                        lambda: _Udp(self), local_addr=(address.host, port)
                    )
                    port = transport.get_extra_info("sockname")[1]
                    self._udp[address.host] = protocol
                else:
                    server = await loop.create_server(
                        lambda name=address.transport: _TcpConnection(self, name),
                        address.host,
                        port,
                        reuse_address=True,
                        ssl=self._server_context(address),
                        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
                        if address.transport == "tls"
                        else None,
                    )
                    port = server.sockets[0].getsockname()[1]
                    self._servers.append(server)
            except OSError as exc:
                raise ListenError(
                    ListenAddress(address.transport, address.host, port), exc
                ) from exc
            self.bound.append(ListenAddress(address.transport, address.host, port))
        return self.bound

    def _server_context(self, address: ListenAddress) -> ssl.SSLContext | None:
        if address.transport != "tls":
            return None
        if self.tls_server is None:
            raise ListenError(address, OSError(0, "no certificate for a tls: listener"))
        return self.tls_server

    async def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        for protocol in self._udp.values():
            if protocol.transport:
                protocol.transport.close()
        for server in self._servers:
            server.close()
        for conn in list(self.connections.values()):
            conn.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        for future in self._pending.values():
            if not future.done():
                future.set_result(None)

    def local_address(self, transport: str) -> tuple[str, int]:
        for address in self.bound:
            if address.transport == transport:
                return address.host, address.port
        address = self.bound[0]
        return address.host, address.port

    def new_via(self, transport: str, host: str) -> Via:
        """Our Via for a new client transaction (RFC 3261 8.1.1.7), with rport (RFC 3581)."""
        _, port = self.local_address(transport)
        return Via(transport.upper(), host, port, {"branch": new_branch(), "rport": None})

    # -- input -------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def receive(self, data: bytes, source: Peer, *, datagram: bool) -> None:
        """One message's bytes from ``source``."""
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive noise on UDP
        try:
            message = parse_message(data, datagram=datagram)
        except SipParseError as exc:
            self.stats["malformed"] += 1
            log.info(
                "malformed sip message", peer=f"{source.host}:{source.port}", reason=exc.reason
            )
            if isinstance(exc.partial, Request) and exc.partial.method != "ACK":
                self._reject_statelessly(exc.partial, exc.status, exc.reason, source)
            return
        try:
            if isinstance(message, Request):
                self._receive_request(message, source)
            else:
                self._receive_response(message, source)
        except Exception:
            # A bug, not bad input: keep serving, and tell the peer when we can.
            self.stats["internal_errors"] += 1
            log.exception("error handling sip message", peer=f"{source.host}:{source.port}")
            if isinstance(message, Request) and message.method != "ACK":
                self._reject_statelessly(message, 500, "Server Internal Error", source)
        finally:
            self._flush()

    def _receive_request(self, request: Request, source: Peer) -> None:
        self.stats[f"in.{request.method}"] += 1
        problem = request_problem(request)
        if problem:
            self.stats["malformed"] += 1
            log.info("bad sip request", peer=f"{source.host}:{source.port}", reason=problem[1])
            if request.method != "ACK":
                self._reject_statelessly(request, problem[0], problem[1], source)
            return
        log.debug("sip in", method=request.method, sip_call_id=request.call_id, peer=source.host)
        if self._screened_out(request, source):
            return
        reply_to = self._stamp_via(request, source)
        disposition = self.layer.handle_request(
            request, reply_to, self._now(), reliable=source.reliable
        )
        if self.handler is None:
            return
        if isinstance(disposition, New):
            self.handler.on_request(disposition.transaction, request, source)
        elif isinstance(disposition, StrayAck):
            self.handler.on_ack(request, source)
        elif isinstance(disposition, Overloaded):
            self.stats["overloaded"] += 1
            extra = [("Retry-After", "5")]
            self.send(make_response(request, 503, "Too many transactions", extra=extra), reply_to)
        else:
            assert isinstance(disposition, Absorbed)

    def _screened_out(self, request: Request, source: Peer) -> bool:
        """Apply flood control: True when the request was refused statelessly (one
        503, no transaction, so nothing is retransmitted) or dropped unanswered.
        ACKs and retransmissions of requests already taken are never screened."""
        if self.screen is None or request.method == "ACK" or self.layer.is_retransmission(request):
            return False
        verdict = self.screen(request, source)
        if verdict.action == "pass":
            return False
        if verdict.action == "refuse":
            self.stats[f"refused_rate_{verdict.reason}"] += 1
            retry = [("Retry-After", str(verdict.retry_after))]
            self._reject_statelessly(request, 503, "Too many requests", source, extra=retry)
        else:
            self.stats["dropped_blocked_source"] += 1
            if verdict.reason == "blocking":
                self.stats["sources_blocked"] += 1
        return True

    def _stamp_via(self, request: Request, source: Peer) -> Peer:
        """Add received/rport to the top Via and work out where responses go
        (RFC 3261 18.2.1 and 18.2.2, RFC 3581 4)."""
        vias = request.headers.get_list("Via")
        top = Via.parse(vias[0])
        top.params["received"] = source.host
        if "rport" in top.params:
            top.params["rport"] = str(source.port)
        request.headers.set("Via", ", ".join([str(top), *vias[1:]]))
        if source.reliable:
            return source  # responses go back over the same connection
        port = source.port if "rport" in top.params else top.sent_by[1]
        return Peer("udp", source.host, port)

    def _receive_response(self, response: Response, source: Peer) -> None:
        self.stats[f"in.{response.status}"] += 1
        problem = response_problem(response)
        if problem:
            self.stats["malformed"] += 1
            log.info("dropping bad sip response", peer=source.host, reason=problem)
            return
        log.debug("sip in", status=response.status, sip_call_id=response.call_id, peer=source.host)
        if not self.layer.handle_response(response, self._now()):
            # E.g. a 2xx retransmitted after our INVITE transaction ended: the dialog
            # layer still owes it an ACK (RFC 3261 13.2.2.4).
            self.stats["stray_responses"] += 1
            if self.handler is not None:
                self.handler.on_stray_response(response, source)

    def _reject_statelessly(
        self,
        request: Request,
        status: int,
        reason: str,
        source: Peer,
        *,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """Answer a request we could not accept, when it says where to (has a Via)."""
        try:
            top = request.top_via
        except SipSyntaxError:
            return
        port = source.port if (source.reliable or "rport" in top.params) else top.sent_by[1]
        reason = "".join(ch for ch in reason if ch.isprintable())[:120]
        response = make_response(request, status, reason, extra=extra)
        self.send(response, Peer(source.transport, source.host, port))

    # -- output ------------------------------------------------------------

    def send(
        self, message: Request | Response, peer: Peer, transaction: Transaction | None = None
    ) -> None:
        """Send a message; a TCP or TLS connection is opened when there is none to
        ``peer``, and a failure to connect is reported to ``transaction``."""
        data = message.encode()
        if isinstance(message, Request):
            self.stats[f"out.{message.method}"] += 1
        else:
            self.stats[f"out.{message.status}"] += 1
        if peer.transport == "udp":
            protocol = self._udp_for(peer.host)
            if protocol and protocol.transport:
                protocol.transport.sendto(data, (peer.host, peer.port))
            return
        conn = self.connections.get(peer)
        if conn is not None and not conn.closing:
            conn.write(data)
        else:  # none, or one on its way out: a message written there would be lost
            task = asyncio.get_running_loop().create_task(
                self._connect_and_send(peer, data, transaction)
            )
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _udp_for(self, host: str) -> _Udp | None:
        if not self._udp:
            return None
        return next(iter(self._udp.values()))

    async def _connect_and_send(
        self, peer: Peer, data: bytes, transaction: Transaction | None
    ) -> None:
        loop = asyncio.get_running_loop()
        policy = self._client_policy(peer) if peer.transport == "tls" else None
        try:
            if policy is None:
                await loop.create_connection(lambda: _TcpConnection(self), peer.host, peer.port)
            else:
                transport, connection = await loop.create_connection(
                    lambda: _TcpConnection(self, "tls"),
                    peer.host,
                    peer.port,
                    ssl=policy.context,
                    server_hostname=policy.server_hostname or peer.host,
                    ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
                )
                presented = transport.get_extra_info("ssl_object")
                if not policy.accepts(presented.getpeercert(binary_form=True)):
                    connection.drop()
                    raise ssl.SSLError(f"{peer.host}:{peer.port}: certificate fingerprint mismatch")
        except OSError as exc:
            log.info(
                f"{peer.transport} connect failed", peer=f"{peer.host}:{peer.port}", error=str(exc)
            )
            if transaction is not None:
                self.layer.handle_transport_error(transaction, self._now())
                self._flush()
            return
        conn = self.connections.get(peer)
        if conn is not None:
            conn.write(data)

    def _client_policy(self, peer: Peer) -> ClientPolicy:
        """A trunk's own policy, else the certificate checked against the CA file
        (or the system's CAs) for the address we connect to."""
        policy = self.tls_policies.get((peer.host, peer.port))
        if policy is None:
            policy = client_policy(peer.host, ca_file=self.tls_ca_file)
            self.tls_policies[(peer.host, peer.port)] = policy
        return policy

    def respond(self, tx: ServerTransaction, response: Response) -> None:
        """Send a response within a server transaction."""
        log.debug("sip out", status=response.status, sip_call_id=response.call_id)
        self.layer.send_response(tx, response, self._now())
        self._flush()

    async def request(
        self,
        request: Request,
        peer: Peer,
        *,
        on_response: Callable[[Response], None] | None = None,
    ) -> Response | None:
        """Send a request in a new client transaction and wait for its final
        response; None when it timed out or could not be sent. ``on_response``
        sees every response the transaction passes up: provisionals, the final
        one, and for INVITE each retransmitted 2xx (to be acknowledged again)."""
        assert self._loop is not None
        peer = self._congestion_safe(request, peer)
        tx = self.layer.send_request(request, peer, self._now(), reliable=peer.reliable)
        future: asyncio.Future[Response | None] = self._loop.create_future()
        self._pending[tx] = future
        if on_response:
            self._watchers[tx] = on_response
        self._flush()
        try:
            return await future
        finally:
            self._pending.pop(tx, None)
            if tx.terminated:
                self._watchers.pop(tx, None)

    def _congestion_safe(self, request: Request, peer: Peer) -> Peer:
        """RFC 3261 18.1.1: a request larger than 1300 bytes (the path MTU being
        unknown) goes over TCP when we have it, its Via rewritten to say so."""
        if peer.transport != "udp" or len(request.encode()) <= UDP_SIZE_LIMIT:
            return peer
        if not any(address.transport == "tcp" for address in self.bound):
            return peer
        top = Via.parse(request.headers.get_list("Via")[0])
        rest = request.headers.get_list("Via")[1:]
        top.transport = "TCP"
        top.port = self.local_address("tcp")[1]
        request.headers.set("Via", ", ".join([str(top), *rest]))
        return Peer("tcp", peer.host, peer.port)

    def _flush(self) -> None:
        """Send what the layer queued, deliver its events, re-arm the timer."""
        for item in self.layer.poll_transmit():
            assert isinstance(item.peer, Peer)
            self.send(item.message, item.peer, item.transaction)
        for event in self.layer.poll_events():
            self._deliver(event)
        self._arm()

    def _deliver(self, event: object) -> None:
        if isinstance(event, ResponseReceived):
            tx = event.transaction
            if isinstance(tx, ClientTransaction):
                watcher = self._watchers.get(tx)
                if watcher is not None:
                    watcher(event.response)
                future = self._pending.get(tx)
                if event.response.status >= 200 and future is not None and not future.done():
                    future.set_result(event.response)
        elif isinstance(event, TransactionTerminated):
            if isinstance(event.transaction, ClientTransaction):
                self._watchers.pop(event.transaction, None)
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            failed = event.transaction
            if isinstance(failed, ClientTransaction):
                watcher = self._watchers.get(failed)
                if watcher is not None and isinstance(event, TransportFailed):
                    # RFC 3261 8.1.3.1: a transport error counts as a 503 from the peer.
                    watcher(make_response(failed.request, 503, "Service Unavailable"))
                future = self._pending.get(failed)
                if future is not None and not future.done():
                    future.set_result(None)
            elif isinstance(event, TransactionTimedOut) and self.handler is not None:
                assert isinstance(failed, ServerTransaction)
                self.handler.on_server_timeout(failed, event.timer)

    def _arm(self) -> None:
        deadline = self.layer.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = None
        self._timer_at = None
        # The loop may wake a hair early; never present the layer a time before its deadline.
        self.layer.handle_timeouts(max(self._now(), due or 0.0))
        self._flush()


@lru_cache(maxsize=256)
def local_address_for(remote_host: str) -> str:
    """The local IP address the kernel would use to reach ``remote_host``: what
    goes into SDP and Contact when we listen on a wildcard address."""
    family = socket.AF_INET6 if ":" in remote_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((remote_host, 9))  # no packet is sent for a UDP connect
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"
