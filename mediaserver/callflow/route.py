"""``callflow:URL`` routes (SPEC section 2): sugar for a one-action scenario.

A call routed to ``callflow:http://127.0.0.1:9000/flow`` runs the scenario
that :func:`callflow_scenario` builds::

    branches:
      inbound-call:
        actions:
          - action: callflow@v1
            params: {url: "http://127.0.0.1:9000/flow"}

so the route behaves exactly as the action does. The same scenario's
``api-initiated`` branch runs the call a DIAL action places (seed, DIAL:
the new call is "routed to the given CallFlow config", here the flow's own
URL, method and headers).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from mediaserver.actions.model import Scenario, ScenarioCompiler

PREFIX = "callflow:"
NAME = "callflow"


def route_url(target: str) -> str | None:
    """The URL of a ``callflow:URL`` route target; None for a scenario name."""
    return target[len(PREFIX) :] if target.startswith(PREFIX) else None


def _literal(text: str) -> str:
    # callflow@v1 interpolates url and header values: keep a "${" of the config as text.
    return text.replace("${", "\\${")


@functools.lru_cache(maxsize=256)
def callflow_scenario(
    compile_scenario: ScenarioCompiler,
    url: str,
    method: str = "POST",
    headers: tuple[tuple[str, str], ...] = (),
    timeout: float = 5.0,
    *,
    failover: tuple[str, str] | None = None,
    detection: str = "none",
    max_call_time: float | None = None,
) -> Scenario:
    """The scenario whose ``inbound-call`` and ``api-initiated`` branches are
    ``callflow@v1`` with these parameters, compiled by ``compile_scenario`` (the
    server's scenario compiler; ``ProblemsError`` if the parameters are invalid)."""
    params: dict[str, Any] = {
        "url": _literal(url),
        "method": method,
        "headers": {name: _literal(value) for name, value in headers},
        "timeout": timeout,
        "detection": detection,
    }
    if failover is not None:
        params["failover_url"], params["failover_method"] = _literal(failover[0]), failover[1]
    if max_call_time is not None:
        params["max_call_time"] = max_call_time
    actions = [{"action": "callflow@v1", "params": params}]
    data = {
        "branches": {
            "inbound-call": {"actions": actions},
            "api-initiated": {"actions": actions},
        }
    }
    scenario = compile_scenario(data, f"{NAME}.json")
    return dataclasses.replace(scenario, file=f"{PREFIX}{url}")
