"""Who may call, register and make the server dial out, with real peers.

The server here trusts no network, so every caller must authenticate:
baresip phones register with digest credentials (401) and are challenged
on their calls (407); a bare peer without credentials is refused. A
registered phone is reachable by its user name through dial@v1, and numbers
go out through a trunk played by sipp, which challenges our INVITE and our
REGISTER and verifies the digests we answer with.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip, BaresipError
from tests.support.rawsip import SipProbe, sdp_offer
from tests.support.sipp import SippBackground, assert_digest_is_right

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"
SCENARIOS = Path(__file__).parent.parents[1] / "configs" / "scenarios"

USERS = """\
users:
  - {username: alice, password: wonderland}
  - {username: bob, password: builder}
"""

DIAL_USER = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {targets: ["alice"], timeout: 10}
      - action: log@v1
        params: {message: "dial result ${$dial.status}"}
"""

DIAL_NUMBER = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {targets: ["+33199001234"], timeout: 10}
      - action: log@v1
        params: {message: "dial result ${$dial.status} ${$dial.target}"}
"""


def users_server(tmp: Path, scenarios: Path = SCENARIOS, routes: dict[str, str] | None = None,
                 extra: str = "") -> ServerProcess:  # fmt: skip
    return start_server(
        tmp,
        routes=routes or {"welcome": "welcome", "echo": "echo"},
        scenarios=scenarios,
        trusted=[],
        extra_config=USERS + extra,
    )


def test_unauthenticated_invite_is_challenged_then_refused(tmp_path: Path) -> None:
    server = users_server(tmp_path)
    try:
        with SipProbe(server.sip_port) as probe:
            probe.send(probe.build("INVITE", user="echo", body=sdp_offer()))
            challenge = probe.expect_final()
            assert challenge.status == 407
            header = challenge.header("proxy-authenticate") or ""
            assert header.startswith("Digest ") and 'realm="mediaserver"' in header
            assert "algorithm=MD5" in header
            # Wrong credentials are refused, not challenged forever.
            nonce = header.split('nonce="')[1].split('"')[0]
            bad = ('Proxy-Authorization: Digest username="alice", realm="mediaserver", '
                   f'nonce="{nonce}", uri="sip:echo@127.0.0.1:{server.sip_port}", '
                   'response="00000000000000000000000000000000", algorithm=MD5, qop=auth, '
                   'nc=00000001, cnonce="abc"')  # fmt: skip
            probe.send(probe.build("INVITE", user="echo", body=sdp_offer(), headers=[bad], cseq=2))
            assert probe.expect_final().status == 403
            # REGISTER needs credentials too (401, the registrar's challenge).
            probe.send(probe.build("REGISTER", user="alice"))
            assert probe.expect_final().status == 401
    finally:
        server.stop()


def test_no_users_and_no_trusted_network_means_403(tmp_path: Path) -> None:
    server = start_server(tmp_path, routes={"echo": "echo"}, scenarios=SCENARIOS, trusted=[])
    try:
        with SipProbe(server.sip_port) as probe:
            probe.send(probe.build("INVITE", user="echo", body=sdp_offer()))
            assert probe.expect_final().status == 403
            probe.send(probe.build("REGISTER", user="alice"))
            assert probe.expect_final().status == 405  # not a registrar without users
    finally:
        server.stop()


def test_registered_phone_calls_a_scenario(tmp_path: Path) -> None:
    server = users_server(tmp_path)
    try:
        with Baresip(user="alice", registrar=server.target, password="wonderland") as phone:
            phone.wait_registered(timeout=10)
            phone.dial(server.uri("welcome"))
            phone.wait_established(timeout=10)  # after answering the 407 challenge
            assert phone.wait_closed(timeout=25) == "Connection reset by peer"
            heard, rate = phone.recorded_audio()
        assert audio.speech_seconds(heard, rate) > 2.0
        registers = server.log_records("register")
        assert any(r["user"] == "alice" and r["status"] == 200 for r in registers)
        assert server.log_records("call challenged"), "the call was not challenged"
        # A challenge answered with credentials is one normal call, not a refusal.
        assert server.log_records("call refused") == []
    finally:
        server.stop()


def test_wrong_password_cannot_register(tmp_path: Path) -> None:
    server = users_server(tmp_path)
    try:
        with (
            Baresip(user="alice", registrar=server.target, password="guess") as phone,
            pytest.raises(BaresipError, match="REGISTER_FAIL"),
        ):
            phone.wait_registered(timeout=10)
    finally:
        server.stop()
    assert not [r for r in server.log_records("register") if r.get("status") == 200]


def test_a_user_dials_another_by_name(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "dialalice.yaml").write_text(DIAL_USER)
    server = users_server(tmp_path / "server", scenarios, routes={"dialalice": "dialalice"})
    tone_a, tone_b = tmp_path / "a.wav", tmp_path / "b.wav"
    audio.make_tone_wav(tone_a, 700, 8.0, amplitude=0.4)
    audio.make_tone_wav(tone_b, 1100, 8.0, amplitude=0.4)
    try:
        with (
            Baresip(user="alice", registrar=server.target, password="wonderland",
                    auto_answer=True, input_wav=tone_a) as alice,
            Baresip(user="bob", registrar=server.target, password="builder",
                    input_wav=tone_b) as bob,
        ):  # fmt: skip
            alice.wait_registered(timeout=10)
            bob.wait_registered(timeout=10)
            bob.dial(server.uri("dialalice"))
            bob.wait_established(timeout=10)
            alice.wait_established(timeout=10)
            time.sleep(3)
            heard_bob, rate_bob = bob.recorded_audio()
            heard_alice, rate_alice = alice.recorded_audio()
            bob.hangup()
            alice.wait_closed(timeout=10)
        assert audio.tone_present(heard_bob, rate_bob, 700, 1.5), "bob did not hear alice"
        assert audio.tone_present(heard_alice, rate_alice, 1100, 1.5), "alice did not hear bob"
    finally:
        server.stop()


def test_numbers_go_out_through_the_trunk_with_its_credentials(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "out.yaml").write_text(DIAL_NUMBER)
    with (
        SippBackground(scenario=SIPP_DIR / "uas_trunk_auth.xml", variables={"hold_ms": 2000},
                       workdir=tmp_path / "trunk") as carrier,
        SippBackground(scenario=SIPP_DIR / "uas_registrar.xml",
                       workdir=tmp_path / "registrar") as registrar,
    ):  # fmt: skip
        trunks = f"""\
