"""Scenario runs: starting, cancelling and injecting them, and the runs still going.

:class:`Runs` owns every run the server starts: the ``inbound-call`` branch a
routed call serves, the ``inbound-sms`` branch a SIP MESSAGE starts, the
``api-initiated`` branch the API starts (placing its call first when it has a
``to``) or an action starts with a call of its own (the Voxology DIAL), and
the actions the API injects into a live call. Each run is journalled as it
starts and ends. Runs without a call of their own (API and message runs) are
kept by id until they end, so the API can cancel them.

The calls are listed through :class:`LiveCallList` (the call switch,
``calls/switch.py``) and placed through :class:`CallPlacer` (the dialer,
``calls/dialer.py``), handed in by the composition root (``server.py``) with
the :class:`~mediaserver.actions.callapi.ServerApi` the runs use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from mediaserver.actions.callapi import CallEnded, ServerApi
from mediaserver.actions.model import Scenario
from mediaserver.actions.params import TONES
from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.actions.scenario import load_scenario_data, load_scenario_text
from mediaserver.actions.vms_detect import VmsDetect, detect_voicemail
from mediaserver.audio_recorder import is_recording_line, recorder_scenario
from mediaserver.callcontrol.service import route_target as call_control_target
from mediaserver.callflow.route import callflow_scenario, route_url
from mediaserver.calls import Call, OutboundCall, new_call_id
from mediaserver.calls.base import RunFactory
from mediaserver.journal import CallJournal, RunStart
from mediaserver.library import ScenarioLibrary
from mediaserver.log import get_logger
from mediaserver.media.pcm import AudioError, Pcm
from mediaserver.media.prompts import Prompts
from mediaserver.realtime.route import realtime_scenario
from mediaserver.realtime.route import route_url as realtime_route_url
from mediaserver.sip.uac import TargetError

log = get_logger("runs")

INBOUND_BRANCH = "inbound-call"
API_BRANCH = "api-initiated"
MESSAGE_BRANCH = "inbound-sms"
API_CALL_TIMEOUT = 30.0


class RunRefused(ValueError):
    """A run cannot be started (unknown scenario, no api-initiated branch, bad
    variables or target); ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class LiveCallList(Protocol):
    """The calls in progress (the call switch)."""

    @property
    def active_calls(self) -> list[Call]: ...


class CallPlacer(Protocol):
    """Placing a call (the dialer)."""

    async def originate(
        self,
        target: str,
        *,
        caller_id: str,
        headers: Mapping[str, str],
        parent: Call | None = None,
        run: RunStart | None = None,
    ) -> OutboundCall: ...


def _then_back_to_application(run: RunFactory) -> RunFactory:
    """``run``, after which a call under Call Control is its application's again (it
    waits for commands) rather than hung up."""

    async def handed_back(call: Call) -> RunOutcome:
        outcome = await run(call)
        if not call.ended:
            log.info("call handed back to its call control application", call_id=call.id)
            await asyncio.shield(call.ended_future)
        return outcome

    return handed_back


class CallParker(Protocol):
    """Serves a call routed to ``call-control:TARGET`` (Call Control)."""

    async def serve_parked(self, call: Call, target: str) -> None: ...

    def controls(self, call_id: str) -> bool:
        """Whether the call is under Call Control (its application takes it back)."""
        ...


