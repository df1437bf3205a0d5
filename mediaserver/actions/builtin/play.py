"""``play@v1``: play a sound file or a named tone.

Exactly one of ``url`` (a file path or an http(s) URL, interpolated) or
``tone`` (``beep``, ``ringback``, ``busy``, ``dial``). ``stop_on_key`` works
as in ``say@v1``. With ``background`` the action returns at once and the
audio plays on during the next actions, until it ends, ``stop@v1``, or the
prompt of a later action replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import REPEAT, STOP_ON_KEY, Param, ParamType
from mediaserver.actions.prompt import TONE, URL, sound


async def play(context: ActionContext, params: Mapping[str, Any]) -> None:
    audio = await sound(context, url=params["url"], tone=params["tone"])
    if params["background"]:
        await context.call.play_background(audio, params["repeat"])
        return
    for _ in range(params["repeat"]):
        if await context.call.play(audio, stop_keys=params["stop_on_key"]) is not None:
            return


BACKGROUND = Param(
    "background",
    ParamType.BOOLEAN,
    "return at once and play during the next actions, until stop@v1 or another prompt",
    default=False,
)


def _one_source(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    if (params["url"] is None) == (params["tone"] is None):
        return [("", "play@v1: give exactly one of url or tone")]
    if params["background"] and params["stop_on_key"]:
        return [("stop_on_key", "play@v1: stop_on_key does not apply to background audio")]
    return []


PLAY = ActionDefinition(
    name="play",
    version=1,
    summary="Play a sound file or a named tone.",
    params=(URL, TONE, REPEAT, STOP_ON_KEY, BACKGROUND),
    run=play,
    check=_one_source,
)

ACTIONS = (PLAY,)
