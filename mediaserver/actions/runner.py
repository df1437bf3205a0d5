"""Running one branch of a scenario for one call.

Theory of operation: a :class:`Run` walks the branch's action list, runs
each item through its :class:`~mediaserver.actions.definition.ActionDefinition`
and stores the result in the item's ``result:`` variable. Nested lists
(``then``, ``cases``, ``on-error``...) are walked by the same loop, entered
through :meth:`ActionContext.run_actions`.

How a run ends, and its :class:`RunOutcome` status:

- the branch runs to its end, or ``hangup@v1``/``reject@v1`` end it:
  ``completed``;
- the call goes away (any call operation raises ``CallEnded``): ``hangup``;
- an action fails (it raises ``ActionFailed``, an expression fails, audio
  cannot be produced) and neither it nor an enclosing item has ``on-error``:
  ``failed``, with an error naming the action and ``FILE:LINE``. An
  ``on-error`` list runs instead of propagating the failure, and the run
  then goes on after the item that had it;
- more than :data:`MAX_ACTIONS` actions were started (a ``goto`` loop):
  ``failed``;
- the task running :meth:`Run.execute` is cancelled (the call owner tears
  the call down): ``CancelledError`` propagates and :attr:`Run.outcome` says
  ``cancelled``.

No other exception leaves :meth:`Run.execute`: a bug in an action is
logged with its traceback and fails the run. The runner never hangs up the
call at the end; whoever owns the call does.

The lists are walked by the shared
:class:`~mediaserver.actions.interpreter.Interpreter` (``goto@v1`` jumps,
the loop guard, fair yields); this module adds what is particular to
scenarios: running an item through its definition, ``result:``,
``on-error`` and the run's outcome. A goto whose label no enclosing list
holds fails the run (the validator normally rules it out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog

from mediaserver.actions import registry
from mediaserver.actions.callapi import AudioError, CallApi, CallEnded, PromptAudio, ServerApi
from mediaserver.actions.cdr_field import CUSTOMER_FIELD, customer_field
from mediaserver.actions.definition import ActionFailed, EndRun
from mediaserver.actions.expressions import ExpressionError, Sandbox
from mediaserver.actions.interpreter import MAX_STEPS, Interpreter, Jump
from mediaserver.actions.model import ActionItem, Defaults, Scenario
from mediaserver.actions.variables import BUILTINS, VariableError, check_name, check_value

if TYPE_CHECKING:
    from mediaserver.events import EventSink

RunStatus = Literal["completed", "hangup", "failed", "cancelled"]

MAX_ACTIONS = MAX_STEPS
"""Loop guard: a run may start at most this many actions (SPEC section 3)."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended."""

    status: RunStatus
    error: str | None
    """Why a failed run failed: the action, ``FILE:LINE`` and the reason."""
    actions_executed: int
    variables: dict[str, Any]
    """Every variable at the end, built-ins included (``$now`` excepted)."""


class RunError(Exception):
    """An action failure, located: ``say@v1 at FILE:LINE: reason``."""


