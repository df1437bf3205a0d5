"""DTLS-SRTP (RFC 5764, RFC 5763): SRTP keys agreed by a DTLS handshake on the
media path itself, the certificates vouched for by fingerprints in SDP.

:class:`DtlsHandshake` is one DTLS association, sans-I/O: datagrams from the
peer go in (:meth:`DtlsHandshake.receive`), datagrams to send come out, and
once the handshake is over, :meth:`DtlsHandshake.keys` gives the SRTP suite
and the two master keys exported from it (RFC 5764 4.2). The peer's
certificate is accepted during the handshake and checked afterwards against
the SDP fingerprint (RFC 8122 5): a self-signed certificate is the norm here,
the fingerprint carried by the signalling is what makes it trusted.

OpenSSL does the protocol, through pyOpenSSL (the :mod:`ssl` module has no
DTLS). :class:`DtlsIdentity` is the server's certificate for DTLS: made once
per process, its fingerprint written in every SDP that offers DTLS.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

# RFC 5764 4.1.2: the protection profiles OpenSSL names, and our SDES suite names for them.
_PROFILES = {
    b"SRTP_AES128_CM_SHA1_80": ("AES_CM_128_HMAC_SHA1_80", 16, 14),
    b"SRTP_AES128_CM_SHA1_32": ("AES_CM_128_HMAC_SHA1_32", 16, 14),
    b"SRTP_AEAD_AES_128_GCM": ("AEAD_AES_128_GCM", 16, 12),
}
_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"  # RFC 5764 4.2
_MAX_DATAGRAM = 1500


class DtlsError(Exception):
    """The handshake failed, or the peer's certificate is not the one its SDP named."""


@dataclass(frozen=True)
class DtlsIdentity:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    fingerprint: str
    """``sha-256 AB:CD:...``: the value of our ``a=fingerprint`` (RFC 8122 5)."""


