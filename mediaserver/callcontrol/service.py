"""The live controlled calls: parking inbound calls, dialling, posting events.

:class:`CallControl` keeps every call under Call Control by its
``call_control_id`` (the call's id) while it lives, and the ended ones for a
while after (so that a command on a call that has just ended gets the seed's
"call has already ended" rather than "not found"). It posts each event to the
call's webhook through an :class:`EventPoster` (``webhooks/``: signed,
retried, logged) and publishes it on the live event bus too.

Media commands (speak, playback, gather, record) run as native action items
on the call (:meth:`ActionRunner.run_items`), so they behave exactly as the
scenario actions of the same name.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.actions.amd import MachineDetection, follows_greeting, reports_greeting_end
from mediaserver.actions.callapi import CallEnded
from mediaserver.actions.runner import RunOutcome
from mediaserver.callcontrol.controlled import ControlledCall, Direction, Webhook
from mediaserver.callcontrol.payloads import call_payload, hangup_cause, hangup_source
from mediaserver.calls.outbound import OutboundCall
from mediaserver.log import get_logger
from mediaserver.media.amd import AmdConfig

if TYPE_CHECKING:
    from mediaserver.actions.model import Scenario
    from mediaserver.calls import Call

log = get_logger("callcontrol")

PREFIX = "call-control:"
"""A route target ``call-control:URL`` or ``call-control:APPLICATION_ID``."""
URL_FIRST_COMMAND_TIMEOUT = 30.0
"""Seconds a call parked for a bare URL (no application) waits for its first command."""
KEEP_ENDED = 1000
"""Ended calls remembered (their ids answer "call has already ended")."""


class EventPoster(Protocol):
    """Queues one Call Control event for one URL (``WebhookDispatcher.publish_to``)."""

    def __call__(
        self, webhook: Webhook, event_type: str, payload: Mapping[str, Any], subject: str
    ) -> None: ...


@dataclass(frozen=True)
class Application:
    """What a call takes from its Call Control application (the seed's "connection")."""

    id: str
    webhook: Webhook
    first_command_timeout: float | None


class ApplicationLookup(Protocol):
    def __call__(self, app_id: str) -> Application | None: ...


class ActionRunner(Protocol):
    """Runs native action items on a call (``runs.py``)."""

    def compile_items(self, actions: list[Any], label: str) -> Scenario: ...

    async def run_items(
        self, call: Call, scenario: Scenario, label: str, variables: Mapping[str, object]
    ) -> RunOutcome: ...


def route_target(target: str) -> str | None:
    """What follows ``call-control:`` in a route target (URL or application id); None
    for any other target."""
    return target[len(PREFIX) :] if target.startswith(PREFIX) else None


class CallControl:
    def __init__(
        self,
        post: EventPoster,
        runner: ActionRunner,
        *,
        applications: ApplicationLookup,
        dialer: CallPlacer,
        events: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._post = post
        self.runner = runner
        self.dialer = dialer
        self._applications = applications
        self._events = events
        self._live: dict[str, ControlledCall] = {}
        self._ended: OrderedDict[str, ControlledCall] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a background task (a dial, a media command) until it is done."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- finding calls -----------------------------------------------------------------

    def find(self, call_control_id: str) -> ControlledCall | None:
        """A controlled call, live or recently ended."""
        return self._live.get(call_control_id) or self._ended.get(call_control_id)

    def controls(self, call_id: str) -> bool:
        return call_id in self._live

    def live(self) -> list[ControlledCall]:
        return list(self._live.values())

    def application(self, app_id: str) -> Application | None:
        return self._applications(app_id)

    # -- taking calls in ---------------------------------------------------------------------

    def adopt(
        self,
        call: Call,
        *,
        direction: Direction,
        from_: str,
        to: str,
        connection_id: str,
        webhook: Webhook,
        client_state: str | None = None,
        session_id: str | None = None,
    ) -> ControlledCall:
        """Put ``call`` under Call Control; its hang-up is posted when it ends."""
        cc = ControlledCall(call, direction, from_, to, connection_id, webhook, client_state)
        if session_id is not None:
            cc.call_session_id = session_id
        self._live[cc.call_control_id] = cc
        call.ended_future.add_done_callback(lambda _: self._on_ended(cc))
        call.digit_listeners.append(lambda key: self.post(cc, "call.dtmf.received", digit=key))
        # The live event bus has the call's media events already: to the webhook only.
        call.media_listeners.append(lambda kind, _: self.post(cc, kind, publish=False))
        return cc

    async def serve_parked(self, call: Call, target: str) -> None:
        """An inbound call routed to ``call-control:TARGET``: ring, post
        ``call.initiated`` and wait for commands until the call is over. Without a
        first command in time (the application's ``first_command_timeout``), it is
        refused with 480."""
        app = None if target.startswith(("http://", "https://")) else self.application(target)
        if app is None and not target.startswith(("http://", "https://")):
            log.warning("call-control route names no application", target=target)
            await call.reject("unavailable")
            return
        webhook = app.webhook if app is not None else Webhook(target)
        timeout = app.first_command_timeout if app is not None else URL_FIRST_COMMAND_TIMEOUT
        cc = self.adopt(
            call,
            direction="incoming",
            from_=call.from_user,
            to=call.to_user,
            connection_id=app.id if app is not None else "",
            webhook=webhook,
        )
        await call.ring()
        self.post(cc, "call.initiated", state="parked")
        if timeout is not None:
            # asyncio.wait, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that comes as the command does, and the run would not give way to actions
            # injected then (POST /api/calls/{id}/actions).
            waiting: asyncio.Future[Any] = asyncio.ensure_future(cc.commanded.wait())
            try:
                await asyncio.wait({waiting, call.ended_future}, timeout=timeout)
            finally:
                waiting.cancel()
            if not cc.commanded.is_set() and not call.ended:
                log.info("no first command in time", call_id=call.id, seconds=timeout)
                await call.hangup("timeout")
        await asyncio.shield(call.ended_future)

    # -- events -----------------------------------------------------------------------------

    def post(
        self, cc: ControlledCall, event_type: str, *, publish: bool = True, **fields: Any
    ) -> None:
        """Post ``event_type`` about ``cc`` to its webhook (and, with ``publish``, on the
        live event bus)."""
        payload = call_payload(cc, event_type, **fields)
        if cc.webhook.url is not None:
            self._post(cc.webhook, event_type, payload, cc.call_control_id)
        if publish and self._events is not None:
            self._events(event_type, {"call_id": cc.call_control_id, **payload})

    def post_payload(
        self, webhook: Webhook, event_type: str, payload: dict[str, Any], subject: str
    ) -> None:
        """Post an event whose payload is made already (conference and queue events)."""
        if webhook.url is not None:
            self._post(webhook, event_type, payload, subject)
        if self._events is not None:
            call_id = payload.get("call_control_id")  # the event stream's call_id filter
            self._events(event_type, {**({"call_id": call_id} if call_id else {}), **payload})

    def _on_ended(self, cc: ControlledCall) -> None:
        cc.cancel_tasks()
        call = cc.call
        status = call.final_status
        self.post(
            cc,
            "call.hangup",
            state="hangup",
            hangup_cause=hangup_cause(call.hangup_cause),
            hangup_source=hangup_source(call.hangup_source, cc.direction),
            sip_hangup_cause=str(status) if status is not None and status >= 300 else "unspecified",
        )
        self._live.pop(cc.call_control_id, None)
        self._ended[cc.call_control_id] = cc
        while len(self._ended) > KEEP_ENDED:
            self._ended.popitem(last=False)


# -- dialling ---------------------------------------------------------------------------------

_UNANSWERED_CAUSES = {
    "busy": "busy",
    "no-answer": "no_answer",
    "canceled": "originator_cancel",
    "failed": "rejected",
}
_STATUS_CAUSES = {404: "not_found", 410: "not_found", 484: "not_found", 603: "declined"}


@dataclass(frozen=True)
class DialRequest:
    """``POST /calls`` as the service needs it (already checked by the route)."""

    to: str
    from_: str
    connection_id: str
    webhook: Webhook
    timeout: float
    time_limit: float | None
    headers: Mapping[str, str]
    client_state: str | None
    session_id: str | None = None
    credentials: tuple[str, str] | None = None
    """``sip_auth_username``/``password``: answer the callee's digest challenge."""
    display_name: str | None = None
    machine_detection: MachineDetectionRequest | None = None
    on_answer: Callable[[ControlledCall], Awaitable[None]] | None = None
    """What happens once the callee answers (a transfer bridges it), beside the event."""


@dataclass(frozen=True)
class MachineDetectionRequest:
    """``answering_machine_detection`` (a mode other than ``disabled``) and its config."""

    mode: str
    config: AmdConfig


async def _detect_machine(
    control: CallControl, cc: ControlledCall, request: MachineDetectionRequest
) -> None:
    """Listen to the callee from the answer: ``call.machine.detection.ended``, then for
    the modes that follow the greeting, ``call.machine.greeting.ended``."""
    follow = follows_greeting(request.mode)
    try:
        async with MachineDetection(cc.call, request.config, follow_greeting=follow) as amd:
            detection = await amd.detection()
            control.post(cc, "call.machine.detection.ended", result=detection.result)
            greeting = await amd.greeting_end()
            if greeting is not None and reports_greeting_end(request.mode, greeting):
                control.post(cc, "call.machine.greeting.ended", result=greeting.result)
    except CallEnded:
        pass


class CallPlacer(Protocol):
    async def originate(
        self,
        target: str,
        *,
        caller_id: str,
        headers: Mapping[str, str],
        credentials: tuple[str, str] | None = None,
        display_name: str | None = None,
    ) -> OutboundCall: ...


async def _place_and_hold(control: CallControl, cc: ControlledCall, request: DialRequest) -> None:
    """Ring the callee; once answered, hold the call (for commands) until it ends or
    reaches its time limit; when not answered, end it with the seed's cause."""
    call = cc.call
    assert isinstance(call, OutboundCall)
    status = await call.place(request.timeout)
    if status != "answered":
        if not call.ended:
            final = call.final_status
            cause = _STATUS_CAUSES.get(final or 0, _UNANSWERED_CAUSES.get(status, "rejected"))
            call.end(cause, "callee")
        call.finish()
        return
    control.post(cc, "call.answered", state="answered")
    if request.machine_detection is not None:
        detecting = _detect_machine(control, cc, request.machine_detection)
        control.keep(asyncio.get_running_loop().create_task(detecting))
    if request.on_answer is not None:
        await request.on_answer(cc)

    async def held(_: Call) -> RunOutcome:
        # asyncio.wait leaves the future alone on timeout and never swallows a cancel.
        ended, _pending = await asyncio.wait({call.ended_future}, timeout=request.time_limit)
        if not ended:
            await call.hangup("time_limit")
        return RunOutcome("hangup", None, 0, {})

    await call.serve(held)


async def dial(control: CallControl, dialer: CallPlacer, request: DialRequest) -> ControlledCall:
    """Place a call for the application (``POST /calls``): returns at once with the
    controlled call; ``call.initiated``, then ``call.answered`` or ``call.hangup``
    follow. TargetError when ``to`` cannot be called."""
    call = await dialer.originate(
        request.to,
        caller_id=request.from_,
        headers=request.headers,
        credentials=request.credentials,
        display_name=request.display_name,
    )
    cc = control.adopt(
        call,
        direction="outgoing",
        from_=request.from_,
        to=request.to,
        connection_id=request.connection_id,
        webhook=request.webhook,
        client_state=request.client_state,
        session_id=request.session_id,
    )
    cc.commanded.set()
    control.post(cc, "call.initiated", state="bridging")
    control.keep(asyncio.get_running_loop().create_task(_place_and_hold(control, cc, request)))
    return cc
