"""SIP over TLS (RFC 3261 26.2) with real peers: baresip registers and calls
over TLS, is called back over the connection it registered on, and the
server dials a TLS peer whose certificate it checks (CA file or pinned
fingerprint), refusing one that does not match. Linphone (belle-sip on
mbedTLS) registers over TLS by the server's IP address, checking its
certificate, and calls with SDES and with DTLS-SRTP.

The server's certificate is the self-signed one it makes on first start
(``DATA/tls/sip-tls.crt``), which baresip is given as its CA file; the
called peer's is made here with the cryptography package.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mediaserver.media.g711 import ulaw_decode
from mediaserver.sip.tls import file_fingerprint
from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.audio import Samples
from tests.support.baresip import Baresip
from tests.support.capture import UdpCapture
from tests.support.linphone import Linphone
from tests.support.net import free_port
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

TLS_LISTEN = '["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0"]'
USERS = """
users:
  - {username: alice, password: wonderland}
  - {username: bob, password: builder}
"""
Heard = tuple[Samples, int]
DIAL = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {{targets: ["{target}"], timeout: 15}}
      - action: hangup@v1
"""


def peer_certificate(folder: Path, name: str = "peer") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and baresip's PEM (key and certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    certificate = folder / f"{name}.crt"
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    combined = folder / f"{name}.pem"
    combined.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return certificate, combined


def dialalice_server(tmp_path: Path, users: str, **options: Any) -> ServerProcess:
    """A server listening on TLS whose route ``dialalice`` dials the user alice."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "dialalice.yaml").write_text(DIAL.format(target="alice"))
    return start_server(
        tmp_path / "server",
        listen=TLS_LISTEN,
        scenarios=scenarios,
        routes={"dialalice": "dialalice"},
        extra_config=users,
        **options,
    )


def tls_phone(server: ServerProcess, **options: object) -> Baresip:
    """A baresip account over TLS that trusts the server's certificate."""
    cafile = server.data_dir / "tls" / "sip-tls.crt"
    return Baresip(transport="tls", extra_config={"sip_cafile": str(cafile)}, **options)  # type: ignore[arg-type]


def converse(caller: Baresip, callee: Baresip, uri: str) -> tuple[Heard, Heard]:
    """``caller`` dials ``uri``, which rings ``callee`` (auto-answering); 3 s of
    conversation; what each heard; the caller hangs up."""
    caller.dial(uri)
    caller.wait_established(timeout=15)
    callee.wait_established(timeout=10)
    time.sleep(3)
    heard = caller.recorded_audio(), callee.recorded_audio()
    caller.hangup()
    callee.wait_closed(timeout=10)
    return heard


