"""Examples of the console's keyed endpoints for the OpenAPI document
(merged by :mod:`mediaserver.api.examples`; built from the route models)."""

from __future__ import annotations

from typing import Any

from mediaserver.api.models import Status
from mediaserver.console.routes import CheckIn, CheckOut, CheckProblem, Health, MuteIn, Registration

_BROKEN = """\
name: greeting
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: sya@v1
"""

EXAMPLES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("POST", "/api/scenarios/check"): (
        CheckIn(script=_BROKEN, name="greeting").model_dump(mode="json"),
        CheckOut(
            ok=False,
            problems=[
                CheckProblem(
                    line=6,
                    column=17,
                    message="unknown action 'sya@v1' (did you mean say@v1?)",
                    warning=False,
                )
            ],
        ).model_dump(mode="json"),
    ),
    ("PUT", "/api/conferences/{name}/members/{callid}/muted"): (
        MuteIn(muted=True).model_dump(mode="json"),
        Status(code="ok", message="call d2f7c1ab muted in conference sales").model_dump(
            mode="json"
        ),
    ),
    ("GET", "/api/console/health"): (
        None,
        Health(
            version="0.1.0",
            uptime=3605.2,
            callsActive=3,
            runsActive=3,
            portsInUse=3,
            portsCapacity=5000,
            eventSubscribers=1,
            loopLagLast=0.0004,
            loopLagMax=0.012,
            trunks=[Registration(trunk="carrier", state="registered", status=200, expiresIn=3412)],
        ).model_dump(mode="json"),
    ),
}
