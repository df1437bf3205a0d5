"""Media forking: a copy of every RTP packet of a leg, as received and as sent, to UDP targets.

This is Telnyx's ``fork_start`` (and the scenarios' ``fork@v1``). A fork has
up to three destinations, each ``udp:IP:PORT`` or ``IP:PORT``:

- ``rx``: each RTP packet the peer sends us, once the leg's source latching
  (:mod:`mediaserver.media.latching`) has accepted it: the datagram exactly as
  it arrived (header and payload), audio and telephone-events alike;
- ``tx``: each RTP packet the peer receives from us, exactly as sent: our
  prompts and silence, a conference's mix, an echo, and in a bridge
  (``dial@v1``, queues) the other party's audio relayed to this leg;
- ``target``: both directions to one address, each packet behind the 24-byte
  header of Telnyx's Simple RTP Encapsulation Protocol (STREP, below), which
  tells the direction, the leg and the call.

``rx`` and ``tx`` copies are plain RTP, so any RTP receiver decodes them.

**The socket.** Copies leave from the leg's own RTP socket: no port to
allocate, nothing to bind or await at ``fork_start``, and the source port
names the call. Anything a fork receiver sends back to that port is a
stranger's packet to the leg and is refused by its latching like any other.

**Addresses.** IP literals only (IPv4, or IPv6 in brackets), of the same
family as the RTP socket: a host name would need a lookup in the media path.
Port 0, the unspecified address (``0.0.0.0``, ``::``), broadcast and
multicast are refused: a fork copies a call's private audio to one receiver,
never to a whole network segment. Any other address is allowed; only people
who may run scenarios or call the API can start a fork.

**Cost.** Nothing when no fork is active: the relay's fast path in
:mod:`mediaserver.media.leg` is not taken while the leg, or the leg it
relays to, is forked (as while decoding), so its per-packet code has no check
at all; the ordinary receive and send paths check one attribute.

**STREP** (Telnyx ``fork_start``, version 1), 24 bytes before the RTP packet::

    byte 0     0b11 (magic), version 0001, L (0: A leg, 1: B leg), D (0: received, 1: sent)
    byte 1     header length: 24
    bytes 2-7  reserved, zero
    bytes 8-23 the call leg id, 16 bytes: a UUID's bytes, or a shorter id's
               UTF-8 bytes padded with NULs (``$call.id`` for fork@v1)
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

Address = tuple[str, int]
SendTo = Callable[[bytes, Address], None]

STREAM_TYPES = ("raw", "decrypted")
STREP_VERSION = 1
STREP_HEADER_SIZE = 24
_STREP_MAGIC = 0b11 << 6  # Telnyx STREP: tells forked media from RTP (0b10) at a glance
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):)?(?P<host>\[[^\]]*\]|[^:\[\]]+):(?P<port>[^:]*)"
)


class ForkError(ValueError):
    """A fork request the server cannot follow; the message starts with the field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class ForkTargets:
    """Where a fork sends its copies (None: not wanted)."""

    rx: Address | None = None
    tx: Address | None = None
    target: Address | None = None
    stream_type: str = "raw"

    def addresses(self) -> list[tuple[str, Address]]:
        """The destinations given, with the field that named each."""
        named = (("rx", self.rx), ("tx", self.tx), ("target", self.target))
        return [(field, address) for field, address in named if address is not None]

    def describe(self) -> dict[str, str | None]:
        """The destinations as ``udp:IP:PORT`` strings, for logs."""

        def text(address: Address | None) -> str | None:
            if address is None:
                return None
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            return f"udp:{host}:{address[1]}"

        return {"rx": text(self.rx), "tx": text(self.tx), "target": text(self.target)}


def parse_address(field: str, text: str) -> Address:
    """``udp:IP:PORT`` or ``IP:PORT`` (``[IPv6]`` in brackets) -> ``(ip, port)``;
    ForkError naming ``field`` otherwise."""
    example = "such as udp:192.0.2.1:9000, 192.0.2.1:9000 or udp:[2001:db8::1]:9000"
    m = _ADDRESS.fullmatch(text.strip())
    if m is None:
        raise ForkError(field, f"expected udp:IP:PORT or IP:PORT ({example}), got {text!r}")
    scheme, host, port_text = m.group("scheme"), m.group("host"), m.group("port")
    if scheme is not None and scheme.lower() != "udp":
        raise ForkError(field, f"{scheme!r} is not supported: forked media goes over udp")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ForkError(field, f"the port must be a number 1-65535, got {port_text!r} in {text!r}")
    bare = host[1:-1] if host.startswith("[") else host
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        problem = f"{bare!r} is not an IP address ({example}); host names are not looked up"
        raise ForkError(field, problem) from None
    kind = _unicast_problem(ip)
    if kind is not None:
        raise ForkError(field, f"{ip} is {kind} address; a fork goes to one receiver")
    return str(ip), int(port_text)


