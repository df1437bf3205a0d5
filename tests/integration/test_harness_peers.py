"""The test harness itself, checked against real peers and without the server.

sipp and baresip talk to each other here over loopback, so that when a
server test fails we know the harness is not the reason: the scenarios
really run, the softphone really dials, hears, records and sends DTMF, and
the audio helpers find in its recordings what was sent. Each test also has
a way to fail: a wrong digit, a missing tone or a missing BYE would show.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.support import audio
from tests.support.baresip import Baresip, BaresipError
from tests.support.net import free_port, free_port_block, free_port_pair, is_free
from tests.support.sipp import SippBackground, run_sipp, run_sipp_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


# ---------------------------------------------------------------- ports


def test_free_ports_are_free_and_distinct() -> None:
    ports = {free_port("both") for _ in range(20)}
    assert len(ports) == 20
    assert all(is_free(p, "both") for p in ports)
    rtp = free_port_pair()
    assert rtp % 2 == 0 and is_free(rtp) and is_free(rtp + 1)
    base = free_port_block(10)
    assert all(is_free(p) for p in range(base, base + 10))


# ---------------------------------------------------------------- sipp <-> sipp


def test_sipp_builtin_uac_against_builtin_uas() -> None:
    with SippBackground(scenario="uas", calls=3, timeout=15) as uas:
        result = run_sipp(
            uas.address, scenario="uac", service="echo", calls=3, rate=20, duration_ms=100
        )
    result.assert_ok(calls=3)
    assert result.messages.count("INVITE sip:echo@127.0.0.1") >= 3


async def test_sipp_async_run_does_not_block_the_loop() -> None:
    async with SippBackground(scenario="uas", calls=2, timeout=15) as uas:
        result = await run_sipp_async(
            uas.address, scenario="uac", calls=2, rate=20, duration_ms=100, timeout=10
        )
    result.assert_ok(calls=2)


def test_uac_bye_from_server_scenario() -> None:
    with SippBackground(
        scenario="uas_answer_then_bye", variables={"hold_ms": 500}, timeout=10
    ) as uas:
        started = time.monotonic()
        uac = run_sipp(uas.address, scenario="uac_bye_from_server", recv_timeout_ms=5000)
        uac.assert_ok(calls=1)
        assert 0.4 < time.monotonic() - started < 4.0
        uas.wait(timeout=5).assert_ok(calls=1)
    # The UAS really sent the BYE and the UAC really answered it.
    assert "BYE sip:sipp@127.0.0.1" in uac.messages
    assert "CSeq: 2 BYE" in uac.messages


def test_uac_bye_from_server_fails_when_no_bye_comes() -> None:
    # The built-in UAS never hangs up: the scenario must report a failed call.
    with SippBackground(scenario="uas", timeout=10) as uas:
        uac = run_sipp(uas.address, scenario="uac_bye_from_server", recv_timeout_ms=1000)
    assert not uac.ok
    assert uac.failed == 1 and uac.successful == 0


def test_uas_answer_then_bye_lets_the_caller_hang_up_first() -> None:
    with SippBackground(
        scenario="uas_answer_then_bye", variables={"hold_ms": 5000}, timeout=10
    ) as uas:
        run_sipp(uas.address, scenario="uac", duration_ms=300).assert_ok(calls=1)
        uas.wait(timeout=5).assert_ok(calls=1)


# ---------------------------------------------------------------- sipp -> baresip


@pytest.mark.parametrize("who_hangs_up", ["sipp", "baresip"])
def test_sipp_dtmf_2833_reaches_a_real_phone(who_hangs_up: str) -> None:
    with Baresip(user="bob", auto_answer=True) as phone:
        wait_ms = 5000 if who_hangs_up == "baresip" else 300
        with SippBackground(
            f"127.0.0.1:{phone.sip_port}",
            scenario="dtmf_2833",
            service="bob",
            variables={"digits": "159#", "pause_ms": 300, "gap_ms": 300, "max_wait_ms": wait_ms},
            timeout=15,
            wait_ready=False,
        ) as uac:
            assert phone.wait_dtmf("159#", timeout=5) == "159#"
            if who_hangs_up == "baresip":
                phone.hangup()
            reason = phone.wait_closed(timeout=5)
            result = uac.wait(timeout=10)
    result.assert_ok(calls=1)
    if who_hangs_up == "baresip":
        assert reason == "Connection reset by user"
        assert "BYE sip:sipp@127.0.0.1" in result.messages  # the phone's BYE, answered
    else:
        assert reason == "Connection reset by peer"


def test_sipp_uac_rings_a_phone_that_answers_by_hand() -> None:
    with (
        Baresip(user="bob") as phone,
        SippBackground(
            f"127.0.0.1:{phone.sip_port}",
            scenario="uac",
            service="bob",
            duration_ms=500,
            timeout=10,
            wait_ready=False,
        ) as uac,
    ):
        incoming = phone.wait_incoming(timeout=5)
        assert incoming["peeruri"].startswith("sip:sipp@127.0.0.1")
        time.sleep(0.3)  # ringing: not answered yet
        assert "CALL_ESTABLISHED" not in phone.event_types()
        phone.accept()
        phone.wait_established(timeout=5)
        assert phone.wait_closed(timeout=5) == "Connection reset by peer"
        uac.wait(timeout=5).assert_ok(calls=1)


def test_phone_rejects_a_call_for_another_user() -> None:
    """baresip answers 404 to a request URI that is not its own user."""
    with Baresip(user="bob", auto_answer=True) as phone:
        result = run_sipp(f"127.0.0.1:{phone.sip_port}", scenario="uac", service="alice", timeout=5)
    assert not result.ok
    assert "SIP/2.0 404" in result.messages


# ---------------------------------------------------------------- baresip -> sipp


def test_phone_hears_its_own_tone_echoed_and_sees_the_bye(tmp_path: Path) -> None:
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 440, 1.0, amplitude=0.5)
    with (
        SippBackground(
            scenario="uas_answer_then_bye",
            variables={"hold_ms": 2500},
            rtp_echo=True,
            timeout=10,
        ) as uas,
        Baresip(input_wav=tone) as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        # sipp's BYE after hold_ms ends the call.
        assert phone.wait_closed(timeout=6) == "Connection reset by peer"
        heard, rate = phone.recorded_audio()
        sent, _ = audio.read_mono(phone.sent_wav)
        uas.wait(timeout=5).assert_ok(calls=1)
    assert rate == 8000
    assert 1.8 < len(heard) / rate < 3.0  # about hold_ms of echoed audio
    assert audio.tone_present(heard, rate, 440, 0.8)
    assert not audio.tone_present(heard, rate, 1000, 0.1)
    assert audio.dominant_frequency(heard, rate) == pytest.approx(440, abs=3)
    # One second of tone, then the padding silence.
    spans = audio.active_intervals(heard, rate)
    assert len(spans) == 1 and spans[0][1] - spans[0][0] == pytest.approx(1.0, abs=0.1)
    assert audio.tone_present(sent, rate, 440, 0.9)


def test_phone_hears_nothing_without_echo(tmp_path: Path) -> None:
    """The negative of the echo test: no RTP back, no tone in the recording."""
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 440, 1.0)
    with (
        SippBackground(scenario="uas_answer_then_bye", variables={"hold_ms": 1500}) as uas,
        Baresip(input_wav=tone) as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        phone.wait_closed(timeout=5)
        heard, rate = phone.recorded_audio()
    assert audio.active_seconds(heard, rate) == 0.0
    assert not audio.tone_present(heard, rate, 440, 0.1)


def test_phone_dtmf_goes_out_as_rfc4733_and_comes_back() -> None:
    with (
        SippBackground(
            scenario="uas_answer_then_bye",
            variables={"hold_ms": 8000},
            rtp_echo=True,
            timeout=15,
        ) as uas,
        Baresip() as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        phone.send_dtmf("1234567890*#")
        # sipp echoed the telephone-events: they reached it, and they are real.
        assert phone.wait_dtmf("1234567890*#", timeout=6) == "1234567890*#"
        heard, rate = phone.recorded_audio()
        phone.hangup()
        phone.wait_closed(timeout=5)
        uas.wait(timeout=5).assert_ok(calls=1)
    # RFC 4733 only: nothing in-band.
    assert audio.detect_dtmf(heard, rate) == ""
    with pytest.raises(ValueError, match="not DTMF"):
        phone.send_dtmf("12x")


def test_phone_sends_inband_dtmf_from_its_input_file(tmp_path: Path) -> None:
    keys = audio.make_dtmf_wav(tmp_path / "keys.wav", "42#", tone_s=0.1, gap_s=0.1, lead_s=0.3)
    with (
        SippBackground(
            scenario="uas_answer_then_bye",
            variables={"hold_ms": 2000},
            rtp_echo=True,
            timeout=10,
        ) as uas,
        Baresip(input_wav=keys) as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        phone.wait_closed(timeout=5)
        heard, rate = phone.recorded_audio()
    assert audio.detect_dtmf(heard, rate) == "42#"  # through PCMU both ways
    assert phone.received_dtmf() == ""  # and no telephone-event


def test_phone_offers_only_the_codecs_asked(tmp_path: Path) -> None:
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 1000, 1.0)
    with (
        SippBackground(
            scenario="uas_answer_then_bye", variables={"hold_ms": 1500}, rtp_echo=True
        ) as uas,
        Baresip(input_wav=tone, codecs=("PCMA",)) as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        phone.wait_closed(timeout=5)
        heard, rate = phone.recorded_audio()
        result = uas.wait(timeout=5)
    assert "m=audio" in result.messages
    offer = result.messages.split("m=audio", 1)[1].splitlines()[0]
    assert offer.split("RTP/AVP")[1].split() == ["8", "101"]
    assert audio.tone_present(heard, rate, 1000, 0.8)


def test_input_file_end_hangs_up_the_call() -> None:
    """aufile at end of file makes baresip hang up: max_call_s bounds each call."""
    with (
        SippBackground(scenario="uas_answer_then_bye", variables={"hold_ms": 10000}) as uas,
        Baresip(max_call_s=1.5) as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        started = time.monotonic()
        assert phone.wait_closed(timeout=5) == "end of file"
        assert 1.0 < time.monotonic() - started < 3.0
        uas.wait(timeout=5).assert_ok(calls=1)


def test_two_calls_in_a_row_from_one_phone(tmp_path: Path) -> None:
    """Events of the first call never answer for the second; one recording per call."""
    first = audio.make_tone_wav(tmp_path / "a.wav", 600, 3.0)
    with (
        SippBackground(
            scenario="uas_answer_then_bye",
            variables={"hold_ms": 700},
            rtp_echo=True,
            calls=2,
            timeout=15,
        ) as uas,
        Baresip(input_wav=first) as phone,
    ):
        phone.dial(uas.uri)
        time.sleep(1.5)  # established and closed, events left unclaimed
        first_closed = phone.event_types().index("CALL_CLOSED")
        # sndfile names its files by the second: a new call needs a new second.
        phone.dial(uas.uri)
        event = phone.wait_established(timeout=5)
        assert phone.events.index(event) > first_closed  # the second call's
        assert phone.wait_closed(timeout=5) == "Connection reset by peer"
        uas.wait(timeout=5).assert_ok(calls=2)
        assert len(phone.recordings()) == 2
        for wav in phone.recordings():
            heard, rate = audio.read_mono(wav)
            assert audio.tone_present(heard, rate, 600, 0.4)


# ---------------------------------------------------------------- baresip <-> baresip


async def test_two_phones_talk_both_ways(tmp_path: Path) -> None:
    """Audio each way lands in the other's recording; DTMF each way as events."""
    a_in = audio.make_tone_wav(tmp_path / "a.wav", 440, 3.0)
    b_in = audio.make_tone_wav(tmp_path / "b.wav", 1000, 3.0)
    async with (
        Baresip(user="alice", input_wav=a_in) as alice,
        Baresip(user="bob", input_wav=b_in, auto_answer=True) as bob,
    ):
        alice.dial(bob.sip_uri)
        await alice.wait_established_async(timeout=5)
        await bob.wait_established_async(timeout=5)
        alice.send_dtmf("12#")
        assert await bob.wait_dtmf_async("12#", timeout=5) == "12#"
        bob.send_dtmf("9")
        assert await alice.wait_dtmf_async("9", timeout=5) == "9"
        # Recordings can be read while the call runs.
        a_heard, rate = alice.recorded_audio()
        b_heard, _ = bob.recorded_audio()
        bob.hangup()
        assert await alice.wait_closed_async(timeout=5) == "Connection reset by peer"
        assert await bob.wait_closed_async(timeout=5) == "Connection reset by user"
    assert len(a_heard) / rate > 0.5
    assert audio.dominant_frequency(a_heard, rate) == pytest.approx(1000, abs=3)
    assert audio.dominant_frequency(b_heard, rate) == pytest.approx(440, abs=3)
    assert not audio.tone_present(a_heard, rate, 440, 0.1)


