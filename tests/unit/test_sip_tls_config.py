"""SIP over TLS settings: ``tls:`` listeners, ``sip.tls`` and the trunks'
``tls_*`` keys (config.py), ``sips:`` URIs, and the certificates and
contexts of mediaserver/sip/tls.py, checked with real handshakes on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from test_config import loads, problems_of

from mediaserver.config import with_overrides
from mediaserver.sip.tls import (
    TlsConfigError,
    client_policy,
    ensure_self_signed,
    file_fingerprint,
    fingerprint,
    listener_context,
    server_context,
)
from mediaserver.sip.uri import SipUri, contact_transport

FINGERPRINT = "AB:" * 31 + "AB"


def test_tls_listeners_certificates_and_trunk_checks_are_read(tmp_path: Path) -> None:
    for name in ("server.crt", "server.key", "ca.pem", "carrier.pem"):
        (tmp_path / name).write_text("x")
    config = loads(
        tmp_path,
        f"""\
sip:
  listen: ["udp:127.0.0.1:5060", "TLS:127.0.0.1:5061"]
  tls: {{certificate: server.crt, key: server.key, ca_file: ca.pem}}
trunks:
  - {{name: a, uri: "sips:sip.example.net", tls_fingerprint: "{FINGERPRINT}"}}
  - {{name: b, uri: "sip:sip.example.net;transport=tls", tls_ca_file: carrier.pem}}
  - {{name: c, uri: "sip:sip.example.net;transport=tls", tls_verify: false}}
