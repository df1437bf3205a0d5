"""SIP trunks: the carriers calls go out through, their registrations, keepalives.

A :class:`Trunk` is a configured carrier resolved to a transport address. It
builds the Request-URI for a number (``sip:NUMBER@carrier``), keeps the
digest state that answers its 401/407 challenges (RFC 3261 22.2, RFC 2617,
RFC 8760), and, when ``register: true``, a :class:`Registration` that sends
REGISTER, refreshes it before it expires (RFC 3261 10.2.4) and backs off on
failure. Its state shows in the logs and in :attr:`Registration.state`. A
:class:`Keepalive` sends OPTIONS every 30 s and logs when the carrier stops or
starts answering. :class:`Trunks` is the set the server runs: each trunk
resolved at start (its address then admits its calls), kept alive and
registered when configured, and stopped at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable

from mediaserver.config import TrunkConfig
from mediaserver.log import get_logger
from mediaserver.sip.access import AccessPolicy
from mediaserver.sip.auth_client import ClientAuthState
from mediaserver.sip.message import Headers, Request, Response, new_call_id, new_tag
from mediaserver.sip.tls import TlsConfigError, client_policy
from mediaserver.sip.transport import Peer, SipEndpoint, local_address_for
from mediaserver.sip.uac import TargetError, resolve_target
from mediaserver.sip.uri import NameAddress, SipUri, contact_transport

log = get_logger("trunk")

REGISTER_EXPIRES = 3600
REFRESH_MARGIN = 0.8  # refresh at 80% of the granted time
RETRY_DELAYS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Trunk:
    def __init__(self, config: TrunkConfig) -> None:
        self.config = config
        self.name = config.name
        self.uri = SipUri.parse(config.uri)
        self.peer: Peer | None = None
        self.auth = (
            ClientAuthState(config.username, config.password or "")
            if config.username is not None
            else None
        )
        self.registration: Registration | None = None
        self.keepalive: Keepalive | None = None

    async def resolve(self) -> Peer:
        self.peer = await resolve_target(self.uri)
        return self.peer

    def request_uri(self, number: str) -> SipUri:
        """Where a call to ``number`` goes: the number at the carrier."""
        return SipUri(
            host=self.uri.host,
            user=number,
            port=self.uri.port,
            scheme=self.uri.scheme,
            params={k: v for k, v in self.uri.params.items() if k == "transport"},  # routing only
        )

    @property
    def from_user(self) -> str | None:
        return self.config.from_user or self.config.username


class Registration:
    """Keeps a trunk registered (RFC 3261 10.2): REGISTER, refresh, back off."""

    def __init__(
        self,
        trunk: Trunk,
        *,
        endpoint: SipEndpoint,
        local_host: str,
        contact: str,
        user_agent: str,
    ) -> None:
        self.trunk = trunk
        self.endpoint = endpoint
        self.local_host = local_host
        self.contact = contact
        self.user_agent = user_agent
        self.state = "idle"  # idle, registering, registered, failed
        self.expires_at: float | None = None
        self.last_status: int | None = None
        self._call_id = new_call_id(trunk.uri.host)
        self._from_tag = new_tag()
        self._cseq = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keep_registered())

    async def stop(self) -> None:
        """Stop refreshing and unregister (Expires: 0) when registered."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.state == "registered":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._register(0), 5.0)

    async def _keep_registered(self) -> None:
        failures = 0
        while True:
            granted = await self._register(REGISTER_EXPIRES)
            if granted is not None:
                failures = 0
                delay = max(granted * REFRESH_MARGIN, 1.0)
            else:
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                delay *= random.uniform(0.8, 1.2)  # spread retries of many servers
                failures += 1
                log.info("trunk registration will retry", trunk=self.trunk.name, in_s=round(delay))
            await asyncio.sleep(delay)

    async def _register(self, expires: int) -> int | None:
        """One REGISTER (answering a challenge once); the granted seconds, or None."""
        trunk = self.trunk
        peer = trunk.peer or await trunk.resolve()
        self.state = "registering" if expires else self.state
        for _ in range(2):
            request = self._build(expires, peer)
            if trunk.auth is not None:
                trunk.auth.authorize(request)
            response = await self.endpoint.request(request, peer)
            self.last_status = response.status if response is not None else None
            if response is None:
                break
            if response.status in (401, 407) and trunk.auth is not None:
                if trunk.auth.handle_response(request, response):
                    continue  # RFC 3261 22.2: resend with credentials
                break
            if 200 <= response.status < 300:
                granted = _granted(response, expires)
                if expires == 0:
                    self.state = "idle"
                    log.info("trunk unregistered", trunk=trunk.name)
                    return 0
                self.state = "registered"
                self.expires_at = time.time() + granted
                log.info("trunk registered", trunk=trunk.name, expires=granted)
                return granted
            break
        self.state = "failed"
        log.warning("trunk registration failed", trunk=trunk.name, status=self.last_status)
        return None

    def _build(self, expires: int, peer: Peer) -> Request:
        trunk = self.trunk
        self._cseq += 1
        aor = SipUri(host=trunk.uri.host, user=trunk.config.username, port=trunk.uri.port)
        transport = {k: v for k, v in trunk.uri.params.items() if k == "transport"}
        registrar = SipUri(host=trunk.uri.host, port=trunk.uri.port, params=transport)
        headers = Headers()
        headers.add("Via", str(self.endpoint.new_via(peer.transport, self.local_host)))
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{NameAddress(uri=aor)};tag={self._from_tag}")
        headers.add("To", str(NameAddress(uri=aor)))
        # RFC 3261 10.2.4: refreshes keep the Call-ID and raise the CSeq.
        headers.add("Call-ID", self._call_id)
        headers.add("CSeq", f"{self._cseq} REGISTER")
        headers.add("Contact", self.contact)
        headers.add("Expires", str(expires))
        headers.add("User-Agent", self.user_agent)
        return Request(method="REGISTER", uri=str(registrar), headers=headers)

    def snapshot(self) -> dict[str, object]:
        return {
            "trunk": self.trunk.name,
            "state": self.state,
            "status": self.last_status,
            "expires_in": round(self.expires_at - time.time()) if self.expires_at else None,
        }