def test_calls_over_tls_to_echo(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", listen=TLS_LISTEN)
    tone = tmp_path / "tone.wav"
    audio.make_tone_wav(tone, 700, 4.0, lead_s=0.5, amplitude=0.4)
    try:
        assert server.tls_port, "the banner does not show the tls listener"
        made = server.log_records("made a self-signed SIP TLS certificate")
        assert made and made[0]["sha256"], "the certificate's fingerprint was not logged"
        with tls_phone(server, input_wav=tone, max_call_s=20) as phone:
            phone.dial(server.uri("echo", "tls"))
            phone.wait_established(timeout=10)
            time.sleep(4)
            heard, rate = phone.recorded_audio()
            phone.hangup()
            phone.wait_closed(timeout=10)
    finally:
        assert server.stop() == 0
    assert [r["transport"] for r in server.log_records("call started")] == ["tls"]
    assert audio.tone_present(heard, rate, 700, 2.0), "the caller's 700 Hz did not come back"


def test_a_phone_registered_over_tls_is_called_on_its_connection(tmp_path: Path) -> None:
    """alice registers over TLS and listens on no TLS port of her own (baresip
    without a certificate): the INVITE reaches her only over the connection
    she registered on (RFC 5923's reuse, as RFC 5626 outbound phones expect)."""
    server = dialalice_server(tmp_path, USERS, trusted=[])
    tone_a, tone_b = tmp_path / "a.wav", tmp_path / "b.wav"
    audio.make_tone_wav(tone_a, 700, 8.0, amplitude=0.4)
    audio.make_tone_wav(tone_b, 1100, 8.0, amplitude=0.4)
    registrar = f"127.0.0.1:{server.tls_port}"
    try:
        with (
            tls_phone(server, user="alice", registrar=registrar, password="wonderland",
                      auto_answer=True, input_wav=tone_a, max_call_s=30) as alice,
            tls_phone(server, user="bob", registrar=registrar, password="builder",
                      input_wav=tone_b, max_call_s=30) as bob,
        ):  # fmt: skip
            alice.wait_registered(timeout=10)
            bob.wait_registered(timeout=10)
            (heard_bob, rate_bob), (heard_alice, rate_alice) = converse(
                bob, alice, server.uri("dialalice", "tls")
            )
    finally:
        assert server.stop() == 0
    assert {r["user"]: r["status"] for r in server.log_records("register")} == {
        "alice": 200,
        "bob": 200,
    }
    assert audio.tone_present(heard_bob, rate_bob, 700, 1.5), "bob did not hear alice"
    assert audio.tone_present(heard_alice, rate_alice, 1100, 1.5), "alice did not hear bob"


def trunk_server(tmp_path: Path, trunk: str) -> ServerProcess:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir(parents=True)
    (scenarios / "out.yaml").write_text(DIAL.format(target="100"))
    return start_server(
        tmp_path / "server",
        scenarios=scenarios,
        routes={"out": "out"},
        extra_config=f"trunks:\n  - {trunk}\n",
    )


@pytest.mark.parametrize("check", ["tls_fingerprint", "tls_ca_file"])
def test_a_tls_trunk_whose_certificate_matches_is_called(tmp_path: Path, check: str) -> None:
    certificate, combined = peer_certificate(tmp_path / "peer")
    with Baresip(
        user="100", extra_config={"sip_certificate": str(combined)}, auto_answer=True, max_call_s=30
    ) as carrier:
        port = carrier.sip_port + 1  # baresip listens for TLS on the port after its own
        value = file_fingerprint(certificate) if check == "tls_fingerprint" else str(certificate)
        server = trunk_server(
            tmp_path,
            f'{{name: carrier, uri: "sip:127.0.0.1:{port};transport=tls", {check}: "{value}"}}',
        )
        try:
            with Baresip(max_call_s=30) as caller:
                caller.dial(server.uri("out"))
                caller.wait_established(timeout=15)
                carrier.wait_established(timeout=10)
                caller.hangup()
                carrier.wait_closed(timeout=10)
        finally:
            assert server.stop() == 0


@pytest.mark.parametrize("check", ["tls_fingerprint", "tls_ca_file"])
def test_a_tls_trunk_with_another_certificate_is_not_called(tmp_path: Path, check: str) -> None:
    _, combined = peer_certificate(tmp_path / "peer")
    other, _ = peer_certificate(tmp_path / "other", "other")
    with Baresip(
        user="100", extra_config={"sip_certificate": str(combined)}, auto_answer=True, max_call_s=30
    ) as carrier:
        port = carrier.sip_port + 1
        value = file_fingerprint(other) if check == "tls_fingerprint" else str(other)
        server = trunk_server(
            tmp_path,
            f'{{name: carrier, uri: "sip:127.0.0.1:{port};transport=tls", {check}: "{value}"}}',
        )
        try:
            with Baresip(max_call_s=30) as caller:
                caller.dial(server.uri("out"))
                # The dial fails at once (503 from the transport error): the run hangs up.
                closed = caller.wait_closed(timeout=20)
        finally:
            assert server.stop() == 0
        assert "incoming" not in " ".join(carrier.event_types()).lower()
    assert closed
    failures = server.log_records("tls connect failed")
    assert failures, "the server did not report the refused certificate"
    # Refused at once, not lost on a connection closing after a failed check.
    assert [r["status"] for r in server.log_records("dial ended")] == ["failed"]
    expected = "fingerprint mismatch" if check == "tls_fingerprint" else "CERTIFICATE_VERIFY_FAILED"
    assert expected in failures[0]["error"]


@pytest.mark.parametrize("mode", ["srtp-mand", "srtp", "dtls_srtp"])
def test_srtp_call_over_tls_hears_its_echo(tmp_path: Path, mode: str) -> None:
    """SRTP both ways over TLS: baresip's tone comes back through the server's
    SRTP, whether baresip required SDES keys (RTP/SAVP, RFC 4568), only offered
    them on RTP/AVP, or offered DTLS-SRTP (UDP/TLS/RTP/SAVP, RFC 5763/5764)."""
    server = start_server(tmp_path / "server", listen=TLS_LISTEN)
    tone = tmp_path / "tone.wav"
    audio.make_tone_wav(tone, 700, 4.0, lead_s=0.5, amplitude=0.4)
    try:
        with (
            tls_phone(server, input_wav=tone, max_call_s=20, media_encryption=mode) as phone,
            UdpCapture(*phone.rtp_ports) as to_phone,
        ):
            phone.dial(server.uri("echo", "tls"))
            phone.wait_established(timeout=10)
            time.sleep(4)
            heard, rate = phone.recorded_audio()
            phone.hangup()
            phone.wait_closed(timeout=10)
            log = phone.log()
    finally:
        assert server.stop() == 0
    assert audio.tone_present(heard, rate, 700, 2.0), "the caller's 700 Hz did not come back"
    wire, wire_rate = _pcmu_audio(to_phone.payloads)
    assert len(to_phone.payloads) > 100
    assert not audio.tone_present(wire, wire_rate, 700, 0.2), "the echo went back in clear"
    # baresip authenticates and decrypts what it hears with the keys agreed: the
    # tone coming back means the server's packets were SRTP with those keys, and
    # that the server decrypted baresip's (the echo sends what it received).
    if mode == "dtls_srtp":
        # RFC 5763: we are the DTLS client; baresip checked our certificate
        # against the fingerprint of our answer.
        assert "verified sha-256 fingerprint OK" in log
        assert "DTLS-SRTP complete (audio/RTP) Profile=AES_CM_128_HMAC_SHA1_80" in log
    else:
        assert "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in log
    ended = server.log_records("call ended")
    assert ended and ended[0]["media"]["packets_in"] > 100


def test_an_srtp_caller_bridged_to_a_plain_rtp_callee(tmp_path: Path) -> None:
    """The relay decrypts what the SRTP leg sends before relaying it in clear to
    the plain leg, and encrypts the other way."""
    tone_a, tone_b = tmp_path / "a.wav", tmp_path / "b.wav"
    audio.make_tone_wav(tone_a, 700, 8.0, amplitude=0.4)
    audio.make_tone_wav(tone_b, 1100, 8.0, amplitude=0.4)
    with Baresip(input_wav=tone_b, auto_answer=True, max_call_s=30) as plain:
        scenarios = tmp_path / "scenarios"
        scenarios.mkdir()
        (scenarios / "bridge.yaml").write_text(DIAL.format(target=plain.sip_uri))
        server = start_server(
            tmp_path / "server", listen=TLS_LISTEN, scenarios=scenarios, routes={"bridge": "bridge"}
        )
        try:
            with tls_phone(
                server, input_wav=tone_a, max_call_s=30, media_encryption="srtp-mand"
            ) as secure:
                (heard_secure, rate_secure), (heard_plain, rate_plain) = converse(
                    secure, plain, server.uri("bridge", "tls")
                )
        finally:
            assert server.stop() == 0
    assert audio.tone_present(heard_secure, rate_secure, 1100, 1.5), "the SRTP side did not hear"
    assert audio.tone_present(heard_plain, rate_plain, 700, 1.5), "the plain side did not hear"


def _pcmu_audio(payloads: list[bytes]) -> tuple[object, int]:
    """The RTP payloads (12-byte header, PT 0) of a capture decoded as PCMU."""
    frames = [p[12:] for p in payloads if len(p) > 12 and p[1] & 0x7F == 0]
    return ulaw_decode(b"".join(frames)), 8000


@pytest.mark.parametrize(("mode", "baresip_mode", "agreed"), [
    ("required", "srtp-mand", "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
    ("dtls", "dtls_srtp", "DTLS-SRTP complete (audio/RTP) Profile=AES_CM_128_HMAC_SHA1_80"),
])  # fmt: skip
def test_a_user_configured_for_srtp_is_called_with_keys_and_nothing_goes_in_clear(
    tmp_path: Path, mode: str, baresip_mode: str, agreed: str
) -> None:
    """``srtp: required`` on a user: ``dial@v1`` offers RTP/SAVP with SDES keys over
    the TLS connection alice registered on; ``srtp: dtls``: UDP/TLS/RTP/SAVP with
    our fingerprint and ``a=setup:actpass`` (baresip answers passive, so we are
    the DTLS client). A capture of what reached alice's RTP ports holds no trace
    of the caller's tone, while the same capture of the plain caller's ports
    does hear alice's: the media was encrypted."""
    server = dialalice_server(
        tmp_path,
        f"""
users:
  - {{username: alice, password: wonderland, srtp: {mode}}}
""",
    )
    tone_a, tone_b = tmp_path / "a.wav", tmp_path / "b.wav"
    audio.make_tone_wav(tone_a, 700, 8.0, amplitude=0.4)
    audio.make_tone_wav(tone_b, 1100, 8.0, amplitude=0.4)
    registrar = f"127.0.0.1:{server.tls_port}"
    try:
        with (
            tls_phone(server, user="alice", registrar=registrar, password="wonderland",
                      auto_answer=True, input_wav=tone_b, max_call_s=30,
                      media_encryption=baresip_mode) as alice,
            Baresip(input_wav=tone_a, max_call_s=30) as caller,
        ):  # fmt: skip
            alice.wait_registered(timeout=10)
            with (
                UdpCapture(*alice.rtp_ports) as to_alice,
                UdpCapture(*caller.rtp_ports) as to_caller,
            ):
                (heard_caller, rate_caller), (heard_alice, rate_alice) = converse(
                    caller, alice, server.uri("dialalice")
                )
            log = alice.log()
    finally:
        assert server.stop() == 0
    assert agreed in log
    assert audio.tone_present(heard_alice, rate_alice, 700, 1.5), "alice did not hear the caller"
    assert audio.tone_present(heard_caller, rate_caller, 1100, 1.5), "the caller did not hear alice"
    assert len(to_alice.payloads) > 100 and len(to_caller.payloads) > 100
    clear, rate = _pcmu_audio(to_caller.payloads)
    assert audio.tone_present(clear, rate, 1100, 1.5), "the capture misses plain RTP"
    wire, rate = _pcmu_audio(to_alice.payloads)
    assert not audio.tone_present(wire, rate, 700, 0.2), "the caller's tone went to alice in clear"


@pytest.mark.parametrize("encryption", ["srtp", "dtls"])
def test_linphone_registers_over_tls_and_calls_with_srtp(tmp_path: Path, encryption: str) -> None:
    """Linphone's settings of docs/sip.md: it checks the server's self-signed
    certificate (``root_ca``, ``verify_server_certs``) while reaching it by IP
    (mbedTLS matches only dNSName entries), registers as alice over TLS, and
    calls echo with media encryption mandatory: SDES keys (RTP/SAVP) or a
    DTLS handshake (UDP/TLS/RTP/SAVP). It hears its tone back, and nothing
    that reached its RTP port carries the tone in clear."""
    server = start_server(tmp_path / "server", listen=TLS_LISTEN, extra_config=USERS, trusted=[])
    tone = tmp_path / "tone.wav"
    audio.make_tone_wav(tone, 700, 6.0, amplitude=0.4)
    settings = {
        "sip_tls_port": "-1",  # a TLS client socket on any port
        "root_ca": str(server.data_dir / "tls" / "sip-tls.crt"),
        "verify_server_certs": "1",
        "verify_server_cn": "1",
        "media_encryption": encryption,
        "media_encryption_mandatory": "1",
    }
    registrar = f"127.0.0.1:{server.tls_port};transport=tls"
    try:
        with Linphone(
            user="alice", registrar=registrar, password="wonderland", input_wav=tone,
            extra_config={"sip": settings},
        ) as phone:  # fmt: skip
            phone.wait_registered(timeout=15)
            with UdpCapture(phone.rtp_port, phone.rtp_port + 1) as to_phone:
                call = phone.dial(f"sip:echo@{registrar}")
                phone.wait_established(call, timeout=15)
                time.sleep(3)
                heard, rate = phone.recorded_audio()
                phone.hangup(call)
                phone.wait_ended(call)
            offer = next(
                t for way, t in phone.sip_messages() if way == "sent" and t.startswith("INVITE")
            )
    finally:
        assert server.stop() == 0
    profile = "UDP/TLS/RTP/SAVP" if encryption == "dtls" else "RTP/SAVP"
    assert f" {profile} " in offer, "linphone did not offer the encrypted profile"
    assert audio.tone_present(heard, rate, 700, 1.5), "linphone did not hear its tone back"
    wire, wire_rate = _pcmu_audio(to_phone.payloads)
    assert len(to_phone.payloads) > 50
    assert not audio.tone_present(wire, wire_rate, 700, 0.2), "the echo went back in clear"
    [started] = server.log_records("call started")
    assert started["transport"] == "tls"


def test_sipp_calls_echo_over_tls_through_stunnel(tmp_path: Path) -> None:
    """Load over TLS: Debian's sipp has no TLS (built without OpenSSL), so stunnel
    carries its one TCP connection over TLS, checking the server's certificate
    for 127.0.0.1 (an iPAddress name, as OpenSSL wants). 40 calls into echo on
    that one connection, none failed, each seen by the server as TLS."""
    stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
    assert stunnel, "stunnel is not installed (Debian package stunnel4; ./scripts/setup --dev)"
    server = start_server(tmp_path / "server", listen=TLS_LISTEN)
    accept = free_port("tcp")
    config = tmp_path / "stunnel.conf"
    config.write_text(
        "foreground = yes\npid =\n[sip]\nclient = yes\n"
        f"accept = 127.0.0.1:{accept}\nconnect = 127.0.0.1:{server.tls_port}\n"
        f"CAfile = {server.data_dir / 'tls' / 'sip-tls.crt'}\n"
        "verifyChain = yes\ncheckIP = 127.0.0.1\n"
    )
    log = (tmp_path / "stunnel.log").open("wb")
    tunnel = subprocess.Popen([stunnel, str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(accept)
        result = run_sipp(
            f"127.0.0.1:{accept}", scenario="uac", service="echo", calls=40, rate=20,
            transport="t1", timeout=60, workdir=tmp_path / "sipp",
        )  # fmt: skip
        result.assert_ok(calls=40)
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
        log.close()
        assert server.stop() == 0
    started = server.log_records("call started")
    assert len(started) == 40 and {r["transport"] for r in started} == {"tls"}


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Until something accepts TCP connections on 127.0.0.1:``port`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