@lru_cache(maxsize=1)
def dtls_identity() -> DtlsIdentity:
    """The process's DTLS certificate (self-signed, ECDSA P-256, made on first use)."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mediaserver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(private, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return DtlsIdentity(cert, private, f"sha-256 {_colons(hashlib.sha256(der).hexdigest())}")


def _colons(hexdigest: str) -> str:
    digits = hexdigest.upper()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def digest_of(fingerprint: str) -> str:
    """The hex digits of an ``a=fingerprint`` value (``sha-256 AB:CD`` -> ``abcd``)."""
    return fingerprint.partition(" ")[2].replace(":", "").strip().lower()


def is_dtls(data: bytes) -> bool:
    """RFC 7983 7: a first byte of 20 to 63 is DTLS on a multiplexed media port."""
    return bool(data) and 19 < data[0] < 64


class DtlsHandshake:
    """One DTLS association: ``active`` is the client (RFC 5763 5, ``a=setup``)."""

    def __init__(self, identity: DtlsIdentity, *, active: bool, peer_fingerprint: str) -> None:
        algorithm = peer_fingerprint.partition(" ")[0]
        self.peer_algorithm = algorithm.lower().replace("-", "")  # sha-256 is hashlib's sha256
        self.peer_digest = digest_of(peer_fingerprint)
        if self.peer_algorithm not in hashlib.algorithms_available:
            raise DtlsError(f"fingerprint hash {algorithm!r} is not known")
        context = SSL.Context(SSL.DTLS_METHOD)
        context.use_certificate(identity.certificate)
        context.use_privatekey(identity.key)
        context.set_tlsext_use_srtp(b":".join(_PROFILES))
        # The chain is not checked: the fingerprint from the signalling is (see done()).
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
        self._connection = SSL.Connection(context, None)
        if active:
            self._connection.set_connect_state()
        else:
            self._connection.set_accept_state()
        self.active = active
        self.finished = False
        self.failed: str | None = None

    def start(self) -> list[bytes]:
        """The first flight (a ClientHello when we are active; nothing otherwise)."""
        return self._step() if self.active else []

    def receive(self, datagram: bytes) -> list[bytes]:
        """A DTLS record from the peer; the datagrams to send back."""
        if self.finished or self.failed:
            return []
        self._connection.bio_write(datagram)
        return self._step()

    def on_timeout(self) -> list[bytes]:
        """Retransmit a lost flight (RFC 6347 4.2.4) when OpenSSL says it is time."""
        if self.finished or self.failed:
            return []
        try:
            self._connection.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self.failed = str(exc)
        return self._pending()

    def next_timeout(self) -> float | None:
        """Seconds until :meth:`on_timeout` is due; None when nothing is in flight."""
        if self.finished or self.failed:
            return None
        timeout: float | None = self._connection.DTLSv1_get_timeout()
        return timeout

    def _step(self) -> list[bytes]:
        try:
            self._connection.do_handshake()
            self.finished = True
        except SSL.WantReadError:
            pass
        except SSL.Error as exc:
            self.failed = f"DTLS handshake failed: {exc}"
        return self._pending()

    def _pending(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                out.append(self._connection.bio_read(_MAX_DATAGRAM))
            except SSL.WantReadError:
                return out

    def keys(self) -> tuple[str, bytes, bytes]:
        """After the handshake: the suite, our master key+salt and the peer's (RFC
        5764 4.2: client key, server key, client salt, server salt). DtlsError
        when the peer's certificate is not the one its SDP fingerprint names."""
        certificate = self._connection.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            raise DtlsError("the peer sent no certificate")
        der = certificate.public_bytes(serialization.Encoding.DER)
        if hashlib.new(self.peer_algorithm, der).hexdigest() != self.peer_digest:
            raise DtlsError("the peer's certificate does not match its SDP fingerprint")
        selected = self._connection.get_selected_srtp_profile()
        if selected not in _PROFILES:
            raise DtlsError(f"no SRTP profile agreed ({selected!r})")
        suite, key_length, salt_length = _PROFILES[selected]
        material = self._connection.export_keying_material(
            _EXPORTER_LABEL, 2 * (key_length + salt_length)
        )
        client_key = material[:key_length]
        server_key = material[key_length : 2 * key_length]
        client_salt = material[2 * key_length : 2 * key_length + salt_length]
        server_salt = material[2 * key_length + salt_length :]
        client, server = client_key + client_salt, server_key + server_salt
        return (suite, client, server) if self.active else (suite, server, client)


class DtlsSession:
    """A :class:`DtlsHandshake` on a leg's socket: sends its flights, retransmits
    on OpenSSL's timer, and hands the keys over once the handshake is done
    (``on_keys(suite, local, remote)``) or says why it failed (``on_failure``)."""

    def __init__(
        self,
        handshake: DtlsHandshake,
        send: Callable[[bytes], None],
        on_keys: Callable[[str, bytes, bytes], None],
        on_failure: Callable[[str], None],
    ) -> None:
        self.handshake = handshake
        self._send = send
        self._on_keys = on_keys
        self._on_failure = on_failure
        self._timer: asyncio.TimerHandle | None = None
        self.done = False

    def start(self) -> None:
        self._flush(self.handshake.start())

    def receive(self, datagram: bytes) -> None:
        self._flush(self.handshake.receive(datagram))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self, datagrams: list[bytes]) -> None:
        for datagram in datagrams:
            self._send(datagram)
        if self.done:
            return
        handshake = self.handshake
        if handshake.failed:
            self.done = True
            self.close()
            self._on_failure(handshake.failed)
        elif handshake.finished:
            self.done = True
            self.close()
            try:
                suite, local, remote = handshake.keys()
            except DtlsError as exc:
                self._on_failure(str(exc))
                return
            self._on_keys(suite, local, remote)
        else:
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delay = self.handshake.next_timeout()
        if delay is not None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._flush(self.handshake.on_timeout())