def _granted(response: Response, asked: int) -> int:
    """The registration time the registrar granted (RFC 3261 10.2.4): the expires
    of our Contact in the 200, else its Expires header, else what we asked."""
    for value in response.headers.get_list("Contact"):
        with contextlib.suppress(ValueError):
            expires = NameAddress.parse(value).params.get("expires")
            if expires is not None and expires.isdigit():
                return int(expires)
    header = response.headers.get("Expires")
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return asked


KEEPALIVE_INTERVAL = 30.0


class Keepalive:
    """OPTIONS to a trunk every ``interval`` seconds (RFC 3261 11): whether the
    carrier answers. Any response counts as alive (a 403 or 405 still proves the
    carrier is there); no response within the transaction timeout means down.
    State changes are logged; the state shows in :meth:`snapshot`."""

    def __init__(
        self,
        trunk: Trunk,
        *,
        endpoint: SipEndpoint,
        local_host: str,
        user_agent: str,
        interval: float = KEEPALIVE_INTERVAL,
    ) -> None:
        self.trunk = trunk
        self.endpoint = endpoint
        self.local_host = local_host
        self.user_agent = user_agent
        self.interval = interval
        self.state = "unknown"  # unknown, up, down
        self.last_status: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.interval * random.uniform(0.9, 1.1))

    async def probe(self) -> str:
        """Send one OPTIONS; the state it leaves (``up`` or ``down``)."""
        trunk = self.trunk
        peer = trunk.peer or await trunk.resolve()
        target = SipUri(host=trunk.uri.host, port=trunk.uri.port)
        headers = Headers()
        headers.add("Via", str(self.endpoint.new_via(peer.transport, self.local_host)))
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<sip:mediaserver@{self.local_host}>;tag={new_tag()}")
        headers.add("To", f"<{target}>")
        headers.add("Call-ID", new_call_id(self.local_host))
        headers.add("CSeq", "1 OPTIONS")
        headers.add("User-Agent", self.user_agent)
        response = await self.endpoint.request(
            Request(method="OPTIONS", uri=str(target), headers=headers), peer
        )
        self.last_status = response.status if response is not None else None
        state = "up" if response is not None else "down"
        if state != self.state:
            level = log.info if state == "up" else log.warning
            level("trunk " + state, trunk=trunk.name, status=self.last_status)
        self.state = state
        return state

    def snapshot(self) -> dict[str, object]:
        return {"trunk": self.trunk.name, "state": self.state, "status": self.last_status}


