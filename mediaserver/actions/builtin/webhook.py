"""``webhook@v1``: tell an outside service that something happened in the run.

The event is queued on the server's webhook dispatcher and the run goes on at
once: it never waits for the receiver (SPEC section 3), which gets it with
the retries, ordering and logging of every webhook (SPEC section 5). Without
``url`` it goes to every configured webhook (config or API) whose ``events``
patterns match ``event``, signed with that webhook's secret; with ``url`` it
goes to that URL only, unsigned (no secret belongs to it).

The type of the event is ``event``: a native ``v2.`` type, so it travels in
the Callr v2 envelope (``id``, ``at``, ``sid``, ``type``, ``try``,
``payload``) like ``v2.call.inbound.started``; ``v2.call.*``,
``v2.recording.*`` and ``v2.audio-file.*`` are the server's own and refused.
The payload says where it comes from, and carries ``data`` rendered as for ``fetch@v1``'s body::

    {"scenario": "reminder", "runid": "api:k3x9a0pq", "branch": "api-initiated",
     "callid": "p0ab12cd", "from": "mediaserver", "to": "alice", "data": {...}}

(``callid``, ``from`` and ``to`` are null in a run without a call.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.builtin.data import render
from mediaserver.actions.builtin.fetch import URL_HINT, URL_PATTERN
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

DEFAULT_EVENT = "v2.scenario.event"
EVENT_PATTERN = r"(?!v2\.(?:call|recording|audio-file)\.)v2(?:\.[A-Za-z0-9_-]{1,40}){1,6}"


async def webhook(context: ActionContext, params: Mapping[str, Any]) -> None:
    sandbox = context.sandbox
    url = None if params["url"] is None else sandbox.interpolate(params["url"]).strip()
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise ActionFailed(f"url: {url!r} is not {URL_HINT}")
    event: str = params["event"]
    run = sandbox.get("$run") or {}
    call = sandbox.get("$call") or {}
    payload = {
        "scenario": run.get("scenario"),
        "runid": run.get("id"),
        "branch": run.get("branch"),
        "callid": call.get("id"),
        "from": call.get("from"),
        "to": call.get("to"),
        "data": render(params["data"], sandbox),
    }
    context.server.webhook(url, event, payload)
    context.log.info("webhook queued", event_type=event, url=url or "configured webhooks")


WEBHOOK = ActionDefinition(
    name="webhook",
    version=1,
    summary="Post an event to the configured webhooks or a URL; never waits for it.",
    params=(
        Param(
            "url",
            ParamType.STRING,
            "where to post it, unsigned; default: every configured webhook whose events "
            "match, signed with its secret. ${...} is interpolated",
            interpolated=True,
            pattern=URL_PATTERN,
            pattern_hint=URL_HINT,
        ),
        Param(
            "event",
            ParamType.STRING,
            "the event type",
            default=DEFAULT_EVENT,
            pattern=EVENT_PATTERN,
            pattern_hint="an event type: v2. then dot-separated words of letters, digits, "
            "_ and - (v2.call.*, v2.recording.* and v2.audio-file.* are the server's own)",
        ),
        Param(
            "data",
            ParamType.DATA,
            "what the event carries, in the payload's data field",
            default={},
        ),
    ),
    run=webhook,
    needs_call=False,
)

ACTIONS = (WEBHOOK,)
