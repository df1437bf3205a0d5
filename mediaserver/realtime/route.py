"""``realtime:URL`` routes: sugar for a one-action scenario, as ``callflow:URL`` is.

A call routed to ``realtime:http://127.0.0.1:9000/rt`` runs::

    branches:
      inbound-call:
        actions:
          - action: realtime@v1
            params: {url: "http://127.0.0.1:9000/rt"}

Credentials in the URL (``https://login:password@host/rt``) become the
REALTIME10 app's ``login`` and ``password`` (HTTP Basic Authentication).
"""

from __future__ import annotations

import dataclasses
import functools
from urllib.parse import unquote, urlsplit, urlunsplit

from mediaserver.actions.model import Scenario, ScenarioCompiler

PREFIX = "realtime:"
NAME = "realtime"


def route_url(target: str) -> str | None:
    """The URL of a ``realtime:URL`` route target; None for anything else."""
    return target[len(PREFIX) :] if target.startswith(PREFIX) else None


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its user info, and the login and password it held."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, unquote(parts.username), unquote(parts.password or "")


@functools.lru_cache(maxsize=256)
def realtime_scenario(compile_scenario: ScenarioCompiler, url: str) -> Scenario:
    """The scenario whose ``inbound-call`` and ``api-initiated`` branches are
    ``realtime@v1`` of ``url`` (ProblemsError if it is invalid)."""
    bare, login, password = split_credentials(url)
    params: dict[str, str] = {"url": bare.replace("${", "\\${")}
    if login is not None:
        params["login"] = login.replace("${", "\\${")
        params["password"] = (password or "").replace("${", "\\${")
    actions = [{"action": "realtime@v1", "params": params}]
    data = {
        "branches": {
            "inbound-call": {"actions": actions},
            "api-initiated": {"actions": actions},
        }
    }
    scenario = compile_scenario(data, f"{NAME}.json")
    return dataclasses.replace(scenario, file=f"{PREFIX}{bare}")
