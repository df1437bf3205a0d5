"""What scenarios may ask of the server besides their call: HTTP requests
(``fetch@v1``), webhooks (``webhook@v1``), SIP MESSAGE (``message@v1``), calls
placed for a run, and the scenario compiler (which ``callflow@v1`` is handed
rather than importing it).

:class:`ServerActions` implements
:class:`~mediaserver.actions.callapi.ServerApi` for the runner. HTTP goes
through :class:`~mediaserver.fetch.HttpFetcher`. Webhooks are queued on the
dispatcher, so a run never waits for a receiver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mediaserver.actions.callapi import FetchResult, MailUnavailable
from mediaserver.actions.model import Scenario
from mediaserver.actions.scenario import load_scenario_data
from mediaserver.audio_files import AudioFileBusy, AudioFileGone
from mediaserver.audio_phone import CodeRefused, RecordingLine
from mediaserver.calls.dialer import Dialer
from mediaserver.fetch import HttpFetcher
from mediaserver.mail import Mailer
from mediaserver.webhooks.delivery import WebhookDispatcher

CallStarter = Callable[..., Awaitable[str]]
"""``Runs.start_scenario_call``: places a call that runs a scenario."""


class ServerActions:
    def __init__(
        self,
        dialer: Dialer,
        webhooks: WebhookDispatcher,
        user_agent: str,
        start_call: CallStarter | None = None,
        mailer: Mailer | None = None,
        router: Callable[[str], str | None] | None = None,
        recording_line: RecordingLine | None = None,
    ) -> None:
        self.dialer = dialer
        self.webhooks = webhooks
        self._fetcher = HttpFetcher(user_agent)
        self._start_call = start_call
        self._mailer = mailer
        self._router = router
        self._recording_line = recording_line

    def route_of(self, number: str) -> str | None:
        return None if self._router is None else self._router(number)

    def audio_file_for_code(self, code: str) -> str | None:
        if self._recording_line is None:
            return None
        try:
            return self._recording_line.file_for_code(code)
        except CodeRefused:
            return None

    async def record_audio_file(self, code: str, recording: str) -> str:
        if self._recording_line is None:
            raise ValueError("this server records no audio files over the phone")
        try:
            saved = await self._recording_line.save(code, Path(recording))
        except (CodeRefused, AudioFileBusy) as exc:
            raise ValueError(str(exc)) from None
        except AudioFileGone:
            raise ValueError("the audio file was deleted since the code was given") from None
        except OSError as exc:
            raise ValueError(f"the recording cannot be read: {exc.strerror}") from None
        return saved.id

    async def close(self) -> None:
        await self._fetcher.close()
        if self._mailer is not None:
            await self._mailer.close()

    def send_mail(self, message: EmailMessage, what: str) -> None:
        if self._mailer is None:
            raise MailUnavailable(
                "this server sends no e-mail: add an smtp: section (host, from) to the "
                "config file (docs/configuration.md)"
            )
        self._mailer.post(message, what)

    async def fetch(
        self,
        url: str,
        *,
        method: str,
        headers: Mapping[str, str],
        body: object,
        timeout: float,
    ) -> FetchResult:
        return await self._fetcher.fetch(
            url, method=method, headers=headers, body=body, timeout=timeout
        )

    def webhook(self, url: str | None, event: str, data: Mapping[str, object]) -> None:
        if url is None:
            self.webhooks.publish(event, "", dict(data))
        else:
            self.webhooks.publish_to(url, event, dict(data))

    async def send_message(self, to: str, text: str, *, sender: str | None) -> int | None:
        return await self.dialer.send_message(to, text, sender=sender or "mediaserver")

    def compile_scenario(self, data: Any, filename: str) -> Scenario:
        return load_scenario_data(data, filename)

    async def start_call(
        self,
        to: str,
        scenario: Scenario,
        *,
        caller_id: str | None,
        variables: Mapping[str, object],
        timeout: float,
    ) -> str:
        if self._start_call is None:
            raise ValueError("this server cannot place calls for actions")
        return await self._start_call(
            to, scenario, caller_id=caller_id, variables=dict(variables), timeout=timeout
        )
