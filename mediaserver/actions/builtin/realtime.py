"""``realtime@v1``: hand the call to a REALTIME10 application (Callr v1, SPEC section 2).

The server POSTs an RT.Request to ``url`` and runs the command of each
RT.Response (play, say, read, record, dialout, send_dtmf, wait, hangup) as
the native actions do; :mod:`mediaserver.realtime` has the protocol and
docs/realtime.md describes it. The action keeps the call until it ends; it
fails when the application does not answer within 5 s or answers non-2xx
(the call is hung up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.builtin.fetch import URL_HINT, URL_PATTERN
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed, EndRun
from mediaserver.actions.params import Param, ParamType
from mediaserver.realtime.session import RealtimeSession


async def realtime(context: ActionContext, params: Mapping[str, Any]) -> None:
    sandbox = context.sandbox
    url = sandbox.interpolate(params["url"]).strip()
    if not url.lower().startswith(("http://", "https://")):
        raise ActionFailed(f"url: {url!r} is not {URL_HINT}")
    login = params["login"]
    auth = None
    if login is not None:
        auth = (sandbox.interpolate(login), sandbox.interpolate(params["password"] or ""))
    # The compiler comes from the server's services, as for callflow@v1.
    session = RealtimeSession(
        context, url, compile_scenario=context.server.compile_scenario, auth=auth
    )
    await session.run()
    raise EndRun("completed", "realtime@v1: the call ended")


def _login_and_password(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    if (params["login"] is None) != (params["password"] is None):
        return [("password", "realtime@v1: give both login and password, or neither")]
    return []


REALTIME = ActionDefinition(
    name="realtime",
    version=1,
    summary="Hand the call to a REALTIME10 application: each RT.Response's command runs, "
    "its result goes back in the next RT.Request.",
    params=(
        Param(
            "url",
            ParamType.STRING,
            "the application's URL (RT.Requests are POSTed there); ${...} is interpolated",
            required=True,
            interpolated=True,
            pattern=URL_PATTERN,
            pattern_hint=URL_HINT,
        ),
        Param(
            "login",
            ParamType.STRING,
            "HTTP Basic Authentication login, if the URL is password protected",
            interpolated=True,
        ),
        Param(
            "password",
            ParamType.STRING,
            "HTTP Basic Authentication password",
            interpolated=True,
        ),
    ),
    run=realtime,
    check=_login_and_password,
)

ACTIONS = (REALTIME,)
