"""What an action is: its declared parameters, its result, and the code that runs it.

Theory of operation: every action is one :class:`ActionDefinition`, written
in one module under :mod:`mediaserver.actions.builtin` and listed in
:mod:`mediaserver.actions.registry`. The scenario validator uses the
declaration (``params``, ``result``, ``check``, ``needs_call``) to check
files; the runner calls ``run(context, params)`` with the parameters already
converted by :mod:`mediaserver.actions.params`, and stores what it returns
in the item's ``result:`` variable.

An action talks to the rest of the system only through its
:class:`ActionContext`: the call, prompt audio, the run's sandbox, the
scenario defaults, a bound logger, and :meth:`ActionContext.run_actions` for
nested lists. It signals failure by raising :class:`ActionFailed` (or
letting an :class:`~mediaserver.actions.expressions.ExpressionError` or
:class:`~mediaserver.actions.callapi.AudioError` through), and changes the
flow of the run by raising :class:`~mediaserver.actions.interpreter.Jump`
or :class:`EndRun`, which derive from ``BaseException`` so that no
``except Exception`` can swallow them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mediaserver.actions.callapi import CallApi, PromptAudio, ServerApi
from mediaserver.actions.expressions import Sandbox
from mediaserver.actions.model import ActionItem, Defaults
from mediaserver.actions.params import Param


class ActionFailed(Exception):
    """The action could not do its job; the message says why, for the log and on-error."""


class EndRun(BaseException):
    """Stop the run now with ``status`` (``hangup@v1`` and ``reject@v1`` end it completed)."""

    def __init__(self, status: Literal["completed", "failed"], reason: str | None = None) -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason


class ActionContext(Protocol):
    """What a running action may use."""

    @property
    def call(self) -> CallApi:
        """The call; raises :class:`ActionFailed` when the run has none."""
        ...

    @property
    def has_call(self) -> bool:
        """False in runs without a call (the ``inbound-sms`` branch)."""
        ...

    @property
    def prompts(self) -> PromptAudio: ...

    @property
    def server(self) -> ServerApi:
        """HTTP requests, webhooks, SIP MESSAGE; raises ActionFailed when the run has
        no server to ask (a unit test's run)."""
        ...

    @property
    def sandbox(self) -> Sandbox: ...

    @property
    def defaults(self) -> Defaults: ...

    @property
    def item(self) -> ActionItem:
        """The action item being run."""
        ...

    @property
    def log(self) -> Any:
        """A structlog logger bound with run_id, scenario, action and line."""
        ...

    def set_builtin(self, name: str, value: Any) -> None:
        """Set a read-only built-in variable such as ``$digits``."""

    async def run_actions(self, actions: Sequence[ActionItem]) -> None:
        """Run a nested action list (``then``, ``cases``...) in this run."""


ActionFunction = Callable[[ActionContext, Mapping[str, Any]], Awaitable[Any]]
"""``run(context, params)``: do the action, return its result (``None`` when it has none)."""

CrossCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]
"""Checks between parameters once each is valid alone: ``(param name or "", message)``."""


@dataclass(frozen=True)
class ActionDefinition:
    """One versioned action: ``name@vN``."""

    name: str
    version: int
    summary: str
    params: tuple[Param, ...]
    run: ActionFunction
    result: str | None = None
    """What ``result:`` receives; ``None`` when the action has no result."""
    check: CrossCheck | None = None
    needs_call: bool = True
    """False for actions that also make sense without a call (set, log, ...)."""
    assignments: bool = False
    """Parameters are ``$target: expression`` pairs instead of declared names (set@v1)."""

    @property
    def key(self) -> str:
        return f"{self.name}@v{self.version}"

    def param(self, name: str) -> Param | None:
        for param in self.params:
            if param.name == name:
                return param
        return None
