"""G.722 and Opus with a real softphone, checked by what it heard.

baresip with only G.722 (then only Opus) calls ``echo`` playing a 5.5 kHz
tone: it must hear that tone back, which G.711 (4 kHz of bandwidth) could not
carry, so the two legs' packets were relayed untouched. Then a G.722 caller is
bridged by dial@v1 to a PCMU callee: the server decodes one codec and encodes
the other, and each phone must hear the other's tone and not its own. An
Opus caller presses a key in the IVR (telephone-event/8000, all baresip
offers) and hears the tone its branch plays, encoded by its leg's own coder.
A G.722 caller hears a 44.1 kHz sound file's 6 kHz tone and espeak-ng's
sibilants above 4 kHz: prompts are played from their 16 kHz versions.
Recordings (dial@v1 ``record: true``): a G.722 caller bridged to a G.722
callee is recorded at 16 kHz with both tones above 4 kHz kept; the bridge to
the PCMU callee is recorded at 8 kHz, as G.711 calls always are.
One server for the module, on [G722, opus, PCMU, PCMA]."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from tests.integration.conftest import SCENARIOS, ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

WIDE_TONE = 5500  # above G.711's 4 kHz band: heard back only over a wideband path
CALLEE_WIDE_TONE = 6500  # what the G.722 callee sends
PROMPT_TONE = 6000  # in a 44.1 kHz sound file the scenario plays
BRIDGE = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params:
          targets: ["{target}"]
          timeout: 10
          record: true
      - action: hangup@v1
"""
PROMPTS = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: play@v1
        params: {url: wide.wav}
      - action: say@v1
        params: {text: "Sixty six sisters sing softly, so she says."}
      - action: hangup@v1
"""
ECHO = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: echo@v1
"""


@pytest.fixture(scope="module")
def callee(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baresip]:
    """A PCMU-only phone answering at once, sending 1100 Hz."""
    tone = tmp_path_factory.mktemp("callee") / "b.wav"
    audio.make_tone_wav(tone, 1100, 10.0, amplitude=0.4)
    with Baresip(input_wav=tone, auto_answer=True, codecs=("PCMU",), max_call_s=30) as phone:
        yield phone


@pytest.fixture(scope="module")
def wide_callee(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baresip]:
    """A G.722-only phone answering at once, sending a tone above 4 kHz."""
    tone = tmp_path_factory.mktemp("wide_callee") / "b.wav"
    audio.make_tone_wav(tone, CALLEE_WIDE_TONE, 10.0, 16000, amplitude=0.4)
    with Baresip(
        user="widecallee",
        input_wav=tone,
        auto_answer=True,
        codecs=("G722",),
        input_rate=16000,
        max_call_s=30,
    ) as phone:
        yield phone


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, callee: Baresip, wide_callee: Baresip
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("wideband")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    (scenarios / "echo.yaml").write_text(ECHO)
    (scenarios / "ivr.yaml").write_text((SCENARIOS / "ivr.yaml").read_text())
    (scenarios / "bridge.yaml").write_text(BRIDGE.format(target=callee.sip_uri))
    (scenarios / "widebridge.yaml").write_text(BRIDGE.format(target=wide_callee.sip_uri))
    (scenarios / "prompts.yaml").write_text(PROMPTS)
    audio.make_tone_wav(scenarios / "wide.wav", PROMPT_TONE, 1.0, 44100, amplitude=0.4)
    proc = start_server(
        tmp / "server",
        routes={
            "echo": "echo",
            "bridge": "bridge",
            "widebridge": "widebridge",
            "ivr": "ivr",
            "prompts": "prompts",
        },
        scenarios=scenarios,
        codecs="[G722, opus, PCMU, PCMA]",
    )
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


@pytest.mark.parametrize(("codec", "rate"), [("G722", 16000), ("opus", 48000)])
def test_a_wideband_caller_hears_its_wideband_tone_echoed(
    server: ServerProcess, tmp_path: Path, codec: str, rate: int
) -> None:
    tone = tmp_path / "tone.wav"
    audio.make_tone_wav(tone, WIDE_TONE, 3.0, rate, amplitude=0.4, lead_s=0.3)
    with Baresip(input_wav=tone, codecs=(codec,), input_rate=rate, max_call_s=20) as phone:
        phone.dial(server.uri("echo"))
        phone.wait_established(timeout=10)
        time.sleep(3.0)
        heard, heard_rate = phone.recorded_audio()
        phone.hangup()
        phone.wait_closed(timeout=10)
    assert heard_rate == rate, f"baresip did not decode {codec}"
    assert audio.tone_present(heard, heard_rate, WIDE_TONE, 1.5), f"no {WIDE_TONE} Hz back"
    assert abs(audio.dominant_frequency(heard, heard_rate) - WIDE_TONE) < 10


