"""SIP over TLS (RFC 3261 26.2, RFC 5630): certificates and the TLS contexts.

The server side presents one certificate (``sip.tls.certificate`` and
``key``); when none is configured, a self-signed one is made on first start
in the data folder and kept, so softphones that pin it keep trusting it
across restarts. The client side, towards trunks, verifies the peer's
certificate against a CA file or the system store, and the host name of the
trunk's URI (RFC 5922 7.2); a trunk may instead pin the SHA-256 fingerprint
of its certificate (for a carrier's self-signed one), in which case the
chain is not checked but the fingerprint must match.

The cryptography package makes the certificate; Python's :mod:`ssl` (OpenSSL)
does the rest.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SELF_SIGNED_DAYS = 3650


class TlsConfigError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ClientPolicy:
    """How to check the server at the other end of a connection we open."""

    context: ssl.SSLContext
    server_hostname: str | None
    """Checked against the certificate (None when only a fingerprint is pinned)."""
    fingerprint: str | None = None
    """Lower-case hex SHA-256 of the peer's certificate (DER) that must match."""

    def accepts(self, certificate_der: bytes | None) -> bool:
        """The pin, checked after the handshake (the chain was checked during it)."""
        if self.fingerprint is None:
            return True
        return certificate_der is not None and fingerprint(certificate_der) == self.fingerprint


def fingerprint(certificate_der: bytes) -> str:
    return hashlib.sha256(certificate_der).hexdigest()


def file_fingerprint(certificate: Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate file, as ``AB:CD:...``."""
    pem = certificate.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    digest = fingerprint(der).upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure_self_signed(folder: Path, hosts: list[str]) -> tuple[Path, Path, bool]:
    """The self-signed certificate and key kept in ``folder``, made when absent
    (True third); its names are ``hosts`` and this machine's name."""
    certificate, key = folder / "sip-tls.crt", folder / "sip-tls.key"
    if certificate.exists() and key.exists():
        return certificate, key, False
    folder.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", socket.gethostname()]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
        else:
            # mbedTLS 2.x (Linphone's belle-sip on Debian 12) matches a host only
            # against dNSName entries, never iPAddress ones (RFC 6125 6.2.1 wants
            # the latter): name the address both ways so a phone dialling the
            # server by IP accepts it. OpenSSL ignores a dNSName for an IP host.
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mediaserver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.touch(mode=0o600)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certificate, key, True


def server_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """What the TLS listeners present. Clients are not asked for a certificate:
    SIP digest authenticates users (RFC 3261 26.3.2.2 allows either)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{certificate} / {key}: cannot load ({_why(exc)})") from None
    return context


def client_policy(
    server_hostname: str,
    *,
    ca_file: Path | None = None,
    verify: bool = True,
    pinned: str | None = None,
) -> ClientPolicy:
    """How to check a trunk: its ``server_hostname`` against ``ca_file`` (the
    system store when None); or, with ``pinned``, the certificate's fingerprint
    alone; or nothing when ``verify`` is off (logged by the caller)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pinned is not None or not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return ClientPolicy(context, None, pinned)
    try:
        if ca_file is not None:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{ca_file}: cannot load CA certificates ({_why(exc)})") from None
    return ClientPolicy(context, server_hostname)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def listener_context(
    certificate: Path | None, key: Path | None, data_dir: Path, hosts: list[str]
) -> tuple[ssl.SSLContext, Path, bool]:
    """The context ``tls:`` listeners present: the configured pair, else the
    self-signed one of the data folder (made now when absent: True third)."""
    created = False
    if certificate is None or key is None:
        certificate, key, created = ensure_self_signed(data_dir / "tls", hosts)
    return server_context(certificate, key), certificate, created
