"""``callflow@v1``: hand the call to a Voxology-style Call Flow Loop (SPEC section 6).

The server asks ``url`` what to do (``init_call``, then ``live_call`` each
time the returned actions run out or a REDIRECT asks, ``end_call`` at the
end) and runs the JSON actions it gets back; :mod:`mediaserver.callflow`
has the dialect and docs/callflow.md describes it. The call flow keeps the
call: the action never returns, and the run ends with the call. A failure
of the loop (the seed's error codes) makes the action fail after the caller
heard the seed's message and ``end_call`` reported it; with ``on-error`` on
this item, the message and the hang-up are left to it.

This module is the one place where :mod:`mediaserver.actions` reaches
:mod:`mediaserver.callflow` (the registry lists it like any builtin); the
other way, callflow uses the action language (model, definition,
expressions, the interpreter) but never the scenario compiler or the
registry: it gets the compiler from ``context.server``
(tests/unit/test_actions_callflow_layers.py).

``$sessionData`` set before the action is the flow's initial
``session_data``. In an ``api-initiated`` run whose call was not answered
(a call placed by a DIAL action), the action sends ``failed_call`` and ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.builtin.fetch import URL_HINT, URL_PATTERN
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed, EndRun
from mediaserver.actions.params import Param, ParamType
from mediaserver.callflow.callback import Callback
from mediaserver.callflow.loop import CallFlow, FlowOptions

METHODS = ("POST", "GET", "PUT")


async def callflow(context: ActionContext, params: Mapping[str, Any]) -> None:
    sandbox = context.sandbox
    url = sandbox.interpolate(params["url"]).strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ActionFailed(f"url: {url!r} is not {URL_HINT}")
    headers = tuple((name, sandbox.interpolate(value)) for name, value in params["headers"].items())
    failover = None
    if params["failover_url"] is not None:
        failover_url = sandbox.interpolate(params["failover_url"]).strip()
        if not failover_url.lower().startswith(("http://", "https://")):
            raise ActionFailed(f"failover_url: {failover_url!r} is not {URL_HINT}")
        failover = (failover_url, params["failover_method"] or params["method"])
    callback = Callback(
        url,
        params["method"],
        headers,
        params["timeout"],
        is_template=params["is_template"],
        failover=failover,
    )
    options = FlowOptions(
        answer_on_ring=params["answer_on_ring"],
        detection=params["detection"],
        max_call_time=params["max_call_time"],
    )
    # The compiler comes from the server's services: callflow does not import it.
    flow = CallFlow(
        context, callback, compile_scenario=context.server.compile_scenario, options=options
    )
    if not context.has_call:
        await flow.failed_call(sandbox.get("$dial"))
        return
    await flow.run()
    raise EndRun("completed", "callflow@v1: the call flow ended")


CALLFLOW = ActionDefinition(
    name="callflow",
    version=1,
    summary="Hand the call to a Voxology-style Call Flow Loop: JSON actions fetched from a URL.",
    params=(
        Param(
            "url",
            ParamType.STRING,
            "the application's callback URL; ${...} is interpolated",
            required=True,
            interpolated=True,
            pattern=URL_PATTERN,
            pattern_hint=URL_HINT,
        ),
        Param(
            "method",
            ParamType.STRING,
            "POST or PUT send a JSON body; GET sends the fields as a query string",
            default="POST",
            choices=METHODS,
        ),
        Param(
            "headers",
            ParamType.HEADERS,
            "headers sent with every callback request; values are interpolated",
            default={},
            interpolated=True,
        ),
        Param(
            "timeout",
            ParamType.SECONDS,
            "seconds a callback request may take (then error 4001)",
            default=5.0,
            minimum=1,
            maximum=15,
        ),
        Param(
            "is_template",
            ParamType.BOOLEAN,
            "replace {{property}} and {{property|default}} in answers with the request's "
            "fields (Voxology Template Mapping); false leaves them as written",
            default=True,
        ),
        Param(
            "failover_url",
            ParamType.STRING,
            "the seed's callback_failover: where a request that failed (no answer, non-2xx) "
            "is sent again, with the same headers and timeout; ${...} is interpolated",
            interpolated=True,
            pattern=URL_PATTERN,
            pattern_hint=URL_HINT,
        ),
        Param(
            "failover_method",
            ParamType.STRING,
            "the failover's method; default: method",
            choices=METHODS,
        ),
        Param(
            "answer_on_ring",
            ParamType.INTEGER,
            "the seed's answer_on_ring: rings (6 s each) before the call is answered",
            default=1,
            minimum=1,
            maximum=10,
        ),
        Param(
            "detection",
            ParamType.STRING,
            "the seed's DIAL detection: preconnect tells a person from a machine before "
            "init_call; full also waits for a machine's beep",
            default="none",
            choices=("none", "preconnect", "full"),
        ),
        Param(
            "max_call_time",
            ParamType.SECONDS,
            "the seed's DIAL max_call_time: hang up this many seconds after the answer",
            minimum=1,
            maximum=172_800,
        ),
    ),
    run=callflow,
)

ACTIONS = (CALLFLOW,)
