"""The mailer (mediaserver/mail.py) against a loopback aiosmtpd: delivery with a
login, and a server that cannot be reached (logged, the caller told, never raised)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from mediaserver.config import SmtpConfig
from mediaserver.mail import Mailer
from tests.support.net import free_port

# A loopback test server: AUTH without TLS is what it is for.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"vm", b"secret")
    return AuthResult(success=good)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port("tcp")
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
        auth_require_tls=False, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def mail() -> EmailMessage:
    message = EmailMessage()
    message["To"] = "desk@example.com"
    message["Subject"] = "hello"
    message.set_content("body")
    return message


async def send(mailer: Mailer) -> bool:
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    mailer.post(mail(), "test", outcome.set_result)
    return await asyncio.wait_for(outcome, 20)


async def test_delivered_with_a_login(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    config = SmtpConfig("127.0.0.1", "vm@example.com", port, "none", "vm", "secret", 5.0)
    assert await send(Mailer(config))
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "vm@example.com" and envelope.rcpt_tos == ["desk@example.com"]


async def test_a_wrong_password_is_not_sent(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    config = SmtpConfig("127.0.0.1", "vm@example.com", port, "none", "vm", "wrong", 5.0)
    assert not await send(Mailer(config))
    assert inbox.envelopes == []


async def test_an_unreachable_server_is_logged_not_raised() -> None:
    config = SmtpConfig("127.0.0.1", "vm@example.com", free_port("tcp"), "none", timeout=2.0)
    mailer = Mailer(config)
    assert not await send(mailer)
    await mailer.close()
