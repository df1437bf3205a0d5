"""SRTP and SRTCP (RFC 3711) for one leg, through libsrtp (the pylibsrtp binding).

:class:`SrtpChannel` holds the two libsrtp sessions of a leg: the inbound
one (the peer's key) and the outbound one (ours). :class:`SecureTransport`
stands in for the leg's socket so that everything the leg sends, whichever
path it takes (the relay's fast path, playback, DTMF, RTCP reports), is
protected on its way out; the leg unprotects what arrives before looking at
it. RTCP is told from RTP by its packet type (RFC 5761 4), which stays in
clear in SRTCP's header.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

from mediaserver.sip.sdes import SrtpKeys

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}
_RTCP_TYPES = range(192, 224)  # RFC 5761 4: 200-204 are RTCP; the range 192-223 is kept apart


def _is_rtcp(data: bytes) -> bool:
    return len(data) > 1 and data[1] in _RTCP_TYPES


class SrtpChannel:
    """The SRTP state of one leg: ``suite`` with our key (``local``) and theirs."""

    def __init__(self, suite: str, *, local: bytes, remote: bytes) -> None:
        profile = _PROFILES[suite]
        self.suite = suite
        self.local = local
        self.remote = remote
        self._out = Session(
            Policy(key=local, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        )
        self._in = Session(
            Policy(key=remote, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
        )
        self.refused = 0  # packets that failed authentication, replays, garbage

    def protect(self, data: bytes) -> bytes | None:
        try:
            return self._out.protect_rtcp(data) if _is_rtcp(data) else self._out.protect(data)
        except SrtpError:
            return None  # not an RTP packet at all: nothing is sent in clear

    def unprotect(self, data: bytes) -> bytes | None:
        """The plain packet, or None when it is not one of the peer's (counted)."""
        try:
            return self._in.unprotect_rtcp(data) if _is_rtcp(data) else self._in.unprotect(data)
        except SrtpError:
            self.refused += 1
            return None

    def same_keys(self, other: SrtpChannel) -> bool:
        return (other.suite, other.local, other.remote) == (self.suite, self.local, self.remote)


class _OverSocket(asyncio.DatagramTransport):
    """Stands in for a leg's socket, changing what ``sendto`` does to each packet."""

    def __init__(self, inner: asyncio.DatagramTransport) -> None:
        super().__init__()
        self.inner = inner

    def close(self) -> None:
        self.inner.close()

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)


class SecureTransport(_OverSocket):
    """A datagram transport whose ``sendto`` protects each packet first."""

    def __init__(self, inner: asyncio.DatagramTransport, channel: SrtpChannel) -> None:
        super().__init__(inner)
        self.channel = channel

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        protected = self.channel.protect(bytes(data))
        if protected is not None:
            self.inner.sendto(protected, addr)


class SilentTransport(_OverSocket):
    """Sends nothing, while a leg's keys are being agreed (DTLS-SRTP): media is
    never sent in clear on a call that asked for SRTP."""

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        return None


def srtp_channel(keys: SrtpKeys | None) -> SrtpChannel | None:
    """The channel for keys agreed in SDP (None: plain RTP)."""
    return None if keys is None else SrtpChannel(keys.suite, local=keys.local, remote=keys.remote)


def srtp_keys(channel: SrtpChannel | None) -> SrtpKeys | None:
    """The keys a channel uses, for a re-offer to keep them."""
    if channel is None:
        return None
    return SrtpKeys(channel.suite, local=channel.local, remote=channel.remote)
