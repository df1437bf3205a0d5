"""One call controlled in real time by a REALTIME10 application (Callr v1).

Theory of operation: the call is answered (the seed's RT.Request sample has
``call_status: "UP"``), then the server POSTs an RT.Request to the app's URL
and reads the RT.Response: a ``command`` with its ``params``, a
``command_id`` and ``variables``. The command runs as native action items
(:func:`~.protocol.native_entries`, compiled by the server's scenario
compiler, run with ``context.run_actions``); when it is done the next
RT.Request carries ``command``, ``command_id``, ``command_result`` and
``command_error``, and the ``variables`` of the last response untouched
(seed: "we will send it back without touching it in our next request").

Decisions where the seed is silent (docs/realtime.md):

- A response that is not a valid command is not run: the next request reports
  it in ``command_error`` so the app can answer again; after
  :data:`MAX_REFUSED` of them in a row the call is hung up.
- No response within 5 s (seed: "You have to send it within 5 seconds"), a
  non-2xx answer or an unreachable URL: the call is hung up and the action fails.
- ``hangup`` ends the call; so does the caller. Either way a last RT.Request
  with ``call_status: "HANGUP"`` goes out (its answer is not read), carrying
  the command that was running, if any, with ``command_error`` saying why.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import CallEnded, FetchError
from mediaserver.actions.cdr_field import CUSTOMER_FIELD, customer_field
from mediaserver.actions.definition import ActionContext, ActionFailed
from mediaserver.actions.model import ActionItem, ScenarioCompiler
from mediaserver.callflow.callback import background
from mediaserver.callflow.translate import TranslationError, build_items
from mediaserver.realtime.protocol import (
    HANGUP,
    RESPONSE_SECONDS,
    RESULT,
    UP,
    CallFacts,
    Command,
    CommandError,
    Outcome,
    call_id,
    native_entries,
    parse_response,
    request_body,
    result_text,
    seed_datetime,
)
from mediaserver.sip.uri import NameAddress, SipSyntaxError

MAX_REFUSED = 3
"""Invalid RT.Responses in a row after which the call is hung up (a loop guard)."""


class RealtimeFailure(Exception):
    """The app did not answer usably (timeout, non-2xx, not JSON): the call ends."""


class RealtimeSession:
    """One call's REALTIME10 dialogue, run by ``realtime@v1``."""

    def __init__(
        self,
        context: ActionContext,
        url: str,
        *,
        compile_scenario: ScenarioCompiler,
        auth: tuple[str, str] | None = None,
        timeout: float = RESPONSE_SECONDS,
    ) -> None:
        self.context = context
        self.url = url
        self.compile = compile_scenario
        self.timeout = timeout
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        if auth is not None:
            # Seed, REALTIME10: login/password "if your URL is password protected (HTTP
            # Basic Authentication)" (RFC 7617 section 2).
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.log = context.log.bind(realtime=url)
        self.variables: Mapping[str, Any] = {}
        self.running: Command | None = None
        self.facts = _facts(context, url)

    async def run(self) -> None:
        """Run the dialogue until the call ends; ActionFailed when the app failed it."""
        call = self.context.call
        try:
            if not call.answered:
                await self.context.run_actions(self._items([{"action": "answer@v1"}]))
            await self._loop()
        except RealtimeFailure as failure:
            self.log.warning("realtime app failed, hanging up", reason=str(failure))
            await call.hangup("normal_clearing" if call.answered else "unavailable")
            await self._hangup_request(str(failure))
            raise ActionFailed(f"realtime: {failure}") from None
        except asyncio.CancelledError:
            background(self._hangup_request("the call ended"))
            raise
        except CallEnded:
            await self._hangup_request("the call ended")
            raise
        await call.hangup()
        await self._hangup_request("")

    async def _loop(self) -> None:
        outcome = Outcome()
        refused = 0
        while True:
            data = await self._ask(UP, outcome)
            try:
                command = parse_response(data)
                items = self._items(native_entries(command))
            except (CommandError, TranslationError) as exc:
                refused += 1
                self.log.info("realtime response refused", reason=str(exc))
                if refused >= MAX_REFUSED:
                    message = f"{refused} invalid RT.Responses in a row: {exc}"
                    raise RealtimeFailure(message) from None
                outcome = _refused(data, str(exc))
                continue
            refused = 0
            self.variables = command.variables
            self.log.info("realtime command", command=command.name, command_id=command.command_id)
            if command.name == "hangup":
                self.running = command
                return
            outcome = await self._execute(command, items)

    async def _execute(self, command: Command, items: tuple[ActionItem, ...]) -> Outcome:
        sandbox = self.context.sandbox
        sandbox.assign(RESULT, None)
        self.running = command
        try:
            await self.context.run_actions(items)
        except CallEnded:
            raise
        except Exception as exc:
            self.running = None
            return Outcome(command.name, command.command_id, "", str(exc))
        self.running = None
        value = result_text(command.name, sandbox.get(RESULT))
        return Outcome(command.name, command.command_id, value, "")

    def _items(self, entries: list[dict[str, Any]]) -> tuple[ActionItem, ...]:
        return build_items(entries, self.compile)

    # -- requests ----------------------------------------------------------------------------

    async def _post(self, status: str, outcome: Outcome) -> Any:
        body = request_body(self.facts, status, outcome, self.variables)
        try:
            # The server's client gets a longer timeout, so that this one is what fires.
            async with asyncio.timeout(self.timeout):
                response = await self.context.server.fetch(
                    self.url,
                    method="POST",
                    headers=self.headers,
                    body=body,
                    timeout=self.timeout + 1,
                )
        except TimeoutError:
            message = f"POST {self.url}: no RT.Response within {self.timeout:g} s"
            raise RealtimeFailure(message) from None
        except FetchError as exc:
            raise RealtimeFailure(f"POST {self.url}: {exc}") from None
        self.log.info("realtime request", call_status=status, status=response.status)
        if not 200 <= response.status < 300:
            raise RealtimeFailure(f"POST {self.url} answered {response.status}")
        return response.body

    async def _ask(self, status: str, outcome: Outcome) -> Any:
        data = await self._post(status, outcome)
        if isinstance(data, str):
            try:
                return json.loads(data)
            except ValueError:
                return data
        return data

    async def _hangup_request(self, error: str) -> None:
        """The last RT.Request (``call_status: HANGUP``); a failure is only logged."""
        running = self.running
        outcome = Outcome()
        if running is not None:
            outcome = Outcome(running.name, running.command_id, "", error)
        try:
            await self._post(HANGUP, outcome)
        except RealtimeFailure as failure:
            self.log.info("realtime HANGUP request not delivered", reason=str(failure))