class Run:
    """One execution of one branch of a scenario, usually for one call.

    Raises ``ValueError`` at construction for an unknown branch or bad
    initial variables (names must be valid and not built-ins, values
    JSON-like); those are the caller's mistakes, checked before anything runs.
    """

    def __init__(
        self,
        scenario: Scenario,
        branch_name: str,
        *,
        call: CallApi | None,
        prompts: PromptAudio,
        run_id: str,
        variables: Mapping[str, Any] | None = None,
        logger: Any = None,
        max_actions: int = MAX_ACTIONS,
        server: ServerApi | None = None,
        events: EventSink | None = None,
    ) -> None:
        """``events``: where ``run.started``, ``run.action`` and ``run.ended`` go (the
        server's live event stream), None for none."""
        branch = scenario.branches.get(branch_name)
        if branch is None:
            raise ValueError(f"scenario {scenario.name!r} has no {branch_name!r} branch")
        initial = dict(scenario.variables)
        for name, value in (variables or {}).items():
            try:
                check_name(name)
                check_value(value, name)
            except VariableError as exc:
                raise ValueError(str(exc)) from None
            if name in BUILTINS:
                raise ValueError(f"{name} is a read-only built-in variable")
            initial[name] = value
        self.scenario = scenario
        self.branch = branch
        self.run_id = run_id
        self.outcome: RunOutcome | None = None
        self._call = call
        self._prompts = prompts
        self._server = server
        self._events = events
        self._call_info = dict(call.info) if call is not None else None
        self._interpreter: Interpreter[ActionItem] = Interpreter(
            self._execute, label_of=_label, guard=self._loop_guard, max_steps=max_actions
        )
        self._started = False
        self._branch_name = branch_name
        self.sandbox = Sandbox(
            {
                **initial,
                "$call": self._call_info,
                "$digits": None,
                "$recording": None,
                "$dial": None,
                "$detection": None,
                "$run": {"id": run_id, "scenario": scenario.name, "branch": branch_name},
            }
        )
        base = logger if logger is not None else structlog.get_logger("mediaserver.actions")
        self.log = base.bind(run_id=run_id, scenario=scenario.name, branch=branch_name)

    @property
    def actions_executed(self) -> int:
        return self._interpreter.steps

    async def execute(self) -> RunOutcome:
        """Run the branch to its end; see the module docstring for how it can end."""
        if self._started:
            raise RuntimeError("a Run executes only once")
        self._started = True
        self._refresh_call()
        self.log.info("run started", file=self.scenario.file)
        self._publish("run.started", scenario=self.scenario.name, branch=self._branch_name)
        status: RunStatus = "completed"
        error: str | None = None
        try:
            await self._run_branch()
        except EndRun as end:
            status = end.status
            error = end.reason if end.status == "failed" else None
        except CallEnded:
            status = "hangup"
        except RunError as exc:
            status, error = "failed", str(exc)
        except asyncio.CancelledError:
            self._finish("cancelled", None)
            raise
        except Exception as exc:
            self.log.exception("run crashed")
            status, error = "failed", f"internal error: {exc!r}"
        return self._finish(status, error)

    async def _run_branch(self) -> None:
        try:
            await self._interpreter.run_list(self.branch.actions)
        except Jump as jump:
            raise RunError(f"goto@v1: no label {jump.label!r} to jump to") from None

    def _finish(self, status: RunStatus, error: str | None) -> RunOutcome:
        self.outcome = RunOutcome(status, error, self.actions_executed, self.sandbox.variables)
        self.sandbox.close()
        self._publish("run.ended", status=status, error=error, actions=self.actions_executed)
        if status == "failed":
            self.log.warning("run failed", error=error, actions=self.actions_executed)
        else:
            self.log.info("run ended", status=status, actions=self.actions_executed)
        return self.outcome

    def _loop_guard(self, item: ActionItem, limit: int) -> EndRun:
        return EndRun(
            "failed",
            f"loop guard: more than {limit} actions executed, stopped before "
            f"{item.key} at {self.scenario.where(item)} (is there a goto loop?)",
        )

    async def _execute(self, item: ActionItem) -> None:
        where = self.scenario.where(item)
        definition = registry.ACTIONS[item.key]
        step = _Step(self, item)
        self.log.debug("action", action=item.key, line=item.mark.line, label=item.label)
        self._publish("run.action", action=item.key, line=item.mark.line, label=item.label)
        try:
            result = await definition.run(step, item.params)
            if item.result is not None:
                self.sandbox.assign(item.result, result)
            return
        except CallEnded:
            raise
        except RunError as exc:
            failure = exc
        except (ActionFailed, ExpressionError, AudioError) as exc:
            failure = RunError(f"{item.key} at {where}: {exc}")
        except Exception as exc:
            self.log.exception("action crashed", action=item.key, line=item.mark.line)
            failure = RunError(f"{item.key} at {where}: internal error: {exc!r}")
        finally:
            self._refresh_call()
        if item.on_error is None:
            raise failure
        self.log.warning(
            "action failed, running its on-error",
            action=item.key,
            line=item.mark.line,
            error=str(failure),
        )
        await self._interpreter.run_list(item.on_error)

    def _publish(self, event_type: str, **fields: Any) -> None:
        if self._events is None:
            return
        call_id = self._call_info.get("id") if self._call_info is not None else None
        self._events(event_type, {"run_id": self.run_id, "call_id": call_id, **fields})

    def bind_call(self, call: CallApi) -> None:
        """Give a run created before its call (an API run placing one) that call."""
        if self._started:
            raise RuntimeError("bind_call must come before execute")
        self._call = call
        self._refresh_call()

    def _refresh_call(self) -> None:
        # $call.answered_at and friends change as the call progresses.
        if self._call is not None:
            info = dict(self._call.info)
            if info != self._call_info:
                self._call_info = info
                self.sandbox.define_builtin("$call", info)
            # The record's customer_field follows the variable (actions/cdr_field.py).
            field = customer_field(self.sandbox.get(CUSTOMER_FIELD))
            if field is not None:
                self._call.set_customer_field(field)


class _Step:
    """The :class:`~mediaserver.actions.definition.ActionContext` of one action item."""

    __slots__ = ("_log", "_run", "item")

    def __init__(self, run: Run, item: ActionItem) -> None:
        self._run = run
        self.item = item
        self._log: Any = None

    @property
    def call(self) -> CallApi:
        if self._run._call is None:
            raise ActionFailed(f"{self.item.key} needs a call, and this run has none")
        return self._run._call

    @property
    def has_call(self) -> bool:
        return self._run._call is not None

    @property
    def prompts(self) -> PromptAudio:
        return self._run._prompts

    @property
    def server(self) -> ServerApi:
        if self._run._server is None:
            raise ActionFailed(f"{self.item.key} needs the server, and this run has none")
        return self._run._server

    @property
    def sandbox(self) -> Sandbox:
        return self._run.sandbox

    @property
    def defaults(self) -> Defaults:
        return self._run.scenario.defaults

    @property
    def log(self) -> Any:
        if self._log is None:
            self._log = self._run.log.bind(action=self.item.key, line=self.item.mark.line)
        return self._log

    def set_builtin(self, name: str, value: Any) -> None:
        self._run.sandbox.define_builtin(name, value)

    async def run_actions(self, actions: Sequence[ActionItem]) -> None:
        await self._run._interpreter.run_list(actions)


def _label(item: ActionItem) -> str | None:
    return item.label
