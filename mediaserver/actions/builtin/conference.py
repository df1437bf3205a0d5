"""``conference@v1``: put the caller in a conference room until they leave.

Everyone in a room hears everyone else but not themselves; rooms are made
when the first caller joins and go away when the last one leaves. The action
blocks while the caller is in the room, and its result says how the stay
ended:

* ``key``: the caller pressed ``exit_on_key``;
* ``ended``: a participant with ``end_on_exit`` left, which ends the room
  for everyone;
* ``full``: the room already had ``max_participants`` (the caller never
  joined);
* ``left``: the server took the caller out (the API);
* ``hangup``: the caller hung up (the run then ends).

``muted`` callers are heard by nobody; ``mute_on_key`` toggles it, or mutes
when ``unmute_on_key`` names other keys. Each ``*_on_key`` is a key
combination: one key or several pressed in order (``"#0"``, the Voxology
seed's CONFERENCE), see :mod:`mediaserver.actions.key_combinations`.
``wait_for_moderator`` callers hear ``hold_audio`` (a named tone, or a sound
file or URL, looped) until a ``moderator`` joins; a caller alone in the room
hears it too. ``hold_on_exit`` puts the room on hold when this caller leaves: everyone
left waits, as for a moderator, until one joins. Keys pressed by a
``send_dtmf`` caller are sent on to every ``receive_dtmf`` caller.
``beep`` says whose arrival or departure the others hear as a
short beep. ``record`` records the room's mix until the room empties;
``$recording`` then holds its id and path (and its duration if the room
ended with this caller's stay).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import ConferenceOptions, MediaError
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.key_combinations import (
    COMBINATION_PATTERN,
    MAX_COMBINATION,
    combination_problem,
)
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import tone_or_sound
from mediaserver.media.conference import ROOM_CAPACITY

BEEPS = ("enter", "exit", "both", "none")
KEYS_PATTERN = f"{COMBINATION_PATTERN}|none"
KEYS_HINT = f"1 to {MAX_COMBINATION} keys pressed in order (0-9, *, #, A-D, e.g. #0) or none"


async def conference(context: ActionContext, params: Mapping[str, Any]) -> str:
    name = context.sandbox.interpolate(params["name"]).strip()
    if not name:
        raise ActionFailed("conference@v1: the name is empty")
    options = ConferenceOptions(
        name=name,
        muted=params["muted"],
        moderator=params["moderator"],
        wait_for_moderator=params["wait_for_moderator"],
        end_on_exit=params["end_on_exit"],
        beep=params["beep"],
        hold_audio=await tone_or_sound(context, params["hold_audio"]),
        max_participants=params["max_participants"],
        exit_on_key=_key(params["exit_on_key"]),
        mute_on_key=_key(params["mute_on_key"]),
        unmute_on_key=_key(params["unmute_on_key"]),
        record=params["record"],
        hold_on_exit=params["hold_on_exit"],
        send_dtmf=params["send_dtmf"],
        receive_dtmf=params["receive_dtmf"],
    )
    try:
        result = await context.call.conference(options)
    except MediaError as exc:
        raise ActionFailed(str(exc)) from None
    if result.recording is not None:
        context.set_builtin("$recording", result.recording.as_variable())
    context.log.info("conference ended", conference=name, outcome=result.outcome)
    return result.outcome


def _key(value: str | None) -> str | None:
    return None if value in (None, "none") else value


def _distinct_keys(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    problem = combination_problem(
        _key(params["exit_on_key"]), _key(params["mute_on_key"]), _key(params["unmute_on_key"])
    )
    return [] if problem is None else [(problem[0], f"conference@v1: {problem[1]}")]


CONFERENCE = ActionDefinition(
    name="conference",
    version=1,
    summary="Join a conference room; blocks until the caller leaves it.",
    params=(
        Param(
            "name",
            ParamType.STRING,
            "the room: callers giving the same name talk together; ${...} is interpolated",
            required=True,
            interpolated=True,
        ),
        Param("muted", ParamType.BOOLEAN, "join muted: heard by nobody", default=False),
        Param(
            "moderator",
            ParamType.BOOLEAN,
            "a moderator lets in those who wait for one",
            default=False,
        ),
        Param(
            "wait_for_moderator",
            ParamType.BOOLEAN,
            "hear hold_audio, and be heard by nobody, until a moderator is in",
            default=False,
        ),
        Param(
            "end_on_exit",
            ParamType.BOOLEAN,
            "when this caller leaves, the room ends for everyone (their result: ended)",
            default=False,
        ),
        Param(
            "beep",
            ParamType.STRING,
            "a beep tells the others when this caller enters, exits, both or none",
            default="both",
            choices=BEEPS,
        ),
        Param(
            "hold_audio",
            ParamType.STRING,
            "looped while alone or waiting: a tone (beep, ringback, busy, dial) or a sound "
            "file or http(s) URL; default: silence. The room keeps the first one given",
            interpolated=True,
        ),
        Param(
            "max_participants",
            ParamType.INTEGER,
            f"join only if the room has fewer participants (result: full); default: "
            f"{ROOM_CAPACITY}",
            minimum=1,
            maximum=ROOM_CAPACITY,
        ),
        Param(
            "exit_on_key",
            ParamType.STRING,
            "keys that take the caller out of the room (result: key)",
            default="none",
            pattern=KEYS_PATTERN,
            pattern_hint=KEYS_HINT,
        ),
        Param(
            "mute_on_key",
            ParamType.STRING,
            "keys that mute the caller, and unmute them unless unmute_on_key is given",
            default="none",
            pattern=KEYS_PATTERN,
            pattern_hint=KEYS_HINT,
        ),
        Param(
            "unmute_on_key",
            ParamType.STRING,
            "keys that unmute the caller (then mute_on_key only mutes)",
            default="none",
            pattern=KEYS_PATTERN,
            pattern_hint=KEYS_HINT,
        ),
        Param(
            "record",
            ParamType.BOOLEAN,
            "record the room's mix until it empties (unless it is recorded already); "
            "$recording gets its id",
            default=False,
        ),
        Param(
            "hold_on_exit",
            ParamType.BOOLEAN,
            "when this caller leaves, everyone left waits on hold (hearing hold_audio) "
            "until a moderator joins",
            default=False,
        ),
        Param(
            "send_dtmf",
            ParamType.BOOLEAN,
            "keys this caller presses are passed on to the participants with receive_dtmf",
            default=False,
        ),
        Param(
            "receive_dtmf",
            ParamType.BOOLEAN,
            "hear (as RFC 4733 telephone-events) the keys of participants with send_dtmf",
            default=False,
        ),
    ),
    run=conference,
    result="how the caller left: key, ended, full, left or hangup",
    check=_distinct_keys,
)

ACTIONS = (CONFERENCE,)
