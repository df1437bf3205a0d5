"""E-mail delivery through the SMTP server of the config's ``smtp:`` section.

Theory of operation: :meth:`Mailer.post` queues a message and returns at
once, so a run (and its call) never waits for the mail server. Each message
is sent in a thread of its own with the standard library's :mod:`smtplib`
(a blocking client: kept off the event loop), over a new connection:
``security: tls`` connects with TLS (RFC 8314), ``starttls`` upgrades the
connection first (RFC 3207) and ``none`` sends in the clear (a relay on the
same host or network). With ``username`` the client logs in (RFC 4954).
A delivery that fails is logged with the server's answer and not retried:
the message's recording stays on disk and in ``GET /api/recordings``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from mediaserver.config import SmtpConfig
from mediaserver.log import get_logger

log = get_logger("mail")

CLOSE_WAIT = 10.0  # seconds a stopping server gives the messages still being sent


class Mailer:
    """Sends the server's e-mails (module docstring)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._sending: set[asyncio.Task[None]] = set()

    def post(
        self,
        message: EmailMessage,
        what: str,
        on_sent: Callable[[bool], None] | None = None,
    ) -> None:
        """Queue ``message`` (``what`` names it in the log); ``on_sent`` hears how it went."""
        message["From"] = self.config.sender
        task = asyncio.get_running_loop().create_task(self._deliver(message, what, on_sent))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(
        self, message: EmailMessage, what: str, on_sent: Callable[[bool], None] | None
    ) -> None:
        sent = False
        try:
            await asyncio.to_thread(self.send_now, message)
            sent = True
            log.info("mail sent", what=what, to=message["To"], server=self.config.host)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning(
                "mail not sent",
                what=what,
                to=message["To"],
                server=f"{self.config.host}:{self.config.port}",
                reason=str(exc) or type(exc).__name__,
            )
        if on_sent is not None:
            on_sent(sent)

    def send_now(self, message: EmailMessage) -> None:
        """Deliver one message, blocking (run it in a thread)."""
        config = self.config
        smtp: smtplib.SMTP
        if config.security == "tls":
            context = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if config.username is not None and config.password is not None:
                smtp.login(config.username, config.password)
            smtp.send_message(message)

    async def close(self) -> None:
        """Let the messages being sent finish, a little while."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=CLOSE_WAIT)
