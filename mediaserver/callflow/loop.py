"""The Call Flow Loop: callback requests, the returned actions run, errors reported.

Theory of operation (seed, "Call Flow Loop"): :meth:`CallFlow.run` sends
``init_call`` to the callback URL, parses and translates the answer
(:mod:`.actions`, :mod:`.translate`) and runs its actions in order. When the
list runs out it sends ``live_call`` and runs the new answer; a REDIRECT
changes the URL (method, headers) of every later request and asks at once.
The loop ends when the call does: a HANGUP or REJECT, the caller hanging up,
a ``204`` answer ("a 204 status code will also terminate the call"), or an
error. Then ``end_call`` goes out, with ``error_code`` and ``error`` when an
error ended it.

The answer's actions are walked by the shared
:class:`~mediaserver.actions.interpreter.Interpreter` (labels and GOTO, the
loop guard per answer, fair yields), the one scenario runs use too; what
this module adds is the fetch-answer-translate cycle around it. The
scenario compiler that turns translated actions into native items is handed
to :class:`CallFlow` (by ``callflow@v1``, from the server's services).

What runs where: media actions run as native items through
``context.run_actions`` (the run's runner and builtins; :meth:`CallFlow.guarded`);
control flow and the bookkeeping around media actions run in :mod:`.steps`,
against the run's sandbox: IF conditions and assignments are evaluated there,
``$keyPresses``, ``$collectAttempt``, ``$callTime`` and the other native
constants are kept there, and ``$sessionData`` lives there (so a scenario
can fill it before the hand-off). The methods :mod:`.steps` uses are the
public ones (``run_list``, ``guarded``, ``error``, ``text``...).

Errors (seed, "Error Handling"): a callback that times out, answers non-2xx
or cannot be reached, an answer that is not JSON actions or is over 81 KB,
an action that fails when it runs: the caller hears the seed's message for
the code (unless the table says n/a, or the ``callflow@v1`` item has its own
``on-error``, which then decides), the call is hung up (again, unless
``on-error``), ``end_call`` reports the code, and the action fails.
An action's ``on_error`` (or ``on_enter_error``) handler, where the seed
gives one, runs instead of the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from mediaserver.actions.callapi import CallEnded, FetchError, FetchResult
from mediaserver.actions.definition import ActionContext, ActionFailed
from mediaserver.actions.expressions import ExpressionError
from mediaserver.actions.interpreter import Interpreter, Jump
from mediaserver.actions.model import ActionItem, ScenarioCompiler
from mediaserver.callflow import errors
from mediaserver.callflow import model as m
from mediaserver.callflow.actions import ResponseError, parse_response
from mediaserver.callflow.callback import (
    Callback,
    HttpFailure,
    Redirected,
    StepFailed,
    background,
)
from mediaserver.callflow.requests import (
    CallFacts,
    FlowState,
    RequestType,
    Webhook,
    live_status,
    minimised_size,
    query_items,
    request_body,
    with_query,
)
from mediaserver.callflow.steps import HANDLERS
from mediaserver.callflow.templates import map_templates
from mediaserver.callflow.translate import (
    ANSWERED,
    RUN,
    Plan,
    TranslationError,
    build_items,
    compile_plan,
    dtmf_entries,
)
from mediaserver.callflow.variables import (
    CALL_TIME,
    COLLECT_ATTEMPT,
    KEY_PRESSES,
    PARENT_CALL_ID,
    RESULT,
    SESSION_DATA,
    constants,
)

_ANSWERS = (
    m.Say, m.Play, m.Pause, m.Collect, m.Conference, m.Transfer, m.Queue, m.Record,
    m.RecordMessage, m.Detect,
)  # fmt: skip
"""Actions that connect the call first: a call flow's call is answered before it
does anything but REJECT (seed, REJECT: "If REJECT is the first action in the
callflow, any inbound call will be rejected with a connect time of 0")."""


RING_SECONDS = 6
"""One ring of the North American ringing cadence (2 s on, 4 s off; ANSI T1.401),
the unit of ``answer_on_ring``."""
DETECTION_SECONDS = 4.0
"""How long DIAL ``detection`` listens for a verdict at most (detect@v1's default)."""
DETECTIONS = {"human": "live_person", "machine": "voicemail", "unknown": "unknown"}
"""detect@v1's verdicts as the seed's ``detection`` codes."""


@dataclasses.dataclass(frozen=True)
class FlowOptions:
    """What a flow's configuration adds to its callback: the seed's ``answer_on_ring``
    (callback config), and a DIAL's ``detection`` and ``max_call_time`` for the call it
    places."""

    answer_on_ring: int = 1
    detection: str = "none"
    max_call_time: float | None = None


def wall_clock() -> float:
    """Seconds since the epoch: what request times are taken from (tests replace it)."""
    return time.time()


class CallFlow:
    """One call's Call Flow Loop, run by ``callflow@v1``."""

    def __init__(
        self,
        context: ActionContext,
        callback: Callback,
        *,
        compile_scenario: ScenarioCompiler,
        clock: Callable[[], float] | None = None,
        options: FlowOptions | None = None,
    ) -> None:
        """``compile_scenario``: the server's scenario compiler, which turns the
        translated actions into native items (handed in: callflow never imports it)."""
        self.context = context
        self.callback = callback
        self.options = options or FlowOptions()
        self.compile = compile_scenario
        self.state = FlowState()
        self.clock = clock
        self.log = context.log.bind(callflow=callback.url)
        self.facts = CallFacts(None, "outbound", None, None, self._now())
        self.responses = 0
        # Each answer gets the interpreter's full loop guard (MAX_STEPS actions).
        self._interpreter: Interpreter[m.Action] = Interpreter(
            self._step, label_of=_label, guard=self._loop_guard
        )
        self._plan: Plan | None = None
        self._answer_items: tuple[ActionItem, ...] = ()
        self.attempts: dict[object, int] = {}
        self.message_path: str | None = None
        self.message_id: str | None = None
        self._rejected: str | None = None

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the call flow until it ends; see the module docstring for how.
        Raises what ends the run (EndRun, CallEnded, ActionFailed)."""
        call = self.context.call
        self.facts = CallFacts.from_call_info(call.info)
        self._setup_variables()
        limit = asyncio.get_running_loop().create_task(self._time_limit())
        try:
            await self._detect_first()
            await self._loop()
            await call.hangup()
        except errors.CallflowError as error:
            await self._fail(error)
        except asyncio.CancelledError:
            self._end_call_later()
            raise
        except BaseException:
            await self._end_call()
            raise
        finally:
            limit.cancel()
        await self._end_call()

    async def _detect_first(self) -> None:
        """Seed, DIAL ``detection``: ``preconnect`` tells a person from a machine as the
        call is answered, before ``init_call`` (which carries ``detection``); ``full``
        also waits for a machine's greeting to end (its beep), so that the flow's first
        action lands on the recording. Runs detect@v1 (the shared detector)."""
        mode = self.options.detection
        if mode == "none" or not self.context.call.answered:
            return
        params = {"timeout": DETECTION_SECONDS, "greeting_end": mode == "full"}
        items = build_items(
            [{"action": "detect@v1", "params": params, "result": RESULT}], self.compile
        )
        self.context.sandbox.assign(RESULT, None)
        await self.context.run_actions(items)
        verdict = self.context.sandbox.get(RESULT)
        self.state.detection = DETECTIONS.get(str(verdict), "unknown")
        self.log.info("call flow detection", detection=self.state.detection, mode=mode)

    async def _time_limit(self) -> None:
        """Seed, DIAL ``max_call_time``: "The maximum length of the call in seconds",
        counted from the answer; then the call is hung up (and end_call goes out)."""
        seconds = self.options.max_call_time
        if seconds is None:
            return
        call = self.context.call
        while not call.answered:
            await asyncio.sleep(0.2)
        answered = (call.info.get("answered_at") or self._now()) / 1000
        await asyncio.sleep(max(0.0, answered + seconds - (self.clock or wall_clock)()))
        self.log.info("call flow max_call_time reached, hanging up", seconds=seconds)
        await call.hangup()

    async def failed_call(self, dial: Mapping[str, Any] | None) -> None:
        """Seed, DIAL: "You will receive a failed_call callback ... if the DIAL action
        attempts to dial a bad or misformatted number, or if your DIAL action times
        out": the run of a dialled call that was not answered says so and ends."""
        dial = dial or {}
        self.facts = CallFacts(None, "outbound", dial.get("target"), None, self._now())
        self._setup_variables()
        # dial@v1's statuses (busy, no-answer, failed, canceled) are the seed's Call Statuses.
        await self._notify("failed_call", str(dial.get("status") or "failed"))

    async def _loop(self) -> None:
        kind: RequestType = "init_call"
        while True:
            data = await self._request(kind)
            if data is None:
                self.log.info("call flow ended by a 204 answer")
                return
            plan = self._compile(data)
            if not plan.response.actions:
                # Nothing to do: asking again would loop, so it ends the call as a 204 does.
                self.log.info("call flow ended by an answer without actions")
                return
            self._plan = plan
            self._interpreter.restart()
            try:
                await self.run_list(plan.response.actions)
            except Redirected:
                pass
            except Jump as jump:
                message = f"GOTO: no LABEL {jump.label!r} to jump to"
                raise self.error("no_actions", message) from None
            kind = "live_call"

    def _compile(self, data: Any) -> Plan:
        try:
            return compile_plan(parse_response(data), self.callback.url, self.compile)
        except ResponseError as exc:
            self.log.warning("call flow response refused", problems=exc.problems)
            shown = "; ".join(exc.problems[:5])
            more = len(exc.problems) - 5
            suffix = f" (and {more} more)" if more > 0 else ""
            raise self.error("no_actions", f"invalid actions: {shown}{suffix}") from None

    # -- requests ----------------------------------------------------------------------------

    def _now(self) -> int:
        return int((self.clock or wall_clock)() * 1000)

    def body(self, kind: RequestType, status: str, webhook: Webhook | None = None) -> Any:
        if self.context.has_call:
            self.facts = dataclasses.replace(
                self.facts, answered_ms=self.context.call.info.get("answered_at")
            )
        return request_body(
            kind,
            self.facts,
            self.state,
            now_ms=self._now(),
            status=status,
            session_data=self.context.sandbox.get(SESSION_DATA),
            webhook=webhook,
        )

    def live_status(self) -> str:
        return live_status(self.context.call.answered)

    async def send(self, body: Any, callback: Callback) -> FetchResult:
        url, payload = callback.url, body
        if callback.method == "GET":
            url, payload = with_query(url, query_items(body)), None
        try:
            # The server's client gets a longer timeout, so that this one is what fires.
            async with asyncio.timeout(callback.timeout):
                response = await self.context.server.fetch(
                    url,
                    method=callback.method,
                    headers=dict(callback.headers),
                    body=payload,
                    timeout=callback.timeout + 1,
                )
        except TimeoutError:
            message = f"{callback.method} {callback.url}: no answer within {callback.timeout:g} s"
            raise HttpFailure("timeout", message) from None
        except FetchError as exc:
            raise HttpFailure("status", f"{callback.method} {callback.url}: {exc}") from None
        self.log.info(
            "call flow request",
            type=body.get("type"),
            method=callback.method,
            url=callback.url,
            status=response.status,
        )
        return response

    async def send_with_failover(self, body: Any) -> tuple[FetchResult, Callback]:
        """Send ``body`` to the callback URL; seed, ``callback_failover``: "Any non-2xx
        HTTP status code will trigger a request to the callback_failover endpoint" (a
        timeout or no answer too: "If the callback request fails"). The answer, and
        where it came from; HttpFailure when no answer came."""
        target = self.callback
        failover = target.failover_callback()
        try:
            response = await self.send(body, target)
        except HttpFailure as failure:
            if failover is None:
                raise
            reason = failure.message
        else:
            if 200 <= response.status < 300 or failover is None:
                return response, target
            reason = f"{target.method} {target.url} answered {response.status}"
        self.log.info("call flow request failed, trying callback_failover",
                      reason=reason, failover=failover.url)  # fmt: skip
        return await self.send(body, failover), failover

    async def _request(self, kind: RequestType) -> Any:
        """Ask the callback URL; the parsed answer, None for 204."""
        body = self.body(kind, self.live_status())
        try:
            response, target = await self.send_with_failover(body)
        except HttpFailure as failure:
            raise self.error(failure.kind, failure.message, first=kind == "init_call") from None
        self.responses += 1
        if response.status == 204:
            return None
        if not 200 <= response.status < 300:
            message = f"{target.method} {target.url} answered {response.status}"
            raise self.error("status", message, first=kind == "init_call")
        data = response.body
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise self.error("no_actions", "the answer is not JSON") from None
        size = minimised_size(data)
        if size > errors.HARD_LIMIT_BYTES:
            raise self.error("too_big", f"the answer is {size} bytes, over the 81 KB limit")
        if size > errors.SOFT_LIMIT_BYTES:
            self.log.warning("call flow answer over the soft limit", bytes=size)
        if not self.callback.is_template:
            return data
        return map_templates(data, dict(query_items(body)))

    def error(self, failure: errors.Failure, message: str, *, first: bool = False) -> Exception:
        connected = self.context.has_call and self.context.call.answered
        code = errors.error_code(
            failure,
            outbound=self.facts.direction == "outbound",
            connected=connected,
            first_request=first,
        )
        return errors.CallflowError(code, message)

    async def _notify(self, kind: RequestType, status: str) -> None:
        """Send an end_call or failed_call; a failure is logged, nothing more."""
        body = self.body(kind, status)
        try:
            await self.send_with_failover(body)
        except HttpFailure as failure:
            self.log.warning(f"call flow {kind} not delivered", reason=failure.message)

    def _final_status(self) -> str:
        """Seed, "Call Status": how the call ended."""
        if self.context.call.answered:
            return "completed"
        if self._rejected == "busy":
            return "busy"
        if self._rejected or self.state.error_code is not None:
            return "failed"
        return "canceled"

    async def _end_call(self) -> None:
        if self.context.has_call:
            await self._notify("end_call", self._final_status())

    def _end_call_later(self) -> None:
        """The run is being cancelled (the caller hung up): end_call goes out anyway."""
        background(self._end_call())

    async def _fail(self, error: errors.CallflowError) -> None:
        self.state.error_code, self.state.error = error.code, error.message
        self.log.warning("call flow error", error_code=error.code, error=error.message)
        call = self.context.call
        handled = self.context.item.on_error is not None
        message = None if handled else errors.phone_message(error.code)
        if message is not None and not call.ended:
            items: list[dict[str, Any]] = [] if call.answered else [{"action": "progress@v1"}]
            items.append({"action": "say@v1", "params": {"text": message}})
            with contextlib.suppress(CallEnded, Exception):
                await self.context.run_actions(build_items(items, self.compile))
        if not handled:
            await call.hangup("normal_clearing" if call.answered else "unavailable")
        await self._end_call()
        raise ActionFailed(f"call flow error {error.code}: {error.message}")

    # -- variables ---------------------------------------------------------------------------

    def _setup_variables(self) -> None:
        sandbox = self.context.sandbox
        parent = sandbox.get(PARENT_CALL_ID)
        self.state.parent_call_id = parent if isinstance(parent, str) else None
        session = sandbox.get(SESSION_DATA)
        fixed = constants(
            self.facts,
            app_id="mediaserver",
            parent_call_id=self.state.parent_call_id,
            config=self.callback.config(),
        )
        values = {
            **fixed,
            SESSION_DATA: session if isinstance(session, dict) else {},
            KEY_PRESSES: "",
            COLLECT_ATTEMPT: 0,
            CALL_TIME: 0,
        }
        for name, value in values.items():
            sandbox.assign(name, value)

    def _refresh(self) -> None:
        self.context.sandbox.assign(CALL_TIME, max(0, self._now() - self.facts.started_ms))

    def text(self, action: m.Action, template: str) -> str:
        try:
            return self.context.sandbox.interpolate(template)
        except ExpressionError as exc:
            raise self.error("no_actions", f"{action.where}: {exc}") from None

    def evaluate(self, action: m.Action, expression: str) -> Any:
        try:
            return self.context.sandbox.evaluate(expression)
        except ExpressionError as exc:
            raise self.error("no_actions", f"{action.where}: {exc}") from None

    def assign(self, action: m.Action, target: str, value: Any) -> None:
        try:
            self.context.sandbox.assign(target, value)
        except ExpressionError as exc:
            raise self.error("no_actions", f"{action.where}: {exc}") from None

    # -- running a list ----------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The answer being run: its actions' native items."""
        if self._plan is None:
            raise RuntimeError("the call flow has no answer yet")
        return self._plan

    async def run_list(self, actions: m.Actions) -> None:
        """Run a list of the current answer (its top level or a nested one)."""
        await self._interpreter.run_list(actions)

    def _loop_guard(self, action: m.Action, limit: int) -> Exception:
        message = f"loop guard: more than {limit} actions run for one answer, stopped "
        return self.error("no_actions", message + f"at {action.where}")

    async def _step(self, action: m.Action) -> None:
        self._refresh()
        self.log.debug("call flow action", path=action.path, type=action.TYPE or "assignment")
        handler = HANDLERS.get(type(action))
        if handler is not None:
            await handler(self, action)
        else:
            await self._leaf(action)

    async def _native(self, action: m.Action, items: tuple[ActionItem, ...]) -> Any:
        """Run native items for ``action``; their result (``$callflowResult``)."""
        if isinstance(action, _ANSWERS):
            await self.answer()
        sandbox = self.context.sandbox
        sandbox.assign(RESULT, None)
        try:
            await self.context.run_actions(items)
        except CallEnded:
            raise
        except Exception as exc:
            raise StepFailed(_reason(exc, items)) from None
        return sandbox.get(RESULT)

    async def guarded(
        self, action: m.Action, items: tuple[ActionItem, ...], *handlers: str
    ) -> tuple[bool, Any]:
        """Run ``items``; on failure run the first of ``handlers`` the action has, or
        raise the call flow error. (ok, result)."""
        try:
            return True, await self._native(action, items)
        except StepFailed as failed:
            events = getattr(action, "events", m.Events())
            for name in handlers:
                handler = events.get(name)
                if handler:
                    self.log.info("call flow action failed, running its handler",
                                  path=action.path, event=name, reason=str(failed))  # fmt: skip
                    await self.run_list(handler)
                    return False, None
            unfetchable = isinstance(action, m.Play) and action.url is not None
            unfetchable |= isinstance(action, m.Conference) and action.hold_audio is not None
            kind: errors.Failure = "unfetchable" if unfetchable else "no_actions"
            raise self.error(kind, f"{action.where}: {failed}") from None

    async def _leaf(self, action: m.Action) -> None:
        variants = self.plan.variants(action)
        items: tuple[ActionItem, ...]
        if isinstance(action, m.Play) and variants is None:
            keys = self.text(action, action.dtmf or "")
            items = self.build(action, lambda: dtmf_entries(
                keys, action.dtmf_delay_ms, action.dtmf_dash_delay_ms, action.repeat))  # fmt: skip
        elif variants is None:
            return
        elif isinstance(action, m.Reject):
            answered = self.context.call.answered
            items = variants[ANSWERED] if answered else variants[RUN]
            self._rejected = None if answered else action.reason
        else:
            items = variants[RUN]
        await self.guarded(action, items)

    def build(self, action: m.Action, make: Callable[[], list[dict[str, Any]]]) -> Any:
        try:
            return build_items(make(), self.compile)
        except TranslationError as exc:
            raise self.error("no_actions", f"{action.where}: {exc}") from None

    async def answer(self) -> None:
        """Answer the call if it is not yet (after ``answer_on_ring`` rings)."""
        if not self.context.call.answered:
            await self._ring()
            await self.context.run_actions(self._answer())

    async def _ring(self) -> None:
        """Seed, ``answer_on_ring``: "The number of allowed rings before the call is
        answered": the answer waits until that many rings (:data:`RING_SECONDS` each)
        have passed since the call arrived."""
        rings = self.options.answer_on_ring
        if rings <= 1:
            return
        due = self.facts.started_ms + (rings - 1) * RING_SECONDS * 1000
        wait = (due - self._now()) / 1000
        if wait > 0:
            self.log.info("call flow answering after rings", rings=rings, seconds=wait)
            await asyncio.sleep(wait)

    def _answer(self) -> tuple[ActionItem, ...]:
        if not self._answer_items:
            self._answer_items = build_items([{"action": "answer@v1"}], self.compile)
        return self._answer_items


def _label(action: m.Action) -> str | None:
    return action.name if isinstance(action, m.Label) else None


def _reason(exc: BaseException, items: tuple[ActionItem, ...]) -> str:
    """A runner error without its ``say@v1 at FILE:LINE:`` prefix."""
    text = str(exc)
    for item in items:
        prefix = f"{item.key} at "
        if text.startswith(prefix) and ": " in text:
            return f"{item.key}: {text.split(': ', 1)[1]}"
    return text