def test_a_g722_caller_and_a_pcmu_callee_hear_each_other(
    server: ServerProcess, callee: Baresip, tmp_path: Path
) -> None:
    tone = tmp_path / "a.wav"
    audio.make_tone_wav(tone, 700, 10.0, 16000, amplitude=0.4)
    with Baresip(input_wav=tone, codecs=("G722",), input_rate=16000, max_call_s=30) as caller:
        caller.dial(server.uri("bridge"))
        caller.wait_established(timeout=10)
        callee.wait_established(timeout=10)
        time.sleep(3.0)
        heard_a, rate_a = caller.recorded_audio()
        heard_b, rate_b = callee.recorded_audio()
        caller.hangup()
        caller.wait_closed(timeout=10)
        callee.wait_closed(timeout=10)
    assert (rate_a, rate_b) == (16000, 8000)  # G.722 on one side, PCMU on the other
    assert audio.tone_present(heard_a, rate_a, 1100, 1.5), "the G.722 caller did not hear B"
    assert audio.tone_present(heard_b, rate_b, 700, 1.5), "the PCMU callee did not hear A"
    assert not audio.tone_present(heard_a, rate_a, 700, 0.5), "A heard itself"
    assert not audio.tone_present(heard_b, rate_b, 1100, 0.5), "B heard itself"
    bridged = server.log_records("bridged")
    assert bridged and bridged[-1]["transcoding"] is True
    recorded, rate = audio.read_mono(saved_recording(server, bridged[-1]["call_id"]))
    assert rate == 8000, "a PCMU leg in the recording: 8 kHz as G.711 calls always are"
    assert audio.tone_present(recorded, rate, [700, 1100], 1.5)


def test_a_bridge_of_two_g722_phones_is_recorded_at_16khz_with_its_wide_band(
    server: ServerProcess, wide_callee: Baresip, tmp_path: Path
) -> None:
    tone = tmp_path / "a.wav"
    audio.make_tone_wav(tone, WIDE_TONE, 10.0, 16000, amplitude=0.4)
    with Baresip(input_wav=tone, codecs=("G722",), input_rate=16000, max_call_s=30) as caller:
        caller.dial(server.uri("widebridge"))
        caller.wait_established(timeout=10)
        wide_callee.wait_established(timeout=10)
        time.sleep(3.0)
        caller.hangup()
        caller.wait_closed(timeout=10)
        wide_callee.wait_closed(timeout=10)
    bridged = server.log_records("bridged")
    assert bridged and bridged[-1]["transcoding"] is False
    path = saved_recording(server, bridged[-1]["call_id"])
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    assert rate == 16000, "both legs are G.722: the recording keeps 16 kHz"
    left, right = data[:, 0], data[:, 1]
    assert audio.tone_present(left, rate, WIDE_TONE, 1.5), "the caller's 5.5 kHz tone"
    assert audio.tone_present(right, rate, CALLEE_WIDE_TONE, 1.5), "the callee's 6.5 kHz tone"
    for side, hz in ((left, WIDE_TONE), (right, CALLEE_WIDE_TONE)):
        assert abs(audio.dominant_frequency(side, rate) - hz) < 10


def saved_recording(server: ServerProcess, call_id: str, timeout: float = 10.0) -> Path:
    """The file of the recording the call ``call_id`` saved (its "recording saved" line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = server.log_records("recording saved")
        for record in records:
            if record.get("call_id") == call_id:
                return Path(str(record["path"]))
        time.sleep(0.1)
    raise AssertionError(f"no recording saved for call {call_id}")


def test_an_opus_caller_chooses_in_the_ivr_and_hears_its_branch(server: ServerProcess) -> None:
    with Baresip(codecs=("opus",), input_rate=48000, max_call_s=40) as phone:
        phone.dial(server.uri("ivr"))
        phone.wait_established(timeout=10)
        time.sleep(1.5)  # into the menu prompt: the key interrupts it
        phone.send_dtmf("3")
        assert phone.wait_closed(timeout=30) == "Connection reset by peer"
        heard, rate = phone.recorded_audio()
    assert rate == 48000
    assert audio.speech_seconds(heard, rate) > 1.0, "the prompts were not heard"
    assert audio.tone_present(heard, rate, [350, 440], 1.5), "the dial tone of option 3"
    assert server.log_records("ivr: option 3 tone"), "the key did not reach the gather"


def test_a_g722_caller_hears_prompts_above_4khz(server: ServerProcess) -> None:
    with Baresip(codecs=("G722",), input_rate=16000, max_call_s=30) as phone:
        phone.dial(server.uri("prompts"))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=20) == "Connection reset by peer"
        heard, rate = phone.recorded_audio()
    assert rate == 16000
    assert audio.tone_present(heard, rate, PROMPT_TONE, 0.7), "the file's 6 kHz tone"
    spoken = heard[int(1.5 * rate) :]  # after the tone: the speech
    assert audio.speech_seconds(spoken, rate) > 1.0, "the speech was not heard"
    assert high_band_share(spoken, rate) > 0.02, "no speech above 4 kHz: an 8 kHz prompt"


def high_band_share(samples: npt.NDArray[np.float64], rate: int) -> float:
    """The share of the energy above 4 kHz (none in audio that was ever 8 kHz)."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[freqs > 4200].sum() / max(float(spectrum.sum()), 1e-12))