def _refused(data: Any, error: str) -> Outcome:
    """The next request's fields for a response that was not run."""
    if isinstance(data, dict):
        name = data.get("command")
        return Outcome(name if isinstance(name, str) else "", data.get("command_id"), "", error)
    return Outcome("", None, "", error)


def app_hash(url: str) -> str:
    """Seed ``app`` ("Voice App ID", a hash): a stable id of the app's URL."""
    return hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:8].upper()


def _facts(context: ActionContext, url: str) -> CallFacts:
    info = context.call.info
    run = context.sandbox.get("$run")
    run_id = run.get("id") if isinstance(run, dict) else None
    outbound = info.get("direction") == "outbound"
    return CallFacts(
        app=app_hash(url),
        callid=call_id(str(info.get("id") or "")),
        cli_number=str(info.get("from") or ""),
        cli_name=_display_name(info.get("headers")),
        number=str(info.get("to") or ""),
        date_started=seed_datetime(int(info.get("started_at") or 0)),
        request_hash=str(run_id) if outbound and run_id else "",
        # REALTIME10.Call.Options cdr_field: the run's customer field (actions/cdr_field.py).
        cdr_field=customer_field(context.sandbox.get(CUSTOMER_FIELD)) or "",
    )


def _display_name(headers: object) -> str:
    """``cli_name``: the display name of the call's From (RFC 3261 20.20), "" without one."""
    if not isinstance(headers, dict):
        return ""
    value = next((v for k, v in headers.items() if str(k).lower() in ("from", "f")), None)
    if not isinstance(value, str):
        return ""
    try:
        return NameAddress.parse(value).display_name or ""
    except SipSyntaxError:
        return ""