trunks:
  - name: carrier
    uri: sip:127.0.0.1:{carrier.local_port}
    username: "1001"
    password: secret
    from_user: "+33100000000"
    keepalive: 0
  - name: registrar
    uri: sip:127.0.0.1:{registrar.local_port}
    username: "1001"
    password: secret
    register: true
    keepalive: 0
"""
        server = start_server(tmp_path / "server", routes={"out": "out"}, scenarios=scenarios,
                              extra_config=trunks)  # fmt: skip
        try:
            registrar.wait(timeout=15).assert_ok(calls=1)  # 401, then REGISTER with credentials
            with Baresip(max_call_s=30) as phone:  # from loopback: a trusted caller
                phone.dial(server.uri("out"))
                phone.wait_established(timeout=10)
                carrier.wait(timeout=20).assert_ok(calls=1)  # 407, then INVITE with credentials
                phone.wait_closed(timeout=10)
            time.sleep(0.5)
        finally:
            server.stop()
    assert server.log_records("trunk registered")
    assert server.log_records("dial result answered +33199001234")
    assert_digest_is_right((tmp_path / "trunk" / "messages.log").read_text(), "secret")


def test_trunk_keepalive_notices_the_carrier(tmp_path: Path) -> None:
    with SippBackground(
        scenario=SIPP_DIR / "uas_options.xml", workdir=tmp_path / "carrier"
    ) as carrier:
        trunks = f"""\
trunks:
  - name: carrier
    uri: sip:127.0.0.1:{carrier.local_port}
    keepalive: 5
"""
        server = start_server(tmp_path / "server", routes={"echo": "echo"}, scenarios=SCENARIOS,
                              extra_config=trunks)  # fmt: skip
        try:
            carrier.wait(timeout=15).assert_ok(calls=1)  # it got our OPTIONS and answered
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not server.log_records("trunk up"):
                time.sleep(0.1)
        finally:
            server.stop()
    assert server.log_records("trunk up")[0]["trunk"] == "carrier"