def _unicast_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` cannot be one receiver's address (None when it can)."""
    if ip.is_multicast:
        return "a multicast"
    if ip.is_unspecified:
        return "the unspecified"
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast"
    return None


def fork_targets(
    *,
    rx: str | None = None,
    tx: str | None = None,
    target: str | None = None,
    stream_type: str = "raw",
) -> ForkTargets:
    """A fork request's fields, checked (Telnyx ``StartForkingRequest``): either
    ``target``, or ``rx`` and/or ``tx``; empty strings count as not given."""
    if stream_type not in STREAM_TYPES:
        raise ForkError("stream_type", f"expected raw or decrypted, got {stream_type!r}")
    given = {name: value for name, value in (("rx", rx), ("tx", tx), ("target", target)) if value}
    if "target" in given and len(given) > 1:
        raise ForkError("target", "give either target, or rx and tx, not both")
    if not given:
        raise ForkError("target", "give target (both directions), or rx and/or tx")
    if stream_type == "decrypted" and not ("rx" in given and "tx" in given):
        # Telnyx: "rx and tx are required fields if decrypted selected".
        raise ForkError("stream_type", "decrypted needs both rx and tx (and no target)")
    parsed = {name: parse_address(name, value) for name, value in given.items()}
    # Media is never encrypted here (no SRTP), so raw and decrypted copy the same packets.
    return ForkTargets(parsed.get("rx"), parsed.get("tx"), parsed.get("target"), stream_type)


def check_family(targets: ForkTargets, ipv6_socket: bool) -> None:
    """ForkError when a destination's address family is not the RTP socket's."""
    for field, (host, _) in targets.addresses():
        if (":" in host) != ipv6_socket:
            have, want = ("IPv6", "IPv4") if ":" in host else ("IPv4", "IPv6")
            raise ForkError(
                field, f"{host} is {have} but the call's RTP socket is {want} (sip.listen's host)"
            )


def leg_id_bytes(call_leg_id: str) -> bytes:
    """The 16 bytes STREP carries: a UUID's own bytes, else the id's UTF-8 padded with NULs."""
    try:
        return uuid.UUID(call_leg_id).bytes
    except ValueError:
        raw = call_leg_id.encode()
        if len(raw) > 16:
            raise ValueError(f"call leg id {call_leg_id!r} is over 16 bytes") from None
        return raw.ljust(16, b"\0")


def strep_header(*, b_leg: bool, sent: bool, call_leg_id: bytes) -> bytes:
    """The 24-byte STREP header (module docstring) for one direction of one leg."""
    if len(call_leg_id) != 16:
        raise ValueError("the STREP call leg id is 16 bytes")
    first = _STREP_MAGIC | STREP_VERSION << 2 | int(b_leg) << 1 | int(sent)
    return bytes((first, STREP_HEADER_SIZE)) + bytes(6) + call_leg_id


class MediaFork:
    """One active fork of a leg: the leg hands it each packet it receives (after
    latching) and each packet it sends; copies go out through ``send_to``."""

    def __init__(
        self, targets: ForkTargets, send_to: SendTo, *, call_leg_id: bytes, b_leg: bool = False
    ) -> None:
        self.targets = targets
        self._send_to = send_to
        self._rx = targets.rx
        self._tx = targets.tx
        self._target = targets.target
        self._rx_header = strep_header(b_leg=b_leg, sent=False, call_leg_id=call_leg_id)
        self._tx_header = strep_header(b_leg=b_leg, sent=True, call_leg_id=call_leg_id)
        self.received_copies = 0  # packets copied, per direction (the leg's forked_* counters)
        self.sent_copies = 0
        self.stop_reason: str | None = None  # why it stopped (stopped, replaced, hangup)

    def received(self, packet: bytes) -> None:
        """An RTP packet from the peer, accepted by the leg's latching."""
        if self._rx is not None:
            self._send_to(packet, self._rx)
        elif self._target is not None:
            self._send_to(self._rx_header + packet, self._target)
        else:
            return
        self.received_copies += 1

    def sent(self, packet: bytes) -> None:
        """An RTP packet we sent the peer."""
        if self._tx is not None:
            self._send_to(packet, self._tx)
        elif self._target is not None:
            self._send_to(self._tx_header + packet, self._target)
        else:
            return
        self.sent_copies += 1
