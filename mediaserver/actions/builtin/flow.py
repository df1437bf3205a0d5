"""Flow control and variables: ``set@v1``, ``if@v1``, ``switch@v1``, ``goto@v1``, ``log@v1``.

None of these needs a call, so they also run in ``inbound-sms``.

- ``set@v1``: ``$target: expression`` pairs, assigned in the order written;
  a target may be a path (``$obj.key``, ``$list[0]``); a non-string YAML
  value is a literal.
- ``if@v1``: JavaScript truthiness of ``condition`` (``[]`` is true, ``""``
  and ``0`` are false) picks ``then`` or ``else``.
- ``switch@v1``: ``String(value)`` is compared with each case key's string
  form (a YAML key ``1`` matches ``"1"``); no match runs ``default``.
- ``goto@v1``: continue at ``label``, in the current action list or an
  enclosing one (checked at load time).
- ``log@v1``: write ``message`` (interpolated) to the server log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.interpreter import Jump
from mediaserver.actions.params import Param, ParamType


async def set_variables(context: ActionContext, params: Mapping[str, Any]) -> None:
    sandbox = context.sandbox
    for target, expression in params.items():
        sandbox.assign(target, sandbox.evaluate(expression))


async def if_(context: ActionContext, params: Mapping[str, Any]) -> None:
    branch = params["then"] if context.sandbox.test(params["condition"]) else params["else"]
    await context.run_actions(branch)


async def switch(context: ActionContext, params: Mapping[str, Any]) -> None:
    value = context.sandbox.text(params["value"])
    await context.run_actions(params["cases"].get(value, params["default"]))


async def goto(context: ActionContext, params: Mapping[str, Any]) -> None:
    raise Jump(params["label"])


async def log(context: ActionContext, params: Mapping[str, Any]) -> None:
    message = context.sandbox.interpolate(params["message"])
    getattr(context.log, params["level"])(message, scenario_log=True)


SET = ActionDefinition(
    name="set",
    version=1,
    summary="Assign variables: $name: expression pairs, in order.",
    params=(),
    run=set_variables,
    needs_call=False,
    assignments=True,
)

IF = ActionDefinition(
    name="if",
    version=1,
    summary="Run then or else depending on a JavaScript condition.",
    params=(
        Param(
            "condition",
            ParamType.EXPRESSION,
            "JavaScript expression tested for truthiness",
            required=True,
        ),
        Param("then", ParamType.ACTIONS, "actions run when the condition is true", required=True),
        Param("else", ParamType.ACTIONS, "actions run when it is false", default=()),
    ),
    run=if_,
    needs_call=False,
)

SWITCH = ActionDefinition(
    name="switch",
    version=1,
    summary="Run the action list of the case matching a value.",
    params=(
        Param(
            "value",
            ParamType.EXPRESSION,
            "JavaScript expression; its String() form is looked up in cases",
            required=True,
        ),
        Param("cases", ParamType.CASES, "value -> actions", required=True),
        Param("default", ParamType.ACTIONS, "actions run when no case matches", default=()),
    ),
    run=switch,
    needs_call=False,
)

GOTO = ActionDefinition(
    name="goto",
    version=1,
    summary="Continue at a labelled action of this or an enclosing action list.",
    params=(Param("label", ParamType.LABEL, "where to continue", required=True),),
    run=goto,
    needs_call=False,
)

LOG = ActionDefinition(
    name="log",
    version=1,
    summary="Write a message to the server log.",
    params=(
        Param(
            "message",
            ParamType.STRING,
            "the text; ${...} is interpolated",
            required=True,
            interpolated=True,
        ),
        Param(
            "level",
            ParamType.STRING,
            "log level",
            default="info",
            choices=("debug", "info", "warning", "error"),
        ),
    ),
    run=log,
    needs_call=False,
)

ACTIONS = (SET, IF, SWITCH, GOTO, LOG)