""",
    )
    assert [str(a) for a in config.sip.listen] == ["udp:127.0.0.1:5060", "tls:127.0.0.1:5061"]
    assert config.sip.tls.certificate == tmp_path / "server.crt"  # beside the config file
    assert config.sip.tls.key == tmp_path / "server.key"
    assert config.sip.tls.ca_file == tmp_path / "ca.pem"
    a, b, c = config.trunks
    assert a.tls_fingerprint == "ab" * 32 and a.tls_verify
    assert b.tls_ca_file == tmp_path / "carrier.pem" and b.tls_fingerprint is None
    assert not c.tls_verify


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sip:\n  tls: {certificate: nope.crt, key: x.crt}\n",
            "F:2:22: sip.tls.certificate: no file",
        ),
        (
            "sip:\n  tls: {certificate: x.crt}\n",
            "F:2:9: sip.tls: certificate and key go together (or none)",
        ),
        ("sip:\n  tls: {cert: x.crt}\n", "F:2:9: unknown key sip.tls.cert (known: ca_file,"),
        (
            "trunks:\n  - {name: a, uri: 'sips:h', tls_fingerprint: 'ab:cd'}\n",
            "F:2:47: trunks[0].tls_fingerprint: expected a SHA-256 fingerprint (64 hex digits",
        ),
        (
            "trunks:\n  - {name: a, uri: 'sips:h', tls_ca_file: missing.pem}\n",
            "F:2:43: trunks[0].tls_ca_file: no file",
        ),
        (
            "trunks:\n  - {name: a, uri: 'sips:h', tls_verify: maybe}\n",
            "F:2:42: trunks[0].tls_verify:",
        ),
    ],
)
def test_bad_tls_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x.crt").write_text("x")
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_the_sip_port_flag_puts_tls_on_the_next_port(tmp_path: Path) -> None:
    config = loads(tmp_path, 'sip:\n  listen: ["udp:127.0.0.1:5060", "tls:127.0.0.1:5061"]\n')
    moved = with_overrides(config, sip_port=7000)
    assert [str(a) for a in moved.sip.listen] == ["udp:127.0.0.1:7000", "tls:127.0.0.1:7001"]
    anywhere = with_overrides(config, sip_port=0)  # each picks a free port
    assert [a.port for a in anywhere.sip.listen] == [0, 0]


def test_sips_uris_and_transport_tls_go_over_tls() -> None:
    assert SipUri.parse("sips:alice@example.com").transport == "tls"
    assert SipUri.parse("sips:alice@example.com;transport=tcp").transport == "tls"  # RFC 5630
    assert SipUri.parse("sip:alice@example.com;transport=TLS").transport == "tls"
    assert SipUri.parse("sip:alice@example.com").transport == "udp"
    assert [contact_transport(t) for t in ("udp", "tcp", "tls")] == [
        "",
        ";transport=tcp",
        ";transport=tls",
    ]


def test_the_self_signed_pair_is_made_once_and_kept(tmp_path: Path) -> None:
    certificate, key, created = ensure_self_signed(tmp_path / "tls", ["127.0.0.1", "pbx.local"])
    assert created and key.stat().st_mode & 0o077 == 0  # the key is the owner's only
    names = (
        x509.load_pem_x509_certificate(certificate.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    # An IP address is also a DNS name, for mbedTLS 2.x clients (Linphone).
    assert {"127.0.0.1", "pbx.local", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    again = ensure_self_signed(tmp_path / "tls", ["127.0.0.1"])
    assert again == (certificate, key, False)
    shown = file_fingerprint(certificate)
    assert len(shown) == 95 and shown.count(":") == 31 and shown == shown.upper()
    _, same, made = listener_context(None, None, tmp_path, ["127.0.0.1"])
    assert same == certificate and not made


def test_unusable_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TlsConfigError, match=r"bad\.pem"):
        server_context(bad, bad)
    with pytest.raises(TlsConfigError, match=r"bad\.pem: cannot load CA certificates"):
        client_policy("h", ca_file=bad)


async def _handshake(server: ssl.SSLContext, policy_args: dict[str, object]) -> bytes | None:
    """Connect to a TLS listener on loopback with a client policy; the server's
    certificate when the chain and name checks pass, ssl.SSLError otherwise."""
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    policy = client_policy("127.0.0.1", **policy_args)  # type: ignore[arg-type]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=policy.context, server_hostname=policy.server_hostname or "x"
        )
        presented = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return presented if policy.accepts(presented) else None
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_peer_is_checked_by_ca_file_or_by_pinned_fingerprint(tmp_path: Path) -> None:
    certificate, key, _ = ensure_self_signed(tmp_path / "a", ["127.0.0.1"])
    other, _, _ = ensure_self_signed(tmp_path / "b", ["127.0.0.1"])
    server = server_context(certificate, key)
    der = await _handshake(server, {"ca_file": certificate})
    assert der is not None
    pin = fingerprint(der)
    assert await _handshake(server, {"pinned": pin}) == der
    # The handshake passes (no chain is checked with a pin), the fingerprint does not.
    assert await _handshake(server, {"pinned": "0" * 64}) is None
    assert await _handshake(server, {"verify": False}) == der
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(server, {"ca_file": other})


def test_srtp_modes_are_read_for_rtp_trunks_and_users(tmp_path: Path) -> None:
    config = loads(
        tmp_path,
        """\
rtp: {srtp: Required}
trunks:
  - {name: a, uri: "sips:sip.example.net", srtp: optional}
users:
  - {username: alice, password: pw, srtp: "off"}
  - {username: bob, password: pw}
  - {username: carol, password: pw, srtp: off}
  - {username: dave, password: pw, srtp: dtls}
""",
    )
    assert config.rtp.srtp == "required"
    assert config.trunks[0].srtp == "optional"
    # An unquoted off is YAML 1.1's false: taken as the mode it spells.
    assert [u.srtp for u in config.users] == ["off", None, "off", "dtls"]
    problems = problems_of(tmp_path, "users:\n  - {username: a, password: b, srtp: on}\n")
    assert problems == [
        "F:2:38: users[0].srtp: expected one of off, optional, required, dtls "
        "(an unquoted yes/on is true)"
    ]
    problems = problems_of(tmp_path, "users:\n  - {username: a, password: b, srtp: maybe}\n")
    assert problems == [
        "F:2:38: users[0].srtp: expected one of off, optional, required, dtls, got 'maybe'"
    ]
