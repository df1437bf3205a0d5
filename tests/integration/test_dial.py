"""dial@v1 with real peers: baresip A calls a scenario that dials baresip B.

Each phone sends its own tone; each must hear the other's tone (and not its
own) in the WAV it records, which proves the bridge relays both ways,
whether both legs use the same codec (relayed untouched) or not (PCMU to
PCMA through the transcoding table). Busy and unanswered targets are played
by sipp; the outcome the scenario saw is read from the server's log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import start_server
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.sipp import SippBackground

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"

BRIDGE = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params:
          targets: ["{target}"]
          timeout: {timeout}
          ringback: {ringback}
      - action: log@v1
        params: {{message: "dial result ${{$dial.status}} ${{$dial.target}}"}}
      - action: say@v1
        params: {{text: "The call has ended."}}
      - action: hangup@v1
"""


def write_bridge(folder: Path, target: str, timeout: int = 15, ringback: str = "tone") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bridge.yaml").write_text(
        BRIDGE.format(target=target, timeout=timeout, ringback=ringback)
    )


@pytest.fixture
def tones(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    audio.make_tone_wav(a, 700, 8.0, amplitude=0.4)
    audio.make_tone_wav(b, 1100, 8.0, amplitude=0.4)
    return a, b


@pytest.mark.parametrize(("codec_a", "codec_b"), [("PCMU", "PCMU"), ("PCMU", "PCMA")])
def test_two_phones_hear_each_other(
    tmp_path: Path, tones: tuple[Path, Path], codec_a: str, codec_b: str
) -> None:
    tone_a, tone_b = tones
    with Baresip(input_wav=tone_b, auto_answer=True, codecs=(codec_b,), max_call_s=30) as b:
        scenarios = tmp_path / "scenarios"
        write_bridge(scenarios, b.sip_uri)
        server = start_server(
            tmp_path / "server",
            routes={"bridge": "bridge"},
            scenarios=scenarios,
            extra_args=[],
        )
        try:
            with Baresip(input_wav=tone_a, codecs=(codec_a,), max_call_s=30) as a:
                a.dial(server.uri("bridge"))
                a.wait_established(timeout=10)
                b.wait_established(timeout=10)
                time.sleep(4)
                heard_a, rate_a = a.recorded_audio()
                heard_b, rate_b = b.recorded_audio()
                b.hangup()  # the callee ends the bridge: the caller's run goes on
                assert b.wait_closed(timeout=10) == "Connection reset by user"
                assert a.wait_closed(timeout=20) == "Connection reset by peer"
                after, rate = a.recorded_audio()
        finally:
            server.stop()
    assert audio.tone_present(heard_a, rate_a, 1100, 2.0), "A did not hear B"
    assert audio.tone_present(heard_b, rate_b, 700, 2.0), "B did not hear A"
    assert not audio.tone_present(heard_a, rate_a, 700, 0.5), "A heard itself"
    assert not audio.tone_present(heard_b, rate_b, 1100, 0.5), "B heard itself"
    # After the bridge, the scenario went on: "The call has ended." was spoken to A.
    assert audio.speech_seconds(after[len(heard_a) :], rate) > 0.5
    results = [r["event"] for r in server.log_records("dial result answered " + b.sip_uri)]
    assert results, "the scenario did not log the dial result"
    bridged = server.log_records("bridged")
    assert bridged and bridged[0]["transcoding"] is (codec_a != codec_b)


def test_dtmf_crosses_the_bridge(tmp_path: Path, tones: tuple[Path, Path]) -> None:
    tone_a, tone_b = tones
    with Baresip(input_wav=tone_b, auto_answer=True, max_call_s=30) as b:
        scenarios = tmp_path / "scenarios"
        write_bridge(scenarios, b.sip_uri)
        server = start_server(tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios)
        try:
            with Baresip(input_wav=tone_a, max_call_s=30) as a:
                a.dial(server.uri("bridge"))
                a.wait_established(timeout=10)
                b.wait_established(timeout=10)
                time.sleep(1)
                a.send_dtmf("42#")
                b.wait_dtmf("42#", timeout=10)
                a.hangup()
                b.wait_closed(timeout=10)
        finally:
            server.stop()
    assert b.received_dtmf() == "42#"


@pytest.fixture
def busy_target(tmp_path: Path) -> Iterator[SippBackground]:
    with SippBackground(scenario=SIPP_DIR / "uas_busy.xml", workdir=tmp_path / "uas") as uas:
        yield uas


def test_busy_target(tmp_path: Path, busy_target: SippBackground) -> None:
    scenarios = tmp_path / "scenarios"
    write_bridge(scenarios, busy_target.uri)
    server = start_server(tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios)
    try:
        with Baresip(max_call_s=30) as a:
            a.dial(server.uri("bridge"))
            a.wait_established(timeout=10)
            assert a.wait_closed(timeout=20) == "Connection reset by peer"
        busy_target.wait(timeout=10).assert_ok(calls=1)
    finally:
        server.stop()
    assert server.log_records(f"dial result busy {busy_target.uri}")


def test_unanswered_target_is_cancelled(tmp_path: Path) -> None:
    with SippBackground(
        scenario=SIPP_DIR / "uas_ring_forever.xml", workdir=tmp_path / "uas"
    ) as uas:
        scenarios = tmp_path / "scenarios"
        write_bridge(scenarios, uas.uri, timeout=3)
        server = start_server(tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios)
        try:
            with Baresip(max_call_s=30) as a:
                a.dial(server.uri("bridge"))
                a.wait_established(timeout=15)
                assert a.wait_closed(timeout=20) == "Connection reset by peer"
            # The UAS saw our CANCEL and answered it (its scenario requires it).
            uas.wait(timeout=10).assert_ok(calls=1)
        finally:
            server.stop()
    assert server.log_records(f"dial result no-answer {uas.uri}")


def test_untrusted_caller_cannot_dial(tmp_path: Path, tones: tuple[Path, Path]) -> None:
    """A caller from outside the trusted networks, with no users to authenticate
    against, is refused before any scenario runs: nobody is dialled."""
    _, tone_b = tones
    with Baresip(input_wav=tone_b, auto_answer=True, max_call_s=30) as b:
        scenarios = tmp_path / "scenarios"
        write_bridge(scenarios, b.sip_uri)
        server = start_server(
            tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios, trusted=[]
        )
        try:
            with Baresip(max_call_s=30) as a:
                a.dial(server.uri("bridge"))
                assert a.wait_closed(timeout=15).startswith("403")
            time.sleep(0.5)
            assert "CALL_ESTABLISHED" not in b.event_types(), "an untrusted caller rang the callee"
        finally:
            server.stop()
    assert not server.log_records("run started")