class Runs:
    def __init__(self, library: ScenarioLibrary, journal: CallJournal, prompts: Prompts) -> None:
        self.library = library
        self.journal = journal
        self.prompts = prompts
        self._tasks: dict[str, asyncio.Task[None]] = {}  # runs without a call, still going
        self._calls: LiveCallList | None = None
        self._dialer: CallPlacer | None = None
        self._server: ServerApi | None = None
        self._parker: CallParker | None = None

    def park_with(self, parker: CallParker) -> None:
        """Hand in Call Control, which serves the calls routed to ``call-control:``."""
        self._parker = parker

    def connect(self, calls: LiveCallList, dialer: CallPlacer, server: ServerApi) -> None:
        """Hand in the call switch, the dialer and what runs may ask of the server;
        they are built after this service, because they call back into it."""
        self._calls = calls
        self._dialer = dialer
        self._server = server

    @property
    def calls(self) -> LiveCallList:
        assert self._calls is not None, "Runs used before connect()"
        return self._calls

    @property
    def dialer(self) -> CallPlacer:
        assert self._dialer is not None, "Runs used before connect()"
        return self._dialer

    @property
    def server(self) -> ServerApi:
        assert self._server is not None, "Runs used before connect()"
        return self._server

    # -- reading ---------------------------------------------------------------------------

    def live(self) -> list[str]:
        """The ids of the runs without a call of their own still going (API, message)."""
        return list(self._tasks)

    def live_calls(self) -> list[Call]:
        return self.calls.active_calls

    def find_call(self, call_id: str) -> Call | None:
        """A live call by its id."""
        return next((c for c in self.calls.active_calls if c.id == call_id), None)

    # -- calls the switch hands over ---------------------------------------------------------

    def _run(
        self,
        scenario: Scenario,
        branch: str,
        run_id: str,
        call: Call | None,
        variables: Mapping[str, object] | None = None,
    ) -> Run:
        return Run(
            scenario,
            branch,
            call=call,
            prompts=self.prompts,
            run_id=run_id,
            server=self.server,
            events=self.journal.events.publish,
            variables=variables,
        )

    def _inbound_run(self, scenario: Scenario, run_id: str) -> RunFactory:
        """What a call serves: ``scenario``'s ``inbound-call`` branch run on it."""

        async def run(call: Call) -> RunOutcome:
            return await self._run(scenario, INBOUND_BRANCH, run_id, call).execute()

        return run

    async def serve_call(self, call: Call) -> None:
        """Run the ``inbound-call`` branch of the call's scenario (for a route
        ``callflow:URL``, a ``callflow@v1`` of URL); a route ``call-control:TARGET``
        parks the call for the Call Control application instead."""
        name = call.scenario or ""
        parked = call_control_target(name)
        if parked is not None and self._parker is not None:
            await self._serve_parked(call, parked)
            return
        # The recording line is reserved: no scenario of that name can take its calls.
        scenario = recorder_scenario() if is_recording_line(name) else self.library.get(name)
        url = route_url(name)
        if scenario is None and url is not None:
            scenario = callflow_scenario(load_scenario_data, url)
        realtime_url = realtime_route_url(name)
        if scenario is None and realtime_url is not None:
            scenario = realtime_scenario(load_scenario_data, realtime_url)
        if scenario is None:  # removed through the API since routing picked it
            call.end("not_found", "server")
            call.finish()
            return
        scenario_id = self.library.store_id(name)
        run_id = f"{INBOUND_BRANCH}:{call.id}"
        self.journal.run_started(run_id, scenario_id, INBOUND_BRANCH, {})
        self.journal.call_started(call, number=call.to_user, scenario_id=scenario_id, run_id=run_id)

        try:
            await call.serve(self._inbound_run(scenario, run_id))
        finally:
            self.journal.run_ended(run_id, call.outcome)

    async def _serve_parked(self, call: Call, target: str) -> None:
        assert self._parker is not None
        run_id = f"call-control:{call.id}"
        self.journal.call_started(call, number=call.to_user, scenario_id=None, run_id=run_id)

        async def parked(_: Call) -> RunOutcome:
            assert self._parker is not None
            await self._parker.serve_parked(call, target)
            return RunOutcome("hangup", None, 0, {})

        await call.serve(parked)

    # -- action items other services run on a call (Call Control) ---------------------------

    def compile_items(self, actions: list[Any], label: str) -> Scenario:
        """``actions`` (action items as in a scenario branch) as a scenario to run with
        :meth:`run_items`; ProblemsError when they do not validate."""
        text = json.dumps({"branches": {INBOUND_BRANCH: {"actions": actions}}}, indent=1)
        return load_scenario_text(text, f"{label}.yaml")

    async def run_items(
        self, call: Call, scenario: Scenario, label: str, variables: Mapping[str, object]
    ) -> RunOutcome:
        """Run a scenario of :meth:`compile_items` on ``call`` beside its own run,
        with ``variables`` (values from outside stay data: never interpolated as text)."""
        run_id = f"{label}:{new_call_id()}"
        return await self._run(scenario, INBOUND_BRANCH, run_id, call, variables).execute()

    def serve_message(self, name: str, message: dict[str, str]) -> None:
        """Run scenario ``name``'s inbound-sms branch for a SIP MESSAGE, with the
        message in ``$message`` (from, to, text, content_type); no call."""
        scenario = self.library.get(name)
        if scenario is None or MESSAGE_BRANCH not in scenario.branches:
            log.info("message not handled", scenario=name, sender=message.get("from"))
            return
        run_id = f"{MESSAGE_BRANCH}:{new_call_id()}"
        run = self._run(scenario, MESSAGE_BRANCH, run_id, None, {"$message": dict(message)})
        self.journal.run_started(run_id, self.library.store_id(name), MESSAGE_BRANCH, {})

        async def execute() -> None:
            outcome = await run.execute()
            self.journal.run_ended(run_id, outcome)

        self._keep(run_id, asyncio.get_running_loop().create_task(execute()))

    # -- runs the API and the actions start ------------------------------------------------------

    async def start_run(
        self,
        name: str,
        *,
        to: str | None = None,
        variables: dict[str, object] | None = None,
        caller_id: str | None = None,
        vms_detect: VmsDetect | None = None,
    ) -> str:
        """Start the ``api-initiated`` branch of scenario ``name``; the run id.

        With ``to``, the server calls it first and runs the branch once the call
        is answered, or without a call when it is not, ``$dial`` telling why (the
        Callr seed's runs); without ``to`` the branch runs offline. With
        ``vms_detect`` (Callr's voicemail detection), an answer by a voicemail
        is hung up and ``$dial.status`` is ``voicemail``."""
        scenario = self.library.get(name)
        if scenario is None:
            raise RunRefused("scenario", f"no scenario {name!r}")
        if API_BRANCH not in scenario.branches:
            raise RunRefused("scenario", f"scenario {name!r} has no {API_BRANCH} branch")
        detection: _Detection | None = None
        if vms_detect is not None and vms_detect.active:
            detection = (vms_detect, await self._vms_media(vms_detect))
        return await self._start_api_run(
            scenario,
            self.library.store_id(name),
            to=to,
            variables=variables,
            caller_id=caller_id,
            ring_timeout=API_CALL_TIMEOUT,
            detection=detection,
        )

    async def _vms_media(self, settings: VmsDetect) -> Pcm | None:
        """The detection's prompt, loaded before the call is placed so that a bad one is
        the request's error (RunRefused naming the field)."""
        media = settings.media
        if media is None:
            return None
        try:
            return self.prompts.tone(media) if media in TONES else await self.prompts.file(media)
        except AudioError as exc:
            field = f"options.vms_detect.{settings.method.lower()}_media"
            raise RunRefused(field, str(exc)) from None

    async def start_scenario_call(
        self,
        to: str,
        scenario: Scenario,
        *,
        caller_id: str | None,
        variables: dict[str, object],
        timeout: float,
    ) -> str:
        """Call ``to`` and run ``scenario``'s api-initiated branch (a scenario that is
        not in the library: the Voxology DIAL action's call flow); the run id."""
        return await self._start_api_run(
            scenario, None, to=to, variables=variables, caller_id=caller_id, ring_timeout=timeout
        )

    async def _start_api_run(
        self,
        scenario: Scenario,
        scenario_id: str | None,
        *,
        to: str | None,
        variables: dict[str, object] | None,
        caller_id: str | None,
        ring_timeout: float,
        detection: _Detection | None = None,
    ) -> str:
        run_id = f"api:{new_call_id()}"
        try:
            run = self._run(scenario, API_BRANCH, run_id, None, dict(variables or {}))
        except ValueError as exc:
            raise RunRefused("variables", str(exc)) from None
        start = RunStart(run_id, scenario_id, scenario.name, API_BRANCH, dict(variables or {}))
        call: OutboundCall | None = None
        if to is not None:
            try:
                # The call's record names the run from the start (and journals the run).
                call = await self.dialer.originate(
                    to, caller_id=caller_id or "mediaserver", headers={}, run=start
                )
            except TargetError as exc:
                raise RunRefused("to", str(exc)) from None
        else:
            self.journal.run_started(run_id, scenario_id, API_BRANCH, start.variables)
        task = asyncio.get_running_loop().create_task(
            self._api_run(run, call, run_id, ring_timeout, detection)
        )
        self._keep(run_id, task)
        return run_id

    async def _api_run(
        self,
        run: Run,
        call: OutboundCall | None,
        run_id: str,
        ring_timeout: float,
        detection: _Detection | None = None,
    ) -> None:
        structlog.contextvars.bind_contextvars(run_id=run_id)
        outcome: RunOutcome | None = None
        try:
            if call is None:
                outcome = await run.execute()
                return
            status = await call.place(ring_timeout)
            dial: dict[str, object] = {"status": status, "duration": 0.0, "target": call.target}
            if status == "answered" and detection is not None:
                status, verdict = await _detect_voicemail(call, *detection)
                dial.update(status=status, detection=verdict)
            run.sandbox.define_builtin("$dial", dial)
            if status != "answered":
                call.finish()
                outcome = await run.execute()  # the branch runs without a call
                return
            run.bind_call(call)

            async def execute(_: Call) -> RunOutcome:
                return await run.execute()

            await call.serve(execute)
            outcome = call.outcome
        finally:
            self.journal.run_ended(run_id, outcome if outcome is not None else run.outcome)

    def _keep(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))

    def inject_actions(self, call_id: str, actions: list[Any]) -> str:
        """Replace what a live call is doing with ``actions`` (a list of action
        items as in a scenario branch); the new run's id. ProblemsError when the
        actions do not validate, RunRefused when the call cannot take them."""
        call = self.find_call(call_id)
        if call is None:
            raise RunRefused("call", f"no live call {call_id!r}")
        text = json.dumps({"branches": {INBOUND_BRANCH: {"actions": actions}}}, indent=1)
        scenario = load_scenario_text(text, f"inject-{call.id}.yaml")
        run_id = f"inject:{new_call_id()}"

        run = self._inbound_run(scenario, run_id)
        if self._parker is not None and self._parker.controls(call.id):
            run = _then_back_to_application(run)
        if not call.inject(run):
            raise RunRefused("call", f"call {call_id!r} has no running scenario to replace")
        return run_id

    def cancel_run(self, run_id: str) -> bool:
        """Stop a run without a call of its own still going (a placed call is hung up)."""
        task = self._tasks.get(run_id)
        if task is None:
            return False
        task.cancel()
        return True


_Detection = tuple[VmsDetect, Pcm | None]
"""Callr's voicemail detection for an API-started call, and its prompt decoded."""


async def _detect_voicemail(
    call: OutboundCall, settings: VmsDetect, media: Pcm | None
) -> tuple[str, dict[str, object] | None]:
    """Ask who answered; a voicemail is hung up. The dial status and the verdict."""
    try:
        verdict = await detect_voicemail(call, settings, media)
    except CallEnded:
        return "no-answer", None  # the callee hung up while being asked
    if verdict.result == "voicemail":
        log.info("voicemail detected, hanging up", call_id=call.id, reason=verdict.reason)
        await call.hangup("normal_clearing")
        return "voicemail", verdict.as_variable()
    return "answered", verdict.as_variable()
