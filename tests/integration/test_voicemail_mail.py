"""A voicemail left by a real call is mailed (Callr's App.Param.Vms).

baresip calls a scenario whose voicemail@v1 has an intro, ``emails`` and a
``file_name``; the caller sends an 800 Hz tone. A local SMTP server
(aiosmtpd, started by the test) must receive one mail from the configured
sender to both recipients, with the message attached under the seed's tags:
a WAV that holds the tone, and the same as MP3 with ``file_format: mp3``.
"""

from __future__ import annotations

import email
import io
import time
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.net import free_port

pytestmark = pytest.mark.integration

SCENARIO = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: set@v1
        params: {{$boss: "'boss@example.com'"}}
      - action: voicemail@v1
        params:
          intro: beep
          max_length: 3
          emails: ["desk@example.com", "${{$boss}}"]
          file_name: "vm-{{CALLID}}-{{MEDIA_HASH}}"
          file_format: {fmt}
          timezone: Europe/Paris
      - action: log@v1
        params: {{message: "left ${{$recording.id}}"}}
      - action: hangup@v1
"""


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        self.mails.append((envelope, email.message_from_bytes(raw, policy=default_policy)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port("tcp")
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def leave_message(tmp_path: Path, port: int, fmt: str) -> tuple[ServerProcess, str]:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "vm.yaml").write_text(SCENARIO.format(fmt=fmt))
    smtp_config = (
        f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
        "  from: voicemail@mediaserver.test\n"
    )
    server = start_server(tmp_path / "server", routes={"vm": "vm"}, scenarios=scenarios,
                          extra_config=smtp_config)  # fmt: skip
    tone = audio.make_tone_wav(tmp_path / "tone.wav", 800, 8.0, amplitude=0.4)
    try:
        with Baresip(input_wav=tone, max_call_s=30) as phone:
            phone.dial(server.uri("vm"))
            phone.wait_established(timeout=10)
            assert phone.wait_closed(timeout=20) == "Connection reset by peer"
    finally:
        server.stop()
    (left,) = [r for r in server.log_records() if str(r.get("event", "")).startswith("left ")]
    return server, str(left["event"]).split(" ")[1]


def wait_mail(inbox: Inbox, timeout: float = 15.0) -> tuple[Envelope, Message]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not inbox.mails:
        time.sleep(0.1)
    assert inbox.mails, "no mail reached the SMTP server"
    return inbox.mails[0]


def attachment(mail: Message) -> tuple[str, bytes, str]:
    assert isinstance(mail, EmailMessage)
    (part,) = list(mail.iter_attachments())
    payload: Any = part.get_payload(decode=True)
    return str(part.get_filename()), bytes(payload), part.get_content_type()


def test_a_voicemail_is_mailed_with_the_wav(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    server, recording_id = leave_message(tmp_path, port, "wav")
    envelope, mail = wait_mail(inbox)
    assert envelope.mail_from == "voicemail@mediaserver.test"
    assert sorted(envelope.rcpt_tos) == ["boss@example.com", "desk@example.com"]
    assert mail["Subject"] == "Voicemail from tester"
    name, data, kind = attachment(mail)
    call_id = server.log_records("voicemail mail queued")[0]["call_id"]
    assert name == f"vm-{call_id}-{recording_id}.wav" and kind == "audio/wav"
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 8000 and 2.0 <= len(samples) / rate <= 3.5
    assert audio.tone_present(np.asarray(samples), rate, 800, 1.5)
    # The file on disk and the attachment are the same recording.
    assert recording_id in str(mail.get_body(("plain",)))


def test_the_attachment_as_mp3(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    leave_message(tmp_path, port, "mp3")
    _, mail = wait_mail(inbox)
    name, data, kind = attachment(mail)
    assert name.endswith(".mp3") and kind == "audio/mpeg"
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert audio.tone_present(np.asarray(samples), rate, 800, 1.5)
