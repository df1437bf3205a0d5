"""Callr's voicemail options (App.Param.Vms) on voicemail@v1: the attachment's
name, formats and e-mail (pure), and the action on a fake call and server."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_runner_fakes import FakeCall, FakePrompts, FakeServer, run_actions

from mediaserver.actions.callapi import RecordingResult
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.actions.vms import (
    VoicemailMessage,
    attachment_name,
    check_address,
    check_file_name,
    encode,
    voicemail_email,
    zone,
)
from mediaserver.yamlsource import ProblemsError

LEFT = datetime(2024, 4, 24, 22, 42, 42, tzinfo=UTC)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    t = np.arange(8000) / 8000
    path = tmp_path / "rec00001.wav"
    sf.write(path, (np.sin(2 * np.pi * 800 * t) * 8000).astype(np.int16), 8000)
    return path


def message(path: Path) -> VoicemailMessage:
    return VoicemailMessage("abc12345", "r7k2m9x0", "+447890123456", "+33612345678", LEFT, 1.0,
                            path)  # fmt: skip


def test_file_name_tags(wav: Path) -> None:
    paris = zone("Europe/Paris")
    assert attachment_name("{DATETIME}-{CALLID}", message(wav), paris, "wav") == (
        "20240425-004242-abc12345.wav"
    )
    assert attachment_name("{CALLID}-{MEDIA_HASH}", message(wav), zone(None), "mp3") == (
        "abc12345-r7k2m9x0.mp3"
    )
    assert attachment_name("../{CALLID} x", message(wav), zone(None), "sln") == (
        ".._abc12345_x.sln"
    )


@pytest.mark.parametrize(
    ("template", "words"),
    [("{CALLER}", "unknown tag {CALLER}"), (" ", "must not be empty")],
)
def test_bad_file_names(template: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_file_name(template)


def test_addresses_and_zones() -> None:
    assert check_address(" a@b.c ") == "a@b.c"
    for bad in ("nobody", "a@b@c", "a@b.c, d@e.f"):
        with pytest.raises(ValueError, match="not an e-mail address"):
            check_address(bad)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        zone("Mars/Base")


def test_formats(wav: Path) -> None:
    assert encode(wav, "wav") == wav.read_bytes()
    raw = np.frombuffer(encode(wav, "sln"), dtype="<i2")
    assert np.array_equal(raw, sf.read(wav, dtype="int16")[0])
    mp3, rate = sf.read(io.BytesIO(encode(wav, "mp3")), dtype="int16")
    assert rate == 8000 and len(mp3) >= 7000


def test_a_16khz_message_is_8khz_in_sln(tmp_path: Path) -> None:
    """A wideband phone's message is recorded at 16 kHz; Asterisk's .sln is 8 kHz."""
    wide = tmp_path / "wide.wav"
    t = np.arange(16000) / 16000
    sf.write(wide, np.round(np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 16000)
    raw = np.frombuffer(encode(wide, "sln"), dtype="<i2")
    assert len(raw) == 8000
    spectrum = np.abs(np.fft.rfft(raw.astype(np.float64)))
    assert np.fft.rfftfreq(len(raw), 1 / 8000)[int(np.argmax(spectrum))] == pytest.approx(
        440, abs=2
    )


def test_the_email(wav: Path) -> None:
    mail = voicemail_email(message(wav), ["a@b.c", "d@e.f"], b"RIFF", "x.wav", "wav", zone(None))
    assert mail["To"] == "a@b.c, d@e.f" and mail["Subject"] == "Voicemail from +447890123456"
    body = mail.get_body(("plain",))
    assert body is not None and "Left at:   2024-04-24 22:42:42 UTC" in body.get_content()
    (part,) = list(mail.iter_attachments())
    assert part.get_filename() == "x.wav" and part.get_content_type() == "audio/wav"


# -- the action ----------------------------------------------------------------------------


class RecordingCall(FakeCall):
    """A fake call whose messages are real files."""

    def __init__(self, wav: Path) -> None:
        super().__init__(FakePrompts())
        self.wav = wav

    def _new_recording(self, fmt: str = "wav") -> RecordingResult:
        made = RecordingResult("rec00001", str(self.wav))
        self.recordings.append(made)
        return made


async def test_the_message_is_mailed(wav: Path) -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        "- action: voicemail@v1\n  params: {emails: [a@b.c], file_format: sln}",
        call=RecordingCall(wav),
        server=server,
    )
    assert outcome.status == "completed", outcome.error
    ((mail, what),) = server.mails
    assert what == "voicemail rec00001" and mail["To"] == "a@b.c"
    (part,) = list(mail.iter_attachments())
    assert str(part.get_filename()).endswith(".sln")


async def test_without_smtp_the_action_says_so(wav: Path) -> None:
    server = FakeServer()
    server.smtp = False
    outcome, _, _ = await run_actions(
        "- action: voicemail@v1\n  params: {emails: [a@b.c]}", call=RecordingCall(wav),
        server=server,
    )  # fmt: skip
    assert outcome.status == "failed"
    assert outcome.error is not None and "emails: this server sends no e-mail" in outcome.error


async def test_inactive_hangs_up_at_once() -> None:
    outcome, call, _ = await run_actions("- action: voicemail@v1\n  params: {active: false}")
    assert call.recordings == [] and call.ended
    assert outcome.status in ("completed", "hangup")


async def test_record_false_plays_the_intro_then_hangs_up() -> None:
    _, call, _ = await run_actions("- action: voicemail@v1\n  params: {intro: beep, record: false}")
    assert call.recordings == [] and call.ended
    assert "beep" in " ".join(call.heard())


async def test_a_bad_address_at_run_time_names_the_item() -> None:
    outcome, call, _ = await run_actions(
        "- action: set@v1\n  params: {$to: \"'nobody'\"}\n"
        "- action: voicemail@v1\n  params: {emails: ['${$to}']}",
        server=FakeServer(),
    )
    assert outcome.error is not None and "emails[0]: 'nobody' is not an e-mail" in outcome.error
    assert call.recordings == []  # refused before anything was recorded


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("{file_name: '{WHO}'}", "file_name: unknown tag {WHO}"),
        ("{timezone: Mars/Base}", "timezone: unknown time zone"),
        ("{emails: [nobody]}", "emails[0]: 'nobody' is not an e-mail address"),
        ("{file_format: ogg}", "file_format: must be one of wav, mp3, sln"),
    ],
)
def test_vms_params_are_checked_at_load_time(params: str, words: str) -> None:
    text = f"branches:\n  inbound-call:\n    actions:\n      - action: voicemail@v1\n        params: {params}\n"  # noqa: E501
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(text, "t.yaml")
    assert words in str(caught.value)