class Trunks:
    """The configured trunks, by name, and their start and stop."""

    def __init__(
        self,
        configs: Iterable[TrunkConfig],
        *,
        endpoint: SipEndpoint,
        access: AccessPolicy,
        public_address: str | None,
        user_agent: str,
    ) -> None:
        """``access``: learns each trunk's address; ``public_address``: our host in
        Contact and Via when set (sip.public_address), else the local address that
        reaches the trunk."""
        self.by_name = {config.name: Trunk(config) for config in configs}
        self.endpoint = endpoint
        self.access = access
        self.public_address = public_address
        self.user_agent = user_agent

    async def start(self) -> None:
        """Resolve each trunk (its address admits its calls) and register those
        that ask for it. A trunk that cannot be resolved is logged, not fatal."""
        for trunk in self.by_name.values():
            try:
                peer = await trunk.resolve()
            except TargetError as exc:
                log.warning("trunk unreachable", trunk=trunk.name, reason=str(exc))
                continue
            if peer.transport == "tls" and not self._check_tls(trunk, peer):
                continue
            self.access.trunk_addresses[peer.host] = trunk.name
            if trunk.config.keepalive:
                trunk.keepalive = Keepalive(
                    trunk,
                    endpoint=self.endpoint,
                    local_host=self._contact_host(peer.host),
                    user_agent=self.user_agent,
                    interval=trunk.config.keepalive,
                )
                trunk.keepalive.start()
            if trunk.config.register:
                trunk.registration = Registration(
                    trunk,
                    endpoint=self.endpoint,
                    local_host=self._contact_host(peer.host),
                    contact=self._contact(peer.host, peer.transport),
                    user_agent=self.user_agent,
                )
                trunk.registration.start()

    def _check_tls(self, trunk: Trunk, peer: Peer) -> bool:
        """Tell the endpoint how to check this trunk's certificate: its pinned
        fingerprint, or its URI's host name against its CAs (RFC 5922 7.2)."""
        config = trunk.config
        if not config.tls_verify and config.tls_fingerprint is None:
            log.warning("trunk certificate not checked (tls_verify: false)", trunk=trunk.name)
        try:
            policy = client_policy(
                trunk.uri.host.strip("[]"),
                ca_file=config.tls_ca_file or self.endpoint.tls_ca_file,
                verify=config.tls_verify,
                pinned=config.tls_fingerprint,
            )
        except TlsConfigError as exc:
            log.warning("trunk unusable", trunk=trunk.name, reason=str(exc))
            return False
        self.endpoint.tls_policies[(peer.host, peer.port)] = policy
        return True

    async def stop(self) -> None:
        """Stop the keepalives and registrations."""
        for trunk in self.by_name.values():
            if trunk.keepalive is not None:
                await trunk.keepalive.stop()
            if trunk.registration is not None:
                await trunk.registration.stop()

    def _contact_host(self, remote_host: str) -> str:
        return self.public_address or local_address_for(remote_host)

    def _contact(self, remote_host: str, transport: str) -> str:
        host = self._contact_host(remote_host)
        host = f"[{host}]" if ":" in host else host
        port = self.endpoint.local_address(transport)[1]
        suffix = contact_transport(transport)
        return f"<sip:mediaserver@{host}:{port}{suffix}>"
