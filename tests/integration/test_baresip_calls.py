"""Real calls from baresip, checked by what the softphone actually heard.

baresip records the audio it received (its sndfile filter) to a WAV; the
tests analyse that file: speech energy over time for the welcome prompt, the
frequency of the tone each IVR branch plays, and the caller's own tone coming
back from the echo scenario, over PCMU and PCMA.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import ServerProcess
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

PEER_HUNG_UP = "Connection reset by peer"


def test_welcome_speaks_then_hangs_up(server: ServerProcess) -> None:
    with Baresip(max_call_s=30) as phone:
        phone.dial(server.uri("welcome"))
        phone.wait_established(timeout=10)
        # The server hangs up after its goodbye: baresip sees a BYE.
        assert phone.wait_closed(timeout=25) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    # "Hello, and welcome. You are calling from ..." is several seconds of speech.
    assert audio.speech_seconds(heard, rate) > 2.0
    # Speech starts soon after the answer, and there is a pause before "Goodbye".
    spans = audio.active_intervals(heard, rate, -40)
    assert spans and spans[0][0] < 2.0
    assert len(spans) >= 2, f"expected speech, a pause, then goodbye: {spans}"


@pytest.mark.parametrize(
    ("digit", "tone", "seconds"),
    [("1", [1000], 0.2), ("2", [440, 480], 1.5), ("3", [350, 440], 2.0)],
)
def test_ivr_branch_heard_after_baresip_dtmf(
    server: ServerProcess, digit: str, tone: list[int], seconds: float
) -> None:
    with Baresip(max_call_s=40) as phone:
        phone.dial(server.uri("ivr"))
        phone.wait_established(timeout=10)
        time.sleep(1.5)  # into the menu prompt: the key interrupts it
        phone.send_dtmf(digit)
        assert phone.wait_closed(timeout=30) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    assert audio.tone_present(heard, rate, tone, seconds), f"branch {digit}: tone {tone} not heard"
    others = [t for t in ([1000], [440, 480], [350, 440]) if t != tone]
    for other in others:
        assert not audio.tone_present(heard, rate, other, 0.2), f"heard {other} for digit {digit}"


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_echo_returns_the_callers_audio(server: ServerProcess, tmp_path: Path, codec: str) -> None:
    tone_wav = tmp_path / "tone.wav"
    audio.make_tone_wav(tone_wav, 700, 3.0, lead_s=0.5, tail_s=0.5, amplitude=0.4)
    with Baresip(input_wav=tone_wav, codecs=(codec,), max_call_s=20) as phone:
        phone.dial(server.uri("echo"))
        phone.wait_established(timeout=10)
        time.sleep(4.5)
        heard, rate = phone.recorded_audio()
        phone.hangup()
        phone.wait_closed(timeout=10)
    assert audio.tone_present(heard, rate, 700, 2.0), "the caller's 700 Hz did not come back"
    assert abs(audio.dominant_frequency(heard, rate) - 700) < 5


def test_call_over_tcp(server: ServerProcess) -> None:
    with Baresip(transport="tcp", max_call_s=30) as phone:
        phone.dial(server.uri("welcome", transport="tcp"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=25) == PEER_HUNG_UP
        heard, rate = phone.recorded_audio()
    assert audio.speech_seconds(heard, rate) > 2.0


def test_silence_is_sent_between_prompts(server: ServerProcess) -> None:
    """The stream never stops while the call is up: the recording covers the call."""
    with Baresip(max_call_s=30) as phone:
        phone.dial(server.uri("welcome"))
        phone.wait_established(timeout=10)
        started = time.monotonic()
        phone.wait_closed(timeout=25)
        lasted = time.monotonic() - started
        heard, rate = phone.recorded_audio()
    recorded = len(heard) / rate
    assert recorded == pytest.approx(lasted, abs=0.6)
    assert np.max(np.abs(heard)) < 1.0  # no clipping


def test_rtcp_reports_both_ways(server: ServerProcess, tmp_path: Path) -> None:
    """baresip's RTCP reaches us and ours reaches it: the call's media record has
    the reports received and a round-trip time measured from their report blocks."""
    tone_wav = tmp_path / "tone.wav"
    audio.make_tone_wav(tone_wav, 700, 18.0, amplitude=0.4)
    earlier = len(server.log_records("call ended"))  # the module's server took other calls
    with Baresip(input_wav=tone_wav, max_call_s=30) as phone:
        phone.dial(server.uri("echo"))
        phone.wait_established(timeout=10)
        # Our first report goes out after 1.25-3.75 s, then every 2.5-7.5 s (RFC 3550
        # 6.2, 6.3), and baresip reports every 5 s: an RTT needs our SR to reach it
        # before one of its reports comes back, so give the call three of its rounds.
        time.sleep(15)
        phone.hangup()
        phone.wait_closed(timeout=10)
    deadline = time.monotonic() + 5
    while len(ended := server.log_records("call ended")) == earlier:
        assert time.monotonic() < deadline, "the call was not recorded"
        time.sleep(0.2)
    (record,) = ended[earlier:]
    assert record["cause"] == "normal_clearing", record
    media = record["media"]
    assert media["rtcp_in"] >= 1 and media["rtcp_out"] >= 1
    assert media["rtt_ms"] is not None and 0 <= media["rtt_ms"] < 200
    assert media["lost"] == 0
