"""``queue@v1``: call-centre queues.

``command: enqueue`` (the default) puts the caller in the queue ``name``:
they hear ``hold_audio`` in a loop (and, with ``announce_position``, their
place in line every 30 seconds) until an agent takes the call. The action
returns when that conversation ends (``bridged``), or when ``max_wait`` passes
first (``timeout``), so the scenario can go on, for instance to voicemail.

With ``max_calls``, the caller does not join a queue where that many wait
already (``full``). With ``wait: false`` the caller joins the line and the
action returns at once (``queued``): the scenario goes on (the caller hears
what it plays) while the caller keeps its place.

``command: bridge-next`` runs in an agent's call: it joins the agent to the
caller who has waited longest and returns when they are done (``bridged``),
or at once when nobody waits (``empty``); ``$queue.caller`` says whom it
took (``id``, ``from``, ``to``, ``direction``). ``release-next`` lets that caller
out of the queue without bridging it: its own ``enqueue`` returns
``released`` and its scenario goes on (``released``, or ``empty``).
``leave`` takes this call out of the line it joined with ``wait: false``
(``removed``, or ``absent`` when it is not in line).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import Pcm
from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import speech, tone_or_sound

COMMANDS = ("enqueue", "bridge-next", "release-next", "leave")


async def queue(context: ActionContext, params: Mapping[str, Any]) -> str:
    name = context.sandbox.interpolate(params["name"])
    call = context.call
    command = params["command"]
    taken: dict[str, Any] = {}

    def on_taken(info: dict[str, Any]) -> None:
        taken.update({key: info.get(key) for key in ("id", "from", "to", "direction")})
        context.set_builtin("$queue", _queue_variable(name, command, None, taken))

    if command == "bridge-next":
        outcome = await call.bridge_next(name, on_taken)
    elif command == "release-next":
        outcome = call.release_next(name)
    elif command == "leave":
        outcome = call.leave_queue(name)
    else:
        hold = await tone_or_sound(context, params["hold_audio"])
        assert hold is not None  # the parameter has a default

        async def announce(position: int) -> Pcm:
            text = (
                "You are next in line." if position == 1 else f"You are number {position} in line."
            )
            return await speech(context, text)

        outcome = await call.enqueue(
            name,
            hold_audio=hold,
            max_wait=params["max_wait"],
            announce=announce if params["announce_position"] else None,
            max_calls=params["max_calls"],
            wait=params["wait"],
        )
    context.set_builtin("$queue", _queue_variable(name, command, outcome, taken))
    context.log.info("queue action ended", queue=name, command=command, outcome=outcome)
    return outcome


def _queue_variable(
    name: str, command: str, result: str | None, caller: dict[str, Any]
) -> dict[str, Any]:
    """``$queue``: the last queue@v1, and the caller a bridge-next took (set as soon
    as it is taken, with ``result`` null until the bridge ends)."""
    return {"name": name, "command": command, "result": result, "caller": caller or None}


def _enqueue_only(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    command = params["command"]
    if command == "enqueue":
        if not params["wait"] and params["max_wait"] is not None:
            return [("max_wait", "queue@v1: max_wait needs wait: true (nothing waits)")]
        return []
    given = {
        "max_wait": params["max_wait"] is not None,
        "max_calls": params["max_calls"] is not None,
        "wait": params["wait"] is not True,
    }
    return [
        (name, f"queue@v1: {name} applies to enqueue, not {command}")
        for name, present in given.items()
        if present
    ]


QUEUE = ActionDefinition(
    name="queue",
    version=1,
    summary="Wait in a call queue (enqueue), take its longest-waiting caller (bridge-next), "
    "let them go (release-next), or leave its line (leave).",
    params=(
        Param("name", ParamType.STRING, "the queue's name", required=True, interpolated=True),
        Param(
            "command",
            ParamType.STRING,
            "enqueue: this caller waits; bridge-next: this (agent's) call takes the next caller; "
            "release-next: the next caller leaves the queue; leave: this caller leaves its line",
            default="enqueue",
            choices=COMMANDS,
        ),
        Param(
            "hold_audio",
            ParamType.STRING,
            "what a waiting caller hears, looped: a tone (beep, ringback, busy, dial) or a "
            "sound file or http(s) URL",
            default="ringback",
            interpolated=True,
        ),
        Param(
            "max_wait",
            ParamType.SECONDS,
            "leave the queue after this many seconds (result: timeout); default: no limit",
            minimum=1,
        ),
        Param(
            "announce_position",
            ParamType.BOOLEAN,
            "tell the caller their place in line when they join and every 30 seconds",
            default=False,
        ),
        Param(
            "max_calls",
            ParamType.INTEGER,
            "do not join when this many callers wait already (result: full); default: no limit",
            minimum=1,
        ),
        Param(
            "wait",
            ParamType.BOOLEAN,
            "false: join the line and go on at once (result: queued); the caller hears the "
            "scenario's audio meanwhile",
            default=True,
        ),
    ),
    run=queue,
    check=_enqueue_only,
    result="enqueue: bridged (an agent took the call and they are done), released, timeout, "
    "full, or queued (wait: false); bridge-next: bridged, or empty when nobody was waiting; "
    "release-next: released or empty; leave: removed or absent",
)

ACTIONS = (QUEUE,)