def test_wait_event_fails_fast_on_call_closed() -> None:
    with Baresip(user="alice") as alice, Baresip(user="bob", auto_answer=True) as bob:
        alice.dial(f"sip:nobody@127.0.0.1:{bob.sip_port}")  # bob answers 404
        started = time.monotonic()
        with pytest.raises(BaresipError, match=r"CALL_CLOSED \(404 Not Found\)"):
            alice.wait_established(timeout=30)
        assert time.monotonic() - started < 5


# ---------------------------------------------------------------- registration


_REGISTRAR = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="registrar with digest">
  <recv request="REGISTER" crlf="true" />
  <send>
    <![CDATA[

      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="harness", nonce="[pid]n[call_number]", algorithm=MD5
      Content-Length: 0

    ]]>
  </send>
  <recv request="REGISTER" crlf="true">
    <action>
      <verifyauth assign_to="auth_ok" username="alice" password="wonderland" />
    </action>
  </recv>
  <nop next="good" test="auth_ok" />
  <send next="end">
    <![CDATA[

      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="good" />
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:]
      Content-Length: 0

    ]]>
  </send>
  <label id="end" />
</scenario>
"""


@pytest.mark.parametrize("password", ["wonderland", "wrong"])
def test_phone_registers_with_digest_auth(tmp_path: Path, password: str) -> None:
    scenario = tmp_path / "registrar.xml"
    scenario.write_text(_REGISTRAR)
    with (
        SippBackground(scenario=scenario, timeout=10) as registrar,
        Baresip(user="alice", registrar=registrar.address, password=password) as phone,
    ):
        if password == "wonderland":
            event = phone.wait_registered(timeout=5)
            assert event["param"] == "200 OK"
        else:
            with pytest.raises(BaresipError, match="REGISTER_FAIL"):
                phone.wait_registered(timeout=5)
        result = registrar.wait(timeout=5)  # before the phone unregisters
    result.assert_ok(calls=1)
    assert 'Authorization: Digest username="alice"' in result.messages
    assert f"To: <sip:alice@{registrar.address}>" in result.messages


def test_recording_analysis_matches_the_source_file(tmp_path: Path) -> None:
    """What the phone sent (enc) is its input file, sample for sample in level."""
    speech = audio.make_speech_wav(tmp_path / "hello.wav", "Hello, this is a test.")
    with (
        SippBackground(scenario="uas_answer_then_bye", variables={"hold_ms": 2500}) as uas,
        Baresip(input_wav=speech) as phone,
    ):
        phone.dial(uas.uri)
        phone.wait_established(timeout=5)
        phone.wait_closed(timeout=5)
        sent, rate = audio.read_mono(phone.sent_wav)
    source, _ = audio.read_mono(speech)
    assert audio.speech_seconds(sent, rate) == pytest.approx(
        audio.speech_seconds(source, rate), abs=0.3
    )
    n = min(len(sent), len(source))
    assert np.corrcoef(sent[:n], source[:n])[0, 1] > 0.99
